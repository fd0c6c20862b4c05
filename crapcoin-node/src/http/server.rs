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
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::eye::{ConnState, Watch, Watcher};

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

/// Serves `routes` on `listener` until `shutdown` fires, then waits (at
/// most [`Limits::grace`]) for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    watcher: Watcher,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let service = warp::service(routes);
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
                        watcher.metrics.connection_evicted();
                    }
                    None => {
                        tracing::debug!(%caller, "every connection busy; refused");
                        continue;
                    }
                }
            }
            open.insert(next_id, conn.clone());
            watcher.metrics.set_connections_open(open.len());
        }
        let _ = stream.set_nodelay(true);
        let watch = Watch::new(service.clone(), watcher.clone(), caller, conn.clone());
        tasks.spawn(connection(
            Activity { stream, conn },
            caller,
            next_id,
            registry.clone(),
            watch,
            watcher.clone(),
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
    service: Watch<S>,
    watcher: Watcher,
    limits: Limits,
    shutdown: CancellationToken,
) where
    Watch<S>: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        >,
    <Watch<S> as hyper::service::Service<http::Request<hyper::body::Incoming>>>::Future:
        Send + 'static,
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
    watcher.metrics.set_connections_open(open.len());
}
