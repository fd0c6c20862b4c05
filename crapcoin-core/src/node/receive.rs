//! Blocks coming in: from peers, from our own miner, from a sync, from the
//! store on start. One path for all of them: validate, insert (orphans wait
//! for their parent), update mempool and waiters, store before answering,
//! then tell observers and relay.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::{Inner, LaunchError, Mined, Shared};
use crate::block::{Block, CheckedBlock};
use crate::chain::{Outcome, TipChange};
use crate::hash::BlockHash;
use crate::intern;
use crate::invalid::ValidationError;
use crate::observer::Event;
use crate::wire::{BlockAck, Outgoing, PeerUrl};

/// Where a block came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Our own miner (or a behaviour releasing a block as if mined).
    Mined,
    /// A peer, or an unnamed caller.
    Peer(Option<PeerUrl>),
}

impl Origin {
    fn peer(&self) -> Option<PeerUrl> {
        match self {
            Self::Mined => None,
            Self::Peer(p) => p.clone(),
        }
    }
}

/// What [`Inner::decide_unordered`] made of a block.
enum Decided {
    /// Answered without the write order.
    Done(Result<BlockAck, ValidationError>),
    /// Joins the block tree: take the ordered path.
    Ordered(Arc<CheckedBlock>),
}

/// What a locked insertion decided that must happen after the lock.
#[derive(Default)]
struct Effects {
    events: Vec<Event>,
    store: Vec<Arc<CheckedBlock>>,
    relay: Vec<(Arc<CheckedBlock>, Option<PeerUrl>)>,
    fetch_from: Option<PeerUrl>,
    strikes: Vec<PeerUrl>,
    included: Vec<(Vec<oneshot::Sender<Mined>>, Mined)>,
    tip_changed: bool,
}

impl Inner {
    /// Inserts one checked block and then every orphan it unblocks.
    fn insert_with_orphans(
        &mut self,
        block: Arc<CheckedBlock>,
        from: Option<PeerUrl>,
        now: u64,
        fx: &mut Effects,
    ) -> Result<BlockAck, ValidationError> {
        let hash = block.hash();
        let ack = self.insert_one(block, from, now, fx)?;
        if ack == BlockAck::Accepted {
            let mut queue = vec![hash];
            while let Some(parent) = queue.pop() {
                for orphan in self.orphans.take_children(&parent) {
                    let child = orphan.block.hash();
                    if let Ok(BlockAck::Accepted) =
                        self.insert_one(orphan.block, orphan.from, now, fx)
                    {
                        queue.push(child);
                    }
                }
            }
        }
        Ok(ack)
    }

    fn insert_one(
        &mut self,
        block: Arc<CheckedBlock>,
        from: Option<PeerUrl>,
        now: u64,
        fx: &mut Effects,
    ) -> Result<BlockAck, ValidationError> {
        let hash = block.hash();
        let height = block.header.height;
        let parent = block.header.prev_hash;
        if height > 0
            && !self.chain.contains(&parent)
            && self.chain.invalid_reason(&parent).is_none()
            && !self.chain.contains(&hash)
        {
            return Ok(self.pool_orphan(block, from, fx));
        }
        match self.chain.insert(block, now) {
            Ok(Outcome::Duplicate) => Ok(BlockAck::Duplicate),
            Ok(Outcome::Side) => {
                let block = self.chain.get(&hash).cloned().expect("just inserted");
                fx.events.push(Event::BlockAccepted {
                    hash,
                    height,
                    parent: block.header.prev_hash,
                    from: from.clone(),
                    best: false,
                });
                // Not relayed: a side block on a branch deeper than
                // `Limits::side_check_depth` has passed no state checks
                // (balances, nonces are checked only when such a branch is
                // connected), so it may be invalid, and peers rightly
                // strike whoever sends them invalid blocks. Only blocks
                // that joined our best chain, fully validated, go on.
                fx.store.push(block);
                Ok(BlockAck::Accepted)
            }
            Ok(Outcome::TipChanged(change)) => {
                let block = self.chain.get(&hash).cloned().expect("just inserted");
                fx.events.push(Event::BlockAccepted {
                    hash,
                    height,
                    parent: block.header.prev_hash,
                    from: from.clone(),
                    best: true,
                });
                fx.store.push(block.clone());
                fx.relay.push((block, from));
                self.on_tip_change(change, fx);
                Ok(BlockAck::Accepted)
            }
            Err(e) => {
                fx.events.push(Event::BlockRejected {
                    hash: Some(hash),
                    reason: e.clone(),
                    from: from.clone(),
                });
                if !e.is_transient()
                    && let Some(peer) = from
                {
                    fx.strikes.push(peer);
                }
                Err(e)
            }
        }
    }

    /// What a block already known by its hash gets, without any check of
    /// its contents: `tx_root` in the header commits to the transaction,
    /// so a block with a known header hash is either the block we hold
    /// (or found invalid) or a tampered copy that cannot be valid either.
    fn known(&self, hash: &BlockHash) -> Option<Result<BlockAck, ValidationError>> {
        // The tip first: most copies a node receives are of the block it
        // just took as its tip, and the tip is one read where the table
        // of blocks is two far apart (BENCHMARKS.md, issue 14).
        if *hash == self.chain.tip() || self.chain.contains(hash) || self.orphans.contains(hash) {
            return Some(Ok(BlockAck::Duplicate));
        }
        self.chain.invalid_reason(hash).cloned().map(Err)
    }

    /// Whether the block is an orphan here: not the genesis, and its
    /// parent neither held nor known to be invalid.
    fn lacks_parent(&self, block: &Block) -> bool {
        let parent = &block.header.prev_hash;
        block.header.height > 0
            && !self.chain.contains(parent)
            && self.chain.invalid_reason(parent).is_none()
    }

    /// Decides a block without the write-order lock when nothing of it
    /// will be stored: a duplicate, a block known to be invalid, or an
    /// orphan (which waits in the pool, not in the store). Hands the
    /// block back when it needs the ordered path.
    ///
    /// Sound under the node lock alone: a parent's insertion takes its
    /// waiting children in the same lock hold, so an orphan pooled here
    /// is either pooled before its parent arrives (and taken with it) or
    /// sees the parent and goes the ordered way.
    fn decide_unordered(
        &mut self,
        block: Arc<CheckedBlock>,
        from: Option<&PeerUrl>,
        fx: &mut Effects,
    ) -> Decided {
        let hash = block.hash();
        if let Some(known) = self.known(&hash) {
            if let Err(e) = &known {
                fx.events.push(Event::BlockRejected {
                    hash: Some(hash),
                    reason: e.clone(),
                    from: from.cloned(),
                });
                if !e.is_transient()
                    && let Some(peer) = from
                {
                    fx.strikes.push(peer.clone());
                }
            }
            return Decided::Done(known);
        }
        if self.lacks_parent(block.block()) {
            return Decided::Done(Ok(self.pool_orphan(block, from.cloned(), fx)));
        }
        Decided::Ordered(block)
    }

    /// Puts a block whose parent is unknown into the orphan pool and asks
    /// its sender for the ancestors.
    fn pool_orphan(
        &mut self,
        block: Arc<CheckedBlock>,
        from: Option<PeerUrl>,
        fx: &mut Effects,
    ) -> BlockAck {
        let hash = block.hash();
        if self.orphans.contains(&hash) {
            return BlockAck::Duplicate;
        }
        let parent = block.header.prev_hash;
        self.orphans.insert(block, from.clone());
        fx.events.push(Event::BlockOrphaned {
            hash,
            parent,
            from: from.clone(),
        });
        fx.fetch_from = from.or(fx.fetch_from.take());
        BlockAck::Orphan
    }

    /// Mempool, waiters and events after the best chain changed.
    fn on_tip_change(&mut self, change: TipChange, fx: &mut Effects) {
        fx.tip_changed = true;
        if change.is_reorg() {
            fx.events.push(Event::Reorg {
                old_tip: change.old_tip,
                new_tip: change.new_tip,
                depth: change.depth(),
                height: change.height,
            });
        }
        for block in &change.connected {
            let Some(tx) = &block.tx else { continue };
            let txid = tx.id();
            self.mempool.remove(&txid);
            if let Some(waiters) = self.tracked.remove(&txid) {
                let mined = Mined {
                    hash: block.hash(),
                    height: block.header.height,
                };
                fx.events.push(Event::TransferIncluded {
                    txid,
                    block: mined.hash,
                    height: mined.height,
                });
                fx.included.push((waiters, mined));
            }
        }
        // Transfers of the abandoned branch go back to the mempool when
        // still valid on the new chain; they will be mined again.
        for block in change.disconnected.iter().rev() {
            let Some(tx) = &block.tx else { continue };
            let state = self.chain.state();
            if tx.nonce >= state.account(&tx.from).nonce
                && let Ok(txid) = self.mempool.reinsert(tx.clone())
            {
                self.tracked.entry(txid).or_default();
            }
        }
        // Only the connected blocks' senders have new nonces.
        let senders: Vec<_> = change
            .connected
            .iter()
            .filter_map(|block| block.tx.as_ref().map(|tx| tx.from))
            .collect();
        self.mempool.prune_senders(self.chain.state(), &senders);
        let mempool = &self.mempool;
        self.tracked.retain(|txid, _| mempool.contains(txid));
    }
}

impl Shared {
    /// Reports a refused block to observers.
    pub(crate) fn rejected(
        &self,
        hash: Option<BlockHash>,
        e: &ValidationError,
        from: Option<&PeerUrl>,
    ) {
        self.emit(&Event::BlockRejected {
            hash,
            reason: e.clone(),
            from: from.cloned(),
        });
    }

    /// Whether pushes from `from` are ignored unread: it is banned (it was
    /// dropped for sending invalid data). Counts the ignored push.
    pub(crate) fn ignores(&self, from: Option<&PeerUrl>) -> bool {
        let Some(peer) = from else { return false };
        let banned = self.lock().peers.is_banned(peer);
        if banned {
            self.ignored_from_banned.fetch_add(1, Ordering::Relaxed);
        }
        banned
    }

    /// A block from a peer: ignored if the peer is banned; then the
    /// behaviour's say, an answer from the hash alone for blocks already
    /// known (before any signature is checked), ignored if it is an orphan
    /// past its named sender's orphan rate (also before any signature is
    /// checked: [`super::Config::orphan_rate`]), the context-free checks
    /// (skipped for a block equal to one another node of this process
    /// checked and still holds: [`crate::intern`] hands back that very
    /// allocation), then [`Shared::accept`].
    pub(crate) async fn receive(
        self: &Arc<Self>,
        block: Block,
        from: Option<PeerUrl>,
    ) -> Result<BlockAck, ValidationError> {
        if self.ignores(from.as_ref()) {
            return Ok(BlockAck::Ignored);
        }
        let Some(block) = self.behaviour.incoming(&self.ctx(), block, from.as_ref()) else {
            return Ok(BlockAck::Ignored);
        };
        let hash = block.hash();
        let known = {
            let mut inner = self.lock();
            let known = inner.known(&hash);
            if known.is_none()
                && let Some(peer) = &from
                && inner.lacks_parent(&block)
                && !inner.peers.take_orphan(peer, self.config.orphan_rate)
            {
                drop(inner);
                tracing::debug!(node = %self.config.name, %peer, %hash, "orphan over its sender's rate ignored");
                return Ok(BlockAck::Ignored);
            }
            known
        };
        if let Some(known) = known {
            if let Err(e) = &known {
                self.rejected(Some(hash), e, from.as_ref());
                if !e.is_transient()
                    && let Some(peer) = &from
                {
                    Box::pin(self.strike(peer)).await;
                }
            }
            return known;
        }
        // Boxed: most blocks a node receives are copies answered above, and
        // this future (checks, insertion, store, relay) is many times the
        // size of the rest, which every copy would otherwise allocate and
        // move (BENCHMARKS.md, issue 14).
        Box::pin(self.receive_new(block, hash, from)).await
    }

    /// [`Shared::receive`] of a block not known here by its hash.
    async fn receive_new(
        self: &Arc<Self>,
        block: Block,
        hash: BlockHash,
        from: Option<PeerUrl>,
    ) -> Result<BlockAck, ValidationError> {
        let checked = match intern::check(block, &self.params, &self.chain_id) {
            Ok(checked) => checked,
            Err(e) => {
                self.rejected(Some(hash), &e, from.as_ref());
                if let Some(peer) = &from {
                    self.strike(peer).await;
                }
                return Err(e);
            }
        };
        let ack = self
            .accept(checked.clone(), Origin::Peer(from.clone()))
            .await;
        if let Ok(BlockAck::Accepted) = ack {
            let actions = self
                .behaviour
                .accepted(&self.ctx(), checked.block(), from.as_ref());
            if !actions.is_empty() {
                self.act(actions).await;
            }
        }
        ack
    }

    /// Inserts a checked block, stores what it added, then answers.
    ///
    /// Duplicates, blocks known to be invalid and orphans are decided
    /// under the node lock alone; only blocks that join the block tree
    /// (and must reach the store in order) queue for the write-order
    /// lock. A flood of orphans and copies thus never delays a new block.
    pub(crate) async fn accept(
        self: &Arc<Self>,
        block: Arc<CheckedBlock>,
        origin: Origin,
    ) -> Result<BlockAck, ValidationError> {
        let mut fx = Effects::default();
        let from = origin.peer();
        let decided = self.lock().decide_unordered(block, from.as_ref(), &mut fx);
        let block = match decided {
            Decided::Done(result) => {
                self.finish(fx, None, &origin).await;
                return result;
            }
            Decided::Ordered(block) => block,
        };
        let order = self.write_order.lock().await;
        let result = self
            .lock()
            .insert_with_orphans(block, from, self.clock.now_ms(), &mut fx);
        self.finish(fx, Some(order), &origin).await;
        result
    }

    /// Inserts a run of blocks from a sync, all or nothing.
    pub(crate) async fn accept_segment(
        self: &Arc<Self>,
        blocks: Vec<Arc<CheckedBlock>>,
        from: &PeerUrl,
    ) -> Result<(), ValidationError> {
        let mut fx = Effects::default();
        let order = self.write_order.lock().await;
        let hashes: Vec<BlockHash> = blocks.iter().map(|b| b.hash()).collect();
        let result = {
            let mut inner = self.lock();
            // A sync's page may start with blocks this node has: they are
            // neither accepted again nor stored again.
            let known: Vec<bool> = hashes
                .iter()
                .map(|h| inner.chain.get(h).is_some())
                .collect();
            match inner.chain.insert_segment(blocks, self.clock.now_ms()) {
                Ok(Outcome::Duplicate) => Ok(()),
                Ok(outcome) => {
                    for (hash, _) in hashes.iter().zip(&known).filter(|(_, known)| !**known) {
                        if let Some(block) = inner.chain.get(hash).cloned() {
                            fx.events.push(Event::BlockAccepted {
                                hash: *hash,
                                height: block.header.height,
                                parent: block.header.prev_hash,
                                from: Some(from.clone()),
                                best: inner.chain.is_active(hash),
                            });
                            fx.store.push(block);
                        }
                    }
                    if let Outcome::TipChanged(change) = outcome {
                        inner.on_tip_change(change, &mut fx);
                    }
                    // Orphans waiting on any of these blocks can go in now.
                    let now = self.clock.now_ms();
                    for hash in &hashes {
                        for orphan in inner.orphans.take_children(hash) {
                            let _ =
                                inner.insert_with_orphans(orphan.block, orphan.from, now, &mut fx);
                        }
                    }
                    Ok(())
                }
                Err((index, e)) => {
                    fx.events.push(Event::BlockRejected {
                        hash: hashes.get(index).copied(),
                        reason: e.clone(),
                        from: Some(from.clone()),
                    });
                    if !e.is_transient() {
                        fx.strikes.push(from.clone());
                    }
                    Err(e)
                }
            }
        };
        self.finish(fx, Some(order), &Origin::Peer(None)).await;
        result
    }

    /// Everything after the locked insertion: store (still in write order),
    /// wake the miner, answer waiters, tell observers, punish, relay, fetch.
    async fn finish(
        self: &Arc<Self>,
        fx: Effects,
        order: Option<tokio::sync::MutexGuard<'_, ()>>,
        origin: &Origin,
    ) {
        // Relaying and the miner's new work need nothing from the store:
        // they go first, so a block crosses a node in the time of its
        // checks (the ordered store write and the acknowledgements of
        // included transfers follow).
        if !fx.relay.is_empty() {
            let peers = self.lock().peers.sorted();
            let ctx = self.ctx();
            for (block, from) in &fx.relay {
                let messages: Vec<Outgoing> = if *origin == Origin::Mined {
                    self.behaviour.publish(&ctx, block.block(), &peers)
                } else {
                    let others: Vec<PeerUrl> = peers
                        .iter()
                        .filter(|p| Some(*p) != from.as_ref())
                        .cloned()
                        .collect();
                    self.behaviour.relay(&ctx, block.block(), &others)
                };
                self.send(messages);
            }
        }
        if fx.tip_changed {
            self.tip_version.fetch_add(1, Ordering::SeqCst);
            self.mine_wake.notify_one();
        }
        if !fx.store.is_empty()
            && let Err(e) = self.store.save_blocks(&fx.store).await
        {
            tracing::error!(node = %self.config.name, error = %e, "storing blocks failed");
        }
        drop(order);
        for (waiters, mined) in fx.included {
            for waiter in waiters {
                let _ = waiter.send(mined);
            }
        }
        self.emit_all(fx.events);
        for peer in fx.strikes {
            self.strike(&peer).await;
        }
        if let Some(peer) = fx.fetch_from {
            self.sync_for_orphan(peer);
        }
    }

    /// Rebuilds chain and peers from the store (trusting nothing: blocks are
    /// checked again, signatures in one batch, except those equal in full
    /// to a block this process checked and still holds, see
    /// [`crate::intern`]).
    pub(crate) async fn restore(&self) -> Result<Vec<crate::network::AckedTransfer>, LaunchError> {
        let snapshot = self.store.load().await?;
        let mut blocks = snapshot.blocks;
        blocks.retain(|b| b.header.height > 0);
        blocks.sort_by_key(|b| b.header.height);
        let heights: Vec<u64> = blocks.iter().map(|b| b.header.height).collect();
        let checked = intern::check_batch_naming(blocks, &self.params, &self.chain_id).map_err(
            |(i, _, reason)| LaunchError::CorruptStore {
                height: heights[i],
                reason,
            },
        )?;
        let mut inner = self.lock();
        for peer in snapshot.peers {
            if peer != self.config.url {
                inner.peers.insert(peer);
            }
        }
        for block in checked {
            let height = block.header.height;
            // Our own blocks were time-checked on arrival: trust the clock.
            match inner.chain.insert(block, u64::MAX) {
                Ok(_) | Err(ValidationError::UnknownParent { .. }) => {}
                Err(reason) => return Err(LaunchError::CorruptStore { height, reason }),
            }
        }
        Ok(snapshot.transfers)
    }

    /// Forgets the chain and stored blocks (a behaviour's wipe).
    pub(crate) async fn wipe(&self) {
        let _order = self.write_order.lock().await;
        {
            let mut inner = self.lock();
            inner.chain = crate::chain::Chain::with_limits(self.params.clone(), self.config.limits);
            inner.mempool.clear();
            inner.orphans.clear();
            inner.tracked.clear();
        }
        if let Err(e) = self.store.clear_blocks().await {
            tracing::error!(node = %self.config.name, error = %e, "wiping the store failed");
        }
        self.tip_version.fetch_add(1, Ordering::SeqCst);
    }
}
