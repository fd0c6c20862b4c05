//! The recent block tree: the newest blocks nodes reported (or Sauron
//! fetched), each with when it was first seen, who mined it and how long
//! each node took to accept it.

use std::collections::{HashMap, VecDeque};

use crapcoin_core::BlockHash;
use serde::Serialize;

use crate::sauron::model::BlockFacts;

/// Most nodes that accept one block whose delay is kept.
const MAX_ACCEPTS_PER_BLOCK: usize = 256;

/// One block of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockEntry {
    /// The block.
    pub hash: BlockHash,
    /// Its parent.
    pub parent: BlockHash,
    /// Its height.
    pub height: u64,
    /// When a node first reported it.
    pub first_seen_ms: u64,
    /// The node that mined it, when one said so.
    pub miner_node: Option<String>,
    /// Per node, the delay from `first_seen_ms` to its accept, ms.
    #[serde(skip)]
    pub(super) accepts: Vec<(String, u64)>,
    /// Whether Sauron only learnt it by asking a node (no node reported
    /// it yet): its `first_seen_ms` is then when Sauron asked, not when
    /// it was mined, so the interval and delay figures leave it out.
    #[serde(skip)]
    pub(super) learnt: bool,
}

impl BlockEntry {
    /// Per node, the delay from `first_seen_ms` to its accept, ms.
    pub fn accepts(&self) -> &[(String, u64)] {
        &self.accepts
    }

    /// Whether a node reported it (rather than Sauron learning it by
    /// asking): only then is `first_seen_ms` a report's time.
    pub fn reported(&self) -> bool {
        !self.learnt
    }
}

/// The newest `max` blocks, by hash, and in arrival order.
#[derive(Debug, Clone)]
pub struct Tree {
    blocks: HashMap<BlockHash, BlockEntry>,
    order: VecDeque<BlockHash>,
    max: usize,
}

impl Tree {
    /// An empty tree holding at most `max` blocks (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            blocks: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
        }
    }

    /// Adds `block` first seen at `at_ms` unless the tree has it; the
    /// oldest blocks go when it is full.
    fn insert(&mut self, block: BlockFacts, at_ms: u64, learnt: bool) {
        if let Some(entry) = self.blocks.get_mut(&block.hash) {
            // A learnt block's time was a guess: the first report's wins.
            if entry.learnt && !learnt {
                entry.learnt = false;
                entry.first_seen_ms = at_ms;
            }
            return;
        }
        self.order.push_back(block.hash);
        self.blocks.insert(
            block.hash,
            BlockEntry {
                hash: block.hash,
                parent: block.parent,
                height: block.height,
                first_seen_ms: at_ms,
                miner_node: None,
                accepts: Vec::new(),
                learnt,
            },
        );
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front() {
                self.blocks.remove(&old);
            }
        }
    }

    /// `node` reported `block` at `at_ms`: mined it (`mined`) or accepted
    /// it, which is a delay sample.
    pub fn reported(&mut self, node: &str, block: BlockFacts, at_ms: u64, mined: bool) {
        self.insert(block, at_ms, false);
        let Some(entry) = self.blocks.get_mut(&block.hash) else {
            return;
        };
        if mined {
            entry.miner_node = Some(node.to_owned());
        }
        // A miner's report may come after another node's accept.
        if at_ms < entry.first_seen_ms {
            let shift = entry.first_seen_ms - at_ms;
            entry.first_seen_ms = at_ms;
            for (_, delay) in &mut entry.accepts {
                *delay += shift;
            }
        }
        if !mined
            && entry.accepts.len() < MAX_ACCEPTS_PER_BLOCK
            && !entry.accepts.iter().any(|(n, _)| n == node)
        {
            entry
                .accepts
                .push((node.to_owned(), at_ms - entry.first_seen_ms));
        }
    }

    /// A block learnt by asking a node (not reported): it joins the tree
    /// so the consensus check can walk through it, without a delay sample.
    pub fn learn(&mut self, block: BlockFacts, now_ms: u64) {
        self.insert(block, now_ms, true);
    }

    /// The block `hash`, when the tree holds it.
    pub fn get(&self, hash: &BlockHash) -> Option<&BlockEntry> {
        self.blocks.get(hash)
    }

    /// How many blocks the tree holds.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The first block of the chain ending at `tip` that the tree lacks,
    /// looking at most `depth` blocks down (and not below height 1).
    pub fn missing(&self, tip: BlockHash, depth: u64) -> Option<BlockHash> {
        let mut hash = tip;
        for _ in 0..=depth {
            match self.blocks.get(&hash) {
                None => return Some(hash),
                Some(block) if block.height <= 1 => return None,
                Some(block) => hash = block.parent,
            }
        }
        None
    }

    /// The block at `height` on the chain ending at `tip`, when the tree
    /// reaches that far.
    pub fn ancestor(&self, tip: BlockHash, height: u64) -> Option<BlockHash> {
        let mut block = self.blocks.get(&tip)?;
        loop {
            if block.height == height {
                return Some(block.hash);
            }
            if block.height < height {
                return None;
            }
            if block.height == height + 1 {
                return Some(block.parent);
            }
            block = self.blocks.get(&block.parent)?;
        }
    }

    /// The blocks, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &BlockEntry> + '_ {
        self.order.iter().rev().filter_map(|h| self.blocks.get(h))
    }

    /// The blocks, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &BlockEntry> + '_ {
        self.blocks.values()
    }
}
