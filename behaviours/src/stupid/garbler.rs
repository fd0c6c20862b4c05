//! The garbler: sends bodies that are not quite blocks.
//!
//! **Breaks** encoding. Every block it publishes or relays goes out as raw
//! bytes, garbled in turn: cut off half way ([`Garble::Truncated`]), with a
//! claimed hash that is not the block's ([`Garble::BadHash`]), random bytes
//! ([`Garble::Junk`]), or padded past the size limit
//! ([`Garble::Oversize`]).
//!
//! **An honest node must** refuse each with its reason (`malformed`,
//! `bad_hash`, `too_large`, the size checked before parsing), keep serving,
//! and strike the garbler until it is dropped and banned. It still learns
//! the garbler's valid blocks by syncing, which the garbler answers
//! correctly.

use std::sync::atomic::{AtomicUsize, Ordering};

use crapcoin_core::block::MAX_BLOCK_JSON_LEN;
use crapcoin_core::network::{Outgoing, Payload};
use crapcoin_core::{Block, BlockHash, Context, PeerUrl};

use crate::util::Rng;

/// One way of garbling a block's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Garble {
    /// The JSON cut off half way.
    Truncated,
    /// Valid JSON whose claimed hash is all zeros.
    BadHash,
    /// Random bytes.
    Junk,
    /// Valid JSON padded with spaces past the size limit.
    Oversize,
}

impl Garble {
    /// The kinds, in the order the garbler cycles through them.
    pub const ALL: [Self; 4] = [Self::Truncated, Self::BadHash, Self::Junk, Self::Oversize];

    /// The garbled body of `block`.
    pub fn apply(self, block: &Block, rng: &mut impl rand::RngCore) -> Vec<u8> {
        let mut json = block.to_json();
        if self == Self::BadHash {
            json.hash = BlockHash::ZERO;
        }
        let mut bytes = serde_json::to_vec(&json).unwrap_or_default();
        match self {
            Self::Truncated => bytes.truncate(bytes.len() / 2),
            Self::BadHash => {}
            Self::Junk => rng.fill_bytes(&mut bytes),
            Self::Oversize => bytes.resize(MAX_BLOCK_JSON_LEN + 1, b' '),
        }
        bytes
    }
}

/// The garbler. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
    next: AtomicUsize,
}

impl Behaviour {
    /// A garbler whose junk follows `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Rng::seeded(seed),
            next: AtomicUsize::new(0),
        }
    }

    fn garble(&self, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        peers
            .iter()
            .map(|to| {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                let kind = Garble::ALL[i % Garble::ALL.len()];
                Outgoing {
                    to: to.clone(),
                    payload: Payload::Raw(kind.apply(block, &mut *self.rng.get())),
                }
            })
            .collect()
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "garbler".to_owned()
    }

    fn publish(&self, _ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.garble(block, peers)
    }

    fn relay(&self, _ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.garble(block, peers)
    }
}
