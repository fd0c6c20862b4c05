//! Proof-of-work search.
//!
//! [`search`] tries a bounded number of nonces and returns; [`mine`] loops
//! over it in small chunks, yielding to the async executor between chunks so
//! it never blocks other tasks for long, and stops as soon as its
//! [`Cancel`] says so (for example when a better tip arrives).

use sha2::Digest;

use crate::block::BlockHeader;
use crate::hash::leading_zero_bits;

/// Nonces tried between two yields: about 0.3 ms of hashing.
pub const CHUNK: u64 = 1024;

/// Tries nonces `header.nonce .. header.nonce + tries` and returns true with
/// `header.nonce` set to the first that meets the difficulty.
pub fn search(header: &mut BlockHeader, tries: u64) -> bool {
    let prefix = header.hasher_before_nonce();
    let need = u32::from(header.difficulty);
    let start = header.nonce;
    for i in 0..tries {
        let nonce = start.wrapping_add(i);
        let mut h = prefix.clone();
        h.update(nonce.to_be_bytes());
        let hash: [u8; 32] = h.finalize().into();
        if leading_zero_bits(&hash) >= need {
            header.nonce = nonce;
            return true;
        }
    }
    header.nonce = start.wrapping_add(tries);
    false
}

/// Whether a mining job should stop.
pub trait Cancel {
    /// True once the job is no longer wanted.
    fn is_cancelled(&self) -> bool;
}

impl<F: Fn() -> bool> Cancel for F {
    fn is_cancelled(&self) -> bool {
        self()
    }
}

impl Cancel for tokio_util::sync::CancellationToken {
    fn is_cancelled(&self) -> bool {
        tokio_util::sync::CancellationToken::is_cancelled(self)
    }
}

/// Mines `header` until a nonce meets its difficulty, or `cancel` fires
/// (then `None`). Cooperative: yields after every [`CHUNK`] nonces.
pub async fn mine(mut header: BlockHeader, cancel: impl Cancel) -> Option<BlockHeader> {
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        if search(&mut header, CHUNK) {
            return Some(header);
        }
        tokio::task::yield_now().await;
    }
}

/// Mines synchronously without a limit: for tests, examples and forging.
pub fn mine_blocking(mut header: BlockHeader) -> BlockHeader {
    while !search(&mut header, CHUNK * 64) {}
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Address, BlockHash};

    fn header(difficulty: u8) -> BlockHeader {
        BlockHeader {
            height: 1,
            prev_hash: BlockHash::ZERO,
            timestamp: 1,
            difficulty,
            nonce: 0,
            miner: Address::ZERO,
            tx_root: BlockHash::ZERO,
        }
    }

    #[test]
    fn search_finds_a_valid_nonce() {
        let mut h = header(10);
        assert!(search(&mut h, 1 << 20));
        assert!(h.meets_difficulty());
    }

    #[tokio::test]
    async fn mine_stops_when_cancelled() {
        // 200 bits of work never completes; cancellation must end it.
        let h = header(200);
        let token = tokio_util::sync::CancellationToken::new();
        token.cancel();
        assert_eq!(mine(h, token).await, None);
    }
}
