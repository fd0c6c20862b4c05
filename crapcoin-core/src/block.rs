//! Blocks: a proof-of-work header and at most one transaction.
//!
//! [`Block`] is what arrives from the network: unchecked. [`CheckedBlock`]
//! can only be made by [`crate::validate`], so a value of that type has passed
//! every check that needs no chain (proof of work, difficulty, tx root,
//! signature, amounts). [`BlockJson`] is the wire form, which carries the
//! hash for convenience; the receiver recomputes it and refuses a mismatch.

use std::ops::Deref;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::encode::{Decode, DecodeError, Encode, Reader};
use crate::hash::{self, Address, BlockHash, TxId, tag};
use crate::invalid::ValidationError;
use crate::tx::{TX_ENCODED_LEN, Transaction};

/// The part of a block that proof of work covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// Distance from genesis (genesis is 0).
    pub height: u64,
    /// Hash of the parent block's header.
    pub prev_hash: BlockHash,
    /// When the block was mined, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Required leading zero bits of the header hash; fixed by the network.
    pub difficulty: u8,
    /// The proof-of-work counter miners vary.
    pub nonce: u64,
    /// Who is paid `block_reward + fee` for this block.
    pub miner: Address,
    /// Commits to the transaction: its [`TxId`], or the empty root.
    pub tx_root: BlockHash,
}

/// Length of a header's canonical encoding.
pub const HEADER_ENCODED_LEN: usize = 8 + 32 + 8 + 1 + 32 + 32 + 8;

impl BlockHeader {
    /// The header's hash: tagged SHA-256 of its canonical encoding.
    pub fn hash(&self) -> BlockHash {
        let mut h = self.hasher_before_nonce();
        h.update(self.nonce.to_be_bytes());
        BlockHash(h.finalize().into())
    }

    /// A hasher that has absorbed everything but the nonce, which the
    /// encoding puts last so miners hash the prefix once.
    pub(crate) fn hasher_before_nonce(&self) -> sha2::Sha256 {
        let mut h = hash::tagged(tag::HEADER);
        let mut prefix = Vec::with_capacity(HEADER_ENCODED_LEN);
        self.encode_without_nonce(&mut prefix);
        h.update(&prefix);
        h
    }

    fn encode_without_nonce(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.prev_hash.0);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.push(self.difficulty);
        out.extend_from_slice(&self.miner.0);
        out.extend_from_slice(&self.tx_root.0);
    }

    /// Whether the header hash has at least `difficulty` leading zero bits.
    pub fn meets_difficulty(&self) -> bool {
        hash::leading_zero_bits(&self.hash().0) >= u32::from(self.difficulty)
    }

    /// The work this header proves: `2^difficulty` expected hashes.
    pub fn work(&self) -> u128 {
        1u128 << self.difficulty.min(127)
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.encode_without_nonce(out);
        out.extend_from_slice(&self.nonce.to_be_bytes());
    }
}

impl Decode for BlockHeader {
    const MAX_ENCODED_LEN: usize = HEADER_ENCODED_LEN;

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let height = r.u64()?;
        let prev_hash = BlockHash(r.array()?);
        let timestamp = r.u64()?;
        let difficulty = r.u8()?;
        let miner = Address(r.array()?);
        let tx_root = BlockHash(r.array()?);
        let nonce = r.u64()?;
        Ok(Self {
            height,
            prev_hash,
            timestamp,
            difficulty,
            nonce,
            miner,
            tx_root,
        })
    }
}

/// The tx root of a block without a transaction.
pub fn empty_tx_root() -> BlockHash {
    BlockHash(hash::tagged_hash(tag::EMPTY_TX_ROOT, &[]))
}

/// The tx root committing to `tx`.
pub fn tx_root(tx: Option<&Transaction>) -> BlockHash {
    match tx {
        Some(tx) => BlockHash(tx.id().0),
        None => empty_tx_root(),
    }
}

/// A block as received: not yet validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Block {
    /// The proof-of-work header.
    pub header: BlockHeader,
    /// The one transfer this block carries, if any. The coinbase is
    /// implicit: the miner is paid `block_reward + fee`.
    pub tx: Option<Transaction>,
}

/// Length of the longest canonical block encoding.
pub const MAX_BLOCK_ENCODED_LEN: usize = HEADER_ENCODED_LEN + 1 + TX_ENCODED_LEN;

impl Block {
    /// The header hash, which is the block's identity.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The id of the carried transaction, if any.
    pub fn txid(&self) -> Option<TxId> {
        self.tx.as_ref().map(Transaction::id)
    }

    /// The wire form, with the hash filled in.
    pub fn to_json(&self) -> BlockJson {
        BlockJson {
            hash: self.hash(),
            header: self.header.clone(),
            tx: self.tx.clone(),
        }
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        match &self.tx {
            None => out.push(0),
            Some(tx) => {
                out.push(1);
                tx.encode_to(out);
            }
        }
    }
}

impl Decode for Block {
    const MAX_ENCODED_LEN: usize = MAX_BLOCK_ENCODED_LEN;

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(r)?;
        let tx = match r.u8()? {
            0 => None,
            1 => Some(Transaction::decode_from(r)?),
            tag => {
                return Err(DecodeError::BadTag {
                    what: "tx count",
                    tag,
                });
            }
        };
        Ok(Self { header, tx })
    }
}

impl Serialize for Block {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Borrowing twin of `BlockJson`, so serialising does not clone.
        #[derive(Serialize)]
        struct Wire<'a> {
            hash: BlockHash,
            header: &'a BlockHeader,
            tx: &'a Option<Transaction>,
        }
        Wire {
            hash: self.hash(),
            header: &self.header,
            tx: &self.tx,
        }
        .serialize(s)
    }
}

/// A block in JSON: header, optional transaction and the claimed `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockJson {
    /// The sender's claim of the header hash; checked, never trusted.
    pub hash: BlockHash,
    /// The header.
    pub header: BlockHeader,
    /// The transaction, if any.
    #[serde(default)]
    pub tx: Option<Transaction>,
}

impl BlockJson {
    /// The block, once its claimed hash matches the recomputed one.
    ///
    /// # Errors
    ///
    /// [`ValidationError::BadHash`] on a mismatch.
    pub fn into_block(self) -> Result<Block, ValidationError> {
        let block = Block {
            header: self.header,
            tx: self.tx,
        };
        let computed = block.hash();
        if computed != self.hash {
            return Err(ValidationError::BadHash {
                claimed: self.hash,
                computed,
            });
        }
        Ok(block)
    }

    /// Parses one block from JSON bytes, refusing oversize input first.
    ///
    /// # Errors
    ///
    /// [`ValidationError::TooLarge`], [`ValidationError::Malformed`] or
    /// [`ValidationError::BadHash`].
    pub fn parse(bytes: &[u8]) -> Result<Block, ValidationError> {
        if bytes.len() > MAX_BLOCK_JSON_LEN {
            return Err(ValidationError::TooLarge {
                size: bytes.len(),
                max: MAX_BLOCK_JSON_LEN,
            });
        }
        let json: BlockJson =
            serde_json::from_slice(bytes).map_err(|e| ValidationError::Malformed {
                detail: e.to_string(),
            })?;
        json.into_block()
    }
}

/// The largest JSON body a single block may take (its honest form is about
/// 900 bytes; the rest is room for whitespace).
pub const MAX_BLOCK_JSON_LEN: usize = 4 * 1024;

/// A block that passed every context-free check. Only [`crate::validate`]
/// makes one; its hash is computed once and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBlock {
    block: Block,
    hash: BlockHash,
}

impl CheckedBlock {
    /// Wraps a block whose checks have passed. Crate-private on purpose.
    pub(crate) fn new_unchecked(block: Block, hash: BlockHash) -> Self {
        Self { block, hash }
    }

    /// The block's hash (computed once, at check time).
    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// The unchecked block, e.g. to send it on.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Gives the block back.
    pub fn into_block(self) -> Block {
        self.block
    }
}

impl Deref for CheckedBlock {
    type Target = Block;

    fn deref(&self) -> &Block {
        &self.block
    }
}

impl Serialize for CheckedBlock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.block.serialize(s)
    }
}
