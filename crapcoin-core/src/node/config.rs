//! How a node runs: [`Config`] (names, bounds, timeouts, intervals) and
//! [`AutoConfig`]. Consensus rules are in [`crate::Params`], not here.

use std::time::Duration;

use crate::chain::Limits;
use crate::power::HashPower;
use crate::wire::{MAX_PEER_URL_LEN, PeerUrl};

/// Auto mode: the node makes transfers on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoConfig {
    /// Mean time between two moves (each is jittered ±50%).
    pub interval: Duration,
    /// Stop after this many transfers (`None`: never).
    pub max_transfers: Option<u64>,
}

impl Default for AutoConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            max_transfers: None,
        }
    }
}

/// When a node finds blocks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Mining {
    /// A block at once for every transfer this node accepted, and a
    /// coinbase-only block for every [`crate::Handle::mine`]: no hash power
    /// model. The default of a node built in code, for tests and tutorials
    /// that want a block on demand.
    #[default]
    OnDemand,
    /// On a proof-of-work schedule (see [`crate::power`]): the node mines
    /// all the time on its best tip and finds a block after exponentially
    /// distributed times of mean `T / share`, each holding the best pending
    /// transfer or none. [`crate::Handle::mine`] still makes a block on
    /// demand. What `crapcoin-node` and `watercooler` run.
    Scheduled(HashPower),
}

impl Mining {
    /// The hash power, when on a schedule.
    pub fn power(&self) -> Option<HashPower> {
        match self {
            Self::OnDemand => None,
            Self::Scheduled(power) => Some(*power),
        }
    }
}

/// A token bucket: `burst` at once, then one more every `every` (in the
/// node's clock time, so a simulation stays deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens held when full: what may come at once after a quiet spell.
    pub burst: u32,
    /// Time to earn one token back.
    pub every: Duration,
}

impl RateLimit {
    /// `burst` at once, then `per_second` a second.
    ///
    /// # Panics
    ///
    /// If `per_second` is 0.
    pub fn per_second(burst: u32, per_second: u32) -> Self {
        assert!(per_second > 0, "a rate limit refills");
        Self {
            burst,
            every: Duration::from_secs(1) / per_second,
        }
    }
}

/// How a node runs: names, bounds, timeouts and intervals. Consensus rules
/// are in [`crate::Params`], not here: two nodes with different configs still agree.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's name (`node_id` in status, the source of its events).
    pub name: String,
    /// Where peers reach this node; announced to them.
    pub url: PeerUrl,
    /// Peers started from (besides stored ones and the tracker's).
    pub seeds: Vec<PeerUrl>,
    /// Peers wanted; below it, maintenance looks for more.
    pub target_peers: usize,
    /// Peers kept at most (announcements past it are refused).
    pub max_peers: usize,
    /// Timeout of every call to a peer or the tracker.
    pub call_timeout: Duration,
    /// Consecutive unanswered calls before a peer is dropped.
    pub max_failures: u32,
    /// Invalid items a peer may send before it is dropped and banned.
    pub max_strikes: u32,
    /// How long a dropped misbehaving peer stays banned.
    pub ban_duration: Duration,
    /// Time between two peer-maintenance rounds.
    pub maintenance_interval: Duration,
    /// Orphan pool bound.
    pub orphan_capacity: usize,
    /// Orphans (pushed blocks whose parent this node lacks) each named
    /// sender may have looked at: a peer has a bucket of its own, senders
    /// outside the peer table share one. An orphan past the limit is
    /// answered `ignored` before its signature is checked: not pooled, and
    /// no sync from its sender. Unnamed callers (this node's own API, an
    /// HTTP push without a peer header) are not limited: their orphans
    /// trigger no sync. Default: 64 at once, then 8 a second, far above
    /// what an honest peer sends (it relays only blocks on its best chain,
    /// which are orphans to us only while we are behind, and then a sync
    /// fetches them anyway).
    pub orphan_rate: RateLimit,
    /// Least time between two syncs one peer's orphans start (an orphan
    /// asks its sender for the ancestors; within this time of the last
    /// such sync, it does not). Senders outside the peer table share one
    /// such interval. Maintenance still syncs from the best peer ahead
    /// every round, whatever this says. Default: 1 s.
    pub orphan_sync_interval: Duration,
    /// An orphan starts a sync only while fewer than this many syncs run
    /// (of any kind; a node runs 4 at most), so the last sync slots stay
    /// free for maintenance's sync from the best peer ahead and a flood of
    /// orphans from several peers cannot hold them all. Default: 2.
    pub orphan_sync_slots: usize,
    /// Mempool bound.
    pub mempool_capacity: usize,
    /// How long a transaction returned by another node's abandoned block
    /// waits before this node mines it (`None`: never; its own
    /// transactions are mined at once). See [`crate::mempool`].
    pub remine_foreign: Option<Duration>,
    /// Block-tree bounds.
    pub limits: Limits,
    /// Most blocks served or fetched per page.
    pub page_limit: usize,
    /// Gossip messages waiting to be sent at most; more are dropped.
    pub outbox_capacity: usize,
    /// Gossip sends in flight at most.
    pub max_inflight_sends: usize,
    /// Longest a whole sync from one peer may take.
    pub sync_timeout: Duration,
    /// Fee the node pays on its own transfers.
    pub fee: u64,
    /// How long [`crate::Handle::transfer`] and [`crate::Handle::mine`] wait for the block.
    pub confirm_timeout: Duration,
    /// Auto mode, if on.
    pub auto: Option<AutoConfig>,
    /// When the node finds blocks: on demand, or on its hash power's
    /// schedule.
    pub mining: Mining,
    /// Transactions waiting to be relayed at most; more are not relayed
    /// (and counted).
    pub tx_outbox_capacity: usize,
    /// Seed of the node's random choices (`None`: from the OS).
    pub seed: Option<u64>,
}

impl Config {
    /// Defaults for a node called `name` on the in-memory network, reached
    /// at `mem://NAME`: what an experiment or test of nodes in one process
    /// starts from. Bytes of the name a URL cannot hold (spaces, non-ASCII)
    /// become `-` in the URL, and an empty name is reached at `mem://node`.
    pub fn in_memory(name: impl Into<String>) -> Self {
        let name = name.into();
        let mut host: String = name
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '-' })
            .take(MAX_PEER_URL_LEN - "mem://".len())
            .collect();
        if host.is_empty() {
            host = "node".to_owned();
        }
        let url = format!("mem://{host}")
            .parse()
            .expect("printable ascii within the length limit is a valid url");
        Self::new(name, url)
    }

    /// Defaults for a node called `name` reached at `url`.
    pub fn new(name: impl Into<String>, url: PeerUrl) -> Self {
        Self {
            name: name.into(),
            url,
            seeds: Vec::new(),
            target_peers: 8,
            max_peers: 64,
            call_timeout: Duration::from_secs(2),
            max_failures: 3,
            max_strikes: 3,
            ban_duration: Duration::from_secs(60),
            maintenance_interval: Duration::from_secs(2),
            orphan_capacity: 256,
            orphan_rate: RateLimit::per_second(64, 8),
            orphan_sync_interval: Duration::from_secs(1),
            orphan_sync_slots: 2,
            mempool_capacity: 1024,
            remine_foreign: None,
            limits: Limits::default(),
            page_limit: 500,
            outbox_capacity: 1024,
            max_inflight_sends: 32,
            sync_timeout: Duration::from_secs(120),
            fee: 1,
            confirm_timeout: Duration::from_secs(30),
            auto: None,
            mining: Mining::OnDemand,
            tx_outbox_capacity: 4096,
            seed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn in_memory_names_become_mem_urls() {
        assert_eq!(Config::in_memory("node-1").url.as_str(), "mem://node-1");
        assert_eq!(Config::in_memory("a b").url.as_str(), "mem://a-b");
        assert_eq!(Config::in_memory("").url.as_str(), "mem://node");
        let long = Config::in_memory("x".repeat(1000));
        assert!(long.url.as_str().len() <= crate::wire::MAX_PEER_URL_LEN);
        assert_eq!(long.name.len(), 1000);
    }
}
