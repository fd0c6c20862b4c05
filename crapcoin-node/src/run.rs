//! Starting and stopping a whole node: listener, store, wallet, engine,
//! HTTP server and reporter, as the `crapcoin-node` binary (and tests that
//! want a node in-process) do.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crapcoin_core::node::{AutoConfig, LaunchError, Mining};
use crapcoin_core::wallet::WalletError;
use crapcoin_core::{Handle, HashPower, Node, Params, PeerUrl, Wallet};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;

use crate::client::{self, Client};
use crate::cookie::{self, TokenError};
use crate::eye::{self, Eye, WatchLayer, Watcher};
use crate::http::server::Limits;
use crate::http::{self, App};
use crate::metrics::Metrics;
use crate::store::{self, Store};

/// The wallet key's file name inside the data directory.
pub const WALLET_FILE: &str = "wallet.key";

/// Why a node did not start.
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
    /// The wallet key could not be read or written.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] store::OpenError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
    /// The engine refused to launch (e.g. an invalid stored block).
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The behaviour name is unknown.
    #[error(transparent)]
    Behaviour(#[from] behaviours::registry::UnknownBehaviour),
    /// The `--plugin` could not be loaded.
    #[error(transparent)]
    Plugin(#[from] behaviours::loader::LoadError),
    /// The admin token is invalid, its file unreadable or not private, or
    /// the cookie could not be written.
    #[error(transparent)]
    AdminToken(#[from] TokenError),
}

/// Everything a node is started with. The `crapcoin-node` binary makes
/// one from its command line (`cli::Args::node_config`); a program or test
/// starting a node in-process fills one in, from [`Config::new`]'s
/// defaults (the command line's).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Directory of the SQLite database and wallet key; `None` keeps chain
    /// and key in memory.
    pub data_dir: Option<PathBuf>,
    /// The network parameters (equal values share a genesis).
    pub params: Params,
    /// Peers to start from.
    pub peers: Vec<PeerUrl>,
    /// Sauron, the tracker to bootstrap from.
    pub tracker: Option<PeerUrl>,
    /// Where to report requests and events (`None`: the tracker, if any).
    pub sauron: Option<PeerUrl>,
    /// Token the admin routes require. With neither this nor
    /// `admin_token_file`, a node with a data directory makes one and
    /// writes it to its cookie file ([`crate::cookie`]); a node without
    /// one has its admin routes disabled.
    pub admin_token: Option<String>,
    /// A file to read the admin token from (private to its owner), when
    /// `admin_token` is `None`.
    pub admin_token_file: Option<PathBuf>,
    /// URL peers reach this node at (default: `http://` and the bound
    /// address, 127.0.0.1 for an unspecified host).
    pub public_url: Option<PeerUrl>,
    /// The node's name (default: `node-PORT`).
    pub name: Option<String>,
    /// The behaviour: a catalogue name or group (`behaviours::registry`).
    pub behaviour: String,
    /// An attacker plugin to load the behaviour from instead.
    pub plugin: Option<PathBuf>,
    /// Auto mode (transfers on its own), if on.
    pub auto: Option<AutoConfig>,
    /// Peers wanted; below it the node looks for more.
    pub target_peers: usize,
    /// Peers kept at most.
    pub max_peers: usize,
    /// Timeout of every call to a peer or the tracker.
    pub call_timeout: Duration,
    /// Time between two peer-maintenance rounds.
    pub maintenance_interval: Duration,
    /// Fee the node pays on its own transfers.
    pub fee: u64,
    /// When the node finds blocks: on its hash power's schedule (the
    /// default: all of the network's power, a block a second), or on
    /// demand.
    pub mining: Mining,
    /// Seed of the node's random choices (`None`: from the OS).
    pub seed: Option<u64>,
    /// The server's bounds.
    pub limits: Limits,
    /// Reports for Sauron queued at most.
    pub report_queue: usize,
    /// Reports per batch sent to Sauron.
    pub report_batch: usize,
}

/// A node's mining unless told otherwise: all of the network's hash power,
/// a block a second on average.
pub const DEFAULT_MINING: Mining = Mining::Scheduled(DEFAULT_POWER);

const DEFAULT_POWER: HashPower = match HashPower::new(1.0, Duration::from_secs(1)) {
    Ok(power) => power,
    Err(_) => panic!("a share of 1 and an interval of 1 s are valid"),
};

impl Config {
    /// The command line's defaults: `127.0.0.1:0`, no data directory, the
    /// network `params`, honest, no peers, tracker or reporting, 8 peers
    /// wanted and 64 at most, 2 s calls and maintenance, fee 1, mining on
    /// a schedule with all of the network's power and a 1 s target block
    /// interval ([`DEFAULT_MINING`]), 256 connections with a 30 s idle
    /// timeout and a 10 s body timeout, 4096 reports queued in batches of
    /// 256.
    pub fn new(params: Params) -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            data_dir: None,
            params,
            peers: Vec::new(),
            tracker: None,
            sauron: None,
            admin_token: None,
            admin_token_file: None,
            public_url: None,
            name: None,
            behaviour: "honest".to_owned(),
            plugin: None,
            auto: None,
            target_peers: 8,
            max_peers: 64,
            call_timeout: Duration::from_secs(2),
            maintenance_interval: Duration::from_secs(2),
            fee: 1,
            mining: DEFAULT_MINING,
            seed: None,
            limits: Limits::default(),
            report_queue: 4096,
            report_batch: 256,
        }
    }

    /// The engine configuration for a node named `name` reached at `url`.
    pub fn engine(&self, name: String, url: PeerUrl) -> crapcoin_core::Config {
        let mut config = crapcoin_core::Config::new(name, url);
        config.seeds = self.peers.clone();
        config.target_peers = self.target_peers;
        config.max_peers = self.max_peers;
        config.call_timeout = self.call_timeout;
        config.maintenance_interval = self.maintenance_interval;
        config.fee = self.fee;
        config.seed = self.seed;
        config.auto = self.auto.clone();
        config.mining = self.mining;
        config
    }
}

/// A running node. Call [`Running::shutdown`] to stop it.
#[derive(Debug)]
#[must_use = "a node runs until Running::shutdown is awaited"]
pub struct Running {
    addr: SocketAddr,
    handle: Handle,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
    server: JoinHandle<()>,
    reporter: Option<JoinHandle<()>>,
    store: Option<Store>,
    cookie: Option<PathBuf>,
    /// The node's client, whose gossip links end with the node.
    client: Client,
}

fn advertised(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}

/// Binds, restores the node from its data directory (if any), launches
/// the engine and starts serving.
///
/// # Errors
///
/// [`StartError`] saying which part failed.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let args = &config;
    // A token that cannot be had stops the node before anything starts.
    let given_token = match (&args.admin_token, &args.admin_token_file) {
        (Some(token), _) => {
            cookie::check_token(token)?;
            Some(token.clone())
        }
        (None, Some(path)) => Some(cookie::read_token_file(path)?),
        (None, None) => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: args.listen,
        source,
    })?;
    let url = match &args.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", advertised(addr))
            .parse::<PeerUrl>()
            .expect("a socket address makes a valid url"),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("node-{}", addr.port()));
    let seed = args.seed.unwrap_or_else(rand::random);
    let behaviour = match &args.plugin {
        Some(path) => behaviours::loader::load(path, seed)?,
        None => behaviours::registry::build(&args.behaviour, seed)?,
    };
    let (wallet, store) = match &args.data_dir {
        Some(dir) => open_data_dir(dir).await?,
        None => (Wallet::generate(), None),
    };
    let (admin_token, cookie) = match (given_token, &args.data_dir) {
        (Some(token), Some(dir)) => {
            cookie::remove_cookie(dir)?;
            (Some(token), None)
        }
        (Some(token), None) => (Some(token), None),
        (None, Some(dir)) => (
            Some(cookie::write_cookie(dir)?),
            Some(dir.join(cookie::COOKIE_FILE)),
        ),
        (None, None) => (None, None),
    };
    let client = Client::new(args.call_timeout)?;
    let metrics = Arc::new(Metrics::default());
    let cancel = CancellationToken::new();

    let mut builder = Node::builder(args.params.clone())
        .config(args.engine(name.clone(), url.clone()))
        .wallet(wallet)
        .behaviour_arc(behaviour)
        .observer(metrics.clone())
        .network(client.clone());
    if let Some(tracker) = &args.tracker {
        builder = builder.tracker(client::Tracker::new(client.clone(), tracker.clone()));
    }
    if let Some(store) = &store {
        builder = builder.store(store.clone());
    }
    let mut reporter = None;
    let mut eye = None;
    if let Some(sauron) = args.sauron.as_ref().or(args.tracker.as_ref()) {
        let mut config = eye::Config::new(sauron.clone());
        config.capacity = args.report_queue;
        config.batch = args.report_batch;
        let (the_eye, sender) = Eye::new(&name, &url, config, metrics.clone())?;
        builder = builder.observer(the_eye.clone());
        reporter = Some(tokio::spawn(sender.run(cancel.clone())));
        eye = Some(the_eye);
    }
    let handle = match builder.launch().await {
        Ok(handle) => handle,
        Err(e) => {
            cancel.cancel();
            return Err(e.into());
        }
    };

    let app = App::new(handle.clone(), admin_token, metrics.clone());
    let watcher = Watcher {
        handle: Some(handle.clone()),
        metrics: metrics.clone(),
        eye,
    };
    let routes = warp::service(http::routes(app.clone()));
    let service = WatchLayer::new(watcher).layer(http::frames::Frames::new(app, routes));
    let server = tokio::spawn(http::server::serve(
        listener,
        service,
        metrics.clone(),
        args.limits,
        cancel.clone(),
    ));
    tracing::info!(%name, %url, address = %handle.address(), height = handle.height(), "node started");
    Ok(Running {
        addr: advertised(addr),
        handle,
        metrics,
        cancel,
        server,
        reporter,
        store,
        cookie,
        client,
    })
}

async fn open_data_dir(dir: &Path) -> Result<(Wallet, Option<Store>), StartError> {
    std::fs::create_dir_all(dir).map_err(StartError::DataDir)?;
    let wallet = Wallet::load_or_create(&dir.join(WALLET_FILE))?;
    let store = Store::open(dir).await?;
    Ok((wallet, Some(store)))
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

    /// The engine.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The node's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The cookie file holding the admin token, when the node made one
    /// (it was given no token and has a data directory).
    pub fn admin_cookie(&self) -> Option<&Path> {
        self.cookie.as_deref()
    }

    /// Stops serving (busy connections get a grace period), stops the
    /// engine and every task, delivers what reports it can, closes the
    /// database.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "server task failed");
        }
        self.handle.shutdown().await;
        self.client.stop_gossip();
        if let Some(reporter) = self.reporter
            && let Err(e) = reporter.await
        {
            tracing::warn!(error = %e, "reporter task failed");
        }
        if let Some(store) = self.store {
            store.close().await;
        }
        // The token dies with the node: no stale cookie is left behind.
        if let Some(path) = self.cookie
            && let Err(e) = std::fs::remove_file(&path)
        {
            tracing::warn!(path = %path.display(), error = %e, "admin cookie not removed");
        }
    }
}
