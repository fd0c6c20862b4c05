//! Transactions: one signed transfer between two accounts.

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::encode::{Decode, DecodeError, Encode, Reader};
use crate::hash::{self, Address, BlockHash, Signature, TxId, tag};
use crate::invalid::ValidationError;
use crate::sigcache;

/// A signed transfer of `amount` from `from` to `to`, paying `fee` to the
/// miner of the block that includes it.
///
/// A transaction is valid on a chain iff its signature over
/// [`Transaction::signing_bytes`] verifies for `from`, `nonce` is the
/// sender's next nonce, `amount > 0`, `amount + fee` does not overflow and
/// is at most the sender's balance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// The paying account; its key signs the transaction.
    pub from: Address,
    /// The receiving account.
    pub to: Address,
    /// Coins moved; must be positive.
    pub amount: u64,
    /// Coins paid to the miner on top of `amount`.
    pub fee: u64,
    /// The sender's transaction count before this one: makes each
    /// transaction usable once and orders a sender's transactions.
    pub nonce: u64,
    /// ed25519 signature by `from` over [`Transaction::signing_bytes`].
    pub signature: Signature,
}

/// Length of a transaction's canonical encoding.
pub const TX_ENCODED_LEN: usize = 32 + 32 + 8 + 8 + 8 + 64;

/// The largest JSON body a single transaction may take (its honest form
/// is about 400 bytes; the rest is room for whitespace).
pub const MAX_TX_JSON_LEN: usize = 2 * 1024;

impl Transaction {
    /// The message the sender signs: a domain tag, the network's chain id
    /// (its genesis hash, so a signature is worthless on another network)
    /// and every field but the signature.
    pub fn signing_bytes(
        chain_id: &BlockHash,
        from: &Address,
        to: &Address,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + tag::SIGN.len() + 32 * 3 + 24);
        out.push(u8::try_from(tag::SIGN.len()).expect("short tag"));
        out.extend_from_slice(tag::SIGN);
        out.extend_from_slice(&chain_id.0);
        out.extend_from_slice(&from.0);
        out.extend_from_slice(&to.0);
        out.extend_from_slice(&amount.to_be_bytes());
        out.extend_from_slice(&fee.to_be_bytes());
        out.extend_from_slice(&nonce.to_be_bytes());
        out
    }

    /// This transaction's signing message on the network `chain_id`.
    pub fn message(&self, chain_id: &BlockHash) -> Vec<u8> {
        Self::signing_bytes(
            chain_id,
            &self.from,
            &self.to,
            self.amount,
            self.fee,
            self.nonce,
        )
    }

    /// The transaction id: tagged SHA-256 over the canonical encoding,
    /// signature included.
    pub fn id(&self) -> TxId {
        let mut h = hash::tagged(tag::TX);
        h.update(self.encode());
        TxId(h.finalize().into())
    }

    /// A transaction from its JSON form, size-capped at
    /// [`MAX_TX_JSON_LEN`]. The signature is not checked here.
    ///
    /// # Errors
    ///
    /// [`ValidationError::TooLarge`] or [`ValidationError::Malformed`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationError> {
        if bytes.len() > MAX_TX_JSON_LEN {
            return Err(ValidationError::TooLarge {
                size: bytes.len(),
                max: MAX_TX_JSON_LEN,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| ValidationError::Malformed {
            detail: e.to_string(),
        })
    }

    /// `amount + fee`, or `None` when it overflows.
    pub fn total(&self) -> Option<u64> {
        self.amount.checked_add(self.fee)
    }

    /// Checks the signature alone (once per process: see
    /// [`crate::sigcache`]).
    pub fn verify_signature(&self, chain_id: &BlockHash) -> bool {
        let cached = sigcache::key(chain_id, &self.encode());
        if sigcache::contains(&cached) {
            return true;
        }
        let valid = self.verify_uncached(chain_id);
        if valid {
            sigcache::insert(cached);
        }
        valid
    }

    fn verify_uncached(&self, chain_id: &BlockHash) -> bool {
        let Ok(key) = ed25519_consensus::VerificationKey::try_from(self.from.0) else {
            return false;
        };
        let sig = ed25519_consensus::Signature::from(self.signature.0);
        key.verify(&sig, &self.message(chain_id)).is_ok()
    }
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.from.0);
        out.extend_from_slice(&self.to.0);
        out.extend_from_slice(&self.amount.to_be_bytes());
        out.extend_from_slice(&self.fee.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.signature.0);
    }

    /// Sized once: a node takes a transaction's id (and its signature
    /// cache key) from these bytes on every push it receives, and growing
    /// an empty vector to [`TX_ENCODED_LEN`] took four allocations.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TX_ENCODED_LEN);
        self.encode_to(&mut out);
        out
    }
}

impl Decode for Transaction {
    const MAX_ENCODED_LEN: usize = TX_ENCODED_LEN;

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            from: Address(r.array()?),
            to: Address(r.array()?),
            amount: r.u64()?,
            fee: r.u64()?,
            nonce: r.u64()?,
            signature: Signature(r.array()?),
        })
    }
}

/// Checks many signatures at once with ed25519 batch verification (ZIP-215
/// rules, so a batch accepts exactly what one-by-one checks accept).
///
/// Returns the index of the first bad signature, found by checking one by
/// one only after the batch failed.
///
/// Signatures verified before ([`crate::sigcache`]) are not checked again;
/// the rest go into the cache once the batch passes.
pub fn verify_batch(chain_id: &BlockHash, txs: &[&Transaction]) -> Result<(), usize> {
    let keys: Vec<[u8; 32]> = txs
        .iter()
        .map(|tx| sigcache::key(chain_id, &tx.encode()))
        .collect();
    let todo: Vec<usize> = (0..txs.len())
        .filter(|&i| !sigcache::contains(&keys[i]))
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let messages: Vec<Vec<u8>> = todo.iter().map(|&i| txs[i].message(chain_id)).collect();
    let mut verifier = ed25519_consensus::batch::Verifier::new();
    for (&i, msg) in todo.iter().zip(&messages) {
        let key = ed25519_consensus::VerificationKeyBytes::from(txs[i].from.0);
        let sig = ed25519_consensus::Signature::from(txs[i].signature.0);
        verifier.queue((key, sig, msg));
    }
    // The batch's random coefficients change nothing it decides (it
    // accepts exactly what one-by-one checks accept), so OS randomness
    // here leaves a simulation's run as its seed says.
    if verifier.verify(rand_core06::OsRng).is_ok() {
        for &i in &todo {
            sigcache::insert(keys[i]);
        }
        return Ok(());
    }
    Err(todo
        .into_iter()
        .find(|&i| !txs[i].verify_uncached(chain_id))
        .unwrap_or(0))
}
