//! The flooder: bursts of blocks nobody needs.
//!
//! **Attacks** resources. Every tick it sends each peer a burst of blocks,
//! cycling through three kinds that each cost the receiver something
//! different: junk with short proof of work (a hash to refuse), orphans with
//! valid work on parents that do not exist (a slot in the orphan pool and a
//! sync attempt), and copies of the current tip (a lookup).
//!
//! **An honest node must** refuse junk after one hash, keep orphans in a
//! bounded pool that evicts the oldest, answer duplicates without work,
//! bound its outgoing queues, and strike the flooder for the junk until it
//! is dropped and banned, all while still mining, relaying and converging
//! at its usual pace.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crapcoin_core::behaviour::Action;
use crapcoin_core::network::Payload;
use crapcoin_core::{Block, BlockHash, Context};
use rand::Rng as _;

use crate::util::Rng;

/// Most blocks in one burst.
pub const MAX_BURST: usize = 256;

/// What one flood message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flood {
    /// An empty block on the tip with short proof of work.
    Junk,
    /// A block with valid work whose parent does not exist.
    Orphan,
    /// The current tip again.
    Duplicate,
}

impl Flood {
    /// The kinds, in the order a burst cycles through them.
    pub const ALL: [Self; 3] = [Self::Junk, Self::Orphan, Self::Duplicate];
}

/// The flooder. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
    interval: Duration,
    burst: usize,
    next: AtomicUsize,
}

impl Behaviour {
    /// A flooder sending `burst` (at most [`MAX_BURST`]) blocks to every
    /// peer each `interval`.
    pub fn new(seed: u64, interval: Duration, burst: usize) -> Self {
        Self {
            rng: Rng::seeded(seed),
            interval,
            burst: burst.min(MAX_BURST),
            next: AtomicUsize::new(0),
        }
    }

    fn one(&self, ctx: &Context<'_>, kind: Flood) -> Block {
        match kind {
            Flood::Junk => ctx.forge().bad_pow(),
            Flood::Orphan => {
                let parent = BlockHash(self.rng.get().random());
                ctx.forge()
                    .prev_hash(parent)
                    .height(ctx.height().saturating_add(5))
                    .mine()
            }
            Flood::Duplicate => ctx.tip().block().clone(),
        }
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "flooder".to_owned()
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        (0..self.burst)
            .map(|_| {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                let kind = Flood::ALL[i % Flood::ALL.len()];
                Action::Broadcast(Payload::Block(self.one(ctx, kind)))
            })
            .collect()
    }
}
