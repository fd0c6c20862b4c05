//! [`State`]: what Sauron keeps in memory, every part bounded, and what is
//! computed from it.
//!
//! The state is a plain struct behind a `std::sync::Mutex` in
//! [`super::Shared`]: every method is synchronous and quick, so the lock is
//! never held across an `.await`. [`State`] applies what arrives (a
//! registration, a poll, an [`EngineEvent`], a boss report) to its parts:
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`nodes`] | the node registry: [`Node`], admission and eviction, liveness, peer samples |
//! | [`tree`] | the recent block tree: who mined and accepted each block when |
//! | [`consensus`] | the verdict over the live honest nodes' tips ([`Consensus`]) |
//! | [`propagation`] | delays from first report to each accept ([`Propagation`]) |
//!
//! Rejections by reason are a bounded map kept here.

pub mod consensus;
pub mod nodes;
pub mod propagation;
pub mod tree;

use std::collections::BTreeMap;

use crapcoin_core::{Address, BlockHash};

use super::db::NodeRecord;
use super::model::{BlockFacts, BossAction, EngineEvent};
pub use consensus::{Consensus, Verdict};
pub use nodes::{ALIVE_MS, Admit, Node};
pub use propagation::{HISTOGRAM_BOUNDS_MS, Propagation};
pub use tree::BlockEntry;

/// Most reasons counted separately in `/api/rejections`; the rest count as
/// `other`.
const MAX_REASONS: usize = 64;

/// What Sauron keeps in memory.
#[derive(Debug)]
pub struct State {
    nodes: nodes::Nodes,
    tree: tree::Tree,
    rejections: BTreeMap<String, u64>,
    k: u64,
}

impl State {
    /// An empty state holding at most `max_nodes` nodes and `max_blocks`
    /// blocks, with settling depth `k`.
    pub fn new(max_nodes: usize, max_blocks: usize, k: u64) -> Self {
        Self {
            nodes: nodes::Nodes::new(max_nodes),
            tree: tree::Tree::new(max_blocks),
            rejections: BTreeMap::new(),
            k,
        }
    }

    /// Puts back a persisted node.
    pub fn restore(&mut self, record: NodeRecord) {
        self.nodes.restore(record);
    }

    /// A verified registration. Returns the admission outcome and the node
    /// as now known.
    pub fn register(
        &mut self,
        name: &str,
        url: &str,
        address: Address,
        behaviour: &str,
        now_ms: u64,
    ) -> (Admit, Option<Node>) {
        self.nodes.register(name, url, address, behaviour, now_ms)
    }

    /// A batch arrived from `name` at `url`: it is alive. Unknown nodes
    /// are added (unverified) when there is room.
    pub fn heard(&mut self, name: &str, url: &str, now_ms: u64) -> (Admit, Option<Node>) {
        self.nodes.heard(name, url, now_ms)
    }

    /// A status poll answered: updates the node; returns it when a shown
    /// field changed.
    pub fn polled(
        &mut self,
        name: &str,
        height: u64,
        tip: BlockHash,
        peers: u64,
        now_ms: u64,
    ) -> Option<Node> {
        self.nodes.polled(name, height, tip, peers, now_ms)
    }

    /// Recomputes liveness; returns the nodes whose `alive` changed.
    pub fn refresh_liveness(&mut self, now_ms: u64) -> Vec<Node> {
        self.nodes.refresh_liveness(now_ms)
    }

    /// What the boss did to `name`; returns the node as now known.
    pub fn boss(&mut self, name: &str, url: Option<&str>, action: BossAction) -> Option<Node> {
        self.nodes.boss(name, url, action)
    }

    /// Applies one engine event `node` reported at `at_ms`.
    pub fn event(&mut self, node: &str, at_ms: u64, event: &EngineEvent) {
        match event {
            EngineEvent::Rejected { reason } => {
                let known = self.rejections.contains_key(reason);
                let key = if known || self.rejections.len() < MAX_REASONS {
                    reason.as_str()
                } else {
                    "other"
                };
                *self.rejections.entry(key.to_owned()).or_default() += 1;
            }
            EngineEvent::Mined(block) => {
                self.tree.reported(node, *block, at_ms, true);
                self.nodes.reported_best(node, block.hash, block.height);
            }
            EngineEvent::Accepted { block, best } => {
                self.tree.reported(node, *block, at_ms, false);
                if *best {
                    self.nodes.reported_best(node, block.hash, block.height);
                }
            }
            EngineEvent::Other => {}
        }
    }

    /// The first block of the chain ending at `tip` that the tree lacks,
    /// looking at most `depth` blocks down (and not below height 1).
    pub fn missing(&self, tip: BlockHash, depth: u64) -> Option<BlockHash> {
        self.tree.missing(tip, depth)
    }

    /// A block learnt by asking a node (not reported): it joins the tree
    /// so the consensus check can walk through it, without a delay sample.
    pub fn learn(&mut self, block: BlockFacts, now_ms: u64) {
        self.tree.learn(block, now_ms);
    }

    /// Registered, polled nodes with a tip: `(url, tip)`.
    pub fn tips(&self) -> Vec<(String, BlockHash)> {
        self.nodes.tips()
    }

    /// Every node, by name.
    pub fn nodes(&self, now_ms: u64) -> Vec<Node> {
        self.nodes.list(now_ms)
    }

    /// How many nodes the table holds.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The persisted form of one node.
    pub fn record(&self, name: &str) -> Option<NodeRecord> {
        self.nodes.record(name)
    }

    /// Registered nodes to poll: those heard from within `recent_ms`.
    pub fn poll_targets(&self, now_ms: u64, recent_ms: u64) -> Vec<(String, String)> {
        self.nodes.poll_targets(now_ms, recent_ms)
    }

    /// Up to `count` random live, registered, unfired nodes, never the one
    /// at `exclude`.
    pub fn sample(&self, count: usize, exclude: Option<&str>, now_ms: u64) -> Vec<Node> {
        self.nodes.sample(count, exclude, now_ms)
    }

    /// The recent blocks, newest first, and each node's tip.
    pub fn blocks(&self) -> (Vec<BlockEntry>, BTreeMap<String, BlockHash>) {
        let blocks = self.tree.newest_first().cloned().collect();
        (blocks, self.nodes.tips_by_name().collect())
    }

    /// Rejected blocks by reason.
    pub fn rejections(&self) -> BTreeMap<String, u64> {
        self.rejections.clone()
    }

    /// `GET /api/propagation`.
    pub fn propagation(&self) -> Propagation {
        propagation::propagation(&self.tree)
    }

    /// `GET /api/consensus`: do all live honest nodes hold the same block
    /// at `shortest tip height - k`?
    pub fn consensus(&self, now_ms: u64) -> Consensus {
        consensus::consensus(&self.nodes, &self.tree, self.k, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::{State, Verdict};
    use crate::sauron::model::EngineEvent;
    use crapcoin_core::{Address, BlockHash};
    use serde_json::json;

    fn h(c: char) -> BlockHash {
        c.to_string().repeat(64).parse().expect("hex")
    }

    const A: Address = Address([7; 32]);

    fn accepted(state: &mut State, node: &str, at: u64, hash: char, parent: char, height: u64) {
        let event = json!({"kind": "block_accepted", "hash": h(hash), "parent": h(parent),
                           "height": height, "from": null, "best": true});
        let event = EngineEvent::parse("block_accepted", &event).expect("well formed");
        state.event(node, at, &event);
    }

    #[test]
    fn consensus_cases() {
        // Chain 0 <- a <- b <- c, fork b <- e <- f.
        struct Case {
            name: &'static str,
            tips: &'static [(&'static str, char, u64)],
            verdict: Verdict,
            common: Option<u64>,
        }
        let cases = [
            Case {
                name: "same tip",
                tips: &[("n0", 'c', 3), ("n1", 'c', 3)],
                verdict: Verdict::Consensus,
                common: Some(3),
            },
            Case {
                name: "one behind",
                tips: &[("n0", 'c', 3), ("n1", 'b', 2)],
                verdict: Verdict::Consensus,
                common: Some(2),
            },
            Case {
                name: "shallow fork within k",
                tips: &[("n0", 'c', 3), ("n1", 'e', 3)],
                verdict: Verdict::Consensus,
                common: Some(2),
            },
            Case {
                name: "deep fork",
                tips: &[("n0", 'c', 3), ("n1", 'f', 4)],
                verdict: Verdict::Consensus,
                common: Some(2),
            },
        ];
        for case in cases {
            let mut state = State::new(16, 100, 1);
            for (name, _, _) in case.tips {
                state.register(name, &format!("http://{name}"), A, "honest", 1000);
            }
            for (hash, parent, height) in [
                ('a', '0', 1),
                ('b', 'a', 2),
                ('c', 'b', 3),
                ('e', 'b', 3),
                ('f', 'e', 4),
            ] {
                accepted(&mut state, "other", 1000, hash, parent, height);
            }
            for (name, tip, height) in case.tips {
                state.polled(name, *height, h(*tip), 1, 1000);
            }
            let c = state.consensus(1000);
            assert_eq!(c.verdict, case.verdict, "{}", case.name);
            assert_eq!(c.common_height, case.common, "{}", case.name);
        }
        // k = 0: a fork at the tips is a fork.
        let mut state = State::new(16, 100, 0);
        for name in ["n0", "n1"] {
            state.register(name, "http://x", A, "honest", 1000);
        }
        for (hash, parent, height) in [('a', '0', 1), ('b', 'a', 2), ('c', 'b', 3), ('e', 'b', 3)] {
            accepted(&mut state, "other", 1000, hash, parent, height);
        }
        state.polled("n0", 3, h('c'), 1, 1000);
        state.polled("n1", 3, h('e'), 1, 1000);
        let c = state.consensus(1000);
        assert_eq!(
            (c.verdict, c.agreeing, c.max_fork_depth),
            (Verdict::Forked, 1, 1)
        );
        assert_eq!(
            State::new(1, 1, 2).consensus(0).verdict,
            Verdict::NoHonestNodes
        );
        assert_eq!(
            serde_json::to_value(Verdict::NoHonestNodes).expect("serialises"),
            "no_honest_nodes"
        );
    }

    #[test]
    fn propagation_measures_from_the_first_report() {
        let mut state = State::new(4, 10, 2);
        let mined = json!({"kind": "block_mined", "hash": h('a'), "parent": h('0'), "height": 1});
        accepted(&mut state, "n1", 1_030, 'a', '0', 1);
        let mined = EngineEvent::parse("block_mined", &mined).expect("well formed");
        state.event("n0", 1_000, &mined);
        accepted(&mut state, "n2", 1_300, 'a', '0', 1);
        let p = serde_json::to_value(state.propagation()).expect("serialises");
        assert_eq!(p["blocks"][0]["delays_ms"], json!({"n1": 30, "n2": 300}));
        assert_eq!(p["blocks"][0]["miner_node"], "n0");
        assert_eq!(p["samples"], 2);
    }
}
