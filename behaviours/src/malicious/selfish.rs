//! The selfish miner: Eyal and Sirer's strategy ("Majority is not
//! Enough: Bitcoin Mining is Vulnerable", 2014) with the hash power its
//! node owns.
//!
//! **Attacks** fairness (and transfer confirmation). It mines only when its
//! engine's schedule says so (run it with `Mining::Scheduled` and its
//! share α; it forges nothing on its own), always on its own best tip, and
//! plays the paper's state machine, where the lead is the length of its
//! private branch minus the public branch's since they forked:
//!
//! | event | lead before | what it does |
//! | --- | --- | --- |
//! | it finds a block | any, no race | keeps it private (lead + 1) |
//! | it finds a block | tie race (state 0') | publishes it at once: its branch wins |
//! | an honest block | 0 | nothing: its engine adopts the longer chain |
//! | an honest block | 1 | publishes its block: a tie race (state 0') |
//! | an honest block | 2 | publishes everything: its branch is longer, the honest block is orphaned |
//! | an honest block | more than 2 | publishes its blocks up to the honest height (keeps lead − 1) |
//!
//! During a tie its engine stays on its own block (fork choice keeps the
//! first seen), so all of its power mines on its branch, and a share γ of
//! the honest power does too (those that saw its block first). With a share
//! α above `(1 − γ) / (3 − 2γ)` its share of the best chain is larger than
//! α: more than its fair reward. Its status and its served chain leave the
//! withheld blocks out, so that peers do not sync them early.
//!
//! **An honest node must** follow the branch with the most work even when
//! it arrives all at once and replaces blocks it had (a reorg), roll its
//! state back and forward exactly, and put the transfers of orphaned blocks
//! back into its mempool so that they are mined again, not lost.

use std::sync::Mutex;

use crapcoin_core::behaviour::{Action, honest};
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Block, Context, PeerUrl, Status};

use crate::util::lock;

#[derive(Debug, Default)]
struct Private {
    /// Its own blocks not yet published, lowest first, all on its best
    /// chain.
    withheld: Vec<Block>,
    /// The highest block height the others know of (their blocks and the
    /// ones it published).
    public_height: u64,
    /// The height of a tie race it is in (state 0'), if any.
    race: Option<u64>,
}

impl Private {
    /// Forgets withheld blocks a better branch displaced from the best
    /// chain (they can never win now).
    fn drop_displaced(&mut self, ctx: &Context<'_>) {
        let before = self.withheld.len();
        self.withheld.retain(|b| {
            ctx.block_at(b.header.height)
                .is_some_and(|on| on.hash() == b.hash())
        });
        if self.withheld.len() < before {
            // Whatever it held beyond the displaced one is gone as well.
            self.withheld.clear();
        }
    }

    /// Releases the withheld blocks up to `height`, lowest first.
    fn release_to(&mut self, height: u64) -> Vec<Action> {
        let keep = self
            .withheld
            .iter()
            .position(|b| b.header.height > height)
            .unwrap_or(self.withheld.len());
        let out: Vec<Block> = self.withheld.drain(..keep).collect();
        if let Some(last) = out.last() {
            self.public_height = self.public_height.max(last.header.height);
        }
        out.into_iter().map(Action::Release).collect()
    }
}

/// The selfish miner. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Behaviour {
    state: Mutex<Private>,
}

impl Behaviour {
    /// A selfish miner holding nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many of its blocks it holds back right now.
    pub fn withheld(&self) -> usize {
        lock(&self.state).withheld.len()
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "selfish".to_owned()
    }

    /// Its own block: private, except in a tie race (or when it is no
    /// lead at all, e.g. while it catches up).
    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        let mut state = lock(&self.state);
        state.drop_displaced(ctx);
        let height = block.header.height;
        if state.withheld.is_empty() {
            // Everything below it is public.
            state.public_height = state.public_height.max(height - 1);
            if state.race == Some(height - 1) || height <= state.public_height {
                state.race = None;
                state.public_height = state.public_height.max(height);
                tracing::debug!(node = ctx.name(), height, "selfish: publishes at once");
                return honest::publish(ctx, block, peers);
            }
        }
        state.race = None;
        state.withheld.push(block.clone());
        tracing::debug!(
            node = ctx.name(),
            height,
            lead = height.saturating_sub(state.public_height),
            "selfish: withholds"
        );
        Vec::new()
    }

    /// Another miner's block: the state machine's answer to it.
    fn accepted(&self, ctx: &Context<'_>, block: &Block, _from: Option<&PeerUrl>) -> Vec<Action> {
        if block.header.miner == ctx.address() {
            return Vec::new();
        }
        let height = block.header.height;
        let mut state = lock(&self.state);
        if height <= state.public_height {
            return Vec::new();
        }
        state.public_height = height;
        if state.race.is_some_and(|r| height > r) {
            state.race = None;
        }
        state.drop_displaced(ctx);
        let Some(private) = state.withheld.last().map(|b| b.header.height) else {
            return Vec::new();
        };
        let actions = if private < height {
            // Lead was 0 or the honest branch overtook: adopt (the engine
            // already did).
            state.withheld.clear();
            Vec::new()
        } else if private == height {
            // Lead was 1: race.
            state.race = Some(height);
            state.release_to(private)
        } else if private == height + 1 {
            // Lead was 2: publishing everything wins.
            state.release_to(private)
        } else {
            // Further ahead: match the honest height, keep the rest.
            state.release_to(height)
        };
        if !actions.is_empty() {
            tracing::debug!(
                node = ctx.name(),
                honest_height = height,
                private,
                released = actions.len(),
                "selfish: releases"
            );
        }
        actions
    }

    /// The status without the withheld blocks.
    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        let mut state = lock(&self.state);
        state.drop_displaced(ctx);
        let Some(first) = state.withheld.first() else {
            return honest;
        };
        Status {
            height: first.header.height - 1,
            tip: first.header.prev_hash,
            ..honest
        }
    }

    /// The chain without the withheld blocks.
    fn serve_blocks(&self, ctx: &Context<'_>, _from: u64, honest: Vec<Block>) -> Vec<Block> {
        let mut state = lock(&self.state);
        state.drop_displaced(ctx);
        let Some(first) = state.withheld.first() else {
            return honest;
        };
        let cut = first.header.height;
        honest
            .into_iter()
            .filter(|b| b.header.height < cut)
            .collect()
    }
}
