//! [`Metrics`]: counters the node keeps for `GET /metrics`, rendered in the
//! Prometheus (OpenMetrics) text format by the `prometheus-client` crate:
//! the exposition format (escaping, `_total` suffixes, `# TYPE`/`# HELP`,
//! `# EOF`) is that crate's job, not hand-written `writeln!`s.
//!
//! Events are counted as an [`Observer`] (blocks accepted, rejected by
//! reason, orphaned, reorgs, peers); requests by the HTTP layer (route
//! template, method and status, so the label set stays bounded whatever
//! paths callers send); gauges (height, peers, pools) are read from the
//! node when rendered.

use std::sync::atomic::AtomicU64;

use crapcoin_core::{Event, Handle, Observer, ValidationError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type U64Gauge = Gauge<u64, AtomicU64>;
type F64Gauge = Gauge<f64, AtomicU64>;

/// Labels of `crapcoin_blocks_rejected_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Labels of `crapcoin_requests_total`. Bounded: routes are templates
/// (unknown paths count as `other`), methods are the few hyper knows by
/// name, statuses are three digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// Gauges read from the node when rendered.
#[derive(Debug, Default)]
struct NodeGauges {
    height: U64Gauge,
    peers: U64Gauge,
    orphans: U64Gauge,
    mempool: U64Gauge,
    auto_on: U64Gauge,
    gossip_dropped: U64Gauge,
    tx_relays_dropped: U64Gauge,
    blocks_known: U64Gauge,
    mined_on_best_chain: U64Gauge,
    stale_rate: F64Gauge,
    hash_share: F64Gauge,
    faults_active: U64Gauge,
    fault_failed_calls: U64Gauge,
}

/// Counters of one node. Shared behind an `Arc` by the observer list, the
/// HTTP layer and the `/metrics` handler. The values live in
/// `prometheus-client` metrics registered under their exposition names;
/// rendering is that crate's text encoder.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    gauges: NodeGauges,
    blocks_mined: Counter,
    blocks_accepted: Counter,
    blocks_orphaned: Counter,
    blocks_rejected: Family<ReasonLabels, Counter>,
    reorgs: Counter,
    reorg_blocks: Counter,
    peers_added: Counter,
    peers_dropped: Counter,
    transfers_submitted: Counter,
    transfers_included: Counter,
    requests: Family<RequestLabels, Counter>,
    connections_open: U64Gauge,
    connections_evicted: Counter,
    reports_dropped: Counter,
    reports_sent: Counter,
    report_batches_failed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            gauges: NodeGauges::default(),
            blocks_mined: Counter::default(),
            blocks_accepted: Counter::default(),
            blocks_orphaned: Counter::default(),
            blocks_rejected: Family::default(),
            reorgs: Counter::default(),
            reorg_blocks: Counter::default(),
            peers_added: Counter::default(),
            peers_dropped: Counter::default(),
            transfers_submitted: Counter::default(),
            transfers_included: Counter::default(),
            requests: Family::default(),
            connections_open: U64Gauge::default(),
            connections_evicted: Counter::default(),
            reports_dropped: Counter::default(),
            reports_sent: Counter::default(),
            report_batches_failed: Counter::default(),
        };
        // Every reason is shown, 0 until one happens.
        for reason in ValidationError::REASONS {
            drop(m.blocks_rejected.get_or_create(&ReasonLabels { reason }));
        }
        // Counters are registered without `_total`: the encoder adds it.
        let r = &mut m.registry;
        let g = &m.gauges;
        r.register(
            "crapcoin_height",
            "Height of the best chain",
            g.height.clone(),
        );
        r.register("crapcoin_peers", "Peers in the peer table", g.peers.clone());
        r.register(
            "crapcoin_orphans",
            "Blocks waiting for their parent",
            g.orphans.clone(),
        );
        r.register(
            "crapcoin_mempool",
            "Transactions waiting to be mined",
            g.mempool.clone(),
        );
        r.register(
            "crapcoin_auto_on",
            "1 while auto mode runs (configured and not paused), else 0",
            g.auto_on.clone(),
        );
        r.register(
            "crapcoin_blocks_known",
            "Blocks in the block tree (best chain and side branches, genesis not counted)",
            g.blocks_known.clone(),
        );
        r.register(
            "crapcoin_blocks_mined_on_best_chain",
            "Blocks of the best chain this node mined",
            g.mined_on_best_chain.clone(),
        );
        r.register(
            "crapcoin_stale_rate",
            "Known blocks off the best chain over known blocks: the network's stale rate as this node sees it",
            g.stale_rate.clone(),
        );
        r.register(
            "crapcoin_hash_share",
            "This node's share of the network's hash power (0 when it mines on demand)",
            g.hash_share.clone(),
        );
        r.register(
            "crapcoin_faults_active",
            "Network faults in force on this node (unreachable, latency, loss, skew: 0 to 4)",
            g.faults_active.clone(),
        );
        r.register(
            "crapcoin_fault_failed_calls_total",
            "Calls to peers failed by a fault (unreachable or lost)",
            g.fault_failed_calls.clone(),
        );
        r.register(
            "crapcoin_tx_relays_dropped_total",
            "Transaction relays dropped because the relay queue was full",
            g.tx_relays_dropped.clone(),
        );
        r.register(
            "crapcoin_connections_open",
            "HTTP connections open",
            m.connections_open.clone(),
        );
        r.register(
            "crapcoin_connections_evicted",
            "Idle connections closed to make room",
            m.connections_evicted.clone(),
        );
        r.register(
            "crapcoin_blocks_mined",
            "Blocks this node mined",
            m.blocks_mined.clone(),
        );
        r.register(
            "crapcoin_blocks_accepted",
            "Valid new blocks stored",
            m.blocks_accepted.clone(),
        );
        r.register(
            "crapcoin_blocks_orphaned",
            "Blocks put in the orphan pool",
            m.blocks_orphaned.clone(),
        );
        r.register(
            "crapcoin_blocks_rejected",
            "Blocks refused, by reason",
            m.blocks_rejected.clone(),
        );
        r.register(
            "crapcoin_reorgs",
            "Switches of the best chain to another branch",
            m.reorgs.clone(),
        );
        r.register(
            "crapcoin_reorg_blocks",
            "Blocks rolled back by reorgs",
            m.reorg_blocks.clone(),
        );
        r.register("crapcoin_peers_added", "Peers added", m.peers_added.clone());
        r.register(
            "crapcoin_peers_dropped",
            "Peers dropped",
            m.peers_dropped.clone(),
        );
        r.register(
            "crapcoin_transfers_submitted",
            "Transactions accepted into the mempool",
            m.transfers_submitted.clone(),
        );
        r.register(
            "crapcoin_transfers_included",
            "Accepted transactions seen in a best-chain block",
            m.transfers_included.clone(),
        );
        // A gauge (as it always was), so its name keeps the `_total` given.
        r.register(
            "crapcoin_gossip_dropped_total",
            "Gossip messages dropped because the outbox was full",
            g.gossip_dropped.clone(),
        );
        r.register(
            "crapcoin_requests",
            "HTTP requests served, by route, method and status",
            m.requests.clone(),
        );
        r.register(
            "crapcoin_reports_dropped",
            "Reports for Sauron dropped (queue full or delivery failed)",
            m.reports_dropped.clone(),
        );
        r.register(
            "crapcoin_reports_sent",
            "Reports delivered to Sauron",
            m.reports_sent.clone(),
        );
        r.register(
            "crapcoin_report_batches_failed",
            "Report batches Sauron did not take",
            m.report_batches_failed.clone(),
        );
        m
    }
}

impl Metrics {
    /// Counts one served request.
    pub fn request(&self, route: &'static str, method: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    /// Sets how many connections are being served (evicted ones, still
    /// closing, not counted).
    pub fn set_connections_open(&self, n: usize) {
        self.connections_open.set(n as u64);
    }

    /// An idle connection was closed to make room for a new one.
    pub fn connection_evicted(&self) {
        self.connections_evicted.inc();
    }

    /// Connections closed so far to make room for new ones.
    pub fn connections_evicted(&self) -> u64 {
        self.connections_evicted.get()
    }

    /// Connections open now.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.get()
    }

    /// A report for Sauron did not fit the queue and was dropped.
    pub fn report_dropped(&self) {
        self.reports_dropped.inc();
    }

    /// Reports dropped so far.
    pub fn reports_dropped(&self) -> u64 {
        self.reports_dropped.get()
    }

    /// A batch of `n` reports reached Sauron.
    pub fn reports_sent(&self, n: usize) {
        self.reports_sent.inc_by(n as u64);
    }

    /// A batch could not be delivered (its reports are dropped too).
    pub fn report_batch_failed(&self, n: usize) {
        self.report_batches_failed.inc();
        self.reports_dropped.inc_by(n as u64);
    }

    /// Blocks rejected for `reason` so far (0 for unknown reasons).
    pub fn rejected(&self, reason: &str) -> u64 {
        ValidationError::REASONS
            .iter()
            .find(|r| **r == reason)
            .map_or(0, |reason| {
                self.blocks_rejected
                    .get_or_create(&ReasonLabels { reason })
                    .get()
            })
    }

    /// The Prometheus (OpenMetrics) text exposition of these counters and
    /// of the node's gauges.
    pub fn render(&self, handle: &Handle) -> String {
        let status = handle.status();
        let g = &self.gauges;
        g.height.set(status.height);
        g.peers.set(status.peers as u64);
        g.orphans.set(handle.orphan_count() as u64);
        g.mempool.set(handle.mempool_len() as u64);
        g.auto_on.set(u64::from(handle.auto_on()));
        g.gossip_dropped.set(handle.dropped_sends());
        let mining = handle.mining_stats();
        g.tx_relays_dropped.set(mining.dropped_tx_relays);
        g.blocks_known.set(mining.known);
        g.mined_on_best_chain.set(mining.mined_on_best_chain);
        g.stale_rate.set(mining.stale_rate);
        g.hash_share.set(mining.hash_share.unwrap_or(0.0));
        g.faults_active
            .set(handle.faults().current().count() as u64);
        g.fault_failed_calls.set(handle.faults().failed_calls());
        let mut out = String::with_capacity(4096);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Writing to a String does not fail; the encoder only forwards
            // the writer's errors.
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl Observer for Metrics {
    fn on_event(&self, _node: &str, event: &Event) {
        match event {
            Event::BlockMined { .. } => {
                self.blocks_mined.inc();
            }
            Event::BlockAccepted { .. } => {
                self.blocks_accepted.inc();
            }
            Event::BlockOrphaned { .. } => {
                self.blocks_orphaned.inc();
            }
            Event::BlockRejected { reason, .. } => {
                let reason = reason.reason();
                if let Some(reason) = ValidationError::REASONS.iter().find(|r| **r == reason) {
                    self.blocks_rejected
                        .get_or_create(&ReasonLabels { reason })
                        .inc();
                }
            }
            Event::Reorg { depth, .. } => {
                self.reorgs.inc();
                self.reorg_blocks.inc_by(*depth as u64);
            }
            Event::PeerAdded { .. } => {
                self.peers_added.inc();
            }
            Event::PeerDropped { .. } => {
                self.peers_dropped.inc();
            }
            Event::TransferSubmitted { .. } => {
                self.transfers_submitted.inc();
            }
            Event::TransferIncluded { .. } => {
                self.transfers_included.inc();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crapcoin_core::{Node, Params};

    use super::Metrics;

    #[tokio::test]
    async fn the_exposition_keeps_its_names_and_values() {
        let metrics = std::sync::Arc::new(Metrics::default());
        let handle = Node::builder(Params::with_difficulty(4))
            .observer(metrics.clone())
            .launch()
            .await
            .expect("launches");
        handle.mine().await.expect("mines");
        metrics.request("/status", "GET", 200);
        metrics.request("/status", "GET", 200);
        metrics.report_batch_failed(3);
        let text = metrics.render(&handle);
        for line in [
            "# HELP crapcoin_height Height of the best chain.",
            "# TYPE crapcoin_height gauge",
            "crapcoin_height 1",
            "crapcoin_peers 0",
            "crapcoin_auto_on 0",
            "crapcoin_blocks_mined_total 1",
            "crapcoin_blocks_rejected_total{reason=\"bad_pow\"} 0",
            "crapcoin_requests_total{route=\"/status\",method=\"GET\",status=\"200\"} 2",
            "crapcoin_gossip_dropped_total 0",
            "crapcoin_blocks_known 1",
            "crapcoin_blocks_mined_on_best_chain 1",
            "crapcoin_stale_rate 0.0",
            "crapcoin_tx_relays_dropped_total 0",
            "crapcoin_reports_dropped_total 3",
            "crapcoin_report_batches_failed_total 1",
            "crapcoin_connections_open 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(metrics.rejected("bad_pow"), 0);
        handle.shutdown().await;
    }
}
