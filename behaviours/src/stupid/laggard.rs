//! The laggard: a node whose link is dying. It answers promptly at first,
//! then every request late.
//!
//! **Breaks** latency. After its first [`Behaviour::new`]'s `prompt`
//! answers (enough for peers to take it on), each status, chain, block and
//! peer request waits `delay` before being answered (at the default, far
//! longer than any sensible call timeout). It still mines, publishes and
//! relays normally.
//!
//! **An honest node must** put a timeout on every call so that a slow peer
//! never stalls it, count consecutive failures, and drop a peer that keeps
//! failing. Blocks the laggard pushes are still taken on their merits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crapcoin_core::Context;

/// The laggard. See the [module docs](self).
#[derive(Debug)]
pub struct Behaviour {
    delay: Duration,
    prompt: u64,
    answered: AtomicU64,
}

impl Behaviour {
    /// A laggard answering its first `prompt` requests at once and waiting
    /// `delay` before every later answer.
    pub fn new(delay: Duration, prompt: u64) -> Self {
        Self {
            delay,
            prompt,
            answered: AtomicU64::new(0),
        }
    }
}

impl Default for Behaviour {
    /// Twenty prompt answers, then five seconds each: more than twice the
    /// default call timeout.
    fn default() -> Self {
        Self::new(Duration::from_secs(5), 20)
    }
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "laggard".to_owned()
    }

    fn serve_delay(&self, _ctx: &Context<'_>) -> Duration {
        if self.answered.fetch_add(1, Ordering::Relaxed) < self.prompt {
            Duration::ZERO
        } else {
            self.delay
        }
    }
}
