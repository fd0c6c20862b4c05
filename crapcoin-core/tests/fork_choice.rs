//! Fork choice and what it must leave behind: most work wins, a tie keeps
//! the first seen, reorgs of any depth return exactly what changed, an
//! invalid block anywhere in a branch sinks the whole branch, orphans and
//! the mempool stay bounded, and a transfer of an abandoned branch is mined
//! again on the winning one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crapcoin_core::block::BlockHeader;
use crapcoin_core::chain::{Limits, Outcome};
use crapcoin_core::mempool::{Mempool, MempoolError};
use crapcoin_core::network::BlockAck;
use crapcoin_core::node::TxError;
use crapcoin_core::orphans::OrphanPool;
use crapcoin_core::{
    Address, Block, BlockHash, Chain, CheckedBlock, Config, Event, Handle, Node, PeerUrl,
    TipChange, ValidationError, memory, validate,
};

use kit::chain::{
    addr, block_on, branch, chain_of, checked, extend, forge, funded_chain, now, params, pay,
    submit, tip_header, wallet,
};

// ---------------------------------------------------------------------------
// Fork choice, one block at a time.
// ---------------------------------------------------------------------------

/// What inserting one block must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Extends the best chain.
    Extend,
    /// Becomes the tip after rolling back this many blocks.
    Reorg(usize),
    /// Stored on a side branch; the tip stays.
    Side,
    /// Already known.
    Duplicate,
    /// Its parent has not arrived.
    UnknownParent,
}

/// A named scenario: blocks by label in arrival order, each with its
/// parent's label (`g` is genesis) and what inserting it must do. A label's
/// letter is its branch, which picks the miner, so siblings differ.
struct Case {
    name: &'static str,
    steps: &'static [(&'static str, &'static str, Want)],
    tip: &'static str,
}

const FORK_CASES: &[Case] = &[
    Case {
        name: "tie keeps the first seen",
        steps: &[("a1", "g", Want::Extend), ("b1", "g", Want::Side)],
        tip: "a1",
    },
    Case {
        name: "tie keeps the first seen, whichever branch it is",
        steps: &[("b1", "g", Want::Extend), ("a1", "g", Want::Side)],
        tip: "b1",
    },
    Case {
        name: "tie at depth two keeps the first seen",
        steps: &[
            ("a1", "g", Want::Extend),
            ("a2", "a1", Want::Extend),
            ("b1", "g", Want::Side),
            ("b2", "b1", Want::Side),
        ],
        tip: "a2",
    },
    Case {
        name: "more work wins",
        steps: &[
            ("a1", "g", Want::Extend),
            ("b1", "g", Want::Side),
            ("b2", "b1", Want::Reorg(1)),
        ],
        tip: "b2",
    },
    Case {
        name: "a side branch overtakes from genesis",
        steps: &[
            ("a1", "g", Want::Extend),
            ("a2", "a1", Want::Extend),
            ("b1", "g", Want::Side),
            ("b2", "b1", Want::Side),
            ("b3", "b2", Want::Reorg(2)),
        ],
        tip: "b3",
    },
    Case {
        name: "a fork from the middle overtakes",
        steps: &[
            ("a1", "g", Want::Extend),
            ("a2", "a1", Want::Extend),
            ("a3", "a2", Want::Extend),
            ("b3", "a2", Want::Side),
            ("b4", "b3", Want::Reorg(1)),
        ],
        tip: "b4",
    },
    Case {
        name: "back and forth, ties going to the first seen each time",
        steps: &[
            ("a1", "g", Want::Extend),
            ("b1", "g", Want::Side),
            ("b2", "b1", Want::Reorg(1)),
            ("a2", "a1", Want::Side),
            ("a3", "a2", Want::Reorg(2)),
            ("b3", "b2", Want::Side),
        ],
        tip: "a3",
    },
    Case {
        name: "three branches, the longest wins",
        steps: &[
            ("a1", "g", Want::Extend),
            ("b1", "g", Want::Side),
            ("c1", "g", Want::Side),
            ("c2", "c1", Want::Reorg(1)),
            ("b2", "b1", Want::Side),
            ("b3", "b2", Want::Reorg(2)),
        ],
        tip: "b3",
    },
    Case {
        name: "a duplicate changes nothing",
        steps: &[
            ("a1", "g", Want::Extend),
            ("b1", "g", Want::Side),
            ("a1", "g", Want::Duplicate),
            ("b1", "g", Want::Duplicate),
        ],
        tip: "a1",
    },
    Case {
        name: "a child before its parent waits, then both go in",
        steps: &[
            ("a2", "a1", Want::UnknownParent),
            ("a1", "g", Want::Extend),
            ("a2", "a1", Want::Extend),
        ],
        tip: "a2",
    },
];

/// Builds every labelled block of `case`, parents first.
fn build_blocks(case: &Case) -> HashMap<&'static str, Block> {
    let parents: HashMap<&str, &str> = case.steps.iter().map(|(l, p, _)| (*l, *p)).collect();
    let mut blocks: HashMap<&'static str, Block> = HashMap::new();
    // Every label's parent chain is at most as long as the number of labels.
    for _ in 0..=parents.len() {
        for (label, parent) in case.steps.iter().map(|(l, p, _)| (*l, *p)) {
            if blocks.contains_key(label) {
                continue;
            }
            let parent_header = if parent == "g" {
                Some(params().genesis().header.clone())
            } else {
                blocks.get(parent).map(|b| b.header.clone())
            };
            if let Some(parent_header) = parent_header {
                let seed = 100 + u64::from(label.as_bytes()[0]);
                blocks.insert(label, block_on(&parent_header, addr(seed), None));
            }
        }
    }
    assert_eq!(
        blocks.len(),
        parents.len(),
        "{}: a label lacks a parent",
        case.name
    );
    blocks
}

fn check_reorg(change: &TipChange, old_tip: BlockHash, new: &Block, depth: usize) {
    assert_eq!(change.old_tip, old_tip);
    assert_eq!(change.new_tip, new.hash());
    assert_eq!(change.height, new.header.height);
    assert_eq!(change.depth(), depth);
    assert_eq!(change.is_reorg(), depth > 0);
    if depth > 0 {
        assert_eq!(change.disconnected[0].hash(), old_tip, "old tip first");
    }
    let last = change.connected.last().expect("a tip change connects");
    assert_eq!(last.hash(), new.hash(), "new tip last");
    for pair in change.connected.windows(2) {
        assert_eq!(pair[1].header.prev_hash, pair[0].hash(), "lowest first");
    }
    for pair in change.disconnected.windows(2) {
        assert_eq!(pair[0].header.prev_hash, pair[1].hash(), "highest first");
    }
}

#[test]
fn fork_choice_table() {
    for case in FORK_CASES {
        let blocks = build_blocks(case);
        let mut chain = Chain::new(params());
        for (i, (label, _, want)) in case.steps.iter().enumerate() {
            let block = &blocks[label];
            let old_tip = chain.tip();
            let got = submit(&mut chain, block.clone());
            let context = format!("{}, step {i} ({label})", case.name);
            match (want, &got) {
                (Want::Extend, Ok(Outcome::TipChanged(change))) => {
                    check_reorg(change, old_tip, block, 0);
                    assert_eq!(change.connected.len(), 1, "{context}");
                }
                (Want::Reorg(depth), Ok(Outcome::TipChanged(change))) => {
                    check_reorg(change, old_tip, block, *depth);
                }
                (Want::Side, Ok(Outcome::Side)) | (Want::Duplicate, Ok(Outcome::Duplicate)) => {
                    assert_eq!(chain.tip(), old_tip, "{context}: the tip moved");
                }
                (Want::UnknownParent, Err(ValidationError::UnknownParent { parent })) => {
                    assert_eq!(*parent, block.header.prev_hash, "{context}");
                    assert_eq!(chain.invalid_reason(&block.hash()), None, "{context}");
                }
                _ => panic!("{context}: wanted {want:?}, got {got:?}"),
            }
        }
        assert_eq!(chain.tip(), blocks[case.tip].hash(), "{}: tip", case.name);
        // Whatever the arrival order, the state is that of the winning
        // branch alone.
        let mut winning = Vec::new();
        let mut at = Some(&blocks[case.tip]);
        while let Some(block) = at {
            winning.push(block.clone());
            at = blocks.values().find(|b| b.hash() == block.header.prev_hash);
        }
        winning.reverse();
        let fresh = chain_of(&winning);
        assert_eq!(chain.state(), fresh.state(), "{}: state", case.name);
        assert_eq!(chain.height(), fresh.height(), "{}: height", case.name);
    }
}

// ---------------------------------------------------------------------------
// A reorg deeper than 100 blocks.
// ---------------------------------------------------------------------------

/// Mines the common start of both branches: two blocks for `PREFIX_MINER`.
const PREFIX_MINER: u64 = 30;
const A_MINER: u64 = 31;
const B_MINER: u64 = 32;
const A_PAYEE: u64 = 33;
const B_PAYEE: u64 = 34;

/// `len` blocks on `parent` mined by `miner`, the third carrying a
/// transfer from [`PREFIX_MINER`] to `payee`.
fn branch_with_transfer(parent: &BlockHeader, len: usize, miner: u64, payee: u64) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::with_capacity(len);
    let mut parent = parent.clone();
    for i in 0..len {
        let tx = (i == 2).then(|| pay(PREFIX_MINER, addr(payee), 30 + payee, 1, 0));
        let block = block_on(&parent, addr(miner), tx);
        parent = block.header.clone();
        blocks.push(block);
    }
    blocks
}

struct DeepFork {
    prefix: Vec<Block>,
    a: Vec<Block>,
    b: Vec<Block>,
}

/// Genesis, two common blocks, then branch A (105 blocks) and the longer
/// branch B (110 blocks), each with a transfer by the prefix's miner.
fn deep_fork() -> DeepFork {
    let prefix = branch(&params().genesis().header, 2, addr(PREFIX_MINER));
    let fork = &prefix[1].header;
    DeepFork {
        a: branch_with_transfer(fork, 105, A_MINER, A_PAYEE),
        b: branch_with_transfer(fork, 110, B_MINER, B_PAYEE),
        prefix,
    }
}

/// The state a chain must have after switching to B: a fresh chain of B.
fn assert_state_is_b(chain: &Chain, fork: &DeepFork) {
    let winning: Vec<Block> = fork.prefix.iter().chain(&fork.b).cloned().collect();
    let fresh = chain_of(&winning);
    assert_eq!(chain.tip(), fresh.tip());
    assert_eq!(chain.height(), 112);
    assert_eq!(chain.state(), fresh.state());
    let reward = params().block_reward;
    let balance = |seed| chain.state().account(&addr(seed)).balance;
    assert_eq!(balance(A_MINER), 0, "A's rewards are gone");
    assert_eq!(balance(A_PAYEE), 0, "A's transfer is gone");
    assert_eq!(balance(B_PAYEE), 30 + B_PAYEE);
    assert_eq!(balance(B_MINER), 110 * reward + 1);
    assert_eq!(balance(PREFIX_MINER), 2 * reward - (30 + B_PAYEE) - 1);
    assert_eq!(chain.state().account(&addr(PREFIX_MINER)).nonce, 1);
    assert_eq!(chain.state().supply(), 112 * reward);
    for (h, block) in winning.iter().enumerate() {
        assert_eq!(
            chain.block_at(h as u64 + 1).map(|b| b.hash()),
            Some(block.hash())
        );
    }
}

fn assert_deep_change(change: &TipChange, fork: &DeepFork, connected: usize) {
    assert_eq!(change.depth(), 105);
    assert!(change.is_reorg());
    assert_eq!(change.old_tip, fork.a[104].hash());
    let disconnected: Vec<BlockHash> = change.disconnected.iter().map(|b| b.hash()).collect();
    let want: Vec<BlockHash> = fork.a.iter().rev().map(Block::hash).collect();
    assert_eq!(disconnected, want, "all of A, old tip first");
    let connected_hashes: Vec<BlockHash> = change.connected.iter().map(|b| b.hash()).collect();
    let want: Vec<BlockHash> = fork.b[..connected].iter().map(Block::hash).collect();
    assert_eq!(connected_hashes, want, "B from the fork, lowest first");
}

#[test]
fn reorg_deeper_than_100_blocks_one_block_at_a_time() {
    let fork = deep_fork();
    let mut chain = chain_of(&[fork.prefix.clone(), fork.a.clone()].concat());
    assert_eq!(chain.height(), 107);
    assert_eq!(chain.state().account(&addr(A_PAYEE)).balance, 30 + A_PAYEE);

    let mut reorgs = Vec::new();
    for (i, block) in fork.b.iter().enumerate() {
        match submit(&mut chain, block.clone()) {
            // B has at most as much work as A until its 106th block.
            Ok(Outcome::Side) => assert!(i < 105, "block {i} of B stays aside"),
            Ok(Outcome::TipChanged(change)) if change.is_reorg() => reorgs.push((i, change)),
            Ok(Outcome::TipChanged(change)) => assert_eq!(change.connected.len(), 1),
            other => panic!("block {i} of B: {other:?}"),
        }
    }
    assert_eq!(reorgs.len(), 1, "exactly one switch");
    let (at, change) = &reorgs[0];
    assert_eq!(*at, 105, "the first block of B with more work than A");
    assert_eq!(change.height, 108);
    assert_deep_change(change, &fork, 106);
    assert_state_is_b(&chain, &fork);
    // A is still known, as a side branch.
    assert!(
        fork.a
            .iter()
            .all(|b| chain.contains(&b.hash()) && !chain.is_active(&b.hash()))
    );
}

#[test]
fn reorg_deeper_than_100_blocks_as_one_segment() {
    let fork = deep_fork();
    let mut chain = chain_of(&[fork.prefix.clone(), fork.a.clone()].concat());
    let checked = validate::check_batch(fork.b.clone(), &params()).expect("B is valid");
    match chain.insert_segment(checked, now()) {
        Ok(Outcome::TipChanged(change)) => assert_deep_change(&change, &fork, 110),
        other => panic!("{other:?}"),
    }
    assert_state_is_b(&chain, &fork);
}

// ---------------------------------------------------------------------------
// A branch with one invalid block is refused entirely.
// ---------------------------------------------------------------------------

/// Mines the current best chain in these tests.
const MAIN_MINER: u64 = 40;
/// Mines the competing branch, and spends from it.
const BRANCH_MINER: u64 = 41;
const PAYEE: u64 = 42;
const BROKE: u64 = 43;

/// How the one bad block of a branch is bad.
#[derive(Debug, Clone, Copy)]
enum Bad {
    /// A transfer from an account with nothing: valid proof of work and
    /// signature, refused only against state.
    Overspend,
    /// The branch's earlier transfer, again.
    ReplayedNonce,
    /// Stamped before its parent.
    TimestampBeforeParent,
    /// Claims a height two above its parent.
    SkippedHeight,
}

impl Bad {
    fn block(self, parent: &BlockHeader) -> Block {
        let miner = addr(BRANCH_MINER);
        match self {
            Self::Overspend => block_on(parent, miner, Some(pay(BROKE, addr(PAYEE), 5, 0, 0))),
            Self::ReplayedNonce => block_on(parent, miner, Some(replayed())),
            Self::TimestampBeforeParent => {
                forge(parent, miner).timestamp(parent.timestamp - 1).mine()
            }
            Self::SkippedHeight => forge(parent, miner).height(parent.height + 2).mine(),
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Overspend => "overspend",
            Self::ReplayedNonce => "bad_nonce",
            Self::TimestampBeforeParent => "timestamp_before_parent",
            Self::SkippedHeight => "bad_height",
        }
    }
}

/// The branch's one honest transfer (its second block), which
/// [`Bad::ReplayedNonce`] replays.
fn replayed() -> crapcoin_core::Transaction {
    pay(BRANCH_MINER, addr(PAYEE), 10, 1, 0)
}

/// `len` blocks on `parent`: a reward for the branch's miner, its transfer,
/// then coinbase-only blocks; the block at `bad_at` made by `bad` instead
/// (`None`: all honest). Every block after the bad one builds on it.
fn branch_with_bad(
    parent: &BlockHeader,
    len: usize,
    bad_at: usize,
    bad: Option<Bad>,
) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::with_capacity(len);
    let mut parent = parent.clone();
    for i in 0..len {
        let block = match bad {
            Some(bad) if i == bad_at => bad.block(&parent),
            _ if i == 1 => block_on(&parent, addr(BRANCH_MINER), Some(replayed())),
            _ => block_on(&parent, addr(BRANCH_MINER), None),
        };
        parent = block.header.clone();
        blocks.push(block);
    }
    blocks
}

struct SegmentCase {
    name: &'static str,
    /// Length of the best chain before the segment arrives.
    main: usize,
    /// Height of the block the segment forks from.
    fork_at: usize,
    /// Length of the segment.
    len: usize,
    /// Index of the bad block in the segment.
    bad_at: usize,
    bad: Bad,
}

const SEGMENT_CASES: &[SegmentCase] = &[
    SegmentCase {
        name: "an overspend in the middle of a longer branch",
        main: 5,
        fork_at: 0,
        len: 8,
        bad_at: 4,
        bad: Bad::Overspend,
    },
    SegmentCase {
        name: "an overspend after a valid prefix that alone has more work",
        main: 2,
        fork_at: 0,
        len: 8,
        bad_at: 5,
        bad: Bad::Overspend,
    },
    SegmentCase {
        name: "an overspend in the last block",
        main: 3,
        fork_at: 1,
        len: 6,
        bad_at: 5,
        bad: Bad::Overspend,
    },
    SegmentCase {
        name: "an overspend while extending the tip",
        main: 3,
        fork_at: 3,
        len: 5,
        bad_at: 2,
        bad: Bad::Overspend,
    },
    SegmentCase {
        name: "a replayed transfer in the middle",
        main: 4,
        fork_at: 2,
        len: 7,
        bad_at: 3,
        bad: Bad::ReplayedNonce,
    },
    SegmentCase {
        name: "a timestamp before its parent in the middle",
        main: 4,
        fork_at: 0,
        len: 7,
        bad_at: 3,
        bad: Bad::TimestampBeforeParent,
    },
    SegmentCase {
        name: "a skipped height in the middle",
        main: 4,
        fork_at: 0,
        len: 7,
        bad_at: 3,
        bad: Bad::SkippedHeight,
    },
];

fn main_chain(len: usize) -> Chain {
    main_chain_with(len, Limits::default())
}

fn main_chain_with(len: usize, limits: Limits) -> Chain {
    let mut chain = Chain::with_limits(params(), limits);
    extend(&mut chain, len, addr(MAIN_MINER));
    chain
}

/// Limits under which no side block is state-checked until its branch
/// could win: the path a side branch deeper than
/// [`Limits::side_check_depth`] takes.
fn unchecked_side() -> Limits {
    Limits {
        side_check_depth: 0,
        ..Limits::default()
    }
}

#[test]
fn longer_branch_with_one_invalid_block_is_refused_entirely() {
    for case in SEGMENT_CASES {
        let mut chain = main_chain(case.main);
        let parent = chain
            .block_at(case.fork_at as u64)
            .expect("fork point on the main chain")
            .header
            .clone();
        let blocks = branch_with_bad(&parent, case.len, case.bad_at, Some(case.bad));
        assert!(
            case.fork_at + case.len > case.main,
            "{}: the branch is longer",
            case.name
        );

        let (tip, height, state, len) = (
            chain.tip(),
            chain.height(),
            chain.state().clone(),
            chain.len(),
        );
        let checked = validate::check_batch(blocks.clone(), &params())
            .unwrap_or_else(|e| panic!("{}: every block passes check: {e:?}", case.name));
        match chain.insert_segment(checked, now()) {
            Err((index, e)) => {
                assert_eq!(index, case.bad_at, "{}: index of the bad block", case.name);
                assert_eq!(e.reason(), case.bad.reason(), "{}: {e}", case.name);
            }
            Ok(outcome) => panic!("{}: accepted: {outcome:?}", case.name),
        }
        assert_eq!(chain.tip(), tip, "{}: tip", case.name);
        assert_eq!(chain.height(), height, "{}: height", case.name);
        assert_eq!(chain.state(), &state, "{}: balances", case.name);
        assert_eq!(chain.len(), len, "{}: blocks kept", case.name);
        for (i, block) in blocks.iter().enumerate() {
            assert!(
                !chain.contains(&block.hash()),
                "{}: block {i} kept",
                case.name
            );
        }
        assert_eq!(chain.state().account(&addr(BRANCH_MINER)).balance, 0);
        // The bad block and what builds on it are remembered as invalid, so
        // they are refused at once when they come again; the valid prefix
        // is not condemned.
        for (i, block) in blocks.iter().enumerate() {
            let remembered = chain.invalid_reason(&block.hash());
            match i.cmp(&case.bad_at) {
                std::cmp::Ordering::Less => assert_eq!(remembered, None, "{}: {i}", case.name),
                std::cmp::Ordering::Equal => assert_eq!(
                    remembered.map(ValidationError::reason),
                    Some(case.bad.reason()),
                    "{}: the bad block",
                    case.name
                ),
                std::cmp::Ordering::Greater => assert_eq!(
                    remembered,
                    Some(&ValidationError::InvalidAncestor {
                        ancestor: blocks[i - 1].hash()
                    }),
                    "{}: block {i}",
                    case.name
                ),
            }
        }
        let child = block_on(&blocks[case.len - 1].header, addr(PAYEE), None);
        assert_eq!(
            submit(&mut chain, child),
            Err(ValidationError::InvalidAncestor {
                ancestor: blocks[case.len - 1].hash()
            }),
            "{}: a child of the refused branch",
            case.name
        );

        // Near miss: the same branch with the bad block made honest wins.
        let honest = branch_with_bad(&parent, case.len, case.bad_at, None);
        let checked = validate::check_batch(honest, &params()).expect("honest branch");
        match chain.insert_segment(checked, now()) {
            Ok(Outcome::TipChanged(change)) => {
                assert_eq!(change.depth(), case.main - case.fork_at, "{}", case.name);
                assert_eq!(chain.height() as usize, case.fork_at + case.len);
            }
            other => panic!("{}: the honest branch: {other:?}", case.name),
        }
    }
}

#[test]
fn segment_on_a_side_branch_holding_an_invalid_block_is_refused() {
    let mut chain = main_chain_with(5, unchecked_side());
    let (tip, state) = (chain.tip(), chain.state().clone());
    // B0..B2 arrive one by one and wait on a shorter side branch; B1's
    // overspend is not looked at until the branch could win.
    let blocks = branch_with_bad(&params().genesis().header, 7, 1, Some(Bad::Overspend));
    let hashes: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
    for block in &blocks[..3] {
        assert_eq!(submit(&mut chain, block.clone()), Ok(Outcome::Side));
    }
    // A sync then brings the rest, which would give the branch more work.
    let segment = validate::check_batch(blocks[3..].to_vec(), &params()).expect("passes check");
    match chain.insert_segment(segment, now()) {
        Err((0, ValidationError::Overspend { .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.state(), &state);
    assert!(
        chain.contains(&hashes[0]),
        "the valid start of the branch stays"
    );
    assert!(hashes[1..].iter().all(|h| !chain.contains(h)));
    assert!(matches!(
        chain.invalid_reason(&hashes[1]),
        Some(ValidationError::Overspend { .. })
    ));
    for i in 2..hashes.len() {
        assert_eq!(
            chain.invalid_reason(&hashes[i]),
            Some(&ValidationError::InvalidAncestor {
                ancestor: hashes[i - 1]
            }),
            "block {i}"
        );
    }
}

#[test]
fn branch_with_an_invalid_middle_block_sent_one_by_one() {
    let mut chain = main_chain_with(3, unchecked_side());
    let (tip, state) = (chain.tip(), chain.state().clone());
    // B1 B2 valid, B3 an overspend with valid proof of work, B4 B5 on it.
    let blocks = branch_with_bad(&params().genesis().header, 5, 2, Some(Bad::Overspend));
    let hashes: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();

    // B1 and B2 are a shorter branch; B3 ties the main chain, and as this
    // chain checks no side block early, nobody has looked at its transfer.
    for block in &blocks[..3] {
        assert_eq!(submit(&mut chain, block.clone()), Ok(Outcome::Side));
    }
    // B4 gives the branch more work: switching finds B3 invalid.
    let refused = submit(&mut chain, blocks[3].clone());
    assert!(
        matches!(
            refused,
            Err(ValidationError::Overspend {
                needed: 5,
                balance: 0
            })
        ),
        "{refused:?}"
    );
    assert_eq!(chain.tip(), tip, "the node stays on the old tip");
    assert_eq!(chain.state(), &state, "balances unchanged");
    assert!(
        matches!(
            chain.invalid_reason(&hashes[2]),
            Some(ValidationError::Overspend { .. })
        ),
        "the bad block is remembered"
    );
    assert_eq!(
        chain.invalid_reason(&hashes[3]),
        Some(&ValidationError::InvalidAncestor {
            ancestor: hashes[2]
        }),
        "its child is remembered"
    );
    // B5 is refused at once: no state is even touched.
    assert_eq!(
        submit(&mut chain, blocks[4].clone()),
        Err(ValidationError::InvalidAncestor {
            ancestor: hashes[3]
        })
    );
    assert_eq!(
        chain.invalid_reason(&hashes[4]),
        Some(&ValidationError::InvalidAncestor {
            ancestor: hashes[3]
        })
    );
    // Later children too, and the bad block itself when it comes again.
    let later = block_on(&blocks[4].header, addr(BRANCH_MINER), None);
    assert_eq!(
        submit(&mut chain, later),
        Err(ValidationError::InvalidAncestor {
            ancestor: hashes[4]
        })
    );
    assert!(matches!(
        submit(&mut chain, blocks[2].clone()),
        Err(ValidationError::Overspend { .. })
    ));
    // The valid part of the branch stays known; the rest is gone.
    assert!(chain.contains(&hashes[0]) && chain.contains(&hashes[1]));
    assert!(hashes[2..].iter().all(|h| !chain.contains(h)));
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.height(), 3);

    // The honest sibling of B3 still wins.
    let honest = block_on(&blocks[1].header, addr(PAYEE), None);
    assert!(matches!(
        submit(&mut chain, honest.clone()),
        Ok(Outcome::Side)
    ));
    let winner = block_on(&honest.header, addr(PAYEE), None);
    match submit(&mut chain, winner.clone()) {
        Ok(Outcome::TipChanged(change)) => assert_eq!(change.depth(), 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(chain.tip(), winner.hash());
}

#[test]
fn shallow_side_block_breaking_state_is_refused_on_arrival() {
    for bad in [Bad::Overspend, Bad::ReplayedNonce] {
        let mut chain = main_chain(3);
        let (tip, state) = (chain.tip(), chain.state().clone());
        // B1 B2 valid on a shorter branch, B3 ties the main chain and breaks
        // a rule only the state at B2 shows.
        let blocks = branch_with_bad(&params().genesis().header, 3, 2, Some(bad));
        let hashes: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
        for block in &blocks[..2] {
            assert_eq!(submit(&mut chain, block.clone()), Ok(Outcome::Side));
        }
        let refused = submit(&mut chain, blocks[2].clone());
        assert_eq!(
            refused.as_ref().map_err(ValidationError::reason),
            Err(bad.reason()),
            "{bad:?}: {refused:?}"
        );
        assert_eq!(chain.tip(), tip, "{bad:?}: the tip stays");
        assert_eq!(chain.state(), &state, "{bad:?}: the check left no trace");
        assert_eq!(chain.height(), 3);
        assert!(chain.contains(&hashes[0]) && chain.contains(&hashes[1]));
        assert!(
            !chain.contains(&hashes[2]),
            "{bad:?}: the bad block is not kept"
        );
        assert_eq!(
            chain
                .invalid_reason(&hashes[2])
                .map(ValidationError::reason),
            Some(bad.reason())
        );
        // The checks rolled back and forward cleanly: the honest branch can
        // still win, and the state is exactly that of the winning branch.
        let honest = block_on(&blocks[1].header, addr(PAYEE), None);
        assert_eq!(submit(&mut chain, honest.clone()), Ok(Outcome::Side));
        let winner = block_on(&honest.header, addr(PAYEE), None);
        match submit(&mut chain, winner.clone()) {
            Ok(Outcome::TipChanged(change)) => assert_eq!(change.depth(), 3),
            other => panic!("{bad:?}: {other:?}"),
        }
        let fresh = chain_of(&[
            blocks[0].clone(),
            blocks[1].clone(),
            honest.clone(),
            winner.clone(),
        ]);
        assert_eq!(chain.state(), fresh.state(), "{bad:?}");
    }
}

#[test]
fn side_blocks_forking_deeper_than_the_check_depth_wait_unchecked() {
    let limits = Limits {
        side_check_depth: 2,
        ..Limits::default()
    };
    let mut chain = main_chain_with(3, limits);
    let state = chain.state().clone();
    // Forking two blocks below the tip: checked, and refused.
    let at_one = chain.block_at(1).expect("height 1").header.clone();
    let near = Bad::Overspend.block(&at_one);
    assert!(matches!(
        submit(&mut chain, near),
        Err(ValidationError::Overspend { .. })
    ));
    // Forking three blocks below the tip: kept unchecked on the side.
    let genesis = params().genesis().header.clone();
    let deep = Bad::Overspend.block(&genesis);
    assert_eq!(submit(&mut chain, deep.clone()), Ok(Outcome::Side));
    assert!(chain.contains(&deep.hash()));
    assert_eq!(chain.state(), &state);
}

// ---------------------------------------------------------------------------
// Bounded pools.
// ---------------------------------------------------------------------------

/// `n` checked blocks whose parents nobody has: each on a header that was
/// never published, `per_parent` siblings per missing parent.
fn orphans(n: usize, per_parent: usize) -> Vec<CheckedBlock> {
    let genesis = params().genesis().header.clone();
    (0..n)
        .map(|i| {
            let parent = forge(&genesis, addr(1000 + (i / per_parent) as u64)).header();
            checked(block_on(&parent, addr(2000 + i as u64), None))
        })
        .collect()
}

#[test]
fn orphan_pool_stays_bounded_under_a_flood() {
    const CAPACITY: usize = 8;
    let flood = orphans(100, 3);
    let mut pool = OrphanPool::new(CAPACITY);
    for (i, orphan) in flood.iter().enumerate() {
        assert!(pool.insert(orphan.clone(), None), "orphan {i} is new");
        assert!(pool.len() <= CAPACITY, "{} orphans held", pool.len());
        assert!(!pool.insert(orphan.clone(), None), "a duplicate is refused");
    }
    assert_eq!(pool.len(), CAPACITY);
    // The oldest went first: the newest are held.
    let (old, new) = flood.split_at(flood.len() - CAPACITY);
    assert!(old.iter().all(|o| !pool.contains(&o.hash())));
    assert!(new.iter().all(|o| pool.contains(&o.hash())));
    // Their parents still find them; evicted siblings are not returned.
    let last_parent = flood[99].header.prev_hash;
    let children = pool.take_children(&last_parent);
    let want: HashSet<BlockHash> = flood[99..].iter().map(CheckedBlock::hash).collect();
    let got: HashSet<BlockHash> = children.iter().map(|o| o.block.hash()).collect();
    assert_eq!(got, want);
    assert_eq!(pool.len(), CAPACITY - 1);
    let parent_of_evicted = flood[0].header.prev_hash;
    assert!(pool.take_children(&parent_of_evicted).is_empty());
}

#[tokio::test]
async fn node_orphan_pool_stays_bounded_under_a_flood() {
    let mut config = Config::new("flooded", url("flooded"));
    config.orphan_capacity = 8;
    let node = Node::builder(params())
        .config(config)
        .launch()
        .await
        .expect("launches");
    for (i, orphan) in orphans(40, 1).into_iter().enumerate() {
        let ack = node.receive_block(orphan.into_block(), None).await;
        assert_eq!(ack, Ok(BlockAck::Orphan), "orphan {i}");
        assert!(
            node.orphan_count() <= 8,
            "{} orphans held",
            node.orphan_count()
        );
    }
    assert_eq!(node.orphan_count(), 8);
    assert_eq!(node.height(), 0);
    node.shutdown().await;
}

#[test]
fn mempool_stays_bounded() {
    const CAPACITY: usize = 8;
    let mut pool = Mempool::new(CAPACITY);
    let txs: Vec<_> = (0..20)
        .map(|i| pay(500 + i, addr(PAYEE), 1, 0, 0))
        .collect();
    for (i, tx) in txs.iter().enumerate() {
        let result = pool.insert(tx.clone());
        if i < CAPACITY {
            assert_eq!(result, Ok(tx.id()), "tx {i}");
        } else {
            assert_eq!(
                result,
                Err(MempoolError::Full { capacity: CAPACITY }),
                "tx {i}"
            );
        }
        assert!(pool.len() <= CAPACITY);
    }
    assert_eq!(pool.len(), CAPACITY);
    assert_eq!(pool.insert(txs[0].clone()), Err(MempoolError::Duplicate));
    assert_eq!(
        pool.insert(pay(500, addr(PAYEE), 2, 0, 0)),
        Err(MempoolError::NonceTaken { nonce: 0 })
    );
    assert!(pool.remove(&txs[0].id()).is_some());
    assert_eq!(pool.insert(txs[CAPACITY].clone()), Ok(txs[CAPACITY].id()));
    assert_eq!(pool.len(), CAPACITY);
}

/// The pool's index by sender and nonce answers as a scan of the pool
/// would: the next nonce, what a sender has pending, what can be mined,
/// and what a block makes unusable (pruned for its senders alone).
#[test]
fn mempool_answers_by_sender_and_nonce() {
    let (a, b) = (500, 501);
    let mut chain = funded_chain(a);
    extend(&mut chain, 1, addr(b));
    let mut pool = Mempool::new(16);
    let a_txs: Vec<_> = (0..3).map(|n| pay(a, addr(PAYEE), 5, n + 1, n)).collect();
    let b_txs: Vec<_> = (0..2).map(|n| pay(b, addr(PAYEE), 7, 0, n)).collect();
    for tx in a_txs.iter().chain(&b_txs) {
        pool.insert(tx.clone()).expect("room");
    }
    let state = chain.state().clone();
    assert_eq!(pool.next_nonce(&state, &addr(a)), 3);
    assert_eq!(pool.next_nonce(&state, &addr(b)), 2);
    assert_eq!(pool.next_nonce(&state, &addr(PAYEE)), 0);
    // Nonces 0 and 1 of a: 5 + 1 and 5 + 2.
    assert_eq!(pool.pending_spend(&addr(a), 2), 13);
    assert_eq!(pool.pending_spend(&addr(a), u64::MAX), 21);
    assert_eq!(pool.pending_spend(&addr(b), u64::MAX), 14);
    // Only next nonces are minable, highest fee first.
    assert_eq!(pool.select(&state), Some(a_txs[0].clone()));

    // a's nonce 0 is mined: only it goes, and a's nonce 1 is next.
    let block = block_on(&tip_header(&chain), addr(b), Some(a_txs[0].clone()));
    assert!(matches!(
        submit(&mut chain, block),
        Ok(Outcome::TipChanged(_))
    ));
    let state = chain.state().clone();
    assert_eq!(
        pool.prune_senders(&state, &[addr(b)]),
        0,
        "b's nonces did not move"
    );
    assert_eq!(pool.prune_senders(&state, &[addr(a)]), 1);
    assert!(!pool.contains(&a_txs[0].id()));
    assert_eq!(pool.len(), 4);
    assert_eq!(pool.prune(&state), 0, "the full prune finds nothing more");
    assert_eq!(pool.pending_spend(&addr(a), u64::MAX), 15);
    assert_eq!(pool.next_nonce(&state, &addr(a)), 3);
    assert_eq!(
        pool.select(&state),
        Some(a_txs[1].clone()),
        "fee 2 beats fee 0"
    );

    // Removing a's last nonce frees it: the index follows the pool.
    assert_eq!(pool.remove(&a_txs[2].id()), Some(a_txs[2].clone()));
    assert_eq!(pool.next_nonce(&state, &addr(a)), 2);
    let again = pay(a, addr(PAYEE), 1, 0, 2);
    assert_eq!(pool.insert(again.clone()), Ok(again.id()));
    assert_eq!(
        pool.insert(pay(a, addr(PAYEE), 2, 0, 1)),
        Err(MempoolError::NonceTaken { nonce: 1 })
    );
    pool.clear();
    assert_eq!(pool.next_nonce(&state, &addr(a)), 1);
    assert_eq!(pool.pending_spend(&addr(a), u64::MAX), 0);
}

#[tokio::test]
async fn node_mempool_stays_bounded() {
    let mut config = Config::new("busy", url("busy"));
    config.mempool_capacity = 4;
    let node = Node::builder(params())
        .config(config)
        .wallet(wallet(MAIN_MINER))
        .launch()
        .await
        .expect("launches");
    timeout(node.mine()).await.expect("mines");
    assert_eq!(
        node.balance(&addr(MAIN_MINER)).balance,
        params().block_reward
    );
    // Submitting never yields here (the in-memory store records at once):
    // on this single-threaded runtime the miner cannot take anything out
    // between two submissions.
    for nonce in 0..4 {
        let tx = pay(MAIN_MINER, addr(PAYEE), 1, 1, nonce);
        assert_eq!(
            node.submit_transaction(tx.clone()).await,
            Ok(tx.id()),
            "nonce {nonce}"
        );
    }
    for amount in 1..=6 {
        let tx = pay(MAIN_MINER, addr(PAYEE), amount, 1, 4);
        assert_eq!(
            node.submit_transaction(tx).await,
            Err(TxError::Mempool(MempoolError::Full { capacity: 4 })),
            "amount {amount}"
        );
        assert_eq!(node.mempool_len(), 4);
    }
    node.shutdown().await;
}

// ---------------------------------------------------------------------------
// Through the engine: a transfer of an abandoned branch is mined again.
// ---------------------------------------------------------------------------

fn url(name: &str) -> PeerUrl {
    format!("mem://{name}").parse().expect("a valid mem url")
}

/// Waits at most 20 s for something the node does in milliseconds.
async fn timeout<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the node answers in time")
}

async fn launch(
    network: &memory::Network,
    name: &str,
    seed: u64,
    events: &Arc<Mutex<Vec<Event>>>,
) -> Handle {
    let mut config = Config::new(name, url(name));
    config.confirm_timeout = Duration::from_secs(20);
    config.maintenance_interval = Duration::from_millis(200);
    config.seed = Some(seed);
    let log = events.clone();
    Node::builder(params())
        .config(config)
        .wallet(wallet(seed))
        .network(network.clone())
        .observer(move |_: &str, event: &Event| {
            log.lock().expect("not poisoned").push(event.clone());
        })
        .launch()
        .await
        .expect("an in-memory node launches")
}

/// Heights of the blocks on `node`'s best chain that carry `txid`.
fn heights_holding(node: &Handle, txid: &crapcoin_core::TxId) -> Vec<u64> {
    node.with_chain(|chain| {
        chain
            .blocks(0, usize::MAX)
            .iter()
            .filter(|b| b.txid().as_ref() == Some(txid))
            .map(|b| b.header.height)
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_of_an_abandoned_branch_is_mined_again() {
    let network = memory::Network::seeded(7);
    let a_events = Arc::new(Mutex::new(Vec::new()));
    let b_events = Arc::new(Mutex::new(Vec::new()));
    let a = launch(&network, "a", 50, &a_events).await;
    let b = launch(&network, "b", 51, &b_events).await;
    let to: Address = addr(52);

    // Shared start: A earns 50 coins, B syncs it (they are not peers).
    timeout(a.mine()).await.expect("A mines");
    timeout(b.sync_from(a.url())).await.expect("B syncs");
    assert_eq!(b.tip(), a.tip());
    assert!(a.known_peers().is_empty() && b.known_peers().is_empty());

    // Apart: A's transfer is mined on A's chain; B mines a longer one.
    let included = timeout(a.transfer(to, 10))
        .await
        .expect("A's transfer is mined");
    assert_eq!(included.height, 2);
    let txid = a
        .with_chain(|c| c.block_at(2).and_then(|b| b.txid()))
        .expect("the transfer is at height 2");
    for _ in 0..3 {
        timeout(b.mine()).await.expect("B mines");
    }
    assert_eq!((a.height(), b.height()), (2, 4));
    assert_eq!(a.balance(&to).balance, 10);

    // Together: A switches to B's chain, abandoning its block 2.
    timeout(a.add_peer(b.url().clone()))
        .await
        .expect("B answers");
    timeout(a.sync_from(b.url())).await.expect("A syncs from B");
    // The transfer is mined again on top, and B takes that block.
    let settled = kit::time::holds_within(Duration::from_secs(20), || {
        a.height() >= 5 && b.tip() == a.tip() && heights_holding(&a, &txid).len() == 1
    })
    .await;
    assert!(
        settled,
        "A at {} with the transfer at {:?}, B at {}",
        a.height(),
        heights_holding(&a, &txid),
        b.height()
    );
    for node in [&a, &b] {
        let heights = heights_holding(node, &txid);
        assert_eq!(heights.len(), 1, "{}: exactly once", node.name());
        assert!(heights[0] >= 5, "{}: on top of B's chain", node.name());
        assert_eq!(node.balance(&to).balance, 10, "{}", node.name());
        let sender = node.balance(&a.address());
        assert_eq!(sender.nonce, 1, "{}", node.name());
        let state_supply = node.with_chain(|c| c.state().supply());
        assert_eq!(state_supply, node.height() * params().block_reward);
    }
    assert_eq!(a.mempool_len(), 0);
    assert!(
        !a.with_chain(|c| c.is_active(&included.hash)),
        "A's block 2 is abandoned"
    );
    let reorged =
        a_events.lock().expect("not poisoned").iter().any(
            |e| matches!(e, Event::Reorg { depth: 1, old_tip, .. } if *old_tip == included.hash),
        );
    assert!(reorged, "A reports the reorg of its block 2");
    let included_again = a_events
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|e| matches!(e, Event::TransferIncluded { txid: t, .. } if *t == txid))
        .count();
    assert_eq!(included_again, 2, "reported included on both branches");

    a.shutdown().await;
    b.shutdown().await;
}
