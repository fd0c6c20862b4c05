//! The accept loop: HTTP/1.1 connections served by hyper around warp's
//! service, with a bounded number of connections, an idle timeout and a
//! graceful shutdown.
//!
//! Why not `warp::serve`: it spawns a task per connection without bound or
//! idle timeout, so a few hundred idle sockets would hold the node's memory
//! and file descriptors forever. Here:
//!
//! - at most [`Limits::max_connections`] connections are open; when a new
//!   one arrives at the limit, the connection idle the longest (no request
//!   in flight) is closed to make room, so idle sockets can never starve
//!   callers that have something to ask; when every connection is busy,
//!   the new one is closed at once;
//! - a connection silent for [`Limits::idle_timeout`] before or between
//!   requests, or slower than that to send a request's headers, is closed
//!   (hyper's header-read timeout); a watchdog also closes a connection
//!   that has moved no bytes for that long with no request in flight, which
//!   catches a response stalled on a client that stopped reading;
//! - on shutdown the listener closes, idle connections close at once and
//!   busy ones get [`Limits::grace`] to finish.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::reply::Response;

use crate::metrics::Metrics;

/// The caller of a request: the server puts it in every request's
/// extensions, so handlers and layers can tell who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub SocketAddr);

/// What the server knows of one connection: when it last moved bytes and
/// whether a request is being served, so idle connections can be found
/// and closed.
#[derive(Debug)]
pub struct ConnState {
    started: Instant,
    /// Milliseconds since `started` of the last read or write.
    last_activity: AtomicU64,
    /// Requests being served right now.
    inflight: AtomicUsize,
    /// Fired to ask the connection to close.
    close: CancellationToken,
}

impl Default for ConnState {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last_activity: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            close: CancellationToken::new(),
        }
    }
}

impl ConnState {
    /// Notes that bytes moved now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity.store(ms, Ordering::Relaxed);
    }

    /// How long since bytes last moved.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// Whether no request is being served.
    pub fn is_idle(&self) -> bool {
        self.inflight.load(Ordering::Relaxed) == 0
    }
}

/// Counts a request in flight for as long as it lives.
struct Inflight(Arc<ConnState>);

impl Inflight {
    fn new(conn: Arc<ConnState>) -> Self {
        conn.inflight.fetch_add(1, Ordering::Relaxed);
        Self(conn)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The served (tower) service as hyper calls it on one connection: each
/// request gets the [`Caller`] in its extensions and counts as in flight
/// on the connection until its response head is ready.
struct PerConnection<S> {
    inner: S,
    caller: SocketAddr,
    conn: Arc<ConnState>,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for PerConnection<S>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let mut inner = self.inner.clone();
        let inflight = Inflight::new(self.conn.clone());
        req.extensions_mut().insert(Caller(self.caller));
        Box::pin(async move {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let response = inner.call(req).await;
            drop(inflight);
            response
        })
    }
}

/// Bounds of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at most.
    pub max_connections: usize,
    /// How long a connection may stay silent between requests (and how
    /// long a request's headers may take).
    pub idle_timeout: Duration,
    /// How long busy connections get to finish on shutdown.
    pub grace: Duration,
}

impl Default for Limits {
    /// 256 connections, 30 s idle timeout, 5 s grace.
    fn default() -> Self {
        Self {
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(5),
        }
    }
}

type Registry = Arc<Mutex<HashMap<u64, Arc<ConnState>>>>;

/// A TCP stream that notes on its connection state when bytes move.
struct Activity {
    stream: TcpStream,
    conn: Arc<ConnState>,
}

impl AsyncRead for Activity {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.touch();
        }
        polled
    }
}

impl AsyncWrite for Activity {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.conn.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `service` on `listener` until `shutdown` fires, then waits (at
/// most [`Limits::grace`]) for open connections to finish.
///
/// `service` is the whole stack a request goes through: the routes
/// (`warp::service(routes)`) with whatever tower layers the caller puts
/// around them (the node stacks [`crate::eye::WatchLayer`]). Every request
/// reaches it with its [`Caller`] in the extensions. `metrics` counts the
/// connections.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    metrics: Arc<Metrics>,
    limits: Limits,
    shutdown: CancellationToken,
) where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let registry: Registry = Arc::new(Mutex::new(HashMap::new()));
    let tasks = TaskTracker::new();
    let max = limits.max_connections.max(1);
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, caller) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let conn = Arc::new(ConnState::default());
        {
            let mut open = registry.lock().unwrap_or_else(|p| p.into_inner());
            if open.len() >= max {
                let victim = open
                    .iter()
                    .filter(|(_, c)| c.is_idle())
                    .max_by_key(|(_, c)| c.idle_for())
                    .map(|(id, _)| *id);
                match victim.and_then(|id| open.remove(&id)) {
                    Some(victim) => {
                        // Removed now, closed by its task: the count never
                        // passes the bound.
                        victim.close.cancel();
                        metrics.connection_evicted();
                    }
                    None => {
                        tracing::debug!(%caller, "every connection busy; refused");
                        continue;
                    }
                }
            }
            open.insert(next_id, conn.clone());
            metrics.set_connections_open(open.len());
        }
        let _ = stream.set_nodelay(true);
        let service = PerConnection {
            inner: service.clone(),
            caller,
            conn: conn.clone(),
        };
        tasks.spawn(connection(
            Activity { stream, conn },
            caller,
            next_id,
            registry.clone(),
            service,
            metrics.clone(),
            limits,
            shutdown.clone(),
        ));
        next_id += 1;
    }
    drop(listener);
    tasks.close();
    if tokio::time::timeout(limits.grace + Duration::from_secs(1), tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period");
    }
}

#[expect(clippy::too_many_arguments, reason = "one call site, all parts needed")]
async fn connection<S>(
    io: Activity,
    caller: SocketAddr,
    id: u64,
    registry: Registry,
    service: PerConnection<S>,
    metrics: Arc<Metrics>,
    limits: Limits,
    shutdown: CancellationToken,
) where
    PerConnection<S>:
        hyper::service::Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
    <PerConnection<S> as hyper::service::Service<http::Request<Incoming>>>::Future: Send + 'static,
{
    let conn = io.conn.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let check = (limits.idle_timeout / 4).max(Duration::from_millis(10));
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%caller, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = conn.close.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep(check), if !closing => {
                if conn.is_idle() && conn.idle_for() >= limits.idle_timeout {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = tokio::time::sleep(limits.grace), if closing => break,
        }
    }
    let mut open = registry.lock().unwrap_or_else(|p| p.into_inner());
    open.remove(&id);
    metrics.set_connections_open(open.len());
}
