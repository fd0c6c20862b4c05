//! [`Metrics`]: counters the node keeps for `GET /metrics`, rendered in the
//! Prometheus text format.
//!
//! Events are counted as an [`Observer`] (blocks accepted, rejected by
//! reason, orphaned, reorgs, peers); requests by the HTTP layer (route
//! template, method and status, so the label set stays bounded whatever
//! paths callers send); gauges (height, peers, pools) are read from the
//! node when rendered.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crapcoin_core::{Event, Handle, Observer, ValidationError};

/// Counters of one node. Shared behind an `Arc` by the observer list, the
/// HTTP layer and the `/metrics` handler.
#[derive(Debug)]
pub struct Metrics {
    blocks_mined: AtomicU64,
    blocks_accepted: AtomicU64,
    blocks_orphaned: AtomicU64,
    /// One counter per [`ValidationError::REASONS`] entry, same order.
    blocks_rejected: Vec<AtomicU64>,
    reorgs: AtomicU64,
    reorg_blocks: AtomicU64,
    peers_added: AtomicU64,
    peers_dropped: AtomicU64,
    transfers_submitted: AtomicU64,
    transfers_included: AtomicU64,
    /// `(route template, method, status)` → count. Bounded: routes are
    /// templates (unknown paths count as `other`), methods are the few
    /// hyper knows by name, statuses are three digits.
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    connections_open: AtomicU64,
    connections_evicted: AtomicU64,
    reports_dropped: AtomicU64,
    reports_sent: AtomicU64,
    report_batches_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            blocks_mined: AtomicU64::new(0),
            blocks_accepted: AtomicU64::new(0),
            blocks_orphaned: AtomicU64::new(0),
            blocks_rejected: ValidationError::REASONS
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
            reorgs: AtomicU64::new(0),
            reorg_blocks: AtomicU64::new(0),
            peers_added: AtomicU64::new(0),
            peers_dropped: AtomicU64::new(0),
            transfers_submitted: AtomicU64::new(0),
            transfers_included: AtomicU64::new(0),
            requests: Mutex::new(BTreeMap::new()),
            connections_open: AtomicU64::new(0),
            connections_evicted: AtomicU64::new(0),
            reports_dropped: AtomicU64::new(0),
            reports_sent: AtomicU64::new(0),
            report_batches_failed: AtomicU64::new(0),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Counts one served request.
    pub fn request(&self, route: &'static str, method: &'static str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((route, method, status)).or_default() += 1;
    }

    /// Sets how many connections are being served (evicted ones, still
    /// closing, not counted).
    pub fn set_connections_open(&self, n: usize) {
        self.connections_open.store(n as u64, Ordering::Relaxed);
    }

    /// An idle connection was closed to make room for a new one.
    pub fn connection_evicted(&self) {
        bump(&self.connections_evicted);
    }

    /// Connections open now.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// A report for Sauron did not fit the queue and was dropped.
    pub fn report_dropped(&self) {
        bump(&self.reports_dropped);
    }

    /// Reports dropped so far.
    pub fn reports_dropped(&self) -> u64 {
        self.reports_dropped.load(Ordering::Relaxed)
    }

    /// A batch of `n` reports reached Sauron.
    pub fn reports_sent(&self, n: usize) {
        self.reports_sent.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A batch could not be delivered (its reports are dropped too).
    pub fn report_batch_failed(&self, n: usize) {
        bump(&self.report_batches_failed);
        self.reports_dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Blocks rejected for `reason` so far (0 for unknown reasons).
    pub fn rejected(&self, reason: &str) -> u64 {
        ValidationError::REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.blocks_rejected[i].load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition of these counters and of the node's
    /// gauges.
    pub fn render(&self, handle: &Handle) -> String {
        let mut out = String::with_capacity(4096);
        let status = handle.status();
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        let counter = |out: &mut String, name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        };
        gauge(
            &mut out,
            "crapcoin_height",
            "Height of the best chain.",
            status.height,
        );
        gauge(
            &mut out,
            "crapcoin_peers",
            "Peers in the peer table.",
            status.peers as u64,
        );
        gauge(
            &mut out,
            "crapcoin_orphans",
            "Blocks waiting for their parent.",
            handle.orphan_count() as u64,
        );
        gauge(
            &mut out,
            "crapcoin_mempool",
            "Transactions waiting to be mined.",
            handle.mempool_len() as u64,
        );
        gauge(
            &mut out,
            "crapcoin_auto_on",
            "1 while auto mode runs (configured and not paused), else 0.",
            u64::from(handle.auto_on()),
        );
        gauge(
            &mut out,
            "crapcoin_connections_open",
            "HTTP connections open.",
            self.connections_open(),
        );
        counter(
            &mut out,
            "crapcoin_connections_evicted_total",
            "Idle connections closed to make room.",
            &self.connections_evicted,
        );
        counter(
            &mut out,
            "crapcoin_blocks_mined_total",
            "Blocks this node mined.",
            &self.blocks_mined,
        );
        counter(
            &mut out,
            "crapcoin_blocks_accepted_total",
            "Valid new blocks stored.",
            &self.blocks_accepted,
        );
        counter(
            &mut out,
            "crapcoin_blocks_orphaned_total",
            "Blocks put in the orphan pool.",
            &self.blocks_orphaned,
        );
        let _ = writeln!(
            out,
            "# HELP crapcoin_blocks_rejected_total Blocks refused, by reason.\n# TYPE crapcoin_blocks_rejected_total counter"
        );
        for (reason, count) in ValidationError::REASONS.iter().zip(&self.blocks_rejected) {
            let _ = writeln!(
                out,
                "crapcoin_blocks_rejected_total{{reason=\"{reason}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        counter(
            &mut out,
            "crapcoin_reorgs_total",
            "Switches of the best chain to another branch.",
            &self.reorgs,
        );
        counter(
            &mut out,
            "crapcoin_reorg_blocks_total",
            "Blocks rolled back by reorgs.",
            &self.reorg_blocks,
        );
        counter(
            &mut out,
            "crapcoin_peers_added_total",
            "Peers added.",
            &self.peers_added,
        );
        counter(
            &mut out,
            "crapcoin_peers_dropped_total",
            "Peers dropped.",
            &self.peers_dropped,
        );
        counter(
            &mut out,
            "crapcoin_transfers_submitted_total",
            "Transactions accepted into the mempool.",
            &self.transfers_submitted,
        );
        counter(
            &mut out,
            "crapcoin_transfers_included_total",
            "Accepted transactions seen in a best-chain block.",
            &self.transfers_included,
        );
        gauge(
            &mut out,
            "crapcoin_gossip_dropped_total",
            "Gossip messages dropped because the outbox was full.",
            handle.dropped_sends(),
        );
        let _ = writeln!(
            out,
            "# HELP crapcoin_requests_total HTTP requests served, by route, method and status.\n# TYPE crapcoin_requests_total counter"
        );
        {
            let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            for ((route, method, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "crapcoin_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
                );
            }
        }
        counter(
            &mut out,
            "crapcoin_reports_dropped_total",
            "Reports for Sauron dropped (queue full or delivery failed).",
            &self.reports_dropped,
        );
        counter(
            &mut out,
            "crapcoin_reports_sent_total",
            "Reports delivered to Sauron.",
            &self.reports_sent,
        );
        counter(
            &mut out,
            "crapcoin_report_batches_failed_total",
            "Report batches Sauron did not take.",
            &self.report_batches_failed,
        );
        out
    }
}

impl Observer for Metrics {
    fn on_event(&self, _node: &str, event: &Event) {
        match event {
            Event::BlockMined { .. } => bump(&self.blocks_mined),
            Event::BlockAccepted { .. } => bump(&self.blocks_accepted),
            Event::BlockOrphaned { .. } => bump(&self.blocks_orphaned),
            Event::BlockRejected { reason, .. } => {
                if let Some(i) = ValidationError::REASONS
                    .iter()
                    .position(|r| *r == reason.reason())
                {
                    bump(&self.blocks_rejected[i]);
                }
            }
            Event::Reorg { depth, .. } => {
                bump(&self.reorgs);
                self.reorg_blocks
                    .fetch_add(*depth as u64, Ordering::Relaxed);
            }
            Event::PeerAdded { .. } => bump(&self.peers_added),
            Event::PeerDropped { .. } => bump(&self.peers_dropped),
            Event::TransferSubmitted { .. } => bump(&self.transfers_submitted),
            Event::TransferIncluded { .. } => bump(&self.transfers_included),
            _ => {}
        }
    }
}
