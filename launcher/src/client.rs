//! [`Client`]: every HTTP call watercooler makes, to its nodes and to
//! Sauron, typed with the core and Sauron types.
//!
//! One [`Client`] per process (cheap to clone: one shared connection
//! pool), with a timeout on every call. Nodes answer `GET /status` with
//! [`Status`], `GET /blocks` with [`BlockJson`] pages and `GET /metrics`
//! with Prometheus text, read into a typed [`Sample`] in one place
//! ([`Sample::parse`]). Sauron takes its own [`Boss`] report (made by
//! [`boss_report`]) and answers with its own types: [`Consensus`],
//! [`Forks`], the [`Node`] rows, [`Page`]s of [`EventRow`]s. Only `GET /api/config`,
//! which Sauron answers untyped, is read through [`SauronConfig`].
//!
//! Reads are best effort: `None` when the peer does not answer, answers an
//! error status, or answers something that does not parse.

use std::time::Duration;

use crapcoin_core::block::BlockJson;
use crapcoin_core::{BlockHash, Status};
use crapcoin_node::http::models::{AckedPage, AutoRequest};
use crapcoin_node::sauron::db::EventRow;
use crapcoin_node::sauron::faults::FaultRecord;
use crapcoin_node::sauron::model::{Boss, BossAction, BossEventBody, Page};
use crapcoin_node::sauron::state::{Consensus, Forks, Node};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::metrics::Sample;

/// Longest a call may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call that must succeed (a report) did not.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request failed (refused, timed out, closed).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The server answered with an error status.
    #[error("answered {0}")]
    Refused(reqwest::StatusCode),
}

/// A report of `action` on `node` (at `url`), stamped now, as Sauron's
/// `POST /api/boss` takes it.
pub fn boss_report(action: BossAction, node: &str, url: Option<&str>) -> Boss {
    Boss {
        action,
        node: node.to_owned(),
        url: url.map(str::to_owned),
        at_ms: crapcoin_core::clock::now_ms(),
    }
}

/// The action of a stored `boss` event, `unknown` when it has none.
pub fn boss_action(row: &EventRow) -> &'static str {
    serde_json::from_str::<BossEventBody>(&row.event).map_or("unknown", |b| b.action.as_str())
}

/// What watercooler reads of Sauron's `GET /api/config`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SauronConfig {
    /// The control URL it shows the dashboard.
    #[serde(default)]
    pub control_url: Option<String>,
    /// The network's proof of work bits, when it was given one.
    #[serde(default)]
    pub difficulty: Option<u32>,
}

/// What one poll of a node process said: `GET /status` and
/// `GET /metrics`.
#[derive(Debug, Clone)]
pub struct Poll {
    /// Its status.
    pub status: Status,
    /// Its counters.
    pub sample: Sample,
}

/// Every call watercooler makes. Cheap to clone: one connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    /// A client whose calls each time out after 3 s (2 s to connect),
    /// without proxies (every peer is on 127.0.0.1).
    ///
    /// # Errors
    ///
    /// When reqwest cannot build a client (no TLS backend is needed, so
    /// this does not happen in practice).
    pub fn new() -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .build()?;
        Ok(Self { http })
    }

    /// `GET url` (within `timeout` when given, else the client's); the
    /// body of a success, `None` otherwise.
    async fn get_bytes(&self, url: &str, timeout: Option<Duration>) -> Option<bytes::Bytes> {
        let mut request = self.http.get(url);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.bytes().await.ok()
    }

    /// `GET url` parsed as `T`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        timeout: Option<Duration>,
    ) -> Option<T> {
        serde_json::from_slice(&self.get_bytes(url, timeout).await?).ok()
    }

    /// `POST url` with `body` as JSON (and `token` as bearer, when given).
    async fn post_json<B: Serialize>(
        &self,
        url: &str,
        token: Option<&str>,
        body: &B,
    ) -> Result<(), Error> {
        let body = serde_json::to_vec(body).expect("a derived Serialize of plain fields");
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Refused(response.status()))
        }
    }

    /// The node at `node`'s `GET /status`.
    pub async fn status(&self, node: &str, timeout: Option<Duration>) -> Option<Status> {
        self.get_json(&format!("{node}/status"), timeout).await
    }

    /// The node at `node`'s counters (`GET /metrics`).
    pub async fn metrics(&self, node: &str, timeout: Option<Duration>) -> Option<Sample> {
        let text = self.get_bytes(&format!("{node}/metrics"), timeout).await?;
        Some(Sample::parse(&String::from_utf8_lossy(&text)))
    }

    /// Polls the node at `node`: its status, then its counters; `None`
    /// when either does not come (each call within `timeout` when given).
    pub async fn poll(&self, node: &str, timeout: Option<Duration>) -> Option<Poll> {
        let status = self.status(node, timeout).await?;
        let sample = self.metrics(node, timeout).await?;
        Some(Poll { status, sample })
    }

    /// A page of the best chain of the node at `node` from height `from`
    /// (`GET /blocks`; at most `limit` blocks when given, else the node's
    /// page size).
    pub async fn blocks(
        &self,
        node: &str,
        from: u64,
        limit: Option<u64>,
    ) -> Option<Vec<BlockJson>> {
        let url = match limit {
            Some(limit) => format!("{node}/blocks?from={from}&limit={limit}"),
            None => format!("{node}/blocks?from={from}"),
        };
        self.get_json(&url, None).await
    }

    /// A page of the transfers the node at `node` acknowledged, those
    /// recorded after sequence number `after` (`GET
    /// /transfers/acknowledged`, the node's page size).
    pub async fn acknowledged(&self, node: &str, after: u64) -> Option<AckedPage> {
        self.get_json(
            &format!("{node}/transfers/acknowledged?after={after}"),
            None,
        )
        .await
    }

    /// One block the node at `node` knows (`GET /block/{hash}`), `None`
    /// when it does not know it or does not answer.
    pub async fn block(&self, node: &str, hash: &BlockHash) -> Option<BlockJson> {
        self.get_json(&format!("{node}/block/{hash}"), None).await
    }

    /// A page of Sauron's events of one `kind` (`GET
    /// /api/events?kind=KIND`: `block_accepted`, `reorg`, ...), at most
    /// `limit`, older than the cursor `before` when given.
    pub async fn sauron_events(
        &self,
        sauron: &str,
        kind: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Option<Page<EventRow>> {
        let mut url = format!("{sauron}/api/events?kind={kind}&limit={limit}");
        if let Some(before) = before {
            url.push_str(&format!("&before={before}"));
        }
        self.get_json(&url, None).await
    }

    /// Pauses (`on = false`) or resumes auto mode on the node at `node`
    /// (`POST /admin/auto` with its admin `token`); true when it confirmed.
    pub async fn set_auto(&self, node: &str, token: &str, on: bool) -> bool {
        self.post_json(
            &format!("{node}/admin/auto"),
            Some(token),
            &AutoRequest { on },
        )
        .await
        .is_ok()
    }

    /// Sets faults on the node at `node` (`POST /admin/faults` with its
    /// admin `token`; `body` in the route's shape, `for_ms` included).
    ///
    /// # Errors
    ///
    /// The node did not answer, or refused the body.
    pub async fn set_faults(
        &self,
        node: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<(), Error> {
        self.post_json(&format!("{node}/admin/faults"), Some(token), body)
            .await
    }

    /// Ends every fault of the node at `node` (`DELETE /admin/faults`).
    ///
    /// # Errors
    ///
    /// The node did not answer, or refused.
    pub async fn clear_faults(&self, node: &str, token: &str) -> Result<(), Error> {
        let response = self
            .http
            .delete(format!("{node}/admin/faults"))
            .bearer_auth(token)
            .send()
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::Refused(response.status()))
        }
    }

    /// Reports a fault's start or end to Sauron at `sauron`
    /// (`POST /api/faults`).
    ///
    /// # Errors
    ///
    /// Sauron did not answer, or refused the report.
    pub async fn report_fault(&self, sauron: &str, record: &FaultRecord) -> Result<(), Error> {
        self.post_json(&format!("{sauron}/api/faults"), None, record)
            .await
    }

    /// Reports what the Boss did to Sauron at `sauron` (`POST /api/boss`).
    ///
    /// # Errors
    ///
    /// Sauron did not answer, or refused the report.
    pub async fn report_boss(&self, sauron: &str, report: &Boss) -> Result<(), Error> {
        self.post_json(&format!("{sauron}/api/boss"), None, report)
            .await
    }

    /// Sauron's `GET /api/config`.
    pub async fn sauron_config(&self, sauron: &str) -> Option<SauronConfig> {
        self.get_json(&format!("{sauron}/api/config"), None).await
    }

    /// How many nodes Sauron lists (`GET /api/nodes`, every node ever
    /// seen).
    pub async fn sauron_node_count(&self, sauron: &str) -> Option<usize> {
        let rows: Vec<Node> = self.get_json(&format!("{sauron}/api/nodes"), None).await?;
        Some(rows.len())
    }

    /// Every node Sauron lists (`GET /api/nodes`).
    pub async fn sauron_nodes(&self, sauron: &str) -> Option<Vec<Node>> {
        self.get_json(&format!("{sauron}/api/nodes"), None).await
    }

    /// Sauron's `GET /api/consensus`.
    pub async fn sauron_consensus(&self, sauron: &str) -> Option<Consensus> {
        self.get_json(&format!("{sauron}/api/consensus"), None)
            .await
    }

    /// Sauron's `GET /api/forks`.
    pub async fn sauron_forks(&self, sauron: &str) -> Option<Forks> {
        self.get_json(&format!("{sauron}/api/forks"), None).await
    }

    /// A page of Sauron's `boss` events (`GET /api/events?kind=boss`), at
    /// most `limit`, older than the cursor `before` when given.
    pub async fn sauron_boss_events(
        &self,
        sauron: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Option<Page<EventRow>> {
        let mut url = format!("{sauron}/api/events?kind=boss&limit={limit}");
        if let Some(before) = before {
            url.push_str(&format!("&before={before}"));
        }
        self.get_json(&url, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sauron_takes_the_boss_report() {
        let report = boss_report(BossAction::Rehired, "bigload-1", Some("http://127.0.0.1:1"));
        let json = serde_json::to_string(&report).expect("serialises");
        let boss: Boss = serde_json::from_str(&json).expect("Sauron parses it");
        assert_eq!(boss.action, BossAction::Rehired);
        assert_eq!(boss.node, "bigload-1");
        assert_eq!(boss.url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(boss.at_ms, report.at_ms);
        let without_url = boss_report(BossAction::Fired, "shit-2", None);
        let json = serde_json::to_string(&without_url).expect("serialises");
        let boss: Boss = serde_json::from_str(&json).expect("Sauron parses it");
        assert_eq!(boss.url, None);
    }

    #[test]
    fn a_node_takes_the_auto_request() {
        for on in [false, true] {
            let json = serde_json::to_string(&AutoRequest { on }).expect("serialises");
            let request: AutoRequest = serde_json::from_str(&json).expect("the node parses it");
            assert_eq!(request.on, on);
        }
    }

    #[test]
    fn sauron_answers_are_read() {
        let row = |name: &str| {
            serde_json::json!({"name": name, "url": "http://127.0.0.1:1", "address": "",
                "behaviour": "honest", "honest": true, "height": 3, "tip": null, "peers": 1,
                "last_seen_ms": 5, "alive": true, "fired": false, "registered": true})
        };
        let nodes: Vec<Node> =
            serde_json::from_value(serde_json::json!([row("a"), row("b")])).expect("list");
        assert_eq!(nodes.len(), 2);
        let page: Page<EventRow> = serde_json::from_str(
            r#"{"items":[{"id":3,"node":"n","at_ms":1,"kind":"boss","event":{"kind":"boss","action":"fired"}},{"id":2,"node":"n","at_ms":1,"kind":"boss","event":null}],"next":2}"#,
        )
        .expect("page");
        let actions: Vec<&str> = page.items.iter().map(boss_action).collect();
        assert_eq!(actions, ["fired", "unknown"]);
        assert_eq!(page.next, Some(2));
        let consensus: Consensus = serde_json::from_str(
            r#"{"live_honest":2,"agreeing":2,"common_height":4,"max_fork_depth":0,"verdict":"consensus","k":2}"#,
        )
        .expect("consensus");
        assert_eq!(consensus.verdict.as_str(), "consensus");
    }
}
