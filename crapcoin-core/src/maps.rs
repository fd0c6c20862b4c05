//! Hash maps whose iteration order a simulation can fix: [`Map`] and
//! [`Set`].
//!
//! The engine keeps its tables (blocks, accounts, peers, mempool) in hash
//! maps, and some decisions walk them: which addresses a behaviour picks
//! from, which peers a sample holds. A map with std's `RandomState` walks
//! in a different order in every process, so a simulation replayed from
//! its seed would take other decisions. These maps hash with SipHash
//! under keys from [`Seeded`]: random per map, as std does (an attacker
//! who cannot guess the keys cannot flood one bucket), except on a thread
//! that called [`fix_order_on_this_thread`], where every map gets the
//! same fixed keys, so the same operations give the same order on every
//! run. The simulation runner calls it on the thread that runs a
//! simulation; nothing else should.
//!
//! The bottom layer of the engine: it imports no other module of the
//! crate.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

/// A hash map keyed by [`Seeded`].
pub type Map<K, V> = HashMap<K, V, Seeded>;

/// A hash set keyed by [`Seeded`].
pub type Set<K> = HashSet<K, Seeded>;

/// The fixed keys of maps made on a thread that fixed its order.
const FIXED_KEYS: (u64, u64) = (0x6372_6170_636f_696e, 0x7369_6d75_6c61_7465);

thread_local! {
    static FIXED: Cell<bool> = const { Cell::new(false) };
    /// Keys for the next random map (drawn once per thread, then stepped,
    /// as std's `RandomState` does).
    static NEXT_KEYS: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// From now on, every [`Map`] and [`Set`] made on this thread hashes with
/// the same fixed keys: their order depends on what was done to them
/// alone. For simulations; a node facing a real network keeps random
/// keys.
pub fn fix_order_on_this_thread() {
    FIXED.with(|fixed| fixed.set(true));
}

/// Whether maps made on this thread have fixed keys.
pub fn order_is_fixed_on_this_thread() -> bool {
    FIXED.with(Cell::get)
}

/// The [`BuildHasher`] of [`Map`] and [`Set`]: SipHash-2-4 under two
/// 64-bit keys, random unless the thread fixed them (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    k0: u64,
    k1: u64,
}

impl Default for Seeded {
    fn default() -> Self {
        let (k0, k1) = if order_is_fixed_on_this_thread() {
            FIXED_KEYS
        } else {
            NEXT_KEYS.with(|next| {
                let (k0, k1) = next.get().unwrap_or_else(rand::random);
                next.set(Some((k0.wrapping_add(1), k1)));
                (k0, k1)
            })
        };
        Self { k0, k1 }
    }
}

impl BuildHasher for Seeded {
    #[allow(deprecated)] // std's SipHasher: keyed, stable, and what RandomState runs.
    type Hasher = std::hash::SipHasher;

    #[allow(deprecated)]
    fn build_hasher(&self) -> Self::Hasher {
        std::hash::SipHasher::new_with_keys(self.k0, self.k1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: u32) -> Vec<u32> {
        let mut set: Set<u32> = Set::default();
        set.extend(0..n);
        set.into_iter().collect()
    }

    #[test]
    fn fixed_threads_walk_maps_in_one_order() {
        let runs: Vec<Vec<u32>> = (0..2)
            .map(|_| {
                std::thread::spawn(|| {
                    fix_order_on_this_thread();
                    order(1_000)
                })
                .join()
                .expect("no panic")
            })
            .collect();
        assert_eq!(runs[0], runs[1]);
    }

    #[test]
    fn other_threads_get_random_keys() {
        // Two maps of a thread that did not fix its order: different keys
        // (so a different order for 1,000 elements, but by a 1/1000! fluke).
        let a = std::thread::spawn(|| order(1_000))
            .join()
            .expect("no panic");
        let b = std::thread::spawn(|| order(1_000))
            .join()
            .expect("no panic");
        assert_ne!(a, b);
        assert_ne!(Seeded::default(), Seeded::default());
    }
}
