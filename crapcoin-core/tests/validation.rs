//! Every [`ValidationError`] reason, produced through the public API, next to
//! a near miss — the smallest change that makes the input valid — that the
//! same API accepts.
//!
//! The table is the specification: each row names a case, builds its input
//! and says what must come out. A new variant without a row fails
//! `table_covers_every_reason`.

use std::collections::BTreeSet;
use std::time::Duration;

use crapcoin_core::block::{BlockJson, MAX_BLOCK_JSON_LEN, empty_tx_root};
use crapcoin_core::chain::Outcome;
use crapcoin_core::node::TxError;
use crapcoin_core::state::State;
use crapcoin_core::{
    Block, BlockHash, Chain, CheckedBlock, Node, Params, Transaction, ValidationError, validate,
};

use ValidationError as E;
use kit::chain::{
    addr, block_on, chain_id, forge, funded_chain, now, params, pay, submit, tip_header, wallet,
};

/// The wallet that mined block 1 of [`funded_chain`]: 50 coins, nonce 0.
const RICH: u64 = 1;
/// Receives transfers.
const PAYEE: u64 = 2;
/// Mines the blocks under test.
const MINER: u64 = 3;
/// Holds nothing.
const BROKE: u64 = 4;

/// An input and the public entry point it goes through.
enum Input {
    /// JSON bytes: `BlockJson::parse`, then `validate::check`, then
    /// `Chain::insert` at [`now`].
    Json { chain: Chain, bytes: Vec<u8> },
    /// `validate::check` alone (what a node does on receipt).
    Check { block: Block },
    /// `validate::check`, then `Chain::insert` at [`now`].
    Block { chain: Chain, block: Block },
    /// A block that is already checked (e.g. a genesis): `Chain::insert`.
    Checked { chain: Chain, block: CheckedBlock },
    /// `validate::check_batch`, then `Chain::insert_segment` at [`now`].
    Segment { chain: Chain, blocks: Vec<Block> },
    /// `State::apply` with the given reward.
    Apply {
        state: State,
        block: Block,
        reward: u64,
    },
    /// `Handle::submit_transaction` to a node whose wallet is [`RICH`] and
    /// that has mined one block (so [`RICH`] holds 50 coins).
    Submit { tx: Transaction },
}

/// What a row must produce.
enum Expect {
    /// Refused with this reason, by an error that `is` accepts (the exact
    /// variant, with its fields where they are known).
    Rejected {
        reason: &'static str,
        is: fn(&ValidationError) -> bool,
    },
    /// Accepted: the near miss of a `Rejected` row with reason `of`.
    NearMiss { of: &'static str },
}

/// `rejected!("reason", pattern)`: the error must match `pattern` (guards
/// allowed) and `reason()` must be `"reason"`.
macro_rules! rejected {
    ($reason:literal, $($pattern:tt)+) => {
        Expect::Rejected {
            reason: $reason,
            is: |e| matches!(e, $($pattern)+),
        }
    };
}

/// One named row of the table.
struct Case {
    name: &'static str,
    build: fn() -> Input,
    expect: Expect,
}

// ---------------------------------------------------------------------------
// Inputs shared by several rows.
// ---------------------------------------------------------------------------

/// A valid coinbase-only block on [`funded_chain`]'s tip.
fn good_block() -> Block {
    block_on(&tip_header(&funded_chain(RICH)), addr(MINER), None)
}

/// [`good_block`]'s JSON, padded with trailing spaces to `len` bytes.
fn padded_json(len: usize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&good_block()).expect("a block serialises");
    assert!(bytes.len() < len, "honest JSON is far below the cap");
    bytes.resize(len, b' ');
    bytes
}

/// `hash` with its last bit flipped.
fn flip_last_bit(hash: BlockHash) -> BlockHash {
    let mut bytes = hash.0;
    bytes[31] ^= 1;
    BlockHash(bytes)
}

/// [`good_block`]'s JSON with its `hash` field set to `hash`.
fn json_with_hash(hash: BlockHash) -> Vec<u8> {
    let mut json = good_block().to_json();
    json.hash = hash;
    serde_json::to_vec(&json).expect("a block serialises")
}

/// [`funded_chain`] and a block on its tip carrying `tx`.
fn chain_and_block_with(tx: Transaction) -> (Chain, Block) {
    let chain = funded_chain(RICH);
    let block = block_on(&tip_header(&chain), addr(MINER), Some(tx));
    (chain, block)
}

/// A block on [`funded_chain`]'s tip carrying `tx`.
fn with_tx(tx: Transaction) -> Input {
    let (chain, block) = chain_and_block_with(tx);
    Input::Block { chain, block }
}

/// [`funded_chain`] after [`RICH`] paid [`PAYEE`] 10 coins (nonce 0).
fn chain_after_one_transfer() -> Chain {
    let (mut chain, block) = chain_and_block_with(pay(RICH, addr(PAYEE), 10, 1, 0));
    let outcome = submit(&mut chain, block).expect("the first transfer is valid");
    assert!(matches!(outcome, Outcome::TipChanged(_)));
    chain
}

/// An overspend by [`BROKE`] with valid proof of work on [`funded_chain`]'s
/// tip: passes `check`, fails against state.
fn overspend_block(chain: &Chain) -> Block {
    block_on(
        &tip_header(chain),
        addr(MINER),
        Some(pay(BROKE, addr(PAYEE), 5, 0, 0)),
    )
}

/// [`funded_chain`] that has refused [`overspend_block`] (so it remembers it
/// as invalid) and then accepted a valid sibling of it; returns both.
fn chain_with_invalid_block() -> (Chain, Block, Block) {
    let mut chain = funded_chain(RICH);
    let bad = overspend_block(&chain);
    let refused = submit(&mut chain, bad.clone());
    assert!(matches!(refused, Err(E::Overspend { .. })), "{refused:?}");
    let good = block_on(&tip_header(&chain), addr(MINER), None);
    let outcome = submit(&mut chain, good.clone()).expect("the valid sibling is accepted");
    assert!(matches!(outcome, Outcome::TipChanged(_)));
    (chain, bad, good)
}

/// The genesis of a network that differs only in its name.
fn other_network() -> Params {
    Params {
        network: "othernet".to_owned(),
        ..params()
    }
}

/// A state that has minted every coin there can be.
fn state_at_max_supply() -> State {
    let mut state = State::new();
    let block = good_block();
    state
        .apply(&block, u64::MAX)
        .expect("minting u64::MAX once fits");
    state
}

// ---------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------

fn cases() -> Vec<Case> {
    vec![
        // -- malformed
        Case {
            name: "malformed: not JSON",
            build: || Input::Json {
                chain: funded_chain(RICH),
                bytes: b"{\"hash\": not json".to_vec(),
            },
            expect: rejected!("malformed", E::Malformed { .. }),
        },
        Case {
            name: "malformed: an unknown field",
            build: || {
                let mut value = serde_json::to_value(good_block()).expect("serialises");
                value["extra"] = serde_json::Value::Bool(true);
                Input::Json {
                    chain: funded_chain(RICH),
                    bytes: serde_json::to_vec(&value).expect("serialises"),
                }
            },
            expect: rejected!("malformed", E::Malformed { detail } if detail.contains("extra")),
        },
        Case {
            name: "malformed: a hash that is not hex",
            build: || {
                let mut value = serde_json::to_value(good_block()).expect("serialises");
                value["header"]["prev_hash"] = serde_json::Value::String("zz".repeat(32));
                Input::Json {
                    chain: funded_chain(RICH),
                    bytes: serde_json::to_vec(&value).expect("serialises"),
                }
            },
            expect: rejected!("malformed", E::Malformed { .. }),
        },
        Case {
            name: "malformed near miss: the block's own JSON",
            build: || Input::Json {
                chain: funded_chain(RICH),
                bytes: serde_json::to_vec(&good_block()).expect("serialises"),
            },
            expect: Expect::NearMiss { of: "malformed" },
        },
        // -- too_large
        Case {
            name: "too_large: one byte over the JSON cap",
            build: || Input::Json {
                chain: funded_chain(RICH),
                bytes: padded_json(MAX_BLOCK_JSON_LEN + 1),
            },
            expect: rejected!(
                "too_large",
                E::TooLarge { size, max } if *size == MAX_BLOCK_JSON_LEN + 1 && *max == MAX_BLOCK_JSON_LEN
            ),
        },
        Case {
            name: "too_large near miss: exactly at the cap",
            build: || Input::Json {
                chain: funded_chain(RICH),
                bytes: padded_json(MAX_BLOCK_JSON_LEN),
            },
            expect: Expect::NearMiss { of: "too_large" },
        },
        // -- bad_hash
        Case {
            name: "bad_hash: claimed hash one bit off",
            build: || Input::Json {
                chain: funded_chain(RICH),
                bytes: json_with_hash(flip_last_bit(good_block().hash())),
            },
            expect: rejected!(
                "bad_hash",
                E::BadHash { claimed, computed }
                    if *computed == good_block().hash() && *claimed == flip_last_bit(*computed)
            ),
        },
        Case {
            name: "bad_hash near miss: the true hash",
            build: || Input::Json {
                chain: funded_chain(RICH),
                bytes: json_with_hash(good_block().hash()),
            },
            expect: Expect::NearMiss { of: "bad_hash" },
        },
        // -- wrong_difficulty
        Case {
            name: "wrong_difficulty: one bit easier than the network's",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .difficulty(kit::chain::DIFFICULTY - 1)
                    .mine();
                Input::Block { chain, block }
            },
            expect: rejected!("wrong_difficulty", E::WrongDifficulty { got: 7, want: 8 }),
        },
        Case {
            name: "wrong_difficulty: one bit harder than the network's",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .difficulty(kit::chain::DIFFICULTY + 1)
                    .mine();
                Input::Block { chain, block }
            },
            expect: rejected!("wrong_difficulty", E::WrongDifficulty { got: 9, want: 8 }),
        },
        Case {
            name: "wrong_difficulty near miss: the network's difficulty",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .difficulty(kit::chain::DIFFICULTY)
                    .mine();
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss {
                of: "wrong_difficulty",
            },
        },
        // -- bad_pow
        Case {
            name: "bad_pow: a nonce that misses the target",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER)).bad_pow();
                Input::Block { chain, block }
            },
            expect: rejected!("bad_pow", E::BadPow { zeros, need: 8 } if *zeros < 8),
        },
        Case {
            name: "bad_pow near miss: a nonce that meets it",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER)).mine();
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss { of: "bad_pow" },
        },
        // -- bad_tx_root
        Case {
            name: "bad_tx_root: a transfer under the empty root",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .tx(pay(RICH, addr(PAYEE), 10, 1, 0))
                    .tx_root(empty_tx_root())
                    .mine();
                Input::Block { chain, block }
            },
            expect: rejected!("bad_tx_root", E::BadTxRoot),
        },
        Case {
            name: "bad_tx_root: the transfer stripped from a mined block",
            build: || {
                let (chain, mut block) = chain_and_block_with(pay(RICH, addr(PAYEE), 10, 1, 0));
                block.tx = None;
                Input::Block { chain, block }
            },
            expect: rejected!("bad_tx_root", E::BadTxRoot),
        },
        Case {
            name: "bad_tx_root: in a segment",
            build: || {
                let chain = funded_chain(RICH);
                let first = block_on(&tip_header(&chain), addr(MINER), None);
                let second = forge(&first.header, addr(MINER))
                    .tx(pay(RICH, addr(PAYEE), 10, 1, 0))
                    .tx_root(empty_tx_root())
                    .mine();
                Input::Segment {
                    chain,
                    blocks: vec![first, second],
                }
            },
            expect: rejected!("bad_tx_root", E::BadTxRoot),
        },
        Case {
            name: "bad_tx_root near miss: the root commits to the transfer",
            build: || with_tx(pay(RICH, addr(PAYEE), 10, 1, 0)),
            expect: Expect::NearMiss { of: "bad_tx_root" },
        },
        // -- bad_signature
        Case {
            name: "bad_signature: signed by another key",
            build: || {
                let mut tx = pay(BROKE, addr(PAYEE), 10, 1, 0);
                tx.from = addr(RICH);
                with_tx(tx)
            },
            expect: rejected!("bad_signature", E::BadSignature),
        },
        Case {
            name: "bad_signature: signed for another network",
            build: || {
                let tx = wallet(RICH).transfer(&other_network().chain_id(), addr(PAYEE), 10, 1, 0);
                with_tx(tx)
            },
            expect: rejected!("bad_signature", E::BadSignature),
        },
        Case {
            name: "bad_signature: one bad signature in a batch",
            build: || {
                let chain = funded_chain(RICH);
                let first = block_on(
                    &tip_header(&chain),
                    addr(MINER),
                    Some(pay(RICH, addr(PAYEE), 10, 1, 0)),
                );
                let mut forged = pay(BROKE, addr(PAYEE), 5, 1, 1);
                forged.from = addr(RICH);
                let second = block_on(&first.header, addr(MINER), Some(forged));
                Input::Segment {
                    chain,
                    blocks: vec![first, second],
                }
            },
            expect: rejected!("bad_signature", E::BadSignature),
        },
        Case {
            name: "bad_signature: submitted to a node",
            build: || {
                let mut tx = pay(BROKE, addr(PAYEE), 10, 1, 0);
                tx.from = addr(RICH);
                Input::Submit { tx }
            },
            expect: rejected!("bad_signature", E::BadSignature),
        },
        Case {
            name: "bad_signature near miss: signed by the sender",
            build: || with_tx(pay(RICH, addr(PAYEE), 10, 1, 0)),
            expect: Expect::NearMiss {
                of: "bad_signature",
            },
        },
        Case {
            name: "bad_signature near miss: a batch of good signatures",
            build: || {
                let chain = funded_chain(RICH);
                let first = block_on(
                    &tip_header(&chain),
                    addr(MINER),
                    Some(pay(RICH, addr(PAYEE), 10, 1, 0)),
                );
                let second = block_on(
                    &first.header,
                    addr(MINER),
                    Some(pay(RICH, addr(PAYEE), 5, 1, 1)),
                );
                Input::Segment {
                    chain,
                    blocks: vec![first, second],
                }
            },
            expect: Expect::NearMiss {
                of: "bad_signature",
            },
        },
        // -- zero_amount
        Case {
            name: "zero_amount: a transfer of nothing",
            build: || with_tx(pay(RICH, addr(PAYEE), 0, 1, 0)),
            expect: rejected!("zero_amount", E::ZeroAmount),
        },
        Case {
            name: "zero_amount: submitted to a node",
            build: || Input::Submit {
                tx: pay(RICH, addr(PAYEE), 0, 1, 0),
            },
            expect: rejected!("zero_amount", E::ZeroAmount),
        },
        Case {
            name: "zero_amount near miss: one coin",
            build: || with_tx(pay(RICH, addr(PAYEE), 1, 1, 0)),
            expect: Expect::NearMiss { of: "zero_amount" },
        },
        // -- overflow
        Case {
            name: "overflow: amount + fee past u64::MAX",
            build: || Input::Check {
                block: block_on(
                    &tip_header(&funded_chain(RICH)),
                    addr(MINER),
                    Some(pay(RICH, addr(PAYEE), u64::MAX, 1, 0)),
                ),
            },
            expect: rejected!("overflow", E::Overflow),
        },
        Case {
            name: "overflow near miss: amount + fee exactly u64::MAX",
            build: || Input::Check {
                block: block_on(
                    &tip_header(&funded_chain(RICH)),
                    addr(MINER),
                    Some(pay(RICH, addr(PAYEE), u64::MAX, 0, 0)),
                ),
            },
            expect: Expect::NearMiss { of: "overflow" },
        },
        Case {
            name: "overflow: submitted to a node",
            build: || Input::Submit {
                tx: pay(RICH, addr(PAYEE), u64::MAX, 1, 0),
            },
            expect: rejected!("overflow", E::Overflow),
        },
        Case {
            name: "overflow: minting past the largest supply",
            build: || Input::Apply {
                state: state_at_max_supply(),
                block: good_block(),
                reward: 1,
            },
            expect: rejected!("overflow", E::Overflow),
        },
        Case {
            name: "overflow near miss: minting up to the largest supply",
            build: || Input::Apply {
                state: state_at_max_supply(),
                block: good_block(),
                reward: 0,
            },
            expect: Expect::NearMiss { of: "overflow" },
        },
        // -- bad_height
        Case {
            name: "bad_height: skips a height",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER)).height(3).mine();
                Input::Block { chain, block }
            },
            expect: rejected!("bad_height", E::BadHeight { got: 3, want: 2 }),
        },
        Case {
            name: "bad_height: repeats the parent's height",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER)).height(1).mine();
                Input::Block { chain, block }
            },
            expect: rejected!("bad_height", E::BadHeight { got: 1, want: 2 }),
        },
        Case {
            name: "bad_height: in a segment",
            build: || {
                let chain = funded_chain(RICH);
                let first = block_on(&tip_header(&chain), addr(MINER), None);
                let second = forge(&first.header, addr(MINER)).height(4).mine();
                Input::Segment {
                    chain,
                    blocks: vec![first, second],
                }
            },
            expect: rejected!("bad_height", E::BadHeight { got: 4, want: 3 }),
        },
        Case {
            name: "bad_height near miss: the parent's height plus one",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER)).height(2).mine();
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss { of: "bad_height" },
        },
        // -- unknown_parent
        Case {
            name: "unknown_parent: the parent never arrived",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .prev_hash(flip_last_bit(chain.tip()))
                    .mine();
                Input::Block { chain, block }
            },
            expect: rejected!(
                "unknown_parent",
                E::UnknownParent { parent } if *parent == flip_last_bit(funded_chain(RICH).tip())
            ),
        },
        Case {
            name: "unknown_parent: a segment with a gap",
            build: || {
                let chain = funded_chain(RICH);
                let first = block_on(&tip_header(&chain), addr(MINER), None);
                let skipped = block_on(&first.header, addr(MINER), None);
                let third = block_on(&skipped.header, addr(MINER), None);
                Input::Segment {
                    chain,
                    blocks: vec![first, third],
                }
            },
            expect: rejected!("unknown_parent", E::UnknownParent { .. }),
        },
        Case {
            name: "unknown_parent near miss: the parent is the tip",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .prev_hash(chain.tip())
                    .mine();
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss {
                of: "unknown_parent",
            },
        },
        // -- invalid_ancestor
        Case {
            name: "invalid_ancestor: child of a block found invalid",
            build: || {
                let (chain, bad, _) = chain_with_invalid_block();
                let block = block_on(&bad.header, addr(MINER), None);
                Input::Block { chain, block }
            },
            expect: rejected!(
                "invalid_ancestor",
                E::InvalidAncestor { ancestor } if *ancestor == chain_with_invalid_block().1.hash()
            ),
        },
        Case {
            name: "invalid_ancestor: a segment through a block found invalid",
            build: || {
                let (chain, bad, _) = chain_with_invalid_block();
                let child = block_on(&bad.header, addr(MINER), None);
                let grandchild = block_on(&child.header, addr(MINER), None);
                Input::Segment {
                    chain,
                    blocks: vec![child, grandchild],
                }
            },
            expect: rejected!("invalid_ancestor", E::InvalidAncestor { .. }),
        },
        Case {
            name: "invalid_ancestor near miss: child of the valid sibling",
            build: || {
                let (chain, _, good) = chain_with_invalid_block();
                let block = block_on(&good.header, addr(MINER), None);
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss {
                of: "invalid_ancestor",
            },
        },
        // -- wrong_genesis
        Case {
            name: "wrong_genesis: another network's genesis",
            build: || Input::Checked {
                chain: funded_chain(RICH),
                block: other_network().genesis(),
            },
            expect: rejected!(
                "wrong_genesis",
                E::WrongGenesis { got, want }
                    if *got == other_network().chain_id() && *want == chain_id()
            ),
        },
        Case {
            name: "wrong_genesis: a mined block claiming height 0",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&params().genesis().header, addr(MINER))
                    .height(0)
                    .mine();
                Input::Block { chain, block }
            },
            expect: rejected!("wrong_genesis", E::WrongGenesis { want, .. } if *want == chain_id()),
        },
        Case {
            name: "wrong_genesis: a segment starting at height 0",
            build: || {
                let first = forge(&params().genesis().header, addr(MINER))
                    .height(0)
                    .mine();
                let second = block_on(&first.header, addr(MINER), None);
                Input::Segment {
                    chain: funded_chain(RICH),
                    blocks: vec![first, second],
                }
            },
            expect: rejected!("wrong_genesis", E::WrongGenesis { want, .. } if *want == chain_id()),
        },
        Case {
            name: "wrong_genesis near miss: this network's genesis",
            build: || Input::Checked {
                chain: funded_chain(RICH),
                block: params().genesis(),
            },
            expect: Expect::NearMiss {
                of: "wrong_genesis",
            },
        },
        Case {
            name: "wrong_genesis near miss: the mined block at height 1",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&params().genesis().header, addr(MINER))
                    .height(1)
                    .mine();
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss {
                of: "wrong_genesis",
            },
        },
        // -- timestamp_too_new
        Case {
            name: "timestamp_too_new: one ms past the allowed lead",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .timestamp(now() + params().max_future_ms + 1)
                    .mine();
                Input::Block { chain, block }
            },
            expect: rejected!(
                "timestamp_too_new",
                E::TimestampTooNew { timestamp, now: clock, max_future_ms }
                    if *clock == now()
                        && *max_future_ms == params().max_future_ms
                        && *timestamp == now() + params().max_future_ms + 1
            ),
        },
        Case {
            name: "timestamp_too_new near miss: exactly the allowed lead",
            build: || {
                let chain = funded_chain(RICH);
                let block = forge(&tip_header(&chain), addr(MINER))
                    .timestamp(now() + params().max_future_ms)
                    .mine();
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss {
                of: "timestamp_too_new",
            },
        },
        // -- timestamp_before_parent
        Case {
            name: "timestamp_before_parent: one ms before the parent",
            build: || {
                let chain = funded_chain(RICH);
                let parent = tip_header(&chain);
                let block = forge(&parent, addr(MINER))
                    .timestamp(parent.timestamp - 1)
                    .mine();
                Input::Block { chain, block }
            },
            expect: rejected!(
                "timestamp_before_parent",
                E::TimestampBeforeParent { timestamp, parent }
                    if *timestamp + 1 == *parent
                        && *parent == tip_header(&funded_chain(RICH)).timestamp
            ),
        },
        Case {
            name: "timestamp_before_parent: in a segment",
            build: || {
                let chain = funded_chain(RICH);
                let first = block_on(&tip_header(&chain), addr(MINER), None);
                let second = forge(&first.header, addr(MINER))
                    .timestamp(first.header.timestamp - 1)
                    .mine();
                Input::Segment {
                    chain,
                    blocks: vec![first, second],
                }
            },
            expect: rejected!("timestamp_before_parent", E::TimestampBeforeParent { .. }),
        },
        Case {
            name: "timestamp_before_parent near miss: the parent's timestamp",
            build: || {
                let chain = funded_chain(RICH);
                let parent = tip_header(&chain);
                let block = forge(&parent, addr(MINER))
                    .timestamp(parent.timestamp)
                    .mine();
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss {
                of: "timestamp_before_parent",
            },
        },
        // -- bad_nonce
        Case {
            name: "bad_nonce: a gap",
            build: || with_tx(pay(RICH, addr(PAYEE), 10, 1, 1)),
            expect: rejected!("bad_nonce", E::BadNonce { got: 1, want: 0 }),
        },
        Case {
            name: "bad_nonce: a replay of an included transfer",
            build: || {
                let chain = chain_after_one_transfer();
                let block = block_on(
                    &tip_header(&chain),
                    addr(MINER),
                    Some(pay(RICH, addr(PAYEE), 10, 1, 0)),
                );
                Input::Block { chain, block }
            },
            expect: rejected!("bad_nonce", E::BadNonce { got: 0, want: 1 }),
        },
        Case {
            name: "bad_nonce: a gap submitted to a node",
            build: || Input::Submit {
                tx: pay(RICH, addr(PAYEE), 10, 1, 1),
            },
            expect: rejected!("bad_nonce", E::BadNonce { got: 1, want: 0 }),
        },
        Case {
            name: "bad_nonce near miss: the sender's next nonce",
            build: || with_tx(pay(RICH, addr(PAYEE), 10, 1, 0)),
            expect: Expect::NearMiss { of: "bad_nonce" },
        },
        Case {
            name: "bad_nonce near miss: the next nonce after an included transfer",
            build: || {
                let chain = chain_after_one_transfer();
                let block = block_on(
                    &tip_header(&chain),
                    addr(MINER),
                    Some(pay(RICH, addr(PAYEE), 10, 1, 1)),
                );
                Input::Block { chain, block }
            },
            expect: Expect::NearMiss { of: "bad_nonce" },
        },
        Case {
            name: "bad_nonce near miss: submitted to a node",
            build: || Input::Submit {
                tx: pay(RICH, addr(PAYEE), 10, 1, 0),
            },
            expect: Expect::NearMiss { of: "bad_nonce" },
        },
        // -- overspend
        Case {
            name: "overspend: the fee on top of the whole balance",
            build: || with_tx(pay(RICH, addr(PAYEE), 50, 1, 0)),
            expect: rejected!(
                "overspend",
                E::Overspend {
                    needed: 51,
                    balance: 50
                }
            ),
        },
        Case {
            name: "overspend: a sender with nothing",
            build: || with_tx(pay(BROKE, addr(PAYEE), 1, 0, 0)),
            expect: rejected!(
                "overspend",
                E::Overspend {
                    needed: 1,
                    balance: 0
                }
            ),
        },
        Case {
            name: "overspend: submitted to a node",
            build: || Input::Submit {
                tx: pay(RICH, addr(PAYEE), 50, 1, 0),
            },
            expect: rejected!(
                "overspend",
                E::Overspend {
                    needed: 51,
                    balance: 50
                }
            ),
        },
        Case {
            name: "overspend near miss: amount + fee equal to the balance",
            build: || with_tx(pay(RICH, addr(PAYEE), 49, 1, 0)),
            expect: Expect::NearMiss { of: "overspend" },
        },
        Case {
            name: "overspend near miss: submitted to a node",
            build: || Input::Submit {
                tx: pay(RICH, addr(PAYEE), 49, 1, 0),
            },
            expect: Expect::NearMiss { of: "overspend" },
        },
    ]
}

// ---------------------------------------------------------------------------
// Running a row.
// ---------------------------------------------------------------------------

/// Inserts into `chain` and checks what every refusal must leave behind:
/// the best chain and state untouched, the block not kept, and transient
/// reasons never remembered as invalid.
fn insert_checked(mut chain: Chain, block: CheckedBlock) -> Result<(), ValidationError> {
    let hash = block.hash();
    let (tip, state) = (chain.tip(), chain.state().clone());
    match chain.insert(block, now()) {
        Ok(_) => {
            assert!(chain.contains(&hash), "an accepted block is kept");
            Ok(())
        }
        Err(e) => {
            assert_eq!(chain.tip(), tip, "a refused block moved the tip");
            assert_eq!(chain.state(), &state, "a refused block changed the state");
            assert!(!chain.contains(&hash), "a refused block is kept");
            if let Some(remembered) = chain.invalid_reason(&hash) {
                assert!(!e.is_transient(), "{e} is transient but remembered");
                assert_eq!(remembered, &e, "remembered with another reason");
            }
            Err(e)
        }
    }
}

fn run(input: Input) -> Result<(), ValidationError> {
    match input {
        Input::Json { chain, bytes } => {
            let block = BlockJson::parse(&bytes)?;
            insert_checked(chain, validate::check(block, &params())?)
        }
        Input::Check { block } => validate::check(block, &params()).map(drop),
        Input::Block { chain, block } => insert_checked(chain, validate::check(block, &params())?),
        Input::Checked { chain, block } => insert_checked(chain, block),
        Input::Segment { mut chain, blocks } => {
            let hashes: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
            let checked = validate::check_batch(blocks, &params()).map_err(|(_, e)| e)?;
            let (tip, state, len) = (chain.tip(), chain.state().clone(), chain.len());
            let known: Vec<bool> = hashes.iter().map(|h| chain.contains(h)).collect();
            match chain.insert_segment(checked, now()) {
                Ok(_) => {
                    assert!(hashes.iter().all(|h| chain.contains(h)));
                    Ok(())
                }
                Err((index, e)) => {
                    assert!(index < hashes.len(), "index {index} out of the segment");
                    assert_eq!(chain.tip(), tip, "a refused segment moved the tip");
                    assert_eq!(chain.state(), &state, "a refused segment changed state");
                    assert_eq!(chain.len(), len, "a refused segment left blocks behind");
                    let kept: Vec<bool> = hashes.iter().map(|h| chain.contains(h)).collect();
                    assert_eq!(kept, known, "a refused segment is refused entirely");
                    Err(e)
                }
            }
        }
        Input::Apply {
            mut state,
            block,
            reward,
        } => {
            let before = state.clone();
            match state.apply(&block, reward) {
                Ok(_) => Ok(()),
                Err(e) => {
                    assert_eq!(state, before, "a refused block changed the state");
                    Err(e)
                }
            }
        }
        Input::Submit { tx } => submit_to_node(tx),
    }
}

/// Launches a node for [`RICH`], mines one block, submits `tx`.
fn submit_to_node(tx: Transaction) -> Result<(), ValidationError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let node = Node::builder(params())
            .wallet(wallet(RICH))
            .launch()
            .await
            .expect("an in-memory node launches");
        let mined = tokio::time::timeout(Duration::from_secs(10), node.mine())
            .await
            .expect("one block at 8 bits takes milliseconds")
            .expect("the node mines");
        assert_eq!(mined.height, 1);
        let id = tx.id();
        let result = match node.submit_transaction(tx).await {
            Ok(txid) => {
                assert_eq!(txid, id, "the node answers the transaction's id");
                Ok(())
            }
            Err(TxError::Invalid(e)) => Err(e),
            Err(other) => panic!("refused for a reason that is not validation: {other}"),
        };
        node.shutdown().await;
        result
    })
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[test]
fn every_case_gives_its_expected_answer() {
    let mut failures = Vec::new();
    for case in cases() {
        let got = run((case.build)());
        let verdict = match (&case.expect, &got) {
            (Expect::NearMiss { .. }, Ok(())) => None,
            (Expect::NearMiss { .. }, Err(e)) => Some(format!("refused: {e:?}")),
            (Expect::Rejected { .. }, Ok(())) => Some("accepted".to_owned()),
            (Expect::Rejected { reason, is }, Err(e)) => {
                if e.reason() != *reason {
                    Some(format!("reason {} instead of {reason}: {e:?}", e.reason()))
                } else if !is(e) {
                    Some(format!("right reason, wrong details: {e:?}"))
                } else if serde_json::to_value(e).expect("errors serialise")["reason"] != *reason {
                    Some(format!("the JSON reason tag is not {reason}"))
                } else {
                    None
                }
            }
        };
        if let Some(verdict) = verdict {
            failures.push(format!("{}: {verdict}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn table_covers_every_reason() {
    let all: BTreeSet<&str> = ValidationError::REASONS.iter().copied().collect();
    assert_eq!(
        all.len(),
        ValidationError::REASONS.len(),
        "REASONS has duplicates"
    );
    let mut rejected = BTreeSet::new();
    let mut near_misses = BTreeSet::new();
    let mut names = BTreeSet::new();
    for case in cases() {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        match case.expect {
            Expect::Rejected { reason, .. } => {
                assert!(
                    case.name.starts_with(&format!("{reason}:")),
                    "{} is named after another reason than {reason}",
                    case.name
                );
                rejected.insert(reason);
            }
            Expect::NearMiss { of } => {
                assert!(
                    case.name.starts_with(&format!("{of} near miss:")),
                    "{} is named after another reason than {of}",
                    case.name
                );
                near_misses.insert(of);
            }
        }
    }
    assert_eq!(rejected, all, "reasons without a case that produces them");
    assert_eq!(near_misses, all, "reasons without a near miss");
}

/// A block from the future is refused, not remembered as invalid, and
/// accepted once its time has come.
#[test]
fn early_block_is_accepted_once_its_time_has_come() {
    let mut chain = funded_chain(RICH);
    let lead = params().max_future_ms;
    let stamp = now() + 10 * lead;
    let block = validate::check(
        forge(&tip_header(&chain), addr(MINER))
            .timestamp(stamp)
            .mine(),
        &params(),
    )
    .expect("valid on its own");
    let hash = block.hash();

    for clock in [now(), stamp - lead - 1] {
        let refused = chain.insert(block.clone(), clock);
        assert_eq!(
            refused,
            Err(E::TimestampTooNew {
                timestamp: stamp,
                now: clock,
                max_future_ms: lead
            })
        );
        assert_eq!(chain.invalid_reason(&hash), None, "early is not invalid");
        assert!(!chain.invalid_hashes().contains(&hash));
        assert!(!chain.contains(&hash));
        assert_eq!(chain.height(), 1);
    }

    let accepted = chain.insert(block.clone(), stamp - lead);
    assert!(accepted.is_ok(), "{accepted:?}");
    assert_eq!(chain.tip(), hash);
    assert_eq!(chain.height(), 2);

    // Its child, stamped at the same time, goes in at that same clock.
    let child = block_on(&block.header, addr(MINER), None);
    assert!(
        chain
            .insert(kit::chain::checked(child), stamp - lead + 1)
            .is_ok()
    );
    assert_eq!(chain.height(), 3);
}
