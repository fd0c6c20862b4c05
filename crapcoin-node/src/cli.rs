//! The `crapcoin-node` command line ([`Args`]) and the behaviour lookup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use crapcoin_core::node::{AutoConfig, Mining};
use crapcoin_core::{Behaviour, HashPower, Params, PeerUrl};

use crate::http::server::Limits;
use crate::run;

/// The behaviour named `name` from the catalogue
/// (`behaviours::registry`), seeded. The one place `--behaviour` names are
/// resolved.
///
/// # Errors
///
/// [`UnknownBehaviour`] for a name the catalogue does not know.
pub fn behaviour(name: &str, seed: u64) -> Result<Arc<dyn Behaviour>, UnknownBehaviour> {
    behaviours::registry::build(name, seed)
}

pub use behaviours::registry::UnknownBehaviour;

fn behaviour_name(name: &str) -> Result<String, UnknownBehaviour> {
    behaviour(name, 0).map(|_| name.to_owned())
}

/// The catalogue as printed by `--list-behaviours`: one `name  description`
/// line each.
pub fn behaviour_list() -> String {
    behaviours::registry::list()
        .iter()
        .map(|(name, description)| format!("{name:<16}{description}\n"))
        .collect()
}

/// A CrapCoin full node over HTTP.
///
/// Prints `listening on http://HOST:PORT` as its first line on stdout once
/// it serves, and runs until SIGTERM or Ctrl-C.
///
/// Admin routes take `Authorization: Bearer TOKEN`. The token comes from
/// the environment (`CRAPCOIN_ADMIN_TOKEN`) or `--admin-token-file`;
/// without either, a node with `--data-dir` writes a fresh random token to
/// `DIR/admin.cookie` (mode 0600) at every start, for admin callers on the
/// machine to read (`curl -H "Authorization: Bearer $(cat DIR/admin.cookie)"`).
/// Never put the token on the command line: `ps` shows it to every user.
#[derive(Debug, Clone, Parser)]
#[command(name = "crapcoin-node", version)]
pub struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "CRAPCOIN_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Directory of the node's SQLite database and wallet key; restarting
    /// on it resumes the same node. Without it, chain and key live in
    /// memory only.
    #[arg(long, env = "CRAPCOIN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// A peer to start from (repeatable).
    #[arg(long = "peer", value_name = "URL")]
    pub peers: Vec<PeerUrl>,

    /// Sauron, the tracker to bootstrap from.
    #[arg(long, env = "SAURON_URL", value_name = "URL")]
    pub tracker: Option<PeerUrl>,

    /// Where to report requests and events (default: the tracker).
    #[arg(long, value_name = "URL")]
    pub sauron: Option<PeerUrl>,

    /// Token admin routes require (`Authorization: Bearer TOKEN`). Set it
    /// in the environment; on the command line it is deprecated (every
    /// user of the machine reads it with `ps`) and warned about.
    #[arg(
        long,
        env = crate::cookie::TOKEN_ENV,
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Admin token"
    )]
    pub admin_token: Option<String>,

    /// Read the admin token from this file (one line), which only
    /// its owner may read or write (else the node refuses to start).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "admin_token",
        help_heading = "Admin token"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// URL peers reach this node at (default: http:// and the bound
    /// address, 127.0.0.1 for an unspecified host).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<PeerUrl>,

    /// The node's name (default: node-PORT).
    #[arg(long)]
    pub name: Option<String>,

    /// The node's behaviour: a catalogue name or group (`honest`,
    /// `malicious`, `stupid`, `random`, ...; see `--list-behaviours`).
    #[arg(long, default_value = "honest", value_parser = behaviour_name)]
    pub behaviour: String,
    /// Load the behaviour from an attacker plugin (a cdylib built against
    /// `crapcoin-core` and `behaviours::export_plugin!`) instead.
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    /// Print the behaviour catalogue and exit.
    #[arg(long)]
    pub list_behaviours: bool,

    /// Make transfers on its own (auto mode).
    #[arg(long)]
    pub auto: bool,

    /// Mean time between two auto-mode moves, in ms.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub auto_interval_ms: u64,

    /// Stop auto mode after this many transfers.
    #[arg(long, value_name = "N")]
    pub auto_max: Option<u64>,

    /// Peers wanted; below it the node looks for more.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub target_peers: usize,

    /// Peers kept at most.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_peers: usize,

    /// Timeout of every call to a peer or the tracker, in ms.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub call_timeout_ms: u64,

    /// Time between two peer-maintenance rounds, in ms.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub maintenance_ms: u64,

    /// Fee the node pays on its own transfers.
    #[arg(long, default_value_t = 1)]
    pub fee: u64,

    /// Seed of the node's random choices (default: from the OS).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Network name (part of the genesis).
    #[arg(
        long,
        default_value = "crapnet",
        help_heading = "Network (equal values share a genesis)"
    )]
    pub network: String,

    /// Target block interval T of the network, in seconds: blocks arrive
    /// network-wide every T on average whatever the number of miners.
    #[arg(
        long,
        default_value = "1",
        value_name = "SECONDS",
        value_parser = block_interval,
        help_heading = "Mining"
    )]
    pub block_interval: Duration,

    /// This node's share of the network's hash power, 0 to 1 (0: mines
    /// nothing on its own): it finds a block after T / share on average.
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "SHARE",
        value_parser = hash_share,
        help_heading = "Mining"
    )]
    pub hash_share: f64,

    /// Mine on demand instead of on a schedule: a block at once for every
    /// transfer this node accepts (for tests and tutorials that want a
    /// block now; `--block-interval` and `--hash-share` are then unused).
    #[arg(long, help_heading = "Mining")]
    pub on_demand: bool,

    /// Leading zero bits of work per block.
    #[arg(
        long,
        default_value_t = 12,
        value_name = "BITS",
        help_heading = "Network (equal values share a genesis)"
    )]
    pub difficulty: u8,

    /// Coins minted per block.
    #[arg(
        long,
        default_value_t = 50,
        help_heading = "Network (equal values share a genesis)"
    )]
    pub block_reward: u64,

    /// Genesis time, ms since the Unix epoch.
    #[arg(
        long,
        default_value_t = 1_764_000_000_000,
        value_name = "MS",
        help_heading = "Network (equal values share a genesis)"
    )]
    pub genesis_timestamp: u64,

    /// How far ahead of a node's clock a block's timestamp may be, in ms.
    #[arg(
        long,
        default_value_t = 120_000,
        value_name = "MS",
        help_heading = "Network (equal values share a genesis)"
    )]
    pub max_future_ms: u64,

    /// HTTP connections open at most. At the limit a new connection evicts
    /// one that has not yet completed a request, oldest first; a quarter of
    /// the slots is kept for connections that have.
    #[arg(long, default_value_t = 256, value_name = "N", help_heading = "Server")]
    pub max_connections: usize,

    /// Idle HTTP connection timeout, in ms: a connection that moves no
    /// bytes for this long while it waits on its client is closed, and so
    /// is a gossip stream that brings no frame for this long.
    #[arg(
        long,
        default_value_t = 30_000,
        value_name = "MS",
        help_heading = "Server"
    )]
    pub idle_timeout_ms: u64,

    /// Time a request's body has to arrive, in ms, from its headers; a
    /// later one is answered 408 (a gossip frame: from its length).
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "MS",
        help_heading = "Server"
    )]
    pub body_timeout_ms: u64,

    /// Tokio worker threads (1: the current-thread runtime, the fastest
    /// and lightest for this workload).
    #[arg(long, default_value_t = 1, value_name = "N", help_heading = "Server")]
    pub threads: usize,

    /// Reports for Sauron queued at most (more are dropped and counted).
    #[arg(
        long,
        default_value_t = 4096,
        value_name = "N",
        help_heading = "Reporting"
    )]
    pub report_queue: usize,

    /// Reports per batch sent to Sauron.
    #[arg(
        long,
        default_value_t = 256,
        value_name = "N",
        help_heading = "Reporting"
    )]
    pub report_batch: usize,
}

impl Args {
    /// The network parameters these arguments define.
    pub fn params(&self) -> Params {
        Params {
            network: self.network.clone(),
            difficulty: self.difficulty,
            block_reward: self.block_reward,
            genesis_timestamp: self.genesis_timestamp,
            max_future_ms: self.max_future_ms,
        }
    }

    /// When the node finds blocks, from these arguments.
    pub fn mining(&self) -> Mining {
        if self.on_demand {
            return Mining::OnDemand;
        }
        HashPower::new(self.hash_share, self.block_interval)
            .map_or(Mining::OnDemand, Mining::Scheduled)
    }

    /// What [`run::start`] needs, from these arguments.
    pub fn node_config(&self) -> run::Config {
        let mut config = run::Config::new(self.params());
        config.listen = self.listen;
        config.data_dir = self.data_dir.clone();
        config.peers = self.peers.clone();
        config.tracker = self.tracker.clone();
        config.sauron = self.sauron.clone();
        config.admin_token = self.admin_token.clone();
        config.admin_token_file = self.admin_token_file.clone();
        config.public_url = self.public_url.clone();
        config.name = self.name.clone();
        config.behaviour = self.behaviour.clone();
        config.plugin = self.plugin.clone();
        config.auto = self.auto.then(|| AutoConfig {
            interval: Duration::from_millis(self.auto_interval_ms),
            max_transfers: self.auto_max,
        });
        config.target_peers = self.target_peers;
        config.max_peers = self.max_peers;
        config.call_timeout = Duration::from_millis(self.call_timeout_ms);
        config.maintenance_interval = Duration::from_millis(self.maintenance_ms);
        config.fee = self.fee;
        config.seed = self.seed;
        config.mining = self.mining();
        config.limits = Limits {
            max_connections: self.max_connections,
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            ..Limits::default()
        };
        config.report_queue = self.report_queue;
        config.report_batch = self.report_batch;
        config
    }
}

/// `--block-interval`: positive, finite seconds.
fn block_interval(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("the block interval must be positive, got {text}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text}: {e}"))
}

/// `--hash-share`: a number from 0 to 1.
fn hash_share(text: &str) -> Result<f64, String> {
    let share: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    HashPower::check_share(share).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{Args, Params, Parser, behaviour, behaviour_list};

    #[test]
    fn defaults_are_the_default_network() {
        let args = Args::try_parse_from(["crapcoin-node"]).expect("parses");
        assert_eq!(args.params(), Params::default());
        assert_eq!(args.behaviour, "honest");
        // The library's defaults are the command line's.
        let config = args.node_config();
        let defaults = crate::run::Config::new(Params::default());
        assert_eq!(format!("{config:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn mining_nonsense_is_a_usage_error() {
        for bad in [
            ["--hash-share", "-0.5"],
            ["--hash-share", "1.5"],
            ["--hash-share", "NaN"],
            ["--block-interval", "0"],
            ["--block-interval", "-1"],
            ["--block-interval", "inf"],
            ["--block-interval", "soon"],
        ] {
            let arg = format!("{}={}", bad[0], bad[1]);
            let err = Args::try_parse_from(["crapcoin-node", arg.as_str()])
                .expect_err("nonsense is refused");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{bad:?}"
            );
            // clap exits 2 on a usage error.
            assert_eq!(err.exit_code(), 2);
        }
        let args = Args::try_parse_from([
            "crapcoin-node",
            "--hash-share",
            "0.25",
            "--block-interval",
            "0.5",
        ])
        .expect("parses");
        let power = args.mining().power().expect("on a schedule");
        assert_eq!(power.share(), 0.25);
        assert_eq!(
            power.block_interval(),
            std::time::Duration::from_millis(500)
        );
        let args = Args::try_parse_from(["crapcoin-node", "--on-demand"]).expect("parses");
        assert_eq!(args.mining(), crapcoin_core::Mining::OnDemand);
    }

    #[test]
    fn unknown_behaviours_are_usage_errors() {
        let err =
            Args::try_parse_from(["crapcoin-node", "--behaviour", "sneaky"]).expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("unknown behaviour"), "{err}");
    }

    #[test]
    fn catalogue_names_and_groups_are_accepted_and_listed() {
        for name in ["honest", "selfish", "malicious", "stupid", "random"] {
            let args = Args::try_parse_from(["crapcoin-node", "--behaviour", name])
                .unwrap_or_else(|e| panic!("{name} refused: {e}"));
            assert_eq!(args.behaviour, name);
            assert!(behaviour(name, 1).is_ok());
        }
        let list = behaviour_list();
        for (name, _) in behaviours::registry::list() {
            assert!(
                list.lines().any(|l| l.starts_with(name)),
                "{name} not listed"
            );
        }
        let args = Args::try_parse_from(["crapcoin-node", "--list-behaviours"]).expect("parses");
        assert!(args.list_behaviours);
    }
}
