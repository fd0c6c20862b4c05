//! The forgetful node: accepts blocks and transactions from its peers and
//! never passes them on.
//!
//! **Breaks** gossip. It validates and keeps every block it is sent, and
//! publishes the blocks it mines itself, but forgets to relay anyone
//! else's, and keeps the transactions it is relayed to itself. Where it is the only link between two parts of the network,
//! neither part hears of the other's blocks by gossip.
//!
//! **An honest node must** not depend on any single relay: its periodic
//! peer check sees a peer that is ahead (the forgetful node has the other
//! part's blocks) and syncs from it, so both parts converge anyway.

use crapcoin_core::network::Outgoing;
use crapcoin_core::{Block, Context, PeerUrl, Transaction};

/// The forgetful node. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour;

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "forgetful".to_owned()
    }

    fn relay(&self, _ctx: &Context<'_>, _block: &Block, _peers: &[PeerUrl]) -> Vec<Outgoing> {
        Vec::new()
    }

    fn relay_tx(&self, _ctx: &Context<'_>, _tx: &Transaction, _peers: &[PeerUrl]) -> Vec<PeerUrl> {
        Vec::new()
    }
}
