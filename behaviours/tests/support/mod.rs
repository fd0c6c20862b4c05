//! Shared test support: runs a small network of honest and misbehaving
//! nodes on the in-memory transport, records every observer event and every
//! call the nodes make, and checks what must hold whatever the misbehaving
//! nodes do.
#![allow(dead_code, reason = "each test binary uses part of the support")]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use behaviours::registry;
use crapcoin_core::block::tx_root;
use crapcoin_core::hash::leading_zero_bits;
use crapcoin_core::network::{BlockAck, Inbox, NetError, Payload};
use crapcoin_core::node::AutoConfig;
use crapcoin_core::observer::DropReason;
use crapcoin_core::{
    Address, Behaviour, Block, BlockHash, Chain, Config, Event, Handle, Network, Node, Params,
    PeerUrl, State, Status, Transaction, TxId, ValidationError, Wallet, memory, validate,
};

/// Records kept at most per log; a run that overflows fails its checks.
const MAX_RECORDS: usize = 500_000;

/// Difficulty of every test network: a block takes a few hundred hashes.
pub(crate) const DIFFICULTY: u8 = 8;

/// A bounded, shared log.
#[derive(Debug)]
pub(crate) struct Log<T> {
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

    pub(crate) fn snapshot(&self) -> Vec<T> {
        assert!(
            !self.overflow.load(std::sync::atomic::Ordering::Relaxed),
            "a test log overflowed"
        );
        self.items.lock().expect("log lock").clone()
    }
}

/// One observer event: which node, when (since the run started), what.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) node: String,
    pub(crate) at: Duration,
    pub(crate) event: Event,
}

/// What a pushed message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    /// A block.
    Block { hash: BlockHash, miner: Address },
    /// Raw bytes.
    Raw { len: usize },
}

/// One call a node made to another.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    /// `from` pushed something to `to`.
    Push {
        from: PeerUrl,
        to: PeerUrl,
        sent: Sent,
    },
    /// `from` asked `to` for its status.
    Status {
        from: PeerUrl,
        to: PeerUrl,
        answered: bool,
    },
    /// `from` asked `to` for its peers and got `answer`.
    Peers {
        from: PeerUrl,
        to: PeerUrl,
        answer: Vec<PeerUrl>,
    },
}

/// The in-memory network, seen through one node: records its calls.
#[derive(Clone)]
struct Recording {
    inner: memory::Network,
    me: PeerUrl,
    calls: Arc<Log<Call>>,
}

#[async_trait]
impl Network for Recording {
    fn attach(&self, url: &PeerUrl, node: std::sync::Weak<dyn Inbox>) {
        self.inner.attach(url, node);
    }

    async fn push_block(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, NetError> {
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
        self.inner.push_block(to, from, payload).await
    }

    async fn status(&self, to: &PeerUrl) -> Result<Status, NetError> {
        // The caller's timeout drops this future mid-call: record then too.
        let mut record = StatusRecord {
            calls: &self.calls,
            from: &self.me,
            to,
            answered: false,
        };
        let result = self.inner.status(to).await;
        record.answered = result.is_ok();
        result
    }

    async fn blocks(&self, to: &PeerUrl, from: u64, limit: usize) -> Result<Vec<Block>, NetError> {
        self.inner.blocks(to, from, limit).await
    }

    async fn chain(&self, to: &PeerUrl) -> Result<Vec<Block>, NetError> {
        self.inner.chain(to).await
    }

    async fn block(&self, to: &PeerUrl, hash: &BlockHash) -> Result<Option<Block>, NetError> {
        self.inner.block(to, hash).await
    }

    async fn peers(&self, to: &PeerUrl) -> Result<Vec<PeerUrl>, NetError> {
        let result = self.inner.peers(to).await;
        if let Ok(answer) = &result {
            self.calls.push(Call::Peers {
                from: self.me.clone(),
                to: to.clone(),
                answer: answer.clone(),
            });
        }
        result
    }

    async fn announce(&self, to: &PeerUrl, me: &PeerUrl) -> Result<(), NetError> {
        self.inner.announce(to, me).await
    }
}

/// Records a status call when dropped, answered or not.
struct StatusRecord<'a> {
    calls: &'a Log<Call>,
    from: &'a PeerUrl,
    to: &'a PeerUrl,
    answered: bool,
}

impl Drop for StatusRecord<'_> {
    fn drop(&mut self) {
        self.calls.push(Call::Status {
            from: self.from.clone(),
            to: self.to.clone(),
            answered: self.answered,
        });
    }
}

/// How nodes find each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topology {
    /// Through a tracker; everyone ends up knowing everyone.
    Mesh,
    /// Two groups of honest nodes (the first three, the rest) that only
    /// the misbehaving nodes connect: nobody looks for more peers.
    Bridged,
}

type MakeBad = Arc<dyn Fn(usize) -> Arc<dyn Behaviour> + Send + Sync>;

/// A network to run.
#[derive(Clone)]
pub(crate) struct Scenario {
    pub(crate) label: String,
    pub(crate) honest: usize,
    pub(crate) bad: usize,
    pub(crate) seed: u64,
    pub(crate) topology: Topology,
    /// How long the attack runs before convergence is checked.
    pub(crate) run_for: Duration,
    /// The misbehaviours' own pace.
    pub(crate) interval: Duration,
    /// Mean time between two auto-mode moves.
    pub(crate) auto_interval: Duration,
    /// Transfers each honest node makes.
    pub(crate) transfers: u64,
    /// Longest wait for the honest nodes to agree after the run.
    pub(crate) converge_within: Duration,
    make_bad: MakeBad,
}

impl Scenario {
    /// 5 honest nodes and 2 built by the registry under `name`.
    pub(crate) fn catalogue(name: &str) -> Self {
        let interval = Duration::from_millis(100);
        let owned = name.to_owned();
        let seed = 7;
        Self {
            label: name.to_owned(),
            honest: 5,
            bad: 2,
            seed,
            topology: Topology::Mesh,
            run_for: Duration::from_secs(5),
            interval,
            auto_interval: Duration::from_millis(80),
            transfers: 6,
            converge_within: Duration::from_secs(20),
            make_bad: Arc::new(move |i| {
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
    pub(crate) fn custom(
        label: &str,
        make: impl Fn(usize) -> Arc<dyn Behaviour> + Send + Sync + 'static,
    ) -> Self {
        Self {
            label: label.to_owned(),
            make_bad: Arc::new(make),
            ..Self::catalogue("honest")
        }
    }

    pub(crate) fn topology(mut self, topology: Topology) -> Self {
        self.topology = topology;
        self
    }

    fn params() -> Params {
        Params::with_difficulty(DIFFICULTY)
    }

    fn config(&self, name: &str, i: u64) -> Config {
        let mut config = Config::new(name, url(name));
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
    pub(crate) async fn run(self) -> Run {
        let started = Instant::now();
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
                    .map(|n| url(n))
                    .collect();
            }
            let behaviour: Arc<dyn Behaviour> = if honest {
                Arc::new(behaviours::honest::Behaviour)
            } else {
                let i = bad_names
                    .iter()
                    .position(|n| n == name)
                    .expect("a bad node");
                (self.make_bad)(i)
            };
            let log = events.clone();
            let observer = move |node: &str, event: &Event| {
                log.push(Record {
                    node: node.to_owned(),
                    at: started.elapsed(),
                    event: event.clone(),
                });
            };
            let network = Recording {
                inner: net.clone(),
                me: url(name),
                calls: calls.clone(),
            };
            let builder = Node::builder(Self::params())
                .config(config)
                .wallet(Wallet::from_seed(self.seed * 1000 + k as u64))
                .behaviour_arc(behaviour)
                .observer(observer)
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
            params: Self::params(),
            nodes,
            events,
            calls,
            samples: Vec::new(),
            final_chain: Vec::new(),
            final_states: HashMap::new(),
            agreed_at: Duration::ZERO,
            started,
        };
        run.sample_for(self.run_for).await;
        run.converge(self.converge_within).await;
        run
    }
}

/// The URL of the node called `name`.
pub(crate) fn url(name: &str) -> PeerUrl {
    format!("mem://{name}").parse().expect("a valid url")
}

/// Orphan pool bound of every test node.
pub(crate) const ORPHAN_CAPACITY: usize = 32;

/// A node of the run.
pub(crate) struct TestNode {
    pub(crate) name: String,
    pub(crate) honest: bool,
    pub(crate) handle: Handle,
}

/// One periodic look at every node.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) at: Duration,
    /// Name, height, orphans, peers.
    pub(crate) nodes: Vec<(String, u64, usize, Vec<PeerUrl>)>,
}

/// Each honest node's state and mempool at agreement, by name.
pub(crate) type FinalStates = HashMap<String, (State, Vec<Transaction>)>;

/// A finished (but still running) network.
pub(crate) struct Run {
    pub(crate) label: String,
    pub(crate) params: Params,
    pub(crate) nodes: Vec<TestNode>,
    pub(crate) events: Arc<Log<Record>>,
    pub(crate) calls: Arc<Log<Call>>,
    pub(crate) samples: Vec<Sample>,
    /// The chain every honest node agreed on.
    pub(crate) final_chain: Vec<Block>,
    /// Each honest node's state and mempool when they agreed.
    pub(crate) final_states: FinalStates,
    /// When the agreed snapshot was started (since the run started).
    pub(crate) agreed_at: Duration,
    started: Instant,
}

impl Run {
    pub(crate) fn honest(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.iter().filter(|n| n.honest)
    }

    pub(crate) fn bad(&self) -> impl Iterator<Item = &TestNode> {
        self.nodes.iter().filter(|n| !n.honest)
    }

    pub(crate) fn bad_urls(&self) -> HashSet<PeerUrl> {
        self.bad().map(|n| n.handle.url().clone()).collect()
    }

    pub(crate) fn bad_addresses(&self) -> HashSet<Address> {
        self.bad().map(|n| n.handle.address()).collect()
    }

    pub(crate) fn is_honest(&self, node: &str) -> bool {
        self.nodes.iter().any(|n| n.name == node && n.honest)
    }

    /// Every event an honest node reported.
    pub(crate) fn honest_events(&self) -> Vec<Record> {
        self.events
            .snapshot()
            .into_iter()
            .filter(|r| self.is_honest(&r.node))
            .collect()
    }

    /// Rejections honest nodes made of what misbehaving nodes sent, by
    /// reason name.
    pub(crate) fn rejections_of_bad(&self) -> HashMap<&'static str, usize> {
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
    pub(crate) fn drops_of_bad(&self) -> Vec<(String, PeerUrl, DropReason)> {
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
    pub(crate) fn known_blocks(&self) -> HashMap<BlockHash, Block> {
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
    pub(crate) fn honest_punished(&self) -> Vec<(String, PeerUrl, String)> {
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
    pub(crate) fn check_invariants(&self) {
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
        let now = crapcoin_core::node::now_ms();
        let mut fresh = Chain::new(self.params.clone());
        for block in self.final_chain.iter().skip(1) {
            let height = block.header.height;
            let checked = validate::check(block.clone(), &self.params).unwrap_or_else(|e| {
                panic!(
                    "{}: agreed block {height} fails its checks: {e}",
                    self.label
                )
            });
            if let Err(e) = fresh.insert(checked, now) {
                panic!(
                    "{}: agreed block {height} does not re-validate: {e}",
                    self.label
                );
            }
        }
        let tip = self.final_chain.last().map(Block::hash);
        assert_eq!(Some(fresh.tip()), tip, "{}: fresh chain tip", self.label);
    }

    /// Replays the agreed chain with a ledger written here, independent of
    /// core's state code: every rule of DESIGN §2, supply conserved, and
    /// the honest nodes' state equal to the replay.
    fn check_ledger(&self) {
        let label = &self.label;
        let chain_id = self.params.chain_id();
        let reward = self.params.block_reward;
        let now = crapcoin_core::node::now_ms();
        let mut ledger: HashMap<Address, (u64, u64)> = HashMap::new();
        let Some(genesis) = self.final_chain.first() else {
            panic!("{label}: no agreed chain");
        };
        assert_eq!(genesis.hash(), chain_id, "{label}: genesis");
        for pair in self.final_chain.windows(2) {
            let (parent, block) = (&pair[0], &pair[1]);
            let h = &block.header;
            let at = h.height;
            assert_eq!(
                h.height,
                parent.header.height + 1,
                "{label}: height at {at}"
            );
            assert_eq!(h.prev_hash, parent.hash(), "{label}: link at {at}");
            assert_eq!(
                h.difficulty, self.params.difficulty,
                "{label}: difficulty at {at}"
            );
            assert!(
                leading_zero_bits(&block.hash().0) >= u32::from(self.params.difficulty),
                "{label}: proof of work at {at}"
            );
            assert_eq!(
                h.tx_root,
                tx_root(block.tx.as_ref()),
                "{label}: tx root at {at}"
            );
            assert!(
                h.timestamp >= parent.header.timestamp,
                "{label}: time at {at}"
            );
            assert!(
                h.timestamp <= now + self.params.max_future_ms,
                "{label}: block {at} is stamped too far ahead"
            );
            let mut fee = 0;
            if let Some(tx) = &block.tx {
                assert!(tx.amount > 0, "{label}: zero amount at {at}");
                let total = tx
                    .total()
                    .unwrap_or_else(|| panic!("{label}: overflow at {at}"));
                assert!(tx.verify_signature(&chain_id), "{label}: signature at {at}");
                let sender = ledger.entry(tx.from).or_default();
                assert_eq!(tx.nonce, sender.1, "{label}: nonce at {at}");
                assert!(total <= sender.0, "{label}: overspend at {at}");
                sender.0 -= total;
                sender.1 += 1;
                ledger.entry(tx.to).or_default().0 += tx.amount;
                fee = tx.fee;
            }
            ledger.entry(h.miner).or_default().0 += reward + fee;
        }
        let height = self.final_chain.len() as u64 - 1;
        let supply: u64 = ledger.values().map(|(balance, _)| balance).sum();
        assert_eq!(supply, height * reward, "{label}: supply");
        for (name, (state, _)) in &self.final_states {
            let total: u64 = state.accounts().map(|(_, a)| a.balance).sum();
            assert_eq!(total, height * reward, "{label}: {name} supply");
            assert_eq!(state.supply(), height * reward, "{label}: {name} minted");
            for (address, (balance, nonce)) in &ledger {
                let account = state.account(address);
                assert_eq!(
                    (account.balance, account.nonce),
                    (*balance, *nonce),
                    "{label}: {name} account {}",
                    address.short()
                );
            }
        }
    }

    /// Every block an honest node keeps, on a side branch too, passes every
    /// check that does not need account state.
    fn check_kept_blocks(&self) {
        let chain_id = self.params.chain_id();
        let now = crapcoin_core::node::now_ms();
        let known = self.known_blocks();
        for block in known.values() {
            let h = &block.header;
            if h.height == 0 {
                assert_eq!(block.hash(), chain_id, "{}: a second genesis", self.label);
                continue;
            }
            let what = format!(
                "{}: kept block {} at {}",
                self.label,
                block.hash().short(),
                h.height
            );
            assert_eq!(h.difficulty, self.params.difficulty, "{what}: difficulty");
            assert!(
                leading_zero_bits(&block.hash().0) >= u32::from(self.params.difficulty),
                "{what}: proof of work"
            );
            assert_eq!(h.tx_root, tx_root(block.tx.as_ref()), "{what}: tx root");
            assert!(
                h.timestamp <= now + self.params.max_future_ms,
                "{what}: future"
            );
            if let Some(tx) = &block.tx {
                assert!(tx.amount > 0 && tx.total().is_some(), "{what}: amounts");
                assert!(tx.verify_signature(&chain_id), "{what}: signature");
            }
            let parent = known
                .get(&h.prev_hash)
                .unwrap_or_else(|| panic!("{what}: parent not kept"));
            assert_eq!(h.height, parent.header.height + 1, "{what}: height");
            assert!(
                h.timestamp >= parent.header.timestamp,
                "{what}: before parent"
            );
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
    pub(crate) fn heights_of(&self, name: &str) -> Vec<u64> {
        self.samples
            .iter()
            .filter_map(|s| s.nodes.iter().find(|n| n.0 == name).map(|n| n.1))
            .collect()
    }

    /// Stops every node.
    pub(crate) async fn shutdown(self) {
        for node in self.nodes {
            node.handle.shutdown().await;
        }
    }
}

/// Whether an error is one of the reasons in `names`.
pub(crate) fn reason_in(e: &ValidationError, names: &[&str]) -> bool {
    names.contains(&e.reason())
}
