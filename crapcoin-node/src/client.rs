//! [`Client`]: the reqwest implementation of [`crapcoin_core::Network`]
//! (calls to peers) and [`crapcoin_core::Tracker`] (calls to Sauron).
//!
//! Every call carries its own timeout (the engine adds another around it),
//! and every response body is read chunk by chunk up to a cap chosen for
//! that call before any parsing, so a peer answering gigabytes costs at
//! most the cap. Blocks in answers are checked against the hash they claim.

use std::time::Duration;

use async_trait::async_trait;
use crapcoin_core::block::{BlockJson, MAX_BLOCK_JSON_LEN};
use crapcoin_core::network::{BlockAck, NetError, Payload, PeerInfo, PeerUrl, Status};
use crapcoin_core::{Block, BlockHash};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The header a pushed block carries: the sender's URL, where the receiver
/// fetches missing ancestors.
pub const PEER_HEADER: &str = "x-crapcoin-peer";

/// Largest `/status` answer read.
const MAX_STATUS_BYTES: usize = 8 * 1024;
/// Largest answer to a block push or an announcement.
const MAX_ACK_BYTES: usize = 4 * 1024;
/// Largest peer list read (the engine keeps at most 64 URLs of it anyway).
const MAX_PEERS_BYTES: usize = 128 * 1024;
/// Longest chain asked for with `GET /blockchain` (the engine switches to
/// pages above its page limit); a bigger answer is refused unread.
const MAX_CHAIN_BLOCKS: usize = 1024;

/// The bytes a JSON array of `n` blocks may take at most.
fn blocks_cap(n: usize) -> usize {
    n.saturating_add(1).saturating_mul(MAX_BLOCK_JSON_LEN + 1)
}

/// Peers and the tracker over HTTP. Cheap to clone (one shared connection
/// pool).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
}

impl Client {
    /// A client whose calls each time out after `timeout`.
    ///
    /// # Errors
    ///
    /// When reqwest cannot build a client (no TLS backend is needed, so
    /// this does not happen in practice).
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(2)
            .pool_idle_timeout(Duration::from_secs(30))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, timeout })
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, NetError> {
        request.send().await.map_err(net_error)
    }

    /// GETs `url` and parses a JSON answer of at most `cap` bytes.
    async fn get_json<T: DeserializeOwned>(&self, url: String, cap: usize) -> Result<T, NetError> {
        let response = self.send(self.http.get(url)).await?;
        let bytes = read_ok(response, cap).await?;
        serde_json::from_slice(&bytes).map_err(|e| NetError::BadResponse(e.to_string()))
    }

    async fn get_blocks(&self, url: String, max_blocks: usize) -> Result<Vec<Block>, NetError> {
        let response = self.send(self.http.get(url)).await?;
        let bytes = read_ok(response, blocks_cap(max_blocks)).await?;
        parse_blocks(&bytes, max_blocks)
    }
}

/// Parses a JSON array of at most `max` blocks, checking each claimed hash.
///
/// # Errors
///
/// [`NetError::BadResponse`] for bad JSON, too many blocks or a hash that
/// does not match its block.
pub fn parse_blocks(bytes: &[u8], max: usize) -> Result<Vec<Block>, NetError> {
    let wire: Vec<BlockJson> =
        serde_json::from_slice(bytes).map_err(|e| NetError::BadResponse(e.to_string()))?;
    if wire.len() > max {
        return Err(NetError::BadResponse(format!(
            "{} blocks, at most {max} asked",
            wire.len()
        )));
    }
    wire.into_iter()
        .map(|b| {
            b.into_block()
                .map_err(|e| NetError::BadResponse(e.to_string()))
        })
        .collect()
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved bytes).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn net_error(e: reqwest::Error) -> NetError {
    if e.is_timeout() {
        NetError::Timeout
    } else if e.is_connect() || e.is_request() {
        NetError::Unreachable(e.to_string())
    } else {
        NetError::BadResponse(e.to_string())
    }
}

/// Reads at most `cap` bytes of body; more is an error, not a truncation.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, NetError> {
    if let Some(len) = response.content_length()
        && len > cap as u64
    {
        return Err(NetError::BadResponse(format!(
            "answer of {len} bytes, at most {cap} read"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(net_error)? {
        if body.len() + chunk.len() > cap {
            return Err(NetError::BadResponse(format!("answer over {cap} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error body every CrapCoin service answers with.
#[derive(Deserialize)]
struct ErrorBody {
    reason: String,
}

/// The body of a 2xx answer, or [`NetError::Refused`] with the reason the
/// peer named.
async fn read_ok(response: reqwest::Response, cap: usize) -> Result<Vec<u8>, NetError> {
    let status = response.status();
    let body = read_capped(response, cap).await?;
    if status.is_success() {
        return Ok(body);
    }
    let reason = serde_json::from_slice::<ErrorBody>(&body)
        .map(|e| e.reason)
        .unwrap_or_else(|_| "unknown".to_owned());
    // The reason is shown in logs and metrics: keep it short and tame.
    let reason: String = reason
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    Err(NetError::Refused {
        status: status.as_u16(),
        reason,
    })
}

/// What `POST /block` answers on success.
#[derive(Deserialize)]
struct AckBody {
    result: BlockAck,
}

#[async_trait]
impl crapcoin_core::Network for Client {
    async fn push_block(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, NetError> {
        let body = match payload {
            Payload::Block(block) => {
                serde_json::to_vec(block).map_err(|e| NetError::BadResponse(e.to_string()))?
            }
            Payload::Raw(bytes) => bytes.clone(),
        };
        let request = self
            .http
            .post(format!("{to}/block"))
            .header(PEER_HEADER, from.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let response = self.send(request).await?;
        let bytes = read_ok(response, MAX_ACK_BYTES).await?;
        let ack: AckBody =
            serde_json::from_slice(&bytes).map_err(|e| NetError::BadResponse(e.to_string()))?;
        Ok(ack.result)
    }

    async fn status(&self, to: &PeerUrl) -> Result<Status, NetError> {
        self.get_json(format!("{to}/status"), MAX_STATUS_BYTES)
            .await
    }

    async fn blocks(&self, to: &PeerUrl, from: u64, limit: usize) -> Result<Vec<Block>, NetError> {
        self.get_blocks(format!("{to}/blocks?from={from}&limit={limit}"), limit)
            .await
    }

    async fn chain(&self, to: &PeerUrl) -> Result<Vec<Block>, NetError> {
        self.get_blocks(format!("{to}/blockchain"), MAX_CHAIN_BLOCKS)
            .await
    }

    async fn block(&self, to: &PeerUrl, hash: &BlockHash) -> Result<Option<Block>, NetError> {
        let response = self
            .send(self.http.get(format!("{to}/block/{hash}")))
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let bytes = read_ok(response, MAX_BLOCK_JSON_LEN).await?;
        let block = BlockJson::parse(&bytes).map_err(|e| NetError::BadResponse(e.to_string()))?;
        if block.hash() != *hash {
            return Err(NetError::BadResponse("answered another block".into()));
        }
        Ok(Some(block))
    }

    async fn peers(&self, to: &PeerUrl) -> Result<Vec<PeerUrl>, NetError> {
        let urls: Vec<serde_json::Value> = self
            .get_json(format!("{to}/peers"), MAX_PEERS_BYTES)
            .await?;
        // One bad entry does not spoil the others.
        Ok(urls
            .into_iter()
            .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
            .collect())
    }

    async fn announce(&self, to: &PeerUrl, me: &PeerUrl) -> Result<(), NetError> {
        let request = self
            .http
            .post(format!("{to}/peers"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::json!({ "url": me }).to_string());
        let response = self.send(request).await?;
        read_ok(response, MAX_ACK_BYTES).await?;
        Ok(())
    }
}

/// Sauron as the tracker: `POST {base}/api/peers` registers,
/// `GET {base}/api/peers?count=K` samples live nodes.
#[derive(Debug, Clone)]
pub struct Tracker {
    client: Client,
    base: PeerUrl,
}

impl Tracker {
    /// The tracker at `base` (e.g. `http://127.0.0.1:7000`).
    pub fn new(client: Client, base: PeerUrl) -> Self {
        Self { client, base }
    }
}

#[async_trait]
impl crapcoin_core::Tracker for Tracker {
    async fn register(&self, me: &PeerInfo) -> Result<(), NetError> {
        let request = self
            .client
            .http
            .post(format!("{}/api/peers", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(me).map_err(|e| NetError::BadResponse(e.to_string()))?);
        let response = self.client.send(request).await?;
        read_ok(response, MAX_ACK_BYTES).await?;
        Ok(())
    }

    async fn sample(&self, me: &PeerUrl, count: usize) -> Result<Vec<PeerUrl>, NetError> {
        let request = self.client.http.get(format!(
            "{}/api/peers?count={count}&exclude={}",
            self.base,
            query_escape(me.as_str())
        ));
        let response = self.client.send(request).await?;
        let bytes = read_ok(response, MAX_PEERS_BYTES).await?;
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|e| NetError::BadResponse(e.to_string()))?;
        // Entries may be bare URLs or node records with a `url` field.
        Ok(entries
            .iter()
            .filter_map(|v| v.as_str().or_else(|| v.get("url").and_then(|u| u.as_str())))
            .filter_map(|s| s.parse::<PeerUrl>().ok())
            .filter(|u| u != me)
            .take(count)
            .collect())
    }
}
