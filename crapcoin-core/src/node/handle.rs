//! [`Handle`]: what a transport or a test calls on a running node.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use super::{Config, Shared, TxError};
use crate::block::{Block, BlockJson};
use crate::chain::Chain;
use crate::hash::{Address, BlockHash, TxId};
use crate::invalid::ValidationError;
use crate::observer::Event;
use crate::params::Params;
use crate::state::Account;
use crate::tx::Transaction;
use crate::wire::{BlockAck, PeerError, PeerUrl, Status, TxAck};

/// Longest queue of coinbase-only mining requests.
const MAX_MINE_JOBS: usize = 64;

/// A block this node mined (or that included the transfer waited for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Mined {
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
}

/// Block production as one node sees it ([`Handle::mining_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MiningStats {
    /// Its hash power share, when it mines on a schedule.
    pub hash_share: Option<f64>,
    /// Blocks its miner found since it started.
    pub mined: u64,
    /// Blocks of its best chain (genesis not counted) that it mined.
    pub mined_on_best_chain: u64,
    /// Blocks in its block tree (genesis not counted): the best chain and
    /// every side branch it kept.
    pub known: u64,
    /// Blocks on its best chain (genesis not counted): its height.
    pub on_best_chain: u64,
    /// Blocks it knows that are not on its best chain, over blocks it
    /// knows: the network's stale rate as this node saw it (0 when it knows
    /// none).
    pub stale_rate: f64,
    /// Transactions it did not relay because its relay queue was full.
    pub dropped_tx_relays: u64,
}

/// A running node. Cheap to clone; every clone drives the same node. Call
/// [`Handle::shutdown`] once to stop it and wait for its tasks.
#[derive(Clone)]
#[must_use = "a node runs until Handle::shutdown is awaited"]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.shared.config.name)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// The node's wallet address.
    pub fn address(&self) -> Address {
        self.shared.wallet.address()
    }

    /// Where the node is reached.
    pub fn url(&self) -> &PeerUrl {
        &self.shared.config.url
    }

    /// Network parameters.
    pub fn params(&self) -> &Params {
        &self.shared.params
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The behaviour's name.
    pub fn behaviour_name(&self) -> String {
        self.shared.behaviour.name()
    }

    /// Pauses (`false`) or resumes (`true`) auto mode: while paused it
    /// makes no transfer and mines nothing of its own accord; blocks for
    /// transfers already accepted are still mined. Returns whether auto
    /// mode is now on, which it never is when the node was launched
    /// without [`Config::auto`].
    pub fn set_auto(&self, on: bool) -> bool {
        let on = on && self.shared.config.auto.is_some();
        self.shared.auto_on.store(on, Ordering::Relaxed);
        on
    }

    /// Whether auto mode is running (configured and not paused).
    pub fn auto_on(&self) -> bool {
        self.shared.auto_on.load(Ordering::Relaxed)
    }

    /// Whether the start-up sync from every known peer has run (a node
    /// with no peer is caught up at once). Until then the node's wallet
    /// signs nothing: [`Handle::transfer`] and [`Handle::submit_transfer`]
    /// wait for it (at most [`Config::confirm_timeout`], then
    /// [`TxError::CatchingUp`]), and auto mode skips its turns.
    pub fn caught_up(&self) -> bool {
        *self.shared.caught_up.borrow()
    }

    /// The node's own status (never altered by the behaviour).
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// The status as served to peers: after the behaviour's delay, as the
    /// behaviour answers it.
    pub async fn serve_status(&self) -> Status {
        self.serve_delay().await;
        self.shared
            .behaviour
            .serve_status(&self.shared.ctx(), self.status())
    }

    /// Height of the best chain.
    pub fn height(&self) -> u64 {
        self.shared.lock().chain.height()
    }

    /// The best tip.
    pub fn tip(&self) -> BlockHash {
        self.shared.lock().chain.tip()
    }

    /// An account on the best chain.
    pub fn balance(&self, address: &Address) -> Account {
        self.shared.lock().chain.state().account(address)
    }

    /// Reads the chain under the node's lock (keep `f` short).
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain) -> R) -> R {
        f(&self.shared.lock().chain)
    }

    /// Transactions waiting to be mined.
    pub fn mempool_len(&self) -> usize {
        self.shared.lock().mempool.len()
    }

    /// The transactions waiting to be mined, in no order (a copy).
    pub fn mempool(&self) -> Vec<Transaction> {
        self.shared.lock().mempool.iter().cloned().collect()
    }

    /// The node's network faults: switch them to make peers unreachable,
    /// delay or lose calls, or skew the node's clock ([`crate::faults`]).
    pub fn faults(&self) -> &crate::faults::NetFaults {
        &self.shared.faults
    }

    /// Blocks waiting for their parent.
    pub fn orphan_count(&self) -> usize {
        self.shared.lock().orphans.len()
    }

    /// Gossip messages dropped because the outbox was full.
    pub fn dropped_sends(&self) -> u64 {
        self.shared.dropped_sends.load(Ordering::Relaxed)
    }

    /// Blocks pushed by banned peers and ignored unread (answered
    /// [`BlockAck::Ignored`]).
    pub fn ignored_from_banned(&self) -> u64 {
        self.shared.ignored_from_banned.load(Ordering::Relaxed)
    }

    /// Reports an event to the observers (transports report served
    /// requests this way).
    pub fn emit(&self, event: Event) {
        self.shared.emit(&event);
    }

    async fn serve_delay(&self) {
        let delay = self.shared.behaviour.serve_delay(&self.shared.ctx());
        if !delay.is_zero() {
            self.shared.clock.sleep(delay).await;
        }
    }

    /// A block pushed by a peer (or anyone): validated, stored before this
    /// returns `Accepted`, relayed to other peers. `from` is where to fetch
    /// missing ancestors. A push from a banned peer is answered
    /// [`BlockAck::Ignored`] without being read; a block already known by
    /// its hash is answered `Duplicate` before its signature is checked.
    ///
    /// # Errors
    ///
    /// The [`ValidationError`] that refused the block.
    pub async fn receive_block(
        &self,
        block: Block,
        from: Option<PeerUrl>,
    ) -> Result<BlockAck, ValidationError> {
        self.shared.receive(block, from).await
    }

    /// [`Handle::receive_block`] from JSON bytes (size-capped, hash checked).
    /// Bytes that are not a block count as invalid data from `from`.
    ///
    /// # Errors
    ///
    /// As [`BlockJson::parse`] and [`Handle::receive_block`].
    pub async fn receive_block_json(
        &self,
        bytes: &[u8],
        from: Option<PeerUrl>,
    ) -> Result<BlockAck, ValidationError> {
        if self.shared.ignores(from.as_ref()) {
            return Ok(BlockAck::Ignored);
        }
        match BlockJson::parse(bytes) {
            Ok(block) => self.receive_block(block, from).await,
            Err(e) => {
                self.shared.rejected(None, &e, from.as_ref());
                // Garbage is invalid data like any invalid block: the
                // sender loses standing (DESIGN §4), or a garbling peer
                // could waste our parsing forever without consequence.
                if let Some(peer) = &from {
                    self.shared.strike(peer).await;
                }
                Err(e)
            }
        }
    }

    /// The whole best chain, genesis first, as the behaviour answers it.
    pub async fn chain(&self) -> Vec<Block> {
        self.serve_delay().await;
        let honest: Vec<Block> = {
            let inner = self.shared.lock();
            inner
                .chain
                .blocks(0, usize::MAX)
                .iter()
                .map(|b| b.block().clone())
                .collect()
        };
        self.shared
            .behaviour
            .serve_blocks(&self.shared.ctx(), 0, honest)
    }

    /// Up to `limit` blocks (capped at the page limit) of the best chain
    /// from height `from`, as the behaviour answers it; empty past the tip.
    pub async fn blocks(&self, from: u64, limit: usize) -> Vec<Block> {
        self.serve_delay().await;
        let limit = limit.min(self.shared.config.page_limit);
        let honest: Vec<Block> = {
            let inner = self.shared.lock();
            inner
                .chain
                .blocks(from, limit)
                .iter()
                .map(|b| b.block().clone())
                .collect()
        };
        let mut served = self
            .shared
            .behaviour
            .serve_blocks(&self.shared.ctx(), from, honest);
        served.truncate(limit);
        served
    }

    /// One known block (best chain or side branch).
    pub async fn block(&self, hash: &BlockHash) -> Option<Block> {
        self.serve_delay().await;
        self.shared
            .lock()
            .chain
            .get(hash)
            .map(|b| b.block().clone())
    }

    /// The known peers, as the behaviour answers them.
    pub async fn peers(&self) -> Vec<PeerUrl> {
        self.serve_delay().await;
        let honest = self.shared.lock().peers.urls();
        self.shared
            .behaviour
            .serve_peers(&self.shared.ctx(), honest)
    }

    /// The node's true peer list (not filtered by the behaviour).
    pub fn known_peers(&self) -> Vec<PeerUrl> {
        self.shared.lock().peers.urls()
    }

    /// A peer announcing itself: kept only if it answers with our genesis,
    /// is not us, not banned, and the table has room.
    ///
    /// # Errors
    ///
    /// [`PeerError`] saying why it was not kept.
    pub async fn announce(&self, peer: PeerUrl) -> Result<(), PeerError> {
        self.shared.try_add_peer(peer, false).await.map(drop)
    }

    /// Adds a peer as the operator asked (same checks as announcements),
    /// and announces ourselves to it.
    ///
    /// # Errors
    ///
    /// [`PeerError`].
    pub async fn add_peer(&self, peer: PeerUrl) -> Result<(), PeerError> {
        self.shared.try_add_peer(peer, true).await.map(drop)
    }

    /// Syncs from one peer now: finds where our chains fork, fetches its
    /// blocks (whole chain when short, pages otherwise) and keeps the
    /// better valid chain.
    ///
    /// # Errors
    ///
    /// [`PeerError`] when the peer fails to answer or answers invalid data.
    pub async fn sync_from(&self, peer: &PeerUrl) -> Result<(), PeerError> {
        self.shared.sync_from(peer, None).await
    }

    /// A transaction relayed by `from` (or pushed by anyone): checked,
    /// pooled and relayed on once. A banned sender is answered
    /// [`TxAck::Ignored`] unread; a transaction already waiting is answered
    /// `Duplicate` before its signature is checked. A transaction that
    /// fails the checks needing no chain (signature, chain id, amount)
    /// costs `from` a strike; one that does not fit the best chain (nonce,
    /// balance) is refused without one.
    ///
    /// # Errors
    ///
    /// [`TxError::Invalid`] or [`TxError::Mempool`].
    pub async fn receive_tx(
        &self,
        tx: Transaction,
        from: Option<PeerUrl>,
    ) -> Result<TxAck, TxError> {
        self.shared.receive_tx(&tx, from).await
    }

    /// [`Handle::receive_tx`] from JSON bytes (size-capped at
    /// [`crate::tx::MAX_TX_JSON_LEN`]). Bytes that are no transaction
    /// count as invalid data from `from`.
    ///
    /// # Errors
    ///
    /// As [`Transaction::from_json`] and [`Handle::receive_tx`].
    pub async fn receive_tx_json(
        &self,
        bytes: &[u8],
        from: Option<PeerUrl>,
    ) -> Result<TxAck, TxError> {
        self.shared.receive_tx_json(bytes, from).await
    }

    /// Block production as this node sees it: what it mined, what its
    /// best chain holds, its view of the stale rate. Walks the best chain.
    pub fn mining_stats(&self) -> MiningStats {
        let me = self.shared.wallet.address();
        let inner = self.shared.lock();
        let chain = &inner.chain;
        let on_best_chain = chain.height();
        let known = (chain.len() as u64).saturating_sub(1).max(on_best_chain);
        let mined_on_best_chain = (1..=on_best_chain)
            .filter_map(|h| chain.block_at(h))
            .filter(|b| b.header.miner == me)
            .count() as u64;
        let stale_rate = if known == 0 {
            0.0
        } else {
            (known - on_best_chain) as f64 / known as f64
        };
        MiningStats {
            hash_share: self.shared.config.mining.power().map(|p| p.share()),
            mined: self.shared.blocks_mined.load(Ordering::Relaxed),
            mined_on_best_chain,
            known,
            on_best_chain,
            stale_rate,
            dropped_tx_relays: self.shared.dropped_tx_relays.load(Ordering::Relaxed),
        }
    }

    /// A signed transaction from anyone, for this node to mine. Returns
    /// once it is recorded as acknowledged ([`Handle::acknowledged`]).
    ///
    /// # Errors
    ///
    /// [`TxError::Invalid`] (bad signature, zero amount, overflow, nonce
    /// replayed or with a gap, overspend), [`TxError::Mempool`] or
    /// [`TxError::NotRecorded`].
    pub async fn submit_transaction(&self, tx: Transaction) -> Result<TxId, TxError> {
        self.shared.submit(tx, None).await
    }

    /// Signs a transfer from the node's wallet, mines it and broadcasts the
    /// block; returns once a block on the best chain holds it.
    ///
    /// # Errors
    ///
    /// [`TxError`]: invalid (e.g. overspend), mempool full, or not
    /// confirmed within [`Config::confirm_timeout`].
    pub async fn transfer(&self, to: Address, amount: u64) -> Result<Mined, TxError> {
        let (tx, rx) = oneshot::channel();
        self.sign_and_submit(to, amount, Some(tx)).await?;
        self.confirm(rx).await
    }

    /// Signs a transfer from the node's wallet and queues it for mining,
    /// without waiting for its block; returns once it is recorded as
    /// acknowledged ([`Handle::acknowledged`]).
    ///
    /// # Errors
    ///
    /// [`TxError::Invalid`] (e.g. overspend), [`TxError::Mempool`] or
    /// [`TxError::NotRecorded`].
    pub async fn submit_transfer(&self, to: Address, amount: u64) -> Result<TxId, TxError> {
        self.sign_and_submit(to, amount, None).await
    }

    async fn sign_and_submit(
        &self,
        to: Address,
        amount: u64,
        waiter: Option<oneshot::Sender<Mined>>,
    ) -> Result<TxId, TxError> {
        let mut caught_up = self.shared.caught_up.subscribe();
        let wait = caught_up.wait_for(|&yes| yes);
        match self
            .shared
            .clock
            .timeout(self.shared.config.confirm_timeout, wait)
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(TxError::ShuttingDown),
            Err(_) => return Err(TxError::CatchingUp),
        }
        let nonce = {
            let inner = self.shared.lock();
            inner
                .mempool
                .next_nonce(inner.chain.state(), &self.address())
        };
        let transaction = self.shared.wallet.transfer(
            &self.shared.chain_id,
            to,
            amount,
            self.shared.config.fee,
            nonce,
        );
        self.shared.submit(transaction, waiter).await
    }

    /// Mines a coinbase-only block on the best tip and broadcasts it.
    ///
    /// # Errors
    ///
    /// [`TxError::MineQueueFull`] when too many requests wait,
    /// [`TxError::Timeout`] or [`TxError::ShuttingDown`].
    pub async fn mine(&self) -> Result<Mined, TxError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            if inner.mine_jobs.len() >= MAX_MINE_JOBS {
                return Err(TxError::MineQueueFull {
                    capacity: MAX_MINE_JOBS,
                });
            }
            inner.mine_jobs.push_back(tx);
        }
        self.shared.mine_wake.notify_one();
        self.confirm(rx).await
    }

    async fn confirm(&self, rx: oneshot::Receiver<Mined>) -> Result<Mined, TxError> {
        tokio::select! {
            biased;
            _ = self.shared.cancel.cancelled() => Err(TxError::ShuttingDown),
            r = self.shared.clock.timeout(self.shared.config.confirm_timeout, rx) => match r {
                Err(_) => Err(TxError::Timeout),
                Ok(Err(_)) => Err(TxError::Dropped),
                Ok(Ok(mined)) => Ok(mined),
            }
        }
    }

    /// Stops every task of the node and waits for them to finish.
    pub async fn shutdown(self) {
        self.shared.stop();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}
