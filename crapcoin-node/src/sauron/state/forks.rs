//! Forks, measured (`GET /api/forks`): how many blocks were mined, how
//! many of them ended on the honest nodes' best chain, the stale rate, the
//! observed block interval, each miner's share of the best chain beside
//! its hash power share, and how long blocks took to reach the nodes.
//!
//! Everything is computed on demand from what Sauron already keeps, so
//! memory stays bounded by the block tree ([`super::tree`]) and the node
//! table ([`super::nodes`]):
//!
//! - **The best chain** ends at the tip most live honest nodes hold (a tie
//!   goes to the higher tip, then to the smaller hash) and runs down
//!   through the tree as far as the tree reaches (the *window*:
//!   `from_height..=best_height`). Without a live honest node there is no
//!   best chain and the figures are empty.
//! - **Mined** blocks are the blocks of the window a node reported as
//!   `block_mined`; a mined block not on the best chain is **stale**.
//!   Blocks above the best tip are not counted yet (they may still become
//!   the best chain). The stale rate is `stale_blocks / blocks_mined`.
//! - **The mean interval** is the time between the first reports of the
//!   lowest and the highest reported best-chain blocks of the window,
//!   divided by the heights between them (report times stand in for block
//!   timestamps: the miner reports a block the moment it finds it).
//! - **Propagation**: for every block of the window, the delay from its
//!   first report by any node to each other node's `block_accepted`
//!   (median, 90th percentile and maximum, nearest rank).
//! - **The series** buckets the window's blocks by first report time
//!   (at most [`MAX_POINTS`] buckets of a round width) for the dashboard's
//!   charts: the stale rate and the delays over time. The newest bucket is
//!   not settled: a block there may still be overtaken.

use std::collections::{BTreeMap, HashMap, HashSet};

use crapcoin_core::BlockHash;
use serde::{Deserialize, Serialize};

use super::nodes::Nodes;
use super::tree::Tree;

/// Most points of [`Forks::series`].
pub const MAX_POINTS: usize = 30;
/// Bucket widths the series picks from, ms: the smallest that keeps the
/// window within [`MAX_POINTS`] buckets.
const BUCKETS_MS: [u64; 12] = [
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000,
    3_600_000,
];

/// `GET /api/forks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forks {
    /// The best chain's tip: the tip most live honest nodes hold; `None`
    /// without a live honest node whose tip the tree knows.
    pub best_tip: Option<BlockHash>,
    /// Its height.
    pub best_height: Option<u64>,
    /// The lowest best-chain block the tree still holds: the figures cover
    /// `from_height..=best_height`.
    pub from_height: Option<u64>,
    /// Blocks of the window reported as mined (`block_mined`).
    pub blocks_mined: u64,
    /// Best-chain blocks in the window (mined reports or not).
    pub blocks_on_best_chain: u64,
    /// Mined blocks that are on the best chain.
    pub mined_on_best_chain: u64,
    /// Mined blocks that are not: `blocks_mined - mined_on_best_chain`.
    pub stale_blocks: u64,
    /// `stale_blocks / blocks_mined`; `None` before any block was mined.
    pub stale_rate: Option<f64>,
    /// Observed mean interval between best-chain blocks, ms; `None` with
    /// fewer than two reported best-chain blocks.
    pub mean_interval_ms: Option<f64>,
    /// Per miner (and per live node with a known hash share), by name.
    pub miners: Vec<MinerShare>,
    /// Delays from a block's first report to each node's accept, over the
    /// window.
    pub propagation: Delays,
    /// Width of a [`Forks::series`] bucket, ms.
    pub bucket_ms: u64,
    /// The window by first report time, oldest first.
    pub series: Vec<SeriesPoint>,
}

/// One miner's share of the best chain beside its share of hash power.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerShare {
    /// The node's name.
    pub node: String,
    /// Its behaviour (`""` when unknown).
    pub behaviour: String,
    /// Whether the behaviour is `honest`.
    pub honest: bool,
    /// Its hash power share, as it says (`GET /status`); `None` when
    /// unknown.
    pub hash_share: Option<f64>,
    /// Blocks of the window it mined.
    pub mined: u64,
    /// Of them, on the best chain.
    pub on_best_chain: u64,
    /// `on_best_chain` over the best-chain blocks of the window whose
    /// miner is known: what its power earned. `None` while there are none.
    pub best_chain_share: Option<f64>,
}

/// Delay statistics, ms (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delays {
    /// How many delay samples.
    pub samples: u64,
    /// The median; `None` without samples.
    pub median_ms: Option<u64>,
    /// The 90th percentile.
    pub p90_ms: Option<u64>,
    /// The largest.
    pub max_ms: Option<u64>,
}

impl Delays {
    /// The statistics of `samples` (in any order).
    pub fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Self {
            samples: samples.len() as u64,
            median_ms: quantile(&samples, 0.5),
            p90_ms: quantile(&samples, 0.9),
            max_ms: samples.last().copied(),
        }
    }
}

/// One bucket of [`Forks::series`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Start of the bucket, ms since the epoch.
    pub at_ms: u64,
    /// Blocks first reported in it that were reported as mined.
    pub blocks_mined: u64,
    /// Of them, not on the best chain.
    pub stale_blocks: u64,
    /// `stale_blocks / blocks_mined`; `None` when nothing was mined.
    pub stale_rate: Option<f64>,
    /// Delays of the blocks first reported in it.
    pub propagation: Delays,
}

/// The `q` quantile of `sorted` by nearest rank: the smallest sample with
/// at least `q` of all samples at or below it.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The tip most live honest nodes hold, among tips the tree knows; a tie
/// goes to the higher, then the smaller hash.
pub fn best_tip(nodes: &Nodes, tree: &Tree, now_ms: u64) -> Option<BlockHash> {
    let mut counts: HashMap<BlockHash, usize> = HashMap::new();
    for node in nodes.live_honest(now_ms) {
        if let Some(tip) = node.tip
            && tree.get(&tip).is_some()
        {
            *counts.entry(tip).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|(a, na), (b, nb)| {
            let height = |h: &BlockHash| tree.get(h).map_or(0, |e| e.height);
            na.cmp(nb).then(height(a).cmp(&height(b))).then(b.cmp(a))
        })
        .map(|(tip, _)| tip)
}

/// The figures of [`Forks`] over `tree`, the best chain ending at the
/// honest nodes' [`best_tip`].
pub fn forks(nodes: &Nodes, tree: &Tree, now_ms: u64) -> Forks {
    let tip = best_tip(nodes, tree, now_ms);
    let mut best: HashSet<BlockHash> = HashSet::new();
    let mut from_height = None;
    let mut hash = tip;
    while let Some(entry) = hash.and_then(|h| tree.get(&h)) {
        if !best.insert(entry.hash) {
            break; // a cycle can only come from hostile reports
        }
        from_height = Some(entry.height);
        if entry.height <= 1 {
            break;
        }
        hash = Some(entry.parent);
    }
    let best_height = tip.and_then(|t| tree.get(&t)).map(|e| e.height);
    let in_window = |height: u64| match (from_height, best_height) {
        (Some(lo), Some(hi)) => (lo..=hi).contains(&height),
        _ => false,
    };
    let blocks: Vec<_> = tree.iter().filter(|b| in_window(b.height)).collect();

    let mut mined = 0;
    let mut mined_on_best = 0;
    let mut on_best = 0;
    let mut per_miner: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut delays = Vec::new();
    let mut best_reported: Vec<(u64, u64)> = Vec::new();
    for block in &blocks {
        let is_best = best.contains(&block.hash);
        on_best += u64::from(is_best);
        if let Some(miner) = &block.miner_node {
            mined += 1;
            mined_on_best += u64::from(is_best);
            let entry = per_miner.entry(miner).or_default();
            entry.0 += 1;
            entry.1 += u64::from(is_best);
        }
        if block.reported() {
            delays.extend(block.accepts().iter().map(|(_, d)| *d));
            if is_best {
                best_reported.push((block.height, block.first_seen_ms));
            }
        }
    }
    let mean_interval_ms = {
        let low = best_reported.iter().min_by_key(|b| b.0);
        let high = best_reported.iter().max_by_key(|b| b.0);
        match (low, high) {
            (Some(low), Some(high)) if high.0 > low.0 && high.1 > low.1 => {
                Some((high.1 - low.1) as f64 / (high.0 - low.0) as f64)
            }
            _ => None,
        }
    };

    let mut miners: BTreeMap<String, MinerShare> = BTreeMap::new();
    let share_of = |name: &str, mined: u64, on: u64| {
        let node = nodes.get(name);
        MinerShare {
            node: name.to_owned(),
            behaviour: node.map(|n| n.behaviour.clone()).unwrap_or_default(),
            honest: node.is_some_and(|n| n.honest),
            hash_share: node.and_then(|n| n.hash_share),
            mined,
            on_best_chain: on,
            best_chain_share: ratio(on, mined_on_best),
        }
    };
    for (name, (m, on)) in &per_miner {
        miners.insert((*name).to_owned(), share_of(name, *m, *on));
    }
    for node in nodes.live(now_ms) {
        if node.hash_share.is_some() && !miners.contains_key(&node.name) {
            miners.insert(node.name.clone(), share_of(&node.name, 0, 0));
        }
    }

    let (bucket_ms, series) = series(&blocks, &best);
    Forks {
        best_tip: tip,
        best_height,
        from_height,
        blocks_mined: mined,
        blocks_on_best_chain: on_best,
        mined_on_best_chain: mined_on_best,
        stale_blocks: mined - mined_on_best,
        stale_rate: ratio(mined - mined_on_best, mined),
        mean_interval_ms,
        miners: miners.into_values().collect(),
        propagation: Delays::of(delays),
        bucket_ms,
        series,
    }
}

/// The window's reported blocks bucketed by first report time.
fn series(
    blocks: &[&super::tree::BlockEntry],
    best: &HashSet<BlockHash>,
) -> (u64, Vec<SeriesPoint>) {
    let reported: Vec<_> = blocks.iter().filter(|b| b.reported()).collect();
    let (Some(first), Some(last)) = (
        reported.iter().map(|b| b.first_seen_ms).min(),
        reported.iter().map(|b| b.first_seen_ms).max(),
    ) else {
        return (BUCKETS_MS[0], Vec::new());
    };
    let span = last - first;
    let width = BUCKETS_MS
        .iter()
        .copied()
        .find(|w| span / w < MAX_POINTS as u64)
        .unwrap_or_else(|| span / (MAX_POINTS as u64 - 1) + 1);
    let start = first - first % width;
    let count = ((last - start) / width + 1) as usize;
    let mut points: Vec<(u64, u64, Vec<u64>)> = vec![(0, 0, Vec::new()); count.min(MAX_POINTS)];
    for block in reported {
        let i = (((block.first_seen_ms - start) / width) as usize).min(points.len() - 1);
        let point = &mut points[i];
        if block.miner_node.is_some() {
            point.0 += 1;
            point.1 += u64::from(!best.contains(&block.hash));
        }
        point.2.extend(block.accepts().iter().map(|(_, d)| *d));
    }
    let series = points
        .into_iter()
        .enumerate()
        .map(|(i, (mined, stale, delays))| SeriesPoint {
            at_ms: start + i as u64 * width,
            blocks_mined: mined,
            stale_blocks: stale,
            stale_rate: ratio(stale, mined),
            propagation: Delays::of(delays),
        })
        .collect();
    (width, series)
}

#[cfg(test)]
mod tests {
    use super::{Delays, quantile};

    #[test]
    fn quantiles_are_nearest_rank() {
        let sorted = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        assert_eq!(quantile(&sorted, 0.5), Some(50));
        assert_eq!(quantile(&sorted, 0.9), Some(90));
        assert_eq!(quantile(&sorted, 1.0), Some(100));
        assert_eq!(quantile(&sorted, 0.0), Some(10));
        assert_eq!(quantile(&[7], 0.9), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(
            Delays::of(vec![300, 5, 40, 12, 7]),
            Delays {
                samples: 5,
                median_ms: Some(12),
                p90_ms: Some(300),
                max_ms: Some(300)
            }
        );
        assert_eq!(Delays::of(Vec::new()), Delays::default());
    }
}
