//! [`Node::builder`] → [`Builder`] → [`Builder::launch`] → [`Handle`].
//! The in-memory network and store of [`crate::memory`] are the defaults.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, Weak};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::peers::Peers;
use super::{Config, Handle, Inner, LaunchError, Mining, Shared, tasks};
use crate::behaviour::{Behaviour, Honest};
use crate::chain::Chain;
use crate::clock::Clock;
use crate::faults::{Faulty, NetFaults};
use crate::maps::{Map, Set};
use crate::memory;
use crate::mempool::Mempool;
use crate::network::{Inbox, Network, Store, Tracker};
use crate::observer::Observer;
use crate::orphans::OrphanPool;
use crate::params::Params;
use crate::wallet::Wallet;

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
            clock: Clock::system(),
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
    clock: Clock,
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

    /// Where the node reads the time and how it waits (default: the
    /// system clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Restores the node from its store (chain, peers, and the acknowledged
    /// transfers not yet on the chain back into the mempool), then starts
    /// its tasks: bootstrap
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
        let (tx_outbox, tx_outbox_rx) = mpsc::channel(config.tx_outbox_capacity.max(1));
        // On a schedule any miner may find the next block, so every miner
        // mines every transaction it holds.
        let grace = match config.mining {
            Mining::OnDemand => config.remine_foreign,
            Mining::Scheduled(_) => Some(std::time::Duration::ZERO),
        };
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        // Every call to a peer passes the node's fault layer (its own
        // draws: the node's seed, mixed, so the node's choices stay as
        // they were).
        let (cancel, tasks) = (CancellationToken::new(), TaskTracker::new());
        let faults = NetFaults::new(
            self.clock.clone(),
            config
                .seed
                .map_or_else(rand::random, |s| s ^ 0x6661_756c_7473),
            cancel.clone(),
            tasks.clone(),
        );
        let network: Arc<dyn Network> = Arc::new(Faulty::new(network, faults.clone()));
        let shared = Arc::new(Shared {
            chain_id: self.params.chain_id(),
            inner: Mutex::new(Inner {
                chain: Chain::with_limits(self.params.clone(), config.limits),
                mempool: Mempool::with_grace(config.mempool_capacity, grace)
                    .with_clock(self.clock.clone()),
                orphans: OrphanPool::new(config.orphan_capacity),
                peers: Peers::new(config.max_peers, self.clock.clone()),
                tracked: Map::default(),
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
            tx_outbox,
            dropped_tx_relays: AtomicU64::new(0),
            blocks_mined: AtomicU64::new(0),
            ignored_from_banned: AtomicU64::new(0),
            auto_on: AtomicBool::new(config.auto.is_some()),
            caught_up: tokio::sync::watch::Sender::new(false),
            syncing: Mutex::new(Set::default()),
            rng: Mutex::new(rng),
            cancel,
            stopping: AtomicBool::new(false),
            tasks,
            faults,
            clock: self.clock,
            config,
        });
        let acknowledged = shared.restore().await?;
        shared.repool(acknowledged);
        let inbox: Weak<dyn Inbox> = Arc::downgrade(&shared) as Weak<dyn Inbox>;
        shared.network.attach(&shared.config.url, inbox);
        let handle = Handle { shared };
        tasks::spawn_all(&handle, outbox_rx, tx_outbox_rx);
        Ok(handle)
    }
}
