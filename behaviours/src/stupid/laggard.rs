//! The laggard: answers every request, late.
//!
//! **Breaks** latency. Each status, chain, block and peer request waits
//! [`Behaviour::new`]'s `delay` before being answered (at the default, far
//! longer than any sensible call timeout). It still mines, publishes and
//! relays normally.
//!
//! **An honest node must** put a timeout on every call so that a slow peer
//! never stalls it, count consecutive failures, and drop a peer that keeps
//! failing. Blocks the laggard pushes are still taken on their merits.

use std::time::Duration;

use crapcoin_core::Context;

/// The laggard. See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    delay: Duration,
}

impl Behaviour {
    /// A laggard waiting `delay` before every answer.
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }
}

impl Default for Behaviour {
    /// Five seconds, more than twice the default call timeout.
    fn default() -> Self {
        Self::new(Duration::from_secs(5))
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "laggard".to_owned()
    }

    fn serve_delay(&self, _ctx: &Context<'_>) -> Duration {
        self.delay
    }
}
