//! The lazy miner, a CrapCoin attacker built as a plugin.
//!
//! **Attacks** proof of work. Honest miners search for a hash with the
//! network's number of leading zero bits; the lazy miner writes a smaller
//! difficulty into its headers and mines only to that, doing a fraction of
//! the work (at difficulty 1, two hashes on average instead of 2^d). A node
//! that checked a header's proof of work against the header's own
//! difficulty field would accept its blocks, and the lazy miner would
//! out-mine everyone.
//!
//! **An honest node must** compare a header's difficulty with the
//! network's, which is fixed in genesis, and refuse the block with
//! `wrong_difficulty` before even hashing it, striking the sender until it
//! is dropped.
//!
//! The forger of the built-in catalogue sends blocks whose hash misses the
//! *network's* difficulty (`bad_pow`); the lazy miner's blocks meet the
//! difficulty they claim. See README.md for the tutorial.

use std::time::Duration;

use crapcoin_core::behaviour::Action;
use crapcoin_core::network::Payload;
use crapcoin_core::{Behaviour, Context};

/// How often the lazy miner sends a block of its own.
const EVERY: Duration = Duration::from_millis(200);

/// The lazy miner: every 200 ms it mines a block on its tip at a
/// difficulty `shortfall` bits below the network's and sends it to every
/// peer.
#[derive(Debug, Clone, Copy)]
pub struct LazyMiner {
    shortfall: u8,
}

impl LazyMiner {
    /// A lazy miner claiming `shortfall` (at least 1) bits less than the
    /// network's difficulty; the seed picks nothing, every lazy miner is
    /// as lazy as the next.
    pub fn new(shortfall: u8) -> Self {
        Self {
            shortfall: shortfall.max(1),
        }
    }
}

impl Behaviour for LazyMiner {
    fn name(&self) -> String {
        "lazy_miner".to_owned()
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(EVERY)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let claimed = ctx.params().difficulty.saturating_sub(self.shortfall);
        let block = ctx.forge().difficulty(claimed).mine();
        vec![Action::Broadcast(Payload::Block(block))]
    }
}

behaviours::export_plugin!(|_seed: u64| LazyMiner::new(7));
