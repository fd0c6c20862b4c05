//! Hash power: when a miner finds its next block.
//!
//! The sandbox does not make miners burn CPU in proportion to their power.
//! It models what that burning produces: with a fixed difficulty, finding a
//! block is a Poisson process, so a miner owning `share` of the network's
//! hash power finds its next block after an exponentially distributed time
//! of mean `T / share`, where `T` is the network's target block interval.
//! Blocks then arrive network-wide at mean interval `T` whatever the number
//! of miners, each miner's share of them is its hash power share, and a new
//! tip may restart the draw at any moment: the exponential distribution is
//! memoryless, so a restarted draw has the same law as the time left.
//!
//! The proof of work itself stays real: when its draw comes up, the miner
//! really searches a nonce at the network's (low) difficulty, and every
//! receiver verifies it. What the schedule adds is *when* a miner is
//! allowed to win. A behaviour that builds blocks outside its schedule
//! (see [`crate::Forge`]) is a miner with more power than its share: that is
//! what owning more hash power means here.

use std::time::Duration;

use rand::Rng;

/// The longest single draw: a miner whose draw is longer simply draws
/// again then (memoryless), and timers stay far from overflow.
const MAX_DRAW: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a hash power setting is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HashPowerError {
    /// The share is not a number between 0 and 1.
    #[error("hash power share must be between 0 and 1, got {0}")]
    Share(f64),
    /// The target block interval is zero.
    #[error("target block interval must be positive")]
    Interval,
}

/// A miner's hash power share and the network's target block interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HashPower {
    share: f64,
    block_interval: Duration,
}

impl HashPower {
    /// `share` of the network's power (0 to 1; 0 mines nothing) on a
    /// network whose blocks come every `block_interval` on average.
    ///
    /// # Errors
    ///
    /// [`HashPowerError`] for a share outside `[0, 1]` (or not a number)
    /// and for a zero interval.
    pub const fn new(share: f64, block_interval: Duration) -> Result<Self, HashPowerError> {
        if let Err(e) = Self::check_share(share) {
            return Err(e);
        }
        if block_interval.is_zero() {
            return Err(HashPowerError::Interval);
        }
        Ok(Self {
            share,
            block_interval,
        })
    }

    /// `share` when it is a share of the network's hash power: a number
    /// from 0 to 1 (command lines check theirs with this).
    ///
    /// # Errors
    ///
    /// [`HashPowerError::Share`] otherwise (NaN included).
    pub const fn check_share(share: f64) -> Result<f64, HashPowerError> {
        // Written so that NaN fails too.
        if share >= 0.0 && share <= 1.0 {
            Ok(share)
        } else {
            Err(HashPowerError::Share(share))
        }
    }

    /// The miner's share of the network's hash power.
    pub const fn share(&self) -> f64 {
        self.share
    }

    /// The network's target block interval `T`.
    pub const fn block_interval(&self) -> Duration {
        self.block_interval
    }

    /// The mean time between two of this miner's blocks, `T / share`
    /// (`None` for a share of 0).
    pub fn mean_time(&self) -> Option<Duration> {
        if self.share <= 0.0 {
            return None;
        }
        Some(
            Duration::try_from_secs_f64(self.block_interval.as_secs_f64() / self.share)
                .unwrap_or(MAX_DRAW)
                .min(MAX_DRAW),
        )
    }

    /// One draw of the time to this miner's next block: exponential with
    /// mean [`HashPower::mean_time`], capped at a year (`None` for a share
    /// of 0: it never finds one).
    pub fn draw(&self, rng: &mut impl Rng) -> Option<Duration> {
        let mean = self.mean_time()?.as_secs_f64();
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u: f64 = rng.random();
        let wait = -(1.0 - u).ln() * mean;
        Some(
            Duration::try_from_secs_f64(wait)
                .unwrap_or(MAX_DRAW)
                .min(MAX_DRAW),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::{HashPower, HashPowerError};

    #[test]
    fn nonsense_is_refused() {
        let t = Duration::from_secs(1);
        assert_eq!(HashPower::new(-0.1, t), Err(HashPowerError::Share(-0.1)));
        assert_eq!(HashPower::new(1.5, t), Err(HashPowerError::Share(1.5)));
        assert!(matches!(
            HashPower::new(f64::NAN, t),
            Err(HashPowerError::Share(_))
        ));
        assert_eq!(
            HashPower::new(0.5, Duration::ZERO),
            Err(HashPowerError::Interval)
        );
        assert!(HashPower::new(0.0, t).is_ok());
        assert!(HashPower::new(1.0, t).is_ok());
    }

    #[test]
    fn a_zero_share_never_finds_a_block() {
        let power = HashPower::new(0.0, Duration::from_secs(1)).expect("valid");
        assert_eq!(power.mean_time(), None);
        assert_eq!(power.draw(&mut StdRng::seed_from_u64(1)), None);
    }

    /// The draws are exponential with mean T / share: their mean and
    /// their median (mean × ln 2) land where they should.
    #[test]
    fn draws_are_exponential_with_mean_t_over_share() {
        let power = HashPower::new(0.25, Duration::from_secs(2)).expect("valid");
        assert_eq!(power.mean_time(), Some(Duration::from_secs(8)));
        let mut rng = StdRng::seed_from_u64(7);
        let mut draws: Vec<f64> = (0..20_000)
            .map(|_| {
                power
                    .draw(&mut rng)
                    .expect("a positive share")
                    .as_secs_f64()
            })
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 8.0).abs() < 0.25, "mean {mean}");
        draws.sort_by(f64::total_cmp);
        let median = draws[draws.len() / 2];
        let want = 8.0 * std::f64::consts::LN_2;
        assert!((median - want).abs() < 0.25, "median {median}, want {want}");
    }
}
