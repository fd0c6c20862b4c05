//! Propagation: how long blocks took to reach the nodes that accepted
//! them, per block and as a histogram (`GET /api/propagation`).
//!
//! The field order of these types is the JSON's (alphabetical, as the
//! answer has always been).

use std::collections::BTreeMap;

use crapcoin_core::BlockHash;
use serde::{Deserialize, Serialize};

use super::Window;
use super::tree::Tree;

/// Upper bounds (ms) of the propagation histogram's buckets; the last
/// bucket is everything slower.
pub const HISTOGRAM_BOUNDS_MS: [u64; 9] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000];
/// Blocks listed by `/api/propagation`.
const PROPAGATION_BLOCKS: usize = 100;

/// `GET /api/propagation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Propagation {
    /// The blocks of the honest window (at most 100), highest first (then
    /// newest report first).
    pub blocks: Vec<BlockDelays>,
    /// Every delay sample of the tree, bucketed by [`HISTOGRAM_BOUNDS_MS`].
    pub histogram: Vec<Bucket>,
    /// How many delay samples there are.
    pub samples: u64,
}

/// One block's delays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDelays {
    /// Per node, the delay from first report to its accept, ms.
    pub delays_ms: BTreeMap<String, u64>,
    /// When a node first reported it.
    pub first_seen_ms: u64,
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// The node that mined it, when one said so.
    pub miner_node: Option<String>,
}

/// One histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Samples in it.
    pub count: u64,
    /// Its upper bound, ms; `None` for the last (everything slower).
    pub le_ms: Option<u64>,
}

/// The propagation figures of `tree`; the blocks listed are those inside
/// `window`.
pub fn propagation(tree: &Tree, window: &Window) -> Propagation {
    let mut counts = [0u64; HISTOGRAM_BOUNDS_MS.len() + 1];
    let mut samples = 0u64;
    for block in tree.iter() {
        for (_, delay) in block.accepts() {
            let bucket = HISTOGRAM_BOUNDS_MS
                .iter()
                .position(|b| delay <= b)
                .unwrap_or(HISTOGRAM_BOUNDS_MS.len());
            counts[bucket] += 1;
            samples += 1;
        }
    }
    let histogram = counts
        .iter()
        .enumerate()
        .map(|(i, count)| Bucket {
            count: *count,
            le_ms: HISTOGRAM_BOUNDS_MS.get(i).copied(),
        })
        .collect();
    let mut listed: Vec<_> = tree
        .newest_first()
        .filter(|b| window.contains(b.height))
        .collect();
    // Stable: among one height, the newest report stays first.
    listed.sort_by_key(|b| std::cmp::Reverse(b.height));
    let blocks = listed
        .into_iter()
        .take(PROPAGATION_BLOCKS)
        .map(|b| BlockDelays {
            delays_ms: b.accepts().iter().cloned().collect(),
            first_seen_ms: b.first_seen_ms,
            hash: b.hash,
            height: b.height,
            miner_node: b.miner_node.clone(),
        })
        .collect();
    Propagation {
        blocks,
        histogram,
        samples,
    }
}
