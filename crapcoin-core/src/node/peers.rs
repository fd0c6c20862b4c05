//! The peer table and its upkeep: the bounded table, adding and dropping,
//! bootstrap and maintenance. A peer is never trusted for being a peer: it
//! is kept only while it answers, and dropped (and banned for a while) once
//! it has sent invalid data [`super::Config::max_strikes`] times. Fetching
//! a peer's chain is `sync`'s job.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::{IndexedRandom, SliceRandom};

use super::{RateLimit, Shared};
use crate::clock::Clock;
use crate::maps::{Map, Set};
use crate::observer::{DropReason, Event};
use crate::wire::{NetError, PeerError, PeerInfo, PeerUrl, Status};

/// Peer URLs taken from one peer's answer during discovery.
const MAX_DISCOVERED_PER_PEER: usize = 64;
/// Banned URLs remembered at most.
const MAX_BANNED: usize = 1024;
/// Maintenance rounds between two tracker registrations.
const REGISTER_EVERY: u64 = 5;

/// A node with its target of peers swaps one for a fresh one from the
/// tracker every this many maintenance rounds.
const ROTATE_EVERY: u64 = 5;

/// Own waiting transactions passed on again per maintenance round, at most.
const MAX_REBROADCAST: usize = 64;

/// A token bucket (see [`RateLimit`]): full at first, one token back
/// every `every` since it was last refilled.
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Tokens spent since it was last full (so a new bucket is full).
    spent: u32,
    /// When the last token came back (`None`: full since it was made).
    refilled: Option<Instant>,
}

impl Bucket {
    /// Takes one token at `now` if there is one.
    fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        if let Some(at) = self.refilled {
            let every = limit.every.as_nanos().max(1);
            let earned = now.saturating_duration_since(at).as_nanos() / every;
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            if earned >= self.spent {
                self.spent = 0;
                self.refilled = None;
            } else if earned > 0 {
                self.spent -= earned;
                // Whole tokens only: the part of a token already earned
                // is kept.
                self.refilled = Some(at + limit.every * earned);
            }
        }
        if self.spent >= limit.burst {
            return false;
        }
        if self.spent == 0 {
            self.refilled = Some(now);
        }
        self.spent += 1;
        true
    }
}

/// What the node keeps about a sender's orphans: their rate, and when
/// they last started a sync.
#[derive(Debug, Clone, Default)]
struct OrphanLimits {
    bucket: Bucket,
    synced_at: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
struct PeerState {
    failures: u32,
    strikes: u32,
    orphans: OrphanLimits,
}

/// The peer table: at most `max` peers, plus a bounded ban list.
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    map: Map<PeerUrl, PeerState>,
    /// The table's URLs in order, made again when a peer comes or goes:
    /// every relay reads them, and a simulation relays tens of thousands
    /// of messages a virtual second (BENCHMARKS.md, issue 14).
    sorted: Arc<[PeerUrl]>,
    banned: Map<PeerUrl, Instant>,
    /// The orphan limits that senders outside the table share (so their
    /// number bounds nothing, and naming new URLs earns nothing).
    strangers: OrphanLimits,
    max: usize,
    /// Where ban deadlines and rate limits are read.
    clock: Clock,
}

impl Peers {
    pub(crate) fn new(max: usize, clock: Clock) -> Self {
        Self {
            map: Map::default(),
            sorted: Arc::new([]),
            banned: Map::default(),
            strangers: OrphanLimits::default(),
            max,
            clock,
        }
    }

    fn orphan_limits(&mut self, from: &PeerUrl) -> &mut OrphanLimits {
        match self.map.get_mut(from) {
            Some(state) => &mut state.orphans,
            None => &mut self.strangers,
        }
    }

    /// Whether `from` may have one more orphan looked at now (takes a
    /// token of its bucket: [`super::Config::orphan_rate`]).
    pub(crate) fn take_orphan(&mut self, from: &PeerUrl, limit: RateLimit) -> bool {
        let now = self.clock.now();
        self.orphan_limits(from).bucket.take(limit, now)
    }

    /// Whether an orphan from `from` may start a sync now: none did within
    /// `interval` ([`super::Config::orphan_sync_interval`]).
    pub(crate) fn orphan_sync_due(&mut self, from: &PeerUrl, interval: Duration) -> bool {
        let now = self.clock.now();
        self.orphan_limits(from)
            .synced_at
            .is_none_or(|at| now.saturating_duration_since(at) >= interval)
    }

    /// Notes that an orphan from `from` started a sync now.
    pub(crate) fn orphan_synced(&mut self, from: &PeerUrl) {
        let now = self.clock.now();
        self.orphan_limits(from).synced_at = Some(now);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn urls(&self) -> Vec<PeerUrl> {
        self.sorted.to_vec()
    }

    /// [`Peers::urls`] without a copy.
    pub(crate) fn sorted(&self) -> Arc<[PeerUrl]> {
        self.sorted.clone()
    }

    fn sort(&mut self) {
        let mut urls: Vec<PeerUrl> = self.map.keys().cloned().collect();
        urls.sort_unstable();
        self.sorted = urls.into();
    }

    pub(crate) fn contains(&self, url: &PeerUrl) -> bool {
        self.map.contains_key(url)
    }

    /// Whether `url` is banned now (forgets a ban that has run out).
    pub(crate) fn is_banned(&mut self, url: &PeerUrl) -> bool {
        match self.banned.get(url) {
            Some(until) if *until > self.clock.now() => true,
            Some(_) => {
                self.banned.remove(url);
                false
            }
            None => false,
        }
    }

    /// Adds a peer; false when present, banned or full.
    pub(crate) fn insert(&mut self, url: PeerUrl) -> bool {
        if self.map.len() >= self.max || self.map.contains_key(&url) || self.is_banned(&url) {
            return false;
        }
        self.map.insert(url, PeerState::default());
        self.sort();
        true
    }

    fn remove(&mut self, url: &PeerUrl) -> bool {
        let removed = self.map.remove(url).is_some();
        if removed {
            self.sort();
        }
        removed
    }

    fn ban(&mut self, url: &PeerUrl, until: Instant) {
        if self.banned.len() >= MAX_BANNED {
            let now = self.clock.now();
            self.banned.retain(|_, t| *t > now);
            if self.banned.len() >= MAX_BANNED {
                return;
            }
        }
        self.banned.insert(url.clone(), until);
    }
}

impl Shared {
    /// Runs `fut` with the call timeout; cancellation counts as a timeout.
    pub(crate) async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, NetError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(NetError::Timeout),
            r = self.call_in_task(fut) => r,
        }
    }

    /// [`Shared::call`] without its wait for the node to stop, for a call
    /// in a task that is aborted when the node stops (the gossip
    /// sender's): that wait is a lock taken on every poll.
    pub(crate) async fn call_in_task<T>(
        &self,
        fut: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, NetError> {
        self.clock
            .timeout(self.config.call_timeout, fut)
            .await
            .unwrap_or(Err(NetError::Timeout))
    }

    fn info(&self) -> PeerInfo {
        PeerInfo {
            url: self.config.url.clone(),
            address: self.wallet.address(),
            name: self.config.name.clone(),
            behaviour: self.behaviour.name(),
            hash_share: self.config.mining.power().map(|p| p.share()),
        }
    }

    /// Adds `peer` if it answers with our genesis; optionally announces us.
    /// Returns the status it answered, or `None` when it was known already.
    pub(crate) async fn try_add_peer(
        &self,
        peer: PeerUrl,
        announce: bool,
    ) -> Result<Option<Status>, PeerError> {
        if peer == self.config.url {
            return Err(PeerError::ItsMe);
        }
        {
            let mut inner = self.lock();
            if inner.peers.contains(&peer) {
                return Ok(None);
            }
            if inner.peers.is_banned(&peer) {
                return Err(PeerError::Banned);
            }
            if inner.peers.len() >= inner.peers.max {
                return Err(PeerError::Full);
            }
        }
        let status = self
            .call(self.network.status(&peer))
            .await
            .map_err(PeerError::Unreachable)?;
        if status.genesis != self.chain_id {
            return Err(PeerError::WrongNetwork);
        }
        Ok(self.admit_peer(peer, status, announce).await)
    }

    /// Adds `peer`, which answered `status` on our network, to the table
    /// (if there is room and it is neither there nor banned), stores it,
    /// tells observers, and announces us to it when `announce`. `None`
    /// when it was not added.
    async fn admit_peer(&self, peer: PeerUrl, status: Status, announce: bool) -> Option<Status> {
        if !self.lock().peers.insert(peer.clone()) {
            return None;
        }
        if let Err(e) = self.store.save_peer(&peer).await {
            tracing::warn!(node = %self.config.name, error = %e, "storing a peer failed");
        }
        self.emit(&Event::PeerAdded { peer: peer.clone() });
        if announce {
            let _ = self
                .call(self.network.announce(&peer, &self.config.url))
                .await;
        }
        Some(status)
    }

    async fn drop_peer(&self, peer: &PeerUrl, why: DropReason) {
        let removed = {
            let mut inner = self.lock();
            let removed = inner.peers.remove(peer);
            if why == DropReason::Misbehaving {
                inner
                    .peers
                    .ban(peer, self.clock.now() + self.config.ban_duration);
            }
            removed
        };
        if removed {
            if let Err(e) = self.store.remove_peer(peer).await {
                tracing::warn!(node = %self.config.name, error = %e, "forgetting a peer failed");
            }
            tracing::debug!(node = %self.config.name, %peer, ?why, "dropped peer");
            self.emit(&Event::PeerDropped {
                peer: peer.clone(),
                why,
            });
        }
    }

    /// Counts invalid data from `peer`; drops and bans it at the limit.
    pub(crate) async fn strike(&self, peer: &PeerUrl) {
        let drop_it = {
            let mut inner = self.lock();
            match inner.peers.map.get_mut(peer) {
                Some(state) => {
                    state.strikes += 1;
                    state.strikes >= self.config.max_strikes
                }
                // Not a peer of ours: there is no standing to lose, and
                // banning URLs anyone can name would let a liar get honest
                // nodes banned.
                None => false,
            }
        };
        if drop_it {
            self.drop_peer(peer, DropReason::Misbehaving).await;
        }
    }

    /// Start-up: register with the tracker, meet seeds or tracker peers,
    /// announce ourselves and sync from each peer.
    pub(crate) async fn bootstrap(self: &Arc<Self>) {
        let _ = self.call(self.tracker.register(&self.info())).await;
        // What each new seed answered: its sync starts from that.
        let mut statuses = Map::default();
        for seed in self.config.seeds.clone() {
            match self.try_add_peer(seed.clone(), false).await {
                Ok(Some(status)) => {
                    statuses.insert(seed, status);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::info!(node = %self.config.name, %seed, error = %e, "seed not added");
                }
            }
        }
        // Seeds and peers restored from the store alike are announced to
        // once, all at the same time and while the syncs run (peers from
        // the tracker are announced to as they are added).
        let known = self.lock().peers.urls();
        if known.is_empty() {
            self.discover_from_tracker().await;
        }
        let announcements = known
            .iter()
            .map(|peer| self.call(self.network.announce(peer, &self.config.url)));
        let syncs = async {
            let peers = self.lock().peers.urls();
            for peer in peers {
                if self.is_stopping() {
                    return;
                }
                let status = statuses.remove(&peer);
                let _ = self.sync_from(&peer, status).await;
            }
        };
        tokio::join!(futures_util::future::join_all(announcements), syncs);
    }

    async fn discover_from_tracker(&self) {
        let want = self.config.target_peers;
        let sample = self
            .call(self.tracker.sample(&self.config.url, want))
            .await
            .unwrap_or_default();
        for peer in sample.into_iter().take(want) {
            let _ = self.try_add_peer(peer, true).await;
        }
    }

    /// One maintenance round: check every peer's liveness, sync from the
    /// best one ahead of us, look for more peers when short.
    pub(crate) async fn maintain(self: &Arc<Self>, round: u64) {
        let peers = self.lock().peers.urls();
        let checks = peers
            .iter()
            .map(|peer| async move { (peer, self.call(self.network.status(peer)).await) });
        let results = futures_util::future::join_all(checks).await;
        let our_height = self.lock().chain.height();
        let mut best: Option<(Status, PeerUrl)> = None;
        for (peer, result) in results {
            match result {
                Ok(status) if status.genesis != self.chain_id => {
                    self.drop_peer(peer, DropReason::WrongNetwork).await;
                }
                Ok(status) => {
                    if let Some(state) = self.lock().peers.map.get_mut(peer) {
                        state.failures = 0;
                    }
                    if status.height > our_height
                        && best.as_ref().is_none_or(|(b, _)| status.height > b.height)
                    {
                        best = Some((status, peer.clone()));
                    }
                }
                Err(_) => {
                    let failures = self.lock().peers.map.get_mut(peer).map(|s| {
                        s.failures += 1;
                        s.failures
                    });
                    if failures.is_some_and(|f| f >= self.config.max_failures) {
                        self.drop_peer(peer, DropReason::Unresponsive).await;
                    }
                }
            }
        }
        if let Some((status, peer)) = best {
            self.spawn_sync(peer, Some(status));
        }
        if self.lock().peers.len() < self.config.target_peers {
            self.discover().await;
        } else if round % ROTATE_EVERY == 0 {
            self.rotate().await;
        }
        if round % REGISTER_EVERY == 0 {
            let _ = self.call(self.tracker.register(&self.info())).await;
        }
        self.rebroadcast();
    }

    /// Passes the transactions this node accepted and still waits for to
    /// its peers again, as a wallet rebroadcasts its unconfirmed payments:
    /// a peer may have refused one the first time (it had not yet seen the
    /// block that funds it), and a node without hash power could otherwise
    /// wait forever. Peers that hold it answer `duplicate` and pass it no
    /// further. Lowest ids first, at most [`MAX_REBROADCAST`] a round.
    fn rebroadcast(&self) {
        let txs: Vec<crate::tx::Transaction> = {
            let inner = self.lock();
            let mut ids: Vec<_> = inner.tracked.keys().copied().collect();
            ids.sort_unstable();
            ids.iter()
                .filter_map(|id| inner.mempool.get(id).cloned())
                .take(MAX_REBROADCAST)
                .collect()
        };
        for tx in &txs {
            self.relay_tx(tx, None);
        }
    }

    /// Swaps one peer for a fresh one from the tracker, as Bitcoin nodes
    /// keep trying new addresses: a node whose peers all answer would
    /// otherwise keep them forever, and after a partition heals each side
    /// would stay among itself, two networks on two chains. The newcomer
    /// must answer first; then a random peer makes room
    /// (`DropReason::Rotated`) and the newcomer is added and announced to.
    async fn rotate(&self) {
        let sample = self
            .call(self.tracker.sample(&self.config.url, 1))
            .await
            .unwrap_or_default();
        let Some(fresh) = sample.into_iter().next() else {
            return;
        };
        {
            let mut inner = self.lock();
            if fresh == self.config.url
                || inner.peers.contains(&fresh)
                || inner.peers.is_banned(&fresh)
            {
                return;
            }
        }
        let status = match self.call(self.network.status(&fresh)).await {
            Ok(status) if status.genesis == self.chain_id => status,
            _ => return,
        };
        let leaving = {
            let peers = self.lock().peers.urls();
            peers.choose(&mut *self.rng()).cloned()
        };
        if let Some(peer) = leaving {
            self.drop_peer(&peer, DropReason::Rotated).await;
        }
        self.admit_peer(fresh, status, true).await;
    }

    /// Looks for peers: first among our peers' peers, then (with no peer
    /// left) the seeds, then the tracker.
    async fn discover(&self) {
        let mut peers = self.lock().peers.urls();
        {
            let mut rng = self.rng();
            peers.shuffle(&mut *rng);
        }
        let mut candidates: Vec<PeerUrl> = Vec::new();
        let mut seen: Set<PeerUrl> = Set::default();
        for peer in peers.iter().take(3) {
            if let Ok(theirs) = self.call(self.network.peers(peer)).await {
                for url in theirs.into_iter().take(MAX_DISCOVERED_PER_PEER) {
                    if seen.insert(url.clone()) {
                        candidates.push(url);
                    }
                }
            }
        }
        let target = self.config.target_peers;
        for url in candidates {
            if self.lock().peers.len() >= target {
                return;
            }
            let _ = self.try_add_peer(url, true).await;
        }
        // With no peer left, the seeds again: a node cut off (a
        // partition, a network fault) dropped every peer as unresponsive,
        // and without a tracker it would stay alone after the cut healed.
        if self.lock().peers.len() == 0 {
            for seed in &self.config.seeds {
                let _ = self.try_add_peer(seed.clone(), true).await;
            }
        }
        if self.lock().peers.len() < target {
            self.discover_from_tracker().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Bucket, Peers, RateLimit};
    use crate::clock::{Clock, Skew};
    use crate::wire::PeerUrl;

    /// The sorted list every relay reads follows the table: made again
    /// when a peer comes or goes, not when a join is refused.
    #[test]
    fn the_sorted_urls_follow_the_table() {
        let url = |s: &str| -> PeerUrl { s.parse().expect("a url") };
        let mut peers = Peers::new(2, Clock::simulated(0, Skew::default()));
        assert!(peers.insert(url("mem://b")));
        assert!(peers.insert(url("mem://a")));
        assert!(!peers.insert(url("mem://c")), "full");
        assert_eq!(peers.urls(), [url("mem://a"), url("mem://b")]);
        assert!(peers.remove(&url("mem://a")));
        assert!(!peers.remove(&url("mem://a")));
        assert_eq!(&*peers.sorted(), [url("mem://b")]);
        assert!(peers.insert(url("mem://c")));
        assert_eq!(peers.urls(), [url("mem://b"), url("mem://c")]);
    }

    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_period() {
        let limit = RateLimit {
            burst: 3,
            every: Duration::from_millis(100),
        };
        let t0 = Instant::now();
        let mut bucket = Bucket::default();
        let taken = (0..10).filter(|_| bucket.take(limit, t0)).count();
        assert_eq!(taken, 3, "the burst at once, nothing more");
        // 250 ms later: two whole tokens back, the half kept for later.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!((0..10).filter(|_| bucket.take(limit, t1)).count(), 2);
        let t2 = t0 + Duration::from_millis(300);
        assert_eq!((0..10).filter(|_| bucket.take(limit, t2)).count(), 1);
        // A long quiet spell refills it to the burst, no further.
        let t3 = t2 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.take(limit, t3)).count(), 3);
    }

    #[test]
    fn per_second_spreads_the_rate() {
        let limit = RateLimit::per_second(64, 8);
        assert_eq!(limit.burst, 64);
        assert_eq!(limit.every, Duration::from_millis(125));
    }
}
