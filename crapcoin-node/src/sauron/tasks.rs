//! Sauron's background tasks, each stopped by the shared cancellation
//! token and awaited by [`super::Running::shutdown`]:
//!
//! - the **writer**, the only task that writes to the database: it takes
//!   [`Job`]s from a bounded queue, assigns row ids (so ids grow in commit
//!   order) and runs each job in one transaction;
//! - the **poller**, which asks every recently seen registered node for
//!   `GET /status` about once a second, a bounded number at a time, each
//!   with a short timeout, and updates heights, tips, peers and liveness;
//! - the **retention** ticker, which asks the writer to delete what the
//!   retention options do not keep.

use std::sync::Arc;

use crapcoin_core::network::Network as _;
use crapcoin_core::node::now_ms;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot};

use super::db::{Db, DbError, EventRow, NodeRecord, RequestRow};
use super::{Shared, StreamItem};

/// Poll nodes heard from within this long (others must register again).
const POLL_RECENT_MS: u64 = 10 * 60 * 1000;

/// Rows as stored, with their ids.
pub type Stored = (Vec<RequestRow>, Vec<EventRow>);

/// Work for the writer.
#[derive(Debug)]
pub enum Job {
    /// Store rows (their ids are assigned here), all or nothing.
    Insert {
        /// Request rows.
        requests: Vec<RequestRow>,
        /// Event rows.
        events: Vec<EventRow>,
        /// The ids given, or why nothing was stored.
        reply: oneshot::Sender<Result<Stored, String>>,
    },
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

/// The writer: runs jobs until the queue closes or `shared.cancel` fires.
pub(crate) async fn writer(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job>, ids: (i64, i64)) {
    let (mut next_request, mut next_event) = (ids.0 + 1, ids.1 + 1);
    loop {
        let job = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            job = jobs.recv() => match job { Some(job) => job, None => break },
        };
        match job {
            Job::Insert {
                mut requests,
                mut events,
                reply,
            } => {
                for (i, row) in requests.iter_mut().enumerate() {
                    row.id = next_request + i as i64;
                }
                for (i, row) in events.iter_mut().enumerate() {
                    row.id = next_event + i as i64;
                }
                let result = shared.db.insert(&requests, &events).await;
                let answer = match result {
                    Ok(()) => {
                        next_request += requests.len() as i64;
                        next_event += events.len() as i64;
                        Ok((requests, events))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "storing a batch failed");
                        Err(e.to_string())
                    }
                };
                let _ = reply.send(answer);
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
                    let peers = u64::try_from(s.peers).unwrap_or(u64::MAX);
                    changed.extend(state.polled(&name, s.height, &s.tip.to_string(), peers, now));
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
    let wanted: Vec<(String, String)> = {
        let state = shared.state();
        let mut seen = std::collections::HashSet::new();
        state
            .tips()
            .into_iter()
            .filter_map(|(url, tip)| state.missing(&tip, depth).map(|m| (url, m)))
            .filter(|(_, hash)| seen.insert(hash.clone()))
            .collect()
    };
    let fetched = futures_util::stream::iter(wanted)
        .map(|(url, hash)| {
            let shared = shared.clone();
            async move {
                let (Ok(url), Ok(hash)) = (url.parse(), hash.parse()) else {
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
        state.learn(
            &block.hash().to_string(),
            &block.header.prev_hash.to_string(),
            block.header.height,
            now,
        );
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
            if let Ok(boss) = serde_json::from_value::<super::model::BossAction>(
                value.get("action").cloned().unwrap_or_default(),
            ) {
                state.boss(&row.node, None, boss);
            }
        } else {
            state.event(&row.node, at, &row.kind, &value);
        }
    }
    tracing::info!(nodes = restored, events = events.len(), "reloaded");
    Ok(())
}
