//! [`State`]: what Sauron keeps in memory, every part bounded: the node
//! table, the recent block tree (with who accepted each block when), tips,
//! rejections by reason; and what is computed from them: propagation
//! delays and the consensus verdict.
//!
//! The state is a plain struct behind a `std::sync::Mutex` in
//! [`super::Shared`]: every method is synchronous and quick, so the lock is
//! never held across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use rand::seq::IndexedRandom;
use serde::Serialize;

use super::db::NodeRecord;
use super::model::{BossAction, block_facts};

/// A node is alive when heard from (registration, a status poll, a batch)
/// within this long.
pub const ALIVE_MS: u64 = 5_000;
/// Most reasons counted separately in `/api/rejections`; the rest count as
/// `other`.
const MAX_REASONS: usize = 64;
/// Most nodes that accept one block whose delay is kept.
const MAX_ACCEPTS_PER_BLOCK: usize = 256;
/// Blocks listed by `/api/propagation`.
const PROPAGATION_BLOCKS: usize = 100;
/// Upper bounds (ms) of the propagation histogram's buckets; the last
/// bucket is everything slower.
pub const HISTOGRAM_BOUNDS_MS: [u64; 9] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000];
/// How far below the shortest tip the consensus check looks for a common
/// block.
const MAX_COMMON_SEARCH: u64 = 256;

/// One node as Sauron knows it (`GET /api/nodes` rows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Where it is reached.
    pub url: String,
    /// Its wallet address ("" until known).
    pub address: String,
    /// Its behaviour ("" until known).
    pub behaviour: String,
    /// Whether the behaviour is `honest`.
    pub honest: bool,
    /// Height of its best chain, as last polled or reported.
    pub height: u64,
    /// Its best tip.
    pub tip: Option<String>,
    /// How many peers it knows.
    pub peers: u64,
    /// When it was last heard from, ms since the epoch.
    pub last_seen_ms: u64,
    /// Heard from within [`ALIVE_MS`].
    pub alive: bool,
    /// Fired by the Boss and not rehired since.
    pub fired: bool,
    /// Whether its URL was verified by a registration (only those are
    /// polled and handed out as peers).
    pub registered: bool,
}

impl Node {
    fn new(name: &str, url: &str) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            address: String::new(),
            behaviour: String::new(),
            honest: false,
            height: 0,
            tip: None,
            peers: 0,
            last_seen_ms: 0,
            alive: false,
            fired: false,
            registered: false,
        }
    }

    /// The row to persist.
    pub fn record(&self) -> NodeRecord {
        NodeRecord {
            name: self.name.clone(),
            url: self.url.clone(),
            address: self.address.clone(),
            behaviour: self.behaviour.clone(),
            registered: self.registered,
            fired: self.fired,
            last_seen_ms: i64::try_from(self.last_seen_ms).unwrap_or(i64::MAX),
            height: i64::try_from(self.height).unwrap_or(i64::MAX),
            tip: self.tip.clone(),
        }
    }
}

/// One block of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockEntry {
    /// The block.
    pub hash: String,
    /// Its parent.
    pub parent: String,
    /// Its height.
    pub height: u64,
    /// When a node first reported it.
    pub first_seen_ms: u64,
    /// The node that mined it, when one said so.
    pub miner_node: Option<String>,
    /// Per node, the delay from `first_seen_ms` to its accept, ms.
    #[serde(skip)]
    accepts: Vec<(String, u64)>,
}

/// `GET /api/consensus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consensus {
    /// Live honest nodes (alive, not fired, behaviour `honest`).
    pub live_honest: usize,
    /// How many of them hold the majority block at the check height.
    pub agreeing: usize,
    /// The highest height (at most the shortest live honest tip) at which
    /// every live honest node holds the same block; `None` when unknown.
    pub common_height: Option<u64>,
    /// Shortest live honest tip height minus `common_height`: how deep
    /// the disagreement goes (0 when they share the shortest tip's chain).
    pub max_fork_depth: u64,
    /// `consensus`, `forked` or `no_honest_nodes`.
    pub verdict: &'static str,
    /// The settling depth: nodes must agree at `shortest tip - k`.
    pub k: u64,
}

/// Outcome of adding a node to a full table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// It is in the table (it was, or there was room).
    In,
    /// It is in; these long-dead nodes were evicted for it.
    Evicted(String),
    /// The table is full of live nodes.
    Full,
}

/// What Sauron keeps in memory.
#[derive(Debug)]
pub struct State {
    nodes: HashMap<String, Node>,
    max_nodes: usize,
    blocks: HashMap<String, BlockEntry>,
    order: VecDeque<String>,
    max_blocks: usize,
    rejections: BTreeMap<String, u64>,
    k: u64,
}

impl State {
    /// An empty state holding at most `max_nodes` nodes and `max_blocks`
    /// blocks, with settling depth `k`.
    pub fn new(max_nodes: usize, max_blocks: usize, k: u64) -> Self {
        Self {
            nodes: HashMap::new(),
            max_nodes: max_nodes.max(1),
            blocks: HashMap::new(),
            order: VecDeque::new(),
            max_blocks: max_blocks.max(1),
            rejections: BTreeMap::new(),
            k,
        }
    }

    /// Puts back a persisted node.
    pub fn restore(&mut self, record: NodeRecord) {
        if self.nodes.len() >= self.max_nodes {
            return;
        }
        let mut node = Node::new(&record.name, &record.url);
        node.address = record.address;
        node.honest = record.behaviour == "honest";
        node.behaviour = record.behaviour;
        node.registered = record.registered;
        node.fired = record.fired;
        node.last_seen_ms = u64::try_from(record.last_seen_ms).unwrap_or(0);
        node.height = u64::try_from(record.height).unwrap_or(0);
        node.tip = record.tip;
        self.nodes.insert(node.name.clone(), node);
    }

    /// Makes room for `name` if needed: evicts the node heard from least
    /// recently when it is not alive.
    fn admit(&mut self, name: &str, now_ms: u64) -> Admit {
        if self.nodes.contains_key(name) || self.nodes.len() < self.max_nodes {
            return Admit::In;
        }
        let victim = self
            .nodes
            .values()
            .filter(|n| now_ms.saturating_sub(n.last_seen_ms) > ALIVE_MS)
            .min_by_key(|n| n.last_seen_ms)
            .map(|n| n.name.clone());
        match victim {
            Some(victim) => {
                self.nodes.remove(&victim);
                Admit::Evicted(victim)
            }
            None => Admit::Full,
        }
    }

    /// A verified registration. Returns the admission outcome and the node
    /// as now known.
    pub fn register(
        &mut self,
        name: &str,
        url: &str,
        address: &str,
        behaviour: &str,
        now_ms: u64,
    ) -> (Admit, Option<Node>) {
        let admit = self.admit(name, now_ms);
        if admit == Admit::Full {
            return (admit, None);
        }
        // A URL belongs to one node: a newer registration of it under
        // another name replaces the old one's claim.
        for other in self.nodes.values_mut() {
            if other.url == url && other.name != name {
                other.registered = false;
            }
        }
        let node = self
            .nodes
            .entry(name.to_owned())
            .or_insert_with(|| Node::new(name, url));
        node.url = url.to_owned();
        node.address = address.to_owned();
        node.behaviour = behaviour.to_owned();
        node.honest = behaviour == "honest";
        node.registered = true;
        node.last_seen_ms = now_ms;
        node.alive = true;
        (admit, Some(node.clone()))
    }

    /// A batch arrived from `name` at `url`: it is alive. Unknown nodes
    /// are added (unverified) when there is room.
    pub fn heard(&mut self, name: &str, url: &str, now_ms: u64) -> (Admit, Option<Node>) {
        let admit = self.admit(name, now_ms);
        if admit == Admit::Full {
            return (admit, None);
        }
        let node = self
            .nodes
            .entry(name.to_owned())
            .or_insert_with(|| Node::new(name, url));
        node.last_seen_ms = now_ms;
        (admit, Some(node.clone()))
    }

    /// A status poll answered: updates the node; returns it when a shown
    /// field changed.
    pub fn polled(
        &mut self,
        name: &str,
        height: u64,
        tip: &str,
        peers: u64,
        now_ms: u64,
    ) -> Option<Node> {
        let node = self.nodes.get_mut(name)?;
        let was_alive = node.alive;
        node.last_seen_ms = now_ms;
        node.alive = true;
        let changed = node.height != height
            || node.tip.as_deref() != Some(tip)
            || node.peers != peers
            || !was_alive;
        node.height = height;
        node.tip = Some(tip.to_owned());
        node.peers = peers;
        changed.then(|| node.clone())
    }

    /// Recomputes liveness; returns the nodes whose `alive` changed.
    pub fn refresh_liveness(&mut self, now_ms: u64) -> Vec<Node> {
        let mut changed = Vec::new();
        for node in self.nodes.values_mut() {
            let alive = now_ms.saturating_sub(node.last_seen_ms) <= ALIVE_MS;
            if alive != node.alive {
                node.alive = alive;
                changed.push(node.clone());
            }
        }
        changed
    }

    /// What the boss did to `name`; returns the node as now known.
    pub fn boss(&mut self, name: &str, url: Option<&str>, action: BossAction) -> Option<Node> {
        let node = self.nodes.get_mut(name)?;
        match action {
            BossAction::Fired => node.fired = true,
            BossAction::Rehired | BossAction::Hired => node.fired = false,
            BossAction::Paused | BossAction::Resumed => {}
        }
        if let Some(url) = url {
            node.url = url.to_owned();
        }
        Some(node.clone())
    }

    /// Applies one stored engine event of `node`.
    pub fn event(&mut self, node: &str, at_ms: u64, kind: &str, event: &serde_json::Value) {
        if kind == "block_rejected" {
            let reason = event
                .get("reason")
                .and_then(|r| {
                    r.as_str()
                        .or_else(|| r.get("reason").and_then(|v| v.as_str()))
                })
                .unwrap_or("unknown");
            let known = self.rejections.contains_key(reason);
            let key = if known || self.rejections.len() < MAX_REASONS {
                reason
            } else {
                "other"
            };
            *self.rejections.entry(key.to_owned()).or_default() += 1;
            return;
        }
        let Ok(Some(facts)) = block_facts(kind, event) else {
            return;
        };
        let mined = kind == "block_mined";
        let best = mined || event.get("best").and_then(|b| b.as_bool()) == Some(true);
        if !self.blocks.contains_key(&facts.hash) {
            self.order.push_back(facts.hash.clone());
            self.blocks.insert(
                facts.hash.clone(),
                BlockEntry {
                    hash: facts.hash.clone(),
                    parent: facts.parent.clone(),
                    height: facts.height,
                    first_seen_ms: at_ms,
                    miner_node: None,
                    accepts: Vec::new(),
                },
            );
            while self.order.len() > self.max_blocks {
                if let Some(old) = self.order.pop_front() {
                    self.blocks.remove(&old);
                }
            }
        }
        if let Some(block) = self.blocks.get_mut(&facts.hash) {
            if mined {
                block.miner_node = Some(node.to_owned());
            }
            // A miner's report may come after another node's accept.
            if at_ms < block.first_seen_ms {
                let shift = block.first_seen_ms - at_ms;
                block.first_seen_ms = at_ms;
                for (_, delay) in &mut block.accepts {
                    *delay += shift;
                }
            }
            if !mined
                && block.accepts.len() < MAX_ACCEPTS_PER_BLOCK
                && !block.accepts.iter().any(|(n, _)| n == node)
            {
                block
                    .accepts
                    .push((node.to_owned(), at_ms - block.first_seen_ms));
            }
        }
        if best
            && let Some(n) = self.nodes.get_mut(node)
            && facts.height >= n.height
        {
            n.height = facts.height;
            n.tip = Some(facts.hash);
        }
    }

    /// The first block of the chain ending at `tip` that the tree lacks,
    /// looking at most `depth` blocks down (and not below height 1).
    pub fn missing(&self, tip: &str, depth: u64) -> Option<String> {
        let mut hash = tip.to_owned();
        for _ in 0..=depth {
            match self.blocks.get(&hash) {
                None => return Some(hash),
                Some(block) if block.height <= 1 => return None,
                Some(block) => hash = block.parent.clone(),
            }
        }
        None
    }

    /// A block learnt by asking a node (not reported): it joins the tree
    /// so the consensus check can walk through it, without a delay sample.
    pub fn learn(&mut self, hash: &str, parent: &str, height: u64, now_ms: u64) {
        if self.blocks.contains_key(hash) {
            return;
        }
        self.order.push_back(hash.to_owned());
        self.blocks.insert(
            hash.to_owned(),
            BlockEntry {
                hash: hash.to_owned(),
                parent: parent.to_owned(),
                height,
                first_seen_ms: now_ms,
                miner_node: None,
                accepts: Vec::new(),
            },
        );
        while self.order.len() > self.max_blocks {
            if let Some(old) = self.order.pop_front() {
                self.blocks.remove(&old);
            }
        }
    }

    /// Registered, polled nodes with a tip: `(url, tip)`.
    pub fn tips(&self) -> Vec<(String, String)> {
        self.nodes
            .values()
            .filter(|n| n.registered)
            .filter_map(|n| n.tip.clone().map(|t| (n.url.clone(), t)))
            .collect()
    }

    /// Every node, by name.
    pub fn nodes(&self, now_ms: u64) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .nodes
            .values()
            .map(|n| {
                let mut n = n.clone();
                n.alive = now_ms.saturating_sub(n.last_seen_ms) <= ALIVE_MS;
                n
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    /// How many nodes the table holds.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The persisted form of one node.
    pub fn record(&self, name: &str) -> Option<NodeRecord> {
        self.nodes.get(name).map(Node::record)
    }

    /// Registered nodes to poll: those heard from within `recent_ms`.
    pub fn poll_targets(&self, now_ms: u64, recent_ms: u64) -> Vec<(String, String)> {
        self.nodes
            .values()
            .filter(|n| n.registered && now_ms.saturating_sub(n.last_seen_ms) <= recent_ms)
            .map(|n| (n.name.clone(), n.url.clone()))
            .collect()
    }

    /// Up to `count` random live, registered, unfired nodes, never the one
    /// at `exclude`.
    pub fn sample(&self, count: usize, exclude: Option<&str>, now_ms: u64) -> Vec<Node> {
        let live: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| {
                n.registered
                    && !n.fired
                    && now_ms.saturating_sub(n.last_seen_ms) <= ALIVE_MS
                    && Some(n.url.as_str()) != exclude
            })
            .collect();
        live.choose_multiple(&mut rand::rng(), count)
            .map(|n| (*n).clone())
            .collect()
    }

    /// The recent blocks, newest first, and each node's tip.
    pub fn blocks(&self) -> (Vec<BlockEntry>, BTreeMap<String, String>) {
        let blocks = self
            .order
            .iter()
            .rev()
            .filter_map(|h| self.blocks.get(h).cloned())
            .collect();
        let tips = self
            .nodes
            .values()
            .filter_map(|n| n.tip.clone().map(|t| (n.name.clone(), t)))
            .collect();
        (blocks, tips)
    }

    /// Rejected blocks by reason.
    pub fn rejections(&self) -> BTreeMap<String, u64> {
        self.rejections.clone()
    }

    /// `GET /api/propagation`.
    pub fn propagation(&self) -> serde_json::Value {
        let mut counts = [0u64; HISTOGRAM_BOUNDS_MS.len() + 1];
        let mut samples = 0u64;
        for block in self.blocks.values() {
            for (_, delay) in &block.accepts {
                let bucket = HISTOGRAM_BOUNDS_MS
                    .iter()
                    .position(|b| delay <= b)
                    .unwrap_or(HISTOGRAM_BOUNDS_MS.len());
                counts[bucket] += 1;
                samples += 1;
            }
        }
        let histogram: Vec<serde_json::Value> = counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                serde_json::json!({
                    "le_ms": HISTOGRAM_BOUNDS_MS.get(i),
                    "count": count,
                })
            })
            .collect();
        let blocks: Vec<serde_json::Value> = self
            .order
            .iter()
            .rev()
            .take(PROPAGATION_BLOCKS)
            .filter_map(|h| self.blocks.get(h))
            .map(|b| {
                let delays: BTreeMap<&str, u64> =
                    b.accepts.iter().map(|(n, d)| (n.as_str(), *d)).collect();
                serde_json::json!({
                    "hash": b.hash,
                    "height": b.height,
                    "first_seen_ms": b.first_seen_ms,
                    "miner_node": b.miner_node,
                    "delays_ms": delays,
                })
            })
            .collect();
        serde_json::json!({ "blocks": blocks, "histogram": histogram, "samples": samples })
    }

    /// The block at `height` on the chain ending at `tip`, when the tree
    /// reaches that far.
    fn ancestor(&self, tip: &str, height: u64) -> Option<&str> {
        let mut block = self.blocks.get(tip)?;
        loop {
            if block.height == height {
                return Some(&block.hash);
            }
            if block.height < height {
                return None;
            }
            if block.height == height + 1 {
                return Some(&block.parent);
            }
            block = self.blocks.get(&block.parent)?;
        }
    }

    /// `GET /api/consensus`: do all live honest nodes hold the same block
    /// at `shortest tip height - k`?
    pub fn consensus(&self, now_ms: u64) -> Consensus {
        let live: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.honest && !n.fired && now_ms.saturating_sub(n.last_seen_ms) <= ALIVE_MS)
            .collect();
        let Some(min_height) = live.iter().map(|n| n.height).min() else {
            return Consensus {
                live_honest: 0,
                agreeing: 0,
                common_height: None,
                max_fork_depth: 0,
                verdict: "no_honest_nodes",
                k: self.k,
            };
        };
        let at = min_height.saturating_sub(self.k);
        // Each node's block at `at`: from the tree, or (when the tree does
        // not reach) its tip when that is at `at`; otherwise unknown, which
        // counts as disagreeing.
        // Nodes on one tip hold the same chain, known or not.
        let first_tip = live.first().and_then(|n| n.tip.clone());
        let one_tip = live.iter().all(|n| n.tip.is_some() && n.tip == first_tip);
        let held = |node: &Node, height: u64| -> Option<String> {
            let tip = node.tip.as_deref()?;
            if node.height == height {
                return Some(tip.to_owned());
            }
            match self.ancestor(tip, height) {
                Some(block) => Some(block.to_owned()),
                None if one_tip => Some(format!("{tip}@{height}")),
                None => None,
            }
        };
        let mut groups: HashMap<String, usize> = HashMap::new();
        for node in &live {
            if let Some(block) = held(node, at) {
                *groups.entry(block).or_default() += 1;
            }
        }
        let agreeing = if at == 0 {
            live.len()
        } else {
            groups.values().copied().max().unwrap_or(0)
        };
        let all_at = |height: u64| -> bool {
            if height == 0 {
                return true;
            }
            let blocks: HashSet<Option<String>> = live.iter().map(|n| held(n, height)).collect();
            blocks.len() == 1 && blocks.iter().all(Option::is_some)
        };
        let lowest = min_height.saturating_sub(MAX_COMMON_SEARCH);
        let common_height = (lowest..=min_height).rev().find(|h| all_at(*h));
        Consensus {
            live_honest: live.len(),
            agreeing,
            common_height,
            max_fork_depth: common_height.map_or(min_height - lowest, |c| min_height - c),
            verdict: if agreeing == live.len() {
                "consensus"
            } else {
                "forked"
            },
            k: self.k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ALIVE_MS, Admit, State};
    use serde_json::json;

    fn h(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn accepted(state: &mut State, node: &str, at: u64, hash: char, parent: char, height: u64) {
        let event = json!({"kind": "block_accepted", "hash": h(hash), "parent": h(parent),
                           "height": height, "from": null, "best": true});
        state.event(node, at, "block_accepted", &event);
    }

    #[test]
    fn consensus_cases() {
        // Chain 0 <- a <- b <- c, fork b <- e <- f.
        struct Case {
            name: &'static str,
            tips: &'static [(&'static str, char, u64)],
            verdict: &'static str,
            common: Option<u64>,
        }
        let cases = [
            Case {
                name: "same tip",
                tips: &[("n0", 'c', 3), ("n1", 'c', 3)],
                verdict: "consensus",
                common: Some(3),
            },
            Case {
                name: "one behind",
                tips: &[("n0", 'c', 3), ("n1", 'b', 2)],
                verdict: "consensus",
                common: Some(2),
            },
            Case {
                name: "shallow fork within k",
                tips: &[("n0", 'c', 3), ("n1", 'e', 3)],
                verdict: "consensus",
                common: Some(2),
            },
            Case {
                name: "deep fork",
                tips: &[("n0", 'c', 3), ("n1", 'f', 4)],
                verdict: "consensus",
                common: Some(2),
            },
        ];
        for case in cases {
            let mut state = State::new(16, 100, 1);
            for (name, _, _) in case.tips {
                state.register(name, &format!("http://{name}"), "a", "honest", 1000);
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
                state.polled(name, *height, &h(*tip), 1, 1000);
            }
            let c = state.consensus(1000);
            assert_eq!(c.verdict, case.verdict, "{}", case.name);
            assert_eq!(c.common_height, case.common, "{}", case.name);
        }
        // k = 0: a fork at the tips is a fork.
        let mut state = State::new(16, 100, 0);
        for name in ["n0", "n1"] {
            state.register(name, "http://x", "a", "honest", 1000);
        }
        for (hash, parent, height) in [('a', '0', 1), ('b', 'a', 2), ('c', 'b', 3), ('e', 'b', 3)] {
            accepted(&mut state, "other", 1000, hash, parent, height);
        }
        state.polled("n0", 3, &h('c'), 1, 1000);
        state.polled("n1", 3, &h('e'), 1, 1000);
        let c = state.consensus(1000);
        assert_eq!((c.verdict, c.agreeing, c.max_fork_depth), ("forked", 1, 1));
        assert_eq!(State::new(1, 1, 2).consensus(0).verdict, "no_honest_nodes");
    }

    #[test]
    fn the_node_table_is_bounded() {
        let mut state = State::new(2, 10, 2);
        state.register("a", "http://a", "x", "honest", 0);
        state.register("b", "http://b", "x", "honest", 10);
        // Both alive: no room.
        assert_eq!(
            state.register("c", "http://c", "x", "honest", 100).0,
            Admit::Full
        );
        // `a` died long ago: evicted for `c`.
        let later = ALIVE_MS + 5;
        state.polled("b", 1, &h('b'), 0, later);
        assert_eq!(
            state.register("c", "http://c", "x", "honest", later).0,
            Admit::Evicted("a".into())
        );
        assert_eq!(state.node_count(), 2);
    }

    #[test]
    fn propagation_measures_from_the_first_report() {
        let mut state = State::new(4, 10, 2);
        let mined = json!({"kind": "block_mined", "hash": h('a'), "parent": h('0'), "height": 1});
        accepted(&mut state, "n1", 1_030, 'a', '0', 1);
        state.event("n0", 1_000, "block_mined", &mined);
        accepted(&mut state, "n2", 1_300, 'a', '0', 1);
        let p = state.propagation();
        assert_eq!(p["blocks"][0]["delays_ms"], json!({"n1": 30, "n2": 300}));
        assert_eq!(p["blocks"][0]["miner_node"], "n0");
        assert_eq!(p["samples"], 2);
    }
}
