//! The honest nodes' cost of defending against flooders: 5 honest nodes
//! with 2 flooders, against 5 honest nodes with 2 more honest ones, on the
//! in-memory network. Reports honest-to-honest block propagation delay
//! (from `BlockMined` at one honest node to `BlockAccepted` at another) and
//! CPU time for each run. A third run has flooders that send only what has
//! valid work (orphans and copies of the tip, no junk), so they are never
//! struck nor banned. The runs alternate, `FLOOD_RUNS` times (default 3),
//! and the medians over the runs are compared with the baseline's.
//!
//! ```text
//! cargo bench --workspace --bench flood
//! ```
//!
//! `FLOOD_ONLY=N` runs scenario N alone (0 the baseline, 1 the flooder, 2
//! the flooder without junk); `FLOOD_DIAG=1` prints, for every run, the
//! status calls and pushes between honest and misbehaving nodes and how
//! each honest block reached each honest node (from whom, whether it was
//! an orphan there first), with its delays.
//!
//! Everything runs in one process, so the process's CPU time of the flooded
//! run also counts the flooders' own forging (mining orphans, building junk
//! and copies in `tick`). That part is measured on its own, with the
//! thread CPU clock around every call of the flooders' `tick`, and
//! subtracted: "CPU s, without forging" is what the honest nodes (and the
//! in-memory network, and the flooders' engines) spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use behaviours::registry;
use crapcoin_core::behaviour::{Action, AutoAction};
use crapcoin_core::network::{Outgoing, Payload};
use crapcoin_core::{Behaviour, Block, BlockHeader, Context, Event, PeerUrl, Status, validate};
use kit::scenario::{Run, Scenario};
use rand::RngCore;

/// CPU time (user + system) of this process so far, from `/proc`.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(100);
    Some(Duration::from_millis((utime + stime) * 1000 / ticks))
}

/// The calling thread's CPU time, to the nanosecond.
#[cfg(unix)]
#[allow(unsafe_code, reason = "std has no thread CPU clock")]
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the whole call, and
    // `clock_gettime` writes nothing else.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return Duration::ZERO;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    Duration::ZERO
}

/// A behaviour that adds the thread CPU time of its `tick` (where a
/// flooder forges its bursts) to a shared counter, and is otherwise the
/// behaviour it wraps.
struct Metered {
    inner: Arc<dyn Behaviour>,
    tick_ns: Arc<AtomicU64>,
    /// Drop the blocks of a burst that fail the context-free checks (the
    /// flooder's junk): what is left, orphans with valid work and copies
    /// of the tip, is never invalid, so its sender is never banned.
    valid_only: bool,
}

impl Behaviour for Metered {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn block_timestamp(&self, ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
        self.inner.block_timestamp(ctx, parent, now_ms)
    }
    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.inner.publish(ctx, block, peers)
    }
    fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        self.inner.incoming(ctx, block, from)
    }
    fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.inner.relay(ctx, block, peers)
    }
    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        self.inner.serve_status(ctx, honest)
    }
    fn serve_blocks(&self, ctx: &Context<'_>, from: u64, honest: Vec<Block>) -> Vec<Block> {
        self.inner.serve_blocks(ctx, from, honest)
    }
    fn serve_peers(&self, ctx: &Context<'_>, honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
        self.inner.serve_peers(ctx, honest)
    }
    fn serve_delay(&self, ctx: &Context<'_>) -> Duration {
        self.inner.serve_delay(ctx)
    }
    fn next_auto(&self, ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
        self.inner.next_auto(ctx, rng)
    }
    fn tick_interval(&self) -> Option<Duration> {
        self.inner.tick_interval()
    }
    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let before = thread_cpu_time();
        let mut actions = self.inner.tick(ctx);
        if self.valid_only {
            actions.retain(|a| match a {
                Action::Broadcast(Payload::Block(block)) => {
                    validate::check(block.clone(), ctx.params()).is_ok()
                }
                _ => true,
            });
        }
        let spent = thread_cpu_time().saturating_sub(before);
        self.tick_ns.fetch_add(
            u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        actions
    }
}

/// Propagation delays between honest nodes, in milliseconds, sorted.
fn delays(run: &Run) -> Vec<f64> {
    let events = run.honest_events();
    let mut mined = std::collections::HashMap::new();
    for r in &events {
        if let Event::BlockMined { hash, .. } = &r.event {
            mined.insert(*hash, (r.node.clone(), r.at));
        }
    }
    let mut out: Vec<f64> = events
        .iter()
        .filter_map(|r| match &r.event {
            Event::BlockAccepted { hash, .. } => mined
                .get(hash)
                .filter(|(miner, _)| *miner != r.node)
                .map(|(_, at)| r.at.saturating_sub(*at).as_secs_f64() * 1000.0),
            _ => None,
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// Where an honest block's delay came from (FLOOD_DIAG=1).
fn diagnose(run: &Run) {
    use kit::scenario::Call;
    let bad: std::collections::HashSet<String> = run
        .bad_urls()
        .iter()
        .map(|u| u.as_str().to_owned())
        .collect();
    let mut status = std::collections::HashMap::<(bool, bool), usize>::new();
    let mut pushes = std::collections::HashMap::<(bool, bool), usize>::new();
    for c in run.calls.snapshot() {
        match c {
            Call::Status { from, to, .. } => {
                *status
                    .entry((bad.contains(from.as_str()), bad.contains(to.as_str())))
                    .or_default() += 1
            }
            Call::Push { from, to, .. } => {
                *pushes
                    .entry((bad.contains(from.as_str()), bad.contains(to.as_str())))
                    .or_default() += 1
            }
            _ => {}
        }
    }
    println!("status calls (from bad, to bad): {status:?}");
    println!("pushes (from bad, to bad): {pushes:?}");
    let events = run.honest_events();
    let mut mined = std::collections::HashMap::new();
    let mut orphaned = std::collections::HashSet::new();
    let mut honest_orphans = 0;
    for r in &events {
        match &r.event {
            Event::BlockMined { hash, .. } => {
                mined.insert(*hash, (r.node.clone(), r.at));
            }
            Event::BlockOrphaned { hash, from, .. } => {
                if from.as_ref().is_some_and(|f| !bad.contains(f.as_str())) {
                    honest_orphans += 1;
                }
                orphaned.insert((r.node.clone(), *hash));
            }
            _ => {}
        }
    }
    let mut classes = std::collections::BTreeMap::<String, Vec<f64>>::new();
    for r in &events {
        if let Event::BlockAccepted {
            hash, from, best, ..
        } = &r.event
            && let Some((miner, at)) = mined.get(hash)
            && *miner != r.node
        {
            let ms = r.at.saturating_sub(*at).as_secs_f64() * 1000.0;
            let via = match from {
                Some(f) if bad.contains(f.as_str()) => "from bad",
                Some(f) if f.as_str().ends_with(miner.as_str()) => "from miner",
                Some(_) => "from other honest",
                None => "none",
            };
            let key = format!(
                "{via}, orphaned first {}, best {best}",
                orphaned.contains(&(r.node.clone(), *hash))
            );
            classes.entry(key).or_default().push(ms);
        }
    }
    println!("honest orphans from honest senders: {honest_orphans}");
    for (k, mut v) in classes {
        v.sort_by(f64::total_cmp);
        println!(
            "  {k}: n {} p50 {:.1} p95 {:.1} max {:.1}",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.95),
            percentile(&v, 1.0)
        );
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// One run's numbers.
struct Measured {
    delays: Vec<f64>,
    cpu: Duration,
    forging: Duration,
}

impl Measured {
    fn without_forging(&self) -> Duration {
        self.cpu.saturating_sub(self.forging)
    }
}

async fn measure(name: &str, valid_only: bool) -> Measured {
    let tick_ns = Arc::new(AtomicU64::new(0));
    let counter = tick_ns.clone();
    let interval = Scenario::catalogue(name).interval;
    let owned = name.to_owned();
    let mut scenario = Scenario::custom(name, move |i| {
        let inner = registry::build_with(
            &owned,
            &registry::Options {
                // As `Scenario::catalogue` seeds them.
                seed: 7 * 1000 + i as u64,
                interval,
            },
        )
        .expect("a catalogue name");
        Arc::new(Metered {
            inner,
            tick_ns: counter.clone(),
            valid_only,
        })
    });
    scenario.run_for = Duration::from_secs(10);
    scenario.transfers = 20;
    let before = cpu_time().unwrap_or_default();
    let run = scenario.run().await;
    let cpu = cpu_time().unwrap_or_default().saturating_sub(before);
    run.check_invariants();
    let delays = delays(&run);
    if std::env::var_os("FLOOD_DIAG").is_some() {
        diagnose(&run);
    }
    run.shutdown().await;
    Measured {
        delays,
        cpu,
        forging: Duration::from_nanos(tick_ns.load(Ordering::Relaxed)),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 0.5)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("FLOOD_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!(
        "| run | # | delays measured | p50 delay ms | p95 delay ms | max ms | CPU s | flooders' forging s | CPU s, without forging |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    // The flooder as in the catalogue, and without its junk: only valid
    // work (orphans, copies), so it is never struck nor banned.
    let kinds = [
        ("honest", "honest", false),
        ("flooder", "flooder", false),
        ("flooder", "flooder, no junk (never banned)", true),
    ];
    let mut results: Vec<Vec<Measured>> = kinds.iter().map(|_| Vec::new()).collect();
    let only: Option<usize> = std::env::var("FLOOD_ONLY")
        .ok()
        .and_then(|s| s.parse().ok());
    for k in 1..=runs {
        for (i, (name, label, valid_only)) in kinds.iter().enumerate() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let m = measure(name, *valid_only).await;
            let name = label;
            println!(
                "| 5 honest + 2 {name} | {k} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} |",
                m.delays.len(),
                percentile(&m.delays, 0.5),
                percentile(&m.delays, 0.95),
                percentile(&m.delays, 1.0),
                m.cpu.as_secs_f64(),
                m.forging.as_secs_f64(),
                m.without_forging().as_secs_f64(),
            );
            results[i].push(m);
        }
    }
    let summary = |ms: &[Measured]| {
        (
            median(ms.iter().map(|m| percentile(&m.delays, 0.5)).collect()),
            median(ms.iter().map(|m| percentile(&m.delays, 0.95)).collect()),
            median(ms.iter().map(|m| m.cpu.as_secs_f64()).collect()),
            median(
                ms.iter()
                    .map(|m| m.without_forging().as_secs_f64())
                    .collect(),
            ),
        )
    };
    let summaries: Vec<_> = results.iter().map(|ms| summary(ms)).collect();
    for ((_, label, _), s) in kinds.iter().zip(&summaries) {
        println!(
            "median over {runs} runs, 5 honest + 2 {label}: p50 {:.1} ms, p95 {:.1} ms, CPU {:.2} s, without forging {:.2} s",
            s.0, s.1, s.2, s.3
        );
    }
    let base = summaries[0];
    for ((_, label, _), s) in kinds.iter().zip(&summaries).skip(1) {
        println!(
            "ratios of the medians, {label} / baseline: p50 {:.2}, p95 {:.2}, CPU {:.2}, CPU without forging {:.2}",
            s.0 / base.0,
            s.1 / base.1,
            s.2 / base.2,
            s.3 / base.3
        );
    }
}
