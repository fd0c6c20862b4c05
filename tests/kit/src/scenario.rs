//! A network of honest and misbehaving nodes on the in-memory transport,
//! run for a while: every observer event and every call the nodes make is
//! recorded, the honest nodes are waited for until they agree, and
//! [`Run::check_invariants`] checks what must hold whatever the
//! misbehaving nodes did (with [`crate::invariants`]).
//!
//! # Wall time or virtual time
//!
//! A scenario runs in one of two [`Time`]s:
//!
//! - [`Time::Wall`] (the default): the nodes read the system clock and
//!   the run lasts [`Scenario::run_for`] of real time. How far an attack
//!   gets in that window depends on how busy the machine is. For
//!   measurements of real cost (the flood bench's CPU and delays).
//! - [`Time::Virtual`] ([`Scenario::in_virtual_time`]): every node gets a
//!   simulated clock ([`Clock::simulated_since`]) counting from one
//!   origin, the run's start, at
//!   [`crapcoin_core::clock::SIMULATION_EPOCH_MS`]; the hash maps on the
//!   run's thread get their fixed order
//!   ([`crapcoin_core::maps::fix_order_on_this_thread`]). It must run on a
//!   current-thread tokio runtime whose time is paused
//!   (`#[tokio::test(flavor = "current_thread", start_paused = true)]`):
//!   virtual time jumps to the next timer as soon as every task waits, so
//!   the run's outcome depends on its seed alone, never on the machine's
//!   load, and [`Run::digest`] of its event stream proves it.
//!
//! The kit's own timing (the run's length, samples, the wait for
//! agreement, the nudges, [`Record::at`]) uses tokio's time in both, and
//! the checks read the run's clock ([`Run::now_ms`]), never the system's.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use behaviours::registry;
use crapcoin_core::network::Payload;
use crapcoin_core::node::{AutoConfig, Mining};
use crapcoin_core::observer::DropReason;
use crapcoin_core::{
    Address, Behaviour, Block, BlockHash, Clock, Config, Event, Handle, HashPower, Node, Params,
    PeerUrl, Skew, State, Transaction, TxId, ValidationError, Wallet, memory,
};

use crate::chain;
use crate::invariants;
use crate::net::{Tap, Tapped, mem_url};

/// Records kept at most per log; a run that overflows fails its checks.
const MAX_RECORDS: usize = 500_000;

/// A bounded, shared log.
#[derive(Debug)]
pub struct Log<T> {
    items: Mutex<Vec<T>>,
    overflow: std::sync::atomic::AtomicBool,
}

impl<T: Clone> Log<T> {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            items: Mutex::new(Vec::new()),
            overflow: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn push(&self, item: T) {
        let mut items = self.items.lock().expect("log lock");
        if items.len() < MAX_RECORDS {
            items.push(item);
        } else {
            self.overflow
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Everything logged so far.
    ///
    /// # Panics
    ///
    /// When the log overflowed: the run's checks would miss records.
    pub fn snapshot(&self) -> Vec<T> {
        assert!(
            !self.overflow.load(std::sync::atomic::Ordering::Relaxed),
            "a test log overflowed"
        );
        self.items.lock().expect("log lock").clone()
    }
}

/// One observer event: which node, when (since the run started), what.
#[derive(Debug, Clone)]
pub struct Record {
    /// The node's name.
    pub node: String,
    /// When, since the run started.
    pub at: Duration,
    /// What it reported.
    pub event: Event,
}

/// What a pushed message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A block.
    Block {
        /// Its hash.
        hash: BlockHash,
        /// Who it pays.
        miner: Address,
    },
    /// Raw bytes.
    Raw {
        /// How many bytes.
        len: usize,
    },
}

/// One call a node made to another.
#[derive(Debug, Clone)]
pub enum Call {
    /// `from` pushed something to `to`.
    Push {
        /// The caller.
        from: PeerUrl,
        /// The callee.
        to: PeerUrl,
        /// What was pushed.
        sent: Sent,
    },
    /// `from` asked `to` for its status.
    Status {
        /// The caller.
        from: PeerUrl,
        /// The callee.
        to: PeerUrl,
        /// Whether it answered (before the caller gave up).
        answered: bool,
    },
    /// `from` asked `to` for its peers and got `answer`.
    Peers {
        /// The caller.
        from: PeerUrl,
        /// The callee.
        to: PeerUrl,
        /// The peers it named.
        answer: Vec<PeerUrl>,
    },
}

/// The calls of one node, recorded: the [`Tap`] of its network.
#[derive(Clone)]
struct Recording {
    me: PeerUrl,
    calls: Arc<Log<Call>>,
}

impl Tap for Recording {
    fn pushed(&self, to: &PeerUrl, payload: &Payload) {
        let sent = match payload {
            Payload::Block(block) => Sent::Block {
                hash: block.hash(),
                miner: block.header.miner,
            },
            Payload::Raw(bytes) => Sent::Raw { len: bytes.len() },
        };
        self.calls.push(Call::Push {
            from: self.me.clone(),
            to: to.clone(),
            sent,
        });
    }

    fn status_done(&self, to: &PeerUrl, answered: bool) {
        self.calls.push(Call::Status {
            from: self.me.clone(),
            to: to.clone(),
            answered,
        });
    }

    fn peers_answered(&self, to: &PeerUrl, answer: &[PeerUrl]) {
        self.calls.push(Call::Peers {
            from: self.me.clone(),
            to: to.clone(),
            answer: answer.to_vec(),
        });
    }
}

/// How nodes find each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Through a tracker; everyone ends up knowing everyone.
    Mesh,
    /// Two groups of honest nodes (the first three, the rest) that only
    /// the misbehaving nodes connect: nobody looks for more peers.
    Bridged,
}

/// Whose clock the nodes of a run read (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Time {
    /// The system clock and real time: the run lasts what it says in
    /// wall time, however loaded the machine is.
    #[default]
    Wall,
    /// One simulated clock for all, on a paused current-thread runtime:
    /// the run depends on its seed alone.
    Virtual,
}

/// Builds misbehaving node `i` of a run seeded `seed`.
type MakeBad = Arc<dyn Fn(u64, usize) -> Arc<dyn Behaviour> + Send + Sync>;

/// A network to run.
#[derive(Clone)]
pub struct Scenario {
    /// Named in every failure message.
    pub label: String,
    /// Honest nodes (`h0`, `h1`, ...).
    pub honest: usize,
    /// Misbehaving nodes (`b0`, `b1`, ...).
    pub bad: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// How the nodes find each other.
    pub topology: Topology,
    /// How long the attack runs before convergence is checked.
    pub run_for: Duration,
    /// The misbehaviours' own pace.
    pub interval: Duration,
    /// Mean time between two auto-mode moves.
    pub auto_interval: Duration,
    /// Transfers each honest node makes.
    pub transfers: u64,
    /// Longest wait for the honest nodes to agree after the run.
    pub converge_within: Duration,
    /// The hash power of a misbehaving node whose behaviour is `selfish`:
    /// a selfish miner acts only on the blocks its schedule gives it (the
    /// other nodes mine on demand). By default a block every 40 ms, about
    /// the honest nodes' pace while their transfers last, so it often
    /// holds a lead of two when an honest block comes and wins the race.
    pub selfish_power: HashPower,
    /// Wall or virtual time (see the module docs).
    pub time: Time,
    make_bad: MakeBad,
}

impl Scenario {
    /// 5 honest nodes and 2 built by the registry under `name`, seeded 7.
    pub fn catalogue(name: &str) -> Self {
        let interval = Duration::from_millis(100);
        let owned = name.to_owned();
        let seed = 7;
        Self {
            label: name.to_owned(),
            honest: 5,
            bad: 2,
            seed,
            topology: Topology::Mesh,
            // The double spender needs its patience (20 ticks of 100 ms)
            // and a longer branch within the run. In wall time 5 s left
            // too little margin when 19 catalogue runs share 2 cores (CI
            // saw no release in one run in about five); in virtual time
            // (`in_virtual_time`, what the catalogue tests use) 8 s are 8 s
            // of the nodes' clock whatever the load.
            run_for: Duration::from_secs(8),
            interval,
            auto_interval: Duration::from_millis(80),
            transfers: 6,
            converge_within: Duration::from_secs(20),
            selfish_power: HashPower::new(1.0, Duration::from_millis(40))
                .expect("a valid share and interval"),
            time: Time::Wall,
            make_bad: Arc::new(move |seed, i| {
                registry::build_with(
                    &owned,
                    &registry::Options {
                        seed: seed * 1000 + i as u64,
                        interval,
                    },
                )
                .expect("a catalogue name")
            }),
        }
    }

    /// 5 honest nodes and 2 running `make(i)`.
    pub fn custom(
        label: &str,
        make: impl Fn(usize) -> Arc<dyn Behaviour> + Send + Sync + 'static,
    ) -> Self {
        Self {
            label: label.to_owned(),
            make_bad: Arc::new(move |_, i| make(i)),
            ..Self::catalogue("honest")
        }
    }

    /// The same scenario with another seed: the network's, the tracker's,
    /// the nodes' and wallets', and a catalogue entry's behaviours' (a
    /// [`Scenario::custom`] maker seeds its own).
    pub fn seeded(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same scenario in virtual time ([`Time::Virtual`]): run it on a
    /// current-thread tokio runtime whose time is paused.
    pub fn in_virtual_time(mut self) -> Self {
        self.time = Time::Virtual;
        self
    }

    /// The same scenario with another topology.
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = topology;
        self
    }

    fn config(&self, name: &str, i: u64) -> Config {
        let mut config = Config::new(name, mem_url(name));
        config.maintenance_interval = Duration::from_millis(200);
        config.call_timeout = Duration::from_millis(300);
        config.sync_timeout = Duration::from_secs(5);
        config.confirm_timeout = Duration::from_secs(5);
        config.orphan_capacity = ORPHAN_CAPACITY;
        config.max_strikes = 3;
        config.ban_duration = Duration::from_secs(120);
        config.seed = Some(self.seed * 100 + i);
        config.auto = Some(AutoConfig {
            interval: self.auto_interval,
            max_transfers: Some(self.transfers),
        });
        if self.topology == Topology::Bridged {
            config.target_peers = 1;
        }
        config
    }

    /// Starts the network, runs it, waits for the honest nodes to agree
    /// and returns everything seen, with the nodes still running.
    ///
    /// # Panics
    ///
    /// When the honest nodes do not agree within
    /// [`Scenario::converge_within`], a node fails to start, or (in
    /// [`Time::Virtual`]) the runtime is not a current-thread one.
    pub async fn run(self) -> Run {
        let started = Instant::now();
        let clock = match self.time {
            Time::Wall => Clock::system(),
            Time::Virtual => {
                assert_eq!(
                    tokio::runtime::Handle::current().runtime_flavor(),
                    tokio::runtime::RuntimeFlavor::CurrentThread,
                    "{}: virtual time needs a current-thread runtime with paused time",
                    self.label
                );
                crapcoin_core::maps::fix_order_on_this_thread();
                Clock::simulated_since(
                    started.into_std(),
                    crapcoin_core::clock::SIMULATION_EPOCH_MS,
                    Skew::default(),
                )
            }
        };
        let net = memory::Network::seeded(self.seed)
            .with_latency(Duration::from_millis(1), Duration::from_millis(5));
        let tracker = memory::Tracker::seeded(self.seed);
        let events: Arc<Log<Record>> = Log::new();
        let calls: Arc<Log<Call>> = Log::new();
        let honest_names: Vec<String> = (0..self.honest).map(|i| format!("h{i}")).collect();
        let bad_names: Vec<String> = (0..self.bad).map(|i| format!("b{i}")).collect();
        let group_a: Vec<String> = honest_names.iter().take(3).cloned().collect();
        let mut nodes = Vec::new();
        // Misbehaving nodes first: in the bridged topology honest nodes
        // meet them as seeds.
        let order = bad_names
            .iter()
            .map(|n| (n, false))
            .chain(honest_names.iter().map(|n| (n, true)));
        for (k, (name, honest)) in order.enumerate() {
            let mut config = self.config(name, k as u64);
            if self.topology == Topology::Bridged && honest {
                let mine = group_a.contains(name);
                config.seeds = honest_names
                    .iter()
                    .filter(|n| *n != name && group_a.contains(n) == mine)
                    .chain(&bad_names)
                    .map(|n| mem_url(n))
                    .collect();
            }
            let behaviour: Arc<dyn Behaviour> = if honest {
                Arc::new(behaviours::honest::Behaviour)
            } else {
                let i = bad_names
                    .iter()
                    .position(|n| n == name)
                    .expect("a bad node");
                (self.make_bad)(self.seed, i)
            };
            if !honest && behaviour.name() == "selfish" {
                config.mining = Mining::Scheduled(self.selfish_power);
            }
            let log = events.clone();
            let observer = move |node: &str, event: &Event| {
                log.push(Record {
                    node: node.to_owned(),
                    at: started.elapsed(),
                    event: event.clone(),
                });
            };
            let network = Tapped::new(
                net.clone(),
                Recording {
                    me: mem_url(name),
                    calls: calls.clone(),
                },
            );
            let builder = Node::builder(chain::params())
                .config(config)
                .wallet(Wallet::from_seed(self.seed * 1000 + k as u64))
                .behaviour_arc(behaviour)
                .observer(observer)
                .clock(clock.clone())
                .network(network);
            let handle = if self.topology == Topology::Mesh {
                builder.tracker(tracker.clone()).launch().await
            } else {
                builder.launch().await
            }
            .expect("a fresh node launches");
            nodes.push(TestNode {
                name: name.clone(),
                honest,
                handle,
            });
        }
        let mut run = Run {
            label: self.label.clone(),
            params: chain::params(),
            nodes,
            events,
            calls,
            samples: Vec::new(),
            final_chain: Vec::new(),
            final_states: HashMap::new(),
            agreed_at: Duration::ZERO,
            started,
            clock,
        };
        run.sample_for(self.run_for).await;
        run.converge(self.converge_within).await;
        run
    }
}

/// Orphan pool bound of every test node.
pub const ORPHAN_CAPACITY: usize = 32;

/// A node of the run.
pub struct TestNode {
    /// Its name (`h0`, `b1`, ...).
    pub name: String,
    /// Whether it runs the honest behaviour.
    pub honest: bool,
    /// The running node.
    pub handle: Handle,
}

/// One periodic look at every node.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When, since the run started.
    pub at: Duration,
    /// Name, height, orphans, peers.
    pub nodes: Vec<(String, u64, usize, Vec<PeerUrl>)>,
}

/// Each honest node's state and mempool at agreement, by name.
pub type FinalStates = HashMap<String, (State, Vec<Transaction>)>;

/// A finished (but still running) network.
pub struct Run {
    /// The scenario's label.
    pub label: String,
    /// The network's parameters.
    pub params: Params,
    /// Every node, misbehaving ones first.
    pub nodes: Vec<TestNode>,
    /// Every observer event.
    pub events: Arc<Log<Record>>,
    /// Every call a node made to another.
    pub calls: Arc<Log<Call>>,
    /// The periodic looks at every node.
    pub samples: Vec<Sample>,
    /// The chain every honest node agreed on.
    pub final_chain: Vec<Block>,
    /// Each honest node's state and mempool when they agreed.
    pub final_states: FinalStates,
    /// When the agreed snapshot was started (since the run started).
    pub agreed_at: Duration,
    started: Instant,
    /// What the nodes read: the system clock, or the run's virtual one.
    clock: Clock,
}

impl Run {
    /// Milliseconds since the Unix epoch by the run's clock, as its nodes
    /// read them: the system clock's in [`Time::Wall`], the virtual one's
    /// in [`Time::Virtual`]. What a check compares block timestamps with.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// SHA-256 (hex) of the run's whole event stream, in the order the
    /// events came, with the simulation's recipe (`crapcoin_sim`'s
    /// `Outcome::digest`): one JSON line `{"t_ms","node","event"}` per
    /// event, `request_served` left out. Equal digests, equal runs; in
    /// [`Time::Virtual`] the same seed gives the same digest.
    pub fn digest(&self) -> String {
        #[derive(serde::Serialize)]
        struct EventLine<'a> {
            t_ms: u64,
            node: &'a str,
            event: &'a Event,
        }
        let mut digest = Sha256::new();
        let mut line = Vec::new();
        for record in self.events.snapshot() {
            if matches!(record.event, Event::RequestServed { .. }) {
                continue;
            }
            line.clear();
            serde_json::to_writer(
                &mut line,
                &EventLine {
                    t_ms: u64::try_from(record.at.as_millis()).unwrap_or(u64::MAX),
                    node: &record.node,
                    event: &record.event,
                },
            )
            .expect("an event serialises");
            line.push(b'\n');
            digest.update(&line);
        }
        digest
            .finalize()
            .iter()
            .fold(String::with_capacity(64), |mut hex, b| {
                let _ = write!(hex, "{b:02x}");
                hex
            })
    }

    /// The honest nodes.
    pub fn honest(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.iter().filter(|n| n.honest)
    }

    /// The misbehaving nodes.
    pub fn bad(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.iter().filter(|n| !n.honest)
    }

    /// The misbehaving nodes' URLs.
    pub fn bad_urls(&self) -> HashSet<PeerUrl> {
        self.bad().map(|n| n.handle.url().clone()).collect()
    }

    /// The misbehaving nodes' mining addresses.
    pub fn bad_addresses(&self) -> HashSet<Address> {
        self.bad().map(|n| n.handle.address()).collect()
    }

    /// Whether the node called `node` is honest.
    pub fn is_honest(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n.name == node && n.honest)
    }

    /// Every event an honest node reported.
    pub fn honest_events(&self) -> Vec<Record> {
        self.events
            .snapshot()
            .into_iter()
            .filter(|r| self.is_honest(&r.node))
            .collect()
    }

    /// Rejections honest nodes made of what misbehaving nodes sent, by
    /// reason name.
    pub fn rejections_of_bad(&self) -> HashMap<&'static str, usize> {
        let bad = self.bad_urls();
        let mut out = HashMap::new();
        for record in self.honest_events() {
            if let Event::BlockRejected {
                reason,
                from: Some(from),
                ..
            } = &record.event
                && bad.contains(from)
            {
                *out.entry(reason.reason()).or_default() += 1;
            }
        }
        out
    }

    /// Honest nodes that dropped a misbehaving node, and why.
    pub fn drops_of_bad(&self) -> Vec<(String, PeerUrl, DropReason)> {
        let bad = self.bad_urls();
        self.honest_events()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::PeerDropped { peer, why } if bad.contains(&peer) => {
                    Some((r.node, peer, why))
                }
                _ => None,
            })
            .collect()
    }

    /// Every block any honest node keeps (best chain and side branches).
    pub fn known_blocks(&self) -> HashMap<BlockHash, Block> {
        let mut out = HashMap::new();
        for node in self.honest() {
            node.handle.with_chain(|c| {
                for b in c.all_blocks() {
                    out.insert(b.hash(), b.block().clone());
                }
            });
        }
        out
    }

    fn sample(&mut self) {
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    n.handle.height(),
                    n.handle.orphan_count(),
                    n.handle.known_peers(),
                )
            })
            .collect();
        self.samples.push(Sample {
            at: self.started.elapsed(),
            nodes,
        });
    }

    async fn sample_for(&mut self, period: Duration) {
        let end = Instant::now() + period;
        while Instant::now() < end {
            self.sample();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every honest node has the same tip and no honest
    /// mempool holds a transaction that could be mined on it; keeps the
    /// agreed chain and each node's state and mempool. Without new blocks
    /// a tie between two branches of equal work never resolves (each node
    /// keeps the one it saw first), so while they disagree an honest node
    /// mines a block now and then, as any live network would.
    async fn converge(&mut self, within: Duration) {
        let end = Instant::now() + within;
        let mut next_nudge = Instant::now() + Duration::from_millis(500);
        let mut nudges = 0usize;
        loop {
            self.sample();
            let at = self.started.elapsed();
            if let Some((chain, states)) = self.agreed() {
                self.final_chain = chain;
                self.final_states = states;
                self.agreed_at = at;
                return;
            }
            assert!(
                Instant::now() < end,
                "{}: honest nodes did not converge within {within:?}: {:?}; honest nodes punished: {:?}",
                self.label,
                self.honest()
                    .map(|n| (n.name.clone(), n.handle.height(), n.handle.tip().short()))
                    .collect::<Vec<_>>(),
                self.honest_punished()
            );
            if Instant::now() >= next_nudge {
                let honest: Vec<&TestNode> = self.honest().collect();
                let miner = honest[nudges % honest.len()].handle.clone();
                nudges += 1;
                next_nudge = Instant::now() + Duration::from_millis(500);
                let _ = tokio::time::timeout(Duration::from_secs(2), miner.mine()).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn agreed(&self) -> Option<(Vec<Block>, FinalStates)> {
        let mut agreed: Option<Vec<Block>> = None;
        let mut states = HashMap::new();
        for node in self.honest() {
            // Not under `with_chain`: `mempool` takes the same lock.
            let pending = node.handle.mempool();
            let (chain, state) = node.handle.with_chain(|c| {
                let chain: Vec<Block> = c
                    .blocks(0, usize::MAX)
                    .iter()
                    .map(|b| b.block().clone())
                    .collect();
                (chain, c.state().clone())
            });
            // A node mines the transfers it accepted itself; copies of
            // others' transfers returned by reorgs wait for their owner
            // (crapcoin_core::mempool), so only its own count here.
            let me = node.handle.address();
            let minable = pending.iter().filter(|t| t.from == me).any(|t| {
                let account = state.account(&t.from);
                t.nonce == account.nonce && t.total().is_some_and(|n| n <= account.balance)
            });
            if minable {
                return None;
            }
            match &agreed {
                None => agreed = Some(chain),
                Some(first) if first.last().map(Block::hash) != chain.last().map(Block::hash) => {
                    return None;
                }
                Some(_) => {}
            }
            states.insert(node.name.clone(), (state, pending));
        }
        agreed.map(|chain| (chain, states))
    }

    /// Honest nodes struck by honest nodes: (who, whom, why).
    pub fn honest_punished(&self) -> Vec<(String, PeerUrl, String)> {
        let honest: HashSet<PeerUrl> = self.honest().map(|n| n.handle.url().clone()).collect();
        self.honest_events()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::PeerDropped {
                    peer,
                    why: DropReason::Misbehaving,
                } if honest.contains(&peer) => Some((r.node, peer, "dropped".to_owned())),
                Event::BlockRejected {
                    reason,
                    from: Some(peer),
                    ..
                } if honest.contains(&peer) && !reason.is_transient() => {
                    Some((r.node, peer, reason.reason().to_owned()))
                }
                _ => None,
            })
            .collect()
    }

    /// Checks everything that must hold whatever the misbehaving nodes did.
    pub fn check_invariants(&self) {
        let punished = self.honest_punished();
        assert!(
            punished.is_empty(),
            "{}: honest nodes refused data from honest nodes: {punished:?}",
            self.label
        );
        self.check_chain_revalidates();
        self.check_ledger();
        self.check_kept_blocks();
        self.check_transfers();
        self.check_heights_never_fall();
        self.check_bounds();
    }

    /// Every honest node's best chain re-validates from genesis in a fresh
    /// `Chain`, reaching the agreed tip.
    fn check_chain_revalidates(&self) {
        if let Err(e) = invariants::revalidates(&self.params, &self.final_chain, self.now_ms()) {
            panic!("{}: {e}", self.label);
        }
    }

    /// Replays the agreed chain with a ledger written here, independent of
    /// core's state code: every rule of DESIGN §2, supply conserved, and
    /// the honest nodes' state equal to the replay.
    fn check_ledger(&self) {
        let label = &self.label;
        let ledger = invariants::replay_ledger(&self.params, &self.final_chain, self.now_ms())
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let height = self.final_chain.len() as u64 - 1;
        for (name, (state, _)) in &self.final_states {
            if let Err(e) =
                invariants::state_matches(&ledger, state, height, self.params.block_reward)
            {
                panic!("{label}: {name} {e}");
            }
        }
    }

    /// Every block an honest node keeps, on a side branch too, passes every
    /// check that does not need account state.
    fn check_kept_blocks(&self) {
        if let Err(e) = invariants::kept_blocks(&self.params, &self.known_blocks(), self.now_ms()) {
            panic!("{}: {e}", self.label);
        }
    }

    /// Every transfer an honest node acknowledged is on the agreed chain
    /// exactly once, or was legitimately dropped: its sender's nonce was
    /// used by another transfer on the agreed chain, or it still waits in
    /// the node's mempool because the agreed chain cannot pay for it yet.
    fn check_transfers(&self) {
        let label = &self.label;
        let on_chain: Vec<Transaction> = self
            .final_chain
            .iter()
            .filter_map(|b| b.tx.clone())
            .collect();
        let count = |id: &TxId| on_chain.iter().filter(|t| t.id() == *id).count();
        let mut contents: HashMap<TxId, Transaction> = HashMap::new();
        for block in self.known_blocks().values() {
            if let Some(tx) = &block.tx {
                contents.insert(tx.id(), tx.clone());
            }
        }
        let (any_state, _) = self.final_states.values().next().expect("an honest node");
        let mut acknowledged = 0;
        for record in self.honest_events() {
            let Event::TransferSubmitted { txid, .. } = record.event else {
                continue;
            };
            // Submitted after the snapshot: neither in it nor decided.
            if record.at > self.agreed_at {
                continue;
            }
            acknowledged += 1;
            let (_, pending) = &self.final_states[&record.node];
            match count(&txid) {
                1 => continue,
                0 => {}
                n => panic!(
                    "{label}: transfer {} is on the chain {n} times",
                    txid.short()
                ),
            }
            if let Some(tx) = pending.iter().find(|t| t.id() == txid) {
                let account = any_state.account(&tx.from);
                let affordable = tx.total().is_some_and(|n| n <= account.balance);
                assert!(
                    tx.nonce > account.nonce || !affordable,
                    "{label}: transfer {} of {} waits although it could be mined",
                    txid.short(),
                    record.node
                );
                continue;
            }
            let Some(tx) = contents.get(&txid) else {
                panic!(
                    "{label}: transfer {} of {} was lost: not on the chain, not waiting, in no block",
                    txid.short(),
                    record.node
                );
            };
            let used_by_other = on_chain
                .iter()
                .any(|t| t.from == tx.from && t.nonce == tx.nonce && t.id() != txid);
            assert!(
                used_by_other,
                "{label}: transfer {} of {} was lost: its nonce {} is still free",
                txid.short(),
                record.node,
                tx.nonce
            );
        }
        assert!(acknowledged > 0, "{label}: no honest node made a transfer");
    }

    /// At fixed difficulty most work is most blocks: an honest node's
    /// height never goes down.
    fn check_heights_never_fall(&self) {
        let mut last: HashMap<&str, u64> = HashMap::new();
        for sample in &self.samples {
            for (name, height, _, _) in &sample.nodes {
                if !self.is_honest(name) {
                    continue;
                }
                let before = last.insert(name, *height).unwrap_or(0);
                assert!(
                    *height >= before,
                    "{}: {name} fell from height {before} to {height} at {:?}",
                    self.label,
                    sample.at
                );
            }
        }
    }

    /// Honest pools stayed within their bounds.
    fn check_bounds(&self) {
        for sample in &self.samples {
            for (name, _, orphans, _) in &sample.nodes {
                assert!(
                    *orphans <= ORPHAN_CAPACITY,
                    "{}: {name} holds {orphans} orphans",
                    self.label
                );
            }
        }
    }

    /// Heights a node had, in sample order.
    pub fn heights_of(&self, name: &str) -> Vec<u64> {
        self.samples
            .iter()
            .filter_map(|s| s.nodes.iter().find(|n| n.0 == name).map(|n| n.1))
            .collect()
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.handle.shutdown().await;
        }
    }
}

/// Whether an error is one of the reasons in `names`.
pub fn reason_in(e: &ValidationError, names: &[&str]) -> bool {
    names.contains(&e.reason())
}
