//! In-memory implementations of [`crate::Network`], [`crate::Tracker`] and
//! [`crate::Store`], so a whole network of thousands of nodes runs in one
//! process for experiments and tests.
//!
//! The [`Network`] delivers calls straight to the target node's
//! [`Inbox`] after a random latency ([`LinkDelay`], plus a fixed one-way
//! delay between regions), and loses a configurable share of them (the
//! caller then sees [`NetError::Lost`]). It is also where faults live that
//! a kernel would otherwise make: a partition into groups (calls across
//! are lost), an isolated node, and a paused one (calls to and from it
//! wait until it resumes). A node sees the network through its own view
//! ([`Network::view`]), so every call knows where it comes from.
//!
//! Gossip (pushes whose answer the sender does not wait for) is posted
//! instead ([`crate::Network::post_block`]): one task, the postman,
//! delivers every message as it falls due, in order of arrival time.
//!
//! Beside the engine, above the traits: this module knows nodes only
//! through [`Inbox`], never the engine's types, so the engine can use it
//! for its builder defaults without a loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::block::{Block, CheckedBlock};
use crate::clock::{Clock, Skew};
use crate::hash::{BlockHash, TxId};
use crate::invalid::ValidationError;
use crate::maps::{Map, Set};
use crate::network::{
    self, AckedTransfer, Inbox, MAX_ACKED_PAGE, MAX_ACKED_TRANSFERS, MAX_RESTORED_TRANSFERS,
    Snapshot, StoreError,
};
use crate::tx::Transaction;
use crate::wire::{
    BlockAck, NetError, Outgoing, Payload, PeerError, PeerInfo, PeerUrl, Status, TxAck, Unreachable,
};

mod post;

pub use post::MAX_LETTERS;

#[derive(Debug)]
struct Hub {
    nodes: Mutex<Map<PeerUrl, Weak<dyn Inbox>>>,
    knobs: Mutex<Knobs>,
    /// Where latencies are waited out.
    clock: Clock,
    rng: Mutex<StdRng>,
    delivered: AtomicU64,
    lost: AtomicU64,
    /// Gossip on its way.
    post: post::PostOffice,
}

impl Hub {
    /// A call or letter arriving for `to`: counted as lost or delivered;
    /// a delivered one finds the node that answers there.
    fn arrive(&self, to: &PeerUrl, lost: bool) -> Result<Arc<dyn Inbox>, NetError> {
        if lost {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return Err(NetError::Lost);
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.inbox(to)
            .ok_or(NetError::Unreachable(Unreachable::NoListener))
    }

    /// What the running node at `url` answers, if a node runs there.
    fn inbox(&self, url: &PeerUrl) -> Option<Arc<dyn Inbox>> {
        self.nodes
            .lock()
            .ok()?
            .get(url)?
            .upgrade()
            .filter(|node| node.is_open())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.post.close();
    }
}

/// Where one call goes: its latency (any pause of either end waited out
/// first) and whether it is lost.
struct Route {
    latency: Duration,
    lost: bool,
    /// When a paused end resumes.
    resume: Option<Instant>,
}

impl Route {
    /// When the call arrives, if it leaves at `now`.
    fn arrival(&self, now: Instant) -> Instant {
        self.resume.map_or(now, |until| until.max(now)) + self.latency
    }
}

#[derive(Debug, Clone)]
struct Knobs {
    delay: LinkDelay,
    loss: f64,
    /// Each node's region, an index into `one_way`.
    region: Map<PeerUrl, usize>,
    /// One-way delay between regions, added to the link's draw.
    one_way: Vec<Vec<Duration>>,
    /// Each node's side of a partition (none: no partition).
    side: Map<PeerUrl, usize>,
    /// Nodes on no side of the partition that reach every side.
    bridges: Set<PeerUrl>,
    /// Paused nodes and when they resume (virtual or real instant).
    paused: Map<PeerUrl, Instant>,
}

/// How long one call takes on a link, before any delay between regions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkDelay {
    /// Always the same.
    Constant(Duration),
    /// Uniform in `min..=max`.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Exponential with this mean (capped at 100 means).
    Exponential {
        /// The mean.
        mean: Duration,
    },
}

impl LinkDelay {
    /// One draw.
    pub fn draw(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            Self::Constant(d) => d,
            Self::Uniform { min, max } if max > min => rng.random_range(min..=max),
            Self::Uniform { min, .. } => min,
            Self::Exponential { mean } => {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                mean.mul_f64((-u.ln()).min(100.0))
            }
        }
    }

    /// The mean of the draws.
    pub fn mean(&self) -> Duration {
        match *self {
            Self::Constant(d) => d,
            Self::Uniform { min, max } => (min + max.max(min)) / 2,
            Self::Exponential { mean } => mean,
        }
    }

    /// The same kind of distribution with its mean moved to `mean`, shape
    /// kept (a uniform range is scaled around zero; one of mean zero
    /// becomes the single point `mean`).
    pub fn with_mean(&self, mean: Duration) -> Self {
        match *self {
            Self::Constant(_) => Self::Constant(mean),
            Self::Exponential { .. } => Self::Exponential { mean },
            Self::Uniform { min, max } => {
                let old = self.mean().as_nanos() as f64;
                if old <= 0.0 {
                    return Self::Uniform {
                        min: mean,
                        max: mean,
                    };
                }
                let factor = mean.as_nanos() as f64 / old;
                // Float to integer casts saturate: no panic, whatever the
                // factor.
                let scale = |d: Duration| {
                    Duration::from_nanos((d.as_nanos() as f64 * factor).round() as u64)
                };
                Self::Uniform {
                    min: scale(min),
                    max: scale(max),
                }
            }
        }
    }
}

/// An in-memory network: every node attached to a clone of the same
/// `Network` can reach every other by its `mem://` URL.
#[derive(Debug, Clone)]
pub struct Network {
    hub: Arc<Hub>,
    /// Whose view this is: calls come from here (see [`Network::view`]).
    from: Option<PeerUrl>,
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// A network without latency or loss.
    pub fn new() -> Self {
        Self::seeded(rand::random())
    }

    /// A network whose latency and loss draws follow `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            hub: Arc::new(Hub {
                nodes: Mutex::new(Map::default()),
                knobs: Mutex::new(Knobs {
                    delay: LinkDelay::Constant(Duration::ZERO),
                    loss: 0.0,
                    region: Map::default(),
                    one_way: Vec::new(),
                    side: Map::default(),
                    bridges: Set::default(),
                    paused: Map::default(),
                }),
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                // Tokio's time, virtual in a simulation: a pause's end
                // (virtual) is compared with virtual time, never with the
                // wall clock, whose pace depends on the machine's load
                // (a replay that did gave another run now and then).
                clock: Clock::simulated(0, Skew::default()),
                delivered: AtomicU64::new(0),
                lost: AtomicU64::new(0),
                post: post::PostOffice::default(),
            }),
            from: None,
        }
    }

    /// The network as the node at `url` sees it: the same network, whose
    /// calls come from `url` (partitions, regions and pauses apply to
    /// them). Give each node its own view.
    pub fn view(&self, url: &PeerUrl) -> Self {
        Self {
            hub: self.hub.clone(),
            from: Some(url.clone()),
        }
    }

    /// Sets each call's latency to a uniform draw in `min..=max`.
    pub fn set_latency(&self, min: Duration, max: Duration) {
        self.set_link_delay(LinkDelay::Uniform {
            min,
            max: max.max(min),
        });
    }

    /// Sets how long each call takes (before delays between regions).
    pub fn set_link_delay(&self, delay: LinkDelay) {
        self.knobs().delay = delay;
    }

    /// Sets the one-way delay between regions (`one_way[a][b]`, added to
    /// every call from region `a` to region `b`) and each node's region.
    /// Nodes without one, or with one outside the matrix, get none added.
    pub fn set_regions(&self, one_way: Vec<Vec<Duration>>, region: Vec<(PeerUrl, usize)>) {
        let mut knobs = self.knobs();
        knobs.one_way = one_way;
        knobs.region = region.into_iter().collect();
    }

    /// Splits the network: calls between nodes on different sides are
    /// lost. The nodes of no side form one more side together.
    pub fn partition(&self, sides: &[Vec<PeerUrl>]) {
        let mut knobs = self.knobs();
        knobs.side = sides
            .iter()
            .enumerate()
            .flat_map(|(i, side)| side.iter().map(move |url| (url.clone(), i + 1)))
            .collect();
    }

    /// Splits the network as [`Network::partition`] does, but for
    /// `bridges`: nodes on no side that reach, and are reached from,
    /// every side.
    pub fn partition_bridged(&self, sides: &[Vec<PeerUrl>], bridges: &[PeerUrl]) {
        self.partition(sides);
        let mut knobs = self.knobs();
        for url in bridges {
            knobs.side.remove(url);
        }
        knobs.bridges = bridges.iter().cloned().collect();
    }

    /// Cuts `url` off from every other node (a partition of its own,
    /// on top of any partition in force; a bridge stops being one).
    pub fn isolate(&self, url: &PeerUrl) {
        let mut knobs = self.knobs();
        knobs.bridges.remove(url);
        let alone = knobs.side.values().max().copied().unwrap_or(0) + 1;
        knobs.side.insert(url.clone(), alone);
    }

    /// Ends every partition and isolation.
    pub fn heal(&self) {
        let mut knobs = self.knobs();
        knobs.side.clear();
        knobs.bridges.clear();
    }

    /// Pauses `url` until `until`: calls to it and from it wait until
    /// then (as a stopped process's would), then go on.
    pub fn pause(&self, url: &PeerUrl, until: Instant) {
        self.knobs().paused.insert(url.clone(), until);
    }

    /// Sets the share of calls lost, from 0.0 to 1.0.
    pub fn set_loss(&self, loss: f64) {
        self.knobs().loss = loss.clamp(0.0, 1.0);
    }

    /// Sets how many gossip messages may be on their way at once (default
    /// [`MAX_LETTERS`]); past it, a sender pushes its messages itself, as
    /// over HTTP, under its own bound of sends in flight.
    pub fn set_max_letters(&self, letters: usize) {
        self.hub.post.set_capacity(letters);
    }

    /// Builder form of [`Network::set_latency`].
    pub fn with_latency(self, min: Duration, max: Duration) -> Self {
        self.set_latency(min, max);
        self
    }

    /// Builder form of [`Network::set_loss`].
    pub fn with_loss(self, loss: f64) -> Self {
        self.set_loss(loss);
        self
    }

    /// What the running node at `url` answers, if a node runs there.
    pub fn node(&self, url: &PeerUrl) -> Option<Arc<dyn Inbox>> {
        self.hub.inbox(url)
    }

    /// Makes `url` unreachable (as if its machine went away).
    pub fn detach(&self, url: &PeerUrl) {
        if let Ok(mut nodes) = self.hub.nodes.lock() {
            nodes.remove(url);
        }
    }

    /// Calls delivered and calls lost so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hub.delivered.load(Ordering::Relaxed),
            self.hub.lost.load(Ordering::Relaxed),
        )
    }

    fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.hub.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Draws the route of a call from this view's node to `to`.
    fn route(&self, to: &PeerUrl) -> Route {
        let knobs = self.knobs();
        let from = self.from.as_ref();
        let side = |url: Option<&PeerUrl>| url.and_then(|u| knobs.side.get(u)).copied();
        let bridge = |url: Option<&PeerUrl>| url.is_some_and(|u| knobs.bridges.contains(u));
        let cut = !knobs.side.is_empty()
            && side(from).unwrap_or(0) != side(Some(to)).unwrap_or(0)
            && !bridge(from)
            && !bridge(Some(to));
        let region = |url: Option<&PeerUrl>| url.and_then(|u| knobs.region.get(u)).copied();
        let between = match (region(from), region(Some(to))) {
            (Some(a), Some(b)) => knobs
                .one_way
                .get(a)
                .and_then(|row| row.get(b))
                .copied()
                .unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let paused = |url: Option<&PeerUrl>| url.and_then(|u| knobs.paused.get(u)).copied();
        let resume = paused(from).max(paused(Some(to)));
        let mut rng = self.hub.rng.lock().unwrap_or_else(|p| p.into_inner());
        let latency = knobs.delay.draw(&mut *rng) + between;
        let lost = cut || (knobs.loss > 0.0 && rng.random_bool(knobs.loss));
        Route {
            latency,
            lost,
            resume,
        }
    }

    /// Waits out a pause of the caller or the target, then the call's
    /// latency, then finds the target, or loses the call.
    async fn transit(&self, to: &PeerUrl) -> Result<Arc<dyn Inbox>, NetError> {
        let Route {
            latency,
            lost,
            resume,
        } = self.route(to);
        if let Some(until) = resume.filter(|until| *until > self.hub.clock.now()) {
            self.hub.clock.sleep_until(until).await;
        }
        if !latency.is_zero() {
            self.hub.clock.sleep(latency).await;
        }
        self.hub.arrive(to, lost)
    }

    /// Posts `mail` from `from` to `to`: routed now, as a call is, and
    /// delivered when it arrives. Hands the mail back when it is not
    /// taken (see [`post`]).
    fn post(&self, to: &PeerUrl, from: &PeerUrl, mail: post::Mail) -> Result<(), post::Mail> {
        let route = self.route(to);
        let letter = post::Letter::new(
            route.arrival(self.hub.clock.now()),
            to.clone(),
            from.clone(),
            route.lost,
            mail,
        );
        self.hub.post.post(&self.hub, letter).map_err(|l| l.mail)
    }
}

fn refused(e: &impl ReasonName) -> NetError {
    NetError::Refused {
        status: 400,
        reason: e.reason_name().to_owned(),
    }
}

trait ReasonName {
    fn reason_name(&self) -> &'static str;
}

impl ReasonName for ValidationError {
    fn reason_name(&self) -> &'static str {
        self.reason()
    }
}

impl ReasonName for PeerError {
    fn reason_name(&self) -> &'static str {
        self.reason()
    }
}

#[async_trait]
impl network::Network for Network {
    fn attach(&self, url: &PeerUrl, node: Weak<dyn Inbox>) {
        if let Ok(mut nodes) = self.hub.nodes.lock() {
            nodes.insert(url.clone(), node);
        }
    }

    async fn push_block(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, NetError> {
        self.transit(to)
            .await?
            .push_block(from, payload)
            .await
            .map_err(|e| refused(&e))
    }

    fn post_block(&self, message: Outgoing, from: &PeerUrl) -> Option<Outgoing> {
        let Outgoing { to, payload } = message;
        match self.post(&to, from, post::Mail::Block(Box::new(payload))) {
            Ok(()) => None,
            Err(post::Mail::Block(payload)) => Some(Outgoing {
                to,
                payload: *payload,
            }),
            Err(post::Mail::Tx(_)) => unreachable!("a block was posted"),
        }
    }

    fn post_tx(&self, to: &PeerUrl, from: &PeerUrl, tx: &Arc<Transaction>) -> bool {
        self.post(to, from, post::Mail::Tx(tx.clone())).is_ok()
    }

    async fn push_tx(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        tx: &Transaction,
    ) -> Result<TxAck, NetError> {
        self.transit(to)
            .await?
            .push_tx(from, tx)
            .await
            .map_err(|e| refused(&e))
    }

    async fn status(&self, to: &PeerUrl) -> Result<Status, NetError> {
        Ok(self.transit(to).await?.status().await)
    }

    async fn blocks(&self, to: &PeerUrl, from: u64, limit: usize) -> Result<Vec<Block>, NetError> {
        Ok(self.transit(to).await?.blocks(from, limit).await)
    }

    async fn chain(&self, to: &PeerUrl) -> Result<Vec<Block>, NetError> {
        Ok(self.transit(to).await?.chain().await)
    }

    async fn block(&self, to: &PeerUrl, hash: &BlockHash) -> Result<Option<Block>, NetError> {
        Ok(self.transit(to).await?.block(hash).await)
    }

    async fn peers(&self, to: &PeerUrl) -> Result<Vec<PeerUrl>, NetError> {
        Ok(self.transit(to).await?.peers().await)
    }

    async fn announce(&self, to: &PeerUrl, me: &PeerUrl) -> Result<(), NetError> {
        self.transit(to)
            .await?
            .announce(me.clone())
            .await
            .map_err(|e| refused(&e))
    }
}

/// Most registrations an in-memory tracker keeps.
const MAX_TRACKED: usize = 1_000_000;

/// An in-memory tracker: registrations and random samples of them.
#[derive(Debug, Clone)]
pub struct Tracker {
    inner: Arc<Mutex<Registry>>,
}

/// Registrations in order of arrival (a sample picks indices: O(sample),
/// not O(registrations)), and where each URL sits.
#[derive(Debug)]
struct Registry {
    index: Map<PeerUrl, usize>,
    nodes: Vec<PeerInfo>,
    rng: StdRng,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::seeded(rand::random())
    }
}

impl Tracker {
    /// A tracker whose samples follow `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Registry {
                index: Map::default(),
                nodes: Vec::new(),
                rng: StdRng::seed_from_u64(seed),
            })),
        }
    }

    /// Every registered node.
    pub fn registered(&self) -> Vec<PeerInfo> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .nodes
            .clone()
    }
}

#[async_trait]
impl network::Tracker for Tracker {
    async fn register(&self, me: &PeerInfo) -> Result<(), NetError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Registry { index, nodes, .. } = &mut *inner;
        if let Some(&at) = index.get(&me.url) {
            nodes[at] = me.clone();
            return Ok(());
        }
        if nodes.len() >= MAX_TRACKED {
            return Err(NetError::Refused {
                status: 429,
                reason: "tracker_full".into(),
            });
        }
        index.insert(me.url.clone(), nodes.len());
        nodes.push(me.clone());
        Ok(())
    }

    async fn sample(&self, me: &PeerUrl, count: usize) -> Result<Vec<PeerUrl>, NetError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Registry { nodes, rng, .. } = &mut *inner;
        let amount = count.saturating_add(1).min(nodes.len());
        Ok(rand::seq::index::sample(rng, nodes.len(), amount)
            .into_iter()
            .map(|i| &nodes[i].url)
            .filter(|url| *url != me)
            .take(count)
            .cloned()
            .collect())
    }
}

#[derive(Debug, Default)]
struct StoreInner {
    blocks: Vec<Arc<CheckedBlock>>,
    hashes: Set<BlockHash>,
    peers: Set<PeerUrl>,
    /// Acknowledged transfers, oldest first (at most
    /// [`MAX_ACKED_TRANSFERS`]).
    transfers: std::collections::VecDeque<AckedTransfer>,
    /// The last sequence number given.
    last_seq: u64,
}

/// An in-memory store. Clones share contents, so a test can "restart" a
/// node on the same store.
#[derive(Debug, Clone, Default)]
pub struct Store {
    inner: Arc<Mutex<StoreInner>>,
}

impl Store {
    /// Blocks stored.
    pub fn block_count(&self) -> usize {
        self.inner.lock().map(|i| i.blocks.len()).unwrap_or(0)
    }
}

#[async_trait]
impl network::Store for Store {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let skip = inner.transfers.len().saturating_sub(MAX_RESTORED_TRANSFERS);
        Ok(Snapshot {
            blocks: inner.blocks.iter().map(|b| b.block().clone()).collect(),
            peers: inner.peers.iter().cloned().collect(),
            transfers: inner.transfers.iter().skip(skip).cloned().collect(),
        })
    }

    async fn save_blocks(&self, blocks: &[Arc<CheckedBlock>]) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for block in blocks {
            if inner.hashes.insert(block.hash()) {
                inner.blocks.push(block.clone());
            }
        }
        Ok(())
    }

    async fn save_peer(&self, peer: &PeerUrl) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.peers.insert(peer.clone());
        Ok(())
    }

    async fn remove_peer(&self, peer: &PeerUrl) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.peers.remove(peer);
        Ok(())
    }

    async fn clear_blocks(&self) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.blocks.clear();
        inner.hashes.clear();
        Ok(())
    }

    async fn save_transfer(
        &self,
        id: TxId,
        acknowledged_ms: u64,
        tx: &Transaction,
    ) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.last_seq += 1;
        let seq = inner.last_seq;
        inner.transfers.push_back(AckedTransfer {
            seq,
            id,
            acknowledged_ms,
            tx: tx.clone(),
        });
        while inner.transfers.len() as u64 > MAX_ACKED_TRANSFERS {
            inner.transfers.pop_front();
        }
        Ok(seq)
    }

    async fn acknowledged(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AckedTransfer>, StoreError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Sequence numbers increase along the queue.
        let start = inner.transfers.partition_point(|t| t.seq <= after);
        Ok(inner
            .transfers
            .range(start..)
            .take(limit.min(MAX_ACKED_PAGE))
            .cloned()
            .collect())
    }
}
