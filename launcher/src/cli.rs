//! The `watercooler` command line ([`Args`]).
//!
//! Everything a user can get wrong is checked here, before any process
//! starts: counts are unsigned, behaviour names must be in the catalogue
//! (`behaviours::registry`), plugin files must exist. clap reports each as
//! a usage error and exits with status 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Starts and steers a CrapCoin sandbox network: honest nodes
/// ("bigload-N"), misbehaving nodes ("shit-N"), optionally Sauron (tracker,
/// aggregator, dashboard) and the Boss (who fires nodes at random).
///
/// While it runs, type commands on stdin: `hire [N] [BEHAVIOUR]`,
/// `fire NAME`, `auto on|off`, `status`, `quit`. The same is offered over
/// HTTP on 127.0.0.1 (`POST /hire {"count","behaviour"}`,
/// `POST /fire {"node"}`, `POST /auto {"on"}`, `GET /status`); its URL is
/// printed at start.
///
/// Ctrl-C or SIGTERM stops every child. With `--duration` it stops by
/// itself, prints a verdict and exits 0 when the honest nodes converged,
/// 1 when they did not (2: usage error).
#[derive(Debug, Clone, Parser)]
#[command(name = "watercooler", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Honest nodes to start (`--behaviour honest`, auto transfers with
    /// `--auto`).
    #[arg(short = 'x', long = "honest", default_value_t = 3, value_name = "N")]
    pub honest: u32,

    /// Misbehaving nodes to start, each with `--behaviour`.
    #[arg(
        short = 'y',
        long = "misbehaving",
        default_value_t = 0,
        value_name = "N"
    )]
    pub misbehaving: u32,

    /// Behaviour of the `-y` nodes: a catalogue name or group (`random`,
    /// `malicious`, `stupid`, `forger`, `selfish`, ...; see
    /// `crapcoin-node --list-behaviours`). Group members and `random`
    /// choices differ per node (each gets its own seed).
    #[arg(
        long,
        default_value = "random",
        value_parser = crate::cmdline::behaviour_arg,
        env = "WATERCOOLER_BEHAVIOUR"
    )]
    pub behaviour: String,

    /// An attacker plugin (cdylib built with `behaviours::export_plugin!`);
    /// one more misbehaving node runs it. Repeatable.
    /// With `--runtime docker`, a file of the image's
    /// `/usr/local/lib/crapcoin/plugins/`.
    #[arg(long = "plugin", value_name = "PATH", value_parser = existing_file)]
    pub plugins: Vec<PathBuf>,

    /// Start Sauron (tracker, aggregator, dashboard). Without it each new
    /// node bootstraps from nodes already running (`--peer`).
    #[arg(long)]
    pub sauron: bool,

    /// Start the Boss, who fires (SIGKILL) a random node every
    /// `--boss-interval` seconds (or draws from `--faults`). Never fires
    /// Sauron, never the last running honest node.
    #[arg(long)]
    pub boss: bool,

    /// Mean seconds between two faults (jittered ±50%).
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = positive_secs)]
    pub boss_interval: f64,

    /// Seconds after which a node the Boss fired is rehired on its old
    /// data directory (crash recovery), or a paused one resumed.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = positive_secs)]
    pub rehire_after: f64,

    /// Fired nodes stay fired (no rehiring).
    #[arg(long)]
    pub no_rehire: bool,

    /// The Boss pauses nodes (SIGSTOP, later SIGCONT) instead of killing
    /// them (the menu `pause`).
    #[arg(long, conflicts_with_all = ["faults", "fault_schedule"])]
    pub boss_pause: bool,

    /// The Boss's menu (implies `--boss`): faults drawn every
    /// `--boss-interval` seconds from `kill`, `pause`, `partition`,
    /// `isolate`, `bridge`, `latency`, `loss`, `skew`, `rollback`, each
    /// with an optional weight (`kill=2,partition=1`; default 1). The
    /// timeline is drawn from `--seed` and printed at the start. Default
    /// with `--boss`: `kill` (`pause` with `--boss-pause`).
    #[arg(long, value_name = "MENU", value_parser = menu)]
    pub faults: Option<Menu>,

    /// Seconds a network or clock fault (partition, isolate, bridge,
    /// latency, loss, skew) lasts; killed, paused and rolled back nodes
    /// come back after `--rehire-after`.
    #[arg(long, default_value_t = 5.0, value_name = "SECS", value_parser = positive_secs)]
    pub fault_duration: f64,

    /// Run the faults of this file instead of drawing them (implies
    /// `--boss`): the simulation's `[[faults]]` format
    /// (docs/scenarios.md), `at_ms` counted from the start of the run,
    /// nodes named `bigload-N` and `shit-N`, groups `honest` and
    /// `misbehaving`. Checked before anything starts.
    #[arg(long, value_name = "FILE", conflicts_with = "faults")]
    pub fault_schedule: Option<PathBuf>,

    /// Nodes make transfers on their own (auto mode).
    #[arg(long)]
    pub auto: bool,

    /// Auto-mode transfers per second across the fleet, spread over the
    /// honest nodes (a node that cannot pay yet skips its turn). Keep it
    /// below one per block interval: a block holds one transfer.
    #[arg(long, default_value_t = 0.5, value_name = "PER_SEC", value_parser = positive_rate)]
    pub auto_rate: f64,

    /// Mean milliseconds between two auto-mode transfers of one node
    /// (instead of `--auto-rate`).
    #[arg(long, value_name = "MS")]
    pub auto_interval_ms: Option<u64>,

    /// Target block interval T in seconds: blocks arrive network-wide every
    /// T on average, however many nodes mine (each finds one after T /
    /// its hash power share).
    #[arg(long, default_value_t = 1.0, value_name = "SECS", value_parser = positive_secs)]
    pub block_interval: f64,

    /// The misbehaving nodes' share of the network's hash power, in total
    /// (split equally among them; the honest nodes share the rest
    /// equally). Default: every node gets an equal share.
    #[arg(long, value_name = "SHARE", value_parser = unit_share)]
    pub attacker_share: Option<f64>,

    /// Niceness of node processes (0 to 19). Nodes' proof of work takes
    /// every free cycle; at a lower priority it cannot starve Sauron,
    /// watercooler and your terminal (with 40 nodes on two cores at 0,
    /// Sauron's ingest falls minutes behind). Nodes still share the CPU
    /// fairly among themselves.
    #[arg(long, default_value_t = 19, value_name = "N", env = "WATERCOOLER_NODE_NICE",
          value_parser = clap::value_parser!(u8).range(0..=19))]
    pub node_nice: u8,

    /// Leading zero bits of proof of work per block (a network parameter;
    /// passed to every node and to Sauron).
    #[arg(long, default_value_t = 12, value_name = "BITS")]
    pub difficulty: u8,

    /// Seed of every random choice (behaviours, Boss, transfers; each node
    /// gets a seed derived from it). Default: random, and printed so the
    /// run can be repeated.
    #[arg(long, env = "WATERCOOLER_SEED")]
    pub seed: Option<u64>,

    /// Directory for the nodes' and Sauron's data (one subdirectory each),
    /// the pids file and node logs. Default: a fresh directory under the
    /// system temp dir, kept after the run.
    #[arg(long, env = "WATERCOOLER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Run this many seconds, then stop the faults, let the network
    /// settle, print the verdict and exit (0: converged, 1: not).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,

    /// At most this many seconds of settling after `--duration` before the
    /// verdict.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub settle: u64,

    /// The verdict's liveness bound: the honest nodes must agree within
    /// this many seconds after the Boss and auto mode stop (measured and
    /// printed; longer is a violation). At most `--settle` is waited.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub liveness_secs: u64,

    /// Write the verdict as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Directory holding `crapcoin-node` and `sauron` (default: the
    /// directory of the `watercooler` executable).
    #[arg(long, env = "WATERCOOLER_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Where Sauron and the nodes run: `process` (local processes) or
    /// `docker` (one container each of `--image`, host networking, data
    /// directories bind-mounted from `--data-dir`; docs/docker.md).
    #[arg(long, value_enum, default_value_t = RuntimeKind::Process, value_name = "RUNTIME")]
    pub runtime: RuntimeKind,

    /// The image of `--runtime docker` (default `crapcoin:VERSION`);
    /// it must be on the docker host already (nothing is pulled).
    #[arg(long, value_name = "IMAGE", value_parser = crate::docker::check_image_name)]
    pub image: Option<String>,

    /// CPUs each node container may use (`docker run --cpus`), e.g. 0.5;
    /// `--runtime docker` only.
    #[arg(long, value_name = "CPUS", value_parser = crate::docker::parse_cpus)]
    pub node_cpus: Option<f64>,

    /// Memory each node container may use (`docker run --memory`), e.g.
    /// 256m; `--runtime docker` only.
    #[arg(long, value_name = "BYTES", value_parser = crate::docker::parse_memory)]
    pub node_memory: Option<u64>,

    /// No interactive progress display; print a status line every few
    /// seconds instead (the default when stderr is not a terminal).
    #[arg(long)]
    pub plain: bool,
}

const AFTER_HELP: &str = "\
Examples:
  watercooler -x 5 -y 2 --sauron --boss --auto
  watercooler -x 5 -y 2 --sauron --faults kill,partition=2,skew,rollback --auto --duration 120
  watercooler -x 3 -y 1 --fault-schedule faults.toml --duration 60
  watercooler -x 4 -y 1 --behaviour selfish --auto --duration 60 --report run.json
  watercooler -x 3 --plugin target/debug/libattacker_plugin.so --auto
  watercooler --runtime docker --node-cpus 0.5 --node-memory 256m -x 4 -y 1 --sauron --boss --auto

On a cluster (docs/kubernetes.md):
  watercooler deploy k8s -x 50 -y 5 --boss --auto | kubectl apply -f -
  watercooler verdict --sauron URL        (the verdict of a network behind Sauron)
  watercooler boss --kubernetes ...       (the Boss inside the cluster)

Logs go to stderr (RUST_LOG, default info); each node logs to NAME.log in
its data directory.";

// Defined beside the command lines that carry it (cmdline is below cli).
pub use crate::cmdline::Shares;
use crate::docker::RuntimeKind;
use crate::faults::{Kind, Member, Menu, Planned, Timing};
use crapcoin_sim::schedule::Roster;

/// Where the Boss's faults come from.
#[derive(Debug, Clone)]
pub enum FaultSource {
    /// Drawn from a menu.
    Menu(Menu, Timing),
    /// A schedule file's timeline.
    Schedule(Vec<Planned>),
}

fn menu(s: &str) -> Result<Menu, String> {
    s.parse()
}

impl Args {
    /// Checks what clap cannot check field by field.
    ///
    /// # Errors
    ///
    /// What is wrong, for a usage error (exit 2).
    pub fn check(&self) -> Result<(), String> {
        let misbehaving = self.misbehaving_count();
        if misbehaving == 0 && self.attacker_share.is_some_and(|s| s > 0.0) {
            return Err("--attacker-share needs misbehaving nodes (-y or --plugin)".to_owned());
        }
        if self.honest == 0 && misbehaving == 0 {
            return Err("no nodes to start: give -x, -y or --plugin".to_owned());
        }
        if self.boss_enabled() {
            self.fault_source()?;
        }
        self.check_runtime()
    }

    /// Checks the runtime options: Docker's only with `--runtime docker`,
    /// plugins where the runtime finds them (a host file for processes,
    /// a file of the image's plugin directory for Docker).
    fn check_runtime(&self) -> Result<(), String> {
        match self.runtime {
            RuntimeKind::Process => {
                let docker_only = [
                    ("--image", self.image.is_some()),
                    ("--node-cpus", self.node_cpus.is_some()),
                    ("--node-memory", self.node_memory.is_some()),
                ];
                if let Some((flag, _)) = docker_only.iter().find(|(_, given)| *given) {
                    return Err(format!("{flag} needs --runtime docker"));
                }
                if let Some(missing) = self.plugins.iter().find(|p| !p.is_file()) {
                    return Err(format!("no plugin file at {}", missing.display()));
                }
            }
            RuntimeKind::Docker => {
                for plugin in &self.plugins {
                    crate::docker::check_plugin_path(plugin)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the Boss runs (`--boss`, `--faults` or `--fault-schedule`).
    pub fn boss_enabled(&self) -> bool {
        self.boss || self.faults.is_some() || self.fault_schedule.is_some()
    }

    /// The nodes the run starts with, in hiring order: `bigload-1..x`,
    /// then `shit-1..` (the `-y` nodes and the plugins).
    pub fn members(&self) -> Vec<Member> {
        let honest = (1..=self.honest).map(|i| Member {
            name: format!("bigload-{i}"),
            honest: true,
        });
        let other = (1..=self.misbehaving_count()).map(|i| Member {
            name: format!("shit-{i}"),
            honest: false,
        });
        honest.chain(other).collect()
    }

    /// The Boss's faults: the menu and its timing, or the schedule file's
    /// timeline, checked against the nodes the run starts with.
    ///
    /// # Errors
    ///
    /// Why it is refused (a schedule's with the file, line and reason).
    pub fn fault_source(&self) -> Result<FaultSource, String> {
        let members = self.members();
        if let Some(path) = &self.fault_schedule {
            let names = |honest: bool| -> Vec<String> {
                members
                    .iter()
                    .filter(|m| m.honest == honest)
                    .map(|m| m.name.clone())
                    .collect()
            };
            let roster = Roster::of(&[("honest", names(true)), ("misbehaving", names(false))]);
            let faults = crapcoin_sim::schedule::load(path, &roster).map_err(|e| e.to_string())?;
            let timeline = crate::faults::from_schedule(&faults);
            crate::faults::check_schedule(&timeline, &members)
                .map_err(|(line, why)| format!("{}: line {line}: {why}", path.display()))?;
            return Ok(FaultSource::Schedule(timeline));
        }
        let menu = match (&self.faults, self.boss_pause) {
            (Some(menu), _) => menu.clone(),
            (None, true) => Menu::only(Kind::Pause),
            (None, false) => Menu::only(Kind::Kill),
        };
        let honest = members.iter().filter(|m| m.honest).count();
        menu.check(honest, members.len() - honest)?;
        Ok(FaultSource::Menu(
            menu,
            Timing {
                interval: self.boss_interval(),
                duration: Duration::from_secs_f64(self.fault_duration),
                rehire_after: self.rehire_after(),
            },
        ))
    }

    /// Misbehaving nodes at start: `-y` plus one per plugin.
    pub fn misbehaving_count(&self) -> u32 {
        self.misbehaving
            .saturating_add(u32::try_from(self.plugins.len()).unwrap_or(u32::MAX))
    }

    /// Each node's hash power share: the misbehaving nodes split
    /// `--attacker-share` (default: their head count's share), the honest
    /// nodes the rest.
    pub fn shares(&self) -> Shares {
        let honest = f64::from(self.honest);
        let misbehaving = f64::from(self.misbehaving_count());
        let total = honest + misbehaving;
        let attackers = match self.attacker_share {
            Some(share) if misbehaving > 0.0 => share,
            _ if total > 0.0 => misbehaving / total,
            _ => 0.0,
        };
        Shares {
            honest: if honest > 0.0 {
                (1.0 - attackers) / honest
            } else {
                0.0
            },
            misbehaving: if misbehaving > 0.0 {
                attackers / misbehaving
            } else {
                0.0
            },
            block_interval: Duration::from_secs_f64(self.block_interval),
        }
    }

    /// Mean ms between two auto transfers of one honest node:
    /// `--auto-interval-ms`, or the fleet's `--auto-rate` spread over the
    /// honest nodes.
    pub fn auto_interval_ms(&self) -> u64 {
        self.auto_interval_ms.unwrap_or_else(|| {
            let per_node = f64::from(self.honest.max(1)) / self.auto_rate;
            (per_node * 1000.0).round().clamp(1.0, 1e12) as u64
        })
    }

    /// The Boss's mean interval.
    pub fn boss_interval(&self) -> Duration {
        Duration::from_secs_f64(self.boss_interval)
    }

    /// How long a fired node stays out, `None` when it is never rehired.
    pub fn rehire_after(&self) -> Option<Duration> {
        (!self.no_rehire).then(|| Duration::from_secs_f64(self.rehire_after))
    }
}

/// A plugin file on this host, or a path in the image's plugin directory
/// (`--runtime docker`; checked against the runtime by [`Args::check`]).
fn existing_file(path: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(path);
    if path.is_file() || path.starts_with(crate::docker::PLUGIN_DIR) {
        Ok(path)
    } else {
        Err(format!("no plugin file at {}", path.display()))
    }
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e6 => Ok(v),
        _ => Err(format!("{s:?} is not a positive rate per second")),
    }
}

fn unit_share(s: &str) -> Result<f64, String> {
    let share: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a share between 0 and 1"))?;
    crapcoin_core::HashPower::check_share(share).map_err(|e| e.to_string())
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::{Args, Parser};

    #[test]
    fn the_issue_command_line_parses() {
        let args = Args::try_parse_from([
            "watercooler",
            "-x",
            "5",
            "-y",
            "2",
            "--sauron",
            "--boss",
            "--auto",
        ])
        .expect("parses");
        assert_eq!((args.honest, args.misbehaving), (5, 2));
        assert!(args.sauron && args.boss && args.auto);
        assert_eq!(args.behaviour, "random");
        assert!(args.rehire_after().is_some());
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for bad in [
            &["watercooler", "-x", "-1"][..],
            &["watercooler", "--behaviour", "saint"],
            &["watercooler", "--plugin", "/nonexistent/libx.so"],
            &["watercooler", "--boss-interval", "0"],
            &["watercooler", "--frobnicate"],
            &["watercooler", "--block-interval", "0"],
            &["watercooler", "--block-interval", "-2"],
            &["watercooler", "--attacker-share", "-0.1"],
            &["watercooler", "--attacker-share", "1.2"],
            &["watercooler", "--auto-rate", "0"],
        ] {
            let err = Args::try_parse_from(bad).expect_err("refused");
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
        let lone = Args::try_parse_from(["watercooler", "-x", "3", "--attacker-share", "0.3"])
            .expect("parses");
        assert!(lone.check().is_err(), "an attacker share without attackers");
        let nobody = Args::try_parse_from(["watercooler", "-x", "0"]).expect("parses");
        assert!(nobody.check().is_err(), "no nodes");
    }

    #[test]
    fn runtime_options_are_checked_against_the_runtime() {
        let refused = |args: &[&str]| {
            let mut all = vec!["watercooler"];
            all.extend(args);
            match Args::try_parse_from(&all) {
                Err(err) => assert_eq!(err.exit_code(), 2, "{args:?}"),
                Ok(parsed) => assert!(parsed.check().is_err(), "{args:?} accepted"),
            }
        };
        let image_plugin = "/usr/local/lib/crapcoin/plugins/libattacker_plugin.so";
        for bad in [
            &["--runtime", "kubernetes"][..],
            &["--node-cpus", "0.5"],
            &["--image", "crapcoin:1"],
            &["--node-memory", "256m"],
            &["--plugin", image_plugin],
            &["--runtime", "docker", "--node-cpus", "0"],
            &["--runtime", "docker", "--node-memory", "1k"],
            &["--runtime", "docker", "--image", "-x"],
            &["--runtime", "docker", "--plugin", "Cargo.toml"],
        ] {
            refused(bad);
        }
        let ok = Args::try_parse_from([
            "watercooler",
            "--runtime",
            "docker",
            "--node-cpus",
            "0.5",
            "--node-memory",
            "256m",
            "--plugin",
            image_plugin,
        ])
        .expect("parses");
        ok.check().expect("valid");
        assert_eq!(ok.node_memory, Some(256 << 20));
    }

    #[test]
    fn shares_add_up_to_the_whole_network() {
        let args = Args::try_parse_from([
            "watercooler",
            "-x",
            "4",
            "-y",
            "2",
            "--attacker-share",
            "0.3",
        ])
        .expect("parses");
        args.check().expect("valid");
        let shares = args.shares();
        assert!((shares.misbehaving - 0.15).abs() < 1e-12);
        assert!((shares.honest - 0.175).abs() < 1e-12);
        assert!((4.0 * shares.honest + 2.0 * shares.misbehaving - 1.0).abs() < 1e-12);
        // By default every node gets the same share.
        let equal = Args::try_parse_from(["watercooler", "-x", "3", "-y", "1"]).expect("parses");
        let shares = equal.shares();
        assert!((shares.honest - 0.25).abs() < 1e-12 && (shares.misbehaving - 0.25).abs() < 1e-12);
        // The fleet's rate is spread over the honest nodes.
        assert_eq!(equal.auto_interval_ms(), 6_000);
    }
}
