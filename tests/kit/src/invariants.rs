//! What must hold on any network that agreed, whatever its nodes did:
//! written once for the tests ([`crate::scenario::Run::check_invariants`])
//! and `examples/simulation.rs`. Each check answers `Err` with what is
//! wrong, so a test can panic with it and a program can report it.
//!
//! The ledger is replayed here, independently of core's state code, from
//! the rules of DESIGN §2.

use std::collections::HashMap;

use crapcoin_core::block::tx_root;
use crapcoin_core::hash::leading_zero_bits;
use crapcoin_core::{Address, Block, BlockHash, Chain, Handle, Params, State, TxId, validate};

/// What a check found wrong.
pub type Violation = String;

/// Balance and next nonce of every address, as replayed from a chain.
pub type Ledger = HashMap<Address, (u64, u64)>;

/// The tip every node in `nodes` holds.
///
/// # Errors
///
/// When two nodes hold different tips (or there is no node).
pub fn same_tip(nodes: &[Handle]) -> Result<BlockHash, Violation> {
    let Some(first) = nodes.first() else {
        return Err("no node".to_owned());
    };
    let tip = first.tip();
    match nodes.iter().find(|n| n.tip() != tip) {
        None => Ok(tip),
        Some(other) => Err(format!(
            "{} is at {} (height {}) but {} at {} (height {})",
            first.name(),
            tip.short(),
            first.height(),
            other.name(),
            other.tip().short(),
            other.height()
        )),
    }
}

/// The nodes agree on their chains up to `k` blocks below the lowest
/// tip: every node holds the same block at height `min height - k`
/// (and so, by the hash links, on every height below). Answers that
/// height.
///
/// # Errors
///
/// When two nodes hold different blocks there (or there is no node).
pub fn agree_up_to(nodes: &[Handle], k: u64) -> Result<u64, Violation> {
    let Some(lowest) = nodes.iter().map(Handle::height).min() else {
        return Err("no node".to_owned());
    };
    let height = lowest.saturating_sub(k);
    let at = |n: &Handle| n.with_chain(|c| c.block_at(height).map(|b| b.hash()));
    let first = at(&nodes[0]);
    match nodes.iter().find(|n| at(n) != first) {
        None => Ok(height),
        Some(other) => Err(format!(
            "{} and {} hold different blocks at height {height}",
            nodes[0].name(),
            other.name()
        )),
    }
}

/// `chain` (genesis first) re-validates block by block in a fresh
/// [`Chain`] at `now`, reaching its own last block.
///
/// # Errors
///
/// The first block that fails, and why.
pub fn revalidates(params: &Params, chain: &[Block], now: u64) -> Result<(), Violation> {
    let mut fresh = Chain::new(params.clone());
    for block in chain.iter().skip(1) {
        let height = block.header.height;
        let checked = validate::check(block.clone(), params)
            .map_err(|e| format!("agreed block {height} fails its checks: {e}"))?;
        let _outcome = fresh
            .insert(checked, now)
            .map_err(|e| format!("agreed block {height} does not re-validate: {e}"))?;
    }
    let tip = chain.last().map(Block::hash);
    if Some(fresh.tip()) == tip {
        Ok(())
    } else {
        Err(format!(
            "fresh chain tip: {:?} != {:?}",
            Some(fresh.tip()),
            tip
        ))
    }
}

/// Replays `chain` (genesis first) with a ledger written here: links,
/// difficulty, proof of work, transaction root, time, signatures, nonces,
/// no overspending, rewards and fees; and the supply conserved (the sum of
/// the balances is what the blocks minted).
///
/// # Errors
///
/// The first rule broken, and where.
pub fn replay_ledger(params: &Params, chain: &[Block], now: u64) -> Result<Ledger, Violation> {
    let chain_id = params.chain_id();
    let reward = params.block_reward;
    let mut ledger = Ledger::new();
    let Some(genesis) = chain.first() else {
        return Err("no agreed chain".to_owned());
    };
    ensure(genesis.hash() == chain_id, || "genesis".to_owned())?;
    for pair in chain.windows(2) {
        let (parent, block) = (&pair[0], &pair[1]);
        let h = &block.header;
        let at = h.height;
        ensure(h.height == parent.header.height + 1, || {
            format!("height at {at}")
        })?;
        ensure(h.prev_hash == parent.hash(), || format!("link at {at}"))?;
        ensure(h.difficulty == params.difficulty, || {
            format!("difficulty at {at}")
        })?;
        ensure(
            leading_zero_bits(&block.hash().0) >= u32::from(params.difficulty),
            || format!("proof of work at {at}"),
        )?;
        ensure(h.tx_root == tx_root(block.tx.as_ref()), || {
            format!("tx root at {at}")
        })?;
        ensure(h.timestamp >= parent.header.timestamp, || {
            format!("time at {at}")
        })?;
        ensure(h.timestamp <= now + params.max_future_ms, || {
            format!("block {at} is stamped too far ahead")
        })?;
        let mut fee = 0;
        if let Some(tx) = &block.tx {
            ensure(tx.amount > 0, || format!("zero amount at {at}"))?;
            let total = tx.total().ok_or_else(|| format!("overflow at {at}"))?;
            ensure(tx.verify_signature(&chain_id), || {
                format!("signature at {at}")
            })?;
            let sender = ledger.entry(tx.from).or_default();
            ensure(tx.nonce == sender.1, || format!("nonce at {at}"))?;
            ensure(total <= sender.0, || format!("overspend at {at}"))?;
            sender.0 -= total;
            sender.1 += 1;
            ledger.entry(tx.to).or_default().0 += tx.amount;
            fee = tx.fee;
        }
        ledger.entry(h.miner).or_default().0 += reward + fee;
    }
    let height = chain.len() as u64 - 1;
    let supply: u64 = ledger.values().map(|(balance, _)| balance).sum();
    ensure(supply == height * reward, || {
        format!("supply: {supply} != {}", height * reward)
    })?;
    Ok(ledger)
}

/// Conservation of supply in a node's `state` at `height`: the balances
/// add up to what the state says was minted, which is `height` rewards.
///
/// # Errors
///
/// Which of the three differs.
pub fn supply_conserved(state: &State, height: u64, reward: u64) -> Result<(), Violation> {
    let total: u64 = state.accounts().map(|(_, a)| a.balance).sum();
    ensure(total == height * reward, || {
        format!(
            "supply: balances add up to {total}, not {}",
            height * reward
        )
    })?;
    ensure(state.supply() == height * reward, || {
        format!("minted: {} != {}", state.supply(), height * reward)
    })
}

/// A node's `state` equals the independently replayed `ledger`, and
/// conserves supply.
///
/// # Errors
///
/// The first account that differs.
pub fn state_matches(
    ledger: &Ledger,
    state: &State,
    height: u64,
    reward: u64,
) -> Result<(), Violation> {
    supply_conserved(state, height, reward)?;
    for (address, (balance, nonce)) in ledger {
        let account = state.account(address);
        ensure(
            (account.balance, account.nonce) == (*balance, *nonce),
            || {
                format!(
                    "account {}: ({}, {}) != ({balance}, {nonce})",
                    address.short(),
                    account.balance,
                    account.nonce
                )
            },
        )?;
    }
    Ok(())
}

/// Every block of `known` (by hash; side branches too) passes every check
/// that does not need account state, and its parent is kept too.
///
/// # Errors
///
/// The first block that does not, and why.
pub fn kept_blocks(
    params: &Params,
    known: &HashMap<BlockHash, Block>,
    now: u64,
) -> Result<(), Violation> {
    let chain_id = params.chain_id();
    for block in known.values() {
        let h = &block.header;
        if h.height == 0 {
            ensure(block.hash() == chain_id, || "a second genesis".to_owned())?;
            continue;
        }
        let what = format!("kept block {} at {}", block.hash().short(), h.height);
        ensure(h.difficulty == params.difficulty, || {
            format!("{what}: difficulty")
        })?;
        ensure(
            leading_zero_bits(&block.hash().0) >= u32::from(params.difficulty),
            || format!("{what}: proof of work"),
        )?;
        ensure(h.tx_root == tx_root(block.tx.as_ref()), || {
            format!("{what}: tx root")
        })?;
        ensure(h.timestamp <= now + params.max_future_ms, || {
            format!("{what}: future")
        })?;
        if let Some(tx) = &block.tx {
            ensure(tx.amount > 0 && tx.total().is_some(), || {
                format!("{what}: amounts")
            })?;
            ensure(tx.verify_signature(&chain_id), || {
                format!("{what}: signature")
            })?;
        }
        let parent = known
            .get(&h.prev_hash)
            .ok_or_else(|| format!("{what}: parent not kept"))?;
        ensure(h.height == parent.header.height + 1, || {
            format!("{what}: height")
        })?;
        ensure(h.timestamp >= parent.header.timestamp, || {
            format!("{what}: before parent")
        })?;
    }
    Ok(())
}

/// How many times each transaction is on `chain`.
pub fn tx_counts(chain: &[Block]) -> HashMap<TxId, usize> {
    let mut count: HashMap<TxId, usize> = HashMap::new();
    for block in chain {
        if let Some(tx) = &block.tx {
            *count.entry(tx.id()).or_default() += 1;
        }
    }
    count
}

/// Every transfer of `accepted` is on `chain` exactly once, and no
/// transaction is on it twice. Answers how many of `accepted` are on it.
///
/// # Errors
///
/// A transfer missing or on the chain more than once.
pub fn each_once<'a>(
    chain: &[Block],
    accepted: impl IntoIterator<Item = &'a TxId>,
) -> Result<usize, Violation> {
    let count = tx_counts(chain);
    if let Some((txid, n)) = count.iter().find(|(_, n)| **n > 1) {
        return Err(format!(
            "transfer {} is on the chain {n} times",
            txid.short()
        ));
    }
    let mut included = 0;
    for txid in accepted {
        match count.get(txid) {
            Some(_) => included += 1,
            None => return Err(format!("transfer {} is not on the chain", txid.short())),
        }
    }
    Ok(included)
}

/// `Ok` when `holds`, else the violation `what` describes.
fn ensure(holds: bool, what: impl FnOnce() -> Violation) -> Result<(), Violation> {
    if holds { Ok(()) } else { Err(what()) }
}
