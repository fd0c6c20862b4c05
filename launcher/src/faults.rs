//! The Boss's faults: the menu (`--faults kill,partition=2,...`), the
//! seeded plan drawn from it, and a schedule file (`--fault-schedule`)
//! turned into the same plan.
//!
//! A plan is a pure function of the seed, the node names the run starts
//! with, the menu and the timing ([`plan`]): the same `--seed` prints the
//! same fault timeline, whoever happens to be running when a fault comes
//! (the Boss skips, and logs, a planned fault whose target is not running
//! then). Each fault is a [`Planned`]: when (ms from the start of the run),
//! for how long, and what, as Sauron's one representation of a fault
//! ([`Fault`]).
//!
//! # Never no honest node
//!
//! The plan keeps, at every moment, at least one honest node that is
//! neither killed, paused, rolled back nor isolated: those faults only
//! draw an honest target while another honest node stays up. A drawn
//! partition deals the honest nodes that are up first, one per group, so
//! every side of every partition has an honest node (a bridge partition
//! needs two honest nodes besides the bridge). One cut (partition,
//! isolation, bridge) at a time. A schedule file is checked against the
//! same rule before anything starts ([`check_schedule`]); its partitions
//! are taken as written.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crapcoin_node::sauron::faults::FaultRecord;
use crapcoin_node::sauron::replay::Fault;
use crapcoin_sim::scenario::{Fault as ScheduledFault, FaultKind};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

/// Longest a fault may be set on a node for at once (the `for_ms` cap of
/// `POST /admin/faults`); a fault without an end is set for this long and
/// healed at the end of the run.
pub const MAX_FOR_MS: u64 = 3_600_000;
/// Smallest clock skew drawn, ms (either way).
pub const SKEW_MIN_MS: i64 = 30_000;
/// Largest clock skew drawn, ms: beyond the 2 minutes a block's timestamp
/// may run ahead of a node's clock, so a skewed node's blocks (ahead) or
/// its view of others' (behind) meet the timestamp rule.
pub const SKEW_MAX_MS: i64 = 240_000;
/// Faults a plan printed at the start lists at most when the run has no
/// `--duration`.
pub const PRINTED_WITHOUT_DURATION: usize = 20;

/// A kind of fault the menu offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// SIGKILL a node, rehire it on its data later.
    Kill,
    /// SIGSTOP a node, SIGCONT it later.
    Pause,
    /// Split the nodes into two or three groups.
    Partition,
    /// Cut one node off from every other.
    Isolate,
    /// Two groups, and one node that reaches both.
    Bridge,
    /// Slow a node's calls (to one peer or every peer).
    Latency,
    /// Lose a share of a node's calls (to one peer or every peer).
    Loss,
    /// Move a node's clock ahead or behind.
    Skew,
    /// Kill a node and restart it on an earlier copy of its data.
    Rollback,
}

impl Kind {
    /// Every kind, in menu order.
    pub const ALL: [Kind; 9] = [
        Kind::Kill,
        Kind::Pause,
        Kind::Partition,
        Kind::Isolate,
        Kind::Bridge,
        Kind::Latency,
        Kind::Loss,
        Kind::Skew,
        Kind::Rollback,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Isolate => "isolate",
            Kind::Bridge => "bridge",
            Kind::Latency => "latency",
            Kind::Loss => "loss",
            Kind::Skew => "skew",
            Kind::Rollback => "rollback",
        }
    }

    /// Whether it stops a node (kill, pause, rollback).
    pub fn stops_a_node(self) -> bool {
        matches!(self, Kind::Kill | Kind::Pause | Kind::Rollback)
    }
}

/// The menu: kinds with their weights (a kind of weight 2 is drawn twice
/// as often as one of weight 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    entries: Vec<(Kind, u32)>,
}

/// Largest weight of one kind.
pub const MAX_WEIGHT: u32 = 1_000;

impl Menu {
    /// A menu of one kind.
    pub fn only(kind: Kind) -> Self {
        Menu {
            entries: vec![(kind, 1)],
        }
    }

    /// Its kinds and weights, in the order given.
    pub fn entries(&self) -> &[(Kind, u32)] {
        &self.entries
    }

    /// Checks the menu against the nodes the run starts with: a kind that
    /// could only ever leave no honest node running, or never apply, is
    /// refused.
    ///
    /// # Errors
    ///
    /// Which kind, and why.
    pub fn check(&self, honest: usize, misbehaving: usize) -> Result<(), String> {
        for (kind, _) in &self.entries {
            let why = match kind {
                Kind::Partition if honest < 2 => {
                    "needs two or more honest nodes (each side keeps one)"
                }
                Kind::Bridge if honest < 2 => "needs two or more honest nodes besides the bridge",
                Kind::Kill | Kind::Pause | Kind::Rollback | Kind::Isolate
                    if honest < 2 && misbehaving == 0 =>
                {
                    "would leave no honest node running (one honest node, no other)"
                }
                Kind::Latency | Kind::Loss if honest + misbehaving < 2 => "needs two or more nodes",
                _ => continue,
            };
            return Err(format!("--faults {}: {why}", kind.name()));
        }
        Ok(())
    }
}

impl FromStr for Menu {
    type Err = String;

    /// `kill,partition=2,...`: kinds with optional weights (default 1).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut entries: Vec<(Kind, u32)> = Vec::new();
        for item in s.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!("{s:?}: an empty item"));
            }
            let (name, weight) = match item.split_once('=') {
                Some((name, weight)) => {
                    let w: u32 = weight.trim().parse().map_err(|_| {
                        format!("{item:?}: the weight must be a whole number 1..={MAX_WEIGHT}")
                    })?;
                    if !(1..=MAX_WEIGHT).contains(&w) {
                        return Err(format!("{item:?}: the weight must be 1..={MAX_WEIGHT}"));
                    }
                    (name.trim(), w)
                }
                None => (item, 1),
            };
            let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == name) else {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                return Err(format!(
                    "{name:?} is not a fault (known: {})",
                    known.join(", ")
                ));
            };
            if entries.iter().any(|(k, _)| *k == kind) {
                return Err(format!("{name:?} is listed twice"));
            }
            entries.push((kind, weight));
        }
        Ok(Menu { entries })
    }
}

impl fmt::Display for Menu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .entries
            .iter()
            .map(|(k, w)| format!("{}={w}", k.name()))
            .collect();
        f.write_str(&items.join(","))
    }
}

/// A node the run starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `bigload-N` or `shit-N`.
    pub name: String,
    /// Whether it is honest.
    pub honest: bool,
}

/// How often and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Mean time between two faults (each wait is drawn in ±50%).
    pub interval: Duration,
    /// How long a network or clock fault lasts.
    pub duration: Duration,
    /// How long a killed, paused or rolled back node stays out; `None`:
    /// for the rest of the run.
    pub rehire_after: Option<Duration>,
}

/// One fault of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Planned {
    /// Its number in the timeline, from 1.
    pub id: u64,
    /// When, ms from the start of the run.
    pub at_ms: u64,
    /// How long it lasts, ms; `None`: until the end of the run.
    pub for_ms: Option<u64>,
    /// What.
    pub fault: Fault,
    /// The schedule file's line it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Planned {
    /// When it ends, ms from the start; `None`: at the end of the run.
    pub fn end_ms(&self) -> Option<u64> {
        self.for_ms.map(|d| self.at_ms.saturating_add(d))
    }

    /// What Sauron records of it when it starts at `start_ms` (ms since
    /// the epoch).
    pub fn record(&self, start_ms: u64) -> FaultRecord {
        FaultRecord {
            id: self.id,
            fault: self.fault.clone(),
            start_ms,
            end_ms: self.for_ms.map(|d| start_ms.saturating_add(d)),
        }
    }

    /// One line of the printed timeline.
    pub fn line(&self) -> String {
        let at = self.at_ms as f64 / 1000.0;
        let length = match self.for_ms {
            Some(ms) => format!("for {:.1} s", ms as f64 / 1000.0),
            None => "until the end".to_owned(),
        };
        format!(
            "#{:<3} t={at:>7.1} s  {length:<14} {}",
            self.id,
            describe(&self.fault)
        )
    }
}

/// A fault in a few words, e.g. `partition [a b] | [c]`.
pub fn describe(fault: &Fault) -> String {
    let to = |to: &[String]| {
        if to.is_empty() {
            String::new()
        } else {
            format!(" to {}", to.join(" "))
        }
    };
    match fault {
        Fault::Partition { groups, bridge } => {
            let groups: Vec<String> = groups.iter().map(|g| g.join(" ")).collect();
            let bridge = if bridge.is_empty() {
                String::new()
            } else {
                format!(" bridged by {}", bridge.join(" "))
            };
            format!("partition [{}]{bridge}", groups.join("] | ["))
        }
        Fault::Heal {} => "heal".to_owned(),
        Fault::Isolate { node } => format!("isolate {node}"),
        Fault::Crash { node } => format!("kill {node}"),
        Fault::Restart { node } => format!("restart {node}"),
        Fault::Pause { node, .. } => format!("pause {node}"),
        Fault::ClockSkew { node, skew_ms } => format!("skew {node} by {skew_ms:+} ms"),
        Fault::Latency {
            node,
            mean_ms,
            jitter_ms,
            to: peer,
            ..
        } => format!("latency {node}{} {mean_ms}±{jitter_ms} ms", to(peer)),
        Fault::Loss {
            node,
            rate,
            to: peer,
            ..
        } => format!("loss {node}{} {:.0}%", to(peer), rate * 100.0),
        Fault::Rollback { node } => format!("rollback {node}"),
    }
}

/// When a node is out: from, until (`None`: the end of the run).
#[derive(Debug, Clone)]
struct Out {
    name: String,
    from: u64,
    until: Option<u64>,
}

fn covers(from: u64, until: Option<u64>, t: u64) -> bool {
    from <= t && until.is_none_or(|u| u > t)
}

/// Draws the timeline, fault by fault (an endless iterator: take what the
/// run needs).
#[derive(Debug)]
pub struct Planner {
    rng: StdRng,
    members: Vec<Member>,
    menu: Menu,
    timing: Timing,
    at_ms: u64,
    id: u64,
    /// Nodes stopped or isolated, with when.
    out: Vec<Out>,
    /// The end of the cut (partition, isolation, bridge) in effect.
    cut: Option<(u64, Option<u64>)>,
}

impl Planner {
    /// A planner over `members` (the nodes the run starts with) drawing
    /// from `menu`, every choice from `seed`.
    pub fn new(seed: u64, members: Vec<Member>, menu: Menu, timing: Timing) -> Self {
        Planner {
            rng: StdRng::seed_from_u64(seed),
            members,
            menu,
            timing,
            at_ms: 0,
            id: 0,
            out: Vec::new(),
            cut: None,
        }
    }

    fn ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Members up (not stopped, not isolated) at `t`.
    fn up(&self, t: u64) -> Vec<&Member> {
        self.members
            .iter()
            .filter(|m| {
                !self
                    .out
                    .iter()
                    .any(|o| o.name == m.name && covers(o.from, o.until, t))
            })
            .collect()
    }

    /// Members that may be taken out at `t`, and for how long they would
    /// be: an honest one only when another honest node stays up all the
    /// while.
    fn removable(&self, t: u64, until: Option<u64>) -> Vec<String> {
        let up = self.up(t);
        up.iter()
            .filter(|m| {
                !m.honest
                    || up.iter().any(|o| {
                        o.honest
                            && o.name != m.name
                            && !self.out.iter().any(|x| {
                                x.name == o.name
                                    && x.from < until.unwrap_or(u64::MAX)
                                    && x.until.is_none_or(|u| u > t)
                            })
                    })
            })
            .map(|m| m.name.clone())
            .collect()
    }

    fn pick(&mut self, from: &[String]) -> Option<String> {
        (!from.is_empty()).then(|| from[self.rng.random_range(0..from.len())].clone())
    }

    /// The fault of `kind` at `t`, if one applies now.
    fn draw(&mut self, kind: Kind, t: u64) -> Option<(Fault, Option<u64>)> {
        let net = Some(Self::ms(self.timing.duration));
        let stop = self.timing.rehire_after.map(Self::ms);
        let cut_free = self.cut.is_none_or(|(_, end)| end.is_some_and(|e| e <= t));
        let up: Vec<String> = self.up(t).iter().map(|m| m.name.clone()).collect();
        match kind {
            Kind::Kill | Kind::Pause | Kind::Rollback | Kind::Isolate => {
                let length = if kind == Kind::Isolate { net } else { stop };
                if kind == Kind::Isolate && !cut_free {
                    return None;
                }
                let until = length.map(|l| t.saturating_add(l));
                let node = {
                    let candidates = self.removable(t, until);
                    self.pick(&candidates)?
                };
                self.out.push(Out {
                    name: node.clone(),
                    from: t,
                    until,
                });
                if kind == Kind::Isolate {
                    self.cut = Some((t, until));
                }
                let fault = match kind {
                    Kind::Kill => Fault::Crash { node },
                    Kind::Pause => Fault::Pause {
                        node,
                        for_ms: length.unwrap_or(MAX_FOR_MS),
                    },
                    Kind::Rollback => Fault::Rollback { node },
                    _ => Fault::Isolate { node },
                };
                Some((fault, length))
            }
            Kind::Partition | Kind::Bridge => {
                if !cut_free {
                    return None;
                }
                let mut up = up;
                up.shuffle(&mut self.rng);
                let honest = |name: &str, members: &[Member]| {
                    members.iter().any(|m| m.name == name && m.honest)
                };
                let bridge = if kind == Kind::Bridge {
                    // Any node up, as long as two honest nodes stay on the
                    // sides.
                    let honest_up = up.iter().filter(|n| honest(n, &self.members)).count();
                    let options: Vec<String> = up
                        .iter()
                        .filter(|n| !honest(n, &self.members) || honest_up >= 3)
                        .cloned()
                        .collect();
                    Some(self.pick(&options)?)
                } else {
                    None
                };
                let honest_up: Vec<String> = up
                    .iter()
                    .filter(|n| honest(n, &self.members) && Some(*n) != bridge.as_ref())
                    .cloned()
                    .collect();
                if honest_up.len() < 2 {
                    return None;
                }
                let count = if kind == Kind::Partition
                    && honest_up.len() >= 3
                    && self.rng.random_range(0..3) == 0
                {
                    3
                } else {
                    2
                };
                let mut groups: Vec<Vec<String>> = vec![Vec::new(); count];
                for (i, name) in honest_up.iter().enumerate().take(count) {
                    groups[i].push(name.clone());
                }
                // Everyone else (down ones too: the plan is over names),
                // anywhere.
                let mut rest: Vec<String> = self
                    .members
                    .iter()
                    .map(|m| m.name.clone())
                    .filter(|n| Some(n) != bridge.as_ref() && !groups.iter().any(|g| g.contains(n)))
                    .collect();
                rest.sort();
                rest.shuffle(&mut self.rng);
                for name in rest {
                    let g = self.rng.random_range(0..count);
                    groups[g].push(name);
                }
                for g in &mut groups {
                    g.sort();
                }
                self.cut = Some((t, net.map(|l| t.saturating_add(l))));
                let bridge = bridge.into_iter().collect();
                Some((Fault::Partition { groups, bridge }, net))
            }
            Kind::Latency | Kind::Loss | Kind::Skew => {
                let node = self.pick(&up)?;
                let to = if kind != Kind::Skew && self.rng.random_bool(0.5) {
                    let others: Vec<String> = self
                        .members
                        .iter()
                        .map(|m| m.name.clone())
                        .filter(|n| *n != node)
                        .collect();
                    self.pick(&others)
                } else {
                    None
                };
                let fault = match kind {
                    Kind::Latency => {
                        let mean_ms = self.rng.random_range(100..=1_000u64);
                        Fault::Latency {
                            node,
                            mean_ms,
                            jitter_ms: mean_ms / 4,
                            to: to.into_iter().collect(),
                            for_ms: None,
                        }
                    }
                    Kind::Loss => Fault::Loss {
                        node,
                        // Whole percents: the timeline prints exactly.
                        rate: f64::from(self.rng.random_range(10..=50u32)) / 100.0,
                        to: to.into_iter().collect(),
                        for_ms: None,
                    },
                    _ => {
                        let size = self.rng.random_range(SKEW_MIN_MS..=SKEW_MAX_MS);
                        let sign = if self.rng.random_bool(0.5) { 1 } else { -1 };
                        // Whole seconds.
                        Fault::ClockSkew {
                            node,
                            skew_ms: sign * (size / 1000) * 1000,
                        }
                    }
                };
                Some((fault, net))
            }
        }
    }
}

impl Iterator for Planner {
    type Item = Planned;

    fn next(&mut self) -> Option<Planned> {
        let total: u32 = self.menu.entries.iter().map(|(_, w)| *w).sum();
        if total == 0 || self.members.is_empty() {
            return None;
        }
        // Slots where nothing applies are skipped; bounded so a menu that
        // can never apply ends the plan.
        for _ in 0..1_000 {
            let wait = self
                .timing
                .interval
                .mul_f64(self.rng.random_range(0.5..1.5));
            self.at_ms = self.at_ms.saturating_add(Self::ms(wait));
            let t = self.at_ms;
            // Forget what is over.
            self.out.retain(|o| o.until.is_none_or(|u| u > t));
            // Weighted draw; kinds that do not apply now are dropped and
            // the draw repeated among the rest.
            let mut left: Vec<(Kind, u32)> = self.menu.entries.clone();
            while !left.is_empty() {
                let sum: u32 = left.iter().map(|(_, w)| *w).sum();
                let mut x = self.rng.random_range(0..sum);
                let i = left
                    .iter()
                    .position(|(_, w)| {
                        if x < *w {
                            true
                        } else {
                            x -= w;
                            false
                        }
                    })
                    .unwrap_or(0);
                let (kind, _) = left.remove(i);
                if let Some((fault, for_ms)) = self.draw(kind, t) {
                    self.id += 1;
                    return Some(Planned {
                        id: self.id,
                        at_ms: t,
                        for_ms,
                        fault,
                        line: None,
                    });
                }
            }
        }
        None
    }
}

/// The timeline drawn from `seed` over `members` and `menu`, up to
/// `horizon_ms` from the start (or its first [`PRINTED_WITHOUT_DURATION`]
/// faults without one). Pure: the same arguments give the same timeline.
pub fn plan(
    seed: u64,
    members: &[Member],
    menu: &Menu,
    timing: Timing,
    horizon_ms: Option<u64>,
) -> Vec<Planned> {
    let planner = Planner::new(seed, members.to_vec(), menu.clone(), timing);
    match horizon_ms {
        Some(h) => planner.take_while(|p| p.at_ms < h).collect(),
        None => planner.take(PRINTED_WITHOUT_DURATION).collect(),
    }
}

/// A schedule file's faults as a timeline: a partition or isolation lasts
/// until the next heal, a crash until the node's restart (heals and
/// restarts are those ends, not faults of their own), a pause its
/// `for_ms`, a clock skew until the node's next one; what nothing ends
/// lasts until the end of the run.
pub fn from_schedule(faults: &[ScheduledFault]) -> Vec<Planned> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut out: Vec<Planned> = Vec::new();
    let mut cuts: Vec<usize> = Vec::new();
    let mut crashed: Vec<(String, usize)> = Vec::new();
    let mut skewed: Vec<(String, usize)> = Vec::new();
    let end = |p: &mut Planned, t: u64| {
        if p.for_ms.is_none() {
            p.for_ms = Some(t.saturating_sub(p.at_ms).max(1));
        }
    };
    for f in faults {
        let t = ms(f.at);
        let (fault, for_ms) = match &f.kind {
            FaultKind::Heal => {
                for i in cuts.drain(..) {
                    end(&mut out[i], t);
                }
                continue;
            }
            FaultKind::Restart { node } => {
                if let Some(p) = crashed.iter().position(|(n, _)| n == node) {
                    let (_, i) = crashed.remove(p);
                    end(&mut out[i], t);
                }
                continue;
            }
            FaultKind::Partition { groups, bridge } => (
                Fault::Partition {
                    groups: groups.clone(),
                    bridge: bridge.clone(),
                },
                None,
            ),
            FaultKind::Latency {
                node,
                mean,
                jitter,
                to,
                duration,
            } => (
                Fault::Latency {
                    node: node.clone(),
                    mean_ms: ms(*mean),
                    jitter_ms: ms(*jitter),
                    to: to.clone().unwrap_or_default(),
                    for_ms: None,
                },
                Some(ms(*duration).max(1)),
            ),
            FaultKind::Loss {
                node,
                rate,
                to,
                duration,
            } => (
                Fault::Loss {
                    node: node.clone(),
                    rate: *rate,
                    to: to.clone().unwrap_or_default(),
                    for_ms: None,
                },
                Some(ms(*duration).max(1)),
            ),
            FaultKind::Isolate { node } => (Fault::Isolate { node: node.clone() }, None),
            FaultKind::Crash { node } => (Fault::Crash { node: node.clone() }, None),
            FaultKind::Pause { node, duration } => (
                Fault::Pause {
                    node: node.clone(),
                    for_ms: ms(*duration),
                },
                Some(ms(*duration).max(1)),
            ),
            FaultKind::ClockSkew { node, skew_ms } => {
                if let Some(p) = skewed.iter().position(|(n, _)| n == node) {
                    let (_, i) = skewed.remove(p);
                    end(&mut out[i], t);
                }
                (
                    Fault::ClockSkew {
                        node: node.clone(),
                        skew_ms: *skew_ms,
                    },
                    None,
                )
            }
        };
        let i = out.len();
        match &fault {
            Fault::Partition { .. } | Fault::Isolate { .. } => cuts.push(i),
            Fault::Crash { node } => crashed.push((node.clone(), i)),
            Fault::ClockSkew { node, .. } => skewed.push((node.clone(), i)),
            _ => {}
        }
        out.push(Planned {
            id: i as u64 + 1,
            at_ms: t,
            for_ms,
            fault,
            line: Some(f.line),
        });
    }
    out
}

/// Checks a schedule's timeline against the rule that some honest node
/// always runs, not isolated: refused with the line of the first fault
/// that would leave none.
///
/// # Errors
///
/// `(line, reason)`.
pub fn check_schedule(plan: &[Planned], members: &[Member]) -> Result<(), (usize, String)> {
    let honest: BTreeSet<&str> = members
        .iter()
        .filter(|m| m.honest)
        .map(|m| m.name.as_str())
        .collect();
    for p in plan {
        let t = p.at_ms;
        // Honest nodes out at t: every stopping or isolating fault started
        // at or before t and not over.
        let out: BTreeSet<&str> = plan
            .iter()
            .filter(|q| q.at_ms <= t && q.end_ms().is_none_or(|e| e > t))
            .filter(|q| {
                matches!(
                    q.fault,
                    Fault::Crash { .. }
                        | Fault::Pause { .. }
                        | Fault::Rollback { .. }
                        | Fault::Isolate { .. }
                )
            })
            .filter_map(|q| q.fault.node())
            .collect();
        if honest.iter().all(|h| out.contains(h)) {
            return Err((
                p.line.unwrap_or(0),
                format!(
                    "{} at {} ms leaves no honest node running",
                    describe(&p.fault),
                    p.at_ms
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Fault, Kind, Member, Menu, Timing, check_schedule, from_schedule, plan};

    fn members(honest: usize, other: usize) -> Vec<Member> {
        let mut m: Vec<Member> = (1..=honest)
            .map(|i| Member {
                name: format!("bigload-{i}"),
                honest: true,
            })
            .collect();
        m.extend((1..=other).map(|i| Member {
            name: format!("shit-{i}"),
            honest: false,
        }));
        m
    }

    fn timing() -> Timing {
        Timing {
            interval: Duration::from_secs(2),
            duration: Duration::from_secs(5),
            rehire_after: Some(Duration::from_secs(4)),
        }
    }

    fn everything() -> Menu {
        "kill,pause,partition=2,isolate,bridge,latency,loss,skew,rollback"
            .parse()
            .expect("menu")
    }

    #[test]
    fn the_timeline_is_a_function_of_the_seed() {
        let nodes = members(5, 2);
        let a = plan(7, &nodes, &everything(), timing(), Some(300_000));
        let b = plan(7, &nodes, &everything(), timing(), Some(300_000));
        let c = plan(8, &nodes, &everything(), timing(), Some(300_000));
        assert!(a.len() > 50, "{} faults", a.len());
        assert_eq!(a, b, "same seed, same timeline");
        assert_ne!(a, c, "another seed, another timeline");
        // Every kind of the menu comes up.
        for kind in Kind::ALL {
            let name = match kind {
                Kind::Kill => "crash",
                Kind::Skew => "clock_skew",
                Kind::Bridge => "partition",
                k => k.name(),
            };
            assert!(
                a.iter().any(|p| p.fault.kind() == name),
                "{name} never drawn"
            );
        }
        assert!(a.iter().any(|p| matches!(
            &p.fault,
            Fault::Partition { bridge, .. } if !bridge.is_empty()
        )));
    }

    #[test]
    fn a_drawn_timeline_always_keeps_an_honest_node_running() {
        for seed in 0..40 {
            for (h, o) in [(1, 1), (2, 0), (2, 2), (3, 1)] {
                let nodes = members(h, o);
                let mut menu = everything();
                if h < 2 {
                    menu = "kill,pause,rollback,isolate,latency,loss,skew"
                        .parse()
                        .expect("menu");
                }
                let timeline = plan(seed, &nodes, &menu, timing(), Some(120_000));
                check_schedule(&timeline, &nodes).unwrap_or_else(|(_, why)| {
                    panic!("seed {seed}, {h}+{o} nodes: {why}");
                });
                // Every side of a partition has an honest node.
                for p in &timeline {
                    if let Fault::Partition { groups, .. } = &p.fault {
                        assert!(
                            groups
                                .iter()
                                .all(|g| g.iter().any(|n| n.starts_with("bigload")))
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_menus_are_refused() {
        for bad in [
            "",
            "kill,,pause",
            "explode",
            "kill=0",
            "kill=-1",
            "kill,kill",
            "kill=x",
        ] {
            assert!(bad.parse::<Menu>().is_err(), "{bad:?} accepted");
        }
        let menu: Menu = "kill=2, partition".parse().expect("menu");
        assert_eq!(menu.to_string(), "kill=2,partition=1");
        assert!(menu.check(3, 0).is_ok());
        assert!(menu.check(1, 3).is_err(), "a partition of one honest node");
        assert!(
            Menu::only(Kind::Kill).check(1, 0).is_err(),
            "the last honest node"
        );
        assert!(Menu::only(Kind::Kill).check(1, 1).is_ok());
    }

    #[test]
    fn a_schedule_that_stops_every_honest_node_is_refused_at_its_line() {
        let nodes = members(2, 1);
        let text = "[[faults]]\nat_ms = 1000\nkind = \"crash\"\nnode = \"bigload-1\"\n\n\
                    [[faults]]\nat_ms = 2000\nkind = \"pause\"\nnode = \"bigload-2\"\nfor_ms = 500\n\n\
                    [[faults]]\nat_ms = 3000\nkind = \"restart\"\nnode = \"bigload-1\"\n";
        let roster = crapcoin_sim::schedule::Roster::of(&[
            ("honest", vec!["bigload-1".into(), "bigload-2".into()]),
            ("misbehaving", vec!["shit-1".into()]),
        ]);
        let faults = crapcoin_sim::schedule::parse(text, &roster).expect("parses");
        let timeline = from_schedule(&faults);
        assert_eq!(timeline.len(), 2);
        assert_eq!(timeline[0].for_ms, Some(2000), "crash until its restart");
        let (line, why) = check_schedule(&timeline, &nodes).expect_err("refused");
        assert_eq!(line, 6, "{why}");
        // Paused after the restart instead: fine.
        let later = text.replace("at_ms = 2000", "at_ms = 3500");
        let faults = crapcoin_sim::schedule::parse(&later, &roster).expect("parses");
        assert!(check_schedule(&from_schedule(&faults), &nodes).is_ok());
    }
}
