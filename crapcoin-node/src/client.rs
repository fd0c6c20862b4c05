//! [`Client`]: the reqwest implementation of [`crapcoin_core::Network`]
//! (calls to peers) and [`crapcoin_core::Tracker`] (calls to Sauron).
//!
//! Every call carries its own timeout (the engine adds another around it),
//! and every response body is read chunk by chunk up to a cap chosen for
//! that call before any parsing, so a peer answering gigabytes costs at
//! most the cap. Blocks in answers are checked against the hash they claim.
//!
//! Every method is one call; a sync's pipelining (fetching page k+1 while
//! page k is checked) is the engine's, which knows which page comes next.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crapcoin_core::block::{BlockJson, MAX_BLOCK_JSON_LEN};
use crapcoin_core::network::{
    BadResponse, BlockAck, NetError, Outgoing, Payload, PeerInfo, PeerUrl, Status, TxAck,
    Unreachable,
};
use crapcoin_core::{Block, BlockHash, Transaction};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::gossip::{self, Kind, Links};

pub use crate::gossip::PEER_HEADER;

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

/// Peers and the tracker over HTTP, gossip over [`Links`] (one stream per
/// peer, see [`crate::gossip`]). Cheap to clone (one shared connection
/// pool and one table of links).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    links: Links,
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
        let links = Links::new(http.clone(), timeout);
        Ok(Self {
            http,
            links,
            timeout,
        })
    }

    /// Ends the gossip links (the node stops): what waits on them is
    /// dropped, and nothing more is taken.
    pub fn stop_gossip(&self) {
        self.links.stop();
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
        serde_json::from_slice(&bytes).map_err(malformed)
    }

    async fn get_blocks(&self, url: String, max_blocks: usize) -> Result<Vec<Block>, NetError> {
        let response = self.send(self.http.get(url)).await?;
        let bytes = read_ok(response, blocks_cap(max_blocks)).await?;
        // Parsed on the runtime thread: a page of 500 blocks is about a
        // millisecond of JSON and hashing. Handing it to a blocking-pool
        // thread cost more than that in a sync, where a third busy thread
        // (beside this one adding and storing pages, and the one checking
        // them) waited for a core: syncing 1,000 blocks took 22 ms instead
        // of 25 (medians of 25 runs, 2 cores).
        parse_blocks(&bytes, max_blocks)
    }
}

/// Parses a JSON array of at most `max` blocks, checking each claimed hash.
///
/// # Errors
///
/// [`NetError::BadResponse`]: [`BadResponse::Malformed`] for bad JSON,
/// [`BadResponse::TooMany`] for more than `max` blocks,
/// [`BadResponse::InvalidBlock`] for a hash that does not match its block.
pub fn parse_blocks(bytes: &[u8], max: usize) -> Result<Vec<Block>, NetError> {
    let wire: Vec<BlockJson> = serde_json::from_slice(bytes).map_err(malformed)?;
    if wire.len() > max {
        return Err(BadResponse::TooMany {
            asked: max,
            got: wire.len(),
        }
        .into());
    }
    wire.into_iter()
        .map(|b| {
            b.into_block()
                .map_err(|e| BadResponse::InvalidBlock(e).into())
        })
        .collect()
}

/// An answer that is not the JSON the call expects.
fn malformed(e: serde_json::Error) -> NetError {
    BadResponse::Malformed {
        detail: e.to_string(),
    }
    .into()
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

/// A transport failure: nobody took the connection, it broke, or the
/// answer could not be read.
fn net_error(e: reqwest::Error) -> NetError {
    if e.is_timeout() {
        NetError::Timeout
    } else if e.is_connect() {
        Unreachable::NoListener.into()
    } else if e.is_request() || e.is_body() {
        Unreachable::ConnectionLost.into()
    } else if e.is_decode() {
        BadResponse::Malformed {
            detail: e.to_string(),
        }
        .into()
    } else {
        Unreachable::Transport {
            detail: e.to_string(),
        }
        .into()
    }
}

/// Reads at most `cap` bytes of body; more is an error, not a truncation.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, NetError> {
    if let Some(len) = response.content_length()
        && len > cap as u64
    {
        return Err(BadResponse::TooLarge { cap }.into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(net_error)? {
        if body.len() + chunk.len() > cap {
            return Err(BadResponse::TooLarge { cap }.into());
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
/// peer named for a 4xx or 5xx, or [`BadResponse::UnexpectedStatus`] for
/// anything else (redirects are not followed).
async fn read_ok(response: reqwest::Response, cap: usize) -> Result<Vec<u8>, NetError> {
    let status = response.status();
    if !status.is_success() && !status.is_client_error() && !status.is_server_error() {
        return Err(BadResponse::UnexpectedStatus(status.as_u16()).into());
    }
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

/// What `POST /transactions` answers a peer's relay.
#[derive(Deserialize)]
struct TxAckBody {
    result: TxAck,
}

/// A block's body on the wire.
fn block_body(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::Block(block) => {
            serde_json::to_vec(block).expect("a block serialises: hashes, numbers, hex")
        }
        Payload::Raw(bytes) => bytes.clone(),
    }
}

#[async_trait]
impl crapcoin_core::Network for Client {
    /// Gossip goes on the peer's stream ([`crate::gossip`]); handed back
    /// (to be pushed as `POST /block`) when the link does not take it.
    fn post_block(&self, message: Outgoing, from: &PeerUrl) -> Option<Outgoing> {
        let body = block_body(&message.payload);
        if self.links.post(&message.to, from, Kind::Block, body.into()) {
            return None;
        }
        Some(message)
    }

    fn post_tx(&self, to: &PeerUrl, from: &PeerUrl, tx: &Arc<Transaction>) -> bool {
        let body = serde_json::to_vec(&**tx).expect("a transaction serialises: hex and numbers");
        self.links.post(to, from, Kind::Tx, body.into())
    }

    async fn push_block(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, NetError> {
        let request = gossip::push_request(&self.http, to, from, Kind::Block, block_body(payload));
        let response = self.send(request).await?;
        let bytes = read_ok(response, MAX_ACK_BYTES).await?;
        let ack: AckBody = serde_json::from_slice(&bytes).map_err(malformed)?;
        Ok(ack.result)
    }

    async fn push_tx(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        tx: &Transaction,
    ) -> Result<TxAck, NetError> {
        let body = serde_json::to_vec(tx).expect("a transaction serialises: hex and numbers");
        let request = gossip::push_request(&self.http, to, from, Kind::Tx, body);
        let response = self.send(request).await?;
        let bytes = read_ok(response, MAX_ACK_BYTES).await?;
        let ack: TxAckBody = serde_json::from_slice(&bytes).map_err(malformed)?;
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
        let block = BlockJson::parse(&bytes).map_err(BadResponse::InvalidBlock)?;
        if block.hash() != *hash {
            return Err(BadResponse::WrongBlock {
                asked: *hash,
                got: block.hash(),
            }
            .into());
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

/// Sauron as the tracker: `POST {base}/api/peers` with the node's
/// [`PeerInfo`] (`url`, `address`, `name`, `behaviour`) registers it;
/// `GET {base}/api/peers?count=K&exclude=URL` samples live nodes other than
/// the caller. The answer may list bare URLs or node records with a `url`
/// field; entries that are neither are skipped, and the caller's own URL
/// is filtered out again here.
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
            .body(serde_json::to_vec(me).expect("peer info serialises: strings and hex"));
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
        let entries: Vec<serde_json::Value> = serde_json::from_slice(&bytes).map_err(malformed)?;
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

#[cfg(test)]
mod tests {
    use super::{
        BadResponse, Client, Duration, MAX_STATUS_BYTES, NetError, Payload, PeerUrl, parse_blocks,
        query_escape,
    };
    use crapcoin_core::{Forge, Network as _, Params, ValidationError};
    use warp::Filter;

    /// Serves `routes` on 127.0.0.1:0 until the returned sender is dropped.
    async fn serve<F>(routes: F) -> (PeerUrl, tokio::sync::oneshot::Sender<()>)
    where
        F: Filter + Clone + Send + Sync + 'static,
        F::Extract: warp::Reply,
    {
        let (listener, url) = kit::http::loopback().await;
        (
            url.parse().expect("url"),
            kit::http::serve(listener, routes),
        )
    }

    #[tokio::test]
    async fn oversize_answers_are_refused_unread() {
        let huge = "x".repeat(MAX_STATUS_BYTES + 1);
        let routes = warp::path!("status").map(move || huge.clone());
        let (url, _stop) = serve(routes).await;
        let client = Client::new(Duration::from_secs(2)).expect("client");
        let err = client.status(&url).await.expect_err("refused");
        assert!(
            matches!(
                &err,
                NetError::BadResponse(BadResponse::TooLarge {
                    cap: MAX_STATUS_BYTES
                })
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn slow_peers_time_out() {
        let routes = warp::path!("peers").then(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "[]"
        });
        let (url, _stop) = serve(routes).await;
        let client = Client::new(Duration::from_millis(200)).expect("client");
        let started = std::time::Instant::now();
        assert_eq!(client.peers(&url).await, Err(NetError::Timeout));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn refusals_carry_the_peer_reason() {
        let routes = warp::path!("block").map(|| {
            warp::reply::with_status(
                r#"{"error": "no", "reason": "bad_pow"}"#,
                warp::http::StatusCode::BAD_REQUEST,
            )
        });
        let (url, _stop) = serve(routes).await;
        let client = Client::new(Duration::from_secs(2)).expect("client");
        let params = Params::with_difficulty(4);
        let block = Forge::new(&params, &params.genesis().header).mine();
        let me: PeerUrl = "http://127.0.0.1:9".parse().expect("url");
        assert_eq!(
            client.push_block(&url, &me, &Payload::Block(block)).await,
            Err(NetError::Refused {
                status: 400,
                reason: "bad_pow".into()
            })
        );
    }

    #[test]
    fn pages_are_checked_for_size_and_hashes() {
        let params = Params::with_difficulty(4);
        let b1 = Forge::new(&params, &params.genesis().header).mine();
        let b2 = Forge::new(&params, &b1.header).mine();
        let json = serde_json::to_vec(&vec![b1.clone(), b2.clone()]).expect("json");
        assert_eq!(parse_blocks(&json, 2), Ok(vec![b1.clone(), b2]));
        assert_eq!(
            parse_blocks(&json, 1),
            Err(NetError::BadResponse(BadResponse::TooMany {
                asked: 1,
                got: 2
            }))
        );
        let mut lying = serde_json::to_value(vec![b1]).expect("json");
        lying[0]["header"]["nonce"] = serde_json::json!(12345);
        let lying = serde_json::to_vec(&lying).expect("json");
        assert!(matches!(
            parse_blocks(&lying, 2),
            Err(NetError::BadResponse(BadResponse::InvalidBlock(
                ValidationError::BadHash { .. }
            )))
        ));
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("http://a:1/x"), "http%3A%2F%2Fa%3A1%2Fx");
    }
}
