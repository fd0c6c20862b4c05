//! The node's notion of time: [`Clock`].
//!
//! The engine reads the time and waits only through its clock — `now_ms`
//! for timestamps, [`Clock::now`] for deadlines and ages, and
//! [`Clock::sleep`], [`Clock::sleep_until`], [`Clock::timeout`] and
//! [`Clock::interval`] for every wait — and no other module of the engine
//! names `SystemTime`, `Instant::now` or `tokio::time`. That makes time a
//! seam: today there is one kind of clock, the system's
//! ([`Clock::system`]); a virtual clock for simulations, or a skewed one
//! for a node whose clock is wrong, goes behind the same methods without
//! the engine changing.
//!
//! The bottom layer of the engine, with [`crate::wire`]: it imports no
//! other module of the crate.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch by the system clock (what
/// [`Clock::system`] reads). For code outside a node (tests, tools); a
/// node reads its own [`Clock`].
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Where a node reads the time and how it waits. Cheap to clone; clones
/// read the same time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    kind: Kind,
}

/// The kinds of clock. One today; the enum is where a virtual or skewed
/// clock joins it.
#[derive(Debug, Clone, Copy, Default)]
enum Kind {
    /// The operating system's clocks and tokio's timers.
    #[default]
    System,
}

/// A [`Clock::timeout`] whose deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

impl Clock {
    /// The system clock: wall time from the OS, waits on tokio's timers.
    pub fn system() -> Self {
        Self { kind: Kind::System }
    }

    /// Milliseconds since the Unix epoch: what block timestamps are
    /// stamped with and checked against.
    pub fn now_ms(&self) -> u64 {
        match self.kind {
            Kind::System => now_ms(),
        }
    }

    /// The current instant, for deadlines and ages (monotonic).
    pub fn now(&self) -> Instant {
        match self.kind {
            Kind::System => Instant::now(),
        }
    }

    /// Waits for `duration`.
    pub async fn sleep(&self, duration: Duration) {
        match self.kind {
            Kind::System => tokio::time::sleep(duration).await,
        }
    }

    /// Waits until `deadline` (at once when it has passed).
    pub async fn sleep_until(&self, deadline: Instant) {
        match self.kind {
            Kind::System => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
            }
        }
    }

    /// Runs `future` for at most `duration`.
    ///
    /// # Errors
    ///
    /// [`Elapsed`] when the deadline passed first (the future is dropped).
    pub async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        match self.kind {
            Kind::System => tokio::time::timeout(duration, future)
                .await
                .map_err(|_| Elapsed),
        }
    }

    /// A ticker firing every `period`, the first tick at once.
    ///
    /// # Panics
    ///
    /// When `period` is zero.
    pub fn interval(&self, period: Duration) -> Interval {
        match self.kind {
            Kind::System => Interval {
                inner: tokio::time::interval(period),
            },
        }
    }
}

/// A ticker made by [`Clock::interval`].
#[derive(Debug)]
pub struct Interval {
    inner: tokio::time::Interval,
}

impl Interval {
    /// Waits for the next tick and returns when it was due.
    pub async fn tick(&mut self) -> Instant {
        self.inner.tick().await.into_std()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_is_after_2025() {
        assert!(Clock::system().now_ms() > 1_735_689_600_000);
    }

    #[tokio::test]
    async fn timeouts_end_slow_futures_only() {
        let clock = Clock::system();
        let quick = clock.timeout(Duration::from_secs(5), async { 7 }).await;
        assert_eq!(quick, Ok(7));
        let slow = clock
            .timeout(
                Duration::from_millis(10),
                clock.sleep(Duration::from_secs(5)),
            )
            .await;
        assert_eq!(slow, Err(Elapsed));
    }
}
