//! The AllSeeingEye's wire format: the batches a node POSTs to Sauron's
//! `POST /api/events`. Defined once for both ends: [`crate::eye`]
//! serialises it, [`crate::sauron::model`] deserialises and checks it.
//!
//! A batch is `{"node": NAME, "url": URL, "reports": [REPORT, …]}` where a
//! report is either
//! `{"type": "request", "at_ms", "method", "path", "route", "status",
//! "latency_us", "caller", "peer", "request_bytes", "response_bytes",
//! "excerpt"}` or `{"type": "event", "at_ms", "event": EVENT}` with `EVENT`
//! the engine's [`crapcoin_core::Event`] in JSON (tagged by `kind`).
//!
//! The event type is a parameter: the eye sends the engine's typed
//! [`crapcoin_core::Event`]; Sauron reads it as JSON
//! ([`serde_json::Value`], the default), because it keeps every kind a
//! node reports, including kinds newer than itself, and checks the fields
//! it uses on its own.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One batch of reports from one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch<E = serde_json::Value> {
    /// The reporting node's name.
    pub node: String,
    /// The URL it is reached at.
    pub url: String,
    /// Its reports, oldest first.
    pub reports: Vec<Report<E>>,
}

/// One report of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Report<E = serde_json::Value> {
    /// A request the node served.
    Request(RequestReport),
    /// An engine event.
    Event(EventReport<E>),
}

/// One request as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestReport {
    /// When it was answered, ms since the epoch.
    pub at_ms: u64,
    /// E.g. `GET` (borrowed on the node, which knows a fixed set).
    pub method: Cow<'static, str>,
    /// The path as asked (truncated by the node).
    pub path: String,
    /// The route template, e.g. `/block/{hash}` (borrowed on the node).
    pub route: Cow<'static, str>,
    /// Response status.
    pub status: u16,
    /// Time from request head to response head, µs.
    pub latency_us: u64,
    /// The caller's socket address.
    pub caller: Option<String>,
    /// The peer URL the caller claimed (gossip header), if any.
    pub peer: Option<String>,
    /// Request body bytes read by the handler.
    pub request_bytes: u64,
    /// Response body bytes, when known up front.
    pub response_bytes: Option<u64>,
    /// The start of the request body (lossy UTF-8).
    pub excerpt: String,
}

/// An engine event as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventReport<E = serde_json::Value> {
    /// When it happened, ms since the epoch.
    pub at_ms: u64,
    /// The event (tagged by `kind`).
    pub event: E,
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use crapcoin_core::Event;
    use serde_json::json;

    use super::{Batch, EventReport, Report, RequestReport};

    #[test]
    fn what_the_eye_sends_is_what_sauron_reads() {
        let sent: Batch<Event> = Batch {
            node: "n0".to_owned(),
            url: "http://127.0.0.1:1".to_owned(),
            reports: vec![
                Report::Request(RequestReport {
                    at_ms: 1,
                    method: Cow::Borrowed("GET"),
                    path: "/status".to_owned(),
                    route: Cow::Borrowed("/status"),
                    status: 200,
                    latency_us: 5,
                    caller: Some("127.0.0.1:9".to_owned()),
                    peer: None,
                    request_bytes: 0,
                    response_bytes: Some(10),
                    excerpt: String::new(),
                }),
                Report::Event(EventReport {
                    at_ms: 2,
                    event: Event::PeerAdded {
                        peer: "http://127.0.0.1:2".parse().expect("url"),
                    },
                }),
            ],
        };
        let text = serde_json::to_string(&sent).expect("serialises");
        let read: Batch = serde_json::from_str(&text).expect("reads");
        assert_eq!(read.node, "n0");
        assert_eq!(read.reports[0], {
            let Report::Request(r) = &sent.reports[0] else {
                unreachable!("a request")
            };
            Report::Request(r.clone())
        });
        assert_eq!(
            read.reports[1],
            Report::Event(EventReport {
                at_ms: 2,
                event: json!({"kind": "peer_added", "peer": "http://127.0.0.1:2"}),
            })
        );
    }
}
