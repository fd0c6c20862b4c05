//! The accept loop: HTTP/1.1 connections served by hyper around warp's
//! service, with a bounded number of connections, deadlines on silence and
//! on request bodies, and a graceful shutdown.
//!
//! Why not `warp::serve`: it spawns a task per connection without bound or
//! idle timeout, so a few hundred idle sockets would hold the node's memory
//! and file descriptors forever. Here:
//!
//! - at most [`Limits::max_connections`] connections are open, and slow or
//!   silent clients cannot hold them against honest callers (see *Who gets
//!   a slot* below);
//! - every request's body has a deadline, [`Limits::body_timeout`] from the
//!   moment its headers arrived: a body not complete by then is answered
//!   `408 body_timeout` (JSON, `Connection: close`) and the connection
//!   closes;
//! - a connection silent for [`Limits::idle_timeout`] before or between
//!   requests, or slower than that to send a request's headers, is closed
//!   (hyper's header-read timeout); a watchdog also closes a connection
//!   that has moved no bytes for that long while no request is in flight
//!   (a response stalled on a client that stopped reading) or while the
//!   request's body is still being read (a client that stopped sending).
//!   A request whose body has arrived and whose answer is being computed
//!   is not stalled on its client: the node is working, and its own work
//!   is bounded elsewhere (engine calls, peer call timeouts), so the
//!   watchdog spares it;
//! - on shutdown the listener closes, idle connections close at once and
//!   busy ones get [`Limits::grace`] to finish.
//!
//! # Who gets a slot
//!
//! Every caller of a test network, and often of a real one, comes from the
//! same address, so source addresses cannot tell peers apart. What can: a
//! connection that has delivered a whole request (headers and body) and
//! been answered is *proven*; one that has not yet is *unproven*. Honest
//! peers' clients keep their connections alive between calls, so a peer
//! the node talks to holds proven connections; a slow or silent attacker
//! never completes a request, so every connection it holds stays unproven.
//!
//! - Unproven connections may hold at most [`Limits::unproven_cap`] slots
//!   (all but a quarter, [`Limits::reserved`], which only proven ones
//!   use). A new connection (unproven, since it has sent nothing) that
//!   finds the unproven slots full, or every slot taken, evicts an
//!   unproven one: first one that is not being answered (silent, or still
//!   sending a body), oldest first; else the oldest being answered. A new
//!   honest caller therefore always gets in, and keeps its slot until as
//!   many newer connections arrive as there are unproven slots; an
//!   attacker that opens and holds connections only ever evicts its own,
//!   and never a proven one.
//! - When every slot is proven, the one that waits on its client (nothing
//!   in flight, or a body still coming) and has moved no bytes the longest
//!   is evicted (an honest peer reconnects when it next calls; a client
//!   that proved itself and then stalled loses its slot); when every slot
//!   is proven and being answered, the new connection is closed at once.
//! - An evicted connection with a request in flight is dropped at once
//!   (not drained): it was chosen because it is the least useful.
//!
//! What this does not stop: an attacker that reconnects as fast as it is
//! evicted churns the unproven slots and may evict a new honest
//! connection before its first request completes; proven connections
//! (the peers the node already talks to) keep their reserved share even
//! then.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::reply::Response;

use crate::gossip::{self, FrameError};
use crate::metrics::Metrics;

/// The caller of a request: the server puts it in every request's
/// extensions, so handlers and layers can tell who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub SocketAddr);

/// What the server knows of one connection: when it last moved bytes,
/// whether a request is being served and its body read, and whether it
/// has proven itself, so stalled connections can be found and closed and
/// the least useful one evicted.
#[derive(Debug)]
pub struct ConnState {
    started: Instant,
    /// Milliseconds since `started` of the last read or write.
    last_activity: AtomicU64,
    /// Requests being served right now.
    inflight: AtomicUsize,
    /// Whether the request in flight has a body not yet fully read.
    reading_body: AtomicBool,
    /// Whether the request in flight ran out of time for its body.
    body_timed_out: AtomicBool,
    /// Whether a whole request came in on it and was answered.
    proven: AtomicBool,
    /// Fired to ask the connection to close.
    close: CancellationToken,
    /// A gossip stream the connection was upgraded to (taken by the
    /// connection's task once hyper lets the connection go).
    upgrade: Mutex<Option<Upgrade>>,
}

/// A gossip stream agreed in a handshake: the upgrade to wait for, and
/// the sender's peer header, which every frame's request carries.
#[derive(Debug)]
struct Upgrade {
    on: hyper::upgrade::OnUpgrade,
    peer: Option<http::HeaderValue>,
}

/// Put by the server in the extensions of the request a gossip frame
/// stands for, with the frame's kind (see [`crate::http::frames`]).
#[derive(Debug, Clone, Copy)]
pub struct GossipFrame(pub gossip::Kind);

/// Put by the server in the extensions of a gossip handshake it can
/// upgrade (`POST /gossip` asking for [`gossip::PROTOCOL`]); the route
/// answers `101` to a request that carries it and `426` to one that
/// does not.
#[derive(Debug, Clone, Copy)]
pub struct GossipOffer;

impl Default for ConnState {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            last_activity: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            reading_body: AtomicBool::new(false),
            body_timed_out: AtomicBool::new(false),
            proven: AtomicBool::new(false),
            close: CancellationToken::new(),
            upgrade: Mutex::new(None),
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

    /// Whether a request is in flight whose body has not fully arrived.
    pub fn is_reading_body(&self) -> bool {
        !self.is_idle() && self.reading_body.load(Ordering::Relaxed)
    }

    /// Whether a whole request came in on this connection and was
    /// answered (see the module docs, *Who gets a slot*).
    pub fn is_proven(&self) -> bool {
        self.proven.load(Ordering::Relaxed)
    }

    /// Whether the connection waits on its client: nothing in flight, or
    /// a request whose body is still coming. A request being answered
    /// waits on the node instead.
    fn waits_on_client(&self) -> bool {
        self.is_idle() || self.reading_body.load(Ordering::Relaxed)
    }

    /// Whether the watchdog closes it: no bytes for `idle_timeout` while
    /// it waits on its client.
    fn is_stalled(&self, idle_timeout: Duration) -> bool {
        self.waits_on_client() && self.idle_for() >= idle_timeout
    }
}

/// Counts a request in flight for as long as it lives.
struct Inflight(Arc<ConnState>);

impl Inflight {
    fn new(conn: Arc<ConnState>, has_body: bool) -> Self {
        conn.inflight.fetch_add(1, Ordering::Relaxed);
        if has_body {
            conn.reading_body.store(true, Ordering::Relaxed);
        }
        Self(conn)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        let conn = &self.0;
        let whole = !conn.reading_body.swap(false, Ordering::Relaxed)
            & !conn.body_timed_out.swap(false, Ordering::Relaxed);
        if whole && !conn.proven.load(Ordering::Relaxed) {
            conn.proven.store(true, Ordering::Relaxed);
        }
        conn.inflight.fetch_sub(1, Ordering::Relaxed);
        conn.touch();
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The connection failed while the body was read.
    #[error(transparent)]
    Read(#[from] hyper::Error),
    /// The body did not fully arrive within [`Limits::body_timeout`].
    #[error("the request body did not arrive within {0:?}")]
    Timeout(Duration),
}

/// A request's body as the service reads it: hyper's body with a
/// deadline ([`Limits::body_timeout`] from the request's arrival), noting
/// on its connection when it is complete.
///
/// Past the deadline it fails with [`BodyError::Timeout`] and the server
/// answers the request `408 body_timeout`, whatever the route made of
/// the failed read.
#[derive(Debug)]
pub struct RequestBody {
    inner: Source,
    conn: Arc<ConnState>,
    /// When the body must be complete (`None`: it was complete from the
    /// start, so nothing is timed).
    deadline: Option<Instant>,
    /// [`Limits::body_timeout`], for the error.
    timeout: Duration,
    /// The deadline's timer, made on the first read that has to wait.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Where a request's body comes from: the connection, or a gossip frame
/// read whole before its request was made.
#[derive(Debug)]
enum Source {
    Hyper(Incoming),
    Whole(Option<Bytes>),
}

impl RequestBody {
    fn finished(&self) {
        self.conn.reading_body.store(false, Ordering::Relaxed);
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let inner = match &mut this.inner {
            Source::Hyper(inner) => inner,
            Source::Whole(whole) => {
                return Poll::Ready(whole.take().map(|bytes| Ok(Frame::data(bytes))));
            }
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.finished();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.finished();
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.is_end_stream() {
                    this.finished();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let Some(deadline) = this.deadline else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.conn.body_timed_out.store(true, Ordering::Relaxed);
                this.finished();
                Poll::Ready(Some(Err(BodyError::Timeout(this.timeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Source::Hyper(inner) => inner.is_end_stream(),
            Source::Whole(whole) => whole.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Source::Hyper(inner) => inner.size_hint(),
            Source::Whole(whole) => {
                SizeHint::with_exact(whole.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

/// The answer to a request whose body ran out of time: `408` with the
/// API's JSON error shape, closing the connection (the rest of the body
/// may still be on its way).
fn body_timeout_answer(timeout: Duration) -> Response {
    let body = error_body(
        format!(
            "the request body did not arrive within {} ms",
            timeout.as_millis()
        ),
        "body_timeout",
    );
    let mut response = Response::new(body.into());
    *response.status_mut() = http::StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// The API's error body (`{"error", "reason"}`, as `models::ApiError`
/// writes it) for the answers the server gives itself, before or instead
/// of the routes.
fn error_body(error: impl std::fmt::Display, reason: &str) -> Bytes {
    let body = serde_json::json!({ "error": error.to_string(), "reason": reason });
    Bytes::from(body.to_string())
}

/// The served (tower) service as hyper calls it on one connection: each
/// request gets the [`Caller`] in its extensions and its body a deadline,
/// and counts as in flight on the connection until its response head is
/// ready.
struct PerConnection<S> {
    inner: S,
    caller: SocketAddr,
    conn: Arc<ConnState>,
    body_timeout: Duration,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for PerConnection<S>
where
    S: Service<http::Request<RequestBody>, Response = Response, Error = Infallible>
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
        let has_body = !req.body().is_end_stream();
        let inflight = Inflight::new(self.conn.clone(), has_body);
        let body_timeout = self.body_timeout;
        let upgrade = is_gossip_handshake(&req).then(|| Upgrade {
            on: hyper::upgrade::on(&mut req),
            peer: req.headers().get(gossip::PEER_HEADER).cloned(),
        });
        let mut req = req.map(|inner| RequestBody {
            inner: Source::Hyper(inner),
            conn: self.conn.clone(),
            // A clock read only for requests that carry a body: `GET`s,
            // the hot path, skip it.
            deadline: has_body.then(|| Instant::now() + body_timeout),
            timeout: body_timeout,
            timer: None,
        });
        req.extensions_mut().insert(Caller(self.caller));
        if upgrade.is_some() {
            req.extensions_mut().insert(GossipOffer);
        }
        Box::pin(async move {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let mut response = inner.call(req).await;
            if inflight.0.body_timed_out.load(Ordering::Relaxed) {
                response = Ok(body_timeout_answer(body_timeout));
            }
            if let (Some(upgrade), Ok(answer)) = (upgrade, &response)
                && answer.status() == http::StatusCode::SWITCHING_PROTOCOLS
            {
                *inflight.0.upgrade.lock().unwrap_or_else(|p| p.into_inner()) = Some(upgrade);
            }
            drop(inflight);
            response
        })
    }
}

/// Whether `req` asks for a gossip stream: `POST /gossip` with
/// `Upgrade: crapcoin-gossip/1`.
fn is_gossip_handshake<B>(req: &http::Request<B>) -> bool {
    req.method() == http::Method::POST
        && req.uri().path() == gossip::PATH
        && req.headers().get(http::header::UPGRADE).is_some_and(|v| {
            v.as_bytes()
                .eq_ignore_ascii_case(gossip::PROTOCOL.as_bytes())
        })
}

/// Bounds of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at most.
    pub max_connections: usize,
    /// How long a connection may stay silent between requests, how long a
    /// request's headers may take, and how long a connection may move no
    /// bytes while it waits on its client.
    pub idle_timeout: Duration,
    /// How long a request's body may take to arrive, from its headers.
    pub body_timeout: Duration,
    /// How long busy connections get to finish on shutdown.
    pub grace: Duration,
}

impl Default for Limits {
    /// 256 connections, 30 s idle timeout, 10 s body timeout, 5 s grace.
    fn default() -> Self {
        Self {
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// Slots only proven connections use: a quarter of
    /// [`Limits::max_connections`] (rounded down).
    pub fn reserved(&self) -> usize {
        self.max_connections.max(1) / 4
    }

    /// Slots unproven connections may hold at most: all but
    /// [`Limits::reserved`] (at least one).
    pub fn unproven_cap(&self) -> usize {
        self.max_connections.max(1) - self.reserved()
    }
}

/// What to do with a new connection, given the open ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// There is room.
    Admit,
    /// Close this one to make room.
    Evict(u64),
    /// Close the new one: every slot is proven and busy.
    Refuse,
}

/// The decision of *Who gets a slot* (module docs) for a new connection.
fn admission(open: &HashMap<u64, Arc<ConnState>>, limits: &Limits) -> Admission {
    let max = limits.max_connections.max(1);
    let cap = limits.unproven_cap();
    if open.len() < cap {
        return Admission::Admit;
    }
    let unproven = open.values().filter(|c| !c.is_proven()).count();
    if open.len() < max && unproven < cap {
        return Admission::Admit;
    }
    if unproven > 0 {
        // The unproven connection that is least use: one waiting on its
        // client before one being answered, then the oldest.
        return open
            .iter()
            .filter(|(_, c)| !c.is_proven())
            .min_by_key(|(_, c)| (!c.waits_on_client(), c.started))
            .map_or(Admission::Refuse, |(id, _)| Admission::Evict(*id));
    }
    // Every slot is proven: the one that waits on its client (nothing in
    // flight, or a body still coming) and has moved no bytes the longest.
    open.iter()
        .filter(|(_, c)| c.waits_on_client())
        .max_by_key(|(_, c)| c.idle_for())
        .map_or(Admission::Refuse, |(id, _)| Admission::Evict(*id))
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
/// reaches it with its [`Caller`] in the extensions and its body as a
/// [`RequestBody`] (with its deadline). `metrics` counts the connections.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    metrics: Arc<Metrics>,
    limits: Limits,
    shutdown: CancellationToken,
) where
    S: Service<http::Request<RequestBody>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let registry: Registry = Arc::new(Mutex::new(HashMap::new()));
    let tasks = TaskTracker::new();
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
            match admission(&open, &limits) {
                Admission::Admit => {}
                Admission::Evict(id) => {
                    if let Some(victim) = open.remove(&id) {
                        // Removed now, closed by its task: the count never
                        // passes the bound.
                        victim.close.cancel();
                        metrics.connection_evicted();
                        tracing::debug!(
                            proven = victim.is_proven(),
                            busy = !victim.is_idle(),
                            "connection evicted to make room"
                        );
                    }
                }
                Admission::Refuse => {
                    tracing::debug!(%caller, "every connection proven and busy; refused");
                    continue;
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
            body_timeout: limits.body_timeout,
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
    S: Service<http::Request<RequestBody>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    PerConnection<S>:
        hyper::service::Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
    <PerConnection<S> as hyper::service::Service<http::Request<Incoming>>>::Future: Send + 'static,
{
    let conn = io.conn.clone();
    let routes = service.inner.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true);
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let check = (limits.idle_timeout / 4).max(Duration::from_millis(10));
    let mut closing = false;
    let mut ended_ok = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = &result {
                    tracing::debug!(%caller, error = %e, "connection ended with an error");
                }
                ended_ok = result.is_ok();
                break;
            }
            _ = conn.close.cancelled(), if !closing => {
                // Evicted: a request in flight is dropped, not drained.
                if !conn.is_idle() {
                    break;
                }
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep(check), if !closing => {
                if conn.is_stalled(limits.idle_timeout) {
                    tracing::debug!(%caller, reading_body = conn.is_reading_body(), "stalled connection closed");
                    if !conn.is_idle() {
                        break;
                    }
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = tokio::time::sleep(limits.grace), if closing => break,
        }
    }
    let upgrade = conn
        .upgrade
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    // Only a connection hyper let go of cleanly hands its upgrade over (one
    // that failed, say on a reset while the 101 was written, never does),
    // and never later than the idle timeout, an eviction or the shutdown.
    if let Some(Upgrade { on, peer }) = upgrade
        && ended_ok
        && !closing
    {
        let upgraded = tokio::select! {
            upgraded = tokio::time::timeout(limits.idle_timeout, on) => match upgraded {
                Ok(upgraded) => upgraded.map_err(|e| e.to_string()),
                Err(_) => Err("timed out".to_owned()),
            },
            _ = conn.close.cancelled() => Err("evicted".to_owned()),
            _ = shutdown.cancelled() => Err("shutting down".to_owned()),
        };
        match upgraded {
            Ok(upgraded) => {
                let stream = Stream {
                    peer,
                    caller,
                    conn: &conn,
                    limits,
                    shutdown: &shutdown,
                };
                stream.serve(TokioIo::new(upgraded), routes).await;
            }
            Err(e) => tracing::debug!(%caller, error = %e, "gossip upgrade failed"),
        }
    }
    let mut open = registry.lock().unwrap_or_else(|p| p.into_inner());
    open.remove(&id);
    metrics.set_connections_open(open.len());
}

/// A gossip stream being served ([`crate::gossip`]): each frame is served
/// as the request it stands for, through the same routes and layers.
struct Stream<'a> {
    peer: Option<http::HeaderValue>,
    caller: SocketAddr,
    conn: &'a Arc<ConnState>,
    limits: Limits,
    shutdown: &'a CancellationToken,
}

impl Stream<'_> {
    /// Reads and serves frames until the stream ends, goes silent for the
    /// idle timeout, breaks a rule of the wire (answered, then closed), or
    /// the connection is evicted or the server shuts down.
    async fn serve<IO, S>(&self, io: IO, routes: S)
    where
        IO: AsyncRead + AsyncWrite + Unpin,
        S: Service<http::Request<RequestBody>, Response = Response, Error = Infallible> + Clone,
    {
        let (reader, mut writer) = tokio::io::split(io);
        // Buffered: a frame's length, kind and body in one read.
        let mut reader = tokio::io::BufReader::with_capacity(16 * 1024, reader);
        let limits = self.limits;
        loop {
            let read = tokio::select! {
                read = gossip::read_frame(&mut reader, limits.idle_timeout, limits.body_timeout) => read,
                _ = self.conn.close.cancelled() => break,
                _ = self.shutdown.cancelled() => break,
            };
            let (status, body, last) = match read {
                Ok((kind, body)) => {
                    let response = self.request(routes.clone(), kind, body).await;
                    if response.status().is_success() {
                        continue;
                    }
                    let status = response.status().as_u16();
                    let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                        response.into_body(),
                        gossip::MAX_REPLY,
                    ))
                    .await
                    .map(http_body_util::Collected::to_bytes)
                    .unwrap_or_default();
                    (status, body, false)
                }
                Err(FrameError::Ended) => break,
                Err(FrameError::Io(e)) => {
                    tracing::debug!(caller = %self.caller, error = %e, "gossip stream failed");
                    break;
                }
                Err(e) => {
                    let (status, reason) = match e {
                        FrameError::Length(_) => (413, "too_large"),
                        FrameError::Timeout(_) => (408, "body_timeout"),
                        _ => (400, "bad_frame"),
                    };
                    (status, error_body(&e, reason), true)
                }
            };
            let answer = gossip::reply(status, &body);
            let written =
                tokio::time::timeout(limits.body_timeout, writer.write_all(&answer)).await;
            if last || !matches!(written, Ok(Ok(()))) {
                break;
            }
        }
        let _ = tokio::time::timeout(limits.grace, writer.shutdown()).await;
    }

    /// Serves one frame as its request: `POST {kind's path}` with the
    /// handshake's peer header, the caller, and the frame as its body.
    async fn request<S>(&self, mut routes: S, kind: gossip::Kind, body: Bytes) -> Response
    where
        S: Service<http::Request<RequestBody>, Response = Response, Error = Infallible>,
    {
        let inflight = Inflight::new(self.conn.clone(), false);
        let mut req = http::Request::new(RequestBody {
            inner: Source::Whole(Some(body)),
            conn: self.conn.clone(),
            deadline: None,
            timeout: self.limits.body_timeout,
            timer: None,
        });
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = http::Uri::from_static(kind.path());
        // No content headers: the frame's length is known and capped, and
        // `http::frames` hands the body to its handler as it is.
        if let Some(peer) = &self.peer {
            req.headers_mut().insert(gossip::PEER_HEADER, peer.clone());
        }
        req.extensions_mut().insert(Caller(self.caller));
        req.extensions_mut().insert(GossipFrame(kind));
        let Ok(()) = std::future::poll_fn(|cx| routes.poll_ready(cx)).await;
        let Ok(response) = routes.call(req).await;
        drop(inflight);
        response
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::{Admission, ConnState, Limits, admission};

    /// What a connection is doing, for building one.
    #[derive(Clone, Copy)]
    enum Doing {
        /// Nothing in flight.
        Idle,
        /// A request whose body is still coming.
        Sending,
        /// A request the node is answering.
        Answered,
    }

    /// A connection opened `age_ms` ago, silent for `idle_ms`.
    fn conn(age_ms: u64, idle_ms: u64, proven: bool, doing: Doing) -> Arc<ConnState> {
        let state = ConnState {
            started: Instant::now()
                .checked_sub(Duration::from_millis(age_ms))
                .expect("the machine has been up longer than a test connection's age"),
            ..ConnState::default()
        };
        state
            .last_activity
            .store(age_ms.saturating_sub(idle_ms), Ordering::Relaxed);
        state.proven.store(proven, Ordering::Relaxed);
        match doing {
            Doing::Idle => {}
            Doing::Sending => {
                state.inflight.store(1, Ordering::Relaxed);
                state.reading_body.store(true, Ordering::Relaxed);
            }
            Doing::Answered => state.inflight.store(1, Ordering::Relaxed),
        }
        Arc::new(state)
    }

    fn limits(max: usize) -> Limits {
        Limits {
            max_connections: max,
            ..Limits::default()
        }
    }

    #[test]
    fn a_quarter_of_the_slots_is_kept_for_proven_connections() {
        assert_eq!(
            (limits(256).reserved(), limits(256).unproven_cap()),
            (64, 192)
        );
        assert_eq!((limits(16).reserved(), limits(16).unproven_cap()), (4, 12));
        assert_eq!((limits(3).reserved(), limits(3).unproven_cap()), (0, 3));
        assert_eq!((limits(0).reserved(), limits(0).unproven_cap()), (0, 1));
    }

    #[test]
    fn slow_unproven_connections_only_evict_each_other() {
        let limits = limits(8);
        let mut open = HashMap::new();
        // Two proven connections, idle a long time.
        open.insert(0, conn(90_000, 60_000, true, Doing::Idle));
        open.insert(1, conn(90_000, 50_000, true, Doing::Idle));
        // Five unproven: room for a sixth.
        open.insert(2, conn(5_000, 1_000, false, Doing::Answered));
        open.insert(3, conn(4_000, 4_000, false, Doing::Sending));
        open.insert(4, conn(3_000, 3_000, false, Doing::Sending));
        open.insert(5, conn(2_000, 2_000, false, Doing::Idle));
        open.insert(6, conn(1_000, 1_000, false, Doing::Sending));
        assert_eq!(admission(&open, &limits), Admission::Admit);
        // Six unproven fill their share: the oldest that waits on its
        // client goes, not the older one being answered, nor a proven one.
        open.insert(7, conn(10, 10, false, Doing::Sending));
        assert_eq!(admission(&open, &limits), Admission::Evict(3));
        // With only answered ones left unproven, the oldest of them.
        for id in 3..=7 {
            open.insert(id, conn(100 * id, 0, false, Doing::Answered));
        }
        assert_eq!(admission(&open, &limits), Admission::Evict(2));
    }

    #[test]
    fn with_every_slot_proven_the_most_stalled_waiting_on_its_client_goes() {
        let limits = limits(4);
        let mut open = HashMap::new();
        open.insert(0, conn(9_000, 8_000, true, Doing::Answered));
        open.insert(1, conn(9_000, 2_000, true, Doing::Idle));
        open.insert(2, conn(9_000, 5_000, true, Doing::Sending));
        assert_eq!(admission(&open, &limits), Admission::Admit);
        open.insert(3, conn(9_000, 1_000, true, Doing::Idle));
        assert_eq!(admission(&open, &limits), Admission::Evict(2));
        // A full table with an unproven connection evicts that one.
        open.insert(3, conn(10, 0, false, Doing::Answered));
        assert_eq!(admission(&open, &limits), Admission::Evict(3));
        // Every slot proven and being answered: the newcomer is refused.
        for id in 0..4 {
            open.insert(id, conn(9_000, 9_000, true, Doing::Answered));
        }
        assert_eq!(admission(&open, &limits), Admission::Refuse);
    }
}
