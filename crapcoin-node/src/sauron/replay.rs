//! Replaying a simulation's event log (`sauron --replay FILE.jsonl`): the
//! log is read and checked whole before anything is served ([`Log::load`]),
//! then the same dashboard reads the network as it was at a virtual time
//! ([`Replay::view`], the `?at_ms=` parameter of the read API).
//!
//! # The log
//!
//! JSON lines written by `simulation SCENARIO --log run.jsonl`; `t_ms` is
//! virtual milliseconds since the run started, never decreasing:
//!
//! 1. the header: `{"crapcoin_sim_log":1,"scenario":…,"seed":…,
//!    "block_interval_ms":…|null,"nodes":[{"name","behaviour","hash_share","region"}…]}`;
//! 2. events: `{"t_ms":…,"node":…,"event":{…}}` (a `crapcoin_core::Event`
//!    as serialised; `request_served` is never logged);
//! 3. faults: `{"t_ms":…,"fault":{"kind":"partition","groups":[[…]]}}`,
//!    and `heal {}`, `isolate {node}`, `crash {node}`, `restart {node}`,
//!    `pause {node, for_ms}`, `clock_skew {node, skew_ms}`, `latency {node,
//!    mean_ms, jitter_ms, to?}`, `loss {node, rate, to?}`, `rollback
//!    {node}` (a partition may name a `bridge`) — the same [`Fault`] a
//!    live run's Boss reports (`POST /api/faults`);
//! 4. the end: `{"t_ms":…,"end":{"height":…,"digest":"<64 hex>","events":…}}`
//!    (optional: a run cut short has none; nothing may follow it).
//!
//! # Bounds (the file is hostile)
//!
//! At most [`MAX_LOG_BYTES`] are read (streamed, line by line), a header
//! line of at most [`MAX_HEADER_LINE`] bytes, any other line of at most
//! [`MAX_LINE`] bytes, at most `max_events` events and faults kept
//! (`--replay-max-events`, default [`DEFAULT_MAX_EVENTS`]) and at most
//! `max_nodes` nodes (`--max-nodes`). Every line is checked field by field
//! (unknown keys, wrong types, a node the header does not name, time going
//! backwards, a block event without a 64-hex hash): the first bad line is
//! refused with its number and the reason ([`LogError`]).
//!
//! # Position
//!
//! One cursor ([`Replay`]) holds the [`State`] as of its position: moving
//! forward applies the entries in between, moving back rebuilds from the
//! start. At position `t`, every node the header names is shown, up
//! (heard from at `t`) unless crashed (shown `fired` until its restart)
//! or paused (shown down until the pause ends).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use crapcoin_core::BlockHash;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::db::EventRow;
use super::model::{self, BossAction, EngineEvent};
use super::state::{ALIVE_MS, State};

/// The log format's version (the header's `crapcoin_sim_log`).
pub const LOG_VERSION: u64 = 1;
/// Most bytes of a log read.
pub const MAX_LOG_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Longest header line (100,000 nodes fit).
pub const MAX_HEADER_LINE: usize = 32 * 1024 * 1024;
/// Longest event, fault or end line.
pub const MAX_LINE: usize = 64 * 1024;
/// Events and faults kept at most unless told otherwise.
pub const DEFAULT_MAX_EVENTS: usize = 2_000_000;

/// Why a log was refused: the line (1-based; 0 when the file could not be
/// read at all) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LogError {
    /// The line refused.
    pub line: u64,
    /// Why.
    pub reason: String,
}

fn bad(line: u64, reason: impl ToString) -> LogError {
    LogError {
        line,
        reason: reason.to_string(),
    }
}

/// One node of the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimNode {
    /// Its name (what events and faults call it).
    pub name: String,
    /// Its behaviour's name.
    pub behaviour: String,
    /// Its share of the hash power (null: mines on demand).
    #[serde(default)]
    pub hash_share: Option<f64>,
    /// Its region in the latency model.
    #[serde(default)]
    pub region: Option<String>,
}

/// The header line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The format's version: [`LOG_VERSION`].
    pub crapcoin_sim_log: u64,
    /// The scenario's name.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// Target block interval (null: nodes mine on demand).
    #[serde(default)]
    pub block_interval_ms: Option<u64>,
    /// Every node of the run.
    pub nodes: Vec<SimNode>,
}

/// A fault, as it happened: a simulation's (logged) or a live run's
/// (reported by watercooler's Boss, [`super::faults::FaultRecord`]). The
/// one representation of a fault in Sauron.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The network split into these groups.
    Partition {
        /// The groups, by node name.
        groups: Vec<Vec<String>>,
        /// Nodes outside the groups that reach every one of them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        bridge: Vec<String>,
    },
    /// Every partition and isolation ended.
    Heal {},
    /// One node cut off from every other.
    Isolate {
        /// The node.
        node: String,
    },
    /// A node crashed.
    Crash {
        /// The node.
        node: String,
    },
    /// A crashed node restarted on its data.
    Restart {
        /// The node.
        node: String,
    },
    /// A node stopped for a while.
    Pause {
        /// The node.
        node: String,
        /// For how long, virtual ms.
        for_ms: u64,
    },
    /// A node's clock runs off by this much.
    ClockSkew {
        /// The node.
        node: String,
        /// The offset, ms (negative: behind).
        skew_ms: i64,
    },
    /// A node's calls (to one peer, or every peer) wait `mean_ms` ±
    /// `jitter_ms` before they are sent.
    Latency {
        /// The node.
        node: String,
        /// Mean added delay, ms.
        mean_ms: u64,
        /// Uniform jitter around the mean, ms.
        jitter_ms: u64,
        /// The peers whose links are slowed; every peer when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        /// How long it lasts, ms (a simulation's log says; a live run's
        /// record has its end instead).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    /// A share of a node's calls (to one peer, or every peer) is lost.
    Loss {
        /// The node.
        node: String,
        /// Probability that a call is lost, in [0, 1].
        rate: f64,
        /// The peers whose links lose calls; every peer when empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        to: Vec<String>,
        /// How long it lasts, ms (as for latency).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    /// A node killed and restarted on an earlier copy of its data (a lost
    /// disk tail).
    Rollback {
        /// The node.
        node: String,
    },
}

impl Fault {
    /// Its kind's name, e.g. `partition`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Partition { .. } => "partition",
            Self::Heal {} => "heal",
            Self::Isolate { .. } => "isolate",
            Self::Crash { .. } => "crash",
            Self::Restart { .. } => "restart",
            Self::Pause { .. } => "pause",
            Self::ClockSkew { .. } => "clock_skew",
            Self::Latency { .. } => "latency",
            Self::Loss { .. } => "loss",
            Self::Rollback { .. } => "rollback",
        }
    }

    /// The node it names, if one.
    pub fn node(&self) -> Option<&str> {
        match self {
            Self::Partition { .. } | Self::Heal {} => None,
            Self::Isolate { node }
            | Self::Crash { node }
            | Self::Restart { node }
            | Self::Pause { node, .. }
            | Self::ClockSkew { node, .. }
            | Self::Latency { node, .. }
            | Self::Loss { node, .. }
            | Self::Rollback { node } => Some(node),
        }
    }

    /// What the Boss panel calls it, for those that stop or start a node.
    pub fn boss_action(&self) -> Option<BossAction> {
        match self {
            Self::Crash { .. } => Some(BossAction::Fired),
            Self::Restart { .. } => Some(BossAction::Rehired),
            Self::Pause { .. } => Some(BossAction::Paused),
            _ => None,
        }
    }
}

/// The end line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// The final height.
    pub height: u64,
    /// The digest of the whole event stream (64 hex).
    pub digest: String,
    /// Observer events in the run.
    pub events: u64,
}

/// Any line after the header: exactly one of `event` (with `node`),
/// `fault` and `end`, parsed in one pass.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    t_ms: u64,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    event: Option<Value>,
    #[serde(default)]
    fault: Option<Fault>,
    #[serde(default)]
    end: Option<End>,
}

/// One logged observer event, checked.
#[derive(Debug, Clone)]
struct LoggedEvent {
    /// Index of the node in the header.
    node: u32,
    kind: Box<str>,
    /// The event's JSON as logged.
    raw: Box<str>,
    typed: EngineEvent,
    /// A reorg's new tip and height.
    reorg: Option<(BlockHash, u64)>,
}

#[derive(Debug, Clone)]
enum What {
    Event(LoggedEvent),
    Fault(Fault),
}

#[derive(Debug, Clone)]
struct Entry {
    t_ms: u64,
    what: What,
}

/// A simulation's event log, read and checked.
#[derive(Debug, Clone)]
pub struct Log {
    header: Header,
    entries: Vec<Entry>,
    end: Option<(u64, End)>,
}

/// Reads one line of at most `max` bytes into `buf` (without its end of
/// line); `Ok(false)` at the end of the file.
fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
    line: u64,
) -> Result<bool, LogError> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(|e| bad(line, format!("reading: {e}")))?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > max {
        return Err(bad(line, format!("line longer than {max} bytes")));
    }
    Ok(true)
}

fn parse<'a, T: Deserialize<'a>>(line: u64, bytes: &'a [u8]) -> Result<T, LogError> {
    serde_json::from_slice(bytes).map_err(|e| bad(line, e))
}

impl Log {
    /// Reads and checks the log at `path` (see [the module docs](self)).
    ///
    /// # Errors
    ///
    /// [`LogError`] naming the first bad line.
    pub fn load(path: &Path, max_events: usize, max_nodes: usize) -> Result<Self, LogError> {
        let file =
            std::fs::File::open(path).map_err(|e| bad(0, format!("{}: {e}", path.display())))?;
        Self::read(file, max_events, max_nodes)
    }

    /// Reads and checks a log from `input` (at most [`MAX_LOG_BYTES`]).
    ///
    /// # Errors
    ///
    /// [`LogError`] naming the first bad line.
    pub fn read(input: impl Read, max_events: usize, max_nodes: usize) -> Result<Self, LogError> {
        let mut reader = BufReader::new(input.take(MAX_LOG_BYTES.saturating_add(1)));
        let mut buf = Vec::new();
        if !read_line(&mut reader, &mut buf, MAX_HEADER_LINE, 1)? {
            return Err(bad(1, "empty log: no header"));
        }
        let header: Header = parse(1, &buf)?;
        let names = check_header(&header, max_nodes)?;
        let mut log = Self {
            header,
            entries: Vec::new(),
            end: None,
        };
        let mut bytes = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        let mut line = 1u64;
        let mut last_t = 0u64;
        loop {
            line += 1;
            if !read_line(&mut reader, &mut buf, MAX_LINE, line)? {
                break;
            }
            bytes = bytes.saturating_add(u64::try_from(buf.len()).unwrap_or(u64::MAX) + 1);
            if bytes > MAX_LOG_BYTES {
                return Err(bad(line, format!("log larger than {MAX_LOG_BYTES} bytes")));
            }
            if log.end.is_some() {
                return Err(bad(line, "a line after the end line"));
            }
            let parsed: Line = parse(line, &buf)?;
            let t_ms = parsed.t_ms;
            match parsed {
                Line {
                    node: Some(node),
                    event: Some(event),
                    fault: None,
                    end: None,
                    ..
                } => {
                    let event = check_event(&names, node, event).map_err(|r| bad(line, r))?;
                    log.push(line, max_events, t_ms, What::Event(event))?;
                }
                Line {
                    node: None,
                    event: None,
                    fault: Some(fault),
                    end: None,
                    ..
                } => {
                    check_fault(&names, &fault).map_err(|r| bad(line, r))?;
                    log.push(line, max_events, t_ms, What::Fault(fault))?;
                }
                Line {
                    node: None,
                    event: None,
                    fault: None,
                    end: Some(end),
                    ..
                } => {
                    if !model::is_hash(&end.digest) {
                        return Err(bad(line, "end.digest must be 64 lowercase hex digits"));
                    }
                    log.end = Some((t_ms, end));
                }
                _ => {
                    return Err(bad(
                        line,
                        "not one of an event (t_ms, node, event), a fault (t_ms, fault) \
                         or the end (t_ms, end); the header only comes first",
                    ));
                }
            }
            if t_ms < last_t {
                return Err(bad(
                    line,
                    format!("t_ms {t_ms} is before the previous line's {last_t}"),
                ));
            }
            last_t = t_ms;
        }
        Ok(log)
    }

    fn push(&mut self, line: u64, max: usize, t_ms: u64, what: What) -> Result<(), LogError> {
        if self.entries.len() >= max {
            return Err(bad(
                line,
                format!("more than {max} events and faults (raise --replay-max-events)"),
            ));
        }
        self.entries.push(Entry { t_ms, what });
        Ok(())
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The end line's time and contents, when the log has one.
    pub fn end(&self) -> Option<(u64, &End)> {
        self.end.as_ref().map(|(t, e)| (*t, e))
    }

    /// Events and faults kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log holds no event or fault.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last virtual time of the log (its end line's, else its last
    /// entry's, else 0).
    pub fn end_ms(&self) -> u64 {
        self.end
            .as_ref()
            .map(|(t, _)| *t)
            .or_else(|| self.entries.last().map(|e| e.t_ms))
            .unwrap_or(0)
    }

    fn node_name(&self, index: u32) -> &str {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.header.nodes.get(i))
            .map_or("", |n| n.name.as_str())
    }

    /// Entries at or before `at_ms`: how many.
    fn count_until(&self, at_ms: u64) -> usize {
        self.entries.partition_point(|e| e.t_ms <= at_ms)
    }
}

fn check_header(header: &Header, max_nodes: usize) -> Result<HashMap<String, u32>, LogError> {
    if header.crapcoin_sim_log != LOG_VERSION {
        return Err(bad(
            1,
            format!(
                "crapcoin_sim_log {} is not version {LOG_VERSION}",
                header.crapcoin_sim_log
            ),
        ));
    }
    if header.scenario.len() > model::MAX_TEXT_LEN {
        return Err(bad(1, "scenario name too long"));
    }
    if header.nodes.is_empty() {
        return Err(bad(1, "the header names no node"));
    }
    if header.nodes.len() > max_nodes {
        return Err(bad(
            1,
            format!(
                "{} nodes, more than {max_nodes} (raise --max-nodes)",
                header.nodes.len()
            ),
        ));
    }
    let mut names = HashMap::new();
    for (i, node) in header.nodes.iter().enumerate() {
        let at = |r: String| bad(1, format!("nodes[{i}]: {r}"));
        model::check_name(&node.name).map_err(|e| at(e.error))?;
        if node.behaviour.is_empty() || node.behaviour.len() > model::MAX_NAME_LEN {
            return Err(at("behaviour must be 1 to 64 bytes".into()));
        }
        if let Some(share) = node.hash_share
            && !super::state::nodes::valid_share(share)
        {
            return Err(at("hash_share must be a number in [0, 1]".into()));
        }
        if node
            .region
            .as_ref()
            .is_some_and(|r| r.len() > model::MAX_NAME_LEN)
        {
            return Err(at("region longer than 64 bytes".into()));
        }
        let index = u32::try_from(i).map_err(|_| at("too many nodes".into()))?;
        if names.insert(node.name.clone(), index).is_some() {
            return Err(at(format!("{} named twice", node.name)));
        }
    }
    Ok(names)
}

fn known(names: &HashMap<String, u32>, name: &str) -> Result<u32, String> {
    names
        .get(name)
        .copied()
        .ok_or_else(|| format!("node {name:?} is not in the header"))
}

fn check_event(
    names: &HashMap<String, u32>,
    node: String,
    event: Value,
) -> Result<LoggedEvent, String> {
    let node = known(names, &node)?;
    let kind = event
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("event without a string kind")?
        .to_owned();
    if kind.is_empty()
        || kind.len() > 64
        || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err("event kind must be snake_case".into());
    }
    if kind == "request_served" {
        return Err("request_served events are not logged".into());
    }
    let raw = event.to_string();
    if raw.len() > model::MAX_EVENT_LEN {
        return Err(format!("event longer than {} bytes", model::MAX_EVENT_LEN));
    }
    let typed = EngineEvent::parse(&kind, &event).map_err(|e| e.error)?;
    let reorg = if kind == "reorg" {
        let tip = event.get("new_tip").and_then(Value::as_str);
        let height = event.get("height").and_then(Value::as_u64);
        match (
            tip.filter(|t| model::is_hash(t))
                .and_then(|t| t.parse().ok()),
            height,
        ) {
            (Some(tip), Some(height)) => Some((tip, height)),
            _ => return Err("reorg needs a 64-hex new_tip and a height".into()),
        }
    } else {
        None
    };
    Ok(LoggedEvent {
        node,
        kind: kind.into(),
        raw: raw.into(),
        typed,
        reorg,
    })
}

fn check_fault(names: &HashMap<String, u32>, fault: &Fault) -> Result<(), String> {
    if let Some(node) = fault.node() {
        known(names, node)?;
    }
    if let Fault::Latency { to, .. } | Fault::Loss { to, .. } = fault {
        for name in to {
            known(names, name)?;
        }
    }
    if let Fault::Partition { groups, bridge } = fault {
        for name in bridge {
            known(names, name)?;
        }
        if groups.is_empty() || groups.iter().any(Vec::is_empty) {
            return Err("a partition needs non-empty groups".into());
        }
        let mut seen = BTreeSet::new();
        for name in groups.iter().flatten() {
            known(names, name)?;
            if !seen.insert(name.as_str()) {
                return Err(format!("{name} is in two groups"));
            }
        }
    }
    Ok(())
}

/// The faults in effect at a position (`GET /api/replay`), or now in a
/// live run (`GET /api/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// The groups of the partition in effect, if any.
    pub partition: Option<Vec<Vec<String>>>,
    /// The partition's bridge nodes.
    pub bridge: Vec<String>,
    /// Nodes whose calls are slowed: the mean added delay, ms.
    pub slowed: BTreeMap<String, u64>,
    /// Nodes whose calls are lost: the loss rate.
    pub lossy: BTreeMap<String, f64>,
    /// When the latency and loss faults of a simulation's log end (ms;
    /// by `(node, kind)`), so a position after the end shows them over.
    #[serde(skip)]
    pub ends: BTreeMap<(String, &'static str), u64>,
    /// Nodes cut off from every other.
    pub isolated: BTreeSet<String>,
    /// Nodes crashed and not restarted.
    pub crashed: BTreeSet<String>,
    /// Paused nodes, with when their pause ends (virtual ms).
    pub paused: BTreeMap<String, u64>,
    /// Clock offsets set, ms.
    pub clock_skew: BTreeMap<String, i64>,
}

impl Faults {
    /// Puts `fault`, started at `at_ms`, into effect: live records and
    /// replayed logs alike. `end_ms` is when it ends if known (a live
    /// record's end); otherwise a pause, latency or loss ends `for_ms`
    /// after its start. A later partition replaces an earlier one; a heal
    /// ends partitions and isolations; a crashed (or rolled back) node is
    /// not shown paused.
    pub fn apply(&mut self, fault: &Fault, at_ms: u64, end_ms: Option<u64>) {
        let end = |for_ms: Option<u64>| end_ms.or(for_ms.map(|f| at_ms.saturating_add(f)));
        match fault {
            Fault::Partition { groups, bridge } => {
                self.partition = Some(groups.clone());
                self.bridge.clone_from(bridge);
            }
            Fault::Heal {} => {
                self.partition = None;
                self.bridge.clear();
                self.isolated.clear();
            }
            Fault::Latency {
                node,
                mean_ms,
                for_ms,
                ..
            } => {
                self.slowed.insert(node.clone(), *mean_ms);
                if let Some(end) = end(*for_ms) {
                    self.ends.insert((node.clone(), "latency"), end);
                }
            }
            Fault::Loss {
                node, rate, for_ms, ..
            } => {
                self.lossy.insert(node.clone(), *rate);
                if let Some(end) = end(*for_ms) {
                    self.ends.insert((node.clone(), "loss"), end);
                }
            }
            Fault::Isolate { node } => {
                self.isolated.insert(node.clone());
            }
            Fault::Crash { node } | Fault::Rollback { node } => {
                self.crashed.insert(node.clone());
                self.paused.remove(node);
            }
            Fault::Restart { node } => {
                self.crashed.remove(node);
            }
            Fault::Pause { node, for_ms } => {
                let until = end(Some(*for_ms)).unwrap_or(at_ms);
                self.paused.insert(node.clone(), until);
            }
            Fault::ClockSkew { node, skew_ms } => {
                self.clock_skew.insert(node.clone(), *skew_ms);
            }
        }
    }

    /// Whether no fault is in effect.
    pub fn is_empty(&self) -> bool {
        self.partition.is_none()
            && self.slowed.is_empty()
            && self.lossy.is_empty()
            && self.isolated.is_empty()
            && self.crashed.is_empty()
            && self.paused.is_empty()
            && self.clock_skew.values().all(|s| *s == 0)
    }
}

/// Most snapshots of the state a replay keeps (see [`Replay`]).
pub const MAX_CHECKPOINTS: usize = 8;
/// Fewest entries between two snapshots.
const MIN_STRIDE: usize = 16_384;

/// The network as of one position of the log.
#[derive(Debug, Clone)]
struct Cursor {
    state: State,
    /// Entries applied.
    next: usize,
    faults: Faults,
}

/// A log being replayed: the log and a cursor over it.
///
/// Moving the cursor forward applies the entries in between; moving it
/// back, or forward past a snapshot, restarts from the nearest snapshot at
/// or before the position.
/// Snapshots are taken as the cursor first passes every `stride` entries
/// (`stride`: the log's length over [`MAX_CHECKPOINTS`], at least 16,384),
/// so a move back replays at most `stride` entries, and at most
/// [`MAX_CHECKPOINTS`] copies of the state (the node table and the
/// `--max-blocks` tree) are kept.
pub struct Replay {
    log: Log,
    /// The log's faults as timeline records (`GET /api/faults`).
    records: Vec<super::faults::FaultRecord>,
    max_blocks: usize,
    k: u64,
    stride: usize,
    cursor: Mutex<Cursor>,
    /// Snapshot `i` is the cursor after `(i + 1) * stride` entries.
    checkpoints: Mutex<Vec<Cursor>>,
}

impl std::fmt::Debug for Replay {
    /// The log's shape, not its entries (a million lines).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("scenario", &self.log.header.scenario)
            .field("seed", &self.log.header.seed)
            .field("nodes", &self.log.header.nodes.len())
            .field("entries", &self.log.len())
            .field("end_ms", &self.log.end_ms())
            .field("stride", &self.stride)
            .finish_non_exhaustive()
    }
}

/// What [`Replay::view`] hands over: the state at the position, the
/// position (the `now` of every figure), and the faults in effect.
#[derive(Debug)]
pub struct View<'a> {
    /// The aggregate as of `at_ms`.
    pub state: &'a State,
    /// The position, virtual ms (clamped to the log's end).
    pub at_ms: u64,
    /// The faults in effect at `at_ms`.
    pub faults: &'a Faults,
    /// Events and faults applied.
    pub applied: usize,
}

impl Replay {
    /// A replay of `log`, with Sauron's block tree bound and settling depth.
    pub fn new(log: Log, max_blocks: usize, k: u64) -> Self {
        let cursor = Mutex::new(Self::start(&log, max_blocks, k));
        let stride = log.len().div_ceil(MAX_CHECKPOINTS).max(MIN_STRIDE);
        let records =
            super::faults::from_schedule(log.entries.iter().filter_map(|e| match &e.what {
                What::Fault(f) => Some((e.t_ms, f)),
                What::Event(_) => None,
            }));
        Self {
            records,
            log,
            max_blocks,
            k,
            stride,
            cursor,
            checkpoints: Mutex::new(Vec::new()),
        }
    }

    fn start(log: &Log, max_blocks: usize, k: u64) -> Cursor {
        let nodes = &log.header.nodes;
        let mut state = State::new(nodes.len(), max_blocks, k);
        for n in nodes {
            state.simulated(&n.name, &n.behaviour, n.hash_share);
        }
        Cursor {
            state,
            next: 0,
            faults: Faults::default(),
        }
    }

    /// `GET /api/faults` in a replay: the log's faults started at or
    /// before `at_ms` (the log's end when `None`), ends later than it not
    /// yet known (shown open), and those in effect then.
    pub fn faults(&self, at_ms: Option<u64>) -> serde_json::Value {
        let at_ms = at_ms.unwrap_or(u64::MAX).min(self.log.end_ms());
        let records: Vec<super::faults::FaultRecord> = self
            .records
            .iter()
            .filter(|r| r.start_ms <= at_ms)
            .map(|r| {
                let mut r = r.clone();
                r.end_ms = r.end_ms.filter(|end| *end <= at_ms);
                r
            })
            .collect();
        let active = super::faults::in_effect(&records, at_ms);
        json!({"now_ms": at_ms, "records": records, "active": active})
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    fn cursor(&self) -> MutexGuard<'_, Cursor> {
        self.cursor.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls `f` with the network as it was at `at_ms` (the log's end when
    /// `None` or later).
    pub fn view<R>(&self, at_ms: Option<u64>, f: impl FnOnce(View<'_>) -> R) -> R {
        let at_ms = at_ms.unwrap_or(u64::MAX).min(self.log.end_ms());
        let until = self.log.count_until(at_ms);
        let mut cursor = self.cursor();
        let mut checkpoints = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        // Back, or far forward past a snapshot: restart from the nearest
        // snapshot at or before the position.
        let nearest = checkpoints.iter().rev().find(|c| c.next <= until);
        match nearest {
            Some(c) if until < cursor.next || c.next > cursor.next => *cursor = c.clone(),
            None if until < cursor.next => {
                *cursor = Self::start(&self.log, self.max_blocks, self.k);
            }
            _ => {}
        }
        while cursor.next < until {
            // Up to the next snapshot boundary (or the position), then
            // take the snapshot if it is the next one missing.
            let boundary = (cursor.next / self.stride + 1) * self.stride;
            let stop = boundary.min(until);
            let from = cursor.next;
            let Cursor { state, faults, .. } = &mut *cursor;
            for entry in &self.log.entries[from..stop] {
                self.apply(state, faults, entry);
            }
            cursor.next = stop;
            if stop == boundary && checkpoints.len() == boundary / self.stride - 1 {
                checkpoints.push(cursor.clone());
            }
        }
        drop(checkpoints);
        let Cursor {
            state,
            next,
            faults,
        } = &mut *cursor;
        // Pauses over by now are not shown (they stay in the cursor: an
        // earlier position may still be inside them).
        let mut shown = faults.clone();
        shown.paused.retain(|_, until| *until > at_ms);
        for ((node, kind), end) in &faults.ends {
            if *end <= at_ms {
                match *kind {
                    "latency" => shown.slowed.remove(node),
                    _ => shown.lossy.remove(node).map(|_| 0),
                };
            }
        }
        for n in &self.log.header.nodes {
            let seen = if shown.paused.contains_key(&n.name) {
                at_ms.saturating_sub(ALIVE_MS + 1)
            } else {
                at_ms
            };
            state.seen(&n.name, seen);
        }
        f(View {
            state,
            at_ms,
            faults: &shown,
            applied: *next,
        })
    }

    fn apply(&self, state: &mut State, faults: &mut Faults, entry: &Entry) {
        match &entry.what {
            What::Event(e) => {
                let node = self.log.node_name(e.node);
                state.event(node, entry.t_ms, &e.typed);
                if let Some((tip, height)) = e.reorg {
                    state.switched(node, tip, height);
                }
            }
            What::Fault(fault) => {
                faults.apply(fault, entry.t_ms, None);
                if let (Some(action @ (BossAction::Fired | BossAction::Rehired)), Some(node)) =
                    (fault.boss_action(), fault.node())
                {
                    state.boss(node, None, action);
                }
            }
        }
    }

    /// `GET /api/replay`: the header, the log's extent, and the position
    /// with the faults in effect.
    pub fn describe(&self, at_ms: Option<u64>) -> Value {
        let end = self.log.end().map(
            |(t, e)| json!({"t_ms": t, "height": e.height, "digest": e.digest, "events": e.events}),
        );
        self.view(at_ms, |v| {
            json!({
                "scenario": self.log.header.scenario,
                "seed": self.log.header.seed,
                "block_interval_ms": self.log.header.block_interval_ms,
                "nodes": self.log.header.nodes,
                "start_ms": 0,
                "end_ms": self.log.end_ms(),
                "entries": self.log.len(),
                "complete": end.is_some(),
                "end": end,
                "at_ms": v.at_ms,
                "applied": v.applied,
                "faults": v.faults,
            })
        })
    }

    /// `GET /api/events` in a replay: the logged events and faults at or
    /// before `at_ms` (the log's end when `None`), newest first, as rows
    /// (`id`: the entry's 1-based index; crash, restart and pause are
    /// `boss` rows, `fired`, `rehired` and `paused`, the other faults
    /// `fault` rows under the node `network` unless they name one).
    /// Scans at most the whole log.
    pub fn events(&self, filter: &EventQuery<'_>, at_ms: Option<u64>) -> Vec<EventRow> {
        let at_ms = at_ms.unwrap_or(u64::MAX);
        let mut until = self.log.count_until(at_ms);
        if let Some(before) = filter.before {
            let before = usize::try_from(before.max(1) - 1).unwrap_or(0);
            until = until.min(before);
        }
        let limit = usize::try_from(filter.limit).unwrap_or(0);
        let mut rows = Vec::new();
        for (i, entry) in self.log.entries[..until].iter().enumerate().rev() {
            if rows.len() >= limit {
                break;
            }
            let at = i64::try_from(entry.t_ms).unwrap_or(i64::MAX);
            if filter.since.is_some_and(|s| at < s) {
                break;
            }
            // Filtered before a row is built: a filter may scan the log.
            let (node, kind) = match &entry.what {
                What::Event(e) => (self.log.node_name(e.node), &*e.kind),
                What::Fault(f) => (
                    f.node().unwrap_or("network"),
                    if f.boss_action().is_some() {
                        "boss"
                    } else {
                        "fault"
                    },
                ),
            };
            if filter.node.is_some_and(|n| n != node) || filter.kind.is_some_and(|k| k != kind) {
                continue;
            }
            rows.push(self.row(i, at, entry));
        }
        rows
    }

    fn row(&self, i: usize, at: i64, entry: &Entry) -> EventRow {
        let id = i64::try_from(i).unwrap_or(i64::MAX - 1) + 1;
        match &entry.what {
            What::Event(e) => EventRow {
                id,
                node: self.log.node_name(e.node).to_owned(),
                at_ms: at,
                kind: e.kind.to_string(),
                event: e.raw.to_string(),
            },
            What::Fault(f) => {
                let node = f.node().unwrap_or("network").to_owned();
                let (kind, event) = match f.boss_action() {
                    Some(action) => (
                        "boss",
                        json!({"kind": "boss", "action": action, "node": node, "url": null,
                               "at_ms": entry.t_ms, "fault": f}),
                    ),
                    None => ("fault", json!({"kind": "fault", "fault": f})),
                };
                EventRow {
                    id,
                    node,
                    at_ms: at,
                    kind: kind.to_owned(),
                    event: event.to_string(),
                }
            }
        }
    }
}

/// What [`Replay::events`] selects (the `GET /api/events` query).
#[derive(Debug, Clone, Copy)]
pub struct EventQuery<'a> {
    /// Only this node's.
    pub node: Option<&'a str>,
    /// Only this kind.
    pub kind: Option<&'a str>,
    /// Only at or after this virtual time.
    pub since: Option<i64>,
    /// Only ids below this.
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

#[cfg(test)]
mod tests {
    use super::{Log, LogError};
    use serde_json::json;

    fn h(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn header() -> String {
        json!({"crapcoin_sim_log": 1, "scenario": "t", "seed": 5, "block_interval_ms": 1000,
               "nodes": [{"name": "a", "behaviour": "honest", "hash_share": 0.5, "region": null},
                         {"name": "b", "behaviour": "selfish", "hash_share": 0.5, "region": "eu"}]})
        .to_string()
    }

    fn mined(t: u64, node: &str, hash: char, parent: char, height: u64) -> String {
        json!({"t_ms": t, "node": node, "event": {"kind": "block_mined", "hash": h(hash),
               "parent": h(parent), "height": height, "tx": null}})
        .to_string()
    }

    fn read(lines: &[String]) -> Result<Log, LogError> {
        Log::read(lines.join("\n").as_bytes(), 100, 16)
    }

    /// A view's answers at `at`: every node, the blocks, the faults.
    fn seen(replay: &super::Replay, at: u64) -> serde_json::Value {
        replay.view(Some(at), |v| {
            json!([
                v.state.nodes(v.at_ms),
                v.state.blocks(v.at_ms),
                v.faults,
                v.applied
            ])
        })
    }

    #[test]
    fn moving_back_through_snapshots_shows_what_a_fresh_replay_shows() {
        // 20,000 blocks mined by a and accepted by b, s crashed and
        // restarted midway (missing 3,000 blocks meanwhile): 37,002
        // entries, snapshots every 16,384.
        let hash = |i: u64| format!("{i:064x}");
        let mut lines = vec![header()];
        for i in 1..=20_000u64 {
            lines.push(
                json!({"t_ms": i * 10, "node": "a", "event": {"kind": "block_mined",
                       "hash": hash(i), "parent": hash(i - 1), "height": i, "tx": null}})
                .to_string(),
            );
            lines.push(
                json!({"t_ms": i * 10 + 5, "node": "b", "event": {"kind": "block_accepted",
                       "hash": hash(i), "parent": hash(i - 1), "height": i, "from": null,
                       "best": true}})
                .to_string(),
            );
            if (9_001..=12_000).contains(&i) {
                lines.pop(); // b is down: no accept
            }
            if i == 9_000 {
                lines.push(
                    json!({"t_ms": i * 10 + 6, "fault": {"kind": "crash", "node": "b"}})
                        .to_string(),
                );
            }
            if i == 12_000 {
                lines.push(
                    json!({"t_ms": i * 10 + 6, "fault": {"kind": "restart", "node": "b"}})
                        .to_string(),
                );
            }
        }
        let log = Log::read(lines.join("\n").as_bytes(), 100_000, 16).expect("reads");
        let used = super::Replay::new(log.clone(), 64, 2);
        for at in [
            200_000, 10_000, 170_000, 100_000, 199_000, 95_000, 5, 130_000, 0,
        ] {
            let fresh = super::Replay::new(log.clone(), 64, 2);
            assert_eq!(seen(&used, at), seen(&fresh, at), "at {at} ms");
        }
        let snapshots = used.checkpoints.lock().expect("lock").len();
        assert_eq!(snapshots, 2, "after 16,384 and 32,768 entries");
        let b = |v: serde_json::Value| (v[0][1]["height"].clone(), v[0][1]["fired"].clone());
        assert_eq!(b(seen(&used, 95_000)), (json!(9_000), json!(true)));
        assert_eq!(b(seen(&used, 130_000)), (json!(12_999), json!(false)));
    }

    #[test]
    fn a_good_log_reads_and_bad_lines_are_refused_by_number() {
        let good = vec![
            header(),
            mined(10, "a", '1', '0', 1),
            json!({"t_ms": 20, "fault": {"kind": "partition", "groups": [["a"], ["b"]]}})
                .to_string(),
            mined(30, "b", '2', '1', 2),
            json!({"t_ms": 40, "fault": {"kind": "heal"}}).to_string(),
            json!({"t_ms": 50, "end": {"height": 2, "digest": h('d'), "events": 2}}).to_string(),
        ];
        let log = read(&good).expect("good");
        assert_eq!((log.len(), log.end_ms()), (4, 50));
        let cases: Vec<(&str, usize, String, u64)> = vec![
            ("time backwards", 3, mined(5, "b", '2', '1', 2), 4),
            ("unknown node", 1, mined(10, "c", '1', '0', 1), 2),
            (
                "short hash",
                1,
                mined(10, "a", '1', '0', 1).replace(&h('1'), "11"),
                2,
            ),
            (
                "unknown key",
                2,
                json!({"t_ms": 20, "fault": {"kind": "heal", "x": 1}}).to_string(),
                3,
            ),
            (
                "partition naming an unknown node",
                2,
                json!({"t_ms": 20, "fault": {"kind": "partition", "groups": [["a"], ["z"]]}})
                    .to_string(),
                3,
            ),
            ("not json", 3, "{".to_owned(), 4),
            (
                "bad digest",
                5,
                json!({"t_ms": 50, "end": {"height": 2, "digest": "x", "events": 2}}).to_string(),
                6,
            ),
            (
                "header version",
                0,
                header().replace("\"crapcoin_sim_log\":1", "\"crapcoin_sim_log\":2"),
                1,
            ),
        ];
        for (name, index, line, want) in cases {
            let mut lines = good.clone();
            lines[index] = line;
            let e = read(&lines).expect_err(name);
            assert_eq!(e.line, want, "{name}: {e}");
        }
        let mut long = good.clone();
        long[1] = format!("{} {}", long[1], " ".repeat(super::MAX_LINE));
        let e = read(&long).expect_err("long line");
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("longer than"), "{e}");
        let mut after_end = good.clone();
        after_end.push(mined(60, "a", '3', '2', 3));
        assert_eq!(read(&after_end).expect_err("after end").line, 7);
        // The bounds: events kept, nodes.
        let e = Log::read(good.join("\n").as_bytes(), 2, 16).expect_err("too many events");
        assert_eq!(e.line, 4);
        assert_eq!(
            Log::read(good.join("\n").as_bytes(), 100, 1)
                .expect_err("nodes")
                .line,
            1
        );
    }
}
