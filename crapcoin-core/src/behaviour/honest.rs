//! The honest decision at every decision point of [`Behaviour`], one
//! function each. The trait's defaults call them; a misbehaviour that
//! changes one thing calls them for everything else instead of re-typing
//! honest code:
//!
//! ```
//! use crapcoin_core::behaviour::{Behaviour, Context, honest};
//! use crapcoin_core::network::{Outgoing, PeerUrl};
//! use crapcoin_core::Block;
//!
//! /// Relays honestly to every peer but the first.
//! struct SkipsOne;
//!
//! impl Behaviour for SkipsOne {
//!     fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
//!         honest::relay(ctx, block, peers.get(1..).unwrap_or_default())
//!     }
//! }
//! ```
//!
//! A behaviour that only watches overrides a method, looks, and returns
//! the honest answer unchanged:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use crapcoin_core::behaviour::{Behaviour, Context, honest};
//! use crapcoin_core::network::PeerUrl;
//! use crapcoin_core::Block;
//!
//! /// Counts the blocks peers send, deciding nothing.
//! #[derive(Default)]
//! struct Counter(AtomicU64);
//!
//! impl Behaviour for Counter {
//!     fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!         honest::incoming(ctx, block, from)
//!     }
//! }
//! ```
//!
//! [`Behaviour`]: super::Behaviour

use std::time::Duration;

use rand::{Rng, RngCore};

use super::{Action, AutoAction, Context};
use crate::block::{Block, BlockHeader};
use crate::hash::Address;
use crate::tx::Transaction;
use crate::wire::{Outgoing, PeerUrl, Status};

/// The timestamp of a block mined on `parent` at `now_ms`: the node's
/// clock, never below the parent's.
pub fn block_timestamp(_ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
    now_ms.max(parent.timestamp)
}

/// After mining `block`: the block to every peer, once.
pub fn publish(_ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
    to_each(block, peers)
}

/// A block from a peer, before validation: process it as it came.
pub fn incoming(_ctx: &Context<'_>, block: Block, _from: Option<&PeerUrl>) -> Option<Block> {
    Some(block)
}

/// After accepting a peer's new block: the block to every peer given
/// (the engine leaves its sender out), once.
pub fn relay(_ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
    to_each(block, peers)
}

/// After a peer's block joined the tree: nothing to do.
pub fn accepted(_ctx: &Context<'_>, _block: &Block, _from: Option<&PeerUrl>) -> Vec<Action> {
    Vec::new()
}

/// A new transaction goes to every peer but its sender, once.
pub fn relay_tx(_ctx: &Context<'_>, _tx: &Transaction, peers: &[PeerUrl]) -> Vec<PeerUrl> {
    peers.to_vec()
}

/// The status served to peers: the true one.
pub fn serve_status(_ctx: &Context<'_>, honest: Status) -> Status {
    honest
}

/// The blocks served for a chain or page request from height `from`: the
/// true ones.
pub fn serve_blocks(_ctx: &Context<'_>, _from: u64, honest: Vec<Block>) -> Vec<Block> {
    honest
}

/// The peer list served: the true one.
pub fn serve_peers(_ctx: &Context<'_>, honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
    honest
}

/// The wait before answering any request: none.
pub fn serve_delay(_ctx: &Context<'_>) -> Duration {
    Duration::ZERO
}

/// Auto mode's next move: a random amount to a random known address other
/// than this node's, mining a coinbase-only block first when broke or
/// alone.
pub fn next_auto(ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
    let me = ctx.address();
    let others: Vec<Address> = ctx
        .known_addresses()
        .into_iter()
        .filter(|a| *a != me)
        .collect();
    if others.is_empty() {
        return Some(AutoAction::Mine);
    }
    let to = others[rng.random_range(0..others.len())];
    let max = ctx.params().block_reward.max(2);
    let amount = rng.random_range(1..max);
    let spendable = ctx.spendable();
    if amount.saturating_add(ctx.fee()) > spendable {
        return Some(AutoAction::Mine);
    }
    Some(AutoAction::Transfer { to, amount })
}

/// How often the behaviour's ticker runs: never.
pub fn tick_interval() -> Option<Duration> {
    None
}

/// What to do on its own: nothing.
pub fn tick(_ctx: &Context<'_>) -> Vec<Action> {
    Vec::new()
}

/// `block` to each of `peers`.
fn to_each(block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
    peers.iter().map(|p| Outgoing::block(p, block)).collect()
}
