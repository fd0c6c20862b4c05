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
//! | [`forks`] | blocks mined, the stale rate, the interval, miners' shares ([`Forks`]) |
//!
//! Rejections by reason are a bounded map kept here.
//!
//! # The honest window
//!
//! What the dashboard draws (`/api/blocks`, the propagation list) is the
//! [`Window`] of heights below the live honest nodes' highest tip, never
//! the newest or highest report of any node: a misbehaving node that
//! reports blocks at old heights, or a fake chain far ahead, cannot move
//! it. Without a live honest node it follows the live nodes, then the
//! tree.

pub mod consensus;
pub mod forks;
pub mod nodes;
pub mod propagation;
pub mod tree;

use std::collections::BTreeMap;

use crapcoin_core::{Address, BlockHash};
use serde::{Deserialize, Serialize};

use super::db::NodeRecord;
use super::model::{BlockFacts, BossAction, EngineEvent};
pub use consensus::{Consensus, Verdict};
pub use forks::{Delays, Forks, MinerShare, SeriesPoint};
pub use nodes::{ALIVE_MS, Admit, Node, Polled};
pub use propagation::{HISTOGRAM_BOUNDS_MS, Propagation};
pub use tree::BlockEntry;

/// Most reasons counted separately in `/api/rejections`; the rest count as
/// `other`.
const MAX_REASONS: usize = 64;

/// Heights the [`Window`] spans below its anchor.
pub const WINDOW_HEIGHTS: u64 = 64;
/// Heights the [`Window`] reaches above its anchor (a private lead, a
/// block still travelling).
pub const WINDOW_AHEAD: u64 = 3;
/// Most blocks one `/api/blocks` answer lists.
const MAX_WINDOW_BLOCKS: usize = 1_000;

/// What a [`Window`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The highest tip of a live honest node.
    Honest,
    /// No live honest node: the highest tip of any live node.
    Live,
    /// No live node with a tip: the highest block of the tree.
    Tree,
    /// Nothing known yet.
    Empty,
}

/// The heights the dashboard shows: `from..=to`, up to
/// [`WINDOW_HEIGHTS`] below the anchor and [`WINDOW_AHEAD`] above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The lowest height shown.
    pub from: u64,
    /// The highest height shown.
    pub to: u64,
    /// The anchor's height (the honest best height, usually).
    pub anchor_height: u64,
    /// What the anchor is.
    pub anchor: Anchor,
}

impl Window {
    /// Whether `height` is inside.
    pub fn contains(&self, height: u64) -> bool {
        (self.from..=self.to).contains(&height)
    }
}

/// `GET /api/blocks`: the tree's blocks inside the honest window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocks {
    /// The blocks with a height inside `window`, newest report first (at
    /// most 1,000).
    pub blocks: Vec<BlockEntry>,
    /// Every node's tip, by name.
    pub tips: BTreeMap<String, BlockHash>,
    /// The heights shown.
    pub window: Window,
}

/// What Sauron keeps in memory.
#[derive(Debug, Clone)]
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
    pub fn polled(&mut self, name: &str, poll: Polled, now_ms: u64) -> Option<Node> {
        self.nodes.polled(name, poll, now_ms)
    }

    /// The hash share `name` announced when registering.
    pub fn announced_share(&mut self, name: &str, share: f64) {
        self.nodes.announced_share(name, share);
    }

    /// A node of a replayed simulation, by name, behaviour and hash share.
    pub fn simulated(&mut self, name: &str, behaviour: &str, hash_share: Option<f64>) {
        self.nodes.simulated(name, behaviour, hash_share);
    }

    /// Sets when `name` was last heard from (a replay's position).
    pub fn seen(&mut self, name: &str, at_ms: u64) {
        self.nodes.seen(name, at_ms);
    }

    /// A reorg put `name`'s best chain on `tip` at `height`.
    pub fn switched(&mut self, name: &str, tip: BlockHash, height: u64) {
        self.nodes.switched(name, tip, height);
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

    /// The heights the dashboard shows (see [the module docs](self)).
    pub fn window(&self, now_ms: u64) -> Window {
        let highest = |nodes: Vec<&Node>| {
            nodes
                .iter()
                .filter(|n| n.tip.is_some())
                .map(|n| n.height)
                .max()
        };
        let (anchor, anchor_height) = if let Some(h) = highest(self.nodes.live_honest(now_ms)) {
            (Anchor::Honest, h)
        } else if let Some(h) = highest(self.nodes.live(now_ms)) {
            (Anchor::Live, h)
        } else if let Some(h) = self.tree.iter().map(|b| b.height).max() {
            (Anchor::Tree, h)
        } else {
            (Anchor::Empty, 0)
        };
        Window {
            from: anchor_height.saturating_sub(WINDOW_HEIGHTS - 1),
            to: anchor_height.saturating_add(WINDOW_AHEAD),
            anchor_height,
            anchor,
        }
    }

    /// `GET /api/blocks`: the blocks inside the honest [`Window`], newest
    /// report first, and each node's tip.
    pub fn blocks(&self, now_ms: u64) -> Blocks {
        let window = self.window(now_ms);
        let blocks = self
            .tree
            .newest_first()
            .filter(|b| window.contains(b.height))
            .take(MAX_WINDOW_BLOCKS)
            .cloned()
            .collect();
        Blocks {
            blocks,
            tips: self.nodes.tips_by_name().collect(),
            window,
        }
    }

    /// Rejected blocks by reason.
    pub fn rejections(&self) -> BTreeMap<String, u64> {
        self.rejections.clone()
    }

    /// `GET /api/propagation`: the listed blocks are those of the honest
    /// [`Window`], highest first.
    pub fn propagation(&self, now_ms: u64) -> Propagation {
        propagation::propagation(&self.tree, &self.window(now_ms))
    }

    /// `GET /api/forks`: blocks mined, the stale rate, the interval, each
    /// miner's share, propagation, over the honest best chain.
    pub fn forks(&self, now_ms: u64) -> Forks {
        forks::forks(&self.nodes, &self.tree, now_ms)
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

    fn poll(height: u64, tip: char) -> super::Polled {
        super::Polled {
            height,
            tip: h(tip),
            peers: 1,
            hash_share: None,
        }
    }

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
                state.polled(name, poll(*height, *tip), 1000);
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
        state.polled("n0", poll(3, 'c'), 1000);
        state.polled("n1", poll(3, 'e'), 1000);
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
        let p = serde_json::to_value(state.propagation(1_300)).expect("serialises");
        assert_eq!(p["blocks"][0]["delays_ms"], json!({"n1": 30, "n2": 300}));
        assert_eq!(p["blocks"][0]["miner_node"], "n0");
        assert_eq!(p["samples"], 2);
    }

    fn mined(state: &mut State, node: &str, at: u64, hash: char, parent: char, height: u64) {
        let event = json!({"kind": "block_mined", "hash": h(hash), "parent": h(parent),
                           "height": height, "tx": null});
        let event = EngineEvent::parse("block_mined", &event).expect("well formed");
        state.event(node, at, &event);
    }

    /// Registers honest `n0`, `n1` and misbehaving `bad` with hash shares
    /// 0.4, 0.4 and 0.2, and puts the honest ones on `tip`.
    fn three_nodes(state: &mut State, tip: char, height: u64) {
        for (name, behaviour, share) in [
            ("n0", "honest", 0.4),
            ("n1", "honest", 0.4),
            ("bad", "selfish", 0.2),
        ] {
            state.register(name, &format!("http://{name}"), A, behaviour, 1000);
            let mut p = poll(height, tip);
            p.hash_share = Some(share);
            state.polled(name, p, 1000);
        }
    }

    #[test]
    fn a_synthetic_tree_gives_the_exact_stale_rate_and_shares() {
        // Best chain 0 <- a <- b <- c <- d (mined by n0, n1, n0, bad);
        // stale: e on a (n1), f on b (bad), 1 on f (bad); 2 above the tip
        // (bad, not counted yet); 3 at height 2 reported only as accepted
        // (miner unknown: not counted as mined).
        let mut state = State::new(16, 100, 2);
        for (node, at, hash, parent, height) in [
            ("n0", 1_000, 'a', '0', 1),
            ("n1", 2_000, 'b', 'a', 2),
            ("n1", 2_100, 'e', 'a', 2),
            ("bad", 2_900, 'f', 'b', 3),
            ("n0", 3_000, 'c', 'b', 3),
            ("bad", 3_500, '1', 'f', 4),
            ("bad", 4_000, 'd', 'c', 4),
            ("bad", 4_500, '2', 'd', 5),
        ] {
            mined(&mut state, node, at, hash, parent, height);
        }
        accepted(&mut state, "n1", 2_050, '3', 'a', 2);
        // Delays of d: n0 +10, n1 +30; of c: n1 +100.
        accepted(&mut state, "n0", 4_010, 'd', 'c', 4);
        accepted(&mut state, "n1", 4_030, 'd', 'c', 4);
        accepted(&mut state, "n1", 3_100, 'c', 'b', 3);
        three_nodes(&mut state, 'd', 4);
        // `bad` sits on its own branch: the honest tip decides.
        let mut on_branch = poll(4, '1');
        on_branch.hash_share = Some(0.2);
        state.polled("bad", on_branch, 1000);
        let f = state.forks(1000);
        assert_eq!(f.best_tip, Some(h('d')));
        assert_eq!((f.from_height, f.best_height), (Some(1), Some(4)));
        assert_eq!(f.blocks_mined, 7, "a b c d e f 1");
        assert_eq!(f.blocks_on_best_chain, 4);
        assert_eq!(f.mined_on_best_chain, 4);
        assert_eq!(f.stale_blocks, 3);
        assert_eq!(f.stale_rate, Some(3.0 / 7.0));
        // a at 1,000 ms, d at 4,000 ms: 3 intervals.
        assert_eq!(f.mean_interval_ms, Some(1_000.0));
        let shares: Vec<_> = f
            .miners
            .iter()
            .map(|m| {
                (
                    m.node.as_str(),
                    m.hash_share,
                    m.mined,
                    m.on_best_chain,
                    m.best_chain_share,
                )
            })
            .collect();
        assert_eq!(
            shares,
            [
                ("bad", Some(0.2), 3, 1, Some(0.25)),
                ("n0", Some(0.4), 2, 2, Some(0.5)),
                ("n1", Some(0.4), 2, 1, Some(0.25)),
            ]
        );
        assert!(!f.miners[0].honest && f.miners[1].honest);
        // Delays: c +100 (n1), d +10 (n0), +30 (n1); 3 is 0 for its only
        // (first) reporter.
        assert_eq!(
            f.propagation,
            super::Delays {
                samples: 4,
                median_ms: Some(10),
                p90_ms: Some(100),
                max_ms: Some(100)
            }
        );
        // The series: 1 s buckets from 1,000 ms; 2,000..3,000 holds b, e, 3.
        assert_eq!(f.bucket_ms, 1_000);
        let points: Vec<_> = f
            .series
            .iter()
            .map(|p| (p.at_ms, p.blocks_mined, p.stale_blocks))
            .collect();
        assert_eq!(
            points,
            [(1_000, 1, 0), (2_000, 3, 2), (3_000, 2, 1), (4_000, 1, 0)]
        );
        assert_eq!(f.series[1].stale_rate, Some(2.0 / 3.0));
        assert_eq!(f.series[3].propagation.max_ms, Some(30));
        let json = serde_json::to_value(&f).expect("serialises");
        let back: super::Forks = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, f);
    }

    #[test]
    fn the_majority_tip_is_the_best_chain_and_nothing_without_honest_nodes() {
        let mut state = State::new(16, 100, 2);
        for (node, at, hash, parent, height) in [
            ("n0", 1_000, 'a', '0', 1),
            ("n0", 2_000, 'b', 'a', 2),
            ("n1", 2_000, 'e', 'a', 2),
        ] {
            mined(&mut state, node, at, hash, parent, height);
        }
        for name in ["n0", "n1", "n2"] {
            state.register(name, "http://x", A, "honest", 1000);
        }
        state.polled("n0", poll(2, 'b'), 1000);
        state.polled("n1", poll(2, 'e'), 1000);
        state.polled("n2", poll(2, 'e'), 1000);
        let f = state.forks(1000);
        assert_eq!(f.best_tip, Some(h('e')));
        assert_eq!(f.stale_rate, Some(1.0 / 3.0));
        // n0 and n1 mined on the best chain, without a hash share known.
        assert!(f.miners.iter().all(|m| m.hash_share.is_none()));
        let empty = State::new(4, 10, 2).forks(0);
        assert_eq!(
            (empty.best_tip, empty.blocks_mined, empty.stale_rate),
            (None, 0, None)
        );
        assert!(empty.series.is_empty() && empty.miners.is_empty());
    }

    #[test]
    fn the_window_follows_the_honest_tips() {
        let mut state = State::new(16, 4096, 2);
        // An honest chain up to 192.
        let hash = |i: u64| -> BlockHash {
            BlockHash([
                (i % 251) as u8,
                (i / 251) as u8,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ])
        };
        let report =
            |state: &mut State, node: &str, hash: BlockHash, parent: BlockHash, height: u64| {
                let event = EngineEvent::Mined(crate::sauron::model::BlockFacts {
                    hash,
                    parent,
                    height,
                });
                state.event(node, 1000 + height, &event);
            };
        for i in 1..=192 {
            report(&mut state, "n0", hash(i), hash(i - 1), i);
        }
        state.register("n0", "http://n0", A, "honest", 1000);
        state.polled(
            "n0",
            super::Polled {
                height: 192,
                tip: hash(192),
                peers: 1,
                hash_share: None,
            },
            1000,
        );
        state.register("bad", "http://bad", A, "random", 1000);
        // Then the misbehaving node reports a branch at old heights and a
        // fake chain far ahead: the newest and the highest reports.
        let old = |i: u64| {
            BlockHash([
                (i % 251) as u8,
                0,
                2,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ])
        };
        let far = |i: u64| {
            BlockHash([
                (i % 251) as u8,
                0,
                3,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ])
        };
        for i in 96..=106 {
            report(
                &mut state,
                "bad",
                old(i),
                if i == 96 { hash(95) } else { old(i - 1) },
                i,
            );
        }
        for i in 500..=510 {
            report(&mut state, "bad", far(i), far(i - 1), i);
        }
        let w = state.window(1000);
        assert_eq!(
            (w.anchor, w.anchor_height, w.from, w.to),
            (super::Anchor::Honest, 192, 129, 195)
        );
        let blocks = state.blocks(1000);
        assert!(blocks.blocks.iter().any(|b| b.hash == hash(192)));
        assert!(
            blocks
                .blocks
                .iter()
                .all(|b| (129..=195).contains(&b.height)),
            "no old or far block"
        );
        let listed = state.propagation(1000).blocks;
        assert_eq!(listed.first().map(|b| b.height), Some(192));
        // Without the honest node, the live misbehaving node leads.
        state.boss("n0", None, crate::sauron::model::BossAction::Fired);
        assert_eq!(state.window(1000).anchor, super::Anchor::Live);
    }
}
