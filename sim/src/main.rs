//! `simulation`: runs a scenario file in virtual time.
//!
//! ```text
//! simulation sim/scenarios/partition.toml --log partition.jsonl
//! simulation sim/scenarios/fork-rate.toml --out results/fork-rate --progress
//! ```
//!
//! Refuses a bad scenario before anything starts (exit 2, with the line
//! and the reason). Prints a table of the runs, writes `runs.csv`,
//! `runs.json` and the plots under `--out`, and exits 1 when a run's
//! honest nodes did not agree.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use crapcoin_sim::output;
use crapcoin_sim::run::{self, Options};
use crapcoin_sim::scenario::Scenario;

/// mimalloc rather than the system's allocator: a simulation allocates and
/// frees a few futures and messages per message between its nodes, tens of
/// thousands a virtual second, many alive at once, and glibc's malloc
/// spent about a tenth of the run sorting its bins (BENCHMARKS.md, issue
/// 14). It changes no decision: the digests are the same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` in the v3 sources libmimalloc-sys
/// builds (its `mimalloc.h`; the crate names no constant for it in v3).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// That option's default in those sources, in milliseconds: what it reads
/// when [`PURGE_DELAY`] is the option we think it is and nobody set it.
const PURGE_DELAY_DEFAULT_MS: std::ffi::c_long = 1000;

/// Tells mimalloc to keep the pages freed memory sat on instead of handing
/// them back to the kernel a second later (its default). A simulation
/// frees and allocates again the same few hundred megabytes of messages
/// and futures all the time; handed back, each page was faulted in and
/// zeroed again by the kernel on its next use (BENCHMARKS.md, issue 14:
/// 9 % of a 1,000-node run's time). The price is the peak of that churn
/// staying resident, about 2 % of peak RSS. It changes no decision.
///
/// Left alone if the option does not read its default: set to another
/// value through `MIMALLOC_PURGE_DELAY` (that word wins; set to the
/// default itself, it cannot be told from unset), or another mimalloc
/// whose options are numbered otherwise.
#[allow(unsafe_code)]
fn keep_freed_pages() {
    // SAFETY: mi_option_get and mi_option_set read and store a number in
    // mimalloc's option table; purge_delay is read when memory is purged,
    // and -1 means never.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == PURGE_DELAY_DEFAULT_MS {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}

/// Runs a CrapCoin scenario in virtual time.
#[derive(Parser, Debug)]
#[command(name = "simulation")]
struct Args {
    /// The scenario file (TOML; see docs/scenarios.md).
    scenario: PathBuf,
    /// Run only this seed (instead of the file's seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop at this virtual time, in seconds (instead of the file's stop).
    #[arg(long)]
    until_secs: Option<f64>,
    /// Stop at this honest height (instead of the file's stop).
    #[arg(long)]
    until_height: Option<u64>,
    /// Write the event log (JSON lines) here; with several runs, one file
    /// each, numbered.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Write runs.csv, runs.json and the plots into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Show a progress bar of virtual time.
    #[arg(long)]
    progress: bool,
    /// Verify every signature at every node (turns off the process-wide
    /// cache of verified signatures, to measure what it saves).
    #[arg(long)]
    no_signature_cache: bool,
}

fn main() {
    keep_freed_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            // RUST_LOG when set (and not empty); else warnings, and the
            // runner's own milestones (nodes started, faults).
            std::env::var("RUST_LOG")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
                .unwrap_or_else(|| "warn,crapcoin_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    if args.no_signature_cache {
        crapcoin_core::sigcache::set_enabled(false);
    }
    let mut scenario = match Scenario::load(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("simulation: {e}");
            std::process::exit(2);
        }
    };
    if let Some(seed) = args.seed {
        scenario.seeds = vec![seed];
    }
    if args.until_secs.is_some() || args.until_height.is_some() {
        let time = match args.until_secs {
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Some(Duration::from_secs_f64(s)),
            Some(_) => {
                eprintln!("simulation: --until-secs must be a positive number of seconds");
                std::process::exit(2);
            }
            None => None,
        };
        scenario.stop.time = time;
        scenario.stop.height = args.until_height;
    }
    let runs = scenario.runs();
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    if let Some(out) = &args.out
        && let Err(e) = std::fs::create_dir_all(out)
    {
        eprintln!("simulation: cannot create {}: {e}", out.display());
        std::process::exit(2);
    }
    let bar = args
        .progress
        .then(|| output::progress_bar(&scenario, runs.len()));
    let mut options = Options {
        log: args.log.clone(),
        progress: None,
    };
    if let Some(bar) = &bar {
        options.progress = Some(bar.virtual_time_callback());
    }
    eprintln!(
        "simulation: {} — {} nodes, {} run(s) on {} thread(s)",
        scenario.name,
        scenario.node_count(),
        runs.len(),
        jobs.min(runs.len())
    );
    let results = run::run_all(&runs, jobs, &options, &|r, result| {
        if let Some(bar) = &bar {
            bar.run_done(r, result);
        } else {
            match result {
                Ok(o) => eprintln!("{}", output::one_line(o)),
                Err(e) => eprintln!("seed {}: failed: {e:#}", r.seed),
            }
        }
    });
    if let Some(bar) = bar {
        bar.finish();
    }
    let outcomes: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    println!("{}", output::table(&scenario, &outcomes));
    for (r, result) in runs.iter().zip(&results) {
        if let Err(e) = result {
            eprintln!("simulation: seed {} failed: {e:#}", r.seed);
        }
    }
    if let Some(out) = &args.out {
        match output::write_all(out, &scenario, &outcomes) {
            Ok(files) => {
                for f in files {
                    eprintln!("wrote {}", f.display());
                }
            }
            Err(e) => {
                eprintln!("simulation: writing results failed: {e:#}");
                std::process::exit(1);
            }
        }
    }
    let failed = results.iter().any(Result::is_err);
    let split = outcomes.iter().any(|o| !o.agreed);
    if failed || split {
        std::process::exit(1);
    }
}
