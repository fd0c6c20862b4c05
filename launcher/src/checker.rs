//! The checker: after faults and load stop and the network settles, it
//! reads the run's history (the blocks honest nodes held, the transfers
//! they acknowledged, how long they took to agree) and checks the
//! invariants a user of the network relies on, naming every violation:
//!
//! - **validity**: every block an honest node held is rechecked from
//!   scratch (proof of work, signature, balances, nonces, linkage) on a
//!   fresh chain built from genesis by this checker, not by the nodes;
//! - **no acknowledged transfer lost**: every transfer an honest node
//!   acknowledged is on the common chain, above it (within `k` of the
//!   tips), still pending in the mempool of the node that acknowledged it,
//!   or lost;
//! - **conservation**: the coins on the common chain, summed over every
//!   account after replaying it, equal the block rewards minted (fees move
//!   coins, they mint none);
//! - **liveness**: the honest nodes agreed within the stated time after
//!   faults and load stopped.
//!
//! Agreement itself is [`crate::watch`]'s. The checks are pure functions of
//! a [`History`], so they are tested on hand-made histories.

use std::collections::{BTreeMap, BTreeSet};

use crapcoin_core::state::State;
use crapcoin_core::{Block, BlockHash, Chain, Params, TxId, validate};
use crapcoin_node::http::models::AckedItem;
use serde::Serialize;

/// Most blocks the validity check rechecks (each is a few hundred bytes;
/// a long run's honest chains and side branches stay far below).
pub const MAX_CHECKED_BLOCKS: usize = 200_000;
/// Most acknowledged transfers read from one node (pages of 1,000).
pub const MAX_ACKED_PER_NODE: usize = 200_000;
/// Most lost transfers and invalid blocks listed one by one (all are
/// counted).
pub const MAX_LISTED: usize = 1_000;

/// A block an honest node held, and which node.
#[derive(Debug, Clone)]
pub struct Held {
    /// The node's name.
    pub node: String,
    /// The block.
    pub block: Block,
    /// Whether the node had it on its best chain: accepted as its new tip,
    /// or the tip it reorganised onto. Its ancestors were on that chain
    /// too. A block only ever kept on a side branch was not: a node keeps
    /// a deep side block unchecked until its branch could win (DESIGN
    /// §2), so refusing one is no violation.
    pub best: bool,
}

/// A transfer a node acknowledged, and which node.
#[derive(Debug, Clone)]
pub struct Acked {
    /// The node's name.
    pub node: String,
    /// As the node lists it.
    pub item: AckedItem,
}

/// What the checker reads.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The network's parameters (genesis, difficulty, reward).
    pub params: Params,
    /// The honest nodes' common chain, genesis excluded, height 1 first.
    pub common: Vec<Block>,
    /// Blocks of honest nodes' best chains above the common chain.
    pub above: Vec<Block>,
    /// Every other block honest nodes were seen to hold (Sauron's record
    /// of accepted blocks, fetched by hash), any order.
    pub held: Vec<Held>,
    /// Blocks Sauron says an honest node accepted that no node could
    /// serve any more (not rechecked).
    pub unfetched: usize,
    /// Transfers honest nodes acknowledged.
    pub acknowledged: Vec<Acked>,
    /// Of those, the ones watercooler recorded during the run that their
    /// node no longer lists at the end (its record was rolled back, or
    /// the node is gone).
    pub forgotten: BTreeSet<TxId>,
    /// Nodes the Boss restarted on an earlier copy of their data
    /// (rollback): what only their lost disk tail held is the fault's
    /// loss, not the node's.
    pub rolled_back: BTreeSet<String>,
    /// Seconds from the end of faults and load to agreement (`None`: they
    /// did not agree within the settle time).
    pub converged_after_secs: Option<f64>,
    /// The liveness bound.
    pub liveness_secs: f64,
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Violation {
    /// An honest node held a block the checker refuses.
    Validity {
        /// The block.
        block: BlockHash,
        /// Its height.
        height: u64,
        /// A node that held it.
        node: String,
        /// Why it is invalid (the engine's reason name).
        reason: String,
    },
    /// An acknowledged transfer is nowhere.
    Lost {
        /// The transfer.
        id: TxId,
        /// The node that acknowledged it.
        node: String,
        /// When (that node's clock, ms).
        acknowledged_ms: u64,
    },
    /// The coins on the common chain are not the rewards minted.
    Conservation {
        /// Sum of every balance on the common chain.
        supply: u128,
        /// Block reward × common height.
        minted: u128,
    },
    /// The honest nodes did not agree in time.
    Liveness {
        /// The bound.
        limit_secs: f64,
        /// How long it took (`None`: not within the settle time).
        took_secs: Option<f64>,
    },
}

impl Violation {
    /// The name of the check it breaks.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Validity { .. } => "validity",
            Self::Lost { .. } => "lost",
            Self::Conservation { .. } => "conservation",
            Self::Liveness { .. } => "liveness",
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Validity {
                block,
                height,
                node,
                reason,
            } => write!(
                f,
                "validity: {node} held block {block} at height {height}, invalid: {reason}"
            ),
            Self::Lost {
                id,
                node,
                acknowledged_ms,
            } => write!(
                f,
                "lost: transfer {id} acknowledged by {node} at {acknowledged_ms} ms is nowhere"
            ),
            Self::Conservation { supply, minted } => write!(
                f,
                "conservation: {supply} coins on the common chain, {minted} minted"
            ),
            Self::Liveness {
                limit_secs,
                took_secs: Some(took),
            } => write!(
                f,
                "liveness: agreed {took:.1} s after faults and load stopped (limit {limit_secs} s)"
            ),
            Self::Liveness {
                limit_secs,
                took_secs: None,
            } => write!(
                f,
                "liveness: no agreement within the settle time (limit {limit_secs} s)"
            ),
        }
    }
}

/// Where every acknowledged transfer is.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TransferCount {
    /// Distinct transfers acknowledged by honest nodes.
    pub acknowledged: usize,
    /// On the common chain.
    pub on_common_chain: usize,
    /// Above it, on some honest node's best chain (within `k` of the tips).
    pub above_common_chain: usize,
    /// Waiting in the mempool of the node that acknowledged it.
    pub pending: usize,
    /// Nowhere: each is a violation.
    pub lost: usize,
    /// Nowhere, and acknowledged by a node the Boss rolled back whose
    /// record no longer lists it: its only copy was on the disk tail the
    /// fault took (listed, not a violation: a lost disk loses what only
    /// it held).
    pub lost_with_disk: usize,
}

/// The checks' figures and violations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Checks {
    /// Blocks rechecked (common chain, above it, and every other block
    /// honest nodes held that could be fetched).
    pub blocks_checked: usize,
    /// Blocks that could not be rechecked: their parent was never seen
    /// (side branches whose start no node serves), or no node served
    /// them.
    pub blocks_unverifiable: usize,
    /// Blocks refused on recheck that no honest node ever had on its best
    /// chain (side blocks it kept unchecked): counted, not violations.
    pub side_blocks_refused: usize,
    /// Where the acknowledged transfers are.
    pub transfers: TransferCount,
    /// Coins on the common chain (sum of balances after replaying it).
    pub supply: u128,
    /// Rewards minted on it (block reward × its height).
    pub minted: u128,
    /// Seconds from the end of faults and load to agreement.
    pub converged_after_secs: Option<f64>,
    /// The liveness bound.
    pub liveness_secs: f64,
    /// The transfers counted in `transfers.lost_with_disk` (the first
    /// [`MAX_LISTED`]).
    pub lost_with_disk: Vec<Violation>,
    /// Every violation (the first [`MAX_LISTED`] of each kind).
    pub violations: Vec<Violation>,
    /// Violations in all, listed or not.
    pub violation_count: usize,
}

impl Checks {
    /// Whether every check holds.
    pub fn hold(&self) -> bool {
        self.violation_count == 0
    }

    /// The report's lines (figures, then each violation).
    pub fn text(&self) -> String {
        let t = &self.transfers;
        let liveness = match self.converged_after_secs {
            Some(s) => format!(
                "agreed {s:.1} s after faults and load stopped (limit {} s)",
                self.liveness_secs
            ),
            None => format!(
                "no agreement within the settle time (limit {} s)",
                self.liveness_secs
            ),
        };
        let mut out = format!(
            "  validity          {} blocks rechecked from genesis, {} unverifiable, {} refused side blocks (never on a best chain)\n  acknowledged      {} transfers: {} on the common chain, {} above it, {} pending, {} lost, {} lost with a rolled-back disk\n  conservation      {} coins on the common chain, {} minted\n  liveness          {liveness}",
            self.blocks_checked,
            self.blocks_unverifiable,
            self.side_blocks_refused,
            t.acknowledged,
            t.on_common_chain,
            t.above_common_chain,
            t.pending,
            t.lost,
            t.lost_with_disk,
            self.supply,
            self.minted,
        );
        if self.violation_count == 0 {
            out.push_str("\n  violations        none");
        } else {
            out.push_str(&format!("\n  violations        {}", self.violation_count));
            for v in &self.violations {
                out.push_str(&format!("\n    - {v}"));
            }
            let unlisted = self.violation_count - self.violations.len();
            if unlisted > 0 {
                out.push_str(&format!("\n    - ... and {unlisted} more"));
            }
        }
        out
    }
}

/// Runs every check over `history`.
pub fn check(history: &History) -> Checks {
    let mut checks = Checks {
        converged_after_secs: history.converged_after_secs,
        liveness_secs: history.liveness_secs,
        ..Checks::default()
    };
    let mut violations = Vec::new();
    validity(history, &mut checks, &mut violations);
    transfers(history, &mut checks, &mut violations);
    conservation(history, &mut checks, &mut violations);
    let late = history
        .converged_after_secs
        .is_none_or(|took| took > history.liveness_secs);
    if late {
        violations.push(Violation::Liveness {
            limit_secs: history.liveness_secs,
            took_secs: history.converged_after_secs,
        });
    }
    checks.violation_count = violations.len();
    // List at most MAX_LISTED of each kind.
    let mut per_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
    checks.violations = violations
        .into_iter()
        .filter(|v| {
            let n = per_kind.entry(v.check()).or_default();
            *n += 1;
            *n <= MAX_LISTED
        })
        .collect();
    checks
}

/// Rebuilds a chain from genesis with every held block, parents first;
/// every refusal but a missing parent of a block some honest node had on
/// its best chain is a violation.
fn validity(history: &History, checks: &mut Checks, violations: &mut Vec<Violation>) {
    let on_best = best_chain_blocks(history);
    let mut seen = BTreeSet::new();
    let mut blocks: Vec<(&str, &Block)> = Vec::new();
    let reference = "the common chain";
    let chains = history
        .common
        .iter()
        .chain(&history.above)
        .map(|b| (reference, b));
    let held = history.held.iter().map(|h| (h.node.as_str(), &h.block));
    for (node, block) in chains.chain(held) {
        if blocks.len() >= MAX_CHECKED_BLOCKS {
            checks.blocks_unverifiable += 1;
            continue;
        }
        if seen.insert(block.hash()) {
            blocks.push((node, block));
        }
    }
    blocks.sort_by_key(|(_, b)| b.header.height);
    let mut chain = Chain::new(history.params.clone());
    checks.blocks_unverifiable += history.unfetched;
    for (node, block) in blocks {
        let hash = block.hash();
        let height = block.header.height;
        if height == 0 && hash == chain.genesis() {
            continue;
        }
        // Timestamps are not checked against a clock (u64::MAX): a block
        // refused for being early is not invalid (DESIGN §2), and the
        // nodes' clocks may have been skewed on purpose.
        let outcome = validate::check(block.clone(), &history.params)
            .and_then(|checked| chain.insert(checked, u64::MAX));
        match outcome {
            Ok(_) => checks.blocks_checked += 1,
            Err(crapcoin_core::ValidationError::UnknownParent { .. }) => {
                checks.blocks_unverifiable += 1;
            }
            Err(_) if !on_best.contains(&hash) => {
                checks.blocks_checked += 1;
                checks.side_blocks_refused += 1;
            }
            Err(reason) => {
                checks.blocks_checked += 1;
                violations.push(Violation::Validity {
                    block: hash,
                    height,
                    node: node.to_owned(),
                    reason: reason.reason().to_owned(),
                });
            }
        }
    }
}

/// The blocks some honest node had on its best chain: the common chain,
/// the blocks above it, each held block marked `best` and its ancestors
/// among the held blocks.
fn best_chain_blocks(history: &History) -> BTreeSet<BlockHash> {
    let parents: BTreeMap<BlockHash, BlockHash> = history
        .held
        .iter()
        .map(|h| (h.block.hash(), h.block.header.prev_hash))
        .collect();
    let mut on_best: BTreeSet<BlockHash> = history
        .common
        .iter()
        .chain(&history.above)
        .map(Block::hash)
        .collect();
    for held in history.held.iter().filter(|h| h.best) {
        let mut hash = held.block.hash();
        // Each held block is walked at most once: the walk stops at the
        // first block already marked.
        while on_best.insert(hash) {
            match parents.get(&hash) {
                Some(parent) => hash = *parent,
                None => break,
            }
        }
    }
    on_best
}

/// Classifies every acknowledged transfer (the first node to acknowledge
/// an id names it).
fn transfers(history: &History, checks: &mut Checks, violations: &mut Vec<Violation>) {
    let on_common: BTreeSet<TxId> = history.common.iter().filter_map(Block::txid).collect();
    let above: BTreeSet<TxId> = history.above.iter().filter_map(Block::txid).collect();
    let pending: BTreeSet<TxId> = history
        .acknowledged
        .iter()
        .filter(|a| a.item.pending)
        .map(|a| a.item.id)
        .collect();
    let mut first: BTreeMap<TxId, &Acked> = BTreeMap::new();
    for acked in &history.acknowledged {
        first.entry(acked.item.id).or_insert(acked);
    }
    let count = &mut checks.transfers;
    count.acknowledged = first.len();
    let mut lost: Vec<&Acked> = Vec::new();
    for (id, acked) in first {
        if on_common.contains(&id) {
            count.on_common_chain += 1;
        } else if above.contains(&id) {
            count.above_common_chain += 1;
        } else if pending.contains(&id) {
            count.pending += 1;
        } else if history.forgotten.contains(&id) && history.rolled_back.contains(&acked.node) {
            count.lost_with_disk += 1;
            if checks.lost_with_disk.len() < MAX_LISTED {
                checks.lost_with_disk.push(Violation::Lost {
                    id,
                    node: acked.node.clone(),
                    acknowledged_ms: acked.item.acknowledged_ms,
                });
            }
        } else {
            count.lost += 1;
            lost.push(acked);
        }
    }
    lost.sort_by_key(|a| (a.item.acknowledged_ms, a.node.clone()));
    violations.extend(lost.into_iter().map(|a| Violation::Lost {
        id: a.item.id,
        node: a.node.clone(),
        acknowledged_ms: a.item.acknowledged_ms,
    }));
}

/// Replays the common chain on an empty state and compares the sum of
/// balances with the rewards minted.
fn conservation(history: &History, checks: &mut Checks, violations: &mut Vec<Violation>) {
    let reward = history.params.block_reward;
    let mut state = State::new();
    let mut applied: u128 = 0;
    for block in &history.common {
        // A block the state refuses was reported by the validity check;
        // it mints nothing here.
        if state.apply(block, reward).is_ok() {
            applied += 1;
        }
    }
    checks.supply = state
        .accounts()
        .map(|(_, account)| u128::from(account.balance))
        .sum();
    checks.minted = applied * u128::from(reward);
    let expected = history.common.len() as u128 * u128::from(reward);
    if checks.supply != expected || checks.minted != expected {
        violations.push(Violation::Conservation {
            supply: checks.supply,
            minted: expected,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crapcoin_core::{Address, Forge, Transaction, Wallet};

    fn params() -> Params {
        Params::with_difficulty(4)
    }

    /// A chain of `n` blocks; block 2 pays 5 coins from block 1's miner
    /// (wallet 1) to wallet 2.
    fn chain(n: u64) -> (Vec<Block>, Transaction) {
        let params = params();
        let payer = Wallet::from_seed(1);
        let tx = payer.transfer(&params.chain_id(), Wallet::from_seed(2).address(), 5, 1, 0);
        let mut parent = params.genesis().header.clone();
        let mut out = Vec::new();
        for h in 1..=n {
            let forge = Forge::new(&params, &parent)
                .miner(payer.address())
                .timestamp(parent.timestamp + 1);
            let block = if h == 2 {
                forge.tx(tx.clone()).mine()
            } else {
                forge.mine()
            };
            parent = block.header.clone();
            out.push(block);
        }
        (out, tx)
    }

    fn acked(node: &str, id: TxId, seq: u64, pending: bool) -> Acked {
        Acked {
            node: node.to_owned(),
            item: AckedItem {
                seq,
                id,
                from: Address([1; 32]),
                to: Address([2; 32]),
                amount: 5,
                fee: 1,
                nonce: seq,
                acknowledged_ms: 1_000 + seq,
                pending,
            },
        }
    }

    fn history(common: Vec<Block>) -> History {
        History {
            params: params(),
            common,
            liveness_secs: 20.0,
            converged_after_secs: Some(1.5),
            ..History::default()
        }
    }

    #[test]
    fn a_sound_history_holds() {
        let (blocks, tx) = chain(4);
        let mut h = history(blocks);
        h.acknowledged = vec![acked("a", tx.id(), 1, false), acked("b", tx.id(), 7, false)];
        let checks = check(&h);
        assert!(checks.hold(), "{}", checks.text());
        assert_eq!(checks.blocks_checked, 4);
        assert_eq!(checks.transfers.acknowledged, 1, "one id, two nodes");
        assert_eq!(checks.transfers.on_common_chain, 1);
        assert_eq!(checks.supply, 4 * u128::from(params().block_reward));
        assert_eq!(checks.supply, checks.minted);
    }

    /// A branch from genesis whose first block overspends: a node keeps
    /// such a block unchecked on a deep side branch, which is no
    /// violation; it is one as soon as a node had the branch on its best
    /// chain (marked at its tip, the bad block an ancestor).
    #[test]
    fn a_refused_block_is_a_violation_only_if_a_best_chain_held_it() {
        let (blocks, tx) = chain(4);
        let params = params();
        let genesis = params.genesis().header.clone();
        // Wallet 1 pays before it has mined anything on this branch.
        let bad = Forge::new(&params, &genesis)
            .miner(Wallet::from_seed(3).address())
            .timestamp(genesis.timestamp + 1)
            .tx(tx)
            .mine();
        let child = Forge::new(&params, &bad.header)
            .miner(Wallet::from_seed(3).address())
            .timestamp(bad.header.timestamp + 1)
            .mine();
        let mut h = history(blocks);
        for (block, best) in [(bad.clone(), false), (child.clone(), false)] {
            h.held.push(Held {
                node: "bigload-3".into(),
                block,
                best,
            });
        }
        let checks = check(&h);
        assert!(checks.hold(), "{}", checks.text());
        assert_eq!(checks.side_blocks_refused, 2, "the block and its child");
        assert!(checks.text().contains("2 refused side blocks"));

        h.held[1].best = true;
        let checks = check(&h);
        assert!(!checks.hold());
        assert_eq!(checks.side_blocks_refused, 0);
        let reasons: Vec<_> = checks
            .violations
            .iter()
            .map(|v| match v {
                Violation::Validity {
                    block,
                    height,
                    reason,
                    ..
                } => (*block, *height, reason.as_str()),
                other => panic!("only validity breaks: {other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                (bad.hash(), 1, "overspend"),
                (child.hash(), 2, "invalid_ancestor")
            ]
        );
    }

    #[test]
    fn a_transfer_only_a_rolled_back_disk_held_is_the_faults_loss() {
        let (blocks, _) = chain(4);
        let lost = TxId([9; 32]);
        let mut h = history(blocks);
        h.acknowledged = vec![acked("bigload-1", lost, 3, false)];
        h.forgotten.insert(lost);
        h.rolled_back.insert("bigload-1".into());
        let checks = check(&h);
        assert!(checks.hold(), "{}", checks.text());
        assert_eq!(checks.transfers.lost_with_disk, 1);
        assert_eq!(checks.lost_with_disk.len(), 1);
        assert!(checks.text().contains("1 lost with a rolled-back disk"));
        // The node still lists it (its record survived): a violation.
        h.forgotten.clear();
        assert_eq!(check(&h).transfers.lost, 1);
        assert!(!check(&h).hold());
        // Forgotten by a node that was never rolled back: a violation.
        h.forgotten.insert(lost);
        h.rolled_back.clear();
        assert_eq!(check(&h).transfers.lost, 1);
        assert!(!check(&h).hold());
    }

    /// What a case does to a sound history.
    type Damage = Box<dyn Fn(&mut History)>;

    #[test]
    fn each_broken_invariant_is_named() {
        let reward = u128::from(params().block_reward);
        let cases: Vec<(&str, Damage, Violation)> = vec![
            (
                "an honest node held a block with bad proof of work",
                Box::new(|h: &mut History| {
                    let mut bad = h.common[3].clone();
                    // Find a nonce whose hash misses the difficulty.
                    while bad.header.meets_difficulty() {
                        bad.header.nonce += 1;
                    }
                    h.common.truncate(3);
                    h.held.push(Held {
                        node: "bigload-2".into(),
                        block: bad,
                        best: true,
                    });
                }),
                Violation::Validity {
                    block: BlockHash([0; 32]),
                    height: 4,
                    node: "bigload-2".into(),
                    reason: "bad_pow".into(),
                },
            ),
            (
                "an acknowledged transfer is nowhere",
                Box::new(|h: &mut History| {
                    h.acknowledged
                        .push(acked("bigload-1", TxId([9; 32]), 3, false));
                }),
                Violation::Lost {
                    id: TxId([9; 32]),
                    node: "bigload-1".into(),
                    acknowledged_ms: 1_003,
                },
            ),
            (
                "a common chain block spends coins nobody has",
                Box::new(|h: &mut History| {
                    // Block 2's transfer replayed in a chain where its
                    // payer mined nothing: the state refuses it.
                    let params = params();
                    let tx = h.common[1].tx.clone().expect("a transfer");
                    let other = Wallet::from_seed(3).address();
                    let mut parent = params.genesis().header.clone();
                    let mut blocks = Vec::new();
                    for height in 1..=2 {
                        let forge = Forge::new(&params, &parent)
                            .miner(other)
                            .timestamp(parent.timestamp + 1);
                        let block = if height == 2 {
                            forge.tx(tx.clone()).mine()
                        } else {
                            forge.mine()
                        };
                        parent = block.header.clone();
                        blocks.push(block);
                    }
                    h.common = blocks;
                }),
                Violation::Conservation {
                    supply: reward,
                    minted: 2 * reward,
                },
            ),
            (
                "agreement came too late",
                Box::new(|h: &mut History| h.converged_after_secs = Some(25.0)),
                Violation::Liveness {
                    limit_secs: 20.0,
                    took_secs: Some(25.0),
                },
            ),
            (
                "no agreement at all",
                Box::new(|h: &mut History| h.converged_after_secs = None),
                Violation::Liveness {
                    limit_secs: 20.0,
                    took_secs: None,
                },
            ),
        ];
        for (name, damage, want) in cases {
            let (blocks, _) = chain(4);
            let mut h = history(blocks);
            damage(&mut h);
            let checks = check(&h);
            assert!(!checks.hold(), "{name}: {}", checks.text());
            let found = checks.violations.iter().any(|got| match (got, &want) {
                // The forged block's hash is not known in advance.
                (
                    Violation::Validity {
                        height,
                        node,
                        reason,
                        ..
                    },
                    Violation::Validity {
                        height: h2,
                        node: n2,
                        reason: r2,
                        ..
                    },
                ) => (height, node, reason) == (h2, n2, r2),
                (got, want) => got == want,
            });
            assert!(found, "{name}: want {want:?} in {:?}", checks.violations);
        }
    }

    #[test]
    fn transfers_are_classified() {
        let (blocks, tx) = chain(4);
        let mut h = history(blocks[..1].to_vec());
        h.above = blocks[1..].to_vec();
        h.acknowledged = vec![
            acked("a", tx.id(), 1, false),
            acked("a", TxId([7; 32]), 2, true),
            acked("b", TxId([8; 32]), 1, false),
        ];
        let checks = check(&h);
        let t = &checks.transfers;
        assert_eq!(
            (
                t.acknowledged,
                t.on_common_chain,
                t.above_common_chain,
                t.pending,
                t.lost
            ),
            (3, 0, 1, 1, 1)
        );
        assert_eq!(checks.violation_count, 1);
        assert!(
            checks.text().contains("lost: transfer"),
            "{}",
            checks.text()
        );
    }
}
