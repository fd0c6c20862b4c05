//! The consensus verdict: do all live honest nodes hold the same block at
//! `shortest tip height - k`, and how deep do they disagree?

use std::collections::{HashMap, HashSet};

use crapcoin_core::BlockHash;
use serde::{Deserialize, Serialize};

use super::nodes::{Node, Nodes};
use super::tree::Tree;

/// How far below the shortest tip the consensus check looks for a common
/// block.
const MAX_COMMON_SEARCH: u64 = 256;

/// The verdict of [`Consensus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every live honest node holds the majority block.
    Consensus,
    /// Some do not.
    Forked,
    /// There is no live honest node.
    NoHonestNodes,
}

impl Verdict {
    /// Its name on the wire, e.g. `no_honest_nodes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consensus => "consensus",
            Self::Forked => "forked",
            Self::NoHonestNodes => "no_honest_nodes",
        }
    }
}

/// `GET /api/consensus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consensus {
    /// Live honest nodes (alive, not fired, behaviour `honest`).
    pub live_honest: usize,
    /// How many of them hold the majority block at the check height.
    pub agreeing: usize,
    /// The highest height (at most the shortest live honest tip) at which
    /// every live honest node holds the same block; `None` when unknown.
    pub common_height: Option<u64>,
    /// Shortest live honest tip height minus `common_height`: how deep
    /// the disagreement goes (0 when they share the shortest tip's chain).
    pub max_fork_depth: u64,
    /// `consensus`, `forked` or `no_honest_nodes`.
    pub verdict: Verdict,
    /// The settling depth: nodes must agree at `shortest tip - k`.
    pub k: u64,
}

/// What a node holds at a height: a block the tree knows, or (when every
/// node is on one tip the tree does not reach) "that tip's block at this
/// height", the same for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Held {
    Block(BlockHash),
    Below(BlockHash, u64),
}

/// The verdict over the live honest nodes of `nodes`, walking `tree`.
pub fn consensus(nodes: &Nodes, tree: &Tree, k: u64, now_ms: u64) -> Consensus {
    let live = nodes.live_honest(now_ms);
    let Some(min_height) = live.iter().map(|n| n.height).min() else {
        return Consensus {
            live_honest: 0,
            agreeing: 0,
            common_height: None,
            max_fork_depth: 0,
            verdict: Verdict::NoHonestNodes,
            k,
        };
    };
    let at = min_height.saturating_sub(k);
    // Each node's block at `at`: from the tree, or (when the tree does
    // not reach) its tip when that is at `at`; otherwise unknown, which
    // counts as disagreeing.
    // Nodes on one tip hold the same chain, known or not.
    let first_tip = live.first().and_then(|n| n.tip);
    let one_tip = live.iter().all(|n| n.tip.is_some() && n.tip == first_tip);
    let held = |node: &Node, height: u64| -> Option<Held> {
        let tip = node.tip?;
        if node.height == height {
            return Some(Held::Block(tip));
        }
        match tree.ancestor(tip, height) {
            Some(block) => Some(Held::Block(block)),
            None if one_tip => Some(Held::Below(tip, height)),
            None => None,
        }
    };
    let mut groups: HashMap<Held, usize> = HashMap::new();
    for node in &live {
        if let Some(block) = held(node, at) {
            *groups.entry(block).or_default() += 1;
        }
    }
    let agreeing = if at == 0 {
        live.len()
    } else {
        groups.values().copied().max().unwrap_or(0)
    };
    let all_at = |height: u64| -> bool {
        if height == 0 {
            return true;
        }
        let blocks: HashSet<Option<Held>> = live.iter().map(|n| held(n, height)).collect();
        blocks.len() == 1 && blocks.iter().all(Option::is_some)
    };
    let lowest = min_height.saturating_sub(MAX_COMMON_SEARCH);
    let common_height = (lowest..=min_height).rev().find(|h| all_at(*h));
    Consensus {
        live_honest: live.len(),
        agreeing,
        common_height,
        max_fork_depth: common_height.map_or(min_height - lowest, |c| min_height - c),
        verdict: if agreeing == live.len() {
            Verdict::Consensus
        } else {
            Verdict::Forked
        },
        k,
    }
}
