//! Gossip streams: the blocks and relayed transfers a node sends a peer,
//! over one long-lived connection per peer, without an answer per message.
//!
//! A `POST /block` costs each hop of a block's path a request, an answer,
//! and the sender's wake-up to read it; on a line of 50 processes on two
//! cores a bare hyper and reqwest relay with no work at all costs about
//! 0.16–0.19 ms a hop, a raw TCP relay 0.07 ms (BENCHMARKS.md, issue 13).
//! The engine throws gossip answers away ([`crapcoin_core::Network::post_block`]),
//! so the answer buys nothing on that path. A stream keeps what the
//! answer was for — a refusal's status and reason — and sends nothing
//! back for what is taken.
//!
//! # Wire
//!
//! The sender opens the stream with an HTTP/1.1 upgrade on the node's own
//! port (one address per node, as before):
//!
//! ```text
//! POST /gossip HTTP/1.1
//! Upgrade: crapcoin-gossip/1
//! Connection: Upgrade
//! X-Crapcoin-Peer: http://127.0.0.1:4001     (the sender's URL, as on POST /block)
//! Content-Length: 0
//! ```
//!
//! answered `101 Switching Protocols` (or `426 upgrade_required` with a
//! JSON reason when the request is not an upgrade to this protocol). Then
//! the sender writes frames and the receiver answers only refusals:
//!
//! ```text
//! frame:  u32 length (big-endian) | kind (1 byte: b'B' block, b'T' transfer) | JSON body
//! reply:  u32 length (big-endian) | u16 status (big-endian) | JSON answer
//! ```
//!
//! The receiver serves each frame exactly as the request it stands for
//! (`POST /block` or `POST /transactions` with the handshake's peer
//! header): the same handlers, limits, eye reports and metrics. A frame
//! answered with a status other than 2xx gets a reply with that status
//! and the answer's JSON body (`{"error", "reason"}`); so junk is refused
//! with its reason, writes nothing, and costs its sender standing as over
//! plain HTTP. A frame longer than [`MAX_FRAME`], of an unknown kind, or
//! not complete within the server's body timeout gets a reply (`413
//! too_large`, `400 bad_frame`, `408 body_timeout`) and the stream is
//! closed; a stream silent for the server's idle timeout is closed.
//!
//! # Sender
//!
//! [`Links`] keeps one link (a task and a bounded queue) per peer, made on
//! the first message and ended after [`LINK_IDLE`] of silence, on any
//! error, or when the peer closes. A message for an open link with
//! nothing queued is written at once, by the sender itself, without
//! blocking (`try_write`): it leaves before the node does anything else
//! with the block (its store write, its events, its answer), and without
//! waking another task; what does not fit in the socket is queued, and
//! the link task writes the queue in order. A peer that answers the upgrade with
//! anything but `101` (a node of an older version, a fake peer in a test)
//! is sent plain HTTP for [`REFUSED_FOR`]; what was queued for it then is
//! sent as `POST`s (within one timeout in all). After any other failure
//! what waits is dropped, as a `POST` to that peer would fail. A link is
//! idle only when nothing was sent on it either way; [`Links::stop`]
//! ends every link when the node stops. [`Links::post`] refuses (the caller pushes over HTTP)
//! when the peer's queue is full or [`MAX_LINKS`] links exist.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use crapcoin_core::block::MAX_BLOCK_JSON_LEN;
use crapcoin_core::network::PeerUrl;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The header a pushed block or relayed transfer carries (and a gossip
/// stream's handshake): the sender's URL, where the receiver fetches
/// missing ancestors.
pub const PEER_HEADER: &str = "x-crapcoin-peer";

/// The path of the handshake.
pub const PATH: &str = "/gossip";

/// The protocol named in the handshake's `Upgrade` header.
pub const PROTOCOL: &str = "crapcoin-gossip/1";

/// Largest frame (kind byte and body): a block's largest JSON and its kind.
/// A transfer's body limit is smaller; the request it stands for enforces
/// it (`413 too_large`).
pub const MAX_FRAME: usize = MAX_BLOCK_JSON_LEN + 1;

/// Largest reply body; a refusal's JSON is far smaller.
pub const MAX_REPLY: usize = 4 * 1024;

/// Links (peers with an open stream) at most per node.
pub const MAX_LINKS: usize = 256;

/// Messages queued for one peer at most; more go over plain HTTP.
pub const LINK_QUEUE: usize = 256;

/// How long a link with nothing to send stays open. Shorter than the
/// server's default idle timeout (30 s), so the sender, not the receiver,
/// closes an idle stream and no message meets a stream being closed.
pub const LINK_IDLE: Duration = Duration::from_secs(15);

/// How long a peer that refused the upgrade is sent plain HTTP.
pub const REFUSED_FOR: Duration = Duration::from_secs(60);

/// Largest answer head read from a handshake.
const MAX_HANDSHAKE_ANSWER: usize = 4 * 1024;

/// What a frame stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A block: `POST /block`.
    Block,
    /// A relayed transfer: `POST /transactions`.
    Tx,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Block => b'B',
            Kind::Tx => b'T',
        }
    }

    fn of(byte: u8) -> Option<Self> {
        match byte {
            b'B' => Some(Kind::Block),
            b'T' => Some(Kind::Tx),
            _ => None,
        }
    }

    /// The path of the request a frame of this kind stands for.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Block => "/block",
            Kind::Tx => "/transactions",
        }
    }
}

/// The plain request a message of `kind` is without a stream: `POST` to
/// its path on `to`, with the sender's URL in the peer header. The HTTP
/// client's pushes and a refused link's leftovers are both this request.
pub fn push_request(
    http: &reqwest::Client,
    to: &PeerUrl,
    from: &PeerUrl,
    kind: Kind,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    http.post(format!("{to}{}", kind.path()))
        .header(PEER_HEADER, from.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
}

/// A frame: its length, kind and body.
pub fn frame(kind: Kind, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u32(u32::try_from(body.len() + 1).unwrap_or(u32::MAX));
    out.put_u8(kind.byte());
    out.put_slice(body);
    out.freeze()
}

/// A reply: its length, status and JSON body.
pub fn reply(status: u16, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(6 + body.len());
    out.put_u32(u32::try_from(body.len() + 2).unwrap_or(u32::MAX));
    out.put_u16(status);
    out.put_slice(body);
    out.freeze()
}

/// Why no frame was read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended (or was silent for the idle timeout) between frames.
    #[error("the stream ended")]
    Ended,
    /// The length announced is past [`MAX_FRAME`] (or zero).
    #[error("a frame of {0} bytes (at most {MAX_FRAME})")]
    Length(usize),
    /// The kind byte is unknown.
    #[error("a frame of unknown kind {0:#04x}")]
    Kind(u8),
    /// The frame did not arrive whole within the body timeout.
    #[error("the frame did not arrive within {0:?}")]
    Timeout(Duration),
    /// The stream failed mid-frame.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one frame: its length within `idle` (silence before it ends the
/// stream), the rest within `body_timeout` of the length.
///
/// # Errors
///
/// [`FrameError`]: the stream ended or went silent, the frame is too long
/// or of an unknown kind (refused before its body is read), or late.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    idle: Duration,
    body_timeout: Duration,
) -> Result<(Kind, Bytes), FrameError> {
    let mut head = [0u8; 4];
    match tokio::time::timeout(idle, reader.read_exact(&mut head)).await {
        Err(_) => return Err(FrameError::Ended),
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Ended),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(_)) => {}
    }
    let len = u32::from_be_bytes(head) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(FrameError::Length(len));
    }
    let mut body = vec![0u8; len];
    let deadline = tokio::time::Instant::now() + body_timeout;
    let read = tokio::time::timeout_at(deadline, reader.read_exact(&mut body[..1])).await;
    match read {
        Err(_) => return Err(FrameError::Timeout(body_timeout)),
        Ok(result) => result?,
    };
    let kind = Kind::of(body[0]).ok_or(FrameError::Kind(body[0]))?;
    match tokio::time::timeout_at(deadline, reader.read_exact(&mut body[1..])).await {
        Err(_) => Err(FrameError::Timeout(body_timeout)),
        Ok(result) => {
            result?;
            Ok((kind, Bytes::from(body).slice(1..)))
        }
    }
}

/// Reads one reply: its status and body.
///
/// # Errors
///
/// When the stream ends or fails, or a reply is longer than
/// [`MAX_REPLY`] (a peer that is not a node).
pub async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<(u16, Bytes)> {
    let len = reader.read_u32().await? as usize;
    if !(2..=MAX_REPLY + 2).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a reply of {len} bytes"),
        ));
    }
    let status = reader.read_u16().await?;
    let mut body = vec![0u8; len - 2];
    reader.read_exact(&mut body).await?;
    Ok((status, body.into()))
}

/// What waits on a link.
enum Queued {
    /// A message not yet framed: sent as a `POST` if the stream never opens.
    Message { kind: Kind, body: Bytes },
    /// The rest of a frame partly written at once by [`Links::post`]: it
    /// goes out before anything else.
    Rest(Bytes),
}

/// One peer's link: what waits, the stream's write half when nobody is
/// writing on it, and the link task's wake-up.
#[derive(Debug)]
struct Link {
    state: Mutex<LinkState>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct LinkState {
    queue: VecDeque<Queued>,
    /// The stream's write half: `None` before the handshake, while the
    /// link task writes, and once the link is closed.
    writer: Option<OwnedWriteHalf>,
    /// Set when the link task ends, or a write at once finds the stream
    /// broken: nothing more is taken.
    closed: bool,
    /// Whether a message was written at once since the link task last
    /// looked: a link is idle only when nothing was sent either way.
    sent: bool,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Queued::Message { kind, body } => write!(f, "{kind:?} of {} bytes", body.len()),
            Queued::Rest(rest) => write!(f, "the last {} bytes of a frame", rest.len()),
        }
    }
}

impl Link {
    fn state(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a message: written at once when nothing waits and nobody
    /// writes (the message leaves before its sender does anything else,
    /// the store write included), else queued for the link task. `false`
    /// when the queue is full; `Err` when the link is closed.
    fn take(&self, kind: Kind, body: Bytes) -> Result<bool, Bytes> {
        let mut state = self.state();
        if state.closed {
            return Err(body);
        }
        if state.queue.is_empty()
            && let Some(writer) = &state.writer
        {
            let bytes = frame(kind, &body);
            let queued = match writer.try_write(&bytes) {
                Ok(n) if n == bytes.len() => {
                    state.sent = true;
                    return Ok(true);
                }
                Ok(n) => Queued::Rest(bytes.slice(n..)),
                // Not writable now: nothing of it went out, the task
                // writes it.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Queued::Message { kind, body },
                // Broken (the peer went): nothing of it went out; the
                // link takes nothing more and the message goes on a new
                // one. The task finds the error when it next reads.
                Err(_) => {
                    state.closed = true;
                    state.writer = None;
                    drop(state);
                    self.wake.notify_one();
                    return Err(body);
                }
            };
            state.queue.push_back(queued);
            drop(state);
            self.wake.notify_one();
            return Ok(true);
        }
        if state.queue.len() >= LINK_QUEUE {
            return Ok(false);
        }
        state.queue.push_back(Queued::Message { kind, body });
        drop(state);
        self.wake.notify_one();
        Ok(true)
    }
}

/// The links of one node: see the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Links {
    table: Arc<Mutex<Table>>,
    http: reqwest::Client,
    timeout: Duration,
    /// Fired by [`Links::stop`]: every link ends at once.
    stop: CancellationToken,
}

#[derive(Debug, Default)]
struct Table {
    links: HashMap<PeerUrl, Arc<Link>>,
    /// Peers that refused the upgrade, and until when they get HTTP.
    refused: HashMap<PeerUrl, Instant>,
}

impl Links {
    /// Links whose connects, handshakes and writes each time out after
    /// `timeout`, and which fall back to `http` for peers that refuse.
    pub fn new(http: reqwest::Client, timeout: Duration) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table::default())),
            http,
            timeout,
            stop: CancellationToken::new(),
        }
    }

    /// Ends every link and takes no more messages (the node stops): what
    /// waits on a link is dropped, as a stopping node's sends are.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `body` (a message of `kind`, from the node at `from`) on the
    /// link to `to`, opening one if there is none: written at once when
    /// the link is open and idle, else queued. `false` when it was not
    /// taken: the peer refused streams lately, its queue is full, the body
    /// is too long for a frame, [`MAX_LINKS`] links are open, the links
    /// were stopped, or no runtime runs here. The caller then sends it
    /// over plain HTTP (a stopped node sends nothing more).
    pub fn post(&self, to: &PeerUrl, from: &PeerUrl, kind: Kind, body: Bytes) -> bool {
        if body.len() >= MAX_FRAME || self.stop.is_cancelled() {
            return false;
        }
        let mut table = self.table();
        if let Some(until) = table.refused.get(to) {
            if Instant::now() < *until {
                return false;
            }
            table.refused.remove(to);
        }
        let body = match table.links.get(to) {
            Some(link) => match link.take(kind, body) {
                Ok(taken) => return taken,
                Err(body) => {
                    table.links.remove(to);
                    body
                }
            },
            None => body,
        };
        if table.links.len() >= MAX_LINKS {
            return false;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let link = Arc::new(Link {
            state: Mutex::new(LinkState::default()),
            wake: Notify::new(),
        });
        link.state().queue.push_back(Queued::Message { kind, body });
        table.links.insert(to.clone(), link.clone());
        drop(table);
        runtime.spawn(self.clone().run(to.clone(), from.clone(), link));
        true
    }

    /// Notes that `to` refused a stream. At most [`MAX_LINKS`] refusals
    /// are remembered (expired ones are forgotten first); a peer not noted
    /// is asked again on its next message.
    fn refused(&self, to: &PeerUrl) {
        let mut table = self.table();
        let now = Instant::now();
        if table.refused.len() >= MAX_LINKS {
            table.refused.retain(|_, until| *until > now);
        }
        if table.refused.len() < MAX_LINKS {
            table.refused.insert(to.clone(), now + REFUSED_FOR);
        }
    }

    /// One link's life: connect, handshake, then write what is queued
    /// until it is idle, the peer goes or a write fails.
    async fn run(self, to: PeerUrl, from: PeerUrl, link: Arc<Link>) {
        let stop = self.stop.clone();
        let refused = tokio::select! {
            refused = self.open(&to, &from, &link) => refused,
            () = stop.cancelled() => false,
        };
        let left = {
            let mut state = link.state();
            state.closed = true;
            state.writer = None;
            std::mem::take(&mut state.queue)
        };
        {
            let mut table = self.table();
            if table.links.get(&to).is_some_and(|l| Arc::ptr_eq(l, &link)) {
                table.links.remove(&to);
            }
        }
        // What waited while a peer refused the stream (an older node, which
        // answered at once) goes as plain requests, within one timeout in
        // all; after any other end it is dropped, as gossip to a peer that
        // does not answer is (a request would fail alike).
        if !refused {
            return;
        }
        let send = async {
            for queued in left {
                let Queued::Message { kind, body } = queued else {
                    continue;
                };
                let _ = push_request(&self.http, &to, &from, kind, body)
                    .send()
                    .await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(self.timeout, send) => {}
            () = stop.cancelled() => {}
        }
    }

    /// Opens the link's stream and writes on it until it ends; `true`
    /// when the peer answered the upgrade with another status instead.
    async fn open(&self, to: &PeerUrl, from: &PeerUrl, link: &Link) -> bool {
        match tokio::time::timeout(self.timeout, handshake(to, from)).await {
            Ok(Ok(stream)) => {
                let ended = self.stream(to, stream, link).await;
                tracing::debug!(peer = %to, error = %ended, "gossip stream ended");
            }
            Ok(Err(Handshake::Refused(status))) => {
                tracing::debug!(peer = %to, status, "peer refused a gossip stream; plain HTTP");
                self.refused(to);
                return true;
            }
            Ok(Err(Handshake::Failed(e))) => {
                tracing::debug!(peer = %to, error = %e, "gossip stream not opened");
            }
            Err(_) => tracing::debug!(peer = %to, "gossip handshake timed out"),
        }
        false
    }

    /// Writes what `link` queues on `stream` until the link is idle for
    /// [`LINK_IDLE`], a write fails or the peer closes the stream; returns
    /// why it ended.
    async fn stream(&self, to: &PeerUrl, stream: TcpStream, link: &Link) -> io::Error {
        let (mut reader, writer) = stream.into_split();
        let peer = to.clone();
        let mut replies = tokio::spawn(async move {
            loop {
                match read_reply(&mut reader).await {
                    Ok((status, body)) => tracing::debug!(
                        %peer,
                        status,
                        answer = %String::from_utf8_lossy(&body),
                        "gossip refused"
                    ),
                    Err(e) => return e,
                }
            }
        });
        link.state().writer = Some(writer);
        let ended = loop {
            // Armed before the queue is looked at: a message queued after
            // the look wakes it.
            let woken = link.wake.notified();
            let next = {
                let mut state = link.state();
                if state.closed {
                    break io::Error::new(io::ErrorKind::BrokenPipe, "the stream broke");
                }
                match (state.queue.is_empty(), state.writer.take()) {
                    (false, Some(writer)) => state.queue.pop_front().map(|q| (q, writer)),
                    (_, writer) => {
                        state.writer = writer;
                        None
                    }
                }
            };
            if let Some((queued, mut writer)) = next {
                let bytes = match queued {
                    Queued::Message { kind, body } => frame(kind, &body),
                    Queued::Rest(rest) => rest,
                };
                match tokio::time::timeout(self.timeout, writer.write_all(&bytes)).await {
                    Ok(Ok(())) => link.state().writer = Some(writer),
                    Ok(Err(e)) => break e,
                    Err(_) => break io::Error::new(io::ErrorKind::TimedOut, "write timed out"),
                }
                continue;
            }
            tokio::select! {
                biased;
                ended = &mut replies => {
                    break ended.unwrap_or_else(|e| io::Error::other(e.to_string()));
                }
                idle = tokio::time::timeout(LINK_IDLE, woken) => {
                    if idle.is_ok() {
                        continue;
                    }
                    // Idle only if nothing was written at once meanwhile
                    // and nothing waits; then closed under the same lock,
                    // so no message is taken after the look.
                    let mut state = link.state();
                    if std::mem::take(&mut state.sent) || !state.queue.is_empty() {
                        continue;
                    }
                    state.closed = true;
                    break io::Error::new(io::ErrorKind::TimedOut, "idle");
                }
            }
        };
        replies.abort();
        let writer = {
            let mut state = link.state();
            state.closed = true;
            state.writer.take()
        };
        if let Some(mut writer) = writer {
            let _ = tokio::time::timeout(self.timeout, writer.shutdown()).await;
        }
        ended
    }
}

/// Why a stream was not opened.
#[derive(Debug)]
enum Handshake {
    /// The peer answered, with this status instead of 101.
    Refused(u16),
    /// No answer, or not HTTP.
    Failed(io::Error),
}

/// Connects to `to` and asks it for a gossip stream.
async fn handshake(to: &PeerUrl, from: &PeerUrl) -> Result<TcpStream, Handshake> {
    let url = reqwest::Url::parse(to.as_str())
        .map_err(|e| Handshake::Failed(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    // An IPv6 literal comes bracketed, as a URL writes it.
    let address = host.trim_start_matches('[').trim_end_matches(']');
    let mut stream = TcpStream::connect((address, port))
        .await
        .map_err(Handshake::Failed)?;
    stream.set_nodelay(true).map_err(Handshake::Failed)?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let request = format!(
        "POST {PATH} HTTP/1.1\r\nhost: {authority}\r\nupgrade: {PROTOCOL}\r\n\
         connection: upgrade\r\n{PEER_HEADER}: {}\r\ncontent-length: 0\r\n\r\n",
        from.as_str()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(Handshake::Failed)?;
    // The answer's head, byte by byte up to its blank line: nothing after
    // it may be consumed (frames follow on the same stream).
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HANDSHAKE_ANSWER {
            return Err(Handshake::Failed(io::Error::new(
                io::ErrorKind::InvalidData,
                "handshake answer too long",
            )));
        }
        head.push(stream.read_u8().await.map_err(Handshake::Failed)?);
    }
    let status = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.strip_prefix("HTTP/1.1 "))
        .and_then(|h| h.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            Handshake::Failed(io::Error::new(
                io::ErrorKind::InvalidData,
                "handshake answer is not HTTP/1.1",
            ))
        })?;
    if status != 101 {
        return Err(Handshake::Refused(status));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use crapcoin_core::network::PeerUrl;

    use super::{FrameError, Kind, Links, MAX_FRAME, frame, read_frame, read_reply, reply};

    const SECOND: Duration = Duration::from_secs(1);

    /// A listener on 127.0.0.1 standing for a peer, and its URL.
    async fn peer() -> (tokio::net::TcpListener, PeerUrl) {
        let (listener, url) = kit::http::loopback().await;
        (listener, url.parse().expect("url"))
    }

    /// The next link to `listener`, its handshake read and answered `101`.
    async fn upgraded(listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (mut stream, _) = listener.accept().await.expect("accepts");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.expect("handshake"));
        }
        stream
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            .await
            .expect("answered");
        stream
    }

    #[tokio::test]
    async fn frames_and_replies_read_back() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&frame(Kind::Block, b"{\"a\":1}"));
        wire.extend_from_slice(&frame(Kind::Tx, b"{}"));
        let mut reader = &wire[..];
        let (kind, body) = read_frame(&mut reader, SECOND, SECOND)
            .await
            .expect("frame");
        assert_eq!((kind, &body[..]), (Kind::Block, &b"{\"a\":1}"[..]));
        let (kind, body) = read_frame(&mut reader, SECOND, SECOND)
            .await
            .expect("frame");
        assert_eq!((kind, &body[..]), (Kind::Tx, &b"{}"[..]));
        assert!(matches!(
            read_frame(&mut reader, SECOND, SECOND).await,
            Err(FrameError::Ended)
        ));
        let answer = reply(400, b"{\"reason\":\"malformed\"}");
        let (status, body) = read_reply(&mut &answer[..]).await.expect("reply");
        assert_eq!(
            (status, &body[..]),
            (400, &b"{\"reason\":\"malformed\"}"[..])
        );
    }

    #[tokio::test]
    async fn a_long_or_unknown_frame_is_refused_before_its_body() {
        let long = u32::try_from(MAX_FRAME + 1).expect("fits").to_be_bytes();
        let mut reader = &long[..];
        assert!(matches!(
            read_frame(&mut reader, SECOND, SECOND).await,
            Err(FrameError::Length(n)) if n == MAX_FRAME + 1
        ));
        let mut unknown = 3u32.to_be_bytes().to_vec();
        unknown.extend_from_slice(b"X{}");
        assert!(matches!(
            read_frame(&mut &unknown[..], SECOND, SECOND).await,
            Err(FrameError::Kind(b'X'))
        ));
        let zero = 0u32.to_be_bytes();
        assert!(matches!(
            read_frame(&mut &zero[..], SECOND, SECOND).await,
            Err(FrameError::Length(0))
        ));
    }

    /// Messages written at once by the sender and messages queued (a
    /// peer that does not read fills the socket: writes go partial, then
    /// queue, then are refused) reach the peer whole and in order.
    #[tokio::test]
    async fn written_at_once_or_queued_messages_arrive_whole_and_in_order() {
        let (listener, to) = peer().await;
        let (start_reading, reading) = tokio::sync::oneshot::channel::<()>();
        let reader = tokio::spawn(async move {
            let mut stream = upgraded(&listener).await;
            let mut bodies = Vec::new();
            // The first message, then nothing read until told.
            bodies.push(
                read_frame(&mut stream, SECOND, SECOND)
                    .await
                    .expect("first")
                    .1,
            );
            let _ = reading.await;
            while let Ok((_, body)) = read_frame(&mut stream, SECOND, SECOND).await {
                bodies.push(body);
            }
            bodies
        });
        let http = reqwest::Client::new();
        let links = Links::new(http, Duration::from_secs(10));
        let from: PeerUrl = "http://127.0.0.1:1".parse().expect("url");
        let body = |i: usize| -> Bytes {
            let mut body = format!("{i:08}").into_bytes();
            body.resize(4000, b'a' + (i % 26) as u8);
            body.into()
        };
        assert!(links.post(&to, &from, Kind::Block, body(0)));
        // The link is open and idle once the first message is written.
        let started = std::time::Instant::now();
        while links.table().links.get(&to).is_none_or(|l| {
            let state = l.state();
            state.writer.is_none() || !state.queue.is_empty()
        }) {
            assert!(started.elapsed() < 10 * SECOND, "the link never opened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut taken = vec![0];
        for i in 1..3000 {
            if links.post(&to, &from, Kind::Block, body(i)) {
                taken.push(i);
            }
        }
        let queued = links.table().links[&to].state().queue.len();
        assert!(queued > 0, "the socket never filled");
        assert!(taken.len() < 3000, "the queue never filled");
        let _ = start_reading.send(());
        let bodies = tokio::time::timeout(30 * SECOND, reader)
            .await
            .expect("read in time")
            .expect("peer ran");
        let got: Vec<Bytes> = taken.iter().map(|&i| body(i)).collect();
        assert_eq!(bodies.len(), got.len());
        assert!(bodies == got, "a message arrived altered or out of order");
    }

    /// A stopped node's links end at once (the peer sees the stream
    /// close) and take nothing more.
    #[tokio::test]
    async fn stopped_links_end_and_take_nothing() {
        let (listener, to) = peer().await;
        let reader = tokio::spawn(async move {
            let mut stream = upgraded(&listener).await;
            let first = read_frame(&mut stream, SECOND, SECOND)
                .await
                .expect("first");
            // Then the stream ends: closed by the sender, long before any
            // idle timeout.
            let end = read_frame(&mut stream, 10 * SECOND, SECOND).await;
            (first.1, end)
        });
        let links = Links::new(reqwest::Client::new(), Duration::from_secs(10));
        let from: PeerUrl = "http://127.0.0.1:1".parse().expect("url");
        assert!(links.post(&to, &from, Kind::Block, Bytes::from_static(b"{}")));
        let started = std::time::Instant::now();
        while links.table().links[&to].state().writer.is_none() {
            assert!(started.elapsed() < 10 * SECOND, "the link never opened");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        links.stop();
        assert!(!links.post(&to, &from, Kind::Block, Bytes::from_static(b"{}")));
        let (first, end) = tokio::time::timeout(5 * SECOND, reader)
            .await
            .expect("the stream ended in time")
            .expect("peer ran");
        assert_eq!(&first[..], b"{}");
        assert!(matches!(end, Err(FrameError::Ended)), "{end:?}");
    }

    #[tokio::test]
    async fn a_frame_that_stops_midway_times_out() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let whole = frame(Kind::Block, b"{\"a\":1}");
        tokio::io::AsyncWriteExt::write_all(&mut client, &whole[..6])
            .await
            .expect("written");
        let late = Duration::from_millis(50);
        assert!(matches!(
            read_frame(&mut server, SECOND, late).await,
            Err(FrameError::Timeout(t)) if t == late
        ));
        drop(client);
    }
}
