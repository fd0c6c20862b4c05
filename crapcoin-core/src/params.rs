//! Network parameters and the genesis block derived from them.

use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockHeader, CheckedBlock, empty_tx_root};
use crate::hash::{self, Address, BlockHash, tag};

/// The consensus parameters of a network. Nodes with equal parameters derive
/// the same genesis block and so can talk; any difference splits them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// A name that keeps separate networks apart (part of the genesis).
    pub network: String,
    /// Required leading zero bits of every header hash.
    pub difficulty: u8,
    /// Coins minted to each block's miner.
    pub block_reward: u64,
    /// Genesis time, in milliseconds since the Unix epoch.
    pub genesis_timestamp: u64,
    /// How far ahead of a node's clock a block's timestamp may be.
    pub max_future_ms: u64,
}

impl Default for Params {
    /// `crapnet`: 12 bits of work (a block takes about a millisecond), 50
    /// coins a block, and the two-minute future limit.
    fn default() -> Self {
        Self {
            network: "crapnet".to_owned(),
            difficulty: 12,
            block_reward: 50,
            genesis_timestamp: 1_764_000_000_000,
            max_future_ms: 2 * 60 * 1000,
        }
    }
}

impl Params {
    /// Parameters for tests and simulations: `difficulty` bits, defaults
    /// otherwise.
    pub fn with_difficulty(difficulty: u8) -> Self {
        Self {
            difficulty,
            ..Self::default()
        }
    }

    /// The genesis block. It carries no transaction and pays nobody; its
    /// `prev_hash` commits to every parameter, so different networks have
    /// different genesis hashes. Genesis needs no proof of work: nobody mines
    /// it, every node derives it.
    pub fn genesis(&self) -> CheckedBlock {
        let mut commit = Vec::new();
        commit.extend_from_slice(&(self.network.len() as u64).to_be_bytes());
        commit.extend_from_slice(self.network.as_bytes());
        commit.push(self.difficulty);
        commit.extend_from_slice(&self.block_reward.to_be_bytes());
        commit.extend_from_slice(&self.genesis_timestamp.to_be_bytes());
        commit.extend_from_slice(&self.max_future_ms.to_be_bytes());
        let header = BlockHeader {
            height: 0,
            prev_hash: BlockHash(hash::tagged_hash(tag::GENESIS, &commit)),
            timestamp: self.genesis_timestamp,
            difficulty: self.difficulty,
            nonce: 0,
            miner: Address::ZERO,
            tx_root: empty_tx_root(),
        };
        let block = Block { header, tx: None };
        let hash = block.hash();
        CheckedBlock::new_unchecked(block, hash)
    }

    /// The chain id: the genesis hash, signed into every transaction.
    pub fn chain_id(&self) -> BlockHash {
        self.genesis().hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_deterministic_and_parameter_bound() {
        let p = Params::default();
        assert_eq!(p.genesis(), p.genesis());
        let other = Params::with_difficulty(13);
        assert_ne!(p.chain_id(), other.chain_id());
        let renamed = Params {
            network: "other".into(),
            ..Params::default()
        };
        assert_ne!(p.chain_id(), renamed.chain_id());
    }
}
