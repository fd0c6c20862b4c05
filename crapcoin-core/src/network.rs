//! The traits that connect a [`crate::Node`] to the world: [`Network`] (how to
//! reach peers), [`Tracker`] (where to find them) and [`Store`] (where blocks
//! and peers persist), and [`Inbox`]: what a node answers, which is all a
//! network knows of a node. `crapcoin-node` implements them over HTTP and
//! SQL; [`crate::memory`] implements them in memory for tests and
//! simulations.
//!
//! The types they exchange live in [`crate::wire`] (below these traits)
//! and are re-exported here, so `crapcoin_core::network::PeerUrl` and
//! `crapcoin_core::wire::PeerUrl` are the same type.

use std::sync::{Arc, Weak};

use async_trait::async_trait;

use crate::block::{Block, CheckedBlock};
use crate::hash::{BlockHash, TxId};
use crate::invalid::ValidationError;
use crate::tx::Transaction;
pub use crate::wire::{
    BadResponse, BlockAck, MAX_PEER_URL_LEN, NetError, Outgoing, Payload, PeerError, PeerInfo,
    PeerUrl, PeerUrlError, Status, TxAck, Unreachable,
};

/// What a node answers to its peers: the calls a [`Network`] delivers to
/// a node attached to it ([`Network::attach`]). The engine implements it;
/// every answer is the behaviour's (a liar's status is its lie).
///
/// Methods take the node as `Arc<Self>`: a call keeps the node alive while
/// it runs, and only while it runs.
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Whether the node still answers (false once it shuts down).
    fn is_open(&self) -> bool;

    /// A block pushed by `from` (gossip): a block, or raw bytes as a
    /// block body.
    ///
    /// # Errors
    ///
    /// The [`ValidationError`] that refused it.
    async fn push_block(
        self: Arc<Self>,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, ValidationError>;

    /// A transaction relayed by `from`. Refusals that are no fault of the
    /// sender (a full pool, a taken nonce) are [`TxAck::Ignored`].
    ///
    /// # Errors
    ///
    /// The [`ValidationError`] that refused it.
    async fn push_tx(
        self: Arc<Self>,
        from: &PeerUrl,
        tx: &Transaction,
    ) -> Result<TxAck, ValidationError>;

    /// The node's [`Status`], as served to peers.
    async fn status(self: Arc<Self>) -> Status;

    /// A page of the best chain from height `from`.
    async fn blocks(self: Arc<Self>, from: u64, limit: usize) -> Vec<Block>;

    /// The whole best chain, genesis first.
    async fn chain(self: Arc<Self>) -> Vec<Block>;

    /// One known block.
    async fn block(self: Arc<Self>, hash: &BlockHash) -> Option<Block>;

    /// The peers the node names.
    async fn peers(self: Arc<Self>) -> Vec<PeerUrl>;

    /// A peer announcing itself.
    ///
    /// # Errors
    ///
    /// [`PeerError`] saying why it was not kept.
    async fn announce(self: Arc<Self>, peer: PeerUrl) -> Result<(), PeerError>;
}

/// How a node reaches its peers. Every call is made with a timeout by the
/// caller; implementations should still bound their own work.
#[async_trait]
pub trait Network: Send + Sync + 'static {
    /// Tells the network a local node now answers at `url` (the in-memory
    /// network delivers through this; HTTP networks need nothing).
    /// The network must not keep the node alive: it holds the [`Weak`]
    /// and upgrades it per call, and delivers nothing once
    /// [`Inbox::is_open`] says the node is shutting down.
    fn attach(&self, _url: &PeerUrl, _node: Weak<dyn Inbox>) {}

    /// Pushes a block (gossip). `from` is the sender's URL, so the receiver
    /// can fetch missing ancestors from it.
    async fn push_block(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, NetError>;

    /// Gossips a block to `message.to` without waiting for the answer
    /// (the gossip sender throws answers away). A network that delivers
    /// on its own (the in-memory one: [`crate::memory`]) takes it and
    /// returns `None`, which spares the sender a task, its timeout and a
    /// wait per message. Otherwise it hands the message back, and the
    /// sender pushes it with [`Network::push_block`] in a task of its
    /// own: the default.
    fn post_block(&self, message: Outgoing, _from: &PeerUrl) -> Option<Outgoing> {
        Some(message)
    }

    /// Gossips a transaction as [`Network::post_block`] gossips a block:
    /// `true` when the network took it; `false` (the default) when the
    /// sender must push it with [`Network::push_tx`].
    fn post_tx(&self, _to: &PeerUrl, _from: &PeerUrl, _tx: &Arc<Transaction>) -> bool {
        false
    }

    /// Relays a transaction. `from` is the sender's URL.
    async fn push_tx(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        tx: &Transaction,
    ) -> Result<TxAck, NetError>;

    /// The peer's [`Status`].
    async fn status(&self, to: &PeerUrl) -> Result<Status, NetError>;

    /// A page of the peer's best chain.
    async fn blocks(&self, to: &PeerUrl, from: u64, limit: usize) -> Result<Vec<Block>, NetError>;

    /// The peer's whole best chain, genesis first.
    async fn chain(&self, to: &PeerUrl) -> Result<Vec<Block>, NetError>;

    /// One block by hash, `None` when the peer does not know it.
    async fn block(&self, to: &PeerUrl, hash: &BlockHash) -> Result<Option<Block>, NetError>;

    /// The peers the peer knows.
    async fn peers(&self, to: &PeerUrl) -> Result<Vec<PeerUrl>, NetError>;

    /// Tells the peer about us.
    async fn announce(&self, to: &PeerUrl, me: &PeerUrl) -> Result<(), NetError>;
}

/// Where nodes find each other.
#[async_trait]
pub trait Tracker: Send + Sync + 'static {
    /// Registers (or refreshes) this node.
    async fn register(&self, me: &PeerInfo) -> Result<(), NetError>;

    /// Up to `count` live nodes other than `me`, at random.
    async fn sample(&self, me: &PeerUrl, count: usize) -> Result<Vec<PeerUrl>, NetError>;
}

/// No tracker: a node finds peers only through `--peer`-style seeds and
/// announcements.
#[async_trait]
impl Tracker for () {
    async fn register(&self, _me: &PeerInfo) -> Result<(), NetError> {
        Ok(())
    }

    async fn sample(&self, _me: &PeerUrl, _count: usize) -> Result<Vec<PeerUrl>, NetError> {
        Ok(Vec::new())
    }
}

/// What a [`Store`] gives back on start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every stored block (any order; the node sorts by height).
    pub blocks: Vec<Block>,
    /// Known peers.
    pub peers: Vec<PeerUrl>,
    /// The most recent transfers the node acknowledged (at most
    /// [`MAX_RESTORED_TRANSFERS`]), oldest first: on start the node puts
    /// back into its mempool those that are not on its best chain and
    /// still valid.
    pub transfers: Vec<AckedTransfer>,
}

/// Most acknowledged transfers a [`Snapshot`] carries (the newest ones).
/// A node's mempool holds far fewer, so every transfer still waiting for
/// a block when the node stopped is among them unless more than this many
/// newer ones were acknowledged after it.
pub const MAX_RESTORED_TRANSFERS: usize = 100_000;

/// Most acknowledged transfers a store keeps. Past it, the oldest rows
/// (by sequence number) are pruned: with blocks every few seconds and one
/// transfer per block, a million transfers are months of a node's life,
/// and those rows are deep on the chain long before they go.
pub const MAX_ACKED_TRANSFERS: u64 = 1_000_000;

/// Most acknowledged transfers one [`Store::acknowledged`] page returns.
pub const MAX_ACKED_PAGE: usize = 1_000;

/// A transfer the node acknowledged: accepted to mine and stored before
/// the caller (an HTTP client, the node's own auto mode) was told so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedTransfer {
    /// Its place in the node's record, from 1, increasing; assigned by the
    /// store and never reused (the cursor of [`Store::acknowledged`]).
    pub seq: u64,
    /// The transaction's id.
    pub id: TxId,
    /// When the node acknowledged it (its clock, ms since the epoch).
    pub acknowledged_ms: u64,
    /// The transaction itself, so a restarted node can mine it.
    pub tx: Transaction,
}

/// A storage failure, with its cause.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// Where a node persists blocks, peers and the transfers it acknowledged.
/// A block is acknowledged only after [`Store::save_blocks`] returned, a
/// transfer only after [`Store::save_transfer`] returned.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Everything stored.
    async fn load(&self) -> Result<Snapshot, StoreError>;

    /// Stores blocks (already valid), parents before children.
    async fn save_blocks(&self, blocks: &[Arc<CheckedBlock>]) -> Result<(), StoreError>;

    /// Remembers a peer.
    async fn save_peer(&self, peer: &PeerUrl) -> Result<(), StoreError>;

    /// Forgets a peer.
    async fn remove_peer(&self, peer: &PeerUrl) -> Result<(), StoreError>;

    /// Forgets every block (an amnesiac behaviour's wipe). Acknowledged
    /// transfers stay: they are the node's promises, not its chain.
    async fn clear_blocks(&self) -> Result<(), StoreError>;

    /// Records a transfer the node is about to acknowledge, with the time
    /// it was acknowledged (node clock, ms); returns its sequence number.
    /// Keeps at most [`MAX_ACKED_TRANSFERS`], pruning the oldest.
    async fn save_transfer(
        &self,
        id: TxId,
        acknowledged_ms: u64,
        tx: &Transaction,
    ) -> Result<u64, StoreError>;

    /// Up to `limit` (capped at [`MAX_ACKED_PAGE`]) recorded transfers
    /// whose sequence number is above `after`, in sequence order.
    async fn acknowledged(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AckedTransfer>, StoreError>;
}
