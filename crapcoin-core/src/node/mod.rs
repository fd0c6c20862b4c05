//! The embeddable node engine: [`Node`] (a builder) → [`Handle`].
//!
//! The handle is what a transport (the HTTP server of `crapcoin-node`, the
//! in-memory network) or a test calls. Everything transport-agnostic lives
//! here so every transport shares it:
//!
//! - `receive`: blocks from peers and from our own miner — validation,
//!   orphans, fork choice, storage before acknowledgement, relay;
//! - `peers`: the bounded peer table, bootstrap from the tracker, peer
//!   maintenance (liveness, discovery through peers' peers then the
//!   tracker, dropping peers that stop answering or misbehave) and sync,
//!   a pipeline that fetches page k+2 while page k+1 is checked (on one
//!   blocking-pool thread for the whole sync) and page k stored, with
//!   pages that grow from 64 blocks to the page limit and a last page of
//!   32;
//! - `tasks`: the miner, the gossip sender, auto mode and the behaviour's
//!   ticker.
//!
//! Every background task selects on one cancellation token and is tracked;
//! [`Handle::shutdown`] cancels and waits for all of them.

mod peers;
mod receive;
mod tasks;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::behaviour::{Behaviour, Context, Honest};
use crate::block::{Block, BlockJson};
use crate::chain::{Chain, Limits};
use crate::hash::{Address, BlockHash, TxId};
use crate::memory;
use crate::mempool::{Mempool, MempoolError};
use crate::network::{BlockAck, Network, Outgoing, PeerUrl, Status, Store, Tracker};
use crate::observer::{Event, Observer};
use crate::orphans::OrphanPool;
use crate::params::Params;
use crate::state::Account;
use crate::tx::Transaction;
use crate::validate::{self, ValidationError};
use crate::wallet::Wallet;

pub use peers::PeerError;
pub(crate) use peers::Peers;

/// The software version reported in [`Status`].
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Milliseconds since the Unix epoch by the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Auto mode: the node makes transfers on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoConfig {
    /// Mean time between two moves (each is jittered ±50%).
    pub interval: Duration,
    /// Stop after this many transfers (`None`: never).
    pub max_transfers: Option<u64>,
}

impl Default for AutoConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            max_transfers: None,
        }
    }
}

/// How a node runs: names, bounds, timeouts and intervals. Consensus rules
/// are in [`Params`], not here: two nodes with different configs still agree.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's name (`node_id` in status, the source of its events).
    pub name: String,
    /// Where peers reach this node; announced to them.
    pub url: PeerUrl,
    /// Peers started from (besides stored ones and the tracker's).
    pub seeds: Vec<PeerUrl>,
    /// Peers wanted; below it, maintenance looks for more.
    pub target_peers: usize,
    /// Peers kept at most (announcements past it are refused).
    pub max_peers: usize,
    /// Timeout of every call to a peer or the tracker.
    pub call_timeout: Duration,
    /// Consecutive unanswered calls before a peer is dropped.
    pub max_failures: u32,
    /// Invalid items a peer may send before it is dropped and banned.
    pub max_strikes: u32,
    /// How long a dropped misbehaving peer stays banned.
    pub ban_duration: Duration,
    /// Time between two peer-maintenance rounds.
    pub maintenance_interval: Duration,
    /// Orphan pool bound.
    pub orphan_capacity: usize,
    /// Mempool bound.
    pub mempool_capacity: usize,
    /// How long a transaction returned by another node's abandoned block
    /// waits before this node mines it (`None`: never; its own
    /// transactions are mined at once). See [`crate::mempool`].
    pub remine_foreign: Option<Duration>,
    /// Block-tree bounds.
    pub limits: Limits,
    /// Most blocks served or fetched per page.
    pub page_limit: usize,
    /// Gossip messages waiting to be sent at most; more are dropped.
    pub outbox_capacity: usize,
    /// Gossip sends in flight at most.
    pub max_inflight_sends: usize,
    /// Longest a whole sync from one peer may take.
    pub sync_timeout: Duration,
    /// Fee the node pays on its own transfers.
    pub fee: u64,
    /// How long [`Handle::transfer`] and [`Handle::mine`] wait for the block.
    pub confirm_timeout: Duration,
    /// Auto mode, if on.
    pub auto: Option<AutoConfig>,
    /// Seed of the node's random choices (`None`: from the OS).
    pub seed: Option<u64>,
}

impl Config {
    /// Defaults for a node called `name` reached at `url`.
    pub fn new(name: impl Into<String>, url: PeerUrl) -> Self {
        Self {
            name: name.into(),
            url,
            seeds: Vec::new(),
            target_peers: 8,
            max_peers: 64,
            call_timeout: Duration::from_secs(2),
            max_failures: 3,
            max_strikes: 3,
            ban_duration: Duration::from_secs(60),
            maintenance_interval: Duration::from_secs(2),
            orphan_capacity: 256,
            mempool_capacity: 1024,
            remine_foreign: None,
            limits: Limits::default(),
            page_limit: 500,
            outbox_capacity: 1024,
            max_inflight_sends: 32,
            sync_timeout: Duration::from_secs(120),
            fee: 1,
            confirm_timeout: Duration::from_secs(30),
            auto: None,
            seed: None,
        }
    }
}

/// Why a node did not launch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] crate::network::StoreError),
    /// The store holds a block that is not valid here.
    #[error("stored block at height {height} is invalid: {reason}")]
    CorruptStore {
        /// Its height.
        height: u64,
        /// Why.
        reason: ValidationError,
    },
}

/// Why a transaction or transfer was refused or not confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The transaction is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The mempool refused it.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// It was accepted, but no block held it in time.
    #[error("not confirmed within the timeout")]
    Timeout,
    /// It was dropped before inclusion (a conflicting transaction won).
    #[error("dropped before inclusion")]
    Dropped,
    /// The node is shutting down.
    #[error("node is shutting down")]
    ShuttingDown,
}

impl TxError {
    /// The snake_case reason, as the HTTP API shows it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.reason(),
            Self::Mempool(MempoolError::Full { .. }) => "mempool_full",
            Self::Mempool(MempoolError::Duplicate) => "duplicate",
            Self::Mempool(_) => "nonce_taken",
            Self::Timeout => "timeout",
            Self::Dropped => "dropped",
            Self::ShuttingDown => "shutting_down",
        }
    }
}

/// A block this node mined (or that included the transfer waited for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Mined {
    /// The block.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
}

/// Builds a node: `Node::builder(params)…launch()`.
pub struct Node;

impl Node {
    /// A builder with defaults: honest, no observers, an isolated in-memory
    /// network and store, no tracker, a fresh wallet.
    pub fn builder(params: Params) -> Builder {
        Builder {
            params,
            config: None,
            wallet: None,
            behaviour: Arc::new(Honest),
            observers: Vec::new(),
            network: None,
            tracker: Arc::new(()),
            store: None,
        }
    }
}

/// Collects a node's parts; [`Builder::launch`] starts it.
#[must_use = "a builder does nothing until launch()"]
pub struct Builder {
    params: Params,
    config: Option<Config>,
    wallet: Option<Wallet>,
    behaviour: Arc<dyn Behaviour>,
    observers: Vec<Arc<dyn Observer>>,
    network: Option<Arc<dyn Network>>,
    tracker: Arc<dyn Tracker>,
    store: Option<Arc<dyn Store>>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("params", &self.params)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Names, bounds and intervals (default: `Config::new("node", mem://node)`).
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The node's key (default: a fresh one).
    pub fn wallet(mut self, wallet: Wallet) -> Self {
        self.wallet = Some(wallet);
        self
    }

    /// The behaviour (default: honest).
    pub fn behaviour(mut self, behaviour: impl Behaviour) -> Self {
        self.behaviour = Arc::new(behaviour);
        self
    }

    /// The behaviour, already shared (e.g. loaded from a plugin).
    pub fn behaviour_arc(mut self, behaviour: Arc<dyn Behaviour>) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// Adds an observer; all observers see every event.
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// How to reach peers (default: a new, empty in-memory network).
    pub fn network(mut self, network: impl Network) -> Self {
        self.network = Some(Arc::new(network));
        self
    }

    /// Where to find peers (default: none).
    pub fn tracker(mut self, tracker: impl Tracker) -> Self {
        self.tracker = Arc::new(tracker);
        self
    }

    /// Where blocks and peers persist (default: in memory).
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Restores the node from its store, then starts its tasks: bootstrap
    /// and peer maintenance, the miner, the gossip sender, auto mode and the
    /// behaviour's ticker.
    ///
    /// # Errors
    ///
    /// [`LaunchError`] when the store cannot be read or holds invalid blocks.
    pub async fn launch(self) -> Result<Handle, LaunchError> {
        let config = self
            .config
            .unwrap_or_else(|| Config::new("node", "mem://node".parse().expect("a valid url")));
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(memory::Store::default()));
        let network = self
            .network
            .unwrap_or_else(|| Arc::new(memory::Network::default()));
        let (outbox, outbox_rx) = mpsc::channel(config.outbox_capacity.max(1));
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let shared = Arc::new(Shared {
            chain_id: self.params.chain_id(),
            inner: Mutex::new(Inner {
                chain: Chain::with_limits(self.params.clone(), config.limits),
                mempool: Mempool::with_grace(config.mempool_capacity, config.remine_foreign),
                orphans: OrphanPool::new(config.orphan_capacity),
                peers: Peers::new(config.max_peers),
                tracked: HashMap::new(),
                mine_jobs: VecDeque::new(),
            }),
            params: self.params,
            wallet: self.wallet.unwrap_or_else(Wallet::generate),
            behaviour: self.behaviour,
            observers: self.observers,
            network,
            tracker: self.tracker,
            store,
            write_order: tokio::sync::Mutex::new(()),
            tip_version: AtomicU64::new(0),
            mine_wake: Notify::new(),
            outbox,
            dropped_sends: AtomicU64::new(0),
            ignored_from_banned: AtomicU64::new(0),
            auto_on: AtomicBool::new(config.auto.is_some()),
            syncing: Mutex::new(HashSet::new()),
            rng: Mutex::new(rng),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            config,
        });
        shared.restore().await?;
        let handle = Handle { shared };
        handle
            .shared
            .network
            .attach(&handle.shared.config.url, handle.downgrade());
        tasks::spawn_all(&handle, outbox_rx);
        Ok(handle)
    }
}

/// Mutable node state, behind one short-held lock.
pub(crate) struct Inner {
    pub(crate) chain: Chain,
    pub(crate) mempool: Mempool,
    pub(crate) orphans: OrphanPool,
    pub(crate) peers: Peers,
    /// Transactions this node accepted and has not yet seen included, with
    /// whoever waits for their block.
    pub(crate) tracked: HashMap<TxId, Vec<oneshot::Sender<Mined>>>,
    /// Requests for coinbase-only blocks, answered in order.
    pub(crate) mine_jobs: VecDeque<oneshot::Sender<Mined>>,
}

/// Longest queue of coinbase-only mining requests.
const MAX_MINE_JOBS: usize = 64;

/// Everything a node's tasks and handles share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) params: Params,
    pub(crate) chain_id: BlockHash,
    pub(crate) wallet: Wallet,
    pub(crate) behaviour: Arc<dyn Behaviour>,
    observers: Vec<Arc<dyn Observer>>,
    pub(crate) network: Arc<dyn Network>,
    pub(crate) tracker: Arc<dyn Tracker>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) inner: Mutex<Inner>,
    /// Serialises "insert into the chain, then store" so blocks reach the
    /// store in the order they entered the chain (parents first).
    pub(crate) write_order: tokio::sync::Mutex<()>,
    /// Bumped on every tip change; the miner abandons stale work on it.
    pub(crate) tip_version: AtomicU64,
    pub(crate) mine_wake: Notify,
    pub(crate) outbox: mpsc::Sender<Outgoing>,
    pub(crate) dropped_sends: AtomicU64,
    /// Pushes ignored unread because their sender is banned.
    pub(crate) ignored_from_banned: AtomicU64,
    /// Auto mode makes no move while this is false (see
    /// [`Handle::set_auto`]).
    pub(crate) auto_on: AtomicBool,
    /// Peers a sync is running from (one sync per peer at a time).
    pub(crate) syncing: Mutex<HashSet<PeerUrl>>,
    pub(crate) rng: Mutex<StdRng>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough data for
        // reads; keep serving rather than cascading the panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn ctx(&self) -> Context<'_> {
        Context { node: self }
    }

    pub(crate) fn emit(&self, event: &Event) {
        for observer in &self.observers {
            observer.on_event(&self.config.name, event);
        }
    }

    pub(crate) fn emit_all(&self, events: Vec<Event>) {
        for event in &events {
            self.emit(event);
        }
    }

    /// Queues messages for the gossip sender, dropping (and counting) what
    /// does not fit.
    pub(crate) fn send(&self, messages: Vec<Outgoing>) {
        for message in messages {
            if self.outbox.try_send(message).is_err() {
                self.dropped_sends.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn status(&self) -> Status {
        let inner = self.lock();
        Status {
            node_id: self.config.name.clone(),
            address: self.wallet.address(),
            behaviour: self.behaviour.name(),
            height: inner.chain.height(),
            tip: inner.chain.tip(),
            peers: inner.peers.len(),
            version: VERSION.to_owned(),
            genesis: inner.chain.genesis(),
            url: self.config.url.clone(),
        }
    }
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

/// A handle that does not keep the node alive (what networks hold).
#[derive(Clone, Debug)]
pub struct WeakHandle(Weak<Shared>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl WeakHandle {
    /// The node, if it still runs.
    pub fn upgrade(&self) -> Option<Handle> {
        self.0
            .upgrade()
            .filter(|s| !s.cancel.is_cancelled())
            .map(|shared| Handle { shared })
    }
}

impl Handle {
    /// A non-owning handle.
    pub fn downgrade(&self) -> WeakHandle {
        WeakHandle(Arc::downgrade(&self.shared))
    }

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
            tokio::time::sleep(delay).await;
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

    /// A signed transaction from anyone, for this node to mine.
    ///
    /// # Errors
    ///
    /// [`TxError::Invalid`] (bad signature, zero amount, overflow, nonce
    /// replayed or with a gap, overspend) or [`TxError::Mempool`].
    pub fn submit_transaction(&self, tx: Transaction) -> Result<TxId, TxError> {
        self.shared.submit(tx, None)
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
        self.sign_and_submit(to, amount, Some(tx))?;
        self.confirm(rx).await
    }

    /// Signs a transfer from the node's wallet and queues it for mining,
    /// without waiting for its block.
    ///
    /// # Errors
    ///
    /// [`TxError::Invalid`] (e.g. overspend) or [`TxError::Mempool`].
    pub fn submit_transfer(&self, to: Address, amount: u64) -> Result<TxId, TxError> {
        self.sign_and_submit(to, amount, None)
    }

    fn sign_and_submit(
        &self,
        to: Address,
        amount: u64,
        waiter: Option<oneshot::Sender<Mined>>,
    ) -> Result<TxId, TxError> {
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
        self.shared.submit(transaction, waiter)
    }

    /// Mines a coinbase-only block on the best tip and broadcasts it.
    ///
    /// # Errors
    ///
    /// [`TxError::Mempool`] when too many requests wait,
    /// [`TxError::Timeout`] or [`TxError::ShuttingDown`].
    pub async fn mine(&self) -> Result<Mined, TxError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            if inner.mine_jobs.len() >= MAX_MINE_JOBS {
                return Err(TxError::Mempool(MempoolError::Full {
                    capacity: MAX_MINE_JOBS,
                }));
            }
            inner.mine_jobs.push_back(tx);
        }
        self.shared.mine_wake.notify_one();
        self.confirm(rx).await
    }

    async fn confirm(&self, rx: oneshot::Receiver<Mined>) -> Result<Mined, TxError> {
        tokio::select! {
            _ = self.shared.cancel.cancelled() => Err(TxError::ShuttingDown),
            r = tokio::time::timeout(self.shared.config.confirm_timeout, rx) => match r {
                Err(_) => Err(TxError::Timeout),
                Ok(Err(_)) => Err(TxError::Dropped),
                Ok(Ok(mined)) => Ok(mined),
            }
        }
    }

    /// Stops every task of the node and waits for them to finish.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

impl Shared {
    /// Accepts a transaction into the mempool after every check a block
    /// would make of it on the current best chain (counting this sender's
    /// pending transactions).
    pub(crate) fn submit(
        &self,
        tx: Transaction,
        waiter: Option<oneshot::Sender<Mined>>,
    ) -> Result<TxId, TxError> {
        validate::check_tx(&tx, &self.chain_id)?;
        let txid = {
            let mut inner = self.lock();
            let state = inner.chain.state();
            let account = state.account(&tx.from);
            let next = inner.mempool.next_nonce(state, &tx.from);
            if tx.nonce < account.nonce || tx.nonce > next {
                return Err(ValidationError::BadNonce {
                    got: tx.nonce,
                    want: next,
                }
                .into());
            }
            let pending = inner.mempool.pending_spend(&tx.from, tx.nonce);
            let needed = tx.total().ok_or(ValidationError::Overflow)?;
            let available = account.balance.saturating_sub(pending);
            if needed > available {
                return Err(ValidationError::Overspend {
                    needed,
                    balance: available,
                }
                .into());
            }
            let txid = inner.mempool.insert(tx.clone())?;
            let waiters = inner.tracked.entry(txid).or_default();
            waiters.extend(waiter);
            txid
        };
        self.emit(&Event::TransferSubmitted {
            txid,
            amount: tx.amount,
        });
        self.mine_wake.notify_one();
        Ok(txid)
    }
}
