//! A bounded pool of blocks whose parent has not arrived yet.

use std::collections::{HashMap, VecDeque};

use crate::block::CheckedBlock;
use crate::hash::BlockHash;
use crate::network::PeerUrl;

/// An orphan and who sent it (whom to ask for its ancestors).
#[derive(Debug, Clone)]
pub struct Orphan {
    /// The block, checked on its own (so junk never takes a slot).
    pub block: CheckedBlock,
    /// The peer that sent it.
    pub from: Option<PeerUrl>,
}

/// Orphans by hash and by missing parent, evicting the oldest when full.
#[derive(Debug, Clone)]
pub struct OrphanPool {
    by_hash: HashMap<BlockHash, Orphan>,
    by_parent: HashMap<BlockHash, Vec<BlockHash>>,
    order: VecDeque<BlockHash>,
    capacity: usize,
}

impl OrphanPool {
    /// An empty pool holding at most `capacity` blocks.
    pub fn new(capacity: usize) -> Self {
        Self {
            by_hash: HashMap::new(),
            by_parent: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether the block is held.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Adds an orphan, evicting the oldest when full. Returns false for a
    /// block already held.
    pub fn insert(&mut self, block: CheckedBlock, from: Option<PeerUrl>) -> bool {
        let hash = block.hash();
        if self.by_hash.contains_key(&hash) {
            return false;
        }
        while self.by_hash.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.remove(&old);
        }
        self.by_parent
            .entry(block.header.prev_hash)
            .or_default()
            .push(hash);
        self.by_hash.insert(hash, Orphan { block, from });
        self.order.push_back(hash);
        true
    }

    /// Takes out every orphan whose parent is `parent`.
    pub fn take_children(&mut self, parent: &BlockHash) -> Vec<Orphan> {
        let Some(children) = self.by_parent.remove(parent) else {
            return Vec::new();
        };
        children
            .into_iter()
            .filter_map(|h| {
                self.order.retain(|o| *o != h);
                self.by_hash.remove(&h)
            })
            .collect()
    }

    fn remove(&mut self, hash: &BlockHash) {
        if let Some(orphan) = self.by_hash.remove(hash)
            && let Some(siblings) = self.by_parent.get_mut(&orphan.block.header.prev_hash)
        {
            siblings.retain(|h| h != hash);
            if siblings.is_empty() {
                self.by_parent.remove(&orphan.block.header.prev_hash);
            }
        }
    }

    /// Empties the pool.
    pub fn clear(&mut self) {
        self.by_hash.clear();
        self.by_parent.clear();
        self.order.clear();
    }
}
