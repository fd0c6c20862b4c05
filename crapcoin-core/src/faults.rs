//! Network faults of one node, in the node's own network layer:
//! [`NetFaults`] (the switch) and [`Faulty`] (a [`Network`] wrapper that
//! obeys it).
//!
//! There is no kernel network emulation where CrapCoin runs (no netem,
//! no privileges), so a node's faults live where it makes its calls.
//! [`crate::Node::builder`] wraps every node's network in a [`Faulty`],
//! for real processes (HTTP) and the in-memory network alike, and the
//! node's [`NetFaults`] handle (`Handle::faults`) switches them:
//!
//! - **unreachable** peers: a call to one fails at once with the error a
//!   peer nobody listens for gives ([`Unreachable::NoListener`]). Giving
//!   every node of each side the other sides' URLs makes a partition; a
//!   node given none bridges the sides;
//! - **latency**: each call to a matching peer (every peer, or the ones
//!   listed) waits `mean ± jitter` (uniform in
//!   `[max(0, mean − jitter), mean + jitter]`) before it is sent;
//! - **loss**: each call to a matching peer is lost with probability
//!   `rate`; a lost call fails as the in-memory network's lost calls do
//!   ([`NetError::Lost`], after its latency), which the engine treats as
//!   a call that got no answer;
//! - **skew**: the node's [`Clock`] reads `skew_ms` away from the true
//!   time (its [`crate::Skew`]), so the timestamp rules are exercised.
//!
//! Each fault is set for a duration and ends by itself then, in the
//! node's clock time (virtual in a simulation): a timer task of the node
//! ends it, and every call also drops faults whose time is up. Every
//! random draw comes from a generator seeded with the node's seed, and
//! every wait goes through the node's clock, so a simulation replays the
//! same faults from the same seed.
//!
//! The path without faults is one relaxed atomic load per call. Calls to
//! the tracker never pass through here: a partitioned node still reaches
//! Sauron.
//!
//! Beside [`crate::memory`] in the engine's top layer: it sees nodes only
//! through the [`Network`] trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::block::Block;
use crate::clock::Clock;
use crate::hash::BlockHash;
use crate::maps::Set;
use crate::network::{Inbox, Network};
use crate::tx::Transaction;
use crate::wire::{BlockAck, NetError, Outgoing, Payload, PeerUrl, Status, TxAck, Unreachable};

/// Most peers one fault lists (`unreachable`, or a `to` list).
pub const MAX_FAULT_PEERS: usize = 1024;

/// Largest clock skew, either way: a year, in milliseconds.
pub const MAX_SKEW_MS: i64 = 365 * 24 * 3600 * 1000;

/// Largest latency mean or jitter: an hour.
pub const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// Longest a fault lasts (a hundred years: "until told otherwise").
pub const MAX_FAULT_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Latency added to calls: each waits `mean ± jitter` before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// The mean wait.
    pub mean: Duration,
    /// How far a wait may be from the mean, either way (never below 0).
    pub jitter: Duration,
    /// The peers whose calls wait; `None`: every peer.
    pub to: Option<Vec<PeerUrl>>,
}

/// Calls lost at random.
#[derive(Debug, Clone, PartialEq)]
pub struct Loss {
    /// Probability that a call is lost, in [0, 1].
    pub rate: f64,
    /// The peers whose calls may be lost; `None`: every peer.
    pub to: Option<Vec<PeerUrl>>,
}

/// Faults to set, each replacing the one of its kind (kinds left `None`
/// stay as they are), all for the same `duration`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultUpdate {
    /// Peers whose calls fail at once as unreachable; empty: none.
    pub unreachable: Option<Vec<PeerUrl>>,
    /// Latency before calls.
    pub latency: Option<Latency>,
    /// Calls lost at random.
    pub loss: Option<Loss>,
    /// How far the node's clock reads from the true time, in ms
    /// (positive: ahead).
    pub skew_ms: Option<i64>,
    /// How long the faults set last; they end by themselves then.
    pub duration: Duration,
}

/// A fault in force and how long it has left.
#[derive(Debug, Clone, PartialEq)]
pub struct Active<T> {
    /// The fault.
    pub fault: T,
    /// Time until it ends by itself.
    pub left: Duration,
}

/// The faults in force on a node ([`NetFaults::current`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Current {
    /// Peers whose calls fail as unreachable, sorted.
    pub unreachable: Option<Active<Vec<PeerUrl>>>,
    /// Latency before calls.
    pub latency: Option<Active<Latency>>,
    /// Calls lost at random.
    pub loss: Option<Active<Loss>>,
    /// The clock's skew, in ms.
    pub skew_ms: Option<Active<i64>>,
}

impl Current {
    /// How many faults are in force (0 to 4).
    pub fn count(&self) -> usize {
        usize::from(self.unreachable.is_some())
            + usize::from(self.latency.is_some())
            + usize::from(self.loss.is_some())
            + usize::from(self.skew_ms.is_some())
    }
}

/// Why a [`FaultUpdate`] was refused (nothing of it was set).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// A list names more than [`MAX_FAULT_PEERS`] peers.
    #[error("`{field}` lists {count} peers, more than {MAX_FAULT_PEERS}")]
    TooManyPeers {
        /// The list: `unreachable`, `latency.to` or `loss.to`.
        field: &'static str,
        /// How many it lists.
        count: usize,
    },
    /// A loss rate outside [0, 1] (or not a number).
    #[error("`loss.rate` = {0} is not in [0, 1]")]
    BadRate(f64),
    /// A skew beyond [`MAX_SKEW_MS`].
    #[error("`skew_ms` = {0} is beyond ±{MAX_SKEW_MS} (a year)")]
    SkewTooLarge(i64),
    /// A latency mean or jitter beyond [`MAX_LATENCY`].
    #[error("`latency.{field}` is {got:?}, more than an hour")]
    LatencyTooLong {
        /// `mean_ms` or `jitter_ms`.
        field: &'static str,
        /// The value given.
        got: Duration,
    },
    /// A duration of zero, or beyond [`MAX_FAULT_DURATION`].
    #[error("the faults' duration {0:?} is not in 1 ms ..= 100 years")]
    BadDuration(Duration),
}

/// A fault and when it ends.
#[derive(Debug, Clone)]
struct Timed<T> {
    fault: T,
    until: Instant,
}

/// Peers a fault applies to: all, or a set.
#[derive(Debug, Clone)]
enum Targets {
    All,
    Some(Set<PeerUrl>),
}

impl Targets {
    fn of(to: Option<&[PeerUrl]>) -> Self {
        match to {
            None => Self::All,
            Some(peers) => Self::Some(peers.iter().cloned().collect()),
        }
    }

    fn contains(&self, url: &PeerUrl) -> bool {
        match self {
            Self::All => true,
            Self::Some(set) => set.contains(url),
        }
    }

    fn listed(&self) -> Option<Vec<PeerUrl>> {
        match self {
            Self::All => None,
            Self::Some(set) => Some(sorted(set)),
        }
    }
}

fn sorted(set: &Set<PeerUrl>) -> Vec<PeerUrl> {
    let mut peers: Vec<PeerUrl> = set.iter().cloned().collect();
    peers.sort();
    peers
}

/// What is in force, behind one short-held lock.
#[derive(Debug)]
struct State {
    unreachable: Option<Timed<Set<PeerUrl>>>,
    latency: Option<Timed<(Duration, Duration, Targets)>>,
    loss: Option<Timed<(f64, Targets)>>,
    skew: Option<Timed<i64>>,
    rng: StdRng,
    /// Whether the expiry task runs (it ends when nothing is left).
    timer: bool,
}

impl State {
    fn network_faults(&self) -> bool {
        self.unreachable.is_some() || self.latency.is_some() || self.loss.is_some()
    }

    fn next_end(&self) -> Option<Instant> {
        [
            self.unreachable.as_ref().map(|t| t.until),
            self.latency.as_ref().map(|t| t.until),
            self.loss.as_ref().map(|t| t.until),
            self.skew.as_ref().map(|t| t.until),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// What one call meets.
struct Fate {
    unreachable: bool,
    delay: Duration,
    lost: bool,
}

/// One node's network faults: a cheap, shared handle (clones switch the
/// same faults). See the [module docs](self).
#[derive(Debug, Clone)]
pub struct NetFaults {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Any unreachable, latency or loss fault set: the only thing a call
    /// reads when there is none.
    any: AtomicBool,
    state: Mutex<State>,
    clock: Clock,
    /// Calls failed by a fault (unreachable or lost).
    failed: AtomicU64,
    /// Wakes the expiry task when faults change.
    changed: Notify,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl NetFaults {
    /// No faults yet, for a node whose time is `clock`, whose draws follow
    /// `seed`, and whose expiry task stops on `cancel` and is tracked by
    /// `tasks` (the node's own: the builder passes them).
    pub fn new(clock: Clock, seed: u64, cancel: CancellationToken, tasks: TaskTracker) -> Self {
        Self {
            inner: Arc::new(Shared {
                any: AtomicBool::new(false),
                state: Mutex::new(State {
                    unreachable: None,
                    latency: None,
                    loss: None,
                    skew: None,
                    rng: StdRng::seed_from_u64(seed),
                    timer: false,
                }),
                clock,
                failed: AtomicU64::new(0),
                changed: Notify::new(),
                cancel,
                tasks,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the faults of `update` (each replaces the one of its kind),
    /// all ending `update.duration` from now.
    ///
    /// # Errors
    ///
    /// [`FaultError`] for a value out of range; then nothing is set.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, when a fault with an end is set and the
    /// task that ends it must start (call it from the node's runtime, as
    /// its HTTP handlers and a simulation's runner do).
    pub fn apply(&self, update: FaultUpdate) -> Result<(), FaultError> {
        check(&update)?;
        let now = self.inner.clock.now();
        let until = now
            .checked_add(update.duration)
            .unwrap_or(now + Duration::from_secs(3600));
        let mut state = self.state();
        if let Some(peers) = update.unreachable {
            state.unreachable = (!peers.is_empty()).then(|| Timed {
                fault: peers.into_iter().collect(),
                until,
            });
        }
        if let Some(latency) = update.latency {
            state.latency = Some(Timed {
                fault: (
                    latency.mean,
                    latency.jitter,
                    Targets::of(latency.to.as_deref()),
                ),
                until,
            });
        }
        if let Some(loss) = update.loss {
            state.loss = Some(Timed {
                fault: (loss.rate, Targets::of(loss.to.as_deref())),
                until,
            });
        }
        if let Some(skew) = update.skew_ms {
            self.inner.clock.skew().set(skew);
            state.skew = Some(Timed { fault: skew, until });
        }
        self.inner
            .any
            .store(state.network_faults(), Ordering::Relaxed);
        let start_timer = !state.timer && state.next_end().is_some();
        state.timer |= start_timer;
        drop(state);
        if start_timer {
            self.inner.tasks.spawn(self.clone().expire_on_time());
        } else {
            self.inner.changed.notify_one();
        }
        Ok(())
    }

    /// Ends every fault now; the clock's skew goes back to 0.
    pub fn clear(&self) {
        let mut state = self.state();
        state.unreachable = None;
        state.latency = None;
        state.loss = None;
        state.skew = None;
        self.inner.clock.skew().set(0);
        self.inner.any.store(false, Ordering::Relaxed);
        drop(state);
        self.inner.changed.notify_one();
    }

    /// The faults in force now.
    pub fn current(&self) -> Current {
        let now = self.inner.clock.now();
        let mut state = self.state();
        self.expire(&mut state, now);
        let left = |until: Instant| until.saturating_duration_since(now);
        Current {
            unreachable: state.unreachable.as_ref().map(|t| Active {
                fault: sorted(&t.fault),
                left: left(t.until),
            }),
            latency: state.latency.as_ref().map(|t| Active {
                fault: Latency {
                    mean: t.fault.0,
                    jitter: t.fault.1,
                    to: t.fault.2.listed(),
                },
                left: left(t.until),
            }),
            loss: state.loss.as_ref().map(|t| Active {
                fault: Loss {
                    rate: t.fault.0,
                    to: t.fault.1.listed(),
                },
                left: left(t.until),
            }),
            skew_ms: state.skew.as_ref().map(|t| Active {
                fault: t.fault,
                left: left(t.until),
            }),
        }
    }

    /// Whether an unreachable, latency or loss fault is set (one relaxed
    /// load: what a call checks first).
    fn any(&self) -> bool {
        self.inner.any.load(Ordering::Relaxed)
    }

    /// Calls failed by a fault so far (unreachable or lost).
    pub fn failed_calls(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Drops the faults whose time is up (the skew's end sets the clock
    /// right again).
    fn expire(&self, state: &mut State, now: Instant) {
        let over = |until: Instant| until <= now;
        if state.unreachable.as_ref().is_some_and(|t| over(t.until)) {
            state.unreachable = None;
        }
        if state.latency.as_ref().is_some_and(|t| over(t.until)) {
            state.latency = None;
        }
        if state.loss.as_ref().is_some_and(|t| over(t.until)) {
            state.loss = None;
        }
        if state.skew.as_ref().is_some_and(|t| over(t.until)) {
            state.skew = None;
            self.inner.clock.skew().set(0);
        }
        self.inner
            .any
            .store(state.network_faults(), Ordering::Relaxed);
    }

    /// The expiry task: ends each fault when its time is up; returns when
    /// no fault is left (the next [`NetFaults::apply`] starts it again)
    /// or the node stops.
    async fn expire_on_time(self) {
        loop {
            let next = {
                let mut state = self.state();
                self.expire(&mut state, self.inner.clock.now());
                match state.next_end() {
                    Some(next) => next,
                    None => {
                        state.timer = false;
                        return;
                    }
                }
            };
            tokio::select! {
                biased;
                () = self.inner.cancel.cancelled() => return,
                () = self.inner.changed.notified() => {}
                () = self.inner.clock.sleep_until(next) => {}
            }
        }
    }

    /// What a call to `to` meets: `None` when no network fault is set (one
    /// relaxed load).
    fn fate(&self, to: &PeerUrl) -> Option<Fate> {
        if !self.any() {
            return None;
        }
        let mut state = self.state();
        self.expire(&mut state, self.inner.clock.now());
        if state
            .unreachable
            .as_ref()
            .is_some_and(|t| t.fault.contains(to))
        {
            return Some(Fate {
                unreachable: true,
                delay: Duration::ZERO,
                lost: false,
            });
        }
        let State {
            latency, loss, rng, ..
        } = &mut *state;
        let delay = match latency {
            Some(Timed {
                fault: (mean, jitter, targets),
                ..
            }) if targets.contains(to) => {
                let low = mean.saturating_sub(*jitter);
                let high = mean.saturating_add(*jitter);
                if high > low {
                    rng.random_range(low..=high)
                } else {
                    low
                }
            }
            _ => Duration::ZERO,
        };
        let lost = match loss {
            Some(Timed {
                fault: (rate, targets),
                ..
            }) if *rate > 0.0 && targets.contains(to) => rng.random_bool(rate.min(1.0)),
            _ => false,
        };
        Some(Fate {
            unreachable: false,
            delay,
            lost,
        })
    }

    /// Applies the faults to one call to `to`, before it is sent.
    async fn before(&self, to: &PeerUrl) -> Result<(), NetError> {
        let Some(fate) = self.fate(to) else {
            return Ok(());
        };
        if fate.unreachable {
            self.inner.failed.fetch_add(1, Ordering::Relaxed);
            return Err(NetError::Unreachable(Unreachable::NoListener));
        }
        if !fate.delay.is_zero() {
            self.inner.clock.sleep(fate.delay).await;
        }
        if fate.lost {
            self.inner.failed.fetch_add(1, Ordering::Relaxed);
            return Err(NetError::Lost);
        }
        Ok(())
    }
}

/// Checks every value of `update`.
fn check(update: &FaultUpdate) -> Result<(), FaultError> {
    if update.duration.is_zero() || update.duration > MAX_FAULT_DURATION {
        return Err(FaultError::BadDuration(update.duration));
    }
    let listed = |field: &'static str, peers: Option<&Vec<PeerUrl>>| match peers {
        Some(peers) if peers.len() > MAX_FAULT_PEERS => Err(FaultError::TooManyPeers {
            field,
            count: peers.len(),
        }),
        _ => Ok(()),
    };
    listed("unreachable", update.unreachable.as_ref())?;
    if let Some(latency) = &update.latency {
        listed("latency.to", latency.to.as_ref())?;
        for (field, got) in [("mean_ms", latency.mean), ("jitter_ms", latency.jitter)] {
            if got > MAX_LATENCY {
                return Err(FaultError::LatencyTooLong { field, got });
            }
        }
    }
    if let Some(loss) = &update.loss {
        listed("loss.to", loss.to.as_ref())?;
        if !(0.0..=1.0).contains(&loss.rate) {
            return Err(FaultError::BadRate(loss.rate));
        }
    }
    if let Some(skew) = update.skew_ms
        && skew.unsigned_abs() > MAX_SKEW_MS.unsigned_abs()
    {
        return Err(FaultError::SkewTooLarge(skew));
    }
    Ok(())
}

/// A [`Network`] whose calls meet the faults of a [`NetFaults`] before
/// they go to `inner`.
pub struct Faulty {
    inner: Arc<dyn Network>,
    faults: NetFaults,
}

impl std::fmt::Debug for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faulty")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Faulty {
    /// `inner`, switched by `faults`.
    pub fn new(inner: Arc<dyn Network>, faults: NetFaults) -> Self {
        Self { inner, faults }
    }
}

/// A call's future, as [`Network`]'s methods return them.
type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, NetError>> + Send + 'a>>;

/// Each method hands back the inner network's own future when no network
/// fault is set (one relaxed load: no second future, no allocation), and
/// wraps it in the faults otherwise. Written out rather than through
/// `async_trait`, which would box a second future on every call.
impl Network for Faulty {
    fn attach(&self, url: &PeerUrl, node: Weak<dyn Inbox>) {
        self.inner.attach(url, node);
    }

    // Posted gossip skips the faults: with any fault set, it is handed
    // back and pushed through them.
    fn post_block(&self, message: Outgoing, from: &PeerUrl) -> Option<Outgoing> {
        if self.faults.any() {
            return Some(message);
        }
        self.inner.post_block(message, from)
    }

    fn post_tx(&self, to: &PeerUrl, from: &PeerUrl, tx: &Arc<Transaction>) -> bool {
        !self.faults.any() && self.inner.post_tx(to, from, tx)
    }

    fn push_block<'a, 'b, 'c, 'd, 'f>(
        &'a self,
        to: &'b PeerUrl,
        from: &'c PeerUrl,
        payload: &'d Payload,
    ) -> Call<'f, BlockAck>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        'd: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.push_block(to, from, payload);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.push_block(to, from, payload).await
        })
    }

    fn push_tx<'a, 'b, 'c, 'd, 'f>(
        &'a self,
        to: &'b PeerUrl,
        from: &'c PeerUrl,
        tx: &'d Transaction,
    ) -> Call<'f, TxAck>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        'd: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.push_tx(to, from, tx);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.push_tx(to, from, tx).await
        })
    }

    fn status<'a, 'b, 'f>(&'a self, to: &'b PeerUrl) -> Call<'f, Status>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.status(to);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.status(to).await
        })
    }

    fn blocks<'a, 'b, 'f>(
        &'a self,
        to: &'b PeerUrl,
        from: u64,
        limit: usize,
    ) -> Call<'f, Vec<Block>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.blocks(to, from, limit);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.blocks(to, from, limit).await
        })
    }

    fn chain<'a, 'b, 'f>(&'a self, to: &'b PeerUrl) -> Call<'f, Vec<Block>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.chain(to);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.chain(to).await
        })
    }

    fn block<'a, 'b, 'c, 'f>(
        &'a self,
        to: &'b PeerUrl,
        hash: &'c BlockHash,
    ) -> Call<'f, Option<Block>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.block(to, hash);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.block(to, hash).await
        })
    }

    fn peers<'a, 'b, 'f>(&'a self, to: &'b PeerUrl) -> Call<'f, Vec<PeerUrl>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.peers(to);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.peers(to).await
        })
    }

    fn announce<'a, 'b, 'c, 'f>(&'a self, to: &'b PeerUrl, me: &'c PeerUrl) -> Call<'f, ()>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        if !self.faults.any() {
            return self.inner.announce(to, me);
        }
        Box::pin(async move {
            self.faults.before(to).await?;
            self.inner.announce(to, me).await
        })
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::clock::Skew;

    /// A network every call of which succeeds at once, counting calls.
    #[derive(Default)]
    struct Answers(AtomicU64);

    #[async_trait]
    impl Network for Answers {
        // Takes every post (counted), as the in-memory network does.
        fn post_block(&self, _: Outgoing, _: &PeerUrl) -> Option<Outgoing> {
            self.0.fetch_add(1, Ordering::Relaxed);
            None
        }
        fn post_tx(&self, _: &PeerUrl, _: &PeerUrl, _: &Arc<Transaction>) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed);
            true
        }
        async fn push_block(
            &self,
            _: &PeerUrl,
            _: &PeerUrl,
            _: &Payload,
        ) -> Result<BlockAck, NetError> {
            unreachable!("not called")
        }
        async fn push_tx(
            &self,
            _: &PeerUrl,
            _: &PeerUrl,
            _: &Transaction,
        ) -> Result<TxAck, NetError> {
            unreachable!("not called")
        }
        async fn status(&self, _: &PeerUrl) -> Result<Status, NetError> {
            unreachable!("not called")
        }
        async fn blocks(&self, _: &PeerUrl, _: u64, _: usize) -> Result<Vec<Block>, NetError> {
            unreachable!("not called")
        }
        async fn chain(&self, _: &PeerUrl) -> Result<Vec<Block>, NetError> {
            unreachable!("not called")
        }
        async fn block(&self, _: &PeerUrl, _: &BlockHash) -> Result<Option<Block>, NetError> {
            unreachable!("not called")
        }
        async fn peers(&self, _: &PeerUrl) -> Result<Vec<PeerUrl>, NetError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(Vec::new())
        }
        async fn announce(&self, _: &PeerUrl, _: &PeerUrl) -> Result<(), NetError> {
            unreachable!("not called")
        }
    }

    fn url(name: &str) -> PeerUrl {
        format!("mem://{name}").parse().expect("a valid url")
    }

    fn setup(seed: u64) -> (Clock, NetFaults, Faulty, Arc<Answers>, CancellationToken) {
        let clock = Clock::simulated(1_000_000, Skew::default());
        let cancel = CancellationToken::new();
        let faults = NetFaults::new(clock.clone(), seed, cancel.clone(), TaskTracker::new());
        let answers = Arc::new(Answers::default());
        let network = Faulty::new(answers.clone(), faults.clone());
        (clock, faults, network, answers, cancel)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Gossip posted past the faults would skip them: with any fault set,
    /// a post is handed back (and pushed through the faults by the
    /// sender); with none, it goes to the network.
    #[tokio::test(start_paused = true)]
    async fn posts_pass_only_while_no_fault_is_set() {
        let (clock, faults, net, answers, _cancel) = setup(5);
        let params = crate::params::Params::with_difficulty(1);
        let block = params.genesis().block().clone();
        let wallet = crate::wallet::Wallet::from_seed(1);
        let tx = Arc::new(wallet.transfer(&params.chain_id(), wallet.address(), 1, 0, 0));
        let posts = |answers: &Answers| answers.0.load(Ordering::Relaxed);
        assert!(
            net.post_block(Outgoing::block(&url("a"), &block), &url("me"))
                .is_none()
        );
        assert!(net.post_tx(&url("a"), &url("me"), &tx));
        assert_eq!(posts(&answers), 2, "both went to the network");
        faults
            .apply(FaultUpdate {
                loss: Some(Loss {
                    rate: 1.0,
                    to: None,
                }),
                duration: secs(10),
                ..FaultUpdate::default()
            })
            .expect("valid");
        assert!(
            net.post_block(Outgoing::block(&url("a"), &block), &url("me"))
                .is_some()
        );
        assert!(!net.post_tx(&url("a"), &url("me"), &tx));
        assert_eq!(posts(&answers), 2, "a post went past the faults");
        // Once its time is up (the next call drops it), posts pass again.
        clock.sleep(secs(10)).await;
        assert_eq!(net.peers(&url("b")).await, Ok(Vec::new()));
        assert!(
            net.post_block(Outgoing::block(&url("a"), &block), &url("me"))
                .is_none()
        );
        assert_eq!(posts(&answers), 4, "the fault ended: a call and a post");
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_peers_fail_at_once_until_the_fault_ends() {
        let (clock, faults, net, answers, cancel) = setup(1);
        faults
            .apply(FaultUpdate {
                unreachable: Some(vec![url("a")]),
                duration: secs(10),
                ..FaultUpdate::default()
            })
            .expect("valid");
        let start = clock.now();
        assert_eq!(
            net.peers(&url("a")).await,
            Err(NetError::Unreachable(Unreachable::NoListener))
        );
        assert_eq!(clock.now(), start, "fails at once");
        assert_eq!(net.peers(&url("b")).await, Ok(Vec::new()));
        assert_eq!(
            answers.0.load(Ordering::Relaxed),
            1,
            "only b's call went out"
        );
        assert_eq!(faults.failed_calls(), 1);
        let current = faults.current();
        assert_eq!(current.count(), 1);
        assert_eq!(current.unreachable.expect("set").left, secs(10));
        clock.sleep(secs(10)).await;
        assert_eq!(net.peers(&url("a")).await, Ok(Vec::new()));
        assert_eq!(faults.current().count(), 0);
        // An empty list clears the fault before its time.
        for list in [vec![url("a")], vec![]] {
            faults
                .apply(FaultUpdate {
                    unreachable: Some(list),
                    duration: secs(10),
                    ..FaultUpdate::default()
                })
                .expect("valid");
        }
        assert_eq!(net.peers(&url("a")).await, Ok(Vec::new()));
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_calls_to_the_listed_peers_only() {
        let (clock, faults, net, _, cancel) = setup(2);
        faults
            .apply(FaultUpdate {
                latency: Some(Latency {
                    mean: Duration::from_millis(200),
                    jitter: Duration::from_millis(50),
                    to: Some(vec![url("far")]),
                }),
                duration: secs(60),
                ..FaultUpdate::default()
            })
            .expect("valid");
        let mut waits = Vec::new();
        for _ in 0..50 {
            let start = clock.now();
            net.peers(&url("far")).await.expect("delivered");
            waits.push(clock.now() - start);
            let start = clock.now();
            net.peers(&url("near")).await.expect("delivered");
            assert_eq!(clock.now(), start, "a peer not listed waits nothing");
        }
        assert!(
            waits
                .iter()
                .all(|w| (Duration::from_millis(150)..=Duration::from_millis(250)).contains(w)),
            "{waits:?}"
        );
        assert!(waits.iter().any(|w| *w != waits[0]), "jitter varies waits");
        // Without `to`, every peer waits; jitter above the mean never
        // makes a negative wait.
        faults
            .apply(FaultUpdate {
                latency: Some(Latency {
                    mean: Duration::from_millis(10),
                    jitter: Duration::from_millis(40),
                    to: None,
                }),
                duration: secs(60),
                ..FaultUpdate::default()
            })
            .expect("valid");
        for _ in 0..20 {
            let start = clock.now();
            net.peers(&url("near")).await.expect("delivered");
            assert!(clock.now() - start <= Duration::from_millis(50));
        }
        cancel.cancel();
    }

    /// The outcomes of 400 calls under 30 % loss from `seed`.
    async fn losses(seed: u64) -> Vec<bool> {
        let (_, faults, net, _, cancel) = setup(seed);
        faults
            .apply(FaultUpdate {
                loss: Some(Loss {
                    rate: 0.3,
                    to: None,
                }),
                duration: secs(60),
                ..FaultUpdate::default()
            })
            .expect("valid");
        let mut lost = Vec::new();
        for _ in 0..400 {
            match net.peers(&url("a")).await {
                Ok(_) => lost.push(false),
                Err(NetError::Lost) => lost.push(true),
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(
            faults.failed_calls(),
            lost.iter().filter(|l| **l).count() as u64
        );
        cancel.cancel();
        lost
    }

    #[tokio::test(start_paused = true)]
    async fn loss_draws_follow_the_seed() {
        let first = losses(7).await;
        let count = first.iter().filter(|l| **l).count();
        assert!((80..=160).contains(&count), "{count} of 400 lost at 30 %");
        assert_eq!(first, losses(7).await, "same seed, same losses");
        assert_ne!(first, losses(8).await, "another seed, other losses");
    }

    #[tokio::test(start_paused = true)]
    async fn skew_moves_the_clock_and_ends_by_itself() {
        let (clock, faults, _, _, cancel) = setup(3);
        let before = clock.now_ms();
        faults
            .apply(FaultUpdate {
                skew_ms: Some(-90_000),
                loss: Some(Loss {
                    rate: 1.0,
                    to: None,
                }),
                duration: secs(5),
                ..FaultUpdate::default()
            })
            .expect("valid");
        assert_eq!(clock.now_ms(), before - 90_000);
        assert_eq!(faults.current().count(), 2);
        // Nothing calls: the node's own timer ends the faults.
        clock.sleep(Duration::from_millis(5_001)).await;
        assert_eq!(clock.skew().get(), 0);
        assert_eq!(clock.now_ms(), before + 5_001);
        assert_eq!(faults.current(), Current::default());
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn clear_ends_every_fault() {
        let (clock, faults, net, _, cancel) = setup(4);
        faults
            .apply(FaultUpdate {
                unreachable: Some(vec![url("a")]),
                skew_ms: Some(1_000),
                duration: secs(100),
                ..FaultUpdate::default()
            })
            .expect("valid");
        faults.clear();
        assert_eq!(clock.skew().get(), 0);
        assert_eq!(faults.current().count(), 0);
        assert_eq!(net.peers(&url("a")).await, Ok(Vec::new()));
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn out_of_range_values_set_nothing() {
        let (clock, faults, _, _, cancel) = setup(5);
        let many: Vec<PeerUrl> = (0..=MAX_FAULT_PEERS)
            .map(|i| url(&format!("n{i}")))
            .collect();
        let ok = || FaultUpdate {
            skew_ms: Some(5),
            duration: secs(1),
            ..FaultUpdate::default()
        };
        let bad = [
            FaultUpdate {
                duration: Duration::ZERO,
                ..ok()
            },
            FaultUpdate {
                unreachable: Some(many.clone()),
                ..ok()
            },
            FaultUpdate {
                loss: Some(Loss {
                    rate: 1.5,
                    to: None,
                }),
                ..ok()
            },
            FaultUpdate {
                loss: Some(Loss {
                    rate: f64::NAN,
                    to: None,
                }),
                ..ok()
            },
            FaultUpdate {
                loss: Some(Loss {
                    rate: 0.5,
                    to: Some(many.clone()),
                }),
                ..ok()
            },
            FaultUpdate {
                latency: Some(Latency {
                    mean: MAX_LATENCY + Duration::from_millis(1),
                    jitter: Duration::ZERO,
                    to: None,
                }),
                ..ok()
            },
            FaultUpdate {
                skew_ms: Some(MAX_SKEW_MS + 1),
                ..ok()
            },
            FaultUpdate {
                skew_ms: Some(i64::MIN),
                ..ok()
            },
        ];
        for update in bad {
            assert!(faults.apply(update.clone()).is_err(), "{update:?}");
            assert_eq!(faults.current().count(), 0, "{update:?} set something");
            assert_eq!(clock.skew().get(), 0);
        }
        faults.apply(ok()).expect("valid");
        assert_eq!(clock.skew().get(), 5);
        cancel.cancel();
    }
}
