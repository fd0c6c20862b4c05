//! The peer poisoner: answers every peer-list request with ghosts.
//!
//! **Attacks** discovery (an eclipse attempt). Asked for its peers, it hides
//! every real one and answers with itself and a fresh batch of addresses
//! where nobody answers (`mem://ghost-…` on the in-memory network,
//! `http://ghost-….invalid` elsewhere: the `.invalid` top-level domain
//! never resolves, so no real machine is ever named). A node that believed
//! it would fill its peer table with ghosts and the poisoner and lose the
//! honest network.
//!
//! **An honest node must** treat a peer list as rumours: call each
//! candidate and keep it only if it answers with the same genesis, take a
//! bounded number of candidates from any one answer, and fall back to the
//! tracker when peers' answers are useless.

use crapcoin_core::{Context, PeerUrl};
use rand::Rng as _;

use crate::util::Rng;

/// The poisoner. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    rng: Rng,
    ghosts: usize,
}

impl Behaviour {
    /// A poisoner answering `ghosts` (at most 64) ghost addresses per
    /// request.
    pub fn new(seed: u64, ghosts: usize) -> Self {
        Self {
            rng: Rng::seeded(seed),
            ghosts: ghosts.min(64),
        }
    }

    /// Whether `url` is one of the addresses a poisoner makes up.
    pub fn is_ghost(url: &PeerUrl) -> bool {
        url.as_str().contains("://ghost-")
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "peer_poisoner".to_owned()
    }

    fn serve_peers(&self, ctx: &Context<'_>, _honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
        let in_memory = ctx.url().as_str().starts_with("mem://");
        let mut rng = self.rng.get();
        let mut out: Vec<PeerUrl> = (0..self.ghosts)
            .filter_map(|_| {
                let id: u32 = rng.random();
                let text = if in_memory {
                    format!("mem://ghost-{id:08x}")
                } else {
                    format!("http://ghost-{id:08x}.invalid")
                };
                text.parse().ok()
            })
            .collect();
        out.push(ctx.url().clone());
        out
    }
}
