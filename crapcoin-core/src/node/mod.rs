//! The embeddable node engine: [`Node`] (a builder) → [`Handle`].
//!
//! The handle is what a transport (the HTTP server of `crapcoin-node`, the
//! in-memory network) or a test calls. Everything transport-agnostic lives
//! here so every transport shares it:
//!
//! - `receive`: blocks from peers and from our own miner — validation,
//!   orphans, fork choice, storage before acknowledgement, relay;
//! - `peers`: the bounded peer table (with each peer's orphan limits:
//!   [`Config::orphan_rate`], [`Config::orphan_sync_interval`]),
//!   bootstrap from the tracker, peer maintenance (liveness, discovery
//!   through peers' peers then the tracker, dropping peers that stop
//!   answering or misbehave);
//! - `sync`: fetching a peer's better chain, a pipeline that fetches page
//!   k+2 while page k+1 is checked (on one blocking-pool thread for the
//!   whole sync) and page k stored, with pages that grow from 64 blocks to
//!   the page limit and a last page of 32;
//! - `relay`: transactions from peers — checked, pooled, passed on once;
//! - `acked`: transfers the node acknowledged, stored before the caller
//!   hears of it and put back into the mempool on start;
//! - `tasks`: the miner (on demand, or on its hash power's schedule: see
//!   [`crate::power`]), the gossip sender (blocks and relayed
//!   transactions), auto mode and the behaviour's ticker;
//! - `config`, `error`, `builder`, `handle`: [`Config`], the errors,
//!   [`Node::builder`] and the [`Handle`] it launches;
//! - `agree`: [`wait_for_agreement`], for nodes run side by side;
//! - `view`: the engine as the plug-in traits see it ([`crate::behaviour::View`]
//!   for behaviours, [`crate::network::Inbox`] for networks).
//!
//! Every background task selects on one cancellation token and is tracked;
//! [`Handle::shutdown`] cancels and waits for all of them. Every read of
//! the time and every wait goes through the node's [`crate::Clock`].

mod acked;
mod agree;
mod builder;
mod config;
mod error;
mod handle;
mod peers;
mod receive;
mod relay;
mod sync;
mod tasks;
mod view;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::StdRng;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::behaviour::{Behaviour, Context};
use crate::chain::Chain;
use crate::clock::Clock;
use crate::hash::{BlockHash, TxId};
use crate::invalid::ValidationError;
use crate::maps::{Map, Set};
use crate::mempool::Mempool;
use crate::network::{Network, Store, Tracker};
use crate::observer::{Event, Observer};
use crate::orphans::OrphanPool;
use crate::params::Params;
use crate::tx::Transaction;
use crate::validate;
use crate::wallet::Wallet;
use crate::wire::{Outgoing, PeerUrl, Status};

/// Moved to [`crate::clock::now_ms`]; kept here for existing callers.
pub use crate::clock::now_ms;
/// Moved to [`crate::wire`]; kept here for existing callers.
pub use crate::wire::PeerError;
pub use agree::{AgreementError, NodeTip, wait_for_agreement};
pub use builder::{Builder, Node};
pub use config::{AutoConfig, Config, Mining, RateLimit};
pub use error::{LaunchError, TxError};
pub use handle::{Handle, Mined, MiningStats};
pub(crate) use peers::Peers;

/// The software version reported in [`Status`].
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Mutable node state, behind one short-held lock.
pub(crate) struct Inner {
    pub(crate) chain: Chain,
    pub(crate) mempool: Mempool,
    pub(crate) orphans: OrphanPool,
    pub(crate) peers: Peers,
    /// Transactions this node accepted and has not yet seen included, with
    /// whoever waits for their block.
    pub(crate) tracked: Map<TxId, Vec<oneshot::Sender<Mined>>>,
    /// Requests for coinbase-only blocks, answered in order.
    pub(crate) mine_jobs: VecDeque<oneshot::Sender<Mined>>,
}

/// One transaction to relay to one peer.
#[derive(Debug)]
pub(crate) struct TxRelay {
    pub(crate) to: PeerUrl,
    pub(crate) tx: Arc<Transaction>,
}

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
    /// Transactions waiting to be relayed (bounded).
    pub(crate) tx_outbox: mpsc::Sender<TxRelay>,
    /// Relays of transactions dropped because the queue was full.
    pub(crate) dropped_tx_relays: AtomicU64,
    /// Blocks this node's miner found.
    pub(crate) blocks_mined: AtomicU64,
    /// Pushes ignored unread because their sender is banned.
    pub(crate) ignored_from_banned: AtomicU64,
    /// Auto mode makes no move while this is false (see
    /// [`Handle::set_auto`]).
    pub(crate) auto_on: AtomicBool,
    /// False from start until the start-up sync from every known peer has
    /// run: until then the wallet signs nothing (see
    /// [`TxError::CatchingUp`]).
    pub(crate) caught_up: tokio::sync::watch::Sender<bool>,
    /// Peers a sync is running from (one sync per peer at a time).
    pub(crate) syncing: Mutex<Set<PeerUrl>>,
    pub(crate) rng: Mutex<StdRng>,
    pub(crate) cancel: CancellationToken,
    /// Set with `cancel` by [`Shared::stop`]: what [`Shared::is_stopping`]
    /// reads, one atomic load where the token's own test takes a lock
    /// (every message delivered to the node asks it).
    pub(crate) stopping: AtomicBool,
    pub(crate) tasks: TaskTracker,
    /// The node's time: every timestamp, deadline and wait.
    pub(crate) clock: Clock,
    /// The node's network faults (its network is wrapped in them).
    pub(crate) faults: crate::faults::NetFaults,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Stops the node: every task's wait for `cancel` ends, and
    /// [`Shared::is_stopping`] says so from now on.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.cancel.cancel();
    }

    /// Whether [`Shared::stop`] was called.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough data for
        // reads; keep serving rather than cascading the panic.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's seeded random generator, for one choice (held briefly;
    /// a panic elsewhere leaves it usable).
    pub(crate) fn rng(&self) -> MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn ctx(&self) -> Context<'_> {
        Context::new(self)
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

    /// Posts messages where the network takes posts ([`Network::post_block`]:
    /// the in-memory one), at once; queues the rest for the gossip sender,
    /// dropping (and counting) what does not fit.
    pub(crate) fn send(&self, messages: Vec<Outgoing>) {
        for message in messages {
            let message = if self.posts_now() {
                match self.network.post_block(message, &self.config.url) {
                    Some(back) => back,
                    None => continue,
                }
            } else {
                message
            };
            if self.outbox.try_send(message).is_err() {
                self.dropped_sends.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether gossip may be posted now rather than queued: the node runs,
    /// and the gossip sender has no message waiting (blocks or
    /// transactions). Nothing is posted past a message waiting in the
    /// queue, so a peer gets a node's messages in the order sent.
    fn posts_now(&self) -> bool {
        !self.is_stopping()
            && self.outbox.capacity() == self.outbox.max_capacity()
            && self.tx_outbox.capacity() == self.tx_outbox.max_capacity()
    }

    /// Queues `tx` for the gossip sender to send to `to`; when the queue is
    /// full, it is counted and not sent.
    fn queue_tx(&self, to: PeerUrl, tx: Arc<Transaction>) {
        if self.tx_outbox.try_send(TxRelay { to, tx }).is_err() {
            self.dropped_tx_relays.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Relays `tx` to every peer but `except` (its sender), as the
    /// behaviour chooses: posted where the network takes posts, as in
    /// [`Shared::send`], queued otherwise; what does not fit in the queue
    /// is counted and not relayed.
    pub(crate) fn relay_tx(&self, tx: &Transaction, except: Option<&PeerUrl>) {
        let peers: Vec<PeerUrl> = {
            let sorted = self.lock().peers.sorted();
            sorted
                .iter()
                .filter(|p| Some(*p) != except)
                .cloned()
                .collect()
        };
        if peers.is_empty() {
            return;
        }
        let to = self.behaviour.relay_tx(&self.ctx(), tx, &peers);
        let tx = Arc::new(tx.clone());
        for to in to {
            if self.posts_now() && self.network.post_tx(&to, &self.config.url, &tx) {
                continue;
            }
            self.queue_tx(to, tx.clone());
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
            hash_share: self.config.mining.power().map(|p| p.share()),
        }
    }
}

impl Shared {
    /// Accepts a transaction into the mempool after every check a block
    /// would make of it on the current best chain (counting this sender's
    /// pending transactions), records it in the store as acknowledged,
    /// then relays it. Returns only once it is stored: storage before
    /// acknowledgement, as for blocks.
    pub(crate) async fn submit(
        &self,
        tx: Transaction,
        waiter: Option<oneshot::Sender<Mined>>,
    ) -> Result<TxId, TxError> {
        validate::check_tx(&tx, &self.chain_id)?;
        let txid = self.admit(&tx, Some(waiter))?;
        self.record(txid, &tx).await?;
        self.emit(&Event::TransferSubmitted {
            txid,
            amount: tx.amount,
        });
        self.mine_wake.notify_one();
        self.relay_tx(&tx, None);
        Ok(txid)
    }

    /// Puts a signature-checked transaction into the mempool if the best
    /// chain's state lets its sender pay it: as this node's own (`waiter`
    /// is `Some`: followed to its block, mined at once on demand) or as a
    /// relayed one (`None`).
    pub(crate) fn admit(
        &self,
        tx: &Transaction,
        waiter: Option<Option<oneshot::Sender<Mined>>>,
    ) -> Result<TxId, TxError> {
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
        let Some(waiter) = waiter else {
            return Ok(inner.mempool.insert_foreign(tx.clone())?);
        };
        let txid = inner.mempool.insert(tx.clone())?;
        let waiters = inner.tracked.entry(txid).or_default();
        waiters.extend(waiter);
        Ok(txid)
    }
}
