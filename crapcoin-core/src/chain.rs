//! The block tree, fork choice and reorgs.
//!
//! [`Chain`] holds every header-valid block it has seen (bounded, see
//! [`Chain::with_limits`]), the best chain and its account [`State`]. Fork
//! choice is most cumulative work; on a tie the block seen first stays. A
//! switch to another branch rolls state back to the fork point and forward on
//! the new branch; if any block of the new branch fails, everything is rolled
//! back, that block and its descendants are remembered as invalid, and the old
//! tip stays. Every change of the best chain is returned as a [`TipChange`],
//! so callers never re-derive what happened.
//!
//! A block that lands on a side branch is state-checked at once (balances,
//! nonces) when its branch is shallow: within [`Limits::side_check_depth`]
//! blocks of the best chain, the state at the block is reached by rolling
//! back and forward over that few blocks, then everything is restored. A
//! deeper side block waits unchecked until its branch could win, as a
//! switch checks every block of the branch anyway.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::block::CheckedBlock;
use crate::hash::BlockHash;
use crate::maps::{Map, Set};
use crate::params::Params;
use crate::state::{State, Undo};
use crate::validate::{self, ValidationError};

/// What inserting a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The block was already known.
    Duplicate,
    /// Stored on a side branch that has no more work than the best chain.
    Side,
    /// The best chain changed.
    TipChanged(TipChange),
}

/// A change of the best chain: an extension (nothing disconnected) or a
/// reorg of depth `disconnected.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipChange {
    /// The tip before.
    pub old_tip: BlockHash,
    /// The tip now.
    pub new_tip: BlockHash,
    /// Height of the new tip.
    pub height: u64,
    /// Blocks taken off the best chain, old tip first.
    pub disconnected: Vec<Arc<CheckedBlock>>,
    /// Blocks put on the best chain, lowest first.
    pub connected: Vec<Arc<CheckedBlock>>,
}

impl TipChange {
    /// How many blocks were rolled back (0 for a plain extension).
    pub fn depth(&self) -> usize {
        self.disconnected.len()
    }

    /// Whether blocks were rolled back.
    pub fn is_reorg(&self) -> bool {
        !self.disconnected.is_empty()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    block: Arc<CheckedBlock>,
    /// Cumulative work from genesis, the fork-choice measure.
    work: u128,
    /// Arrival order, for first-seen ties and eviction.
    seen: u64,
    /// A boxed slice, not a vector: almost every block has one child, and
    /// every node of a simulation keeps an entry for every block (16
    /// bytes less an entry than a vector with room to spare).
    children: Box<[BlockHash]>,
}

impl Entry {
    fn add_child(&mut self, hash: BlockHash) {
        let mut children = std::mem::take(&mut self.children).into_vec();
        children.push(hash);
        self.children = children.into_boxed_slice();
    }

    fn remove_child(&mut self, hash: &BlockHash) {
        if self.children.contains(hash) {
            let mut children = std::mem::take(&mut self.children).into_vec();
            children.retain(|c| c != hash);
            self.children = children.into_boxed_slice();
        }
    }
}

/// Bounds of a [`Chain`]'s memory of blocks off the best chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Blocks kept on side branches; the oldest-seen leaf goes first.
    pub max_side_blocks: usize,
    /// Hashes remembered as invalid.
    pub max_invalid: usize,
    /// A side block is state-checked on arrival when both its branch and
    /// the best chain above the fork point are at most this many blocks
    /// long; 0 checks side blocks only when their branch could win.
    pub side_check_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_side_blocks: 20_000,
            max_invalid: 10_000,
            side_check_depth: 16,
        }
    }
}

/// The block tree with its best chain and the state at the best tip.
#[derive(Debug, Clone)]
pub struct Chain {
    params: Params,
    genesis: BlockHash,
    entries: Map<BlockHash, Entry>,
    /// Best chain: `active[h]` is the block at height `h`.
    active: Vec<BlockHash>,
    /// `undos[h - 1]` takes back `active[h]`.
    undos: Vec<Undo>,
    state: State,
    /// Side entries by arrival order.
    side: BTreeMap<u64, BlockHash>,
    invalid: Map<BlockHash, ValidationError>,
    invalid_order: VecDeque<BlockHash>,
    seq: u64,
    limits: Limits,
}

impl Chain {
    /// A chain holding only the genesis of `params`.
    pub fn new(params: Params) -> Self {
        Self::with_limits(params, Limits::default())
    }

    /// [`Chain::new`] with explicit memory bounds.
    pub fn with_limits(params: Params, limits: Limits) -> Self {
        let genesis = Arc::new(params.genesis());
        let hash = genesis.hash();
        let mut entries = Map::default();
        entries.insert(
            hash,
            Entry {
                work: genesis.header.work(),
                block: genesis,
                seen: 0,
                children: Box::default(),
            },
        );
        Self {
            params,
            genesis: hash,
            entries,
            active: vec![hash],
            undos: Vec::new(),
            state: State::new(),
            side: BTreeMap::new(),
            invalid: Map::default(),
            invalid_order: VecDeque::new(),
            seq: 1,
            limits,
        }
    }

    /// The network parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The genesis hash.
    pub fn genesis(&self) -> BlockHash {
        self.genesis
    }

    /// The best tip's hash.
    pub fn tip(&self) -> BlockHash {
        *self
            .active
            .last()
            .expect("the best chain always holds genesis")
    }

    /// The best tip's block.
    pub fn tip_block(&self) -> &Arc<CheckedBlock> {
        &self.entries[&self.tip()].block
    }

    /// Height of the best tip.
    pub fn height(&self) -> u64 {
        (self.active.len() - 1) as u64
    }

    /// Cumulative work of the best chain.
    pub fn tip_work(&self) -> u128 {
        self.entries[&self.tip()].work
    }

    /// Account state at the best tip.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// A known block by hash (best chain or side branch).
    pub fn get(&self, hash: &BlockHash) -> Option<&Arc<CheckedBlock>> {
        self.entries.get(hash).map(|e| &e.block)
    }

    /// Whether the block is known (and not invalid).
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.entries.contains_key(hash)
    }

    /// The reason a block was found invalid, if it was.
    pub fn invalid_reason(&self, hash: &BlockHash) -> Option<&ValidationError> {
        self.invalid.get(hash)
    }

    /// Whether the block is on the best chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.entries
            .get(hash)
            .is_some_and(|e| self.active.get(e.block.header.height as usize) == Some(hash))
    }

    /// The best chain's block at `height`.
    pub fn block_at(&self, height: u64) -> Option<&Arc<CheckedBlock>> {
        let hash = self.active.get(usize::try_from(height).ok()?)?;
        Some(&self.entries[hash].block)
    }

    /// Up to `limit` blocks of the best chain from height `from`; empty past
    /// the tip.
    pub fn blocks(&self, from: u64, limit: usize) -> Vec<Arc<CheckedBlock>> {
        let Ok(start) = usize::try_from(from) else {
            return Vec::new();
        };
        self.active
            .iter()
            .skip(start)
            .take(limit)
            .map(|h| self.entries[h].block.clone())
            .collect()
    }

    /// Number of blocks kept, best chain and side branches.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: genesis is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of blocks kept off the best chain.
    pub fn side_len(&self) -> usize {
        self.side.len()
    }

    /// Inserts one checked block received at `now_ms`.
    ///
    /// # Errors
    ///
    /// [`ValidationError::UnknownParent`] when the parent is missing (the
    /// caller keeps the block as an orphan); any other error means the block
    /// is invalid, and it is remembered as such unless
    /// [`ValidationError::is_transient`].
    pub fn insert(
        &mut self,
        block: impl Into<Arc<CheckedBlock>>,
        now_ms: u64,
    ) -> Result<Outcome, ValidationError> {
        let block: Arc<CheckedBlock> = block.into();
        let hash = block.hash();
        if let Some(outcome) = self.precheck(&block)? {
            return Ok(outcome);
        }
        let parent = &self.entries[&block.header.prev_hash];
        if let Err(e) =
            validate::check_header_link(&block.header, &parent.block.header, &self.params, now_ms)
        {
            self.remember_invalid(hash, &e);
            return Err(e);
        }
        let work = parent.work.saturating_add(block.header.work());
        self.add_entry(block, work);
        if work <= self.tip_work() {
            self.check_side(hash)?;
            self.evict_side();
            return Ok(Outcome::Side);
        }
        let (fork_height, branch) = self.path_from_active(hash);
        match self.connect_branch(fork_height, &branch) {
            Ok(change) => Ok(Outcome::TipChanged(change)),
            Err((index, e)) => {
                self.invalidate(branch[index].hash(), &e);
                Err(e)
            }
        }
    }

    /// Inserts a run of blocks, each the parent of the next (a page of a
    /// peer's chain), all or nothing: if any block is invalid, none is kept.
    /// Leading blocks already known are skipped.
    ///
    /// # Errors
    ///
    /// `(index, error)` of the first failing block, as for [`Chain::insert`].
    pub fn insert_segment(
        &mut self,
        blocks: Vec<impl Into<Arc<CheckedBlock>>>,
        now_ms: u64,
    ) -> Result<Outcome, (usize, ValidationError)> {
        let blocks: Vec<Arc<CheckedBlock>> = blocks.into_iter().map(Into::into).collect();
        let skip = blocks
            .iter()
            .take_while(|b| self.entries.contains_key(&b.hash()))
            .count();
        if skip == blocks.len() {
            return Ok(Outcome::Duplicate);
        }
        let blocks: Vec<Arc<CheckedBlock>> = blocks.into_iter().skip(skip).collect();
        let first = &blocks[0];
        let outcome = match self.precheck(first) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.remember_segment(&blocks, 0, &e);
                return Err((skip, e));
            }
        };
        if let Some(outcome) = outcome {
            return Ok(outcome);
        }
        let parent = &self.entries[&first.header.prev_hash];
        let mut work = parent.work;
        let mut prev = &parent.block;
        let mut failure = None;
        for (i, block) in blocks.iter().enumerate() {
            if block.header.prev_hash != prev.hash() {
                let parent = block.header.prev_hash;
                failure = Some((i, ValidationError::UnknownParent { parent }));
                break;
            }
            if let Some(e) = self.invalid.get(&block.hash()) {
                failure = Some((i, e.clone()));
                break;
            }
            if let Err(e) =
                validate::check_header_link(&block.header, &prev.header, &self.params, now_ms)
            {
                failure = Some((i, e));
                break;
            }
            work = work.saturating_add(block.header.work());
            prev = block;
        }
        if let Some((i, e)) = failure {
            self.remember_segment(&blocks, i, &e);
            return Err((skip + i, e));
        }
        if work <= self.tip_work() {
            for block in blocks {
                let work = self.entries[&block.header.prev_hash].work + block.header.work();
                self.add_entry(block, work);
            }
            self.evict_side();
            return Ok(Outcome::Side);
        }
        let (fork_height, mut branch) = self.path_from_active(blocks[0].header.prev_hash);
        let known = branch.len();
        branch.extend(blocks.iter().cloned());
        let change = match self.connect_branch(fork_height, &branch) {
            Ok(change) => change,
            Err((i, e)) if i < known => {
                // A known side block fails: forget it and what builds on
                // it, the whole segment included.
                self.invalidate(branch[i].hash(), &e);
                let ancestor = ValidationError::InvalidAncestor {
                    ancestor: blocks[0].header.prev_hash,
                };
                self.remember_segment(&blocks, 0, &ancestor);
                return Err((skip, e));
            }
            Err((i, e)) => {
                self.remember_segment(&blocks, i - known, &e);
                return Err((skip + i - known, e));
            }
        };
        // `connect_branch` already made the new blocks active; give them entries.
        for block in blocks {
            let work = self.entries[&block.header.prev_hash].work + block.header.work();
            self.add_entry(block, work);
        }
        Ok(Outcome::TipChanged(change))
    }

    /// Checks shared by both inserts: duplicates, genesis, known-invalid
    /// blocks and parents, missing parents.
    fn precheck(&mut self, block: &CheckedBlock) -> Result<Option<Outcome>, ValidationError> {
        let hash = block.hash();
        if self.entries.contains_key(&hash) {
            return Ok(Some(Outcome::Duplicate));
        }
        if block.header.height == 0 {
            return Err(ValidationError::WrongGenesis {
                got: hash,
                want: self.genesis,
            });
        }
        if let Some(e) = self.invalid.get(&hash) {
            return Err(e.clone());
        }
        let prev = block.header.prev_hash;
        if self.invalid.contains_key(&prev) {
            let e = ValidationError::InvalidAncestor { ancestor: prev };
            self.remember_invalid(hash, &e);
            return Err(e);
        }
        if !self.entries.contains_key(&prev) {
            return Err(ValidationError::UnknownParent { parent: prev });
        }
        Ok(None)
    }

    fn add_entry(&mut self, block: Arc<CheckedBlock>, work: u128) {
        let hash = block.hash();
        let prev = block.header.prev_hash;
        let seen = self.seq;
        self.seq += 1;
        if let Some(parent) = self.entries.get_mut(&prev) {
            parent.add_child(hash);
        }
        if !self.is_active_height(&block) {
            self.side.insert(seen, hash);
        }
        self.entries.insert(
            hash,
            Entry {
                block,
                work,
                seen,
                children: Box::default(),
            },
        );
    }

    fn is_active_height(&self, block: &CheckedBlock) -> bool {
        self.active.get(block.header.height as usize) == Some(&block.hash())
    }

    /// State-checks the side block `hash` when its branch is shallow enough
    /// (see [`Limits::side_check_depth`]), leaving the best chain and its
    /// state exactly as they were. A failing block of the branch is
    /// forgotten with its descendants, `hash` among them.
    fn check_side(&mut self, hash: BlockHash) -> Result<(), ValidationError> {
        let depth = self.limits.side_check_depth;
        let Some((fork_height, branch)) = self.short_path_from_active(hash, depth) else {
            return Ok(());
        };
        if self.height() - fork_height > depth as u64 {
            return Ok(());
        }
        match self.roll(fork_height, &branch) {
            Ok(disconnected) => {
                self.unroll(branch.len(), &disconnected);
                Ok(())
            }
            Err((index, e)) => {
                self.invalidate(branch[index].hash(), &e);
                Err(e)
            }
        }
    }

    /// The blocks from just above the best chain up to `hash`, lowest first,
    /// and the height of the fork point on the best chain.
    fn path_from_active(&self, hash: BlockHash) -> (u64, Vec<Arc<CheckedBlock>>) {
        self.short_path_from_active(hash, usize::MAX)
            .expect("no branch is usize::MAX blocks long")
    }

    /// [`Chain::path_from_active`] when the branch has at most `max` blocks.
    fn short_path_from_active(
        &self,
        hash: BlockHash,
        max: usize,
    ) -> Option<(u64, Vec<Arc<CheckedBlock>>)> {
        let mut branch = Vec::new();
        let mut at = hash;
        while !self.is_active(&at) {
            if branch.len() == max {
                return None;
            }
            let entry = &self.entries[&at];
            branch.push(entry.block.clone());
            at = entry.block.header.prev_hash;
        }
        branch.reverse();
        Some((self.entries[&at].block.header.height, branch))
    }

    /// Rolls the best chain back to `fork_height` and forward over `branch`.
    /// On failure at `branch[i]`, restores the old best chain exactly and
    /// returns `i`.
    fn connect_branch(
        &mut self,
        fork_height: u64,
        branch: &[Arc<CheckedBlock>],
    ) -> Result<TipChange, (usize, ValidationError)> {
        let old_tip = self.tip();
        let disconnected = self.roll(fork_height, branch)?;
        for block in branch {
            if let Some(entry) = self.entries.get(&block.hash()) {
                self.side.remove(&entry.seen);
            }
        }
        for block in &disconnected {
            let seen = self.entries[&block.hash()].seen;
            self.side.insert(seen, block.hash());
        }
        self.evict_side();
        Ok(TipChange {
            old_tip,
            new_tip: self.tip(),
            height: self.height(),
            disconnected,
            connected: branch.to_vec(),
        })
    }

    /// Moves the best chain and its state (not the side bookkeeping) back
    /// to `fork_height` and forward over `branch`, returning the blocks
    /// taken off, tip first. On failure at `branch[i]`, restores the old
    /// best chain exactly and returns `i`.
    fn roll(
        &mut self,
        fork_height: u64,
        branch: &[Arc<CheckedBlock>],
    ) -> Result<Vec<Arc<CheckedBlock>>, (usize, ValidationError)> {
        let mut disconnected = Vec::new();
        while self.height() > fork_height {
            let hash = self.active.pop().expect("height > fork >= 0");
            let undo = self.undos.pop().expect("one undo per non-genesis block");
            self.state.undo(undo);
            disconnected.push(self.entries[&hash].block.clone());
        }
        let reward = self.params.block_reward;
        for (i, block) in branch.iter().enumerate() {
            match self.state.apply(block, reward) {
                Ok(undo) => {
                    self.undos.push(undo);
                    self.active.push(block.hash());
                }
                Err(e) => {
                    self.unroll(i, &disconnected);
                    return Err((i, e));
                }
            }
        }
        Ok(disconnected)
    }

    /// Takes back a [`Chain::roll`]: the top `applied` blocks off, then
    /// `disconnected` (tip first) back on.
    fn unroll(&mut self, applied: usize, disconnected: &[Arc<CheckedBlock>]) {
        for _ in 0..applied {
            self.active.pop();
            let undo = self.undos.pop().expect("applied by roll");
            self.state.undo(undo);
        }
        let reward = self.params.block_reward;
        for block in disconnected.iter().rev() {
            let undo = self
                .state
                .apply(block, reward)
                .expect("a block that was on the best chain re-applies");
            self.undos.push(undo);
            self.active.push(block.hash());
        }
    }

    /// Remembers `blocks[from]` as invalid for `e` (unless `e` is
    /// transient) and every later block of the run that builds on it as
    /// having an invalid ancestor, as [`Chain::insert`] would.
    fn remember_segment(&mut self, blocks: &[Arc<CheckedBlock>], from: usize, e: &ValidationError) {
        if e.is_transient() {
            return;
        }
        self.remember_invalid(blocks[from].hash(), e);
        for pair in blocks[from..].windows(2) {
            if pair[1].header.prev_hash != pair[0].hash() {
                break;
            }
            let e = ValidationError::InvalidAncestor {
                ancestor: pair[0].hash(),
            };
            self.remember_invalid(pair[1].hash(), &e);
        }
    }

    /// Forgets `hash` and every descendant, remembering them as invalid.
    fn invalidate(&mut self, hash: BlockHash, e: &ValidationError) {
        self.remember_invalid(hash, e);
        let mut queue = vec![hash];
        while let Some(h) = queue.pop() {
            let Some(entry) = self.entries.remove(&h) else {
                continue;
            };
            self.side.remove(&entry.seen);
            if let Some(parent) = self.entries.get_mut(&entry.block.header.prev_hash) {
                parent.remove_child(&h);
            }
            for child in entry.children {
                self.remember_invalid(child, &ValidationError::InvalidAncestor { ancestor: h });
                queue.push(child);
            }
        }
    }

    fn remember_invalid(&mut self, hash: BlockHash, e: &ValidationError) {
        if e.is_transient() || self.invalid.contains_key(&hash) {
            return;
        }
        if self.invalid_order.len() >= self.limits.max_invalid
            && let Some(old) = self.invalid_order.pop_front()
        {
            self.invalid.remove(&old);
        }
        self.invalid.insert(hash, e.clone());
        self.invalid_order.push_back(hash);
    }

    /// Drops the oldest-seen side leaves until the side bound holds. Leaves
    /// only, so no kept block ever loses its parent.
    fn evict_side(&mut self) {
        while self.side.len() > self.limits.max_side_blocks {
            let victim = self
                .side
                .iter()
                .find(|(_, h)| self.entries[*h].children.is_empty())
                .map(|(seen, h)| (*seen, *h));
            let Some((seen, hash)) = victim else { return };
            self.side.remove(&seen);
            if let Some(entry) = self.entries.remove(&hash)
                && let Some(parent) = self.entries.get_mut(&entry.block.header.prev_hash)
            {
                parent.remove_child(&hash);
            }
        }
    }

    /// Hashes of the best chain's last `n` blocks, tip first (for quick
    /// "do we share a recent chain" checks).
    pub fn recent(&self, n: usize) -> Vec<BlockHash> {
        self.active.iter().rev().take(n).copied().collect()
    }

    /// Every block kept, for persistence: parents before children.
    pub fn all_blocks(&self) -> Vec<Arc<CheckedBlock>> {
        let mut out: Vec<&Entry> = self.entries.values().collect();
        out.sort_by_key(|e| (e.block.header.height, e.seen));
        out.into_iter().map(|e| e.block.clone()).collect()
    }

    /// Hashes known to be invalid (bounded).
    pub fn invalid_hashes(&self) -> Set<BlockHash> {
        self.invalid.keys().copied().collect()
    }
}
