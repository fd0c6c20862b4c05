//! The double spender: pays the same coins to two recipients at once.
//!
//! **Attacks** the ledger. Once it has coins it signs two transfers of its
//! whole balance with the same nonce, one to a victim (any other account)
//! and one to an accomplice, mines a block around each on the same tip and
//! sends one block to half of its peers and the other block to the other
//! half, so each half sees a different spend first. Once one spend has
//! landed it pushes both transfers again on top of the chain for a few
//! ticks, hoping a node forgets that their nonce is used.
//!
//! **An honest node must** accept both blocks only as competing branches,
//! converge with the others on one of them by fork choice (most work, first
//! seen on a tie), drop the losing spend for good (its nonce is used), and
//! refuse the later re-sends with `bad_nonce`.

use std::sync::Mutex;
use std::time::Duration;

use crapcoin_core::behaviour::{Action, AutoAction};
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Address, Context, Transaction, Wallet};
use rand::RngCore;
use rand::seq::{IndexedRandom, SliceRandom};

use crate::util::{Rng, derive_seed, lock};

/// Ticks a raced pair may wait for one spend to land before it is given up.
const MAX_WAIT_TICKS: u32 = 20;

/// Ticks the spent pair is pushed again on top once one spend has landed.
const MAX_RESENDS: u32 = 5;

#[derive(Debug)]
struct Race {
    /// The spends, both with this nonce.
    spends: [Transaction; 2],
    nonce: u64,
    waited: u32,
    resent: u32,
}

/// The double spender. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
    interval: Duration,
    accomplice: Address,
    race: Mutex<Option<Race>>,
}

impl Behaviour {
    /// A double spender acting every `interval`; its accomplice's address
    /// follows from `seed`.
    pub fn new(seed: u64, interval: Duration) -> Self {
        Self {
            rng: Rng::seeded(seed),
            interval,
            accomplice: Wallet::from_seed(derive_seed(seed, 0xACC0)).address(),
            race: Mutex::new(None),
        }
    }

    /// Where the second spend goes.
    pub fn accomplice(&self) -> Address {
        self.accomplice
    }

    fn start_race(&self, ctx: &Context<'_>) -> Vec<Action> {
        let me = ctx.address();
        let account = ctx.account(&me);
        let fee = ctx.fee();
        if account.balance < fee.saturating_add(2) {
            return Vec::new();
        }
        let mut peers = ctx.peers();
        if peers.len() < 2 {
            return Vec::new();
        }
        let mut rng = self.rng.get();
        let victims: Vec<Address> = ctx
            .known_addresses()
            .into_iter()
            .filter(|a| *a != me && *a != self.accomplice)
            .collect();
        let Some(victim) = victims.choose(&mut *rng).copied() else {
            return Vec::new();
        };
        let amount = account.balance - fee;
        let spends = [
            ctx.sign_transfer(victim, amount, fee, account.nonce),
            ctx.sign_transfer(self.accomplice, amount, fee, account.nonce),
        ];
        let blocks = [
            ctx.forge().tx(spends[0].clone()).mine(),
            ctx.forge().tx(spends[1].clone()).mine(),
        ];
        peers.shuffle(&mut *rng);
        let half = peers.len() / 2;
        let actions = peers
            .iter()
            .enumerate()
            .map(|(i, peer)| {
                let block = &blocks[usize::from(i >= half)];
                Action::Send(Outgoing::block(peer, block))
            })
            .collect();
        *lock(&self.race) = Some(Race {
            spends,
            nonce: account.nonce,
            waited: 0,
            resent: 0,
        });
        actions
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "double_spender".to_owned()
    }

    /// Always mines: it earns coins to double-spend and never makes an
    /// honest transfer that could take the nonce it races for.
    fn next_auto(&self, _ctx: &Context<'_>, _rng: &mut dyn RngCore) -> Option<AutoAction> {
        Some(AutoAction::Mine)
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let race = lock(&self.race).take();
        let Some(mut race) = race else {
            return self.start_race(ctx);
        };
        race.waited += 1;
        if ctx.account(&ctx.address()).nonce > race.nonce {
            // One spend landed: try both again on top, as if the nonce
            // were still free, for a few ticks (a node ahead of us only
            // keeps them as side blocks unless the fork is shallow enough to
            // check; one at our height must refuse them).
            let actions = race
                .spends
                .iter()
                .map(|tx| {
                    Action::Broadcast(crapcoin_core::network::Payload::Block(
                        ctx.forge().tx(tx.clone()).mine(),
                    ))
                })
                .collect();
            race.resent += 1;
            if race.resent < MAX_RESENDS {
                *lock(&self.race) = Some(race);
            }
            return actions;
        }
        if race.waited < MAX_WAIT_TICKS {
            *lock(&self.race) = Some(race);
        }
        Vec::new()
    }
}
