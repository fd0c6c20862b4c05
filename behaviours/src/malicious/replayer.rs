//! The replayer: sends transfers that are already on the chain again.
//!
//! **Attacks** transactions. Every tick it picks a transfer from a recent
//! block of the best chain (anyone's: the signature is valid, it was signed
//! by its sender), puts it in a new block with valid proof of work on the
//! tip, and sends that to every peer: if a node accepted it, the sender
//! would pay twice.
//!
//! **An honest node must** refuse it with `bad_nonce`: a transfer is valid
//! only with its sender's next nonce, so each signature is good exactly
//! once. It strikes the replayer until it is dropped and banned.

use std::time::Duration;

use crapcoin_core::behaviour::Action;
use crapcoin_core::network::Payload;
use crapcoin_core::{Context, Transaction};
use rand::seq::IndexedRandom;

use crate::util::Rng;

/// Blocks below the tip searched for a transfer to replay.
const LOOK_BACK: u64 = 64;

/// The replayer. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
    interval: Duration,
}

impl Behaviour {
    /// A replayer sending one replayed transfer each `interval`.
    pub fn new(seed: u64, interval: Duration) -> Self {
        Self {
            rng: Rng::seeded(seed),
            interval,
        }
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "replayer".to_owned()
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let height = ctx.height();
        let seen: Vec<Transaction> = (height.saturating_sub(LOOK_BACK)..=height)
            .filter_map(|h| ctx.block_at(h))
            .filter_map(|b| b.tx.clone())
            .collect();
        let Some(tx) = seen.choose(&mut *self.rng.get()).cloned() else {
            return Vec::new();
        };
        let block = ctx.forge().tx(tx).mine();
        vec![Action::Broadcast(Payload::Block(block))]
    }
}
