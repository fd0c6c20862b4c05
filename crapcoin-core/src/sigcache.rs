//! A process-wide cache of signatures already verified valid, as Bitcoin
//! Core keeps one: a transaction relayed to a node, then mined in a block,
//! is checked once, not twice; and in a simulation, where thousands of
//! nodes share one process, once for all of them rather than once a node.
//!
//! An entry is the SHA-256 of the chain id and the transaction's whole
//! encoding (signature included): a hit means these exact bytes were
//! checked on this chain, so the answer cannot differ. Only valid
//! signatures go in (a bad one costs its sender a strike; remembering it
//! would let junk fill the cache). Bounded: [`CAPACITY`] entries, the
//! oldest dropped first. [`set_enabled`] turns it off, to measure what it
//! saves.
//!
//! Beside the types: it imports the hashes and maps alone.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::hash::BlockHash;
use crate::maps::Set;

/// Entries kept at most (about 8 MiB).
pub const CAPACITY: usize = 1 << 17;

/// The on/off switch and the hit counters of a process-wide cache: this
/// one's, and [`crate::intern`]'s.
pub(crate) struct Switch {
    on: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Switch {
    /// On, nothing counted.
    pub(crate) const fn new() -> Self {
        Self {
            on: AtomicBool::new(true),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    pub(crate) fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Counts one lookup; returns `hit`.
    pub(crate) fn count(&self, hit: bool) -> bool {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

static SWITCH: Switch = Switch::new();

#[derive(Default)]
struct Cache {
    set: Set<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::default()))
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    cache().lock().unwrap_or_else(|p| p.into_inner())
}

/// Turns the cache on (the default) or off for the whole process.
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the cache is on.
pub fn enabled() -> bool {
    SWITCH.on()
}

/// Lookups that found the signature already verified, and those that did
/// not, since the process started.
pub fn stats() -> (u64, u64) {
    SWITCH.stats()
}

/// The cache key of a transaction encoded as `encoding` on `chain_id`.
pub(crate) fn key(chain_id: &BlockHash, encoding: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"crapcoin/sigcache");
    h.update(chain_id.0);
    h.update(encoding);
    h.finalize().into()
}

/// Whether `key`'s signature was verified valid before (counted).
pub(crate) fn contains(key: &[u8; 32]) -> bool {
    if !enabled() {
        return false;
    }
    SWITCH.count(lock().set.contains(key))
}

/// Remembers that `key`'s signature is valid.
pub(crate) fn insert(key: [u8; 32]) {
    if !enabled() {
        return;
    }
    let mut cache = lock();
    if cache.set.insert(key) {
        cache.order.push_back(key);
        while cache.order.len() > CAPACITY {
            if let Some(old) = cache.order.pop_front() {
                cache.set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::hash::{Address, BlockHash};
    use crate::tx::verify_batch;
    use crate::wallet::Wallet;

    /// A hit needs the same bytes on the same chain: a signature verified
    /// once is not taken for a changed transaction, nor on another chain,
    /// and a batch of cached good ones still finds the one bad among them.
    #[test]
    fn only_the_exact_verified_bytes_hit() {
        let w = Wallet::from_seed(3);
        let chain = BlockHash([7; 32]);
        let good = w.transfer(&chain, Address([9; 32]), 5, 1, 0);
        let other = w.transfer(&chain, Address([9; 32]), 6, 1, 1);
        assert!(good.verify_signature(&chain));
        assert!(other.verify_signature(&chain));
        let (hits, _) = super::stats();
        assert!(good.verify_signature(&chain));
        assert!(super::stats().0 > hits, "the second check was a hit");

        assert!(!good.verify_signature(&BlockHash([8; 32])));
        let mut tampered = good.clone();
        tampered.amount += 1;
        assert!(!tampered.verify_signature(&chain));
        let mut resigned = good.clone();
        resigned.signature.0[0] ^= 1;
        assert!(!resigned.verify_signature(&chain));

        assert_eq!(verify_batch(&chain, &[&good, &other]), Ok(()));
        assert_eq!(verify_batch(&chain, &[&good, &tampered, &other]), Err(1));
        assert_eq!(verify_batch(&chain, &[&other, &good, &resigned]), Err(2));
    }
}
