//! Small helpers shared by the catalogue.

use std::sync::{Mutex, MutexGuard};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// A seeded random generator behind a lock, for behaviours whose decision
/// methods take `&self`.
#[derive(Debug)]
pub(crate) struct Rng(Mutex<StdRng>);

impl Rng {
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }

    /// The generator; a poisoned lock is taken over (a panic elsewhere
    /// leaves a generator that is still a generator).
    pub(crate) fn get(&self) -> MutexGuard<'_, StdRng> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Locks a mutex, taking over a poisoned one: behaviour state stays usable
/// after a panic in another decision.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Derives the seed of one use (`salt`) from another seed, so things built
/// from one seed (behaviours, a run's nodes) do not share random streams
/// (SplitMix64's finaliser: nearby inputs give unrelated outputs).
pub fn derive_seed(seed: u64, salt: u64) -> u64 {
    // SplitMix64 finaliser: cheap and well spread.
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
