//! The command lines watercooler starts: a node's ([`node`]) and
//! Sauron's ([`sauron`]), from the run's [`Settings`] and what one member
//! runs ([`Kind`]), with seeds derived from the run's ([`derive_seed`]).
//!
//! Nothing here starts a process; [`crate::fleet`] does.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Settings every node gets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `crapcoin-node`.
    pub node_bin: PathBuf,
    /// `sauron`.
    pub sauron_bin: PathBuf,
    /// Parent of every data directory.
    pub data_dir: PathBuf,
    /// Leading zero bits per block.
    pub difficulty: u8,
    /// Run nodes in auto mode.
    pub auto: bool,
    /// Mean ms between auto transfers.
    pub auto_interval_ms: u64,
    /// Niceness of node processes (0 to 19).
    pub node_nice: i32,
    /// Each node's hash power share and the target block interval.
    pub shares: Shares,
    /// Mean ms between two peer-maintenance rounds of a node (see
    /// [`maintenance_ms`]).
    pub maintenance_ms: u64,
    /// The run's seed.
    pub seed: u64,
}

/// Each node's hash power share and the target block interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shares {
    /// Each honest node's share.
    pub honest: f64,
    /// Each misbehaving node's share.
    pub misbehaving: f64,
    /// The target block interval T.
    pub block_interval: Duration,
}

/// A node's peer-maintenance interval in a fleet of `nodes`: the node's
/// default of 2 s up to 100 nodes, then longer in proportion (at most
/// 30 s). Each round asks every peer for its status, so a fleet's
/// maintenance load grows with its size: 500 nodes at 2 s ask about 4,000
/// statuses a second of two cores, which starved everything else. Gossip
/// carries the blocks; maintenance only finds dead peers and late chains.
pub fn maintenance_ms(nodes: u64) -> u64 {
    (2_000 * nodes.div_ceil(100).max(1)).min(30_000)
}

/// Checks a behaviour name against the catalogue.
///
/// # Errors
///
/// The registry's message naming the known behaviours.
pub fn check_behaviour(name: &str) -> Result<(), String> {
    behaviours::registry::build(name, 0)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// [`check_behaviour`] as a clap value parser: the name, or why not.
pub fn behaviour_arg(name: &str) -> Result<String, String> {
    check_behaviour(name).map(|()| name.to_owned())
}

/// Derives the seed of one use (`salt`) from the run's seed: the
/// behaviours' own derivation.
pub use behaviours::derive_seed;

/// What a member runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `--behaviour honest`.
    Honest,
    /// A catalogue behaviour or group other than `honest`.
    Behaviour(String),
    /// An attacker plugin.
    Plugin(PathBuf),
}

impl Kind {
    /// The kind a behaviour name asks for (`honest` or another).
    pub fn named(behaviour: &str) -> Self {
        if behaviour.trim() == "honest" {
            Self::Honest
        } else {
            Self::Behaviour(behaviour.trim().to_owned())
        }
    }

    /// Whether the node follows the protocol.
    pub fn is_honest(&self) -> bool {
        matches!(self, Self::Honest)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Honest => f.write_str("honest"),
            Self::Behaviour(name) => f.write_str(name),
            Self::Plugin(path) => write!(
                f,
                "plugin:{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
        }
    }
}

/// Where a new node finds the network.
#[derive(Debug, Clone, Copy)]
pub enum Bootstrap<'a> {
    /// Sauron, as tracker (`--tracker URL`).
    Tracker(&'a str),
    /// These running nodes (`--peer URL` each); see [`bootstrap_peers`].
    Peers(&'a [String]),
}

/// The peers a node bootstraps from without Sauron: the earliest and the
/// latest of the running nodes' URLs `running` (in hiring order).
pub fn bootstrap_peers(running: &[String]) -> Vec<String> {
    let mut peers: Vec<String> = running.first().into_iter().cloned().collect();
    if let Some(last) = running.last()
        && running.len() > 1
    {
        peers.push(last.clone());
    }
    peers
}

/// One process of one member, as its command line needs it.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// `bigload-N` or `shit-N`.
    pub name: &'a str,
    /// What it runs.
    pub kind: &'a Kind,
    /// Its data directory (the same for every process of the member).
    pub data_dir: &'a Path,
    /// Its admin token (handed over in the environment, never on the
    /// command line).
    pub token: &'a str,
    /// The member's seed.
    pub seed: u64,
    /// Which process of the member this is (1 for the first).
    pub start: u32,
    /// Where it finds the network.
    pub bootstrap: Bootstrap<'a>,
    /// Its hash power share.
    pub hash_share: f64,
}

/// The `crapcoin-node` command line of `node`, listening on a free port
/// of 127.0.0.1. Its admin token goes in its environment
/// (`CRAPCOIN_ADMIN_TOKEN`), which only its owner can read, not in its
/// arguments, which `ps` shows to every user.
pub fn node(settings: &Settings, node: &Node<'_>) -> Command {
    let mut command = Command::new(&settings.node_bin);
    command
        .args(["--listen", "127.0.0.1:0", "--name", node.name])
        .arg("--data-dir")
        .arg(node.data_dir)
        .env(crapcoin_node::cookie::TOKEN_ENV, node.token)
        .args(["--difficulty", &settings.difficulty.to_string()])
        // A restarted process gets a new seed: the same seed would
        // replay the same choices on top of a different chain.
        .args([
            "--seed",
            &derive_seed(node.seed, u64::from(node.start)).to_string(),
        ]);
    command
        .args(["--maintenance-ms", &settings.maintenance_ms.to_string()])
        .args(["--hash-share", &node.hash_share.to_string()])
        .args([
            "--block-interval",
            &settings.shares.block_interval.as_secs_f64().to_string(),
        ]);
    match node.kind {
        Kind::Honest => command.args(["--behaviour", "honest"]),
        Kind::Behaviour(b) => command.args(["--behaviour", b]),
        Kind::Plugin(path) => command.arg("--plugin").arg(path),
    };
    if settings.auto {
        command.args([
            "--auto",
            "--auto-interval-ms",
            &settings.auto_interval_ms.to_string(),
        ]);
    }
    match node.bootstrap {
        Bootstrap::Tracker(url) => {
            command.args(["--tracker", url]);
        }
        Bootstrap::Peers(peers) => {
            for peer in peers {
                command.args(["--peer", peer]);
            }
        }
    }
    command
}

/// The `sauron` command line: a free port of 127.0.0.1, data in `dir`,
/// showing the dashboard `control_url`.
pub fn sauron(settings: &Settings, control_url: &str, dir: &Path) -> Command {
    let mut command = Command::new(&settings.sauron_bin);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--control-url",
        control_url,
        "--difficulty",
        &settings.difficulty.to_string(),
    ]);
    command.arg("--data-dir").arg(dir);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(auto: bool) -> Settings {
        Settings {
            node_bin: "/bin/crapcoin-node".into(),
            sauron_bin: "/bin/sauron".into(),
            data_dir: "/data".into(),
            difficulty: 8,
            auto,
            auto_interval_ms: 500,
            node_nice: 19,
            maintenance_ms: 2_000,
            shares: Shares {
                honest: 0.2,
                misbehaving: 0.1,
                block_interval: std::time::Duration::from_millis(1500),
            },
            seed: 7,
        }
    }

    fn args(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_node_line_carries_everything() {
        let peers = bootstrap_peers(&["http://a".into(), "http://b".into(), "http://c".into()]);
        assert_eq!(peers, ["http://a", "http://c"]);
        assert_eq!(bootstrap_peers(&["http://a".into()]), ["http://a"]);
        assert!(bootstrap_peers(&[]).is_empty());
        let cases = [
            (
                "honest, auto, peers",
                Kind::Honest,
                true,
                Bootstrap::Peers(&peers),
                "--behaviour honest --auto --auto-interval-ms 500 --peer http://a --peer http://c",
            ),
            (
                "behaviour, tracker",
                Kind::named(" selfish "),
                false,
                Bootstrap::Tracker("http://s"),
                "--behaviour selfish --tracker http://s",
            ),
            (
                "plugin, no peers",
                Kind::Plugin("/p/libx.so".into()),
                false,
                Bootstrap::Peers(&[]),
                "--plugin /p/libx.so",
            ),
        ];
        for (case, kind, auto, bootstrap, tail) in cases {
            let node = Node {
                name: "bigload-1",
                kind: &kind,
                data_dir: Path::new("/data/bigload-1"),
                token: "t",
                seed: 11,
                start: 2,
                bootstrap,
                hash_share: 0.25,
            };
            let command = super::node(&settings(auto), &node);
            assert_eq!(command.get_program(), "/bin/crapcoin-node", "{case}");
            let head = format!(
                "--listen 127.0.0.1:0 --name bigload-1 --data-dir /data/bigload-1 --difficulty 8 --seed {} --maintenance-ms 2000 --hash-share 0.25 --block-interval 1.5",
                derive_seed(11, 2)
            );
            assert_eq!(args(&command).join(" "), format!("{head} {tail}"), "{case}");
            // The token is in the environment, not the arguments.
            let token = command
                .get_envs()
                .find(|(k, _)| *k == "CRAPCOIN_ADMIN_TOKEN")
                .and_then(|(_, v)| v);
            assert_eq!(token, Some(std::ffi::OsStr::new("t")), "{case}");
        }
    }

    #[test]
    fn maintenance_slows_down_with_the_fleet() {
        assert_eq!(maintenance_ms(5), 2_000);
        assert_eq!(maintenance_ms(100), 2_000);
        assert_eq!(maintenance_ms(101), 4_000);
        assert_eq!(maintenance_ms(500), 10_000);
        assert_eq!(maintenance_ms(100_000), 30_000);
    }

    #[test]
    fn a_sauron_line_carries_the_control_url() {
        let command = sauron(&settings(false), "http://c", Path::new("/data/sauron"));
        assert_eq!(command.get_program(), "/bin/sauron");
        assert_eq!(
            args(&command).join(" "),
            "--listen 127.0.0.1:0 --control-url http://c --difficulty 8 --data-dir /data/sauron"
        );
    }

    #[test]
    fn kinds_read_as_their_behaviour() {
        assert_eq!(Kind::named("honest"), Kind::Honest);
        assert_eq!(Kind::named("forger").to_string(), "forger");
        assert_eq!(
            Kind::Plugin("/p/libx.so".into()).to_string(),
            "plugin:libx.so"
        );
        assert_ne!(derive_seed(1, 2), derive_seed(1, 3));
    }
}
