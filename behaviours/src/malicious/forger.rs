//! The forger: pushes blocks that each break one rule a lazy validator
//! might skip.
//!
//! **Attacks** block validation. In turn it sends a block whose proof of
//! work is short ([`Forgery::BadPow`]), a block with valid work carrying a
//! transfer out of someone else's account signed with the forger's own key
//! ([`Forgery::BadSignature`]), and a block with valid work carrying a
//! correctly signed transfer of more than the forger owns
//! ([`Forgery::Overspend`]).
//!
//! **An honest node must** check proof of work, the signature and the
//! sender's balance of every block whoever sent it, refuse these with
//! `bad_pow`, `bad_signature` and `overspend`, never build on them, and
//! strike the forger until it is dropped and banned.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crapcoin_core::behaviour::Action;
use crapcoin_core::network::Payload;
use crapcoin_core::{Address, Block, Context};

use crate::util::Rng;

/// One way of forging a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Forgery {
    /// An empty block whose hash misses the difficulty.
    BadPow,
    /// Valid work over a transfer from another account, signed by the forger.
    BadSignature,
    /// Valid work over a signed transfer of more than the forger's balance.
    Overspend,
}

impl Forgery {
    /// Every forgery, in the order the forger cycles through them.
    pub const ALL: [Self; 3] = [Self::BadPow, Self::BadSignature, Self::Overspend];
}

/// Forges one block of the given kind on the node's best tip.
pub fn forge(ctx: &Context<'_>, kind: Forgery, rng: &mut impl rand::Rng) -> Block {
    let me = ctx.address();
    match kind {
        Forgery::BadPow => ctx.forge().bad_pow(),
        Forgery::BadSignature => {
            let others: Vec<Address> = ctx
                .known_addresses()
                .into_iter()
                .filter(|a| *a != me)
                .collect();
            // Nobody else has coins yet: steal from a made-up account; the
            // signature is just as wrong.
            let victim = if others.is_empty() {
                Address([0xEE; 32])
            } else {
                others[rng.random_range(0..others.len())]
            };
            let account = ctx.account(&victim);
            let mut tx = ctx.sign_transfer(me, account.balance.max(1), ctx.fee(), account.nonce);
            tx.from = victim;
            ctx.forge().tx(tx).mine()
        }
        Forgery::Overspend => {
            let account = ctx.account(&me);
            let amount = account.balance.saturating_add(1_000_000);
            let tx = ctx.sign_transfer(me, amount, ctx.fee(), account.nonce);
            ctx.forge().tx(tx).mine()
        }
    }
}

/// The forger. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
    interval: Duration,
    next: AtomicUsize,
}

impl Behaviour {
    /// A forger sending one forged block to every peer each `interval`.
    pub fn new(seed: u64, interval: Duration) -> Self {
        Self {
            rng: Rng::seeded(seed),
            interval,
            next: AtomicUsize::new(0),
        }
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "forger".to_owned()
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let kind = Forgery::ALL[i % Forgery::ALL.len()];
        let block = forge(ctx, kind, &mut *self.rng.get());
        vec![Action::Broadcast(Payload::Block(block))]
    }
}
