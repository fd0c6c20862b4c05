//! The selfish miner: keeps the blocks it mines to itself and releases them
//! when that throws away the most honest work.
//!
//! **Attacks** fairness (and transfer confirmation). Every block it mines,
//! whether its engine's miner found it or it mined one on its own tick, is
//! kept private: its own chain grows, nobody hears of it, and it mines
//! ahead to keep a lead of two blocks over the public chain. As soon as
//! honest nodes have mined on the public chain but still have less than its
//! private branch, it releases the whole branch at once (also when it holds
//! [`Behaviour::new`]'s `max_private` blocks): the honest blocks mined
//! meanwhile are on the shorter branch and get orphaned.
//!
//! **An honest node must** follow the branch with the most work even when
//! it arrives all at once and replaces blocks it had (a reorg), roll its
//! state back and forward exactly, and put the transfers of orphaned blocks
//! back into its mempool so that they are mined again, not lost.

use std::sync::Mutex;
use std::time::Duration;

use crapcoin_core::behaviour::{Action, honest};
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Block, Context, Forge, PeerUrl};

use crate::util::lock;

#[derive(Debug, Default)]
struct Private {
    /// Blocks mined and not yet released, lowest first.
    withheld: Vec<Block>,
    /// Highest block height seen from anyone else.
    public_height: u64,
}

/// The selfish miner. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    interval: Duration,
    max_private: usize,
    state: Mutex<Private>,
}

impl Behaviour {
    /// A selfish miner that looks at the race every `interval` and
    /// releases at the latest when it holds `max_private` (at least 2)
    /// blocks.
    pub fn new(interval: Duration, max_private: usize) -> Self {
        Self {
            interval,
            max_private: max_private.max(2),
            state: Mutex::new(Private::default()),
        }
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "selfish".to_owned()
    }

    fn publish(&self, _ctx: &Context<'_>, block: &Block, _peers: &[PeerUrl]) -> Vec<Outgoing> {
        lock(&self.state).withheld.push(block.clone());
        Vec::new()
    }

    fn incoming(&self, _ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        if from.is_some() {
            let mut state = lock(&self.state);
            state.public_height = state.public_height.max(block.header.height);
        }
        Some(block)
    }

    /// Relays others' blocks honestly; its own stay private (a block it
    /// mined on its tick enters its chain through [`Action::Release`] and
    /// would otherwise be relayed).
    fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        if block.header.miner == ctx.address() {
            return Vec::new();
        }
        honest::relay(ctx, block, peers)
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let mut state = lock(&self.state);
        // Blocks a better public branch displaced are worthless now.
        state.withheld.retain(|b| {
            ctx.block_at(b.header.height)
                .is_some_and(|on| on.hash() == b.hash())
        });
        let held = state.withheld.len() as u64;
        let private_height = ctx.height();
        let fork = private_height.saturating_sub(held);
        let public_since_fork = state.public_height.saturating_sub(fork);
        // Release when honest blocks mined since the fork would lose to the
        // private branch, or when holding more gets too risky.
        let wins = held > 0 && public_since_fork >= 1 && held > public_since_fork;
        if wins || state.withheld.len() >= self.max_private {
            state.withheld.sort_by_key(|b| b.header.height);
            return state.withheld.drain(..).map(Action::Release).collect();
        }
        // Keep a private lead of two over the public chain: mine on the
        // private tip, each block on the previous one (the tip moves only
        // once the engine has taken these in).
        let me = ctx.address();
        let mut parent = ctx.tip().header.clone();
        let mut out = Vec::new();
        while state.withheld.len() < self.max_private
            && parent.height < state.public_height.saturating_add(2)
        {
            let block = Forge::new(ctx.params(), &parent)
                .miner(me)
                .timestamp(ctx.now_ms().max(parent.timestamp))
                .mine();
            parent = block.header.clone();
            state.withheld.push(block.clone());
            out.push(Action::Release(block));
        }
        out
    }
}
