//! What a finished set of runs leaves behind: a table on the terminal,
//! `runs.csv` and `runs.json`, and the plots; and the progress bars while
//! it runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::io::IsTerminal as _;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::run::{Outcome, Progress};
use crate::scenario::{Run, Scenario};

/// One run in one line.
pub fn one_line(o: &Outcome) -> String {
    format!(
        "seed {}{}: height {} in {:.0} s virtual ({:.1} s wall, {:.0}x), stale {:.1} %, {} reorgs, {} messages, {}, digest {}",
        o.seed,
        o.value.map(|v| format!(" value {v}")).unwrap_or_default(),
        o.height,
        o.virtual_ms as f64 / 1000.0,
        o.wall_ms as f64 / 1000.0,
        o.speedup,
        o.stale_rate * 100.0,
        o.reorgs,
        o.messages,
        if o.agreed { "agreed" } else { "NOT agreed" },
        &o.digest[..16.min(o.digest.len())],
    )
}

/// The summary table: one row a run.
pub fn table(scenario: &Scenario, outcomes: &[&Outcome]) -> String {
    let swept = scenario
        .sweep
        .as_ref()
        .map(|s| s.parameter.to_string())
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>14} {:>8} {:>7} {:>8} {:>9} {:>8} {:>7} {:>8} {:>7}  {:<24} digest",
        if swept.is_empty() { "-" } else { &swept },
        "seed",
        "height",
        "virt s",
        "wall s",
        "speedup",
        "stale%",
        "prop ms",
        "agreed",
        "revenue by group",
    );
    for o in outcomes {
        let revenue: Vec<String> = o
            .groups
            .iter()
            .map(|g| format!("{} {:.3}", g.name, g.revenue))
            .collect();
        let _ = writeln!(
            out,
            "{:>14} {:>8} {:>7} {:>8.0} {:>9.1} {:>8.0} {:>7.2} {:>8} {:>7}  {:<24} {}",
            o.value
                .map(|v| format!("{v}"))
                .unwrap_or_else(|| "-".into()),
            o.seed,
            o.height,
            o.virtual_ms as f64 / 1000.0,
            o.wall_ms as f64 / 1000.0,
            o.speedup,
            o.stale_rate * 100.0,
            o.propagation_median_ms
                .map_or_else(|| "-".into(), |m| format!("{m:.0}")),
            if o.agreed { "yes" } else { "NO" },
            revenue.join(", "),
            &o.digest[..16.min(o.digest.len())],
        );
    }
    out
}

/// CSV of the runs: a header and a row each.
pub fn csv(outcomes: &[&Outcome]) -> String {
    let mut out = String::from(
        "scenario,seed,value,height,common_height,agreed,virtual_ms,wall_ms,speedup,blocks_mined,reorgs,rejected,stale_rate,mean_interval_ms,propagation_median_ms,transfers,messages,events,digest,groups\n",
    );
    for o in outcomes {
        let groups: Vec<String> = o
            .groups
            .iter()
            .map(|g| format!("{}:{}:{}", g.name, g.hash_share, g.revenue))
            .collect();
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{:.2},{},{},{},{},{},{},{},{},{},{},{}",
            o.scenario.replace(',', " "),
            o.seed,
            opt(o.value),
            o.height,
            o.common_height,
            o.agreed,
            o.virtual_ms,
            o.wall_ms,
            o.speedup,
            o.blocks_mined,
            o.reorgs,
            o.rejected,
            o.stale_rate,
            opt(o.mean_interval_ms),
            opt(o.propagation_median_ms),
            o.transfers,
            o.messages,
            o.events,
            o.digest,
            groups.join(";"),
        );
    }
    out
}

/// Writes `runs.csv`, `runs.json` and the plots that fit the scenario
/// into `dir`; returns the files written.
///
/// # Errors
///
/// When a file cannot be written or a plot cannot be drawn.
pub fn write_all(
    dir: &Path,
    scenario: &Scenario,
    outcomes: &[&Outcome],
) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let path = dir.join("runs.csv");
    std::fs::write(&path, csv(outcomes))?;
    files.push(path);
    let path = dir.join("runs.json");
    std::fs::write(&path, serde_json::to_string_pretty(outcomes)?)?;
    files.push(path);
    files.extend(crate::figures::draw(dir, scenario, outcomes)?);
    Ok(files)
}

/// A run by its seed and the bits of its sweep value.
type RunKey = (u64, Option<u64>);

/// Progress bars of virtual time, one a run, under one bar of runs done;
/// when stderr is not a terminal, a plain line per run every tenth of its
/// virtual time (every 100 virtual seconds when it stops on a height).
pub struct Bars {
    multi: MultiProgress,
    runs: ProgressBar,
    each: Mutex<Vec<(RunKey, ProgressBar)>>,
    total_ms: Option<u64>,
    interactive: bool,
    /// Plain mode: the last step printed, per run.
    printed: Mutex<Vec<(RunKey, u64)>>,
}

/// Progress bars for `runs` runs of `scenario`.
pub fn progress_bar(scenario: &Scenario, runs: usize) -> Arc<Bars> {
    let multi = MultiProgress::new();
    let bar = multi.add(ProgressBar::new(runs as u64));
    bar.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} runs {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(scenario.name.clone());
    Arc::new(Bars {
        multi,
        runs: bar,
        each: Mutex::new(Vec::new()),
        total_ms: scenario.stop.time.map(|t| t.as_millis() as u64),
        interactive: std::io::stderr().is_terminal(),
        printed: Mutex::new(Vec::new()),
    })
}

impl Bars {
    fn key(seed: u64, value: Option<f64>) -> RunKey {
        (seed, value.map(f64::to_bits))
    }

    /// The callback for [`crate::run::Options::progress`].
    pub fn virtual_time_callback(self: &Arc<Self>) -> Progress {
        let bars = self.clone();
        Arc::new(move |seed, value, elapsed: Duration, _total| {
            bars.advance(seed, value, elapsed);
        })
    }

    fn advance(&self, seed: u64, value: Option<f64>, elapsed: Duration) {
        let key = Self::key(seed, value);
        if !self.interactive {
            self.print_plain(key, seed, value, elapsed);
            return;
        }
        let mut each = self.each.lock().unwrap_or_else(|p| p.into_inner());
        let bar = match each.iter().find(|(k, _)| *k == key) {
            Some((_, bar)) => bar.clone(),
            None => {
                let bar = self.multi.add(ProgressBar::new(self.total_ms.unwrap_or(0)));
                let template = if self.total_ms.is_some() {
                    "{prefix:>12} [{bar:30}] {msg}"
                } else {
                    "{prefix:>12} {spinner} {msg}"
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(match value {
                    Some(v) => format!("{v} s{seed}"),
                    None => format!("seed {seed}"),
                });
                each.push((key, bar.clone()));
                bar
            }
        };
        let ms = elapsed.as_millis() as u64;
        bar.set_position(ms);
        bar.set_message(format!("{:.0} s virtual", ms as f64 / 1000.0));
    }

    fn print_plain(&self, key: RunKey, seed: u64, value: Option<f64>, elapsed: Duration) {
        let ms = elapsed.as_millis() as u64;
        let step = match self.total_ms {
            Some(total) => ms.saturating_mul(10) / total.max(1),
            None => ms / 100_000,
        };
        let mut printed = self.printed.lock().unwrap_or_else(|p| p.into_inner());
        let last = match printed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, last)) => last,
            None => {
                printed.push((key, 0));
                &mut printed.last_mut().expect("just pushed").1
            }
        };
        if step <= *last {
            return;
        }
        *last = step;
        let run = match value {
            Some(v) => format!("value {v} seed {seed}"),
            None => format!("seed {seed}"),
        };
        match self.total_ms {
            Some(total) => eprintln!(
                "{run}: {:.0} of {:.0} s virtual",
                ms as f64 / 1000.0,
                total as f64 / 1000.0
            ),
            None => eprintln!("{run}: {:.0} s virtual", ms as f64 / 1000.0),
        }
    }

    /// One run ended.
    pub fn run_done(&self, run: &Run, result: &anyhow::Result<Outcome>) {
        let key = Self::key(run.seed, run.value);
        let mut each = self.each.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = each.iter().position(|(k, _)| *k == key) {
            let (_, bar) = each.remove(at);
            bar.finish_and_clear();
        }
        self.runs.inc(1);
        let line = match result {
            Ok(o) => one_line(o),
            Err(e) => format!("seed {}: failed: {e:#}", run.seed),
        };
        if self.interactive {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// All runs ended.
    pub fn finish(&self) {
        self.runs.finish();
    }
}
