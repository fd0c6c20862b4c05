//! [`run`]: one watercooler run from parsed arguments to exit status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::AsyncBufReadExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::boss;
use crate::cli::{Args, FaultSource};
use crate::client::Client;
use crate::cmdline::{Kind, Settings, derive_seed};
use crate::control::Controller;
use crate::docker::{self, Runtime, RuntimeKind};
use crate::faults::{self, Planned};
use crate::fleet::Fleet;
use crate::spawn::Spawner;
use crate::ui::Ui;
use crate::watch::Watch;

/// Exit status: the honest nodes converged (or a run stopped by hand).
pub const EXIT_CONVERGED: i32 = 0;
/// Exit status: they did not, or the network could not be started.
pub const EXIT_NOT_CONVERGED: i32 = 1;
/// Exit status: bad command line or missing binaries.
pub const EXIT_USAGE: i32 = 2;

/// How long the end of a run waits for its tasks (reports to Sauron, the
/// control server, the loops) once every child is stopped.
const TASKS_GRACE: Duration = Duration::from_secs(10);

/// The binaries watercooler starts.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `crapcoin-node`.
    pub node: PathBuf,
    /// `sauron`.
    pub sauron: PathBuf,
}

/// Finds `crapcoin-node` (and `sauron` when `need_sauron`) in `dir`, by
/// default the directory of the running executable.
///
/// # Errors
///
/// A message naming the missing binary and the cargo command that builds
/// it.
pub fn find_bins(dir: Option<&Path>, need_sauron: bool) -> anyhow::Result<Bins> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_exe()
            .context("locating the watercooler executable")?
            .parent()
            .context("the executable has no directory")?
            .to_path_buf(),
    };
    let bins = Bins {
        node: dir.join("crapcoin-node"),
        sauron: dir.join("sauron"),
    };
    let mut wanted = vec![&bins.node];
    if need_sauron {
        wanted.push(&bins.sauron);
    }
    for bin in wanted {
        if !bin.is_file() {
            bail!(
                "{} not found (watercooler looks beside its own executable, or in --bin-dir); \
                 build it with `cargo build -p crapcoin-node --bins` (same profile as watercooler)",
                bin.display()
            );
        }
    }
    Ok(bins)
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Duration,
    Quit,
    Interrupt,
    Terminate,
}

/// Runs watercooler: starts the network, steers it until the duration
/// passes, `quit`, Ctrl-C or SIGTERM, stops every child, awaits every
/// task it spawned (bounded), and returns the exit status.
///
/// # Errors
///
/// Only what happens before any child starts (binaries, data directory,
/// control port); later failures stop the children and are reported as
/// [`EXIT_NOT_CONVERGED`].
pub async fn run(args: Args, ui: Ui) -> anyhow::Result<i32> {
    let (bins, runtime) = match args.runtime {
        RuntimeKind::Process => (
            find_bins(args.bin_dir.as_deref(), args.sauron)?,
            Runtime::Process,
        ),
        RuntimeKind::Docker => (
            Bins {
                node: docker::NODE_BIN.into(),
                sauron: docker::SAURON_BIN.into(),
            },
            Runtime::Docker(docker_runtime(&args).await?),
        ),
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "watercooler-{}-{}",
            std::process::id(),
            crapcoin_core::clock::now_ms()
        )),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    tracing::info!(seed, data_dir = %data_dir.display(), "watercooler starting (repeat with --seed {seed})");

    let spawner = Spawner::start().context("starting the spawner thread")?;
    let client = Client::new().context("building the HTTP client")?;
    let tasks = TaskTracker::new();
    let fleet = Arc::new(
        Fleet::new(
            Settings {
                node_bin: bins.node,
                sauron_bin: bins.sauron,
                data_dir: data_dir.clone(),
                difficulty: args.difficulty,
                auto: args.auto,
                auto_interval_ms: args.auto_interval_ms(),
                shares: args.shares(),
                maintenance_ms: crate::cmdline::maintenance_ms(
                    u64::from(args.honest) + u64::from(args.misbehaving_count()),
                ),
                node_nice: i32::from(args.node_nice),
                seed,
            },
            spawner,
            client,
            tasks.clone(),
        )
        .with_runtime(runtime),
    );
    let watch = Arc::new(Watch::new(fleet.clone()));
    let quit = CancellationToken::new();
    // Cancelled once every child is stopped: the control server, the
    // stdin and status loops end.
    let shutdown = CancellationToken::new();
    let controller = Controller::new(watch.clone(), quit.clone());
    let control_url = controller
        .serve(shutdown.clone())
        .await
        .context("binding the control API")?;

    let started = run_network(
        &args,
        &watch,
        &controller,
        &control_url,
        &ui,
        quit.clone(),
        &shutdown,
    )
    .await;
    let code = match started {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            EXIT_NOT_CONVERGED
        }
    };
    ui.finish();
    fleet.stop_all().await;
    shutdown.cancel();
    tasks.close();
    if tokio::time::timeout(TASKS_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(left = tasks.len(), "some tasks did not end in time");
    }
    tracing::info!("every child stopped");
    Ok(code)
}

/// The Docker runtime of this run, checked before anything starts (a
/// daemon answers, the image is there, the plugins are in it).
///
/// # Errors
///
/// What is wrong (a usage error: exit 2).
async fn docker_runtime(args: &Args) -> anyhow::Result<docker::Docker> {
    let image = args.image.clone().unwrap_or_else(docker::default_image);
    let run = format!("{}-{:04x}", std::process::id(), rand::random::<u16>());
    let limits = docker::Limits {
        cpus: args.node_cpus,
        memory: args.node_memory,
    };
    let plugins = args.plugins.clone();
    let docker = tokio::task::spawn_blocking(move || {
        let docker = docker::Docker::new(image, run, limits);
        docker.check(&plugins).map(|()| docker)
    })
    .await
    .context("checking docker")?
    .map_err(anyhow::Error::msg)?;
    tracing::info!(
        image = docker.image(),
        run = docker.run(),
        "containers are named crapcoin-{}-NAME (label {}={})",
        docker.run(),
        docker::RUN_LABEL,
        docker.run()
    );
    Ok(docker)
}

async fn run_network(
    args: &Args,
    watch: &Arc<Watch>,
    controller: &Controller,
    control_url: &str,
    ui: &Ui,
    quit: CancellationToken,
    shutdown: &CancellationToken,
) -> anyhow::Result<i32> {
    let fleet = watch.fleet();
    let tasks = fleet.tasks();
    let began = Instant::now();
    if args.sauron {
        let url = fleet.start_sauron(control_url).await?;
        ui.println(&format!("Sauron's dashboard: {url}/"));
    }
    ui.println(&format!(
        "control API: {control_url} (POST /hire, POST /fire, POST /auto, GET /status)"
    ));

    let mut kinds: Vec<Kind> = Vec::new();
    kinds.extend((0..args.honest).map(|_| Kind::Honest));
    kinds.extend((0..args.misbehaving).map(|_| Kind::named(&args.behaviour)));
    kinds.extend(args.plugins.iter().cloned().map(Kind::Plugin));
    hire_initial(fleet, kinds, ui).await?;
    let up = began.elapsed();
    tracing::info!(
        nodes = fleet.running().len(),
        secs = up.as_secs_f64(),
        "network up"
    );
    ui.println(&format!(
        "{} nodes up in {:.1} s; type `status`, `hire [N] [BEHAVIOUR]`, `fire NAME` or `quit`",
        fleet.running().len(),
        up.as_secs_f64()
    ));

    let stop_boss = shutdown.child_token();
    let mut boss_handle = None;
    let boss = if args.boss_enabled() {
        // Checked before anything started (Args::check): cannot fail now.
        let source = args.fault_source().map_err(anyhow::Error::msg)?;
        let (plan, timeline) = boss_plan(args, source, derive_seed(fleet.settings().seed, 0xB055));
        ui.println(&format!("the Boss's timeline ({} faults):", timeline.len()));
        for planned in &timeline {
            ui.println(&format!("  {}", planned.line()));
        }
        let handle = boss::Handle::new(Instant::now(), timeline);
        boss_handle = Some(handle.clone());
        Some(tasks.spawn(boss::run(
            watch.clone(),
            boss::Config { plan },
            handle,
            stop_boss.clone(),
        )))
    } else {
        None
    };
    let stop_status = shutdown.child_token();
    let status = tasks.spawn(status_loop(watch.clone(), ui.clone(), stop_status.clone()));
    tasks.spawn(stdin_loop(controller.clone(), ui.clone(), shutdown.clone()));

    let end = wait_for_end(args.duration.map(Duration::from_secs), &quit).await?;
    tracing::info!(?end, "stopping");
    stop_boss.cancel();
    if let Some(boss) = boss {
        // Bounded: pending rehires each wait for one start at most.
        let _ = tokio::time::timeout(Duration::from_secs(90), boss).await;
    }
    let code = if end == End::Duration {
        ui.status("settling: Boss and auto mode stopped, waiting for the honest nodes to agree");
        let verdict = watch
            .verdict(
                Duration::from_secs(args.settle),
                args.duration.unwrap_or(0),
                args.auto,
                Duration::from_secs(args.liveness_secs),
                boss_handle
                    .as_ref()
                    .map(|h| h.rolled_back())
                    .unwrap_or_default(),
            )
            .await;
        stop_status.cancel();
        let _ = status.await;
        ui.finish();
        ui.println(&verdict.text());
        if let Some(path) = &args.report {
            let mut report = serde_json::to_value(&verdict).context("serialising the report")?;
            if let Some(handle) = &boss_handle {
                report["faults"] = handle.report();
            }
            let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
            std::fs::write(path, json)
                .with_context(|| format!("writing the report to {}", path.display()))?;
        }
        if verdict.converged {
            EXIT_CONVERGED
        } else {
            EXIT_NOT_CONVERGED
        }
    } else {
        stop_status.cancel();
        let _ = status.await;
        match end {
            End::Interrupt => 130,
            End::Terminate => 143,
            _ => EXIT_CONVERGED,
        }
    };
    Ok(code)
}

/// The Boss's faults as it runs them, and the timeline printed at the
/// start (a menu's: up to `--duration`, or its first few without one).
fn boss_plan(
    args: &Args,
    source: FaultSource,
    seed: u64,
) -> (Box<dyn Iterator<Item = Planned> + Send>, Vec<Planned>) {
    match source {
        FaultSource::Menu(menu, timing) => {
            let members = args.members();
            let horizon = args.duration.map(|d| d.saturating_mul(1000));
            let timeline = faults::plan(seed, &members, &menu, timing, horizon);
            let planner = faults::Planner::new(seed, members, menu, timing);
            let plan: Box<dyn Iterator<Item = Planned> + Send> = match horizon {
                Some(h) => Box::new(planner.take_while(move |p| p.at_ms < h)),
                None => Box::new(planner),
            };
            (plan, timeline)
        }
        FaultSource::Schedule(timeline) => (Box::new(timeline.clone().into_iter()), timeline),
    }
}

/// Starts the first node alone (the others bootstrap from it when Sauron
/// does not run), then the rest, a few at a time.
async fn hire_initial(fleet: &Arc<Fleet>, kinds: Vec<Kind>, ui: &Ui) -> anyhow::Result<()> {
    use futures_util::StreamExt as _;
    let bar = ui.starting(kinds.len() as u64);
    let mut kinds = kinds.into_iter();
    if let Some(first) = kinds.next() {
        let name = fleet.hire(first).await?;
        bar.set_message(name);
        bar.inc(1);
    }
    let mut starts = futures_util::stream::iter(kinds)
        .map(|kind| fleet.hire(kind))
        .buffer_unordered(8);
    while let Some(result) = starts.next().await {
        let name = result?;
        bar.set_message(name);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

async fn wait_for_end(duration: Option<Duration>, quit: &CancellationToken) -> anyhow::Result<End> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    Ok(tokio::select! {
        _ = timer => End::Duration,
        _ = quit.cancelled() => End::Quit,
        _ = int.recv() => End::Interrupt,
        _ = term.recv() => End::Terminate,
    })
}

/// Polls the nodes and refreshes the status line until `stop`. Polls less
/// often as the network grows (each poll is two requests per node).
async fn status_loop(watch: Arc<Watch>, ui: Ui, stop: CancellationToken) {
    let mut last_plain = Instant::now() - Duration::from_secs(60);
    loop {
        let overview = tokio::select! {
            _ = stop.cancelled() => return,
            overview = watch.overview() => overview,
        };
        let line = overview.line();
        if ui.interactive() {
            ui.status(&line);
        } else if last_plain.elapsed() >= Duration::from_secs(5) {
            ui.status(&line);
            last_plain = Instant::now();
        }
        let pause = Duration::from_millis(1000 + 20 * overview.running as u64);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Reads commands from stdin until it closes (a closed or absent stdin
/// just means nobody types) or `stop`.
async fn stdin_loop(controller: Controller, ui: Ui, stop: CancellationToken) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => return,
            line = lines.next_line() => line,
        };
        let Ok(Some(line)) = line else {
            return;
        };
        let answer = controller.command(&line).await;
        ui.println(&answer);
    }
}
