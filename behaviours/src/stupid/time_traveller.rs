//! The time traveller: a node whose clock runs ahead.
//!
//! **Breaks** timestamps. It stamps the blocks it mines
//! [`Behaviour::new`]'s `lead` ahead of the time (by default 90 s: within
//! the two minutes the protocol allows, so they are valid and honest blocks
//! on top must carry timestamps at least as late), and every tick it also
//! sends its peers a block stamped an hour ahead, which no clock should
//! accept.
//!
//! **An honest node must** accept the first kind, stamp its own blocks no
//! earlier than their parent, refuse the second with `timestamp_too_new`,
//! and not remember it as invalid (it becomes valid once its time comes),
//! nor punish the sender for a clock problem.

use std::time::Duration;

use crapcoin_core::behaviour::Action;
use crapcoin_core::network::Payload;
use crapcoin_core::{BlockHeader, Context};

/// How far ahead the blocks sent on each tick are stamped.
pub const FAR_FUTURE: Duration = Duration::from_secs(3600);

/// The time traveller. See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    lead: Duration,
    interval: Duration,
}

impl Behaviour {
    /// A traveller stamping its mined blocks `lead` ahead, and sending a
    /// block stamped [`FAR_FUTURE`] ahead each `interval`.
    pub fn new(lead: Duration, interval: Duration) -> Self {
        Self { lead, interval }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl crapcoin_core::Behaviour for Behaviour {
    fn name(&self) -> String {
        "time_traveller".to_owned()
    }

    fn block_timestamp(&self, _ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
        now_ms
            .saturating_add(millis(self.lead))
            .max(parent.timestamp)
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        let when = ctx.now_ms().saturating_add(millis(FAR_FUTURE));
        let block = ctx.forge().timestamp(when).mine();
        vec![Action::Broadcast(Payload::Block(block))]
    }
}
