//! The double spender: pays a victim in public, then replaces the
//! confirmed payment with a private branch that spends the same coins to
//! its accomplice. The classic majority attack, with the hash power its
//! node owns.
//!
//! **Attacks** the ledger (and whoever accepts a payment after k
//! confirmations). Run it with `Mining::Scheduled` and its share β; it
//! forges nothing on its own. Once it has coins (and a peer's block sits
//! on top of the last block it published, so its peers hold its coins
//! too), at tip F it signs two transfers of its whole balance
//! with one nonce: the payment to a victim (any other account), sent to
//! every peer without keeping it, and the conflicting spend to its
//! accomplice, taken into its own mempool and relayed to nobody. From then
//! on it ignores every block peers push (it only reads their headers: the
//! public height, and where the payment landed), so its engine mines on
//! its own branch from F — the conflicting spend in its first block —
//! and it withholds every block it finds (its status and served chain
//! leave them out). It releases the whole branch once the payment has `k`
//! confirmations on the public chain and its branch is longer: every
//! honest node reorgs onto it, and the payment's nonce is used by the
//! conflicting spend, so the payment is gone for good. It gives up when
//! the public chain is [`Behaviour::give_up_behind`] blocks ahead (the
//! branch is dropped, never shown), and when the payment is still not
//! confirmed after [`Behaviour::patience`] ticks (then it releases if it is
//! ahead: the unconfirmed payment is replaced all the same).
//!
//! With β > 1/2 it catches up from any deficit sooner or later: a payment
//! confirmed by k blocks is reverted. With a small β its chance to catch
//! up from z blocks behind is about (β / (1 − β))^z: practically never.
//! Every attempt ends in an [`Outcome`], logged and kept
//! ([`Behaviour::outcomes`]).
//!
//! A limit of the sandbox: its engine's peer maintenance syncs from a peer
//! reporting a longer chain; if a round falls while the public chain is
//! ahead, its engine adopts it and the attempt ends as given up.
//!
//! **An honest node must** follow the branch with the most work even when
//! it replaces confirmed blocks (that is the attack: nothing in the
//! protocol can tell), keep exactly one of the two spends (fork choice
//! picks the branch, the nonce rule drops the other for good), and put
//! the other transfers of the replaced blocks back into its mempool.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use crapcoin_core::behaviour::{Action, AutoAction, honest};
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Address, Block, Context, PeerUrl, Status, Transaction, TxId, Wallet};
use rand::RngCore;
use rand::seq::IndexedRandom;

use crate::util::{Rng, derive_seed, lock};

/// Outcomes kept at most (the oldest go first).
const MAX_OUTCOMES: usize = 64;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The payment to the victim.
    pub payment: TxId,
    /// Whether a payment confirmed by at least `k` blocks was replaced by
    /// the released branch.
    pub reverted: bool,
    /// Whether the private branch was released (also when the payment
    /// was never confirmed).
    pub released: bool,
    /// The payment's confirmations on the public chain at the end (0: it
    /// never landed).
    pub confirmations: u64,
    /// Public blocks the released branch replaced (0 when given up).
    pub depth: u64,
    /// Blocks of the private branch.
    pub private_blocks: u64,
}

#[derive(Debug)]
struct Attack {
    fork_height: u64,
    pay: TxId,
    steal: TxId,
    /// Highest public block height seen since the attack began.
    public_height: u64,
    /// Height of the public block holding the payment, if seen.
    pay_height: Option<u64>,
    /// Its own withheld blocks, lowest first.
    private: Vec<Block>,
    ticks: u32,
}

#[derive(Debug, Default)]
struct State {
    attack: Option<Attack>,
    /// Blocks of a given-up branch, still hidden until displaced.
    abandoned: Vec<Block>,
    /// Height of its last published block (its coins mature k on).
    last_published: u64,
    outcomes: VecDeque<Outcome>,
}

/// The double spender. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
    interval: Duration,
    accomplice: Address,
    confirmations: u64,
    give_up_behind: u64,
    patience: u32,
    state: Mutex<State>,
}

impl Behaviour {
    /// A double spender that checks its race every `interval`, waiting
    /// for 3 confirmations, giving up 6 blocks behind or after 20 ticks
    /// without a confirmed payment; its accomplice's address follows from
    /// `seed`.
    pub fn new(seed: u64, interval: Duration) -> Self {
        Self {
            rng: Rng::seeded(seed),
            interval,
            accomplice: Wallet::from_seed(derive_seed(seed, 0xACC0)).address(),
            confirmations: 3,
            give_up_behind: 6,
            patience: 20,
            state: Mutex::new(State::default()),
        }
    }

    /// Releases only once the payment has `k` (at least 1) confirmations.
    #[must_use]
    pub fn confirmations(mut self, k: u64) -> Self {
        self.confirmations = k.max(1);
        self
    }

    /// Gives up when the public chain is `blocks` (at least 1) ahead.
    #[must_use]
    pub fn give_up_behind(mut self, blocks: u64) -> Self {
        self.give_up_behind = blocks.max(1);
        self
    }

    /// Stops waiting for the payment's confirmations after `ticks`.
    #[must_use]
    pub fn patience(mut self, ticks: u32) -> Self {
        self.patience = ticks.max(1);
        self
    }

    /// Where the conflicting spend goes.
    pub fn accomplice(&self) -> Address {
        self.accomplice
    }

    /// How the attempts so far ended, oldest first (the last 64).
    pub fn outcomes(&self) -> Vec<Outcome> {
        lock(&self.state).outcomes.iter().cloned().collect()
    }

    /// Starts an attempt at the current tip, if it has coins, a block
    /// on top of its last published one (its peers hold those coins: a
    /// deeper wait starves a majority miner, which finds most blocks
    /// itself) and a victim.
    fn arm(&self, ctx: &Context<'_>, state: &mut State) -> Vec<Action> {
        let me = ctx.address();
        let account = ctx.account(&me);
        let fee = ctx.fee();
        let tip = ctx.height();
        if account.balance < fee.saturating_add(2)
            || tip <= state.last_published
            || ctx.peers().is_empty()
        {
            return Vec::new();
        }
        let victims: Vec<Address> = ctx
            .known_addresses()
            .into_iter()
            .filter(|a| *a != me && *a != self.accomplice)
            .collect();
        let Some(victim) = victims.choose(&mut *self.rng.get()).copied() else {
            return Vec::new();
        };
        let amount = account.balance - fee;
        let pay = ctx.sign_transfer(victim, amount, fee, account.nonce);
        let steal = ctx.sign_transfer(self.accomplice, amount, fee, account.nonce);
        tracing::info!(
            node = ctx.name(),
            fork = tip,
            amount,
            payment = %pay.id().short(),
            "double spender: pays a victim, mines the conflicting spend in private"
        );
        state.attack = Some(Attack {
            fork_height: tip,
            pay: pay.id(),
            steal: steal.id(),
            public_height: tip,
            pay_height: None,
            private: Vec::new(),
            ticks: 0,
        });
        vec![Action::Submit(steal), Action::BroadcastTx(pay)]
    }

    /// Ends the attempt: releases the branch (to every peer, lowest block
    /// first) or drops it, and records the outcome.
    fn finish(&self, ctx: &Context<'_>, state: &mut State, release: bool) -> Vec<Block> {
        let Some(attack) = state.attack.take() else {
            return Vec::new();
        };
        let confirmations = attack
            .pay_height
            .map_or(0, |h| attack.public_height.saturating_sub(h) + 1);
        let outcome = Outcome {
            payment: attack.pay,
            reverted: release && confirmations >= self.confirmations,
            released: release,
            confirmations,
            depth: if release {
                attack.public_height.saturating_sub(attack.fork_height)
            } else {
                0
            },
            private_blocks: attack.private.len() as u64,
        };
        if release {
            tracing::warn!(
                node = ctx.name(),
                reverted = outcome.reverted,
                confirmations,
                depth = outcome.depth,
                private = outcome.private_blocks,
                "double spender: releases its branch; payment reverted: {}",
                if outcome.reverted { "yes" } else { "no" }
            );
        } else {
            tracing::info!(
                node = ctx.name(),
                confirmations,
                behind = attack
                    .public_height
                    .saturating_sub(attack.fork_height + attack.private.len() as u64),
                "double spender: gives up; payment reverted: no"
            );
        }
        if state.outcomes.len() >= MAX_OUTCOMES {
            state.outcomes.pop_front();
        }
        state.outcomes.push_back(outcome);
        if release {
            attack.private
        } else {
            state.abandoned = attack.private;
            Vec::new()
        }
    }

    /// What to do about the race now: release, give up, or wait.
    fn decide(&self, ctx: &Context<'_>, state: &mut State) -> Vec<Block> {
        let Some(attack) = &state.attack else {
            return Vec::new();
        };
        // The engine left the branch (a sync): the attempt is over.
        let displaced = attack.private.iter().any(|b| {
            ctx.block_at(b.header.height)
                .is_none_or(|on| on.hash() != b.hash())
        });
        let private_height = attack.fork_height + attack.private.len() as u64;
        let confirmations = attack
            .pay_height
            .map_or(0, |h| attack.public_height.saturating_sub(h) + 1);
        let ahead = private_height > attack.public_height && !attack.private.is_empty();
        if displaced {
            return self.finish(ctx, state, false);
        }
        if ahead && confirmations >= self.confirmations {
            return self.finish(ctx, state, true);
        }
        if attack.public_height >= private_height + self.give_up_behind {
            return self.finish(ctx, state, false);
        }
        if attack.ticks >= self.patience {
            return self.finish(ctx, state, ahead);
        }
        Vec::new()
    }

    /// The blocks to leave out of what peers are served.
    fn hidden_from(&self, ctx: &Context<'_>) -> Option<u64> {
        let mut state = lock(&self.state);
        state.abandoned.retain(|b| {
            ctx.block_at(b.header.height)
                .is_some_and(|on| on.hash() == b.hash())
        });
        let first = match &state.attack {
            Some(attack) => attack.private.first(),
            None => state.abandoned.first(),
        };
        first.map(|b| b.header.height)
    }
}

fn to_peers(blocks: &[Block], peers: &[PeerUrl]) -> Vec<Outgoing> {
    blocks
        .iter()
        .flat_map(|b| peers.iter().map(move |p| Outgoing::block(p, b)))
        .collect()
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "double_spender".to_owned()
    }

    /// Its own block: public while it is not attacking, withheld while it
    /// is (and the whole branch goes out once it wins).
    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        let mut state = lock(&self.state);
        let Some(attack) = &mut state.attack else {
            state.last_published = block.header.height;
            return honest::publish(ctx, block, peers);
        };
        attack.private.push(block.clone());
        let released = self.decide(ctx, &mut state);
        to_peers(&released, peers)
    }

    /// While attacking, every pushed block is read and ignored: its
    /// engine must stay on the private branch.
    fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        let mut state = lock(&self.state);
        let Some(attack) = &mut state.attack else {
            return honest::incoming(ctx, block, from);
        };
        if from.is_none() || !block.header.meets_difficulty() {
            return honest::incoming(ctx, block, from);
        }
        let height = block.header.height;
        if block.tx.as_ref().is_some_and(|tx| tx.id() == attack.pay) {
            attack.pay_height = Some(height);
        }
        attack.public_height = attack.public_height.max(height);
        None
    }

    /// The conflicting spend goes to nobody.
    fn relay_tx(&self, ctx: &Context<'_>, tx: &Transaction, peers: &[PeerUrl]) -> Vec<PeerUrl> {
        let state = lock(&self.state);
        if state.attack.as_ref().is_some_and(|a| a.steal == tx.id()) {
            return Vec::new();
        }
        honest::relay_tx(ctx, tx, peers)
    }

    /// The status without the withheld branch.
    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        match self.hidden_from(ctx) {
            Some(first) if first <= honest.height => {
                let height = first - 1;
                let tip = ctx.block_at(height).map_or(honest.tip, |b| b.hash());
                Status {
                    height,
                    tip,
                    ..honest
                }
            }
            _ => honest,
        }
    }

    /// The chain without the withheld branch.
    fn serve_blocks(&self, ctx: &Context<'_>, _from: u64, honest: Vec<Block>) -> Vec<Block> {
        match self.hidden_from(ctx) {
            Some(first) => honest
                .into_iter()
                .filter(|b| b.header.height < first)
                .collect(),
            None => honest,
        }
    }

    /// Always mines: it earns coins to double-spend and never makes an
    /// honest transfer that could take the nonce it races for (on a
    /// schedule the engine mines anyway).
    fn next_auto(&self, _ctx: &Context<'_>, _rng: &mut dyn RngCore) -> Option<AutoAction> {
        Some(AutoAction::Mine)
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    /// Starts an attempt when it can, or checks the running one.
    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let mut state = lock(&self.state);
        match &mut state.attack {
            None => self.arm(ctx, &mut state),
            Some(attack) => {
                attack.ticks += 1;
                self.decide(ctx, &mut state)
                    .into_iter()
                    .map(Action::Release)
                    .collect()
            }
        }
    }
}
