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
///
/// One sender may hold at most a quarter of the pool
/// ([`OrphanPool::per_sender`]): past that, its own oldest orphan makes
/// room. A peer flooding orphans with valid work (cheap at a low
/// difficulty) thus churns its own share and cannot evict the orphans
/// others sent, which honest nodes need when gossip arrives out of order.
/// Blocks from unnamed callers share one sender's share.
#[derive(Debug, Clone)]
pub struct OrphanPool {
    by_hash: HashMap<BlockHash, Orphan>,
    by_parent: HashMap<BlockHash, Vec<BlockHash>>,
    order: VecDeque<BlockHash>,
    per_sender: HashMap<Option<PeerUrl>, usize>,
    capacity: usize,
}

impl OrphanPool {
    /// An empty pool holding at most `capacity` blocks.
    pub fn new(capacity: usize) -> Self {
        Self {
            by_hash: HashMap::new(),
            by_parent: HashMap::new(),
            order: VecDeque::new(),
            per_sender: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Most orphans one sender may hold: a quarter of the pool, at least 1.
    pub fn per_sender(&self) -> usize {
        (self.capacity / 4).max(1)
    }

    /// Orphans held that `from` sent.
    pub fn held_from(&self, from: Option<&PeerUrl>) -> usize {
        self.per_sender.get(&from.cloned()).copied().unwrap_or(0)
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

    /// Adds an orphan, evicting the sender's own oldest when it holds its
    /// share already, else the oldest of all when full. Returns false for
    /// a block already held.
    pub fn insert(&mut self, block: CheckedBlock, from: Option<PeerUrl>) -> bool {
        let hash = block.hash();
        if self.by_hash.contains_key(&hash) {
            return false;
        }
        if self.held_from(from.as_ref()) >= self.per_sender() {
            let oldest = self
                .order
                .iter()
                .position(|h| self.by_hash.get(h).is_some_and(|o| o.from == from));
            if let Some(i) = oldest
                && let Some(old) = self.order.remove(i)
            {
                self.remove(&old);
            }
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
        *self.per_sender.entry(from.clone()).or_default() += 1;
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
                let orphan = self.by_hash.remove(&h)?;
                self.uncount(&orphan.from);
                Some(orphan)
            })
            .collect()
    }

    fn uncount(&mut self, from: &Option<PeerUrl>) {
        if let Some(n) = self.per_sender.get_mut(from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_sender.remove(from);
            }
        }
    }

    /// Removes a block already taken out of `order`.
    fn remove(&mut self, hash: &BlockHash) {
        let Some(orphan) = self.by_hash.remove(hash) else {
            return;
        };
        self.uncount(&orphan.from);
        let parent = orphan.block.header.prev_hash;
        if let Some(siblings) = self.by_parent.get_mut(&parent) {
            siblings.retain(|h| h != hash);
            if siblings.is_empty() {
                self.by_parent.remove(&parent);
            }
        }
    }

    /// Empties the pool.
    pub fn clear(&mut self) {
        self.by_hash.clear();
        self.by_parent.clear();
        self.order.clear();
        self.per_sender.clear();
    }
}
