//! What Sauron's API takes: AllSeeingEye batches, registrations and boss
//! reports, parsed and checked field by field before anything is stored.
//!
//! A batch is refused whole (400 `malformed`, or 413 `too_many_reports`)
//! when any report is malformed: wrong types, unknown fields, strings past
//! their caps, an event without a `kind`, a block event without a 64-digit
//! hash, parent or height. Checked reports become rows ([`Checked`]).

use crapcoin_core::BlockHash;
use serde::Deserialize;
use warp::http::StatusCode;

use super::db::{EventRow, RequestRow};
use crate::http::models::{ApiError, parse_json};

/// Largest body of `POST /api/events` (a full eye batch of 256 reports is
/// well under 300 KiB).
pub const MAX_BATCH_BODY: u64 = 1024 * 1024;
/// Most reports in one batch.
pub const MAX_REPORTS: usize = 1024;
/// Largest body of `POST /api/peers` and `POST /api/boss`.
pub const MAX_SMALL_BODY: u64 = 4 * 1024;
/// Longest node name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest path, URL or excerpt kept.
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest event JSON kept, bytes.
pub const MAX_EVENT_LEN: usize = 4096;

// The batch types are the eye's wire format, defined once in
// `crate::report`; re-exported here where Sauron's API has always had them.
pub use crate::report::{Batch, EventReport, Report, RequestReport};

/// A block event's fields, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockFacts {
    /// The block.
    pub hash: BlockHash,
    /// Its parent.
    pub parent: BlockHash,
    /// Its height.
    pub height: u64,
}

/// An engine event as far as the in-memory state reads it: the block
/// events with their fields typed, a rejection's reason, and every other
/// kind (kept in the store as reported, ignored by the state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// `block_mined`: the reporting node mined it.
    Mined(BlockFacts),
    /// `block_accepted`.
    Accepted {
        /// The block.
        block: BlockFacts,
        /// Whether it is on the reporting node's best chain now.
        best: bool,
    },
    /// `block_rejected`, with the reason's name (`unknown` when the event
    /// names none).
    Rejected {
        /// Why, e.g. `bad_pow`.
        reason: String,
    },
    /// Any other kind, or a block event whose fields are malformed (only
    /// possible for rows read back from the store: [`check_batch`] refuses
    /// those).
    Other,
}

impl EngineEvent {
    /// Reads the event of kind `kind` (its JSON `event`).
    ///
    /// # Errors
    ///
    /// 400 `malformed` when a block event lacks a 64-hex hash or parent or
    /// a height.
    pub fn parse(kind: &str, event: &serde_json::Value) -> Result<Self, ApiError> {
        if kind == "block_rejected" {
            let reason = event
                .get("reason")
                .and_then(|r| {
                    r.as_str()
                        .or_else(|| r.get("reason").and_then(|v| v.as_str()))
                })
                .unwrap_or("unknown");
            return Ok(Self::Rejected {
                reason: reason.to_owned(),
            });
        }
        let Some(block) = block_facts(kind, event)? else {
            return Ok(Self::Other);
        };
        if kind == "block_mined" {
            return Ok(Self::Mined(block));
        }
        let best = event.get("best").and_then(serde_json::Value::as_bool) == Some(true);
        Ok(Self::Accepted { block, best })
    }

    /// Like [`EngineEvent::parse`], for events read back from the store:
    /// a malformed block event is [`EngineEvent::Other`] (ignored).
    pub fn read(kind: &str, event: &serde_json::Value) -> Self {
        Self::parse(kind, event).unwrap_or(Self::Other)
    }
}

/// An event checked: its row plus what the in-memory state needs.
#[derive(Debug, Clone)]
pub struct CheckedEvent {
    /// The row (id 0 until the writer assigns one).
    pub row: EventRow,
    /// The event, typed as far as the state reads it.
    pub event: EngineEvent,
}

/// A batch checked: rows ready for the writer (ids 0 until assigned).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The node's name.
    pub node: String,
    /// Its URL.
    pub url: String,
    /// Request rows.
    pub requests: Vec<RequestRow>,
    /// Event rows.
    pub events: Vec<CheckedEvent>,
}

fn malformed(error: impl ToString) -> ApiError {
    ApiError::bad_request("malformed", error)
}

fn capped(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(malformed(format!("{field} longer than {max} bytes")));
    }
    Ok(())
}

fn as_i64(field: &str, n: u64) -> Result<i64, ApiError> {
    i64::try_from(n).map_err(|_| malformed(format!("{field} out of range")))
}

/// Checks a node name: 1 to [`MAX_NAME_LEN`] printable ASCII characters.
///
/// # Errors
///
/// 400 `malformed`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(malformed("node name must be 1 to 64 printable characters"));
    }
    Ok(())
}

/// Whether `s` is a 64-digit lowercase hex hash.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The hash, parent and height of a `block_mined` or `block_accepted`
/// event; `None` for other kinds.
///
/// # Errors
///
/// 400 `malformed` when a block event lacks them or they are malformed.
pub fn block_facts(kind: &str, event: &serde_json::Value) -> Result<Option<BlockFacts>, ApiError> {
    if kind != "block_mined" && kind != "block_accepted" {
        return Ok(None);
    }
    let hash = event.get("hash").and_then(|v| v.as_str());
    let parent = event.get("parent").and_then(|v| v.as_str());
    let height = event.get("height").and_then(serde_json::Value::as_u64);
    match (hash, parent, height) {
        (Some(hash), Some(parent), Some(height)) if is_hash(hash) && is_hash(parent) => {
            match (hash.parse(), parent.parse()) {
                (Ok(hash), Ok(parent)) => Ok(Some(BlockFacts {
                    hash,
                    parent,
                    height,
                })),
                _ => Err(malformed(format!(
                    "{kind} needs a 64-hex hash and parent and a height"
                ))),
            }
        }
        _ => Err(malformed(format!(
            "{kind} needs a 64-hex hash and parent and a height"
        ))),
    }
}

/// The kind of an event: a snake_case name of at most 64 bytes.
fn event_kind(event: &serde_json::Value) -> Result<String, ApiError> {
    let kind = event
        .get("kind")
        .and_then(|v| v.as_str())
        .ok_or_else(|| malformed("event without a string kind"))?;
    if kind.is_empty()
        || kind.len() > 64
        || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(malformed("event kind must be snake_case"));
    }
    Ok(kind.to_owned())
}

/// Parses and checks one batch body.
///
/// # Errors
///
/// 400 `malformed` (bad JSON, wrong types, a bad report: the message names
/// its index) or 413 `too_many_reports`.
pub fn check_batch(body: &[u8]) -> Result<Checked, ApiError> {
    let batch: Batch = parse_json(body)?;
    check_name(&batch.node)?;
    capped("url", &batch.url, MAX_TEXT_LEN)?;
    if batch.url.parse::<crapcoin_core::PeerUrl>().is_err() {
        return Err(malformed("url is not an http(s) URL"));
    }
    if batch.reports.len() > MAX_REPORTS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_reports",
            format!(
                "{} reports, at most {MAX_REPORTS} per batch",
                batch.reports.len()
            ),
        ));
    }
    let mut requests = Vec::new();
    let mut events = Vec::new();
    for (i, report) in batch.reports.into_iter().enumerate() {
        let at = |e: ApiError| malformed(format!("report {i}: {}", e.error));
        match report {
            Report::Request(r) => requests.push(check_request(&batch.node, r).map_err(at)?),
            Report::Event(e) => events.push(check_event(&batch.node, e).map_err(at)?),
        }
    }
    Ok(Checked {
        node: batch.node,
        url: batch.url,
        requests,
        events,
    })
}

fn check_request(node: &str, r: RequestReport) -> Result<RequestRow, ApiError> {
    capped("method", &r.method, 16)?;
    capped("path", &r.path, MAX_TEXT_LEN)?;
    capped("route", &r.route, 64)?;
    capped("excerpt", &r.excerpt, MAX_TEXT_LEN)?;
    for (field, value) in [("caller", &r.caller), ("peer", &r.peer)] {
        if let Some(value) = value {
            capped(field, value, 256)?;
        }
    }
    if !(100..=599).contains(&r.status) {
        return Err(malformed("status must be 100 to 599"));
    }
    Ok(RequestRow {
        id: 0,
        node: node.to_owned(),
        at_ms: as_i64("at_ms", r.at_ms)?,
        method: r.method.into_owned(),
        path: r.path,
        route: r.route.into_owned(),
        status: i64::from(r.status),
        latency_us: as_i64("latency_us", r.latency_us)?,
        caller: r.caller,
        peer: r.peer,
        request_bytes: as_i64("request_bytes", r.request_bytes)?,
        response_bytes: r
            .response_bytes
            .map(|n| as_i64("response_bytes", n))
            .transpose()?,
        excerpt: r.excerpt,
    })
}

fn check_event(node: &str, e: EventReport) -> Result<CheckedEvent, ApiError> {
    if !e.event.is_object() {
        return Err(malformed("event must be an object"));
    }
    let kind = event_kind(&e.event)?;
    let event = EngineEvent::parse(&kind, &e.event)?;
    let text = e.event.to_string();
    capped("event", &text, MAX_EVENT_LEN)?;
    Ok(CheckedEvent {
        row: EventRow {
            id: 0,
            node: node.to_owned(),
            at_ms: as_i64("at_ms", e.at_ms)?,
            kind,
            event: text,
        },
        event,
    })
}

/// `POST /api/peers`: a node registering (the node's `PeerInfo`).
#[derive(Debug, Clone, Deserialize)]
pub struct Register {
    /// Where it is reached.
    pub url: crapcoin_core::PeerUrl,
    /// Its wallet address, which its `GET /status` must show.
    pub address: String,
    /// Its name.
    pub name: String,
    /// Its behaviour's name.
    #[serde(default)]
    pub behaviour: String,
    /// Its share of the network's hash power (`PeerInfo.hash_share`),
    /// when it mines on a schedule; its `GET /status` wins when it says.
    #[serde(default)]
    pub hash_share: Option<f64>,
}

impl Register {
    /// Checks the field sizes, and that a hash share is in `[0, 1]`.
    ///
    /// # Errors
    ///
    /// 400 `malformed`.
    pub fn check(&self) -> Result<(), ApiError> {
        check_name(&self.name)?;
        if let Some(share) = self.hash_share
            && !super::state::nodes::valid_share(share)
        {
            return Err(malformed("hash_share must be a number in [0, 1]"));
        }
        capped("url", self.url.as_str(), MAX_TEXT_LEN)?;
        capped("address", &self.address, 128)?;
        capped("behaviour", &self.behaviour, MAX_NAME_LEN)
    }
}

/// `GET /api/peers` query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SampleQuery {
    /// How many (capped).
    pub count: Option<u64>,
    /// The caller's own URL, never answered.
    pub exclude: Option<String>,
}

/// What the Boss (or a person) did, as watercooler reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BossAction {
    /// Killed.
    Fired,
    /// Started again on its old data.
    Rehired,
    /// Newly started.
    Hired,
    /// Stopped (SIGSTOP).
    Paused,
    /// Continued.
    Resumed,
}

impl BossAction {
    /// Its name on the wire, e.g. `fired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fired => "fired",
            Self::Rehired => "rehired",
            Self::Hired => "hired",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
        }
    }
}

/// `POST /api/boss` (what watercooler sends).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Boss {
    /// What happened.
    pub action: BossAction,
    /// To which node.
    pub node: String,
    /// Its URL, when known.
    #[serde(default)]
    pub url: Option<String>,
    /// When, ms since the epoch.
    pub at_ms: u64,
}

/// What the state and watercooler read of a stored `boss` event (the
/// [`Boss`] report tagged `"kind": "boss"`): its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct BossEventBody {
    /// What happened.
    pub action: BossAction,
}

/// A page of `GET /api/requests` or `GET /api/events`: the items, newest
/// first, and the cursor of the next (older) page when this one was full.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// `before` of the next page; `None` on the last one.
    pub next: Option<i64>,
}

/// `GET /api/requests` query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestsQuery {
    /// Only this node's.
    pub node: Option<String>,
    /// Only this route template.
    pub route: Option<String>,
    /// Only this status.
    pub status: Option<i64>,
    /// The paging cursor (`next` of the previous page).
    pub before: Option<i64>,
    /// Page size (default 100, capped at 500).
    pub limit: Option<i64>,
    /// A replay's position, virtual ms (`sauron --replay` only; a replay
    /// has no requests).
    pub at_ms: Option<u64>,
}

/// `GET /api/events` query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventsQuery {
    /// Only this node's.
    pub node: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only at or after this time, ms since the epoch.
    pub since: Option<i64>,
    /// The paging cursor.
    pub before: Option<i64>,
    /// Page size (default 100, capped at 500).
    pub limit: Option<i64>,
    /// A replay's position, virtual ms: only events at or before it
    /// (`sauron --replay` only).
    pub at_ms: Option<u64>,
}

/// The position of a replay, `?at_ms=` of the read API (`sauron --replay`
/// only; a live Sauron answers 400 `not_replaying`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct AtQuery {
    /// Virtual ms since the simulation started; the log's end when absent
    /// or later.
    pub at_ms: Option<u64>,
}

/// Default page size of the paged lists.
pub const DEFAULT_PAGE: i64 = 100;
/// Largest page of the paged lists.
pub const MAX_PAGE: i64 = 500;

/// A page size from a `limit` parameter: default, at least 1, capped.
pub fn page_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

#[cfg(test)]
mod tests {
    use super::{check_batch, page_limit};
    use serde_json::json;

    #[test]
    fn batches_are_checked_whole() {
        let good = json!({"node": "n0", "url": "http://127.0.0.1:1", "reports": [
            {"type": "request", "at_ms": 1, "method": "GET", "path": "/status", "route": "/status",
             "status": 200, "latency_us": 5, "caller": null, "peer": null, "request_bytes": 0,
             "response_bytes": 10, "excerpt": ""},
            {"type": "event", "at_ms": 2, "event": {"kind": "block_mined", "hash": "a".repeat(64),
             "parent": "b".repeat(64), "height": 1, "tx": null}},
        ]});
        let checked = check_batch(good.to_string().as_bytes()).expect("good");
        assert_eq!((checked.requests.len(), checked.events.len()), (1, 1));
        let cases = [
            ("not json", b"{".to_vec()),
            (
                "status as a string",
                good.to_string()
                    .replace("\"status\":200", "\"status\":\"200\"")
                    .into_bytes(),
            ),
            (
                "unknown field",
                good.to_string()
                    .replace("\"excerpt\"", "\"extra\":1,\"excerpt\"")
                    .into_bytes(),
            ),
            (
                "short hash",
                good.to_string()
                    .replace(&"a".repeat(64), "abc")
                    .into_bytes(),
            ),
            (
                "no kind",
                good.to_string()
                    .replace("\"kind\":\"block_mined\",", "")
                    .into_bytes(),
            ),
        ];
        for (name, body) in cases {
            let e = check_batch(&body).expect_err(name);
            assert_eq!(e.reason, "malformed", "{name}");
        }
    }

    #[test]
    fn pages_are_capped() {
        assert_eq!(page_limit(None), 100);
        assert_eq!(page_limit(Some(0)), 1);
        assert_eq!(page_limit(Some(10_000)), 500);
    }
}
