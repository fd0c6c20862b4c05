//! The `sauron` command line ([`Args`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::Config;
use super::db::Retention;

/// Sauron: the CrapCoin tracker, aggregator and dashboard.
///
/// Prints `listening on http://HOST:PORT` as its first line on stdout once
/// it serves, and runs until SIGTERM or Ctrl-C. The HTTP API is described
/// in docs/sauron.md.
#[derive(Debug, Clone, Parser)]
#[command(name = "sauron", version)]
pub struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "SAURON_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Directory of Sauron's SQLite database (sauron.db); restarting on it
    /// resumes the node table and history. Without it (and without --db),
    /// everything lives in memory.
    #[arg(long, env = "SAURON_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER@HOST:PORT/DB
    /// (default: sqlite://DIR/sauron.db in the data directory).
    #[arg(long, env = "SAURON_DB", value_name = "URL")]
    pub db: Option<String>,

    /// Request log rows kept at most (the newest).
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub retain_requests: u64,

    /// Event rows kept at most (the newest).
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub retain_events: u64,

    /// Rows older than this many seconds are deleted (0: no age limit).
    #[arg(long, default_value_t = 86_400, value_name = "S")]
    pub retain_secs: u64,

    /// How often retention is enforced, in ms.
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    pub retention_interval_ms: u64,

    /// watercooler's control API, offered to the dashboard for hiring and
    /// firing.
    #[arg(long, value_name = "URL")]
    pub control_url: Option<String>,

    /// The network's proof-of-work difficulty, shown by /api/config.
    #[arg(long, value_name = "BITS")]
    pub difficulty: Option<u32>,

    /// How often every node's GET /status is polled, in ms.
    #[arg(long, default_value_t = 1_000, value_name = "MS")]
    pub poll_ms: u64,

    /// Nodes kept in the table at most (long-dead ones are evicted first).
    #[arg(long, default_value_t = 1_024, value_name = "N")]
    pub max_nodes: usize,

    /// Recent blocks kept in the block tree.
    #[arg(long, default_value_t = 2_048, value_name = "N")]
    pub max_blocks: usize,

    /// Consensus settling depth: live honest nodes must hold the same block
    /// at the shortest tip's height minus K.
    #[arg(long, default_value_t = 2, value_name = "K")]
    pub k: u64,

    /// Replay a simulation's event log (`simulation SCENARIO --log
    /// FILE.jsonl`) instead of watching live nodes: the log is checked
    /// whole first (a bad line: its number and the reason on stderr, exit
    /// status 2), then the dashboard plays it back over virtual time. The
    /// log's nodes count against --max-nodes; --data-dir and --db are
    /// ignored (the store is in memory).
    #[arg(long, value_name = "FILE.jsonl")]
    pub replay: Option<PathBuf>,

    /// Events and faults of a replayed log kept at most (a longer log is
    /// refused). The file itself may be at most 2 GiB.
    #[arg(long, default_value_t = super::replay::DEFAULT_MAX_EVENTS, value_name = "N")]
    pub replay_max_events: usize,
}

impl Args {
    /// The configuration these arguments describe.
    pub fn config(&self) -> Config {
        Config {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            db: self.db.clone(),
            retention: Retention {
                requests: self.retain_requests,
                events: self.retain_events,
                max_age: (self.retain_secs > 0).then(|| Duration::from_secs(self.retain_secs)),
            },
            retention_interval: Duration::from_millis(self.retention_interval_ms.max(10)),
            control_url: self.control_url.clone(),
            difficulty: self.difficulty,
            poll_interval: Duration::from_millis(self.poll_ms.max(10)),
            max_nodes: self.max_nodes,
            max_blocks: self.max_blocks,
            k: self.k,
            ..Config::default()
        }
    }
}
