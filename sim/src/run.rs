//! One run of a scenario in virtual time: [`run`], and many in parallel:
//! [`run_all`].
//!
//! A run owns its thread: it fixes the order of the engine's hash maps on
//! it ([`crapcoin_core::maps`]), builds a current-thread tokio runtime
//! whose time is paused, and drives every node, the transfers and the
//! fault schedule from one loop on virtual time. Every random choice
//! comes from a generator derived from the run's seed, so the same seed
//! and the same build replay the run exactly: the [`Outcome::digest`] of
//! its event stream is the proof.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use behaviours::registry;
use crapcoin_core::faults::{self, FaultUpdate};
use crapcoin_core::maps::{self, Set};
use crapcoin_core::measure::ForkMeter;
use crapcoin_core::memory;
use crapcoin_core::{
    Address, Clock, Config, Event, Handle, HashPower, Mining, Node, Observer, Params, PeerUrl,
    Skew, Wallet,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::scenario::{self, FaultKind, NodeSpec, Scenario};

/// Where every virtual clock starts (2026-01-01T00:00:00Z, in
/// milliseconds since the Unix epoch): the engine's
/// [`crapcoin_core::clock::SIMULATION_EPOCH_MS`].
pub const EPOCH_MS: u64 = crapcoin_core::clock::SIMULATION_EPOCH_MS;

/// How often the run loop looks at the stop condition, in virtual time.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Blocks below the lowest honest tip that honest nodes must share for
/// the run to count as agreed (the tips themselves may race).
pub const AGREEMENT_DEPTH: u64 = 6;

/// Random picks of a sender with coins per transfer, at most (early in a
/// run few nodes have mined any).
const TRANSFER_TRIES: usize = 64;

/// Nodes whose heights are sampled for the heights plot, at most.
const MAX_SAMPLED_NODES: usize = 1_000;

/// Height samples per node, at most.
const MAX_SAMPLES: u64 = 400;

/// A progress callback: seed, sweep value, virtual time elapsed, virtual
/// length of the run if known.
pub type Progress = Arc<dyn Fn(u64, Option<f64>, Duration, Option<Duration>) + Send + Sync>;

/// What to do beside running.
#[derive(Default, Clone)]
pub struct Options {
    /// Write the event log (JSON lines) here.
    pub log: Option<PathBuf>,
    /// Called now and then with the run's seed and sweep value, the
    /// virtual time elapsed and the run's virtual length (`None` when it
    /// stops on a height alone).
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("log", &self.log)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// How one group of nodes did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupOutcome {
    /// The group's name.
    pub name: String,
    /// Its behaviour.
    pub behaviour: String,
    /// Its total hash power share.
    pub hash_share: f64,
    /// Blocks its nodes mined.
    pub mined: u64,
    /// Of those, on the honest best chain.
    pub on_best_chain: u64,
    /// Its share of the honest best chain's blocks (a miner's revenue).
    pub revenue: f64,
    /// In the group's races against the others, the share of other
    /// miners' blocks mined on the group's branch (Eyal and Sirer's γ);
    /// `None` when it raced none.
    pub gamma: Option<f64>,
}

/// What one run did. The serialised fields are the run's row in the
/// CSV/JSON output; the skipped ones feed the plots.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// The swept parameter's value, if the scenario sweeps one.
    pub value: Option<f64>,
    /// SHA-256 of the whole event stream (every event and fault line, in
    /// order, as the log writes them), hex: equal digests, equal runs.
    pub digest: String,
    /// Events in the stream.
    pub events: u64,
    /// Virtual time the run lasted, ms.
    pub virtual_ms: u64,
    /// Wall time it took, ms.
    pub wall_ms: u64,
    /// Virtual time over wall time.
    pub speedup: f64,
    /// Nodes in the scenario.
    pub nodes: usize,
    /// The highest honest tip.
    pub height: u64,
    /// The highest block every running honest node holds the same.
    pub common_height: u64,
    /// Whether the running honest nodes agree below the
    /// [`AGREEMENT_DEPTH`] most recent blocks of the lowest tip.
    pub agreed: bool,
    /// Blocks mined, by anyone.
    pub blocks_mined: u64,
    /// Reorgs seen, summed over nodes.
    pub reorgs: u64,
    /// Blocks refused, summed over nodes.
    pub rejected: u64,
    /// Mined blocks not on the honest best chain, over blocks mined.
    pub stale_rate: f64,
    /// Mean time between best-chain blocks, ms.
    pub mean_interval_ms: Option<f64>,
    /// Median propagation delay (mined to another node's acceptance), ms.
    pub propagation_median_ms: Option<f64>,
    /// Transfers the nodes accepted from the run's driver.
    pub transfers: u64,
    /// Messages delivered between nodes: calls (status, sync, peers) and
    /// gossip (blocks, transfers); lost ones are not counted.
    pub messages: u64,
    /// Peak resident memory of the process at the end, MiB (shared by
    /// runs in parallel).
    pub peak_rss_mib: Option<f64>,
    /// Each group of nodes.
    pub groups: Vec<GroupOutcome>,
    /// Sampled best-chain heights over virtual time (seconds), per node.
    #[serde(skip)]
    pub heights: Vec<(String, Vec<(f64, u64)>)>,
    /// Every propagation delay, ms.
    #[serde(skip)]
    pub delays_ms: Vec<f64>,
    /// Faults, at virtual seconds, described.
    #[serde(skip)]
    pub faults: Vec<(f64, String)>,
}

/// A line of the event log.
#[derive(Serialize)]
struct EventLine<'a> {
    t_ms: u64,
    node: &'a str,
    event: &'a Event,
}

/// Hashes (and logs) every event of every node, in the order they come.
struct Recorder {
    origin: tokio::time::Instant,
    honest: Set<String>,
    inner: Mutex<Recorded>,
    /// The highest block an honest node put on its best chain.
    height: AtomicU64,
}

struct Recorded {
    digest: Sha256,
    events: u64,
    log: Option<BufWriter<File>>,
    log_error: Option<std::io::Error>,
    mined: u64,
    reorgs: u64,
    rejected: u64,
    buffer: Vec<u8>,
}

impl Recorder {
    fn t_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one line (a JSON value) to the stream.
    fn line(&self, value: &impl Serialize) {
        let mut rec = self.lock();
        let rec = &mut *rec;
        rec.buffer.clear();
        if serde_json::to_writer(&mut rec.buffer, value).is_err() {
            return;
        }
        rec.buffer.push(b'\n');
        rec.digest.update(&rec.buffer);
        rec.events += 1;
        if let Some(log) = &mut rec.log
            && let Err(e) = log.write_all(&rec.buffer)
        {
            rec.log_error.get_or_insert(e);
            rec.log = None;
        }
    }
}

impl Observer for Recorder {
    fn on_event(&self, node: &str, event: &Event) {
        match event {
            Event::RequestServed { .. } => return,
            Event::BlockMined { .. } => self.lock().mined += 1,
            Event::Reorg { .. } => self.lock().reorgs += 1,
            Event::BlockRejected { .. } => self.lock().rejected += 1,
            _ => {}
        }
        if let Event::BlockAccepted {
            height, best: true, ..
        }
        | Event::Reorg { height, .. } = event
            && self.honest.contains(node)
        {
            self.height.fetch_max(*height, Ordering::Relaxed);
        }
        self.line(&EventLine {
            t_ms: self.t_ms(),
            node,
            event,
        });
    }
}

/// The fault as the log writes it.
fn fault_json(kind: &FaultKind) -> serde_json::Value {
    use serde_json::json;
    match kind {
        FaultKind::Partition { groups, bridge } if bridge.is_empty() => {
            json!({"kind": "partition", "groups": groups})
        }
        FaultKind::Partition { groups, bridge } => {
            json!({"kind": "partition", "groups": groups, "bridge": bridge})
        }
        FaultKind::Latency {
            node,
            mean,
            jitter,
            to,
            duration,
        } => json!({
            "kind": "latency",
            "node": node,
            "mean_ms": u64::try_from(mean.as_millis()).unwrap_or(u64::MAX),
            "jitter_ms": u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX),
            "to": to.clone().unwrap_or_default(),
            "for_ms": duration.as_millis() as u64,
        }),
        FaultKind::Loss {
            node,
            rate,
            to,
            duration,
        } => json!({
            "kind": "loss",
            "node": node,
            "rate": rate,
            "to": to.clone().unwrap_or_default(),
            "for_ms": duration.as_millis() as u64,
        }),
        FaultKind::Heal => json!({"kind": "heal"}),
        FaultKind::Isolate { node } => json!({"kind": "isolate", "node": node}),
        FaultKind::Crash { node } => json!({"kind": "crash", "node": node}),
        FaultKind::Restart { node } => json!({"kind": "restart", "node": node}),
        FaultKind::Pause { node, duration } => {
            json!({"kind": "pause", "node": node, "for_ms": duration.as_millis() as u64})
        }
        FaultKind::ClockSkew { node, skew_ms } => {
            json!({"kind": "clock_skew", "node": node, "skew_ms": skew_ms})
        }
    }
}

/// A short label of a fault, for plots and the terminal.
fn fault_label(kind: &FaultKind) -> String {
    match kind {
        FaultKind::Partition { groups, bridge } => format!(
            "partition into {}{}",
            groups.iter().filter(|g| !g.is_empty()).count(),
            match bridge.len() {
                0 => String::new(),
                1 => " + 1 bridge".to_owned(),
                n => format!(" + {n} bridges"),
            }
        ),
        FaultKind::Latency {
            node, mean, jitter, ..
        } => format!("latency {node} {mean:?}±{jitter:?}"),
        FaultKind::Loss { node, rate, .. } => format!("loss {node} {rate}"),
        FaultKind::Heal => "heal".to_owned(),
        FaultKind::Isolate { node } => format!("isolate {node}"),
        FaultKind::Crash { node } => format!("crash {node}"),
        FaultKind::Restart { node } => format!("restart {node}"),
        FaultKind::Pause { node, duration } => format!("pause {node} {duration:?}"),
        FaultKind::ClockSkew { node, skew_ms } => format!("skew {node} {skew_ms} ms"),
    }
}

/// A seed for something numbered `salt` of the run seeded `seed` (the
/// behaviours' derivation, so a run and its behaviours mix seeds alike).
pub use behaviours::derive_seed;

/// Peer maintenance every 2 s, calmer as the network grows (a status
/// round per node per interval is most of an idle network's work), unless
/// the scenario sets `maintenance_ms`.
fn maintenance_interval(nodes: usize) -> Duration {
    Duration::from_millis((2_000 + 2 * nodes as u64).min(30_000))
}

/// Everything the run loop steers.
struct World {
    /// The run's start, where every node's clock counts from.
    origin: tokio::time::Instant,
    scenario: Scenario,
    seed: u64,
    specs: Vec<NodeSpec>,
    params: Params,
    network: memory::Network,
    tracker: memory::Tracker,
    recorder: Arc<Recorder>,
    meter: Arc<ForkMeter>,
    stores: Vec<memory::Store>,
    skews: Vec<Skew>,
    wallets: Vec<Wallet>,
    addresses: Vec<Address>,
    urls: Vec<PeerUrl>,
    handles: Vec<Option<Handle>>,
    incarnations: Vec<u64>,
    transfers: u64,
}

impl World {
    /// Starts node `i` (again, after a crash: on its own store).
    async fn launch(&mut self, i: usize) -> anyhow::Result<()> {
        let spec = &self.specs[i];
        let incarnation = self.incarnations[i];
        self.incarnations[i] += 1;
        let node_seed = derive_seed(self.seed, (i as u64) << 16 | incarnation);
        let mut config = Config::in_memory(spec.name.clone());
        config.seed = Some(node_seed);
        config.max_peers = self.scenario.max_peers;
        config.target_peers = self.scenario.max_peers.min(8);
        config.maintenance_interval = self
            .scenario
            .maintenance
            .unwrap_or_else(|| maintenance_interval(self.specs.len()));
        config.mining = match self.scenario.block_interval {
            Some(t) => Mining::Scheduled(HashPower::new(spec.hash_share, t)?),
            None => Mining::OnDemand,
        };
        let behaviour = registry::build_with(
            &spec.behaviour,
            &registry::Options {
                seed: derive_seed(node_seed, 0xBE),
                interval: Duration::from_secs(1),
            },
        )?;
        // Every clock counts from the run's start, also a restarted node's.
        let clock = Clock::simulated_since(self.origin.into_std(), EPOCH_MS, self.skews[i].clone());
        let handle = Node::builder(self.params.clone())
            .config(config)
            .wallet(self.wallets[i].clone())
            .behaviour_arc(behaviour)
            .network(self.network.view(&self.urls[i]))
            .tracker(self.tracker.clone())
            .store(self.stores[i].clone())
            .clock(clock)
            .observer(self.recorder.clone())
            .observer(self.meter.clone())
            .launch()
            .await?;
        self.handles[i] = Some(handle);
        Ok(())
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    /// The fault layer of the node `name`, when it runs (a crashed node's
    /// faults die with it, as a stopped process's do).
    fn faults_of(&self, name: &str) -> Option<faults::NetFaults> {
        let i = self.index(name)?;
        self.handles[i].as_ref().map(|h| h.faults().clone())
    }

    async fn apply(&mut self, kind: &FaultKind, now: tokio::time::Instant) -> anyhow::Result<()> {
        let url = |world: &Self, name: &str| world.index(name).map(|i| world.urls[i].clone());
        // A link fault's peers by name (`None`: every peer).
        let urls = |world: &Self, names: Option<&[String]>| {
            names.map(|names| {
                names
                    .iter()
                    .filter_map(|n| url(world, n))
                    .collect::<Vec<_>>()
            })
        };
        match kind {
            FaultKind::Partition { groups, bridge } => {
                let sides: Vec<Vec<PeerUrl>> = groups
                    .iter()
                    .map(|g| g.iter().filter_map(|n| url(self, n)).collect())
                    .collect();
                if bridge.is_empty() {
                    self.network.partition(&sides);
                } else {
                    let bridges: Vec<PeerUrl> =
                        bridge.iter().filter_map(|n| url(self, n)).collect();
                    self.network.partition_bridged(&sides, &bridges);
                }
            }
            FaultKind::Latency {
                node,
                mean,
                jitter,
                to,
                duration,
            } => {
                if let Some(faults) = self.faults_of(node) {
                    let to = urls(self, to.as_deref());
                    let latency = faults::Latency {
                        mean: *mean,
                        jitter: *jitter,
                        to,
                    };
                    faults.apply(FaultUpdate {
                        latency: Some(latency),
                        duration: *duration,
                        ..FaultUpdate::default()
                    })?;
                }
            }
            FaultKind::Loss {
                node,
                rate,
                to,
                duration,
            } => {
                if let Some(faults) = self.faults_of(node) {
                    let to = urls(self, to.as_deref());
                    faults.apply(FaultUpdate {
                        loss: Some(faults::Loss { rate: *rate, to }),
                        duration: *duration,
                        ..FaultUpdate::default()
                    })?;
                }
            }
            FaultKind::Heal => self.network.heal(),
            FaultKind::Isolate { node } => {
                if let Some(u) = url(self, node) {
                    self.network.isolate(&u);
                }
            }
            FaultKind::Crash { node } => {
                if let Some(handle) = self.index(node).and_then(|i| self.handles[i].take()) {
                    handle.shutdown().await;
                }
            }
            FaultKind::Restart { node } => {
                if let Some(i) = self.index(node)
                    && self.handles[i].is_none()
                {
                    self.launch(i).await?;
                }
            }
            FaultKind::Pause { node, duration } => {
                if let Some(u) = url(self, node) {
                    self.network.pause(&u, (now + *duration).into_std());
                }
            }
            FaultKind::ClockSkew { node, skew_ms } => {
                if let Some(i) = self.index(node) {
                    self.skews[i].set(*skew_ms);
                }
            }
        }
        Ok(())
    }

    /// One transfer of a coin from a random running honest node with
    /// coins (up to [`TRANSFER_TRIES`] picks) to a random other node.
    async fn transfer(&mut self, rng: &mut StdRng) {
        let n = self.specs.len();
        if n < 2 {
            return;
        }
        for _ in 0..TRANSFER_TRIES {
            let from = rng.random_range(0..n);
            if self.specs[from].behaviour != "honest" {
                continue;
            }
            let Some(handle) = &self.handles[from] else {
                continue;
            };
            let account = handle.balance(&self.addresses[from]);
            if account.balance < 1 + handle.config().fee {
                continue;
            }
            let mut to = rng.random_range(0..n - 1);
            if to >= from {
                to += 1;
            }
            if handle.submit_transfer(self.addresses[to], 1).await.is_ok() {
                self.transfers += 1;
            }
            return;
        }
    }

    fn running_honest(&self) -> Vec<&Handle> {
        self.specs
            .iter()
            .zip(&self.handles)
            .filter(|(s, _)| s.behaviour == "honest")
            .filter_map(|(_, h)| h.as_ref())
            .collect()
    }
}

/// The highest height at which every node in `nodes` has the same block
/// (they share every block below it too: a block fixes its ancestors).
fn common_height(nodes: &[&Handle]) -> u64 {
    let Some(first) = nodes.first() else { return 0 };
    let lowest = nodes.iter().map(|n| n.height()).min().unwrap_or(0);
    let same_at = |h: u64| {
        let hash = first.with_chain(|c| c.block_at(h).map(|b| b.hash()));
        nodes
            .iter()
            .all(|n| n.with_chain(|c| c.block_at(h).map(|b| b.hash())) == hash)
    };
    let (mut lo, mut hi) = (0, lowest);
    if same_at(hi) {
        return hi;
    }
    // same_at(lo) holds (genesis), same_at(hi) does not.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if same_at(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs `scenario` with `seed` (one sweep value already applied; `value`
/// names it in the outcome) on this thread, in virtual time.
///
/// # Errors
///
/// When the scenario cannot be built (a behaviour or share the engine
/// refuses), the log cannot be written, or a node fails to start.
pub fn run(
    scenario: &Scenario,
    seed: u64,
    value: Option<f64>,
    options: &Options,
) -> anyhow::Result<Outcome> {
    maps::fix_order_on_this_thread();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    runtime.block_on(simulate(scenario, seed, value, options))
}

async fn simulate(
    scenario: &Scenario,
    seed: u64,
    value: Option<f64>,
    options: &Options,
) -> anyhow::Result<Outcome> {
    let wall = Instant::now();
    let origin = tokio::time::Instant::now();
    let specs = scenario.nodes();
    let n = specs.len();
    anyhow::ensure!(n > 0, "the scenario has no nodes");

    let network = memory::Network::seeded(derive_seed(seed, 1));
    network.set_link_delay(scenario.latency.link);
    network.set_loss(scenario.loss);
    let urls: Vec<PeerUrl> = specs
        .iter()
        .map(|s| Config::in_memory(s.name.clone()).url)
        .collect();
    network.set_regions(
        scenario.latency.one_way.clone(),
        specs
            .iter()
            .zip(&urls)
            .filter_map(|(s, u)| s.region.map(|r| (u.clone(), r)))
            .collect(),
    );

    let log = match &options.log {
        Some(path) => Some(BufWriter::new(File::create(path).map_err(|e| {
            anyhow::anyhow!("cannot write the log {}: {e}", path.display())
        })?)),
        None => None,
    };
    let recorder = Arc::new(Recorder {
        origin,
        honest: specs
            .iter()
            .filter(|s| s.behaviour == "honest")
            .map(|s| s.name.clone())
            .collect(),
        inner: Mutex::new(Recorded {
            digest: Sha256::new(),
            events: 0,
            log,
            log_error: None,
            mined: 0,
            reorgs: 0,
            rejected: 0,
            buffer: Vec::new(),
        }),
        height: AtomicU64::new(0),
    });
    if let Some(log) = &mut recorder.lock().log {
        let header = serde_json::json!({
            "crapcoin_sim_log": 1,
            "scenario": scenario.name,
            "seed": seed,
            "block_interval_ms": scenario.block_interval.map(|t| t.as_millis() as u64),
            "nodes": specs.iter().map(|s| serde_json::json!({
                "name": s.name,
                "behaviour": s.behaviour,
                "hash_share": s.hash_share,
                "region": s.region.map(|r| scenario.latency.regions[r].clone()),
            })).collect::<Vec<_>>(),
        });
        writeln!(log, "{header}")?;
    }
    let meter = Arc::new(ForkMeter::with_capacity(
        Clock::simulated_since(origin.into_std(), EPOCH_MS, Skew::default()),
        1 << 20,
    ));
    for spec in &specs {
        meter.set_share(&spec.name, spec.hash_share);
    }

    let wallets: Vec<Wallet> = (0..n)
        .map(|i| Wallet::from_seed(derive_seed(seed, 0x1_0000_0000 + i as u64)))
        .collect();
    let mut world = World {
        origin,
        scenario: scenario.clone(),
        seed,
        params: Params::with_difficulty(scenario.difficulty),
        network,
        tracker: memory::Tracker::seeded(derive_seed(seed, 2)),
        recorder: recorder.clone(),
        meter: meter.clone(),
        // Each node its own store (`vec![store; n]` would clone one, and
        // clones share their contents).
        stores: (0..n).map(|_| memory::Store::default()).collect(),
        skews: (0..n).map(|_| Skew::default()).collect(),
        addresses: wallets.iter().map(Wallet::address).collect(),
        wallets,
        urls,
        handles: (0..n).map(|_| None).collect(),
        incarnations: vec![0; n],
        transfers: 0,
        specs,
    };
    for i in 0..n {
        world.launch(i).await?;
        if n >= 10_000 && (i + 1) % (n / 10) == 0 {
            tracing::info!(started = i + 1, of = n, "simulation: nodes started");
        }
    }

    let stop_time = scenario.stop.time;
    let stop_height = scenario.stop.height;
    let mut rng = StdRng::seed_from_u64(derive_seed(seed, 3));
    let rate = scenario.transfers.rate_per_sec;
    let next_gap = |rng: &mut StdRng| {
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        Duration::from_secs_f64((-u.ln() / rate).min(3.6e6))
    };
    let mut next_transfer = (rate > 0.0).then(|| origin + next_gap(&mut rng));
    let mut faults = scenario.faults.iter().peekable();
    let mut faults_seen = Vec::new();
    let sampled: Vec<usize> = (0..n)
        .step_by(n.div_ceil(MAX_SAMPLED_NODES).max(1))
        .collect();
    let sample_every = stop_time.map_or(Duration::from_secs(1), |t| {
        (t / MAX_SAMPLES as u32).max(Duration::from_millis(100))
    });
    let mut heights: Vec<Vec<(f64, u64)>> = vec![Vec::new(); sampled.len()];
    let mut next_sample = origin;
    let mut next_check = origin + CHECK_EVERY;

    loop {
        let now = tokio::time::Instant::now();
        let elapsed = now - origin;
        if now >= next_sample {
            for (series, &i) in heights.iter_mut().zip(&sampled) {
                if let Some(h) = &world.handles[i]
                    && series.len() < 4 * MAX_SAMPLES as usize
                {
                    series.push((elapsed.as_secs_f64(), h.height()));
                }
            }
            next_sample = now + sample_every;
        }
        while let Some(fault) = faults.next_if(|f| origin + f.at <= now) {
            recorder.line(&serde_json::json!({
                "t_ms": recorder.t_ms(),
                "fault": fault_json(&fault.kind),
            }));
            tracing::info!(at = ?fault.at, fault = %fault_label(&fault.kind), "simulation: fault");
            faults_seen.push((fault.at.as_secs_f64(), fault_label(&fault.kind)));
            world.apply(&fault.kind, now).await?;
        }
        if let Some(at) = next_transfer
            && at <= now
        {
            if scenario
                .transfers
                .max
                .is_none_or(|max| world.transfers < max)
            {
                world.transfer(&mut rng).await;
                next_transfer = Some(at + next_gap(&mut rng));
            } else {
                next_transfer = None;
            }
        }
        if now >= next_check {
            next_check = now + CHECK_EVERY;
            if let Some(progress) = &options.progress {
                progress(seed, value, elapsed, stop_time);
            }
            let height = recorder.height.load(Ordering::Relaxed);
            if stop_time.is_some_and(|t| elapsed >= t) || stop_height.is_some_and(|h| height >= h) {
                break;
            }
        }
        let mut wake = next_check.min(next_sample);
        if let Some(at) = next_transfer {
            wake = wake.min(at);
        }
        if let Some(fault) = faults.peek() {
            wake = wake.min(origin + fault.at);
        }
        tokio::time::sleep_until(wake.max(now)).await;
    }

    let virtual_time = origin.elapsed();
    let honest = world.running_honest();
    let height = honest.iter().map(|h| h.height()).max().unwrap_or(0);
    let lowest = honest.iter().map(|h| h.height()).min().unwrap_or(0);
    let common = common_height(&honest);
    let agreed = !honest.is_empty() && common + AGREEMENT_DEPTH >= lowest;
    let best: Vec<_> = match honest.first() {
        Some(h) => h.with_chain(|c| c.blocks(0, usize::MAX).iter().map(|b| b.hash()).collect()),
        None => Vec::new(),
    };
    let forks = meter.summary(&best);
    let groups = scenario
        .groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let names: Vec<&str> = world
                .specs
                .iter()
                .filter(|s| s.group == g)
                .map(|s| s.name.as_str())
                .collect();
            let (mined, on_best_chain, revenue) = forks.group(&names);
            let gamma = meter.race(&names).gamma();
            GroupOutcome {
                name: group.name.clone(),
                behaviour: group.behaviour.clone(),
                hash_share: group.hash_share,
                mined,
                on_best_chain,
                revenue,
                gamma,
            }
        })
        .collect();
    let heights = sampled
        .iter()
        .zip(heights)
        .map(|(&i, series)| (world.specs[i].name.clone(), series))
        .collect();
    for handle in world.handles.iter_mut().filter_map(Option::take) {
        handle.shutdown().await;
    }
    let (digest, events, mined, reorgs, rejected) = {
        let mut rec = recorder.lock();
        let digest = hex(&rec.digest.clone().finalize());
        let events = rec.events;
        if let Some(log) = &mut rec.log {
            let end = serde_json::json!({
                "t_ms": virtual_time.as_millis() as u64,
                "end": {"height": height, "digest": digest, "events": events},
            });
            writeln!(log, "{end}")?;
            log.flush()?;
        }
        if let Some(e) = rec.log_error.take() {
            anyhow::bail!("writing the log failed: {e}");
        }
        (digest, rec.events, rec.mined, rec.reorgs, rec.rejected)
    };
    let wall_ms = wall.elapsed().as_millis() as u64;
    Ok(Outcome {
        scenario: scenario.name.clone(),
        seed,
        value,
        digest,
        events,
        virtual_ms: virtual_time.as_millis() as u64,
        wall_ms,
        speedup: virtual_time.as_secs_f64() / wall.elapsed().as_secs_f64().max(1e-9),
        nodes: n,
        height,
        common_height: common,
        agreed,
        blocks_mined: mined,
        reorgs,
        rejected,
        stale_rate: forks.stale_rate,
        mean_interval_ms: forks.mean_interval_ms,
        propagation_median_ms: forks.propagation.as_ref().map(|d| d.median_ms),
        transfers: world.transfers,
        messages: world.network.stats().0,
        peak_rss_mib: peak_rss_mib(),
        groups,
        heights,
        delays_ms: meter.delays_ms(),
        faults: faults_seen,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs every `(seed, value, scenario)` on `jobs` threads (each run on
/// its own thread, in virtual time), calling `done` after each; returns
/// the results in the order given.
pub fn run_all(
    runs: &[scenario::Run],
    jobs: usize,
    options: &Options,
    done: &(dyn Fn(&scenario::Run, &anyhow::Result<Outcome>) + Sync),
) -> Vec<anyhow::Result<Outcome>> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<anyhow::Result<Outcome>>>> =
        runs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, runs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(r) = runs.get(i) else { break };
                    let mut opts = options.clone();
                    // One log per run: the given path gets the run's index.
                    if runs.len() > 1 {
                        opts.log = options.log.as_ref().map(|p| numbered(p, i));
                    }
                    let result = run(&r.scenario, r.seed, r.value, &opts);
                    done(r, &result);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err(anyhow::anyhow!("the run did not happen")))
        })
        .collect()
}

/// `dir/name.jsonl` → `dir/name-3.jsonl`.
fn numbered(path: &std::path::Path, i: usize) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("jsonl");
    path.with_file_name(format!("{stem}-{i}.{ext}"))
}
