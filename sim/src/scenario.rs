//! The scenario file: what a simulation runs, parsed and checked before
//! the run starts.
//!
//! A scenario is a TOML file (the format, every key and examples:
//! `docs/scenarios.md`; ready-made ones in `sim/scenarios/`). [`Scenario::parse`]
//! turns the text into a [`Scenario`] whose every value is already checked,
//! so the runner never meets an impossible one: unknown keys, negative or
//! NaN durations, shares that are not positive, faults naming unknown nodes,
//! a restart of a node that never crashed and a sweep too large for the
//! machine are all refused here, with the 1-based line of the offending key
//! and a reason that names it ([`ScenarioError`]). The parser never panics,
//! whatever the text.
//!
//! [`Scenario::nodes`] expands the groups into one [`NodeSpec`] per node;
//! [`Scenario::runs`] expands a sweep and the seeds into the [`Run`]s an
//! experiment consists of.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// Largest scenario file [`Scenario::load`] reads, in bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most nodes one run may have.
pub const MAX_NODES: usize = 200_000;
/// Most `[[nodes]]` groups.
pub const MAX_GROUPS: usize = 1_000;
/// Most `[[faults]]`.
pub const MAX_FAULTS: usize = 10_000;
/// Most seeds.
pub const MAX_SEEDS: usize = 1_000;
/// Most values of a sweep.
pub const MAX_SWEEP_VALUES: usize = 1_000;
/// Most runs (sweep values × seeds) of one experiment.
pub const MAX_RUNS: usize = 1_000;
/// Most latency regions.
pub const MAX_REGIONS: usize = 64;
/// Estimated memory one simulated node needs, in bytes: its chain state,
/// mempool, peer table and task (blocks and transactions themselves are
/// shared between nodes). A run whose nodes × this exceeds the machine's
/// available memory is refused before it starts.
pub const NODE_MEMORY_ESTIMATE: u64 = 60 * 1024;
/// Available memory assumed when `/proc/meminfo` cannot be read.
pub const DEFAULT_AVAILABLE_MEMORY: u64 = 16 * 1024 * 1024 * 1024;
/// Longest duration a scenario may give, in milliseconds (about 31 years of
/// virtual time): far past any run, small enough that no sum of two
/// overflows.
pub const MAX_MS: f64 = 1e12;
/// Largest clock skew of one node, in milliseconds (one year either way).
pub const MAX_SKEW_MS: i64 = 365 * 24 * 3600 * 1000;
/// Highest transfer rate, per second of virtual time.
pub const MAX_TRANSFER_RATE: f64 = 1e6;
/// Most node names the partition faults of a scenario may expand to: each
/// partition names every node once (the unlisted ones in its last group),
/// so this bounds partitions × nodes, and the memory and time expanding
/// them takes.
pub const MAX_PARTITION_NAMES: usize = 2_000_000;
/// Most faults and partition node names all the runs of an experiment hold
/// together ((faults + partition names) × runs): [`Scenario::runs`] gives
/// each run its own copy of the schedule.
pub const MAX_RUN_ENTRIES: usize = 10_000_000;
/// Shortest peer-maintenance interval a scenario may set
/// (`maintenance_ms`): each round is a status call to every peer, so a
/// shorter one would bury the run in calls.
pub const MIN_MAINTENANCE: Duration = Duration::from_millis(100);
/// Longest peer-maintenance interval a scenario may set: an hour.
pub const MAX_MAINTENANCE: Duration = Duration::from_secs(3_600);
/// Tolerance of the sum of the hash shares above 1 (floating point sums).
pub const SHARE_EPSILON: f64 = 1e-9;

/// A whole experiment: the network, its faults, when to stop, and which
/// seeds (and which values of a swept parameter) to run it with.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Names the experiment in logs, tables and output files.
    pub name: String,
    /// Every run is repeated once per seed (`seed = 5` or `seeds = [1, 2]`).
    pub seeds: Vec<u64>,
    /// Proof-of-work difficulty in leading zero bits (1..=24): small, since
    /// mining is drawn from virtual time and the work only has to be valid.
    pub difficulty: u8,
    /// Mean time between blocks of the whole network; `None` when nodes mine
    /// only on demand (`block_interval_ms = "on_demand"`).
    pub block_interval: Option<Duration>,
    /// How many peers each node keeps.
    pub max_peers: usize,
    /// Time between two peer-maintenance rounds of each node (a status
    /// call to every peer, then discovery or rotation): `maintenance_ms`.
    /// `None`: 2 s and 2 ms more a node, at most 30 s.
    pub maintenance: Option<Duration>,
    /// The node groups (`[[nodes]]`), in file order.
    pub groups: Vec<Group>,
    /// How long a message takes from one node to another.
    pub latency: Latency,
    /// Probability that a message is lost, in [0, 1).
    pub loss: f64,
    /// The background transfers between nodes.
    pub transfers: Transfers,
    /// The fault schedule, sorted by [`Fault::at`] (stable: faults at the
    /// same time keep their file order).
    pub faults: Vec<Fault>,
    /// When each run ends.
    pub stop: Stop,
    /// The parameter varied across runs, if any.
    pub sweep: Option<Sweep>,
}

/// A group of identical nodes (`[[nodes]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Prefix of the nodes' names (`{name}-{i}`), unique, `[a-z0-9_]+`.
    pub name: String,
    /// How many nodes the group has (at least one).
    pub count: usize,
    /// The behaviour every node runs, normalised as the registry does
    /// (`double-spender` becomes `double_spender`).
    pub behaviour: String,
    /// The group's total share of the network's hash power, split equally
    /// between its nodes.
    pub hash_share: f64,
    /// The latency region the nodes sit in, a name of
    /// [`Latency::regions`].
    pub region: Option<String>,
}

/// The delay drawn for each message on a link, before regions add theirs:
/// the in-memory network's own type, which draws it.
pub use crapcoin_core::memory::LinkDelay;

/// The latency model (`[latency]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// The per-message draw of every link.
    pub link: LinkDelay,
    /// Region names (`[latency.regions] names`); empty when the network has
    /// no geography.
    pub regions: Vec<String>,
    /// `one_way[a][b]`: added to the link draw of a message from a node of
    /// region `a` to one of region `b`; square, `regions.len()` on a side.
    pub one_way: Vec<Vec<Duration>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            link: LinkDelay::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(20),
            },
            regions: Vec::new(),
            one_way: Vec::new(),
        }
    }
}

/// Background transfers (`[transfers]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transfers {
    /// Transfers submitted per second of virtual time, network-wide (0: none).
    pub rate_per_sec: f64,
    /// Stop submitting after this many; `None`: no limit.
    pub max: Option<u64>,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers {
            rate_per_sec: 1.0,
            max: None,
        }
    }
}

/// One scheduled fault (`[[faults]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Virtual time since the start of the run at which it happens.
    pub at: Duration,
    /// The 1-based line of its `[[faults]]` entry, to name it in reports.
    pub line: usize,
    /// What happens.
    pub kind: FaultKind,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Splits the network: nodes talk only within their group until a
    /// `Heal`. Names in the file are node or group names; here they are
    /// expanded to node names, and the nodes the file did not list form one
    /// more group at the end, so the groups cover every node exactly once.
    Partition {
        /// The groups of node names, at least two, none empty.
        groups: Vec<Vec<String>>,
        /// Nodes in no group that reach every group (`bridge`), maybe
        /// none.
        bridge: Vec<String>,
    },
    /// Ends every partition and isolation: every link works again.
    Heal,
    /// Cuts one node off from every other (a partition of one) until a
    /// `Heal`.
    Isolate {
        /// The node's name.
        node: String,
    },
    /// Stops a node; its data stays for a `Restart`.
    Crash {
        /// The node's name.
        node: String,
    },
    /// Starts a crashed node again on its data.
    Restart {
        /// The node's name; the schedule crashed it before.
        node: String,
    },
    /// Freezes a node (it neither sends nor handles anything) for a while.
    Pause {
        /// The node's name.
        node: String,
        /// How long it stays frozen.
        duration: Duration,
    },
    /// Delays a node's calls (to every node, or to the ones listed) for a
    /// while: each waits `mean ± jitter` before it is sent (the node's
    /// fault layer, `crapcoin_core::faults`).
    Latency {
        /// The node's name.
        node: String,
        /// The mean wait.
        mean: Duration,
        /// How far a wait may be from the mean, either way.
        jitter: Duration,
        /// The nodes whose calls wait; `None`: every node.
        to: Option<Vec<String>>,
        /// How long the fault lasts.
        duration: Duration,
    },
    /// Loses a share of a node's calls (to every node, or to the ones
    /// listed) for a while (the node's fault layer).
    Loss {
        /// The node's name.
        node: String,
        /// Probability that a call is lost, in [0, 1].
        rate: f64,
        /// The nodes whose calls may be lost; `None`: every node.
        to: Option<Vec<String>>,
        /// How long the fault lasts.
        duration: Duration,
    },
    /// Moves a node's clock away from virtual time from now on.
    ClockSkew {
        /// The node's name.
        node: String,
        /// How far its clock runs ahead (negative: behind), in milliseconds.
        skew_ms: i64,
    },
}

/// When a run ends (`[stop]`): at whichever comes first.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// Virtual time since the start.
    pub time: Option<Duration>,
    /// Height of the best chain of any node.
    pub height: Option<u64>,
}

/// A parameter varied across runs (`[sweep]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Which parameter.
    pub parameter: SweepParam,
    /// Its values, each run once per seed.
    pub values: Vec<f64>,
}

/// The parameters a sweep can vary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepParam {
    /// `block_interval_ms`: the target block interval in milliseconds.
    BlockIntervalMs,
    /// `loss`: the message loss probability.
    Loss,
    /// `latency_ms`: the mean of the link delay in milliseconds (the
    /// distribution's shape is kept; region latencies are unchanged).
    LatencyMs,
    /// `hash_share:<group>`: the group's total hash share; the other groups
    /// keep their proportions and the total stays what the file gives.
    HashShare(String),
}

impl std::fmt::Display for SweepParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepParam::BlockIntervalMs => f.write_str("block_interval_ms"),
            SweepParam::Loss => f.write_str("loss"),
            SweepParam::LatencyMs => f.write_str("latency_ms"),
            SweepParam::HashShare(group) => write!(f, "hash_share:{group}"),
        }
    }
}

/// One node of a scenario, as [`Scenario::nodes`] expands the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// `{group}-{i}`, i counted from 0 within the group.
    pub name: String,
    /// Index of its group in [`Scenario::groups`].
    pub group: usize,
    /// The behaviour's registry name.
    pub behaviour: String,
    /// The node's own share of the hash power.
    pub hash_share: f64,
    /// Index of its region in [`Latency::regions`].
    pub region: Option<usize>,
}

/// One run of an experiment: a seed, the swept value, and the scenario with
/// that value applied (its `seeds` is just this seed and its `sweep` none).
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The run's seed; every random choice derives from it.
    pub seed: u64,
    /// The swept parameter's value, when the scenario sweeps.
    pub value: Option<f64>,
    /// What this run simulates.
    pub scenario: Scenario,
}

/// A scenario refused: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}line {line}: {reason}")]
pub struct ScenarioError {
    /// 1-based line of the offending key; 0 when no line applies (a missing
    /// table, an unreadable file).
    pub line: usize,
    /// What is wrong, naming the key.
    pub reason: String,
    /// The file followed by `": "`, or empty when parsed from text.
    pub path: String,
}

impl ScenarioError {
    pub(crate) fn new(line: usize, reason: impl Into<String>) -> Self {
        ScenarioError {
            line,
            reason: reason.into(),
            path: String::new(),
        }
    }

    /// The same error, naming `path`.
    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        self.path = format!("{}: ", path.display());
        self
    }
}

// ---------------------------------------------------------------------------
// The file as written: every value spanned, checked afterwards.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<Spanned<String>>,
    seed: Option<Spanned<i64>>,
    seeds: Option<Spanned<Vec<Spanned<i64>>>>,
    difficulty: Option<Spanned<i64>>,
    block_interval_ms: Option<Spanned<toml::Value>>,
    max_peers: Option<Spanned<i64>>,
    maintenance_ms: Option<Spanned<f64>>,
    #[serde(default)]
    nodes: Vec<Spanned<RawGroup>>,
    latency: Option<Spanned<RawLatency>>,
    loss: Option<Spanned<f64>>,
    transfers: Option<Spanned<RawTransfers>>,
    #[serde(default)]
    faults: Vec<Spanned<RawFault>>,
    stop: Option<Spanned<RawStop>>,
    sweep: Option<Spanned<RawSweep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    count: Option<Spanned<i64>>,
    behaviour: Option<Spanned<String>>,
    hash_share: Option<Spanned<f64>>,
    region: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    kind: Option<Spanned<String>>,
    ms: Option<Spanned<f64>>,
    min_ms: Option<Spanned<f64>>,
    max_ms: Option<Spanned<f64>>,
    mean_ms: Option<Spanned<f64>>,
    regions: Option<Spanned<RawRegions>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegions {
    names: Spanned<Vec<Spanned<String>>>,
    one_way_ms: Spanned<Vec<Spanned<Vec<Spanned<f64>>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransfers {
    rate_per_sec: Option<Spanned<f64>>,
    max: Option<Spanned<i64>>,
}

/// One group of a partition as written: node or group names.
type SpannedNames = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    at_ms: Spanned<f64>,
    kind: Spanned<String>,
    groups: Option<Spanned<Vec<SpannedNames>>>,
    node: Option<Spanned<String>>,
    for_ms: Option<Spanned<f64>>,
    skew_ms: Option<Spanned<i64>>,
    bridge: Option<SpannedNames>,
    mean_ms: Option<Spanned<f64>>,
    jitter_ms: Option<Spanned<f64>>,
    rate: Option<Spanned<f64>>,
    to: Option<SpannedNames>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStop {
    time_ms: Option<Spanned<f64>>,
    height: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    parameter: Spanned<String>,
    values: Spanned<Vec<Spanned<f64>>>,
}

/// Maps byte offsets of the text to 1-based lines.
pub(crate) struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn of<T>(&self, spanned: &Spanned<T>) -> usize {
        self.line(spanned.span().start)
    }

    fn err<T>(&self, spanned: &Spanned<T>, reason: impl Into<String>) -> ScenarioError {
        ScenarioError::new(self.of(spanned), reason)
    }

    /// The key written before `=` on the line of `offset`, if any.
    fn key_at(&self, offset: usize) -> Option<&'a str> {
        let line = self.line(offset);
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let end = self.starts.get(line).copied().unwrap_or(self.text.len());
        let text = self.text.get(start..end)?;
        let (key, _) = text.split_once('=')?;
        let key = key.trim();
        (!key.is_empty() && !key.starts_with('[')).then_some(key)
    }

    /// A TOML or serde error as a [`ScenarioError`], naming the key of its
    /// line when the message does not.
    pub(crate) fn toml_error(&self, e: &toml::de::Error) -> ScenarioError {
        let message = e.message().trim();
        let Some(span) = e.span() else {
            return ScenarioError::new(0, message);
        };
        let line = self.line(span.start);
        match self.key_at(span.start) {
            Some(key) if !message.contains(&format!("`{key}`")) => {
                ScenarioError::new(line, format!("`{key}`: {message}"))
            }
            _ => ScenarioError::new(line, message),
        }
    }
}

fn ms(lines: &Lines<'_>, key: &str, value: &Spanned<f64>) -> Result<Duration, ScenarioError> {
    ms_value(*value.get_ref()).map_err(|why| lines.err(value, format!("`{key}` {why}")))
}

fn ms_value(ms: f64) -> Result<Duration, String> {
    if ms.is_nan() {
        return Err("is NaN".into());
    }
    if ms < 0.0 {
        return Err(format!("is negative ({ms})"));
    }
    if ms > MAX_MS {
        return Err(format!("is too long ({ms} ms > {MAX_MS} ms)"));
    }
    // In range: at most 1e18 ns, below u64::MAX.
    Ok(Duration::from_nanos((ms * 1e6).round() as u64))
}

fn positive_ms(
    lines: &Lines<'_>,
    key: &str,
    value: &Spanned<f64>,
) -> Result<Duration, ScenarioError> {
    let d = ms(lines, key, value)?;
    if d.is_zero() {
        return Err(lines.err(value, format!("`{key}` must be positive")));
    }
    Ok(d)
}

fn int_in(
    lines: &Lines<'_>,
    key: &str,
    value: &Spanned<i64>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ScenarioError> {
    let v = *value.get_ref();
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(lines.err(
            value,
            format!(
                "`{key}` = {v} is out of range {}..={}",
                range.start(),
                range.end()
            ),
        ))
    }
}

fn group_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn scenario_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Memory the machine has available now: `MemAvailable` of `/proc/meminfo`,
/// or [`DEFAULT_AVAILABLE_MEMORY`] when it cannot be read.
pub fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kb| kb.trim().parse::<u64>().ok())
        })
        .map(|kb| kb.saturating_mul(1024))
        .unwrap_or(DEFAULT_AVAILABLE_MEMORY)
}

impl Scenario {
    /// Parses and checks a scenario.
    ///
    /// # Errors
    ///
    /// A [`ScenarioError`] with the line of the first offending key: TOML
    /// syntax, unknown keys, wrong types, impossible values, unknown names,
    /// inconsistent faults, or a sweep too large for this machine (see
    /// [`MAX_RUNS`] and [`NODE_MEMORY_ESTIMATE`]).
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Self::parse_with_memory(text, available_memory())
    }

    /// [`Scenario::parse`] against a given amount of available memory, in
    /// bytes, instead of this machine's.
    ///
    /// # Errors
    ///
    /// As [`Scenario::parse`].
    pub fn parse_with_memory(text: &str, available: u64) -> Result<Scenario, ScenarioError> {
        parse_named(text, available).map(|(scenario, _)| scenario)
    }

    /// Reads and parses a scenario file (at most [`MAX_FILE_BYTES`]); a
    /// scenario without `name` is named after the file.
    ///
    /// # Errors
    ///
    /// A [`ScenarioError`] naming the file: unreadable, too large, not
    /// UTF-8, or refused by [`Scenario::parse`].
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = read_text(path)?;
        let (mut scenario, named) =
            parse_named(&text, available_memory()).map_err(|e| e.in_file(path))?;
        if !named {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if scenario_name_ok(stem) {
                    scenario.name = stem.to_owned();
                }
            }
        }
        Ok(scenario)
    }

    /// Every node, group by group: name, group index, behaviour, own hash
    /// share and region index.
    pub fn nodes(&self) -> Vec<NodeSpec> {
        let total: usize = self.groups.iter().map(|g| g.count).sum();
        let mut nodes = Vec::with_capacity(total);
        for (index, group) in self.groups.iter().enumerate() {
            let share = group.hash_share / group.count.max(1) as f64;
            let region = group
                .region
                .as_ref()
                .and_then(|r| self.latency.regions.iter().position(|n| n == r));
            for i in 0..group.count {
                nodes.push(NodeSpec {
                    name: format!("{}-{i}", group.name),
                    group: index,
                    behaviour: group.behaviour.clone(),
                    hash_share: share,
                    region,
                });
            }
        }
        nodes
    }

    /// How many nodes a run has.
    pub fn node_count(&self) -> usize {
        self.groups.iter().map(|g| g.count).sum()
    }

    /// The experiment's runs: every sweep value (in file order) × every
    /// seed, or just the seeds without a sweep. Each run's scenario has the
    /// value applied, its one seed, and no sweep.
    pub fn runs(&self) -> Vec<Run> {
        let mut base = self.clone();
        base.sweep = None;
        base.seeds = Vec::new();
        let values: Vec<Option<f64>> = match &self.sweep {
            Some(sweep) => sweep.values.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        let mut runs = Vec::with_capacity(values.len() * self.seeds.len());
        for value in values {
            let mut applied = base.clone();
            if let (Some(sweep), Some(v)) = (&self.sweep, value) {
                // Values were checked by `parse`; a scenario built by hand
                // with a bad value keeps the file's.
                if let Err(why) = apply(&mut applied, &sweep.parameter, v) {
                    tracing::warn!(parameter = %sweep.parameter, value = v, %why, "sweep value not applied");
                }
            }
            for &seed in &self.seeds {
                let mut scenario = applied.clone();
                scenario.seeds = vec![seed];
                runs.push(Run {
                    seed,
                    value,
                    scenario,
                });
            }
        }
        runs
    }
}

/// Parses and checks a scenario; also tells whether the file named it.
fn parse_named(text: &str, available: u64) -> Result<(Scenario, bool), ScenarioError> {
    let lines = Lines::new(text);
    let raw: RawScenario = toml::from_str(text).map_err(|e| lines.toml_error(&e))?;
    let named = raw.name.is_some();
    Ok((build(&lines, raw, available)?, named))
}

/// Applies a sweep value to a scenario; the reason when it is impossible.
fn apply(s: &mut Scenario, param: &SweepParam, v: f64) -> Result<(), String> {
    if !v.is_finite() {
        return Err(format!("{v} is not a finite number"));
    }
    match param {
        SweepParam::BlockIntervalMs => {
            let d = ms_value(v)?;
            if d.is_zero() {
                return Err("a block interval must be positive".into());
            }
            s.block_interval = Some(d);
        }
        SweepParam::Loss => {
            if !(0.0..1.0).contains(&v) {
                return Err(format!("loss {v} is outside [0, 1)"));
            }
            s.loss = v;
        }
        SweepParam::LatencyMs => {
            s.latency.link = s.latency.link.with_mean(ms_value(v)?);
        }
        SweepParam::HashShare(name) => {
            let Some(index) = s.groups.iter().position(|g| &g.name == name) else {
                return Err(format!("no group named {name:?}"));
            };
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("hash share {v} is outside (0, 1]"));
            }
            let total: f64 = s.groups.iter().map(|g| g.hash_share).sum();
            let old = s.groups[index].hash_share;
            let others = total - old;
            let left = total - v;
            if s.groups.len() > 1 {
                if left < -SHARE_EPSILON {
                    return Err(format!(
                        "hash share {v} is more than the total {total} of every group"
                    ));
                }
                if others > 0.0 {
                    if s.block_interval.is_some() && left <= 0.0 {
                        return Err(format!("hash share {v} leaves nothing to the other groups"));
                    }
                    let factor = left.max(0.0) / others;
                    for (i, g) in s.groups.iter_mut().enumerate() {
                        if i != index {
                            g.hash_share *= factor;
                        }
                    }
                }
            }
            s.groups[index].hash_share = v;
        }
    }
    Ok(())
}

fn build(lines: &Lines<'_>, raw: RawScenario, available: u64) -> Result<Scenario, ScenarioError> {
    let name = match &raw.name {
        Some(n) if !scenario_name_ok(n.get_ref()) => {
            return Err(lines.err(
                n,
                "`name` must be 1 to 128 characters of letters, digits, '_', '-' and '.'",
            ));
        }
        Some(n) => n.get_ref().clone(),
        None => "scenario".to_owned(),
    };

    let seeds = seeds(lines, &raw)?;

    let difficulty = match &raw.difficulty {
        Some(d) => int_in(lines, "difficulty", d, 1..=24)? as u8,
        None => 8,
    };

    let block_interval = match &raw.block_interval_ms {
        None => Some(Duration::from_millis(1000)),
        Some(v) => {
            let ms_f = match v.get_ref() {
                toml::Value::String(s) if s == "on_demand" => None,
                toml::Value::Integer(i) => Some(*i as f64),
                toml::Value::Float(f) => Some(*f),
                _ => {
                    return Err(lines.err(
                        v,
                        "`block_interval_ms` must be a number of milliseconds or \"on_demand\"",
                    ));
                }
            };
            match ms_f {
                None => None,
                Some(f) => Some(positive_ms(
                    lines,
                    "block_interval_ms",
                    &Spanned::new(v.span(), f),
                )?),
            }
        }
    };

    let max_peers = match &raw.max_peers {
        Some(p) => int_in(lines, "max_peers", p, 1..=125)? as usize,
        None => 8,
    };

    let maintenance = match &raw.maintenance_ms {
        Some(m) => {
            let d = ms(lines, "maintenance_ms", m)?;
            if !(MIN_MAINTENANCE..=MAX_MAINTENANCE).contains(&d) {
                return Err(lines.err(
                    m,
                    format!(
                        "`maintenance_ms` = {} is outside [{}, {}]",
                        m.get_ref(),
                        MIN_MAINTENANCE.as_millis(),
                        MAX_MAINTENANCE.as_millis()
                    ),
                ));
            }
            Some(d)
        }
        None => None,
    };

    let latency = latency(lines, raw.latency.as_ref())?;
    let groups = groups(
        lines,
        &raw.nodes,
        &latency,
        block_interval.is_some(),
        available,
    )?;

    let loss = match &raw.loss {
        Some(l) => {
            let v = *l.get_ref();
            if !(0.0..1.0).contains(&v) {
                return Err(lines.err(l, format!("`loss` = {v} is outside [0, 1)")));
            }
            v
        }
        None => 0.0,
    };

    let transfers = match &raw.transfers {
        None => Transfers::default(),
        Some(t) => {
            let t = t.get_ref();
            let rate_per_sec = match &t.rate_per_sec {
                Some(r) => {
                    let v = *r.get_ref();
                    if !(0.0..=MAX_TRANSFER_RATE).contains(&v) {
                        return Err(lines.err(
                            r,
                            format!("`rate_per_sec` = {v} is outside [0, {MAX_TRANSFER_RATE}]"),
                        ));
                    }
                    v
                }
                None => 1.0,
            };
            let max = match &t.max {
                Some(m) => Some(int_in(lines, "max", m, 0..=i64::MAX)? as u64),
                None => None,
            };
            Transfers { rate_per_sec, max }
        }
    };

    let stop = match &raw.stop {
        None => {
            return Err(ScenarioError::new(
                0,
                "missing [stop]: a run needs `time_ms` or `height` to end",
            ));
        }
        Some(s) => {
            let body = s.get_ref();
            let time = match &body.time_ms {
                Some(t) => Some(positive_ms(lines, "time_ms", t)?),
                None => None,
            };
            let height = match &body.height {
                Some(h) => Some(int_in(lines, "height", h, 1..=i64::MAX)? as u64),
                None => None,
            };
            if time.is_none() && height.is_none() {
                return Err(lines.err(s, "[stop] needs `time_ms` or `height` (or both)"));
            }
            Stop { time, height }
        }
    };

    let mut scenario = Scenario {
        name,
        seeds,
        difficulty,
        block_interval,
        max_peers,
        maintenance,
        groups,
        latency,
        loss,
        transfers,
        faults: Vec::new(),
        stop,
        sweep: None,
    };
    scenario.faults = faults(lines, &raw.faults, &scenario)?;
    scenario.sweep = match &raw.sweep {
        Some(s) => Some(sweep(lines, s, &scenario)?),
        None => None,
    };
    let runs = scenario
        .sweep
        .as_ref()
        .map_or(1, |w| w.values.len())
        .saturating_mul(scenario.seeds.len());
    let entries = runs.saturating_mul(schedule_entries(&scenario.faults));
    if entries > MAX_RUN_ENTRIES {
        let line = match (&raw.sweep, &raw.seeds) {
            (Some(w), _) => lines.of(&w.get_ref().values),
            (None, Some(seeds)) => lines.of(seeds),
            (None, None) => 0,
        };
        return Err(ScenarioError::new(
            line,
            format!(
                "sweep too large: {runs} runs × their fault schedules = {entries} entries, more than {MAX_RUN_ENTRIES}"
            ),
        ));
    }
    Ok(scenario)
}

/// The faults and the node names of their partitions: what copying a
/// schedule costs.
fn schedule_entries(faults: &[Fault]) -> usize {
    faults
        .iter()
        .map(|f| match &f.kind {
            FaultKind::Partition { groups, bridge } => {
                1 + bridge.len() + groups.iter().map(Vec::len).sum::<usize>()
            }
            FaultKind::Latency { to, .. } | FaultKind::Loss { to, .. } => {
                1 + to.as_ref().map_or(0, Vec::len)
            }
            _ => 1,
        })
        .sum()
}

fn seeds(lines: &Lines<'_>, raw: &RawScenario) -> Result<Vec<u64>, ScenarioError> {
    let seed_of = |s: &Spanned<i64>, key: &str| -> Result<u64, ScenarioError> {
        u64::try_from(*s.get_ref())
            .map_err(|_| lines.err(s, format!("`{key}` must not be negative")))
    };
    match (&raw.seed, &raw.seeds) {
        (Some(_), Some(list)) => Err(lines.err(list, "give `seed` or `seeds`, not both")),
        (Some(one), None) => Ok(vec![seed_of(one, "seed")?]),
        (None, None) => Ok(vec![1]),
        (None, Some(list)) => {
            let items = list.get_ref();
            if items.is_empty() {
                return Err(lines.err(list, "`seeds` is empty"));
            }
            if items.len() > MAX_SEEDS {
                return Err(lines.err(
                    list,
                    format!("`seeds` has {} entries, more than {MAX_SEEDS}", items.len()),
                ));
            }
            let mut seen = BTreeSet::new();
            let mut seeds = Vec::with_capacity(items.len());
            for s in items {
                let v = seed_of(s, "seeds")?;
                if !seen.insert(v) {
                    return Err(lines.err(s, format!("`seeds` lists {v} twice")));
                }
                seeds.push(v);
            }
            Ok(seeds)
        }
    }
}

fn latency(lines: &Lines<'_>, raw: Option<&Spanned<RawLatency>>) -> Result<Latency, ScenarioError> {
    let Some(spanned) = raw else {
        return Ok(Latency::default());
    };
    let raw = spanned.get_ref();
    let kind = raw
        .kind
        .as_ref()
        .map_or("uniform", |k| k.get_ref().as_str());
    // Every key of another kind is refused, so a typo is not silently ignored.
    let keys: [(&str, &Option<Spanned<f64>>); 4] = [
        ("ms", &raw.ms),
        ("min_ms", &raw.min_ms),
        ("max_ms", &raw.max_ms),
        ("mean_ms", &raw.mean_ms),
    ];
    let allowed: &[&str] = match kind {
        "constant" => &["ms"],
        "uniform" => &["min_ms", "max_ms"],
        "exponential" => &["mean_ms"],
        other => {
            let at = raw.kind.as_ref().map_or(lines.of(spanned), |k| lines.of(k));
            return Err(ScenarioError::new(
                at,
                format!(
                    "[latency] `kind` = {other:?} is unknown (known: constant, uniform, exponential)"
                ),
            ));
        }
    };
    for (key, value) in keys {
        if let Some(v) = value {
            if !allowed.contains(&key) {
                return Err(lines.err(
                    v,
                    format!(
                        "[latency] `{key}` does not apply to kind {kind:?} (it takes {allowed:?})"
                    ),
                ));
            }
        }
    }
    let need = |key: &str, v: &Option<Spanned<f64>>| -> Result<Duration, ScenarioError> {
        match v {
            Some(v) => ms(lines, key, v),
            None => Err(lines.err(spanned, format!("[latency] of kind {kind:?} needs `{key}`"))),
        }
    };
    let link = match kind {
        "constant" => LinkDelay::Constant(need("ms", &raw.ms)?),
        "exponential" => LinkDelay::Exponential {
            mean: need("mean_ms", &raw.mean_ms)?,
        },
        _ => match (&raw.min_ms, &raw.max_ms) {
            (None, None) => Latency::default().link,
            _ => {
                let min = need("min_ms", &raw.min_ms)?;
                let max = need("max_ms", &raw.max_ms)?;
                if min > max {
                    let at = raw
                        .max_ms
                        .as_ref()
                        .map_or(lines.of(spanned), |m| lines.of(m));
                    return Err(ScenarioError::new(
                        at,
                        "[latency] `max_ms` is below `min_ms`",
                    ));
                }
                LinkDelay::Uniform { min, max }
            }
        },
    };
    let (regions, one_way) = match &raw.regions {
        None => (Vec::new(), Vec::new()),
        Some(r) => regions(lines, r.get_ref())?,
    };
    Ok(Latency {
        link,
        regions,
        one_way,
    })
}

fn regions(
    lines: &Lines<'_>,
    raw: &RawRegions,
) -> Result<(Vec<String>, Vec<Vec<Duration>>), ScenarioError> {
    let names = raw.names.get_ref();
    if names.is_empty() {
        return Err(lines.err(&raw.names, "[latency.regions] `names` is empty"));
    }
    if names.len() > MAX_REGIONS {
        return Err(lines.err(
            &raw.names,
            format!(
                "[latency.regions] `names` has {} regions, more than {MAX_REGIONS}",
                names.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for n in names {
        let name = n.get_ref();
        if name.is_empty() || name.len() > 64 {
            return Err(lines.err(
                n,
                "[latency.regions] `names`: a region name has 1 to 64 characters",
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(lines.err(n, format!("[latency.regions] `names` lists {name:?} twice")));
        }
    }
    let rows = raw.one_way_ms.get_ref();
    if rows.len() != names.len() {
        return Err(lines.err(
            &raw.one_way_ms,
            format!(
                "[latency.regions] `one_way_ms` has {} rows for {} regions (it must be square)",
                rows.len(),
                names.len()
            ),
        ));
    }
    let mut one_way = Vec::with_capacity(rows.len());
    for row in rows {
        if row.get_ref().len() != names.len() {
            return Err(lines.err(
                row,
                format!(
                    "[latency.regions] `one_way_ms`: a row has {} entries for {} regions",
                    row.get_ref().len(),
                    names.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(names.len());
        for cell in row.get_ref() {
            out.push(ms(lines, "one_way_ms", cell)?);
        }
        one_way.push(out);
    }
    Ok((names.iter().map(|n| n.get_ref().clone()).collect(), one_way))
}

fn groups(
    lines: &Lines<'_>,
    raw: &[Spanned<RawGroup>],
    latency: &Latency,
    mining: bool,
    available: u64,
) -> Result<Vec<Group>, ScenarioError> {
    if raw.is_empty() {
        return Err(ScenarioError::new(
            0,
            "no [[nodes]]: a scenario needs at least one group",
        ));
    }
    if raw.len() > MAX_GROUPS {
        return Err(lines.err(
            &raw[MAX_GROUPS],
            format!("{} [[nodes]] groups, more than {MAX_GROUPS}", raw.len()),
        ));
    }
    let known = behaviours::registry::list();
    let mut names = BTreeSet::new();
    let mut total = 0usize;
    let mut given = 0.0f64;
    let mut missing = 0usize;
    let mut out = Vec::with_capacity(raw.len());
    for spanned in raw {
        let g = spanned.get_ref();
        let name = g.name.get_ref();
        if !group_name_ok(name) {
            return Err(lines.err(
                &g.name,
                format!("[[nodes]] `name` = {name:?}: 1 to 64 characters of a-z, 0-9 and '_'"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(lines.err(
                &g.name,
                format!("[[nodes]] `name` = {name:?} is used twice"),
            ));
        }
        let count = match &g.count {
            Some(c) => int_in(lines, "count", c, 1..=MAX_NODES as i64)? as usize,
            None => 1,
        };
        total = total.saturating_add(count);
        if total > MAX_NODES {
            let at = g.count.as_ref().map_or(lines.of(spanned), |c| lines.of(c));
            return Err(ScenarioError::new(
                at,
                format!("`count`: {total} nodes in all, more than {MAX_NODES}"),
            ));
        }
        let need = (total as u64).saturating_mul(NODE_MEMORY_ESTIMATE);
        if need > available {
            let at = g.count.as_ref().map_or(lines.of(spanned), |c| lines.of(c));
            return Err(ScenarioError::new(
                at,
                format!(
                    "`count`: too large for this machine: {total} nodes × {} KiB = {} MiB per run, {} MiB available",
                    NODE_MEMORY_ESTIMATE / 1024,
                    need / (1024 * 1024),
                    available / (1024 * 1024)
                ),
            ));
        }
        let behaviour = match &g.behaviour {
            Some(b) => {
                let key = b.get_ref().trim().replace('-', "_");
                if !known.iter().any(|(n, _)| *n == key) {
                    let list: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                    return Err(lines.err(
                        b,
                        format!(
                            "`behaviour` = {:?} is unknown (known: {})",
                            b.get_ref(),
                            list.join(", ")
                        ),
                    ));
                }
                key
            }
            None => "honest".to_owned(),
        };
        let hash_share = match &g.hash_share {
            Some(s) => {
                let v = *s.get_ref();
                let ok = if mining { v > 0.0 } else { v >= 0.0 };
                if !ok || v.is_nan() || v > 1.0 {
                    let need = if mining { "(0, 1]" } else { "[0, 1]" };
                    return Err(lines.err(s, format!("`hash_share` = {v} is outside {need}")));
                }
                given += v;
                if given > 1.0 + SHARE_EPSILON {
                    return Err(lines.err(
                        s,
                        format!("`hash_share`: the groups' shares add up to {given}, more than 1"),
                    ));
                }
                Some(v)
            }
            None => {
                missing += 1;
                None
            }
        };
        let region = match &g.region {
            Some(r) => {
                if !latency.regions.iter().any(|n| n == r.get_ref()) {
                    return Err(lines.err(
                        r,
                        format!(
                            "`region` = {:?} is not in [latency.regions] `names` ({:?})",
                            r.get_ref(),
                            latency.regions
                        ),
                    ));
                }
                Some(r.get_ref().clone())
            }
            None => None,
        };
        out.push((
            spanned,
            Group {
                name: name.clone(),
                count,
                behaviour,
                hash_share: hash_share.unwrap_or(f64::NAN),
                region,
            },
        ));
    }
    let left = (1.0 - given).max(0.0);
    let each = if missing > 0 {
        left / missing as f64
    } else {
        0.0
    };
    let mut groups = Vec::with_capacity(out.len());
    for (spanned, mut g) in out {
        if g.hash_share.is_nan() {
            if mining && each <= 0.0 {
                return Err(lines.err(
                    spanned,
                    format!(
                        "[[nodes]] {:?} has no `hash_share` and the other groups leave it none",
                        g.name
                    ),
                ));
            }
            g.hash_share = each;
        }
        groups.push(g);
    }
    Ok(groups)
}

/// A file users hand us as text: at most [`MAX_FILE_BYTES`], UTF-8;
/// errors name the file.
pub(crate) fn read_text(path: &Path) -> Result<String, ScenarioError> {
    let fail = |why: String| ScenarioError::new(0, why).in_file(path);
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!("file larger than {MAX_FILE_BYTES} bytes")));
    }
    String::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8: {e}")))
}

fn node_node(
    lines: &Lines<'_>,
    kind: &str,
    raw: &Spanned<RawFault>,
    nodes: &BTreeMap<String, usize>,
) -> Result<String, ScenarioError> {
    let Some(node) = &raw.get_ref().node else {
        return Err(lines.err(raw, format!("fault {kind:?} needs `node`")));
    };
    if !nodes.contains_key(node.get_ref()) {
        return Err(lines.err(
            node,
            format!(
                "fault {kind:?}: `node` = {:?} is not a node of this scenario",
                node.get_ref()
            ),
        ));
    }
    Ok(node.get_ref().clone())
}

fn faults(
    lines: &Lines<'_>,
    raw: &[Spanned<RawFault>],
    scenario: &Scenario,
) -> Result<Vec<Fault>, ScenarioError> {
    if raw.len() > MAX_FAULTS {
        return Err(lines.err(
            &raw[MAX_FAULTS],
            format!("{} [[faults]], more than {MAX_FAULTS}", raw.len()),
        ));
    }
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let all: Vec<String> = scenario.nodes().into_iter().map(|n| n.name).collect();
    faults_over(lines, raw, &all, &scenario.groups)
}

/// The `[[faults]]` of `raw` over the nodes `all` (every node's name, group
/// by group in `groups`' order: a group's nodes are `group.count`
/// consecutive names), checked and sorted by time. Shared with
/// [`crate::schedule`], which runs the same format over real processes.
pub(crate) fn faults_over(
    lines: &Lines<'_>,
    raw: &[Spanned<RawFault>],
    all: &[String],
    groups: &[Group],
) -> Result<Vec<Fault>, ScenarioError> {
    if raw.len() > MAX_FAULTS {
        return Err(lines.err(
            &raw[MAX_FAULTS],
            format!("{} [[faults]], more than {MAX_FAULTS}", raw.len()),
        ));
    }
    let all = all.to_vec();
    let index: BTreeMap<String, usize> = all
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let mut faults = Vec::with_capacity(raw.len());
    let mut partition_names = 0usize;
    for spanned in raw {
        let f = spanned.get_ref();
        let kind = f.kind.get_ref().as_str();
        let at = ms(lines, "at_ms", &f.at_ms)?;
        // Keys that belong to another kind are refused.
        let allowed: &[&str] = match kind {
            "partition" => &["groups", "bridge"],
            "heal" => &[],
            "isolate" | "crash" | "restart" => &["node"],
            "pause" => &["node", "for_ms"],
            "clock_skew" => &["node", "skew_ms"],
            "latency" => &["node", "mean_ms", "jitter_ms", "to", "for_ms"],
            "loss" => &["node", "rate", "to", "for_ms"],
            other => {
                return Err(lines.err(
                    &f.kind,
                    format!(
                        "fault `kind` = {other:?} is unknown (known: partition, heal, isolate, crash, restart, pause, clock_skew, latency, loss)"
                    ),
                ));
            }
        };
        let present = [
            ("groups", f.groups.as_ref().map(|g| g.span())),
            ("node", f.node.as_ref().map(|g| g.span())),
            ("for_ms", f.for_ms.as_ref().map(|g| g.span())),
            ("skew_ms", f.skew_ms.as_ref().map(|g| g.span())),
            ("bridge", f.bridge.as_ref().map(|g| g.span())),
            ("mean_ms", f.mean_ms.as_ref().map(|g| g.span())),
            ("jitter_ms", f.jitter_ms.as_ref().map(|g| g.span())),
            ("rate", f.rate.as_ref().map(|g| g.span())),
            ("to", f.to.as_ref().map(|g| g.span())),
        ];
        for (key, span) in present {
            if let Some(span) = span {
                if !allowed.contains(&key) {
                    return Err(ScenarioError::new(
                        lines.line(span.start),
                        format!("fault {kind:?} takes no `{key}`"),
                    ));
                }
            }
        }
        let kind = match kind {
            "partition" => {
                partition_names = partition_names.saturating_add(all.len());
                if partition_names > MAX_PARTITION_NAMES {
                    return Err(lines.err(
                        &f.kind,
                        format!(
                            "fault \"partition\": partitions × nodes exceed {MAX_PARTITION_NAMES} node names"
                        ),
                    ));
                }
                let (groups, bridge) = partition(lines, spanned, groups, &all, &index)?;
                FaultKind::Partition { groups, bridge }
            }
            "heal" => FaultKind::Heal,
            "isolate" => FaultKind::Isolate {
                node: node_node(lines, kind, spanned, &index)?,
            },
            "crash" => FaultKind::Crash {
                node: node_node(lines, kind, spanned, &index)?,
            },
            "restart" => FaultKind::Restart {
                node: node_node(lines, kind, spanned, &index)?,
            },
            "pause" => {
                let node = node_node(lines, kind, spanned, &index)?;
                let Some(d) = &f.for_ms else {
                    return Err(lines.err(spanned, "fault \"pause\" needs `for_ms`"));
                };
                FaultKind::Pause {
                    node,
                    duration: positive_ms(lines, "for_ms", d)?,
                }
            }
            "latency" => {
                let node = node_node(lines, kind, spanned, &index)?;
                let Some(mean) = &f.mean_ms else {
                    return Err(lines.err(spanned, "fault \"latency\" needs `mean_ms`"));
                };
                let mean = latency_ms(lines, "mean_ms", mean)?;
                let jitter = match &f.jitter_ms {
                    Some(j) => latency_ms(lines, "jitter_ms", j)?,
                    None => Duration::ZERO,
                };
                FaultKind::Latency {
                    to: fault_targets(lines, kind, f.to.as_ref(), groups, &all, &index)?,
                    duration: fault_for(lines, kind, spanned)?,
                    node,
                    mean,
                    jitter,
                }
            }
            "loss" => {
                let node = node_node(lines, kind, spanned, &index)?;
                let Some(rate) = &f.rate else {
                    return Err(lines.err(spanned, "fault \"loss\" needs `rate`"));
                };
                let r = *rate.get_ref();
                if !(0.0..=1.0).contains(&r) {
                    return Err(lines.err(
                        rate,
                        format!("fault \"loss\": `rate` = {r} is not in [0, 1]"),
                    ));
                }
                FaultKind::Loss {
                    to: fault_targets(lines, kind, f.to.as_ref(), groups, &all, &index)?,
                    duration: fault_for(lines, kind, spanned)?,
                    node,
                    rate: r,
                }
            }
            _ => {
                let node = node_node(lines, kind, spanned, &index)?;
                let Some(s) = &f.skew_ms else {
                    return Err(lines.err(spanned, "fault \"clock_skew\" needs `skew_ms`"));
                };
                FaultKind::ClockSkew {
                    node,
                    skew_ms: int_in(lines, "skew_ms", s, -MAX_SKEW_MS..=MAX_SKEW_MS)?,
                }
            }
        };
        faults.push(Fault {
            at,
            line: lines.of(spanned),
            kind,
        });
    }
    faults.sort_by_key(|f| f.at);
    // Crash and restart must alternate per node, in time order.
    let mut down = BTreeSet::new();
    for f in &faults {
        match &f.kind {
            FaultKind::Crash { node } if !down.insert(node.as_str()) => {
                return Err(ScenarioError::new(
                    f.line,
                    format!("fault \"crash\": `node` = {node:?} is already crashed then"),
                ));
            }
            FaultKind::Restart { node } if !down.remove(node.as_str()) => {
                return Err(ScenarioError::new(
                    f.line,
                    format!(
                        "fault \"restart\": `node` = {node:?} has no earlier crash to restart from"
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(faults)
}

/// The nodes `names` (node or group names) stand for, as indices of `all`
/// in the order named, each once; `Err` names the unknown one.
fn expand<'n>(
    names: &'n [Spanned<String>],
    groups: &[Group],
    index: &BTreeMap<String, usize>,
) -> Result<Vec<usize>, &'n Spanned<String>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in names {
        let expanded = expand_name(entry.get_ref(), groups, index).ok_or(entry)?;
        out.extend(expanded.into_iter().filter(|i| seen.insert(*i)));
    }
    Ok(out)
}

/// The node indices one name stands for: the node itself, or every node
/// of the group so named; `None` when it is neither.
fn expand_name(
    name: &str,
    groups: &[Group],
    index: &BTreeMap<String, usize>,
) -> Option<Vec<usize>> {
    if let Some(&i) = index.get(name) {
        return Some(vec![i]);
    }
    let pos = groups.iter().position(|gr| gr.name == name)?;
    let start: usize = groups[..pos].iter().map(|gr| gr.count).sum();
    Some((start..start + groups[pos].count).collect())
}

/// `for_ms` of a fault that needs it (> 0).
fn fault_for(
    lines: &Lines<'_>,
    kind: &str,
    raw: &Spanned<RawFault>,
) -> Result<Duration, ScenarioError> {
    let Some(d) = &raw.get_ref().for_ms else {
        return Err(lines.err(raw, format!("fault {kind:?} needs `for_ms`")));
    };
    positive_ms(lines, "for_ms", d)
}

/// A latency mean or jitter: a duration of at most an hour.
fn latency_ms(
    lines: &Lines<'_>,
    key: &str,
    value: &Spanned<f64>,
) -> Result<Duration, ScenarioError> {
    let d = ms(lines, key, value)?;
    if d > crapcoin_core::faults::MAX_LATENCY {
        return Err(lines.err(
            value,
            format!("`{key}` is longer than an hour ({} ms)", value.get_ref()),
        ));
    }
    Ok(d)
}

/// The `to` of a latency or loss fault: node names, at most
/// [`crapcoin_core::faults::MAX_FAULT_PEERS`] once expanded, or `None`.
fn fault_targets(
    lines: &Lines<'_>,
    kind: &str,
    to: Option<&SpannedNames>,
    groups: &[Group],
    all: &[String],
    index: &BTreeMap<String, usize>,
) -> Result<Option<Vec<String>>, ScenarioError> {
    let Some(to) = to else { return Ok(None) };
    if to.get_ref().is_empty() {
        return Err(lines.err(to, format!("fault {kind:?}: `to` is empty")));
    }
    let nodes = expand(to.get_ref(), groups, index).map_err(|entry| {
        lines.err(
            entry,
            format!(
                "fault {kind:?}: `to` names {:?}, neither a node nor a group",
                entry.get_ref()
            ),
        )
    })?;
    let max = crapcoin_core::faults::MAX_FAULT_PEERS;
    if nodes.len() > max {
        return Err(lines.err(
            to,
            format!(
                "fault {kind:?}: `to` names {} nodes, more than {max}",
                nodes.len()
            ),
        ));
    }
    Ok(Some(nodes.into_iter().map(|i| all[i].clone()).collect()))
}

fn partition(
    lines: &Lines<'_>,
    raw: &Spanned<RawFault>,
    groups: &[Group],
    all: &[String],
    index: &BTreeMap<String, usize>,
) -> Result<(Vec<Vec<String>>, Vec<String>), ScenarioError> {
    let Some(listed) = &raw.get_ref().groups else {
        return Err(lines.err(raw, "fault \"partition\" needs `groups`"));
    };
    if listed.get_ref().is_empty() {
        return Err(lines.err(listed, "fault \"partition\": `groups` is empty"));
    }
    let mut owner: Vec<Option<usize>> = vec![None; all.len()];
    // Bridges first: a bridge is in no group, so naming one in `groups`
    // is refused below.
    let mut bridge = Vec::new();
    if let Some(bridges) = &raw.get_ref().bridge {
        if bridges.get_ref().is_empty() {
            return Err(lines.err(bridges, "fault \"partition\": `bridge` is empty"));
        }
        let nodes = expand(bridges.get_ref(), groups, index).map_err(|entry| {
            lines.err(
                entry,
                format!(
                    "fault \"partition\": `bridge` names {:?}, neither a node nor a group",
                    entry.get_ref()
                ),
            )
        })?;
        for i in nodes {
            owner[i] = Some(usize::MAX);
            bridge.push(all[i].clone());
        }
    }
    let mut out: Vec<Vec<String>> = Vec::with_capacity(listed.get_ref().len() + 1);
    for (g, entries) in listed.get_ref().iter().enumerate() {
        if entries.get_ref().is_empty() {
            return Err(lines.err(entries, "fault \"partition\": a group in `groups` is empty"));
        }
        let mut members = Vec::new();
        for entry in entries.get_ref() {
            let name = entry.get_ref();
            let Some(expanded) = expand_name(name, groups, index) else {
                return Err(lines.err(
                    entry,
                    format!(
                        "fault \"partition\": `groups` names {name:?}, neither a node nor a group"
                    ),
                ));
            };
            for i in expanded {
                match owner[i] {
                    // A bridge inside a group named whole stays a bridge.
                    Some(usize::MAX) if !index.contains_key(name) => {}
                    Some(usize::MAX) => {
                        return Err(lines.err(
                            entry,
                            format!(
                                "fault \"partition\": {:?} is a `bridge`, in no group",
                                all[i]
                            ),
                        ));
                    }
                    Some(other) if other != g => {
                        return Err(lines.err(
                            entry,
                            format!(
                                "fault \"partition\": `groups` puts {:?} in two groups",
                                all[i]
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        owner[i] = Some(g);
                        members.push(all[i].clone());
                    }
                }
            }
        }
        if members.is_empty() && owner.contains(&Some(usize::MAX)) {
            return Err(lines.err(
                entries,
                "fault \"partition\": a group in `groups` holds only bridges",
            ));
        }
        out.push(members);
    }
    let rest: Vec<String> = all
        .iter()
        .zip(&owner)
        .filter(|(_, o)| o.is_none())
        .map(|(n, _)| n.clone())
        .collect();
    if !rest.is_empty() {
        out.push(rest);
    }
    if out.len() < 2 {
        return Err(lines.err(
            listed,
            "fault \"partition\": `groups` leaves every node in one group (nothing is split)",
        ));
    }
    Ok((out, bridge))
}

fn sweep(lines: &Lines<'_>, raw: &Spanned<RawSweep>, s: &Scenario) -> Result<Sweep, ScenarioError> {
    let r = raw.get_ref();
    let p = r.parameter.get_ref().trim();
    let parameter = match p {
        "block_interval_ms" => SweepParam::BlockIntervalMs,
        "loss" => SweepParam::Loss,
        "latency_ms" => SweepParam::LatencyMs,
        other => match other.strip_prefix("hash_share:") {
            Some(group) if s.groups.iter().any(|g| g.name == group) => {
                SweepParam::HashShare(group.to_owned())
            }
            Some(group) => {
                return Err(lines.err(
                    &r.parameter,
                    format!("[sweep] `parameter`: no [[nodes]] group named {group:?}"),
                ));
            }
            None => {
                return Err(lines.err(
                    &r.parameter,
                    format!(
                        "[sweep] `parameter` = {other:?} is unknown (known: block_interval_ms, loss, latency_ms, hash_share:<group>)"
                    ),
                ));
            }
        },
    };
    let values = r.values.get_ref();
    if values.is_empty() {
        return Err(lines.err(&r.values, "[sweep] `values` is empty"));
    }
    if values.len() > MAX_SWEEP_VALUES {
        return Err(lines.err(
            &r.values,
            format!(
                "[sweep] `values` has {} entries, more than {MAX_SWEEP_VALUES}",
                values.len()
            ),
        ));
    }
    if parameter == SweepParam::BlockIntervalMs && s.block_interval.is_none() {
        return Err(lines.err(
            &r.parameter,
            "[sweep] `parameter` = \"block_interval_ms\" with nodes mining on demand",
        ));
    }
    let runs = values.len().saturating_mul(s.seeds.len());
    if runs > MAX_RUNS {
        return Err(lines.err(
            &r.values,
            format!(
                "[sweep] `values`: sweep too large: {} values × {} seeds = {runs} runs, more than {MAX_RUNS}",
                values.len(),
                s.seeds.len()
            ),
        ));
    }
    // The checks of `apply` need no fault schedule: leave it out of the
    // copies, which a long schedule would make slow.
    let light = Scenario {
        name: String::new(),
        seeds: Vec::new(),
        difficulty: s.difficulty,
        block_interval: s.block_interval,
        max_peers: s.max_peers,
        maintenance: s.maintenance,
        groups: s.groups.clone(),
        latency: s.latency.clone(),
        loss: s.loss,
        transfers: s.transfers.clone(),
        faults: Vec::new(),
        stop: s.stop.clone(),
        sweep: None,
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let mut probe = light.clone();
        apply(&mut probe, &parameter, *v.get_ref())
            .map_err(|why| lines.err(v, format!("[sweep] `values`: {why}")))?;
        out.push(*v.get_ref());
    }
    Ok(Sweep {
        parameter,
        values: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "[[nodes]]\nname = \"honest\"\ncount = 10\n[stop]\nheight = 5\n";

    #[test]
    fn memory_estimate_refuses_what_does_not_fit() {
        let ten_nodes = 10 * NODE_MEMORY_ESTIMATE;
        assert!(Scenario::parse_with_memory(SMALL, ten_nodes).is_ok());
        let e = Scenario::parse_with_memory(SMALL, ten_nodes - 1).expect_err("one byte short");
        assert!(e.reason.contains("too large for this machine"), "{e}");
        assert_eq!(e.line, 3, "the line of `count`");
    }

    #[test]
    fn lines_are_one_based() {
        let l = Lines::new("a\nbc\n\nd");
        assert_eq!(l.line(0), 1);
        assert_eq!(l.line(1), 1);
        assert_eq!(l.line(2), 2);
        assert_eq!(l.line(5), 3);
        assert_eq!(l.line(6), 4);
        assert_eq!(l.line(100), 4);
    }

    #[test]
    fn available_memory_is_read() {
        assert!(available_memory() > 0);
    }
}
