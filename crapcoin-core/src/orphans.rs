//! A bounded pool of blocks whose parent has not arrived yet.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::block::CheckedBlock;
use crate::hash::BlockHash;
use crate::maps::Map;
use crate::wire::PeerUrl;

/// An orphan and who sent it (whom to ask for its ancestors).
#[derive(Debug, Clone)]
pub struct Orphan {
    /// The block, checked on its own (so junk never takes a slot); shared
    /// with whoever else holds it.
    pub block: Arc<CheckedBlock>,
    /// The peer that sent it.
    pub from: Option<PeerUrl>,
}

/// Orphans by hash and by missing parent, evicting the oldest when full.
///
/// A full pool makes room by sender: a sender holding its share (a
/// quarter of the pool, [`OrphanPool::per_sender`]) or more evicts its own
/// oldest orphan; anyone else evicts the oldest orphan of the sender
/// holding the most. A lone sender may still fill the pool (a node far
/// behind one peer), but a peer flooding orphans with valid work (cheap at
/// a low difficulty) only churns its own orphans and cannot evict those
/// others sent, which honest nodes need when gossip arrives out of order.
/// Blocks from unnamed callers count as one sender.
#[derive(Debug, Clone)]
pub struct OrphanPool {
    by_hash: Map<BlockHash, Orphan>,
    by_parent: Map<BlockHash, Vec<BlockHash>>,
    order: VecDeque<BlockHash>,
    per_sender: Map<Option<PeerUrl>, usize>,
    capacity: usize,
}

impl OrphanPool {
    /// An empty pool holding at most `capacity` blocks.
    pub fn new(capacity: usize) -> Self {
        Self {
            by_hash: Map::default(),
            by_parent: Map::default(),
            order: VecDeque::new(),
            per_sender: Map::default(),
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

    /// Adds an orphan; when full, first evicts as the type docs say.
    /// Returns false for a block already held.
    pub fn insert(&mut self, block: impl Into<Arc<CheckedBlock>>, from: Option<PeerUrl>) -> bool {
        let block: Arc<CheckedBlock> = block.into();
        let hash = block.hash();
        if self.by_hash.contains_key(&hash) {
            return false;
        }
        while self.by_hash.len() >= self.capacity {
            let evict_from = if self.held_from(from.as_ref()) >= self.per_sender() {
                from.clone()
            } else {
                self.per_sender
                    .iter()
                    .max_by_key(|(_, held)| **held)
                    .and_then(|(sender, _)| sender.clone())
            };
            let oldest = self
                .order
                .iter()
                .position(|h| self.by_hash.get(h).is_some_and(|o| o.from == evict_from))
                .unwrap_or(0);
            let Some(old) = self.order.remove(oldest) else {
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
