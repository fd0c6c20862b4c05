//! The equivocator: tells different peers different stories about the same
//! height.
//!
//! **Attacks** agreement. Each block it mines it sends to half of its
//! peers; the other half get a twin: the same parent, height and
//! transaction, one millisecond later, so a different block. Honest nodes
//! that meet both each keep the one they saw first, and the network is
//! split until one side pulls ahead.
//!
//! **An honest node must** keep the twin it does not follow as a side
//! block (it is valid), relay it so every node knows both, and switch to the
//! other branch as soon as it has more work, so that the network converges
//! on one chain.

use crapcoin_core::behaviour::honest;
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Block, Context, Forge, PeerUrl};
use rand::seq::SliceRandom;

use crate::util::Rng;

/// The equivocator. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
}

impl Behaviour {
    /// An equivocator splitting its peers at random, following `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::seeded(seed),
        }
    }

    /// The block's twin: same parent, transaction and miner, stamped one
    /// millisecond later. `None` when the parent is no longer at hand.
    pub fn twin(ctx: &Context<'_>, block: &Block) -> Option<Block> {
        let parent = ctx.block_at(block.header.height.checked_sub(1)?)?;
        if parent.hash() != block.header.prev_hash {
            return None;
        }
        let mut forge = Forge::new(ctx.params(), &parent.header)
            .miner(block.header.miner)
            .timestamp(block.header.timestamp.saturating_add(1));
        if let Some(tx) = &block.tx {
            forge = forge.tx(tx.clone());
        }
        Some(forge.mine())
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "equivocator".to_owned()
    }

    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        let twin = (peers.len() >= 2).then(|| Self::twin(ctx, block)).flatten();
        let Some(twin) = twin else {
            return honest::publish(ctx, block, peers);
        };
        let mut peers = peers.to_vec();
        peers.shuffle(&mut *self.rng.get());
        let half = peers.len() / 2;
        peers
            .iter()
            .enumerate()
            .map(|(i, p)| Outgoing::block(p, if i < half { block } else { &twin }))
            .collect()
    }
}
