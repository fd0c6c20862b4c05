//! Sauron: the tracker, aggregator and dashboard of DESIGN.md §5, served by
//! the `sauron` binary. The HTTP contract is `docs/sauron.md`.
//!
//! # Layout
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`cli`] | the `sauron` command line ([`cli::Args`]) |
//! | [`api`] | the routes and handlers: tracker, ingest, read API, stream, dashboard |
//! | [`model`] | request bodies and queries, the batch checks, engine events typed as far as the state reads them ([`model::EngineEvent`]; the batch types are [`crate::report`]) |
//! | [`state`] | the in-memory aggregate: the node registry ([`state::nodes`]), the block tree ([`state::tree`]), rejections; the consensus verdict, propagation and the fork figures ([`state::forks`], `GET /api/forks`) computed from them |
//! | [`db`] | [`db::Db`]: storage over SQLite or PostgreSQL |
//! | [`tasks`] | the writer, the status poller, retention, reload on start |
//! | [`faults`] | the fault timeline: what the Boss did to the network, or a replayed log's faults, start to end |
//! | [`replay`] | `sauron --replay`: a simulation's event log, checked, and the network at any point of it |
//!
//! # Decisions
//!
//! - **One writer.** Every database write goes through one task fed by a
//!   bounded queue; it assigns ids, so ids grow in commit order and paging
//!   and retention by count are range operations on the primary key. A
//!   batch is one transaction of multi-row inserts.
//! - **Memory is bounded**: the node table holds at most
//!   [`Config::max_nodes`] (a new node evicts the one silent the longest,
//!   if it is dead; when all are alive a registration is refused), the
//!   block tree the newest [`Config::max_blocks`] blocks, the stream a
//!   fixed ring per [`Config::stream_buffer`] (a client that falls behind
//!   is disconnected, ingest never waits for it).
//! - **Disk is bounded** by retention: the newest N requests and events,
//!   and nothing older than the age limit, enforced every few seconds.
//! - **Restart**: the node table and the recent block, rejection and boss
//!   events are reloaded from the store, so the dashboard and the tracker
//!   pick up where they were.
//! - **Forks are measured from what nodes already report**, on demand:
//!   `block_mined` names the miner, `block_accepted` says when each node
//!   saw each block, the status poll gives each node's hash share; the
//!   best chain is the live honest nodes' majority tip in the tree
//!   ([`state::forks`]). Nothing is kept for it beyond the tree.
//! - **The dashboard follows the honest nodes**: `/api/blocks` and the
//!   propagation list are cut to the [`state::Window`] below the live
//!   honest nodes' highest tip, whatever any other node reports.
//! - The server is the node's own accept loop ([`crate::http::server`]):
//!   bounded connections and idle timeouts come with it.

pub mod api;
pub mod cli;
pub mod db;
pub mod faults;
pub mod model;
pub mod replay;
pub mod state;
pub mod tasks;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;

use crate::client::Client;
use crate::eye::{WatchLayer, Watcher};
use crate::http::server::{self, Limits};
use crate::metrics::Metrics;
use db::{Db, DbError, Retention};
use state::State;
use tasks::Job;

/// The database file's name inside Sauron's data directory.
pub const DB_FILE: &str = "sauron.db";

/// How Sauron runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory (the SQLite database lives there).
    pub data_dir: Option<PathBuf>,
    /// The database URL; default `sqlite://DATA_DIR/sauron.db`, or an
    /// in-memory SQLite database without a data directory.
    pub db: Option<String>,
    /// What the store keeps.
    pub retention: Retention,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// watercooler's control API, shown to the dashboard.
    pub control_url: Option<String>,
    /// The network's difficulty, when told (shown in `/api/config`).
    pub difficulty: Option<u32>,
    /// How often every node's `GET /status` is polled.
    pub poll_interval: Duration,
    /// Timeout of one status poll.
    pub poll_timeout: Duration,
    /// Polls in flight at most.
    pub poll_concurrency: usize,
    /// Timeout of the `GET /status` that verifies a registration.
    pub verify_timeout: Duration,
    /// Nodes kept in the table at most.
    pub max_nodes: usize,
    /// Blocks kept in the in-memory tree at most.
    pub max_blocks: usize,
    /// Consensus settling depth: honest nodes must agree at the shortest
    /// tip minus `k`.
    pub k: u64,
    /// Stream messages a client may fall behind before it is dropped.
    pub stream_buffer: usize,
    /// Server bounds.
    pub limits: Limits,
}

impl Default for Config {
    /// 127.0.0.1:0, in-memory SQLite, 1,000,000 requests and events kept
    /// for at most a day, polls every second (timeout 800 ms, 16 at a
    /// time), 1,024 nodes, 2,048 blocks, k = 2.
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            data_dir: None,
            db: None,
            retention: Retention {
                requests: 1_000_000,
                events: 1_000_000,
                max_age: Some(Duration::from_secs(24 * 3600)),
            },
            retention_interval: Duration::from_secs(5),
            control_url: None,
            difficulty: None,
            poll_interval: Duration::from_secs(1),
            poll_timeout: Duration::from_millis(800),
            poll_concurrency: 16,
            verify_timeout: Duration::from_secs(2),
            max_nodes: 1024,
            max_blocks: 2048,
            k: 2,
            stream_buffer: 1024,
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// The database URL in effect.
    pub fn db_url(&self) -> String {
        match (&self.db, &self.data_dir) {
            (Some(url), _) => url.clone(),
            (None, Some(dir)) => format!("sqlite://{}", dir.join(DB_FILE).display()),
            (None, None) => "sqlite::memory:".to_owned(),
        }
    }
}

/// Why Sauron did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("data directory: {0}")]
    DataDir(std::io::Error),
    /// The store could not be opened or read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
}

/// One server-sent event: its name and JSON data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamItem {
    /// `node`, `consensus`, `request`, `event` or `boss`.
    pub kind: &'static str,
    /// The JSON data.
    pub data: String,
}

impl StreamItem {
    /// An item with `value` as JSON.
    pub fn json(kind: &'static str, value: &impl Serialize) -> Self {
        Self {
            kind,
            data: serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned()),
        }
    }
}

/// What every handler and task shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// The store (reads go straight to it; writes through `writer`).
    pub db: Db,
    state: Mutex<State>,
    /// The writer's queue.
    pub writer: mpsc::Sender<Job>,
    stream: broadcast::Sender<Arc<StreamItem>>,
    /// Verifies registrations.
    pub verify_client: Client,
    /// Polls nodes.
    pub poll_client: Client,
    /// Fired on shutdown.
    pub cancel: CancellationToken,
    /// The simulation log served instead of live nodes (`sauron --replay`).
    pub replay: Option<replay::Replay>,
    /// The live run's fault timeline (`POST /api/faults`).
    faults: Mutex<faults::FaultLog>,
}

impl Shared {
    /// The in-memory state, locked (never held across an `.await`).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `item` to every stream client; never waits.
    pub fn publish(&self, item: StreamItem) {
        let _ = self.stream.send(Arc::new(item));
    }

    /// The live fault timeline, locked (never held across an `.await`).
    pub fn faults(&self) -> MutexGuard<'_, faults::FaultLog> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any stream client listens (to skip encoding otherwise).
    pub fn streaming(&self) -> bool {
        self.stream.receiver_count() > 0
    }

    /// A new stream subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamItem>> {
        self.stream.subscribe()
    }
}

/// A running Sauron. Call [`Running::shutdown`] to stop it.
#[derive(Debug)]
#[must_use = "Sauron runs until Running::shutdown is awaited"]
pub struct Running {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds, opens the store, reloads the node table and recent events, and
/// starts serving.
///
/// # Errors
///
/// [`StartError`] saying which part failed.
pub async fn start(config: Config) -> Result<Running, StartError> {
    start_with(config, None).await
}

/// Serves a simulation's event log instead of live nodes: the same
/// dashboard and read API, at any virtual time of the log (`?at_ms=`,
/// `GET /api/replay`). The store is in memory whatever `config` says, no
/// node is polled, and the tracker and ingest routes answer 409
/// `replaying`.
///
/// # Errors
///
/// [`StartError`] saying which part failed.
pub async fn start_replay(mut config: Config, log: replay::Log) -> Result<Running, StartError> {
    config.data_dir = None;
    config.db = None;
    let replay = replay::Replay::new(log, config.max_blocks, config.k);
    start_with(config, Some(replay)).await
}

async fn start_with(config: Config, replay: Option<replay::Replay>) -> Result<Running, StartError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let addr = if bound.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port())
    } else {
        bound
    };
    if let Some(dir) = &config.data_dir {
        std::fs::create_dir_all(dir).map_err(StartError::DataDir)?;
    }
    let db = Db::open(&config.db_url()).await?;
    let ids = db.max_ids().await?;
    let (writer, jobs) = mpsc::channel(64);
    let (stream, _) = broadcast::channel(config.stream_buffer.max(1));
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(config.max_nodes, config.max_blocks, config.k)),
        verify_client: Client::new(config.verify_timeout)?,
        poll_client: Client::new(config.poll_timeout)?,
        db: db.clone(),
        writer,
        stream,
        cancel: CancellationToken::new(),
        config,
        replay,
        faults: Mutex::new(faults::FaultLog::default()),
    });
    tasks::reload(&shared, &db).await?;
    let mut tasks = vec![
        tokio::spawn(tasks::writer(shared.clone(), jobs, ids)),
        tokio::spawn(tasks::retention(shared.clone())),
    ];
    if shared.replay.is_none() {
        tasks.push(tokio::spawn(tasks::poller(shared.clone())));
    }
    let metrics = Arc::new(Metrics::default());
    let watcher = Watcher {
        handle: None,
        metrics: metrics.clone(),
        eye: None,
    };
    let service = WatchLayer::new(watcher).layer(warp::service(api::routes(shared.clone())));
    let server = tokio::spawn(server::serve(
        listener,
        service,
        metrics,
        shared.config.limits,
        shared.cancel.clone(),
    ));
    tracing::info!(%addr, db = shared.db.backend(), "sauron started");
    Ok(Running {
        addr,
        shared,
        server,
        tasks,
    })
}

impl Running {
    /// The bound address (127.0.0.1 for an unspecified listen host).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT` of the bound address.
    pub fn listen_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What handlers and tasks share (for tests).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving (busy connections get a grace period), stops every
    /// task and closes the store.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "server task failed");
        }
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "task failed");
            }
        }
        self.shared.db.close().await;
    }
}
