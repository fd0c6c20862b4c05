//! Sauron's background tasks, each stopped by the shared cancellation
//! token and awaited by [`super::Running::shutdown`]:
//!
//! - the **writer**, the only task that writes to the database: it takes
//!   [`Job`]s from a bounded queue, assigns row ids (so ids grow in commit
//!   order) and runs each job in one transaction, inserts queued one
//!   behind the other in one transaction together (a group commit);
//! - the **poller**, which asks every recently seen registered node for
//!   `GET /status` about once a second, a bounded number at a time, each
//!   with a short timeout, and updates heights, tips, peers and liveness;
//! - the **retention** ticker, which asks the writer to delete what the
//!   retention options do not keep.

use std::sync::Arc;

use crapcoin_core::BlockHash;
use crapcoin_core::network::Network as _;
use crapcoin_core::node::now_ms;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot};

use super::db::{Db, DbError, EventRow, NodeRecord, RequestRow};
use super::model::{BlockFacts, BossEventBody, EngineEvent};
use super::state::Polled;
use super::{Shared, StreamItem};

/// Poll nodes heard from within this long (others must register again).
const POLL_RECENT_MS: u64 = 10 * 60 * 1000;

/// Rows as stored, with their ids.
pub type Stored = (Vec<RequestRow>, Vec<EventRow>);

/// One batch for the writer to store (its rows' ids are assigned
/// there), all or nothing.
#[derive(Debug)]
pub struct Insert {
    /// Request rows.
    pub requests: Vec<RequestRow>,
    /// Event rows.
    pub events: Vec<EventRow>,
    /// The ids given, or why nothing was stored.
    pub reply: oneshot::Sender<Result<Stored, String>>,
}

impl Insert {
    fn rows(&self) -> usize {
        self.requests.len() + self.events.len()
    }
}

/// Work for the writer.
#[derive(Debug)]
pub enum Job {
    /// Store a batch.
    Insert(Insert),
    /// Save and forget node rows.
    Nodes {
        /// Rows to insert or replace.
        save: Vec<NodeRecord>,
        /// Names to delete.
        forget: Vec<String>,
    },
    /// Apply retention now; answers the rows deleted.
    Retain {
        /// Where to answer, if anyone waits.
        reply: Option<oneshot::Sender<Result<u64, String>>>,
    },
}

/// Rows one group commit takes at most (more wait for the next).
const MAX_GROUP_ROWS: usize = 8192;

/// The writer: runs jobs until the queue closes or `shared.cancel` fires.
///
/// Inserts queued one behind the other are stored in one transaction (a
/// group commit, up to [`MAX_GROUP_ROWS`] rows), each batch still all or
/// nothing. A batch whose sender stopped waiting (its HTTP request timed
/// out or was dropped) is not stored: the node has counted it as failed,
/// and under overload the writer must not spend itself on answers nobody
/// reads.
pub(crate) async fn writer(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job>, ids: (i64, i64)) {
    let mut next = (ids.0 + 1, ids.1 + 1);
    let mut queued: Option<Job> = None;
    loop {
        let job = match queued.take() {
            Some(job) => job,
            None => tokio::select! {
                _ = shared.cancel.cancelled() => break,
                job = jobs.recv() => match job { Some(job) => job, None => break },
            },
        };
        match job {
            Job::Insert(first) => {
                let mut rows = first.rows();
                let mut group = vec![first];
                while rows < MAX_GROUP_ROWS {
                    match jobs.try_recv() {
                        Ok(Job::Insert(insert)) => {
                            rows += insert.rows();
                            group.push(insert);
                        }
                        Ok(other) => {
                            queued = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                insert_group(&shared.db, group, &mut next).await;
            }
            Job::Nodes { save, forget } => {
                let result: Result<(), DbError> = async {
                    shared.db.upsert_nodes(&save).await?;
                    shared.db.delete_nodes(&forget).await
                }
                .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "saving nodes failed");
                }
            }
            Job::Retain { reply } => {
                let result = shared.db.retain(&shared.config.retention, now_ms()).await;
                match &result {
                    Ok(n) if *n > 0 => tracing::debug!(deleted = n, "retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention failed"),
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result.map_err(|e| e.to_string()));
                }
            }
        }
    }
}

/// Stores a group of batches in one transaction, giving ids from `next`
/// (the next request and event ids) in queue order, and answers each.
/// Batches whose sender stopped waiting are left out.
async fn insert_group(db: &Db, mut group: Vec<Insert>, next: &mut (i64, i64)) {
    group.retain(|p| !p.reply.is_closed());
    if group.is_empty() {
        return;
    }
    let mut requests = Vec::new();
    let mut events = Vec::new();
    let mut shapes = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    for pending in group {
        shapes.push((pending.requests.len(), pending.events.len()));
        replies.push(pending.reply);
        requests.extend(pending.requests);
        events.extend(pending.events);
    }
    for (i, row) in requests.iter_mut().enumerate() {
        row.id = next.0 + i as i64;
    }
    for (i, row) in events.iter_mut().enumerate() {
        row.id = next.1 + i as i64;
    }
    match db.insert(&requests, &events).await {
        Ok(()) => {
            next.0 += requests.len() as i64;
            next.1 += events.len() as i64;
            let (mut requests, mut events) = (requests.into_iter(), events.into_iter());
            for ((r, e), reply) in shapes.into_iter().zip(replies) {
                let stored = (
                    requests.by_ref().take(r).collect(),
                    events.by_ref().take(e).collect(),
                );
                let _ = reply.send(Ok(stored));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, batches = replies.len(), "storing batches failed");
            for reply in replies {
                let _ = reply.send(Err(e.to_string()));
            }
        }
    }
}

/// Asks the writer for retention every `retention_interval`.
pub(crate) async fn retention(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.retention_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Never waits: when the writer is busy, the next tick will do.
        let _ = shared.writer.try_send(Job::Retain { reply: None });
    }
}

/// Polls every recently seen registered node's `GET /status` once per
/// `poll_interval`, at most `poll_concurrency` at a time.
pub(crate) async fn poller(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_consensus = None;
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let targets = shared.state().poll_targets(now_ms(), POLL_RECENT_MS);
        let round = futures_util::stream::iter(targets)
            .map(|(name, url)| {
                let shared = shared.clone();
                async move {
                    let status = match url.parse() {
                        Ok(url) => shared.poll_client.status(&url).await.ok(),
                        Err(_) => None,
                    };
                    (name, status)
                }
            })
            .buffer_unordered(shared.config.poll_concurrency.max(1))
            .collect::<Vec<_>>();
        let results = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            results = round => results,
        };
        let now = now_ms();
        let mut changed = Vec::new();
        {
            let mut state = shared.state();
            for (name, status) in results {
                if let Some(s) = status {
                    let poll = Polled {
                        height: s.height,
                        tip: s.tip,
                        peers: u64::try_from(s.peers).unwrap_or(u64::MAX),
                        hash_share: s.hash_share,
                    };
                    changed.extend(state.polled(&name, poll, now));
                }
            }
            changed.extend(state.refresh_liveness(now));
        }
        for node in &changed {
            shared.publish(StreamItem::json("node", node));
        }
        fill_tree(&shared).await;
        let consensus = shared.state().consensus(now_ms());
        if last_consensus.as_ref() != Some(&consensus) {
            shared.publish(StreamItem::json("consensus", &consensus));
            last_consensus = Some(consensus);
        }
    }
}

/// Asks nodes for the blocks between their tips and the tree that the
/// reports did not bring (blocks mined while Sauron was down, say): one
/// block per node and round, at most `k + 1` deep, so the consensus check
/// can walk from every tip.
async fn fill_tree(shared: &Arc<Shared>) {
    let depth = shared.config.k + 1;
    let wanted: Vec<(String, BlockHash)> = {
        let state = shared.state();
        let mut seen = std::collections::HashSet::new();
        state
            .tips()
            .into_iter()
            .filter_map(|(url, tip)| state.missing(tip, depth).map(|m| (url, m)))
            .filter(|(_, hash)| seen.insert(*hash))
            .collect()
    };
    let fetched = futures_util::stream::iter(wanted)
        .map(|(url, hash)| {
            let shared = shared.clone();
            async move {
                let Ok(url) = url.parse() else {
                    return None;
                };
                shared.poll_client.block(&url, &hash).await.ok().flatten()
            }
        })
        .buffer_unordered(shared.config.poll_concurrency.max(1))
        .collect::<Vec<_>>();
    let fetched = tokio::select! {
        _ = shared.cancel.cancelled() => return,
        fetched = fetched => fetched,
    };
    let now = now_ms();
    let mut state = shared.state();
    for block in fetched.into_iter().flatten() {
        let facts = BlockFacts {
            hash: block.hash(),
            parent: block.header.prev_hash,
            height: block.header.height,
        };
        state.learn(facts, now);
    }
}

/// Reloads what Sauron keeps in memory from the store: the node table and
/// the recent block, rejection and boss events.
///
/// # Errors
///
/// [`DbError`] when a query fails.
pub(crate) async fn reload(shared: &Shared, db: &Db) -> Result<(), DbError> {
    let max_nodes = i64::try_from(shared.config.max_nodes).unwrap_or(i64::MAX);
    let nodes = db.load_nodes(max_nodes).await?;
    let limit = i64::try_from(shared.config.max_blocks * 8).unwrap_or(i64::MAX);
    let events = db
        .recent_events(
            &["block_mined", "block_accepted", "block_rejected", "boss"],
            limit,
        )
        .await?;
    let mut state = shared.state();
    let restored = nodes.len();
    for node in nodes {
        state.restore(node);
    }
    for row in &events {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&row.event) else {
            continue;
        };
        let at = u64::try_from(row.at_ms).unwrap_or(0);
        if row.kind == "boss" {
            if let Ok(boss) = serde_json::from_value::<BossEventBody>(value) {
                state.boss(&row.node, None, boss.action);
            }
        } else {
            state.event(&row.node, at, &EngineEvent::read(&row.kind, &value));
        }
    }
    tracing::info!(nodes = restored, events = events.len(), "reloaded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Db, EventRow, Insert, RequestRow, insert_group};
    use tokio::sync::oneshot;

    fn batch(
        node: &str,
        requests: usize,
        events: usize,
    ) -> (Insert, oneshot::Receiver<Result<super::Stored, String>>) {
        let request = |i: usize| RequestRow {
            id: 0,
            node: node.to_owned(),
            at_ms: i as i64,
            method: "GET".to_owned(),
            path: "/status".to_owned(),
            route: "/status".to_owned(),
            status: 200,
            latency_us: 1,
            caller: None,
            peer: None,
            request_bytes: 0,
            response_bytes: None,
            excerpt: String::new(),
        };
        let event = |i: usize| EventRow {
            id: 0,
            node: node.to_owned(),
            at_ms: i as i64,
            kind: "peer_added".to_owned(),
            event: "{}".to_owned(),
        };
        let (reply, answer) = oneshot::channel();
        let pending = Insert {
            requests: (0..requests).map(request).collect(),
            events: (0..events).map(event).collect(),
            reply,
        };
        (pending, answer)
    }

    #[tokio::test]
    async fn a_group_commit_answers_each_batch_and_skips_abandoned_ones() {
        let db = Db::open("sqlite::memory:").await.expect("opens");
        let (a, a_answer) = batch("a", 2, 1);
        let (b, b_answer) = batch("b", 5, 5);
        let (c, c_answer) = batch("c", 1, 2);
        drop(b_answer); // b's HTTP request timed out
        let mut next = (10, 20);
        insert_group(&db, vec![a, b, c], &mut next).await;

        let (a_requests, a_events) = a_answer.await.expect("answered").expect("stored");
        let (c_requests, c_events) = c_answer.await.expect("answered").expect("stored");
        let ids = |rows: &[RequestRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
        let event_ids = |rows: &[EventRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(&a_requests), [10, 11]);
        assert_eq!(event_ids(&a_events), [20]);
        assert_eq!(ids(&c_requests), [12]);
        assert_eq!(event_ids(&c_events), [21, 22]);
        assert!(a_requests.iter().all(|r| r.node == "a"));
        assert!(c_events.iter().all(|r| r.node == "c"));
        assert_eq!(next, (13, 23));
        // Only a's and c's rows are stored.
        assert_eq!(db.max_ids().await.expect("max ids"), (12, 22));
        let counts = db.counts().await.expect("counts");
        assert_eq!((counts.requests, counts.events), (3, 3));
    }
}
