//! A seeded random mix: every decision is delegated to one of several inner
//! behaviours, picked at random.
//!
//! **Attacks** whatever its inner behaviours attack, in an unpredictable
//! mix: a block may be published by the equivocator's rule, the next
//! relayed by the garbler's, the status served by the chain liar's. It is
//! what the launcher gives misbehaving nodes by default.
//!
//! **An honest node must** survive every inner behaviour at once, which it
//! does if it survives each alone.
//!
//! Each kind of decision ([`Decision`]) draws from its own random stream
//! derived from the seed, so the n-th decision of a kind picks the same
//! inner behaviour in every run with that seed, whatever the timing of the
//! others. [`Behaviour::history`] records the picks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crapcoin_core::behaviour::{Action, AutoAction};
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Block, BlockHeader, Context, PeerUrl, Status};
use rand::{Rng as _, RngCore};

use crate::util::{Rng, derive_seed, lock};

/// Picks remembered by [`Behaviour::history`].
pub const HISTORY: usize = 4096;

/// A decision point of [`crapcoin_core::Behaviour`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// [`crapcoin_core::Behaviour::block_timestamp`].
    BlockTimestamp,
    /// [`crapcoin_core::Behaviour::publish`].
    Publish,
    /// [`crapcoin_core::Behaviour::incoming`].
    Incoming,
    /// [`crapcoin_core::Behaviour::relay`].
    Relay,
    /// [`crapcoin_core::Behaviour::serve_status`].
    ServeStatus,
    /// [`crapcoin_core::Behaviour::serve_blocks`].
    ServeBlocks,
    /// [`crapcoin_core::Behaviour::serve_peers`].
    ServePeers,
    /// [`crapcoin_core::Behaviour::serve_delay`].
    ServeDelay,
    /// [`crapcoin_core::Behaviour::next_auto`].
    NextAuto,
    /// [`crapcoin_core::Behaviour::tick`].
    Tick,
}

impl Decision {
    /// Every decision, in trait order.
    pub const ALL: [Self; 10] = [
        Self::BlockTimestamp,
        Self::Publish,
        Self::Incoming,
        Self::Relay,
        Self::ServeStatus,
        Self::ServeBlocks,
        Self::ServePeers,
        Self::ServeDelay,
        Self::NextAuto,
        Self::Tick,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One pick: which inner behaviour made a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The decision.
    pub decision: Decision,
    /// The inner behaviour's name.
    pub behaviour: String,
}

/// The random mix. See the [module docs](self).
pub struct Behaviour {
    inner: Vec<Arc<dyn crapcoin_core::Behaviour>>,
    names: Vec<String>,
    /// One stream per [`Decision`], so kinds do not disturb each other.
    streams: Vec<Rng>,
    tick_interval: Option<Duration>,
    history: Mutex<VecDeque<(Decision, usize)>>,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour")
            .field("inner", &self.names)
            .finish_non_exhaustive()
    }
}

impl Behaviour {
    /// A mix of `inner` (honest alone when empty), picking with `seed`. It
    /// ticks as often as its most frequent inner ticker.
    pub fn new(seed: u64, inner: Vec<Arc<dyn crapcoin_core::Behaviour>>) -> Self {
        let inner = if inner.is_empty() {
            vec![Arc::new(crapcoin_core::behaviour::Honest) as Arc<dyn crapcoin_core::Behaviour>]
        } else {
            inner
        };
        let names = inner.iter().map(|b| b.name()).collect();
        let tick_interval = inner.iter().filter_map(|b| b.tick_interval()).min();
        let streams = Decision::ALL
            .iter()
            .map(|d| Rng::seeded(derive_seed(seed, 0x5EED_0000 + d.index() as u64)))
            .collect();
        Self {
            inner,
            names,
            streams,
            tick_interval,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// The inner behaviours' names, in pick order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The last [`HISTORY`] picks, oldest first.
    pub fn history(&self) -> Vec<Pick> {
        lock(&self.history)
            .iter()
            .map(|(decision, i)| Pick {
                decision: *decision,
                behaviour: self.names[*i].clone(),
            })
            .collect()
    }

    fn pick(&self, decision: Decision) -> &dyn crapcoin_core::Behaviour {
        let i = self.streams[decision.index()]
            .get()
            .random_range(0..self.inner.len());
        let mut history = lock(&self.history);
        if history.len() >= HISTORY {
            history.pop_front();
        }
        history.push_back((decision, i));
        &*self.inner[i]
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "random".to_owned()
    }

    fn block_timestamp(&self, ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
        self.pick(Decision::BlockTimestamp)
            .block_timestamp(ctx, parent, now_ms)
    }

    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.pick(Decision::Publish).publish(ctx, block, peers)
    }

    fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        self.pick(Decision::Incoming).incoming(ctx, block, from)
    }

    fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.pick(Decision::Relay).relay(ctx, block, peers)
    }

    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        self.pick(Decision::ServeStatus).serve_status(ctx, honest)
    }

    fn serve_blocks(&self, ctx: &Context<'_>, from: u64, honest: Vec<Block>) -> Vec<Block> {
        self.pick(Decision::ServeBlocks)
            .serve_blocks(ctx, from, honest)
    }

    fn serve_peers(&self, ctx: &Context<'_>, honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
        self.pick(Decision::ServePeers).serve_peers(ctx, honest)
    }

    fn serve_delay(&self, ctx: &Context<'_>) -> Duration {
        self.pick(Decision::ServeDelay).serve_delay(ctx)
    }

    fn next_auto(&self, ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
        self.pick(Decision::NextAuto).next_auto(ctx, rng)
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.tick_interval
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        self.pick(Decision::Tick).tick(ctx)
    }
}
