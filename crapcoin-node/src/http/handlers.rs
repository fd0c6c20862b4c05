//! What each route does. Handlers never fail: errors are answers
//! ([`ApiError`]), so every outcome is counted and reported alike.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use crapcoin_core::network::{BlockAck, PeerUrl};
use crapcoin_core::{Address, BlockHash, Transaction};
use subtle::ConstantTimeEq;
use warp::Reply;
use warp::http::StatusCode;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Response;

use super::App;
use super::models::{
    AckAnswer, AckedItem, AckedPage, AckedQuery, Announce, ApiError, AutoRequest, BalanceAnswer,
    BlocksQuery, MAX_ACKED_LIMIT, MAX_MINE_COUNT, MineRequest, TransferRequest, TxAckAnswer, json,
    parse_json,
};
use super::server::{Caller, GossipOffer};
use crate::gossip;

pub(super) fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

fn json_bytes(bytes: Bytes) -> Response {
    let mut response = Response::new(bytes.into());
    response.headers_mut().insert(
        CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn internal(e: impl ToString) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e)
}

/// `GET /status`.
pub async fn status(app: Arc<App>) -> Response {
    json(&app.handle.serve_status().await)
}

/// `GET /blockchain`: the whole best chain, genesis first (cached JSON).
pub async fn blockchain(app: Arc<App>) -> Response {
    let blocks = app.handle.chain().await;
    answer(app.chain_json(blocks).map(json_bytes).map_err(internal))
}

/// `GET /blocks?from=H&limit=N`: a page of the best chain, capped at the
/// page limit; empty past the tip.
pub async fn blocks(query: BlocksQuery, app: Arc<App>) -> Response {
    let cap = app.handle.config().page_limit;
    let limit = query
        .limit
        .map_or(cap, |l| usize::try_from(l).unwrap_or(usize::MAX).min(cap));
    let page = app.handle.blocks(query.from.unwrap_or(0), limit).await;
    json(&page)
}

/// `GET /block/{hash}`: 400 for a hash that is not 64 hex digits, 404 for
/// an unknown one.
pub async fn block(hash: String, app: Arc<App>) -> Response {
    answer(
        async {
            let hash: BlockHash = hash
                .parse()
                .map_err(|e| ApiError::bad_request("bad_hash_format", e))?;
            match app.handle.block(&hash).await {
                Some(block) => Ok(json(&block)),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_block",
                    format!("no block {hash}"),
                )),
            }
        }
        .await,
    )
}

/// The peer a gossiped block names in its header, when that name is
/// believable: a URL whose host, if it is an IP address, is the caller's.
/// Otherwise anyone could get an honest node struck (and banned) by
/// sending junk in its name.
fn claimed_peer(header: Option<&str>, caller: Option<Caller>) -> Result<Option<PeerUrl>, ApiError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let url: PeerUrl = header
        .parse()
        .map_err(|e| ApiError::bad_request("bad_peer_url", e))?;
    let authority = url
        .as_str()
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    if let (Some(Caller(caller)), Ok(claimed)) = (caller, authority.parse::<SocketAddr>())
        && claimed.ip() != caller.ip()
    {
        tracing::debug!(%url, %caller, "peer header names another host; ignored");
        return Ok(None);
    }
    Ok(Some(url))
}

/// Lets a block's relay leave before the answer to its sender: the next
/// node waits for the relay, the sender for nothing. On one thread the
/// gossip sender, its push and the client's connection each run once
/// (three turns) before this task's answer is written; answered first,
/// the sender's wake-up came before the next node's on the path of every
/// hop (BENCHMARKS.md, issue 13).
async fn relay_first() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
}

/// `POST /block`: gossip. Answers `accepted`, `duplicate`, `orphan` or
/// `ignored`, or the reason the block was refused.
pub async fn post_block(
    peer: Option<String>,
    caller: Option<Caller>,
    body: Bytes,
    app: Arc<App>,
) -> Response {
    answer(
        async {
            let from = claimed_peer(peer.as_deref(), caller)?;
            let result = app.handle.receive_block_json(&body, from).await?;
            if result == BlockAck::Accepted {
                relay_first().await;
            }
            Ok(json(&AckAnswer { result }))
        }
        .await,
    )
}

/// `POST /gossip`: opens a gossip stream ([`crate::gossip`]): `101` to a
/// request the server can upgrade (it asks for [`gossip::PROTOCOL`]),
/// `426 upgrade_required` to any other; a peer header naming another host
/// is refused here as on `POST /block`, before any frame.
pub async fn gossip(
    offer: Option<GossipOffer>,
    peer: Option<String>,
    caller: Option<Caller>,
) -> Response {
    answer(
        async {
            if offer.is_none() {
                return Err(ApiError::new(
                    StatusCode::UPGRADE_REQUIRED,
                    "upgrade_required",
                    format!(
                        "POST {} opens a stream: send Upgrade: {} and Connection: upgrade",
                        gossip::PATH,
                        gossip::PROTOCOL
                    ),
                ));
            }
            claimed_peer(peer.as_deref(), caller)?;
            let mut response = Response::new(Default::default());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            headers.insert(
                warp::http::header::UPGRADE,
                warp::http::HeaderValue::from_static(gossip::PROTOCOL),
            );
            headers.insert(
                warp::http::header::CONNECTION,
                warp::http::HeaderValue::from_static("upgrade"),
            );
            Ok(response)
        }
        .await,
    )
}

/// `GET /peers`.
pub async fn peers(app: Arc<App>) -> Response {
    json(&app.handle.peers().await)
}

/// `POST /peers {"url"}`: a node announcing itself; kept only if it
/// answers with our genesis, is not us and not banned.
pub async fn announce(body: Bytes, app: Arc<App>) -> Response {
    answer(
        async {
            let Announce { url } = parse_json(&body)?;
            app.handle.announce(url).await?;
            Ok(json(&serde_json::json!({ "result": "added" })))
        }
        .await,
    )
}

/// `POST /transactions`: a signed transaction for this node to mine, or,
/// with the peer header, one a peer relays: answered `accepted`,
/// `duplicate` or `ignored`, or the reason it was refused (junk costs the
/// peer a strike).
pub async fn submit_transaction(
    peer: Option<String>,
    caller: Option<Caller>,
    body: Bytes,
    app: Arc<App>,
) -> Response {
    answer(
        async {
            if let Some(from) = claimed_peer(peer.as_deref(), caller)? {
                let result = app.handle.receive_tx_json(&body, Some(from)).await?;
                return Ok(json(&TxAckAnswer { result }));
            }
            let tx: Transaction = parse_json(&body)?;
            let txid = app.handle.submit_transaction(tx).await?;
            Ok(json(&serde_json::json!({ "txid": txid })))
        }
        .await,
    )
}

/// `GET /transfers/acknowledged?after=SEQ&limit=N` (public): the
/// transfers this node acknowledged, from its store, oldest first, at most
/// [`MAX_ACKED_LIMIT`] a page; `next` is the cursor of the next page. A
/// limit outside 1..=MAX is `400 bad_limit`; a query that does not parse
/// is `400 bad_query`.
pub async fn acknowledged(query: AckedQuery, app: Arc<App>) -> Response {
    answer(
        async {
            let limit = query.limit.unwrap_or(MAX_ACKED_LIMIT);
            if limit == 0 || limit > MAX_ACKED_LIMIT {
                return Err(ApiError::bad_request(
                    "bad_limit",
                    format!("limit must be 1..={MAX_ACKED_LIMIT}"),
                ));
            }
            let limit = usize::try_from(limit).expect("at most MAX_ACKED_LIMIT");
            let transfers = app
                .handle
                .acknowledged(query.after.unwrap_or(0), limit)
                .await
                .map_err(internal)?;
            let ids: Vec<_> = transfers.iter().map(|t| t.id).collect();
            let pending = app.handle.pending(&ids);
            let next = (transfers.len() == limit)
                .then(|| transfers.last().map(|t| t.seq))
                .flatten();
            Ok(json(&AckedPage {
                transfers: transfers
                    .iter()
                    .zip(pending)
                    .map(|(t, pending)| AckedItem::new(t, pending))
                    .collect(),
                next,
            }))
        }
        .await,
    )
}

/// `GET /balance/{address}`.
pub async fn balance(address: String, app: Arc<App>) -> Response {
    answer((|| {
        let address: Address = address
            .parse()
            .map_err(|e| ApiError::bad_request("bad_address", e))?;
        let account = app.handle.balance(&address);
        Ok(json(&BalanceAnswer {
            address,
            balance: account.balance,
            nonce: account.nonce,
        }))
    })())
}

/// The media type of what `prometheus-client` renders: OpenMetrics text
/// (counters' `# TYPE` lines name the family without `_total`, and the
/// text ends with `# EOF`), which Prometheus scrapes as such.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`: OpenMetrics text.
pub async fn metrics(app: Arc<App>) -> Response {
    let text = app.metrics.render(&app.handle);
    let mut response = Response::new(text.into());
    response.headers_mut().insert(
        CONTENT_TYPE,
        warp::http::HeaderValue::from_static(METRICS_CONTENT_TYPE),
    );
    response
}

/// Checks `Authorization: Bearer TOKEN` in constant time.
pub(super) fn authorize(app: &App, header: Option<&str>) -> Result<(), ApiError> {
    let unauthorized = |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", why);
    let Some(token) = &app.admin_token else {
        return Err(unauthorized(
            "admin routes are disabled (no admin token set)",
        ));
    };
    let given = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("missing bearer token"))?;
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(unauthorized("wrong token"))
    }
}

/// `POST /transfer {"to", "amount"}` (admin): signs from the node's
/// wallet, mines, broadcasts; answers the block's `hash` and `height`.
pub async fn transfer(auth: Option<String>, body: Bytes, app: Arc<App>) -> Response {
    answer(
        async {
            authorize(&app, auth.as_deref())?;
            let TransferRequest { to, amount } = parse_json(&body)?;
            let mined = app.handle.transfer(to, amount).await?;
            Ok(json(&mined))
        }
        .await,
    )
}

/// `POST /mine` (admin), optional body `{"count": N}`: mines coinbase-only
/// blocks; answers the last one's `hash` and `height`.
pub async fn mine(auth: Option<String>, body: Bytes, app: Arc<App>) -> Response {
    answer(
        async {
            authorize(&app, auth.as_deref())?;
            let request: MineRequest = if body.is_empty() {
                MineRequest::default()
            } else {
                parse_json(&body)?
            };
            let count = request.count.unwrap_or(1);
            if count == 0 || count > MAX_MINE_COUNT {
                return Err(ApiError::bad_request(
                    "bad_count",
                    format!("count must be 1..={MAX_MINE_COUNT}"),
                ));
            }
            let mut last = app.handle.mine().await?;
            for _ in 1..count {
                last = app.handle.mine().await?;
            }
            Ok(json(&last))
        }
        .await,
    )
}

/// `POST /admin/peers {"url"}` (admin): adds a peer as the operator asks
/// (same checks as an announcement) and announces this node to it.
pub async fn add_peer(auth: Option<String>, body: Bytes, app: Arc<App>) -> Response {
    answer(
        async {
            authorize(&app, auth.as_deref())?;
            let Announce { url } = parse_json(&body)?;
            app.handle.add_peer(url).await?;
            Ok(json(&serde_json::json!({ "result": "added" })))
        }
        .await,
    )
}

/// `POST /admin/auto {"on": bool}` (admin): pauses or resumes auto mode
/// (the launcher pauses it to let a network settle); answers `{"auto"}`,
/// whether it now runs. 409 when asked to resume a node launched without
/// auto mode.
pub async fn set_auto(auth: Option<String>, body: Bytes, app: Arc<App>) -> Response {
    answer(
        async {
            authorize(&app, auth.as_deref())?;
            let AutoRequest { on } = parse_json(&body)?;
            let now = app.handle.set_auto(on);
            if on && !now {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "auto_not_configured",
                    "this node was started without auto mode (--auto)",
                ));
            }
            Ok(json(&serde_json::json!({ "auto": now })))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::{Caller, claimed_peer};

    fn caller(ip: &str) -> Option<Caller> {
        Some(Caller(format!("{ip}:5000").parse().expect("addr")))
    }

    #[test]
    fn a_peer_header_naming_another_host_is_not_believed() {
        let cases = [
            ("no header", None, caller("127.0.0.1"), Ok(None)),
            (
                "same host",
                Some("http://127.0.0.1:9"),
                caller("127.0.0.1"),
                Ok(Some("http://127.0.0.1:9")),
            ),
            (
                "another host",
                Some("http://127.0.0.2:9"),
                caller("127.0.0.1"),
                Ok(None),
            ),
            (
                "a host name cannot be checked",
                Some("http://node.example:9"),
                caller("127.0.0.1"),
                Ok(Some("http://node.example:9")),
            ),
            (
                "no socket (in-process)",
                Some("http://127.0.0.2:9"),
                None,
                Ok(Some("http://127.0.0.2:9")),
            ),
            (
                "garbage",
                Some("ftp://x"),
                caller("127.0.0.1"),
                Err("bad_peer_url"),
            ),
        ];
        for (name, header, caller, want) in cases {
            let got = claimed_peer(header, caller)
                .map(|url| url.map(|u| u.to_string()))
                .map_err(|e| e.reason);
            let want = want.map(|url| url.map(str::to_owned));
            assert_eq!(got, want, "{name}");
        }
    }
}
