//! In-memory implementations of [`crate::Network`], [`crate::Tracker`] and
//! [`crate::Store`], so a whole network of thousands of nodes runs in one
//! process for experiments and tests.
//!
//! The [`Network`] delivers calls straight to the target node's
//! [`Inbox`] after a random latency, and loses a configurable share of
//! them (the caller then sees [`NetError::Lost`]).
//!
//! Beside the engine, above the traits: this module knows nodes only
//! through [`Inbox`], never the engine's types, so the engine can use it
//! for its builder defaults without a loop.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::block::{Block, CheckedBlock};
use crate::clock::Clock;
use crate::hash::BlockHash;
use crate::invalid::ValidationError;
use crate::network::{self, Inbox, Snapshot, StoreError};
use crate::tx::Transaction;
use crate::wire::{
    BlockAck, NetError, Payload, PeerError, PeerInfo, PeerUrl, Status, TxAck, Unreachable,
};

#[derive(Debug)]
struct Hub {
    nodes: Mutex<HashMap<PeerUrl, Weak<dyn Inbox>>>,
    knobs: Mutex<Knobs>,
    /// Where latencies are waited out.
    clock: Clock,
    rng: Mutex<StdRng>,
    delivered: AtomicU64,
    lost: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Knobs {
    min_latency: Duration,
    max_latency: Duration,
    loss: f64,
}

/// An in-memory network: every node attached to a clone of the same
/// `Network` can reach every other by its `mem://` URL.
#[derive(Debug, Clone)]
pub struct Network {
    hub: Arc<Hub>,
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
                nodes: Mutex::new(HashMap::new()),
                knobs: Mutex::new(Knobs {
                    min_latency: Duration::ZERO,
                    max_latency: Duration::ZERO,
                    loss: 0.0,
                }),
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                clock: Clock::system(),
                delivered: AtomicU64::new(0),
                lost: AtomicU64::new(0),
            }),
        }
    }

    /// Sets each call's latency to a uniform draw in `min..=max`.
    pub fn set_latency(&self, min: Duration, max: Duration) {
        let mut knobs = self.knobs();
        knobs.min_latency = min;
        knobs.max_latency = max.max(min);
    }

    /// Sets the share of calls lost, from 0.0 to 1.0.
    pub fn set_loss(&self, loss: f64) {
        self.knobs().loss = loss.clamp(0.0, 1.0);
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
        self.hub
            .nodes
            .lock()
            .ok()?
            .get(url)?
            .upgrade()
            .filter(|node| node.is_open())
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

    /// Waits the call's latency, then finds the target, or loses the call.
    async fn transit(&self, to: &PeerUrl) -> Result<Arc<dyn Inbox>, NetError> {
        let knobs = *self.knobs();
        let (latency, lost) = {
            let mut rng = self.hub.rng.lock().unwrap_or_else(|p| p.into_inner());
            let latency = if knobs.max_latency > knobs.min_latency {
                rng.random_range(knobs.min_latency..=knobs.max_latency)
            } else {
                knobs.min_latency
            };
            (latency, knobs.loss > 0.0 && rng.random_bool(knobs.loss))
        };
        if !latency.is_zero() {
            self.hub.clock.sleep(latency).await;
        }
        if lost {
            self.hub.lost.fetch_add(1, Ordering::Relaxed);
            return Err(NetError::Lost);
        }
        self.hub.delivered.fetch_add(1, Ordering::Relaxed);
        self.node(to)
            .ok_or(NetError::Unreachable(Unreachable::NoListener))
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
    inner: Arc<Mutex<(HashMap<PeerUrl, PeerInfo>, StdRng)>>,
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
            inner: Arc::new(Mutex::new((HashMap::new(), StdRng::seed_from_u64(seed)))),
        }
    }

    /// Every registered node.
    pub fn registered(&self) -> Vec<PeerInfo> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.0.values().cloned().collect()
    }
}

#[async_trait]
impl network::Tracker for Tracker {
    async fn register(&self, me: &PeerInfo) -> Result<(), NetError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.0.len() >= MAX_TRACKED && !inner.0.contains_key(&me.url) {
            return Err(NetError::Refused {
                status: 429,
                reason: "tracker_full".into(),
            });
        }
        inner.0.insert(me.url.clone(), me.clone());
        Ok(())
    }

    async fn sample(&self, me: &PeerUrl, count: usize) -> Result<Vec<PeerUrl>, NetError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (nodes, rng) = &mut *inner;
        let urls: Vec<&PeerUrl> = nodes.keys().filter(|u| *u != me).collect();
        Ok(urls
            .choose_multiple(rng, count)
            .map(|u| (*u).clone())
            .collect())
    }
}

#[derive(Debug, Default)]
struct StoreInner {
    blocks: Vec<Arc<CheckedBlock>>,
    hashes: HashSet<BlockHash>,
    peers: HashSet<PeerUrl>,
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
        Ok(Snapshot {
            blocks: inner.blocks.iter().map(|b| b.block().clone()).collect(),
            peers: inner.peers.iter().cloned().collect(),
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
}
