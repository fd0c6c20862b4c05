//! One test network's parameters, deterministic wallets, and block
//! builders on top of [`Forge`], so every test builds blocks the same way;
//! and chains built from them block by block, as a node would.

use crapcoin_core::block::BlockHeader;
use crapcoin_core::chain::Outcome;
use crapcoin_core::{
    Address, Block, BlockHash, Chain, CheckedBlock, Forge, Params, Transaction, ValidationError,
    Wallet, validate,
};

/// Proof-of-work bits of the test network: about 256 hashes a block, so
/// debug builds mine hundreds of blocks per second.
pub const DIFFICULTY: u8 = 8;

/// The test network's parameters.
pub fn params() -> Params {
    Params::with_difficulty(DIFFICULTY)
}

/// The test network's chain id (what transactions are signed for).
pub fn chain_id() -> BlockHash {
    params().chain_id()
}

/// The receivers' clock in chain-level tests: a minute after genesis, well
/// past every timestamp [`forge`] gives (one millisecond per block).
pub fn now() -> u64 {
    params().genesis_timestamp + 60_000
}

/// The deterministic wallet number `seed`.
pub fn wallet(seed: u64) -> Wallet {
    Wallet::from_seed(seed)
}

/// The address of wallet number `seed`.
pub fn addr(seed: u64) -> Address {
    wallet(seed).address()
}

/// A transfer signed by wallet `from` for the test network.
pub fn pay(from: u64, to: Address, amount: u64, fee: u64, nonce: u64) -> Transaction {
    wallet(from).transfer(&chain_id(), to, amount, fee, nonce)
}

/// A builder for a child of `parent` paying `miner`, stamped one
/// millisecond after its parent. Siblings need different miners (or
/// timestamps, or transactions) to be different blocks.
pub fn forge(parent: &BlockHeader, miner: Address) -> Forge {
    Forge::new(&params(), parent)
        .miner(miner)
        .timestamp(parent.timestamp + 1)
}

/// A mined child of `parent` paying `miner`, carrying `tx`.
pub fn block_on(parent: &BlockHeader, miner: Address, tx: Option<Transaction>) -> Block {
    let forge = forge(parent, miner);
    match tx {
        Some(tx) => forge.tx(tx).mine(),
        None => forge.mine(),
    }
}

/// Runs the context-free checks on a block the test built as valid.
///
/// # Panics
///
/// When the block fails them: the test itself is wrong then.
pub fn checked(block: Block) -> CheckedBlock {
    validate::check(block, &params()).expect("the test built a block that passes check")
}

/// What a node does with a block from the network: check, then insert at
/// [`now`].
///
/// # Errors
///
/// The first failing check's error.
pub fn submit(chain: &mut Chain, block: Block) -> Result<Outcome, ValidationError> {
    let block = validate::check(block, chain.params())?;
    chain.insert(block, now())
}

/// A chain of `blocks` inserted one by one into a fresh chain.
///
/// # Panics
///
/// When any block is refused.
pub fn chain_of(blocks: &[Block]) -> Chain {
    let mut chain = Chain::new(params());
    for (i, block) in blocks.iter().enumerate() {
        if let Err(e) = submit(&mut chain, block.clone()) {
            panic!("block {i} of a chain built as valid is refused: {e}");
        }
    }
    chain
}

/// `n` coinbase-only blocks on `parent`, each paying `miner`.
pub fn branch(parent: &BlockHeader, n: usize, miner: Address) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::with_capacity(n);
    let mut parent = parent.clone();
    for _ in 0..n {
        let block = block_on(&parent, miner, None);
        parent = block.header.clone();
        out.push(block);
    }
    out
}

/// Mines `n` coinbase-only blocks on the chain's tip for `miner`, inserting
/// each; returns them.
///
/// # Panics
///
/// When the chain refuses one of them.
pub fn extend(chain: &mut Chain, n: usize, miner: Address) -> Vec<Block> {
    let blocks = branch(&chain.tip_block().header, n, miner);
    for block in &blocks {
        let outcome = submit(chain, block.clone()).expect("an honest block is accepted");
        assert!(
            matches!(outcome, Outcome::TipChanged(ref c) if !c.is_reorg()),
            "an honest block on the tip extends it: {outcome:?}"
        );
    }
    blocks
}

/// Wallet number `seed` after mining block 1: 50 coins, nonce 0.
pub fn funded_chain(seed: u64) -> Chain {
    let mut chain = Chain::new(params());
    extend(&mut chain, 1, addr(seed));
    chain
}

/// The tip's header (the parent of the next block).
pub fn tip_header(chain: &Chain) -> BlockHeader {
    chain.tip_block().header.clone()
}
