//! The amnesiac: forgets its whole chain now and then.
//!
//! **Breaks** storage. Every [`Behaviour::new`]'s `every` it wipes its
//! chain and stored blocks back to genesis; its peer checks then find
//! everyone ahead and it syncs the chain again, mining meanwhile on
//! whatever short chain it has.
//!
//! **An honest node must** never follow a chain with less work than its
//! own, however recently it was mined, keep the amnesiac's short-chain
//! blocks only as side blocks, and serve it the chain to resync from.

use std::time::Duration;

use crapcoin_core::Context;
use crapcoin_core::behaviour::Action;

/// The amnesiac. See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    every: Duration,
}

impl Behaviour {
    /// An amnesiac wiping its chain each `every`.
    pub fn new(every: Duration) -> Self {
        Self { every }
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "amnesiac".to_owned()
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.every)
    }

    fn tick(&self, _ctx: &Context<'_>) -> Vec<Action> {
        vec![Action::Wipe]
    }
}
