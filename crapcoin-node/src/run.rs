//! Starting and stopping a whole node: listener, store, wallet, engine,
//! HTTP server and reporter, as the `crapcoin-node` binary (and tests that
//! want a node in-process) do.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crapcoin_core::node::LaunchError;
use crapcoin_core::wallet::WalletError;
use crapcoin_core::{Handle, Node, PeerUrl, Wallet};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::{self, Args};
use crate::client::{self, Client};
use crate::eye::{self, Eye, Watcher};
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
    Behaviour(#[from] cli::UnknownBehaviour),
    /// The `--plugin` could not be loaded.
    #[error(transparent)]
    Plugin(#[from] behaviours::loader::LoadError),
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
pub async fn start(args: &Args) -> Result<Running, StartError> {
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
        None => cli::behaviour(&args.behaviour, seed)?,
    };
    let (wallet, store) = match &args.data_dir {
        Some(dir) => open_data_dir(dir).await?,
        None => (Wallet::generate(), None),
    };
    let client = Client::new(Duration::from_millis(args.call_timeout_ms))?;
    let metrics = Arc::new(Metrics::default());
    let cancel = CancellationToken::new();

    let mut builder = Node::builder(args.params())
        .config(args.config(name.clone(), url.clone()))
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

    let app = App::new(handle.clone(), args.admin_token.clone(), metrics.clone());
    let watcher = Watcher {
        handle: Some(handle.clone()),
        metrics: metrics.clone(),
        eye,
    };
    let server = tokio::spawn(http::server::serve(
        listener,
        http::routes(app),
        watcher,
        args.limits(),
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

    /// Stops serving (busy connections get a grace period), stops the
    /// engine and every task, delivers what reports it can, closes the
    /// database.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "server task failed");
        }
        self.handle.shutdown().await;
        if let Some(reporter) = self.reporter
            && let Err(e) = reporter.await
        {
            tracing::warn!(error = %e, "reporter task failed");
        }
        if let Some(store) = self.store {
            store.close().await;
        }
    }
}
