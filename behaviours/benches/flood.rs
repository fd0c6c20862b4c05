//! The honest nodes' cost of defending against flooders: 5 honest nodes
//! with 2 flooders, against 5 honest nodes with 2 more honest ones, on the
//! in-memory network. Reports honest-to-honest block propagation delay
//! (from `BlockMined` at one honest node to `BlockAccepted` at another) and
//! the process's CPU time for each run.
//!
//! ```text
//! cargo bench -p crapcoin-behaviours --bench flood
//! ```
//!
//! Everything runs in one process, so the CPU time of the flooded run also
//! counts the flooders' own forging: it is an upper bound on what the
//! honest nodes spend.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use crapcoin_core::Event;
use support::{Run, Scenario};

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn measure(name: &str) -> (Vec<f64>, Duration) {
    let before = cpu_time().unwrap_or_default();
    let mut scenario = Scenario::catalogue(name);
    scenario.run_for = Duration::from_secs(10);
    scenario.transfers = 20;
    let run = scenario.run().await;
    let cpu = cpu_time().unwrap_or_default().saturating_sub(before);
    run.check_invariants();
    let d = delays(&run);
    run.shutdown().await;
    (d, cpu)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("| run | blocks seen | p50 delay ms | p95 delay ms | max ms | CPU s |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut rows = Vec::new();
    for name in ["honest", "flooder"] {
        let (d, cpu) = measure(name).await;
        println!(
            "| 5 honest + 2 {name} | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
            d.len(),
            percentile(&d, 0.5),
            percentile(&d, 0.95),
            percentile(&d, 1.0),
            cpu.as_secs_f64()
        );
        rows.push((percentile(&d, 0.5), percentile(&d, 0.95), cpu));
    }
    let (base, flood) = (rows[0], rows[1]);
    println!(
        "ratios flood/baseline: p50 {:.2}, p95 {:.2}, CPU {:.2}",
        flood.0 / base.0,
        flood.1 / base.1,
        flood.2.as_secs_f64() / base.2.as_secs_f64()
    );
}
