//! Validation: the context-free checks that turn a [`Block`] into a
//! [`CheckedBlock`], refusing with a [`ValidationError`] (defined in
//! [`crate::invalid`], below the block types, and re-exported here).
//!
//! Checks come in three layers, each needing more context:
//!
//! 1. [`check`] / [`check_batch`]: the block alone (size, difficulty, proof
//!    of work, tx root, amounts, signature) — done on receipt.
//! 2. [`check_header_link`]: against the parent header (height, timestamp)
//!    and the clock — done when the block enters the block tree.
//! 3. [`crate::state::State::apply`]: against account state (nonce, balance,
//!    overflow) — done when the block joins the best chain.

use crate::block::{Block, BlockHeader, CheckedBlock, tx_root};
use crate::hash::{BlockHash, leading_zero_bits};
pub use crate::invalid::ValidationError;
use crate::params::Params;
use crate::tx::{self, Transaction};

/// The checks of a transaction that need no state: amount and overflow.
/// The signature is checked separately so it can be batched.
///
/// # Errors
///
/// [`ValidationError::ZeroAmount`] or [`ValidationError::Overflow`].
pub fn check_tx_amounts(tx: &Transaction) -> Result<(), ValidationError> {
    if tx.amount == 0 {
        return Err(ValidationError::ZeroAmount);
    }
    tx.total().ok_or(ValidationError::Overflow)?;
    Ok(())
}

/// Checks a transaction on its own: amounts and signature.
///
/// # Errors
///
/// [`ValidationError::ZeroAmount`], [`ValidationError::Overflow`] or
/// [`ValidationError::BadSignature`].
pub fn check_tx(tx: &Transaction, chain_id: &BlockHash) -> Result<(), ValidationError> {
    check_tx_amounts(tx)?;
    if !tx.verify_signature(chain_id) {
        return Err(ValidationError::BadSignature);
    }
    Ok(())
}

/// Everything but the signature; returns the header hash it computed.
fn check_without_signature(block: &Block, params: &Params) -> Result<BlockHash, ValidationError> {
    let header = &block.header;
    if header.difficulty != params.difficulty {
        return Err(ValidationError::WrongDifficulty {
            got: header.difficulty,
            want: params.difficulty,
        });
    }
    let hash = header.hash();
    let zeros = leading_zero_bits(&hash.0);
    if zeros < u32::from(params.difficulty) {
        return Err(ValidationError::BadPow {
            zeros,
            need: params.difficulty,
        });
    }
    if header.tx_root != tx_root(block.tx.as_ref()) {
        return Err(ValidationError::BadTxRoot);
    }
    if let Some(tx) = &block.tx {
        check_tx_amounts(tx)?;
    }
    Ok(hash)
}

/// Checks a block on its own: difficulty, proof of work, tx root, amounts
/// and signature. Genesis (height 0) is not checked here: it is derived,
/// never received, and [`crate::chain::Chain`] compares it instead.
///
/// # Errors
///
/// The first failing check's [`ValidationError`].
pub fn check(block: Block, params: &Params) -> Result<CheckedBlock, ValidationError> {
    let hash = check_without_signature(&block, params)?;
    if let Some(tx) = &block.tx
        && !tx.verify_signature(&params.chain_id())
    {
        return Err(ValidationError::BadSignature);
    }
    Ok(CheckedBlock::new_unchecked(block, hash))
}

/// [`check`] for many blocks, verifying all signatures in one ed25519 batch
/// (about twice as fast as one by one). On failure, returns the index of the
/// first bad block and its error; nothing is returned checked.
///
/// # Errors
///
/// `(index, error)` of the first block that fails.
pub fn check_batch(
    blocks: Vec<Block>,
    params: &Params,
) -> Result<Vec<CheckedBlock>, (usize, ValidationError)> {
    check_batch_naming(blocks, params).map_err(|(i, _, e)| (i, e))
}

/// [`check_batch`] whose error also carries the bad block's hash (for the
/// rejection event), computed only when a block fails.
pub(crate) fn check_batch_naming(
    blocks: Vec<Block>,
    params: &Params,
) -> Result<Vec<CheckedBlock>, (usize, BlockHash, ValidationError)> {
    let mut hashes = Vec::with_capacity(blocks.len());
    let mut first_error = None;
    for (i, block) in blocks.iter().enumerate() {
        match check_without_signature(block, params) {
            Ok(hash) => hashes.push(hash),
            Err(e) => {
                first_error = Some((i, e));
                break;
            }
        }
    }
    // Signatures of the blocks before the first other failure: a bad one
    // there is the first bad block, as checking one by one would find.
    let with_tx: Vec<(usize, &Transaction)> = blocks[..hashes.len()]
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.tx.as_ref().map(|tx| (i, tx)))
        .collect();
    if !with_tx.is_empty() {
        let txs: Vec<&Transaction> = with_tx.iter().map(|(_, tx)| *tx).collect();
        if let Err(bad) = tx::verify_batch(&params.chain_id(), &txs) {
            let i = with_tx[bad].0;
            return Err((i, hashes[i], ValidationError::BadSignature));
        }
    }
    if let Some((i, e)) = first_error {
        return Err((i, blocks[i].hash(), e));
    }
    Ok(blocks
        .into_iter()
        .zip(hashes)
        .map(|(b, h)| CheckedBlock::new_unchecked(b, h))
        .collect())
}

/// Checks a header against its parent's header and the receiver's clock:
/// height is the parent's plus one, timestamp not before the parent's and
/// not more than `max_future_ms` ahead of `now_ms`.
///
/// # Errors
///
/// [`ValidationError::BadHeight`], [`ValidationError::TimestampBeforeParent`]
/// or [`ValidationError::TimestampTooNew`].
pub fn check_header_link(
    header: &BlockHeader,
    parent: &BlockHeader,
    params: &Params,
    now_ms: u64,
) -> Result<(), ValidationError> {
    let want = parent.height.saturating_add(1);
    if header.height != want {
        return Err(ValidationError::BadHeight {
            got: header.height,
            want,
        });
    }
    if header.timestamp < parent.timestamp {
        return Err(ValidationError::TimestampBeforeParent {
            timestamp: header.timestamp,
            parent: parent.timestamp,
        });
    }
    if header.timestamp > now_ms.saturating_add(params.max_future_ms) {
        return Err(ValidationError::TimestampTooNew {
            timestamp: header.timestamp,
            now: now_ms,
            max_future_ms: params.max_future_ms,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_list_matches_reason() {
        let sample = [
            ValidationError::BadTxRoot,
            ValidationError::Overflow,
            ValidationError::BadNonce { got: 1, want: 0 },
        ];
        for e in sample {
            assert!(ValidationError::REASONS.contains(&e.reason()));
        }
        let json = serde_json::to_value(ValidationError::BadNonce { got: 1, want: 0 })
            .expect("serialises");
        assert_eq!(json["reason"], "bad_nonce");
    }
}
