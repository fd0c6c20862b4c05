//! The chain liar: claims a longer chain than it has and serves a fake one.
//!
//! **Attacks** sync. Its status claims [`Behaviour::new`]'s `extra` blocks
//! more than its true height, so peers see it ahead and sync from it; the
//! chain and pages it serves are its true chain plus a fake extension with
//! valid proof of work. The extension alternates between two lies: its
//! first block pays the liar a fortune it does not have
//! ([`Lie::Overspend`]), or every fake block has short proof of work
//! ([`Lie::BadPow`]).
//!
//! **An honest node must** validate synced blocks exactly like pushed ones
//! (work and signatures in the batch check, balances when connecting), take
//! a segment all or nothing, keep its own chain when the fake one fails,
//! and strike the liar until it is dropped and banned, after which its
//! claims are no longer asked for.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crapcoin_core::block::Block;
use crapcoin_core::{BlockHash, Context, Forge, Status};

use crate::util::lock;

/// What the fake extension gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lie {
    /// Valid work; the first block carries an overspend.
    Overspend,
    /// Every fake block misses the difficulty.
    BadPow,
}

/// The chain liar. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    extra: u64,
    next_lie: AtomicUsize,
    /// The fake extension of the current tip, built once per tip so that
    /// status, chain and pages tell the same lie.
    fake: Mutex<Option<(BlockHash, Vec<Block>)>>,
}

impl Behaviour {
    /// A liar claiming `extra` (at least 1) blocks more than it has.
    pub fn new(extra: u64) -> Self {
        Self {
            extra: extra.max(1),
            next_lie: AtomicUsize::new(0),
            fake: Mutex::new(None),
        }
    }

    /// The fake blocks above the current tip (cached per tip).
    fn fake_extension(&self, ctx: &Context<'_>) -> Vec<Block> {
        let tip = ctx.tip();
        let mut cached = lock(&self.fake);
        if let Some((hash, blocks)) = &*cached
            && *hash == tip.hash()
        {
            return blocks.clone();
        }
        let lie = if self.next_lie.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
            Lie::Overspend
        } else {
            Lie::BadPow
        };
        let me = ctx.address();
        let mut blocks: Vec<Block> = Vec::new();
        let mut parent = tip.header.clone();
        for i in 0..self.extra {
            // The parent's timestamp keeps the lie deterministic per tip.
            let mut forge = Forge::new(ctx.params(), &parent)
                .miner(me)
                .timestamp(parent.timestamp);
            if i == 0 && lie == Lie::Overspend {
                let account = ctx.account(&me);
                let fortune = account.balance.saturating_add(1_000_000);
                forge = forge.tx(ctx.sign_transfer(me, fortune, ctx.fee(), account.nonce));
            }
            let block = match lie {
                Lie::Overspend => forge.mine(),
                Lie::BadPow => forge.bad_pow(),
            };
            parent = block.header.clone();
            blocks.push(block);
        }
        *cached = Some((tip.hash(), blocks.clone()));
        blocks
    }
}

impl Default for Behaviour {
    /// Claims three blocks more than it has.
    fn default() -> Self {
        Self::new(3)
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "chain_liar".to_owned()
    }

    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        let fake = self.fake_extension(ctx);
        let Some(top) = fake.last() else {
            return honest;
        };
        Status {
            height: top.header.height,
            tip: top.hash(),
            ..honest
        }
    }

    fn serve_blocks(&self, ctx: &Context<'_>, from: u64, mut honest: Vec<Block>) -> Vec<Block> {
        let height = ctx.height();
        let reaches_tip = honest.last().is_some_and(|b| b.header.height == height);
        if honest.is_empty() || reaches_tip {
            honest.extend(
                self.fake_extension(ctx)
                    .into_iter()
                    .filter(|b| b.header.height >= from),
            );
        }
        honest
    }
}
