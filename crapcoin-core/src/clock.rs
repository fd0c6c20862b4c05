//! The node's notion of time: [`Clock`].
//!
//! The engine reads the time and waits only through its clock — `now_ms`
//! for timestamps, [`Clock::now`] for deadlines and ages, and
//! [`Clock::sleep`], [`Clock::sleep_until`], [`Clock::timeout`] and
//! [`Clock::interval`] for every wait — and no other module of the engine
//! names `SystemTime`, `Instant::now` or `tokio::time`. That makes time a
//! seam with two kinds of clock behind it:
//!
//! - [`Clock::system`]: the operating system's time and tokio's timers;
//!   its timestamps shifted by a [`Skew`] too (zero unless set: a fault
//!   that makes a real node's clock run ahead or behind,
//!   [`crate::faults`]).
//! - [`Clock::simulated`]: virtual time, for simulations. It runs on a
//!   tokio runtime whose time is paused (a current-thread runtime built
//!   with `start_paused(true)`): every sleep, timeout and interval waits
//!   on virtual time, which jumps to the next timer as soon as every task
//!   waits, so a simulated minute passes in however long the work in it
//!   takes. Its timestamps count from a fixed epoch, so nothing a node
//!   stamps depends on when the run happened; a [`Skew`] shifts one
//!   node's timestamps (a node whose clock is wrong). On a virtual clock
//!   the engine also does inline the work it would send to blocking
//!   threads ([`Clock::is_virtual`]), whose timing no seed controls.
//!
//! The bottom layer of the engine, with [`crate::wire`]: it imports no
//! other module of the crate.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where simulations start their virtual clocks:
/// 2026-01-01T00:00:00Z, in milliseconds since the Unix epoch. A fixed
/// epoch keeps timestamps, and so block hashes, the same on every run.
pub const SIMULATION_EPOCH_MS: u64 = 1_767_225_600_000;

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

/// The kinds of clock.
#[derive(Debug, Clone)]
enum Kind {
    /// The operating system's clocks and tokio's timers; timestamps
    /// shifted by `skew`.
    System { skew: Skew },
    /// Tokio's paused time: timestamps count from `epoch_ms` at `origin`,
    /// shifted by `skew`.
    Virtual {
        epoch_ms: u64,
        origin: tokio::time::Instant,
        skew: Skew,
    },
}

impl Default for Kind {
    fn default() -> Self {
        Self::System {
            skew: Skew::default(),
        }
    }
}

/// A shift of a clock's timestamps, in milliseconds (positive: the clock
/// runs ahead). Shared: the clock and whoever set it up read
/// the same value, so a run can change a node's skew while it runs.
#[derive(Debug, Clone, Default)]
pub struct Skew(Arc<AtomicI64>);

impl Skew {
    /// A skew of `ms` milliseconds.
    pub fn new(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }

    /// Sets the skew to `ms` milliseconds.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    /// The skew in milliseconds.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A [`Clock::timeout`] whose deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

impl Clock {
    /// The system clock: wall time from the OS, waits on tokio's timers.
    /// Its [`Clock::skew`] starts at zero.
    pub fn system() -> Self {
        Self::default()
    }

    /// The shift of this clock's timestamps ([`Clock::now_ms`]), shared
    /// with its clones: setting it moves every clone's timestamps (never
    /// its instants, sleeps or timeouts).
    pub fn skew(&self) -> &Skew {
        match &self.kind {
            Kind::System { skew } | Kind::Virtual { skew, .. } => skew,
        }
    }

    /// A virtual clock whose time is tokio's (paused) time, its
    /// timestamps `epoch_ms` at the moment it is made, shifted by `skew`.
    /// Make it inside the runtime that runs the simulation; every clock
    /// of one run made at the same virtual moment with the same epoch
    /// reads the same time (but for its skew).
    ///
    /// Virtual only when that runtime's time is paused
    /// (`tokio::runtime::Builder::start_paused`, tokio's `test-util`
    /// feature): on a running clock it still works, at real speed.
    pub fn simulated(epoch_ms: u64, skew: Skew) -> Self {
        Self::simulated_since(tokio::time::Instant::now().into_std(), epoch_ms, skew)
    }

    /// A virtual clock whose timestamps were `epoch_ms` at `origin` (an
    /// instant of the simulation's runtime, e.g. another simulated
    /// clock's [`Clock::now`]): a node started late in a run, or started
    /// again after a crash, reads the same time as the nodes started
    /// first.
    pub fn simulated_since(origin: Instant, epoch_ms: u64, skew: Skew) -> Self {
        Self {
            kind: Kind::Virtual {
                epoch_ms,
                origin: tokio::time::Instant::from_std(origin),
                skew,
            },
        }
    }

    /// Whether this is a simulated clock: then the engine runs inline
    /// what it would otherwise hand to blocking threads, so a run's
    /// order of events depends on its seed alone.
    pub fn is_virtual(&self) -> bool {
        matches!(self.kind, Kind::Virtual { .. })
    }

    /// Milliseconds since the Unix epoch: what block timestamps are
    /// stamped with and checked against.
    pub fn now_ms(&self) -> u64 {
        match &self.kind {
            Kind::System { skew } => now_ms().saturating_add_signed(skew.get()),
            Kind::Virtual {
                epoch_ms,
                origin,
                skew,
            } => {
                let elapsed = u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
                epoch_ms
                    .saturating_add(elapsed)
                    .saturating_add_signed(skew.get())
            }
        }
    }

    /// The current instant, for deadlines and ages (monotonic; virtual
    /// on a simulated clock).
    pub fn now(&self) -> Instant {
        match self.kind {
            Kind::System { .. } => Instant::now(),
            Kind::Virtual { .. } => tokio::time::Instant::now().into_std(),
        }
    }

    /// Waits for `duration`.
    pub async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    /// Waits until `deadline` (at once when it has passed).
    pub async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
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
        tokio::time::timeout(duration, future)
            .await
            .map_err(|_| Elapsed)
    }

    /// A ticker firing every `period`, the first tick at once.
    ///
    /// # Panics
    ///
    /// When `period` is zero.
    pub fn interval(&self, period: Duration) -> Interval {
        Interval {
            inner: tokio::time::interval(period),
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

    /// Virtual time jumps: an hour of sleeps passes at once, timestamps
    /// count from the epoch, and a skew shifts them alone.
    #[tokio::test(start_paused = true)]
    async fn simulated_time_jumps_to_the_next_timer() {
        let skew = Skew::new(0);
        let clock = Clock::simulated(1_000_000, skew.clone());
        assert!(clock.is_virtual() && !Clock::system().is_virtual());
        let wall = Instant::now();
        let start = clock.now();
        for _ in 0..60 {
            clock.sleep(Duration::from_secs(60)).await;
        }
        assert_eq!(clock.now() - start, Duration::from_secs(3600));
        assert_eq!(clock.now_ms(), 1_000_000 + 3_600_000);
        assert!(
            wall.elapsed() < Duration::from_secs(60),
            "an hour of virtual time took {:?}",
            wall.elapsed()
        );
        skew.set(-5_000);
        assert_eq!(clock.now_ms(), 1_000_000 + 3_600_000 - 5_000);
        assert_eq!(clock.now() - start, Duration::from_secs(3600));
        // A clock made later from the same origin reads the same time.
        let late = Clock::simulated_since(start, 1_000_000, Skew::default());
        assert_eq!(late.now_ms(), 1_000_000 + 3_600_000);
    }

    /// A skew moves a system clock's timestamps, and its clones', while
    /// it is set, and nothing else.
    #[test]
    fn a_system_clock_honours_its_skew() {
        let clock = Clock::system();
        let clone = clock.clone();
        assert_eq!(clock.skew().get(), 0);
        let hour: u64 = 3_600_000;
        clock.skew().set(3_600_000);
        let read = clone.now_ms();
        let wall = now_ms();
        assert!(read >= wall + hour - 1_000 && read <= wall + hour + 1_000);
        clock.skew().set(-3_600_000);
        assert!(clone.now_ms() + hour <= now_ms() + 1_000);
        clock.skew().set(0);
        assert!(clone.now_ms().abs_diff(now_ms()) < 1_000);
    }
}
