//! A process-wide interner of checked blocks: in a simulation, where
//! thousands of nodes share one process, a block is checked once and held
//! once, in one allocation every node's chain points to, rather than
//! checked again and copied by each node that receives it.
//!
//! An entry is keyed by the chain id and the block's hash and holds a
//! [`Weak`] reference to the [`CheckedBlock`]: a block no node holds any
//! more is freed, and its entry is dead. A received block reuses an entry
//! only if the entry is alive and the block is equal to it in full (header
//! and transaction, signature included), so a peer sending another body
//! under a known header hash is still checked, refused, and struck. The
//! chain id is in the key because the context-free checks depend on the
//! parameters (difficulty, and the chain id signed into every
//! transaction): both are committed to by the chain id, so an equal block
//! under an equal chain id cannot get another answer.
//!
//! Only blocks that passed the checks go in (junk cannot fill it).
//! Bounded: when it reaches [`CAPACITY`] entries, the dead ones are
//! dropped; if more than half are still alive, all are dropped (the blocks
//! stay with the nodes that hold them; only later copies of them are
//! checked and allocated again). Whether a lookup hits never changes an
//! answer, only the work done, so a simulation's results do not depend on
//! it. [`set_enabled`] turns it off, to measure what it saves.
//!
//! Beside the types: it imports the blocks, hashes, maps and the checks.

use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::block::{Block, CheckedBlock};
use crate::hash::BlockHash;
use crate::invalid::ValidationError;
use crate::maps::Map;
use crate::params::Params;
use crate::sigcache::Switch;
use crate::validate;

/// Entries kept at most (about 4 MiB of table; the blocks themselves
/// belong to the nodes holding them).
pub const CAPACITY: usize = 1 << 16;

static SWITCH: Switch = Switch::new();

type Key = (BlockHash, BlockHash);

fn table() -> &'static Mutex<Map<Key, Weak<CheckedBlock>>> {
    static TABLE: OnceLock<Mutex<Map<Key, Weak<CheckedBlock>>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(Map::default()))
}

fn lock() -> std::sync::MutexGuard<'static, Map<Key, Weak<CheckedBlock>>> {
    table().lock().unwrap_or_else(|p| p.into_inner())
}

/// Turns the interner on (the default) or off for the whole process.
pub fn set_enabled(on: bool) {
    SWITCH.set(on);
}

/// Whether the interner is on.
pub fn enabled() -> bool {
    SWITCH.on()
}

/// Lookups that found an equal block alive, and those that did not, since
/// the process started.
pub fn stats() -> (u64, u64) {
    SWITCH.stats()
}

/// Entries held now, dead ones included.
pub fn len() -> usize {
    lock().len()
}

/// The interned block equal to `block` on `chain_id`, if one is alive
/// (counted). `hash` is `block`'s header hash.
pub(crate) fn lookup(
    chain_id: &BlockHash,
    hash: &BlockHash,
    block: &Block,
) -> Option<Arc<CheckedBlock>> {
    if !enabled() {
        return None;
    }
    let found = lock()
        .get(&(*chain_id, *hash))
        .and_then(Weak::upgrade)
        .filter(|held| held.block() == block);
    SWITCH.count(found.is_some());
    found
}

/// Remembers a checked block of `chain_id` (no-op when off).
pub(crate) fn insert(chain_id: &BlockHash, block: &Arc<CheckedBlock>) {
    if !enabled() {
        return;
    }
    let mut table = lock();
    if table.len() >= CAPACITY {
        table.retain(|_, weak| weak.strong_count() > 0);
        if table.len() > CAPACITY / 2 {
            table.clear();
        }
    }
    table.insert((*chain_id, block.hash()), Arc::downgrade(block));
}

/// [`validate::check`] through the interner: an equal block of `chain_id`
/// already checked and still held is returned as is (the same
/// allocation), anything else is checked and, if valid, interned.
/// `chain_id` must be `params.chain_id()` (passed in because computing it
/// hashes the genesis block).
///
/// # Errors
///
/// The first failing check's [`ValidationError`], as [`validate::check`].
pub fn check(
    block: Block,
    params: &Params,
    chain_id: &BlockHash,
) -> Result<Arc<CheckedBlock>, ValidationError> {
    if enabled() {
        let hash = block.hash();
        if let Some(held) = lookup(chain_id, &hash, &block) {
            return Ok(held);
        }
    }
    let checked = Arc::new(validate::check(block, params)?);
    insert(chain_id, &checked);
    Ok(checked)
}

/// [`validate::check_batch_naming`] through the interner: blocks equal to
/// live interned ones are taken as they are, the rest are checked in one
/// batch and interned. Every interned block is valid, so the first bad
/// block of the rest is the first bad block of the run.
///
/// # Errors
///
/// The index (in `blocks`), hash and error of the first bad block.
pub(crate) fn check_batch_naming(
    blocks: Vec<Block>,
    params: &Params,
    chain_id: &BlockHash,
) -> Result<Vec<Arc<CheckedBlock>>, (usize, BlockHash, ValidationError)> {
    let mut held: Vec<Option<Arc<CheckedBlock>>> = Vec::with_capacity(blocks.len());
    let mut rest = Vec::new();
    let mut rest_at = Vec::new();
    for (i, block) in blocks.into_iter().enumerate() {
        let found = if enabled() {
            lookup(chain_id, &block.hash(), &block)
        } else {
            None
        };
        if found.is_none() {
            rest.push(block);
            rest_at.push(i);
        }
        held.push(found);
    }
    let mut checked = if rest.is_empty() {
        Vec::new()
    } else {
        validate::check_batch_naming(rest, params).map_err(|(i, hash, e)| (rest_at[i], hash, e))?
    }
    .into_iter();
    Ok(held
        .into_iter()
        .map(|found| {
            found.unwrap_or_else(|| {
                let fresh = Arc::new(checked.next().expect("one checked block per unchecked"));
                insert(chain_id, &fresh);
                fresh
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::block::{Block, BlockHeader, tx_root};
    use crate::hash::Address;
    use crate::params::Params;
    use crate::validate::ValidationError;
    use crate::wallet::Wallet;

    /// Mines a block on genesis carrying `tx` (difficulty 1: a few tries).
    fn mined(params: &Params, tx: Option<crate::tx::Transaction>) -> Block {
        let genesis = params.genesis();
        let mut header = BlockHeader {
            height: 1,
            prev_hash: genesis.hash(),
            timestamp: params.genesis_timestamp + 1,
            difficulty: params.difficulty,
            nonce: 0,
            miner: Address([1; 32]),
            tx_root: tx_root(tx.as_ref()),
        };
        while crate::hash::leading_zero_bits(&header.hash().0) < u32::from(params.difficulty) {
            header.nonce += 1;
        }
        Block { header, tx }
    }

    /// An equal block gets the same allocation back while it is held; a
    /// block with the same header but another transaction is checked (and
    /// refused) even with the genuine one interned; another chain does not
    /// share; a block nobody holds is not kept alive.
    #[test]
    fn only_an_equal_live_block_is_shared() {
        let params = Params::with_difficulty(1);
        let chain = params.chain_id();
        let w = Wallet::from_seed(11);
        let tx = w.transfer(&chain, Address([9; 32]), 5, 1, 0);
        let block = mined(&params, Some(tx.clone()));

        let first = super::check(block.clone(), &params, &chain).expect("valid");
        let again = super::check(block.clone(), &params, &chain).expect("valid");
        assert!(Arc::ptr_eq(&first, &again), "an equal block is shared");

        // Same header (so same hash), another transaction: the tx root no
        // longer matches, and the interned genuine block must not hide it.
        let mut forged = block.clone();
        forged.tx = Some(w.transfer(&chain, Address([9; 32]), 6, 1, 0));
        assert_eq!(forged.hash(), block.hash());
        assert_eq!(
            super::check(forged, &params, &chain).map(|_| ()),
            Err(ValidationError::BadTxRoot)
        );

        // Another chain (another difficulty) never reuses this entry.
        let other = Params::with_difficulty(2);
        assert!(super::check(block.clone(), &other, &other.chain_id()).is_err());

        drop((first, again));
        let fresh = super::check(block, &params, &chain).expect("valid");
        assert_eq!(
            Arc::strong_count(&fresh),
            1,
            "the dead entry was not revived"
        );
    }
}
