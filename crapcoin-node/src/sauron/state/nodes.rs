//! The node registry: every node Sauron knows, bounded, with who is
//! alive, fired and registered, and each one's height and tip.

use std::collections::HashMap;

use crapcoin_core::{Address, BlockHash};
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::sauron::db::NodeRecord;
use crate::sauron::model::BossAction;

/// A node is alive when heard from (registration, a status poll, a batch)
/// within this long.
pub const ALIVE_MS: u64 = 5_000;

/// One node as Sauron knows it (`GET /api/nodes` rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Where it is reached.
    pub url: String,
    /// Its wallet address (`""` in JSON until known).
    #[serde(with = "address_or_empty")]
    pub address: Option<Address>,
    /// Its behaviour ("" until known).
    pub behaviour: String,
    /// Whether the behaviour is `honest`.
    pub honest: bool,
    /// Height of its best chain, as last polled or reported.
    pub height: u64,
    /// Its best tip.
    pub tip: Option<BlockHash>,
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
    /// Its share of the network's hash power, as its `GET /status` (or
    /// its registration) last said; absent while unknown or when it
    /// mines on demand. `/api/forks` sets it beside its share of the
    /// best chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_share: Option<f64>,
}

/// A node's address in JSON: its hex, or `""` while unknown.
mod address_or_empty {
    use crapcoin_core::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(a: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.collect_str(a),
            None => s.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Address>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

impl Node {
    fn new(name: &str, url: &str) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            address: None,
            behaviour: String::new(),
            honest: false,
            height: 0,
            tip: None,
            peers: 0,
            last_seen_ms: 0,
            alive: false,
            fired: false,
            registered: false,
            hash_share: None,
        }
    }

    /// Its address as shown: the hex, or `""` while unknown.
    pub fn address_text(&self) -> String {
        self.address.map(|a| a.to_string()).unwrap_or_default()
    }

    /// Whether it was heard from within [`ALIVE_MS`] of `now_ms`.
    pub fn alive_at(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) <= ALIVE_MS
    }

    /// The row to persist.
    pub fn record(&self) -> NodeRecord {
        NodeRecord {
            name: self.name.clone(),
            url: self.url.clone(),
            address: self.address_text(),
            behaviour: self.behaviour.clone(),
            registered: self.registered,
            fired: self.fired,
            last_seen_ms: i64::try_from(self.last_seen_ms).unwrap_or(i64::MAX),
            height: i64::try_from(self.height).unwrap_or(i64::MAX),
            tip: self.tip.map(|t| t.to_string()),
        }
    }
}

/// What one `GET /status` poll of a node said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polled {
    /// Height of its best chain.
    pub height: u64,
    /// Its best tip.
    pub tip: BlockHash,
    /// How many peers it knows.
    pub peers: u64,
    /// Its hash power share, when it mines on a schedule.
    pub hash_share: Option<f64>,
}

/// Whether `share` is a hash power share: finite, in `[0, 1]`.
pub fn valid_share(share: f64) -> bool {
    share.is_finite() && (0.0..=1.0).contains(&share)
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

/// The node table, at most `max` nodes, by name.
#[derive(Debug, Clone)]
pub struct Nodes {
    nodes: HashMap<String, Node>,
    max: usize,
}

impl Nodes {
    /// An empty table holding at most `max` nodes (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            nodes: HashMap::new(),
            max: max.max(1),
        }
    }

    /// Puts back a persisted node (an unparsable address or tip is
    /// unknown).
    pub fn restore(&mut self, record: NodeRecord) {
        if self.nodes.len() >= self.max {
            return;
        }
        let mut node = Node::new(&record.name, &record.url);
        node.address = record.address.parse().ok();
        node.honest = record.behaviour == "honest";
        node.behaviour = record.behaviour;
        node.registered = record.registered;
        node.fired = record.fired;
        node.last_seen_ms = u64::try_from(record.last_seen_ms).unwrap_or(0);
        node.height = u64::try_from(record.height).unwrap_or(0);
        node.tip = record.tip.and_then(|t| t.parse().ok());
        self.nodes.insert(node.name.clone(), node);
    }

    /// Makes room for `name` if needed: evicts the node heard from least
    /// recently when it is not alive.
    fn admit(&mut self, name: &str, now_ms: u64) -> Admit {
        if self.nodes.contains_key(name) || self.nodes.len() < self.max {
            return Admit::In;
        }
        let victim = self
            .nodes
            .values()
            .filter(|n| !n.alive_at(now_ms))
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
        address: Address,
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
        node.address = Some(address);
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
    pub fn polled(&mut self, name: &str, poll: Polled, now_ms: u64) -> Option<Node> {
        let node = self.nodes.get_mut(name)?;
        let was_alive = node.alive;
        node.last_seen_ms = now_ms;
        node.alive = true;
        let share = poll.hash_share.filter(|s| valid_share(*s));
        let changed = node.height != poll.height
            || node.tip != Some(poll.tip)
            || node.peers != poll.peers
            || node.hash_share != share
            || !was_alive;
        node.height = poll.height;
        node.tip = Some(poll.tip);
        node.peers = poll.peers;
        node.hash_share = share;
        changed.then(|| node.clone())
    }

    /// The hash share a registration announced, kept until a poll says
    /// otherwise (a share outside `[0, 1]` is ignored).
    pub fn announced_share(&mut self, name: &str, share: f64) {
        if let Some(node) = self.nodes.get_mut(name)
            && valid_share(share)
        {
            node.hash_share = Some(share);
        }
    }

    /// A block event of `name` put `tip` at `height` on its best chain:
    /// it becomes the node's tip unless the node is already higher.
    pub fn reported_best(&mut self, name: &str, tip: BlockHash, height: u64) {
        if let Some(n) = self.nodes.get_mut(name)
            && height >= n.height
        {
            n.height = height;
            n.tip = Some(tip);
        }
    }

    /// A node of a replayed simulation (`sauron --replay`): known by name,
    /// behaviour and hash share, never registered (no URL to poll).
    pub fn simulated(&mut self, name: &str, behaviour: &str, hash_share: Option<f64>) {
        if self.admit(name, 0) == Admit::Full {
            return;
        }
        let node = self
            .nodes
            .entry(name.to_owned())
            .or_insert_with(|| Node::new(name, ""));
        node.behaviour = behaviour.to_owned();
        node.honest = behaviour == "honest";
        node.hash_share = hash_share.filter(|s| valid_share(*s));
    }

    /// Sets when `name` was last heard from (a replay's position).
    pub fn seen(&mut self, name: &str, at_ms: u64) {
        if let Some(n) = self.nodes.get_mut(name) {
            n.last_seen_ms = at_ms;
            n.alive = n.alive_at(at_ms);
        }
    }

    /// `name`'s best chain switched to `tip` at `height` (a reorg): its
    /// tip whatever its height was.
    pub fn switched(&mut self, name: &str, tip: BlockHash, height: u64) {
        if let Some(n) = self.nodes.get_mut(name) {
            n.height = height;
            n.tip = Some(tip);
        }
    }

    /// Recomputes liveness; returns the nodes whose `alive` changed.
    pub fn refresh_liveness(&mut self, now_ms: u64) -> Vec<Node> {
        let mut changed = Vec::new();
        for node in self.nodes.values_mut() {
            let alive = node.alive_at(now_ms);
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

    /// Registered, polled nodes with a tip: `(url, tip)`.
    pub fn tips(&self) -> Vec<(String, BlockHash)> {
        self.nodes
            .values()
            .filter(|n| n.registered)
            .filter_map(|n| n.tip.map(|t| (n.url.clone(), t)))
            .collect()
    }

    /// Every node's tip, by name.
    pub fn tips_by_name(&self) -> impl Iterator<Item = (String, BlockHash)> + '_ {
        self.nodes
            .values()
            .filter_map(|n| n.tip.map(|t| (n.name.clone(), t)))
    }

    /// Every node, by name, with `alive` as of `now_ms`.
    pub fn list(&self, now_ms: u64) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .nodes
            .values()
            .map(|n| {
                let mut n = n.clone();
                n.alive = n.alive_at(now_ms);
                n
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    /// How many nodes the table holds.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
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
                n.registered && !n.fired && n.alive_at(now_ms) && Some(n.url.as_str()) != exclude
            })
            .collect();
        live.choose_multiple(&mut rand::rng(), count)
            .map(|n| (*n).clone())
            .collect()
    }

    /// Live nodes: alive and not fired.
    pub fn live(&self, now_ms: u64) -> Vec<&Node> {
        self.nodes
            .values()
            .filter(|n| !n.fired && n.alive_at(now_ms))
            .collect()
    }

    /// The node called `name`.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Every node, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Node> + '_ {
        self.nodes.values()
    }

    /// Live honest nodes: alive, not fired, behaviour `honest`.
    pub fn live_honest(&self, now_ms: u64) -> Vec<&Node> {
        self.nodes
            .values()
            .filter(|n| n.honest && !n.fired && n.alive_at(now_ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{ALIVE_MS, Admit, Nodes};
    use crapcoin_core::{Address, BlockHash};

    #[test]
    fn the_node_table_is_bounded() {
        let a = Address([7; 32]);
        let mut nodes = Nodes::new(2);
        nodes.register("a", "http://a", a, "honest", 0);
        nodes.register("b", "http://b", a, "honest", 10);
        // Both alive: no room.
        assert_eq!(
            nodes.register("c", "http://c", a, "honest", 100).0,
            Admit::Full
        );
        // `a` died long ago: evicted for `c`.
        let later = ALIVE_MS + 5;
        let poll = super::Polled {
            height: 1,
            tip: BlockHash([0xbb; 32]),
            peers: 0,
            hash_share: Some(0.5),
        };
        assert_eq!(
            nodes.polled("b", poll, later).and_then(|n| n.hash_share),
            Some(0.5)
        );
        assert_eq!(
            nodes.register("c", "http://c", a, "honest", later).0,
            Admit::Evicted("a".into())
        );
        assert_eq!(nodes.len(), 2);
    }

    #[test]
    fn a_node_reads_back_as_it_is_shown() {
        let mut nodes = Nodes::new(2);
        nodes.heard("n0", "http://n0", 1);
        let shown = serde_json::to_value(&nodes.list(1)[0]).expect("serialises");
        assert_eq!(shown["address"], "");
        assert_eq!(shown["tip"], serde_json::Value::Null);
        let read: super::Node = serde_json::from_value(shown).expect("reads");
        assert_eq!(read, nodes.list(1)[0]);
    }
}
