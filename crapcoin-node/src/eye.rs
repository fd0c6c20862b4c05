//! AllSeeingEye: reports every request a node serves and every event it
//! sees to Sauron, without ever slowing the node down.
//!
//! - [`WatchLayer`] is a tower layer; its [`Watch`] service wraps the
//!   node's HTTP service: for each request it notes method,
//!   path, route template, status, latency, caller (socket address and the
//!   peer URL header), request and response sizes and an excerpt of the
//!   request body, counts it in [`Metrics`], and hands a [`Report`] to the
//!   [`Eye`].
//! - [`Eye`] is also an [`Observer`], so every engine [`Event`] becomes a
//!   report too.
//! - Reports go into a bounded queue with `try_send`: when the queue is
//!   full the report is dropped and counted (`crapcoin_reports_dropped_total`
//!   in `/metrics`), never waited for. A background [`Sender`] takes them
//!   out in batches and POSTs each batch to `{sauron}/api/events` with a
//!   timeout; a batch Sauron does not take is dropped and counted.
//!
//! The batch body is the wire format of [`crate::report`].

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crapcoin_core::node::now_ms;
use crapcoin_core::{Event, Handle, Observer, PeerUrl};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;
use tower_service::Service;

use crate::client::PEER_HEADER;
use crate::http::server::Caller;
use crate::metrics::Metrics;
use crate::report::{self, Batch, EventReport, RequestReport};

/// Bytes of a request body kept in a report.
pub const EXCERPT_LEN: usize = 256;
/// Longest path or header value kept in a report.
const MAX_FIELD_LEN: usize = 256;

/// Where and how reports are sent.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sauron's base URL; batches go to `{sauron}/api/events`.
    pub sauron: PeerUrl,
    /// Reports queued at most; more are dropped.
    pub capacity: usize,
    /// Reports per batch at most.
    pub batch: usize,
    /// How long the sender lingers for a batch to fill.
    pub linger: Duration,
    /// Timeout of one batch POST.
    pub timeout: Duration,
}

impl Config {
    /// Defaults for reporting to `sauron`: 4096 queued, batches of 256,
    /// 50 ms linger, 2 s timeout.
    pub fn new(sauron: PeerUrl) -> Self {
        Self {
            sauron,
            capacity: 4096,
            batch: 256,
            linger: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
        }
    }
}

/// What the eye reports: the wire format's report with the engine's event.
pub type Report = report::Report<Event>;

/// The reporting end: a bounded queue in front of the [`Sender`].
#[derive(Debug)]
pub struct Eye {
    tx: mpsc::Sender<Report>,
    metrics: Arc<Metrics>,
}

/// The background half of the eye: sends queued reports in batches.
#[derive(Debug)]
pub struct Sender {
    rx: mpsc::Receiver<Report>,
    config: Config,
    http: reqwest::Client,
    node: String,
    /// The node's URL as the batches carry it.
    url: String,
    metrics: Arc<Metrics>,
}

impl Eye {
    /// An eye for the node `node` at `url`, and the sender to run.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(
        node: &str,
        url: &PeerUrl,
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Self>, Sender), reqwest::Error> {
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(1)
            .no_proxy()
            .build()?;
        let eye = Arc::new(Self {
            tx,
            metrics: metrics.clone(),
        });
        let sender = Sender {
            rx,
            config,
            http,
            node: node.to_owned(),
            url: url.to_string(),
            metrics,
        };
        Ok((eye, sender))
    }

    /// Queues a report, or drops and counts it when the queue is full.
    /// Never waits.
    pub fn report(&self, report: Report) {
        if self.tx.try_send(report).is_err() {
            self.metrics.report_dropped();
        }
    }
}

impl Observer for Eye {
    fn on_event(&self, _node: &str, event: &Event) {
        // Requests are reported with more detail by `Watch`.
        if matches!(event, Event::RequestServed { .. }) {
            return;
        }
        self.report(Report::Event(EventReport {
            at_ms: now_ms(),
            event: event.clone(),
        }));
    }
}

impl Sender {
    /// Sends batches until `cancel` fires, then makes one last attempt
    /// (bounded by the timeout) to deliver what is still queued.
    pub async fn run(mut self, cancel: CancellationToken) {
        let max = self.config.batch.max(1);
        let mut batch = Vec::with_capacity(max);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                n = self.rx.recv_many(&mut batch, max) => if n == 0 { return },
            }
            if batch.len() < max {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(self.config.linger) => {}
                }
                while batch.len() < max {
                    match self.rx.try_recv() {
                        Ok(report) => batch.push(report),
                        Err(_) => break,
                    }
                }
            }
            batch = self.deliver(batch).await;
            batch.clear();
        }
        while batch.len() < max {
            match self.rx.try_recv() {
                Ok(report) => batch.push(report),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            self.deliver(batch).await;
        }
    }

    /// Sends one batch; gives the reports back (their buffer is reused).
    async fn deliver(&self, reports: Vec<Report>) -> Vec<Report> {
        let batch = Batch {
            node: self.node.clone(),
            url: self.url.clone(),
            reports,
        };
        let encoded = serde_json::to_vec(&batch);
        let reports = batch.reports;
        let body = match encoded {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "encoding reports failed");
                self.metrics.report_batch_failed(reports.len());
                return reports;
            }
        };
        let request = self
            .http
            .post(format!("{}/api/events", self.config.sauron))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let delivered = match tokio::time::timeout(self.config.timeout, request.send()).await {
            Ok(Ok(response)) => response.status().is_success(),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "sauron unreachable");
                false
            }
            Err(_) => false,
        };
        if delivered {
            self.metrics.reports_sent(reports.len());
        } else {
            self.metrics.report_batch_failed(reports.len());
        }
        reports
    }
}

#[derive(Debug, Default)]
struct Excerpt {
    bytes: Vec<u8>,
    total: u64,
}

/// A request body that keeps its first [`EXCERPT_LEN`] bytes and counts
/// the rest as the handler reads it (when there is an eye to report them
/// to; else it only passes the body on).
#[derive(Debug)]
pub struct Tee<B> {
    inner: B,
    seen: Option<Arc<Mutex<Excerpt>>>,
}

impl<B> Body for Tee<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Some(seen) = &this.seen
        {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.total += data.len() as u64;
            let room = EXCERPT_LEN.saturating_sub(seen.bytes.len());
            let take = room.min(data.len());
            seen.bytes.extend_from_slice(&data[..take]);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn truncated(s: &str) -> String {
    let mut end = s.len().min(MAX_FIELD_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// What every connection's [`Watch`] shares.
#[derive(Debug, Clone)]
pub struct Watcher {
    /// The node (request events go to its observers); `None` for a
    /// server that is not a node (Sauron).
    pub handle: Option<Handle>,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// The eye, when reporting to Sauron.
    pub eye: Option<Arc<Eye>>,
}

/// The request-reporting middleware as a tower layer: the node stacks it
/// around its routes (`tower_layer::Layer::layer(&WatchLayer::new(watcher),
/// warp::service(routes))`) and hands the result to
/// [`crate::http::server::serve`].
#[derive(Debug, Clone)]
pub struct WatchLayer {
    watcher: Watcher,
}

impl WatchLayer {
    /// A layer reporting to what `watcher` holds.
    pub fn new(watcher: Watcher) -> Self {
        Self { watcher }
    }
}

impl<S> Layer<S> for WatchLayer {
    type Service = Watch<S>;

    fn layer(&self, inner: S) -> Watch<S> {
        Watch {
            inner,
            watcher: self.watcher.clone(),
        }
    }
}

/// The reporting service [`WatchLayer`] puts around the node's HTTP
/// service: it tees the request body, times the request, and counts and
/// reports it once answered.
#[derive(Debug, Clone)]
pub struct Watch<S> {
    inner: S,
    watcher: Watcher,
}

impl<S, B, R> Service<http::Request<B>> for Watch<S>
where
    S: Service<http::Request<Tee<B>>, Response = http::Response<R>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    R: Body + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The inner service that was polled ready serves this request; a
        // clone takes its place for the next one (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let watcher = self.watcher.clone();
        Box::pin(async move {
            let start = Instant::now();
            let method = method_name(req.method());
            let route = crate::http::route_template(req.uri().path());
            // Kept as they came (shared buffers) and made text only once
            // answered: nothing is spent before the handler runs.
            let uri = req.uri().clone();
            let peer = req.headers().get(PEER_HEADER).cloned();
            let caller = req.extensions().get::<Caller>().map(|c| c.0);
            let seen = watcher
                .eye
                .as_ref()
                .map(|_| Arc::new(Mutex::new(Excerpt::default())));
            let req = req.map(|inner| Tee {
                inner,
                seen: seen.clone(),
            });
            let response = match inner.call(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let latency = start.elapsed();
            let status = response.status().as_u16();
            let peer = peer.as_ref().and_then(|v| v.to_str().ok()).map(truncated);
            watcher.metrics.request(route, method, status);
            if let Some(handle) = &watcher.handle {
                handle.emit(Event::RequestServed {
                    method: method.to_owned(),
                    route: route.to_owned(),
                    status,
                    latency,
                    peer: peer.clone(),
                });
            }
            if let (Some(eye), Some(seen)) = (&watcher.eye, &seen) {
                let path = truncated(uri.path());
                let (excerpt, request_bytes) = {
                    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    (
                        String::from_utf8_lossy(&seen.bytes).into_owned(),
                        seen.total,
                    )
                };
                eye.report(Report::Request(RequestReport {
                    at_ms: now_ms(),
                    method: Cow::Borrowed(method),
                    path,
                    route: Cow::Borrowed(route),
                    status,
                    latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                    caller: caller.map(|c| c.to_string()),
                    peer,
                    request_bytes,
                    response_bytes: response.body().size_hint().exact(),
                    excerpt,
                }));
            }
            Ok(response)
        })
    }
}
