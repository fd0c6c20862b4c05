//! The Boss: runs a fault timeline on the fleet ([`crate::faults`]):
//! drawn from a menu (`--faults`, or `--boss` alone: kill, `--boss-pause`:
//! pause) or read from a schedule file (`--fault-schedule`).
//!
//! Each planned fault runs at its time from the start of the run, on its
//! target if that is running then (a planned fault whose target is not
//! running is skipped and logged):
//!
//! - kill: SIGKILL, a crash-consistent copy of its database kept, rehired
//!   on its data after the fault's length;
//! - pause: SIGSTOP, SIGCONT after the fault's length;
//! - rollback: SIGKILL, a copy kept, and after the fault's length the node
//!   restarts on the copy taken at an earlier stop (none yet: on an empty
//!   chain, its wallet key kept), which it must survive by syncing;
//! - partition, isolate, bridge, latency, loss, clock skew: through each
//!   node's `POST /admin/faults`, `for_ms` the fault's length, so the
//!   node ends it by itself.
//!
//! Every fault is reported to Sauron when Sauron runs (start and end,
//! `POST /api/faults`; firings also as `POST /api/boss`). When the run
//! ends the Boss heals whatever is still on: due rehires and resumes at
//! once, `DELETE /admin/faults` on every running node. The Boss never
//! fires Sauron (it is not a fleet member).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crapcoin_node::sauron::faults::FaultRecord;
use crapcoin_node::sauron::model::BossAction;
use crapcoin_node::sauron::replay::Fault;
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::faults::{MAX_FOR_MS, Planned, describe};
use crate::fleet::{Fleet, State};
use crate::sauron;
use crate::watch::Watch;

/// Admin calls in flight at once when a fault touches many nodes.
const CONCURRENCY: usize = 16;

/// What one planned fault came to.
#[derive(Debug, Clone, Serialize)]
pub struct Executed {
    /// Its id in the timeline.
    pub id: u64,
    /// Its kind (`crash` is a kill).
    pub kind: &'static str,
    /// In a few words.
    pub what: String,
    /// When it was planned, ms from the start.
    pub planned_ms: u64,
    /// When it ran, ms from the start.
    pub at_ms: u64,
    /// When it ended, ms from the start (none yet: still on).
    pub end_ms: Option<u64>,
    /// `done`, or `skipped: WHY`, or `failed: WHY`.
    pub outcome: String,
}

#[derive(Debug, Default)]
struct Log {
    executed: Vec<Executed>,
    last_end: Option<Instant>,
}

/// What the Boss did, shared with the rest of the run (the report, the
/// verdict's liveness check).
#[derive(Debug)]
pub struct Handle {
    start: Instant,
    timeline: Vec<Planned>,
    log: Mutex<Log>,
}

impl Handle {
    /// A handle for a run started at `start` whose printed timeline is
    /// `timeline`.
    pub fn new(start: Instant, timeline: Vec<Planned>) -> Arc<Self> {
        Arc::new(Handle {
            start,
            timeline,
            log: Mutex::new(Log::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn since_start(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The planned timeline (the one printed at the start).
    pub fn timeline(&self) -> &[Planned] {
        &self.timeline
    }

    /// Every fault run or skipped so far, in order.
    pub fn executed(&self) -> Vec<Executed> {
        self.lock().executed.clone()
    }

    /// When the last fault that ran ended (the heal at the end of the run
    /// included); `None` when none ran.
    pub fn last_fault_end(&self) -> Option<Instant> {
        self.lock().last_end
    }

    /// The nodes a rollback was done to (restarted on an earlier copy of
    /// their data), for the verdict: what only their lost disk tail held
    /// is the fault's loss.
    pub fn rolled_back(&self) -> std::collections::BTreeSet<String> {
        let done: std::collections::BTreeSet<u64> = self
            .executed()
            .into_iter()
            .filter(|e| e.kind == "rollback" && e.outcome == "done")
            .map(|e| e.id)
            .collect();
        self.timeline
            .iter()
            .filter(|p| done.contains(&p.id))
            .filter_map(|p| p.fault.node().map(str::to_owned))
            .collect()
    }

    /// The report's `faults` section: the timeline, what ran, counts by
    /// kind.
    pub fn report(&self) -> Value {
        let executed = self.executed();
        let mut counts = std::collections::BTreeMap::<&str, u64>::new();
        for e in executed.iter().filter(|e| e.outcome == "done") {
            *counts.entry(e.kind).or_default() += 1;
        }
        json!({
            "timeline": self.timeline,
            "executed": executed,
            "counts": counts,
            "last_fault_end_ms": self.last_fault_end().map(|t| {
                u64::try_from(t.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
            }),
        })
    }

    fn begin(&self, planned: &Planned, outcome: String) -> usize {
        let at_ms = self.since_start();
        let mut log = self.lock();
        log.executed.push(Executed {
            id: planned.id,
            kind: planned.fault.kind(),
            what: describe(&planned.fault),
            planned_ms: planned.at_ms,
            at_ms,
            end_ms: None,
            outcome,
        });
        log.executed.len() - 1
    }

    fn end(&self, index: usize) {
        let now = self.since_start();
        let mut log = self.lock();
        if let Some(e) = log.executed.get_mut(index)
            && e.end_ms.is_none()
        {
            e.end_ms = Some(now);
            log.last_end = Some(Instant::now());
        }
    }
}

/// How the Boss works.
pub struct Config {
    /// The faults, in time order (an endless planner for a menu, the
    /// schedule's timeline for a file).
    pub plan: Box<dyn Iterator<Item = Planned> + Send>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

/// Runs the Boss on `watch`'s fleet until `cancel`; then heals everything
/// still on (rehires, resumes, `DELETE /admin/faults` on every running
/// node), so the network is whole again for the verdict.
pub async fn run(
    watch: Arc<Watch>,
    config: Config,
    handle: Arc<Handle>,
    cancel: CancellationToken,
) {
    let fleet = watch.fleet().clone();
    let mut ends: JoinSet<()> = JoinSet::new();
    let come_back = CancellationToken::new();
    for planned in config.plan {
        let due = handle.start + Duration::from_millis(planned.at_ms);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        if let Some(end) = execute(&watch, &fleet, &handle, &planned).await {
            let come_back = come_back.clone();
            let fleet = fleet.clone();
            let handle = handle.clone();
            ends.spawn(async move {
                if let Some(ms) = planned.for_ms {
                    tokio::select! {
                        _ = come_back.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    }
                } else {
                    come_back.cancelled().await;
                }
                finish(&fleet, &handle, &planned, end).await;
            });
        }
        // Forget finished ends so the set stays small.
        while ends.try_join_next().is_some() {}
    }
    // The plan ran out: the faults still on end in their time, or all at
    // once when the run ends.
    cancel.cancelled().await;
    come_back.cancel();
    while ends.join_next().await.is_some() {}
    heal_all(&fleet).await;
    let mut log = handle.lock();
    if !log.executed.is_empty() {
        log.last_end = Some(Instant::now());
    }
}

/// What ending a fault needs: its row in the log, its record for Sauron.
struct End {
    index: usize,
    record: FaultRecord,
}

fn now_ms() -> u64 {
    crapcoin_core::clock::now_ms()
}

/// Runs one planned fault; what ending it takes when it ran.
async fn execute(
    watch: &Watch,
    fleet: &Arc<Fleet>,
    handle: &Handle,
    planned: &Planned,
) -> Option<End> {
    let what = describe(&planned.fault);
    let result = match &planned.fault {
        Fault::Crash { node } | Fault::Rollback { node } => stop(watch, fleet, node).await,
        Fault::Pause { node, .. } => {
            if running(fleet, node) {
                fleet
                    .pause(node)
                    .map(|view| {
                        sauron::report(fleet, BossAction::Paused, &view);
                    })
                    .map_err(|e| format!("failed: {e}"))
            } else {
                Err("skipped: not running".to_owned())
            }
        }
        fault => network(fleet, fault, planned.for_ms).await,
    };
    match result {
        Ok(()) => {
            tracing::info!(id = planned.id, "the Boss: {what}");
            let index = handle.begin(planned, "done".to_owned());
            let record = planned.record(now_ms());
            sauron::report_fault(fleet, record.clone());
            Some(End { index, record })
        }
        Err(outcome) => {
            tracing::info!(id = planned.id, %outcome, "the Boss did not: {what}");
            handle.begin(planned, outcome);
            None
        }
    }
}

fn running(fleet: &Fleet, node: &str) -> bool {
    fleet.view(node).is_some_and(|v| v.state == State::Running)
}

/// SIGKILLs `node` and keeps a copy of its database.
async fn stop(watch: &Watch, fleet: &Fleet, node: &str) -> Result<(), String> {
    if !running(fleet, node) {
        return Err("skipped: not running".to_owned());
    }
    // Its counters up to (almost) the kill: SIGKILL loses the rest.
    watch.last_poll(node).await;
    let view = fleet.fire(node).map_err(|e| format!("failed: {e}"))?;
    sauron::report(fleet, BossAction::Fired, &view);
    match fleet.keep_copy(node) {
        // Everything it acknowledged, to the last moment: the polls miss
        // what came after the last one (the checker needs it to tell a
        // transfer a later rollback takes from one the node lost).
        Ok(copy) if view.honest => watch.record_left_on_disk(node, view.starts, &copy).await,
        Ok(_) => {}
        Err(e) => tracing::warn!(%node, error = %e, "could not keep a copy of its data"),
    }
    Ok(())
}

/// The `POST /admin/faults` bodies a network or clock fault sets, by node
/// name: a cut gives every node of each side the other sides' URLs as
/// `unreachable` (a bridge, in no group, gets nothing and is in no list;
/// an isolated node is one side, every other node of `all` the other).
/// `url` gives a node's URL (its last one when it is not running).
pub(crate) fn bodies(
    url: impl Fn(&str) -> Option<String>,
    all: &[String],
    fault: &Fault,
    for_ms: u64,
) -> Vec<(String, Value)> {
    let urls = |names: &[&String]| -> Vec<String> { names.iter().filter_map(|n| url(n)).collect() };
    let cut = |groups: &[Vec<String>]| -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let others: Vec<&String> = groups
                .iter()
                .enumerate()
                .filter(|(h, _)| *h != g)
                .flat_map(|(_, o)| o)
                .collect();
            let unreachable = urls(&others);
            for node in group {
                out.push((
                    node.clone(),
                    json!({"unreachable": unreachable, "for_ms": for_ms}),
                ));
            }
        }
        out
    };
    match fault {
        Fault::Partition { groups, .. } => cut(groups),
        Fault::Isolate { node } => {
            let rest: Vec<String> = all.iter().filter(|n| *n != node).cloned().collect();
            cut(&[vec![node.clone()], rest])
        }
        Fault::Latency {
            node,
            mean_ms,
            jitter_ms,
            to,
            ..
        } => {
            let mut latency = json!({"mean_ms": mean_ms, "jitter_ms": jitter_ms});
            if !to.is_empty() {
                latency["to"] = json!(to.iter().filter_map(|n| url(n)).collect::<Vec<_>>());
            }
            vec![(node.clone(), json!({"latency": latency, "for_ms": for_ms}))]
        }
        Fault::Loss { node, rate, to, .. } => {
            let mut loss = json!({"rate": rate});
            if !to.is_empty() {
                loss["to"] = json!(to.iter().filter_map(|n| url(n)).collect::<Vec<_>>());
            }
            vec![(node.clone(), json!({"loss": loss, "for_ms": for_ms}))]
        }
        Fault::ClockSkew { node, skew_ms } => {
            vec![(node.clone(), json!({"skew_ms": skew_ms, "for_ms": for_ms}))]
        }
        _ => Vec::new(),
    }
}

/// Sets a network or clock fault on the nodes it touches that run.
async fn network(fleet: &Fleet, fault: &Fault, for_ms: Option<u64>) -> Result<(), String> {
    if let Some(node) = fault.node()
        && !running(fleet, node)
    {
        return Err("skipped: not running".to_owned());
    }
    let for_ms = for_ms.unwrap_or(MAX_FOR_MS).clamp(1, MAX_FOR_MS);
    let all: Vec<String> = fleet.views().into_iter().map(|v| v.name).collect();
    let url = |name: &str| fleet.admin_of(name).map(|(url, _)| url);
    let calls: Vec<(String, String, Value)> = bodies(url, &all, fault, for_ms)
        .into_iter()
        .filter(|(name, _)| running(fleet, name))
        .filter_map(|(name, body)| {
            let (url, token) = fleet.admin_of(&name)?;
            Some((url, token, body))
        })
        .collect();
    if calls.is_empty() {
        return Err("skipped: none of its nodes is running".to_owned());
    }
    let asked = calls.len();
    let client = fleet.client();
    let failed: Vec<String> = futures_util::stream::iter(calls)
        .map(|(url, token, body)| async move {
            client
                .set_faults(&url, &token, &body)
                .await
                .err()
                .map(|e| format!("{url}: {e}"))
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(std::future::ready)
        .collect()
        .await;
    if failed.len() == asked {
        return Err(format!("failed: {}", failed.join("; ")));
    }
    for f in &failed {
        tracing::warn!(error = %f, "a node did not take a fault");
    }
    Ok(())
}

/// Ends a fault that ran: a stopped node comes back (a rolled back one on
/// an earlier copy of its data), network faults end on the nodes by
/// themselves; the end is logged and reported.
async fn finish(fleet: &Fleet, handle: &Handle, planned: &Planned, end: End) {
    match &planned.fault {
        Fault::Crash { node } => rehire(fleet, node).await,
        Fault::Rollback { node } => {
            match fleet.roll_back(node) {
                Ok(restored) => {
                    tracing::info!(%node, ?restored, "the Boss rolled back {node}'s data")
                }
                Err(e) => tracing::warn!(%node, error = %e, "rollback"),
            }
            rehire(fleet, node).await;
        }
        Fault::Pause { node, .. } => match fleet.resume(node) {
            Ok(view) => {
                tracing::info!(%node, "the Boss resumed {node}");
                sauron::report(fleet, BossAction::Resumed, &view);
            }
            Err(e) => tracing::debug!(%node, error = %e, "no resume"),
        },
        _ => {}
    }
    handle.end(end.index);
    let mut record = end.record;
    record.end_ms = Some(now_ms().max(record.start_ms));
    sauron::report_fault(fleet, record);
}

async fn rehire(fleet: &Fleet, node: &str) {
    match fleet.rehire(node).await {
        Ok(view) => {
            tracing::info!(%node, "the Boss rehired {node}");
            sauron::report(fleet, BossAction::Rehired, &view);
        }
        // Fired by hand meanwhile, or shutting down: nothing to do.
        Err(e) => tracing::debug!(%node, error = %e, "no comeback"),
    }
}

/// `DELETE /admin/faults` on every running node.
async fn heal_all(fleet: &Fleet) {
    let targets: Vec<(String, String)> = fleet
        .running()
        .into_iter()
        .filter_map(|r| fleet.admin_of(&r.name))
        .collect();
    let client = fleet.client();
    let failed = futures_util::stream::iter(targets)
        .map(|(url, token)| async move { client.clear_faults(&url, &token).await.is_err() })
        .buffer_unordered(CONCURRENCY)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    if failed > 0 {
        tracing::warn!(failed, "some nodes did not clear their faults");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Fault, bodies};

    fn url(name: &str) -> Option<String> {
        (name != "gone").then(|| format!("http://{name}"))
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_partition_gives_each_side_the_other_sides_and_spares_the_bridge() {
        let all = names(&["a", "b", "c", "d", "gone"]);
        let fault = Fault::Partition {
            groups: vec![names(&["a", "gone"]), names(&["b", "c"])],
            bridge: vec!["d".to_owned()],
        };
        let mut got = bodies(url, &all, &fault, 4_000);
        got.sort_by(|x, y| x.0.cmp(&y.0));
        let cut = |to: &[&str]| json!({"unreachable": to.iter().map(|n| format!("http://{n}")).collect::<Vec<_>>(), "for_ms": 4_000});
        assert_eq!(
            got,
            vec![
                ("a".to_owned(), cut(&["b", "c"])),
                ("b".to_owned(), cut(&["a"])),
                ("c".to_owned(), cut(&["a"])),
                ("gone".to_owned(), cut(&["b", "c"])),
            ],
            "the bridge d gets nothing and nobody lists it"
        );
        let isolated = bodies(
            url,
            &all,
            &Fault::Isolate {
                node: "b".to_owned(),
            },
            10,
        );
        assert_eq!(isolated.len(), 5);
        assert_eq!(
            isolated[0],
            (
                "b".to_owned(),
                cut(&["a", "c", "d"])
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert("for_ms".into(), json!(10));
                        serde_json::Value::Object(o)
                    })
                    .expect("object")
            )
        );
        assert!(
            isolated[1..]
                .iter()
                .all(|(_, b)| b["unreachable"] == json!(["http://b"]))
        );
    }

    #[test]
    fn link_and_clock_faults_are_one_body_for_their_node() {
        let all = names(&["a", "b"]);
        let latency = Fault::Latency {
            node: "a".to_owned(),
            mean_ms: 300,
            jitter_ms: 75,
            to: vec!["b".to_owned()],
            for_ms: None,
        };
        assert_eq!(
            bodies(url, &all, &latency, 5),
            vec![(
                "a".to_owned(),
                json!({"latency": {"mean_ms": 300, "jitter_ms": 75, "to": ["http://b"]}, "for_ms": 5})
            )]
        );
        let loss = Fault::Loss {
            node: "b".to_owned(),
            rate: 0.25,
            to: Vec::new(),
            for_ms: None,
        };
        assert_eq!(
            bodies(url, &all, &loss, 5),
            vec![("b".to_owned(), json!({"loss": {"rate": 0.25}, "for_ms": 5}))]
        );
        let skew = Fault::ClockSkew {
            node: "a".to_owned(),
            skew_ms: -150_000,
        };
        assert_eq!(
            bodies(url, &all, &skew, 5),
            vec![("a".to_owned(), json!({"skew_ms": -150_000, "for_ms": 5}))]
        );
    }
}
