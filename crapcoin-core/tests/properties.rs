//! Property tests of the protocol: the canonical encoding and the JSON wire
//! form round-trip, decoding arbitrary bytes never panics, a chain built by
//! honest miners always validates, and mutating any single field of a
//! valid block is caught.
//!
//! Case counts are modest so the suite stays fast in debug builds.

use std::collections::HashMap;

use crapcoin_core::block::{
    BlockJson, HEADER_ENCODED_LEN, MAX_BLOCK_ENCODED_LEN, MAX_BLOCK_JSON_LEN, tx_root,
};
use crapcoin_core::chain::Outcome;
use crapcoin_core::encode::{Decode, Encode};
use crapcoin_core::mining;
use crapcoin_core::tx::TX_ENCODED_LEN;
use crapcoin_core::{
    Address, Block, BlockHash, BlockHeader, Chain, Signature, Transaction, TxId, validate,
};
use proptest::prelude::{
    ProptestConfig, Strategy, any, prop, prop_assert, prop_assert_eq, prop_assert_ne, prop_oneof,
    proptest,
};

use kit::chain::{addr, block_on, forge, funded_chain, now, params, pay, tip_header};

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

fn bytes32() -> impl Strategy<Value = [u8; 32]> {
    prop::array::uniform::<_, 32>(any::<u8>())
}

fn bytes64() -> impl Strategy<Value = [u8; 64]> {
    prop::array::uniform::<_, 64>(any::<u8>())
}

/// Any transaction, valid or not.
fn arb_tx() -> impl Strategy<Value = Transaction> {
    (
        bytes32(),
        bytes32(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        bytes64(),
    )
        .prop_map(|(from, to, amount, fee, nonce, signature)| Transaction {
            from: Address(from),
            to: Address(to),
            amount,
            fee,
            nonce,
            signature: Signature(signature),
        })
}

/// Any header, valid or not.
fn arb_header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u64>(),
        bytes32(),
        any::<u64>(),
        any::<u8>(),
        any::<u64>(),
        bytes32(),
        bytes32(),
    )
        .prop_map(
            |(height, prev_hash, timestamp, difficulty, nonce, miner, tx_root)| BlockHeader {
                height,
                prev_hash: BlockHash(prev_hash),
                timestamp,
                difficulty,
                nonce,
                miner: Address(miner),
                tx_root: BlockHash(tx_root),
            },
        )
}

/// Any block, with or without a transaction.
fn arb_block() -> impl Strategy<Value = Block> {
    (arb_header(), prop::option::of(arb_tx())).prop_map(|(header, tx)| Block { header, tx })
}

/// A small edit of a byte string: what a flaky or hostile sender produces
/// from a valid encoding.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1..=u8::MAX).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
    ]
}

fn apply_edit(mut bytes: Vec<u8>, edit: &Edit) -> Vec<u8> {
    let len = bytes.len();
    match *edit {
        Edit::Truncate(i) => bytes.truncate(i % (len + 1)),
        Edit::Flip(i, b) if len > 0 => bytes[i % len] ^= b,
        Edit::Insert(i, b) => bytes.insert(i % (len + 1), b),
        Edit::Remove(i) if len > 0 => {
            bytes.remove(i % len);
        }
        Edit::Flip(..) | Edit::Remove(_) => {}
    }
    bytes
}

/// Decodes `bytes` as `T`; whatever decodes must re-encode to the same
/// bytes (the encoding is canonical: one value, one byte string).
fn decode_is_canonical<T: Decode + Encode>(bytes: &[u8]) -> bool {
    match T::decode(bytes) {
        Ok(value) => value.encode() == bytes,
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------
// Encoding and JSON.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn transaction_encoding_round_trips(tx in arb_tx()) {
        let bytes = tx.encode();
        prop_assert_eq!(bytes.len(), TX_ENCODED_LEN);
        prop_assert_eq!(Transaction::decode(&bytes), Ok(tx));
    }

    #[test]
    fn header_encoding_round_trips(header in arb_header()) {
        let bytes = header.encode();
        prop_assert_eq!(bytes.len(), HEADER_ENCODED_LEN);
        prop_assert_eq!(BlockHeader::decode(&bytes), Ok(header));
    }

    #[test]
    fn block_encoding_round_trips(block in arb_block()) {
        let bytes = block.encode();
        let want = if block.tx.is_some() { MAX_BLOCK_ENCODED_LEN } else { HEADER_ENCODED_LEN + 1 };
        prop_assert_eq!(bytes.len(), want);
        prop_assert_eq!(Block::decode(&bytes), Ok(block));
    }

    #[test]
    fn block_json_round_trips(block in arb_block()) {
        // The wire form carries the true hash, so parsing accepts it.
        let bytes = serde_json::to_vec(&block).expect("blocks serialise");
        prop_assert!(bytes.len() <= MAX_BLOCK_JSON_LEN, "honest JSON fits the cap");
        prop_assert_eq!(BlockJson::parse(&bytes), Ok(block.clone()));
        let json = block.to_json();
        prop_assert_eq!(json.hash, block.hash());
        let text = serde_json::to_string(&json).expect("serialises");
        let back: BlockJson = serde_json::from_str(&text).expect("parses");
        prop_assert_eq!(&back, &json);
        prop_assert_eq!(back.into_block(), Ok(block));
    }

    #[test]
    fn transaction_and_header_json_round_trip(tx in arb_tx(), header in arb_header()) {
        let text = serde_json::to_string(&tx).expect("serialises");
        prop_assert_eq!(serde_json::from_str::<Transaction>(&text).expect("parses"), tx);
        let text = serde_json::to_string(&header).expect("serialises");
        prop_assert_eq!(serde_json::from_str::<BlockHeader>(&text).expect("parses"), header);
    }

    #[test]
    fn hex_newtypes_round_trip(a in bytes32(), b in bytes64()) {
        fn check<T>(value: T, len: usize) -> Result<(), proptest::test_runner::TestCaseError>
        where
            T: std::fmt::Display + std::str::FromStr + serde::Serialize
                + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Copy,
            <T as std::str::FromStr>::Err: std::fmt::Debug,
        {
            let text = value.to_string();
            prop_assert_eq!(text.len(), 2 * len);
            prop_assert!(text.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
            prop_assert_eq!(text.parse::<T>().expect("parses"), value);
            let json = serde_json::to_string(&value).expect("serialises");
            prop_assert_eq!(&json, &format!("\"{text}\""));
            let back: T = serde_json::from_str(&json).expect("parses");
            prop_assert_eq!(back, value);
            // One hex digit short is refused, never truncated or padded.
            prop_assert!(text[1..].parse::<T>().is_err());
            let short = format!("\"{}\"", &text[1..]);
            prop_assert!(serde_json::from_str::<T>(&short).is_err());
            Ok(())
        }
        check(BlockHash(a), 32)?;
        check(TxId(a), 32)?;
        check(Address(a), 32)?;
        check(Signature(b), 64)?;
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(decode_is_canonical::<Transaction>(&bytes));
        prop_assert!(decode_is_canonical::<BlockHeader>(&bytes));
        prop_assert!(decode_is_canonical::<Block>(&bytes));
        let _ = BlockJson::parse(&bytes);
    }

    #[test]
    fn decoding_exact_length_bytes_never_panics(
        tx in prop::collection::vec(any::<u8>(), TX_ENCODED_LEN),
        header in prop::collection::vec(any::<u8>(), HEADER_ENCODED_LEN),
        tag in 0u8..3,
    ) {
        // Random bytes of the right length decode; whatever decodes is canonical.
        prop_assert!(Transaction::decode(&tx).is_ok());
        prop_assert!(BlockHeader::decode(&header).is_ok());
        let mut block = header.clone();
        block.push(tag);
        if tag == 1 {
            block.extend_from_slice(&tx);
        }
        prop_assert!(decode_is_canonical::<Block>(&block));
        prop_assert_eq!(Block::decode(&block).is_ok(), tag < 2);
    }

    #[test]
    fn decoding_an_edited_encoding_never_panics(block in arb_block(), edit in arb_edit()) {
        let bytes = apply_edit(block.encode(), &edit);
        prop_assert!(decode_is_canonical::<Block>(&bytes));
        prop_assert!(decode_is_canonical::<BlockHeader>(&bytes));
        prop_assert!(decode_is_canonical::<Transaction>(&bytes));
    }

    #[test]
    fn parsing_edited_json_never_panics(block in arb_block(), edit in arb_edit()) {
        let bytes = apply_edit(serde_json::to_vec(&block).expect("serialises"), &edit);
        // Whatever parses is a block whose claimed hash is its true hash.
        if let Ok(parsed) = BlockJson::parse(&bytes) {
            let claimed: serde_json::Value = serde_json::from_slice(&bytes).expect("it parsed");
            let hash = parsed.hash().to_string();
            prop_assert_eq!(claimed["hash"].as_str(), Some(hash.as_str()));
        }
    }
}

// ---------------------------------------------------------------------------
// A chain built by honest miners.
// ---------------------------------------------------------------------------

/// Wallets taking part in the honest chains.
const WALLETS: u64 = 4;

/// One step of an honest miner: a coinbase-only block, or a transfer
/// (scaled to what the sender holds; a broke sender mines instead).
#[derive(Debug, Clone)]
enum Step {
    Mine {
        miner: u64,
    },
    Transfer {
        miner: u64,
        from: u64,
        to: u64,
        percent: u64,
        fee: u64,
    },
}

fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        (0..WALLETS).prop_map(|miner| Step::Mine { miner }),
        (0..WALLETS, 0..WALLETS, 0..WALLETS, 1..=100u64, 0..3u64).prop_map(
            |(miner, from, to, percent, fee)| Step::Transfer {
                miner,
                from,
                to,
                percent,
                fee,
            }
        ),
    ];
    prop::collection::vec(step, 1..12)
}

/// The blocks of `steps` and the balances and nonces they must leave, by
/// wallet number, computed without the crate's state code.
fn honest_chain(steps: &[Step]) -> (Vec<Block>, HashMap<u64, (u64, u64)>) {
    let reward = params().block_reward;
    let mut accounts: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut parent = params().genesis().header.clone();
    let mut blocks = Vec::new();
    for step in steps {
        let (miner, tx) = match *step {
            Step::Mine { miner } => (miner, None),
            Step::Transfer {
                miner,
                from,
                to,
                percent,
                fee,
            } => {
                let (balance, nonce) = accounts.get(&from).copied().unwrap_or_default();
                if balance < 2 {
                    (miner, None)
                } else {
                    let fee = fee.min(balance - 1);
                    let amount = ((balance - fee) * percent / 100).max(1);
                    let sender = accounts.entry(from).or_default();
                    sender.0 -= amount + fee;
                    sender.1 += 1;
                    accounts.entry(to).or_default().0 += amount;
                    accounts.entry(miner).or_default().0 += fee;
                    (miner, Some(pay(from, addr(to), amount, fee, nonce)))
                }
            }
        };
        accounts.entry(miner).or_default().0 += reward;
        let block = block_on(&parent, addr(miner), tx);
        parent = block.header.clone();
        blocks.push(block);
    }
    (blocks, accounts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn honest_chains_always_validate(steps in arb_steps()) {
        let (blocks, accounts) = honest_chain(&steps);
        let n = blocks.len() as u64;

        // One by one, as gossip delivers them: each extends the tip.
        let mut chain = Chain::new(params());
        for block in &blocks {
            let checked = validate::check(block.clone(), &params());
            prop_assert!(checked.is_ok(), "{:?}", checked);
            let outcome = chain.insert(checked.expect("checked above"), now());
            prop_assert!(
                matches!(outcome, Ok(Outcome::TipChanged(ref c)) if !c.is_reorg()),
                "{:?}", outcome
            );
        }
        prop_assert_eq!(chain.height(), n);
        prop_assert_eq!(chain.tip(), blocks.last().expect("at least one").hash());
        prop_assert_eq!(chain.state().supply(), n * params().block_reward);
        let held: u64 = chain.state().accounts().map(|(_, a)| a.balance).sum();
        prop_assert_eq!(held, chain.state().supply(), "coins are conserved");
        for seed in 0..WALLETS {
            let (balance, nonce) = accounts.get(&seed).copied().unwrap_or_default();
            let account = chain.state().account(&addr(seed));
            prop_assert_eq!((account.balance, account.nonce), (balance, nonce), "wallet {}", seed);
        }

        // All at once, as a sync delivers them: the same chain and state.
        let mut synced = Chain::new(params());
        let checked = validate::check_batch(blocks.clone(), &params());
        prop_assert!(checked.is_ok(), "{:?}", checked.as_ref().err());
        let outcome = synced.insert_segment(checked.expect("checked above"), now());
        prop_assert!(matches!(outcome, Ok(Outcome::TipChanged(_))), "{:?}", outcome);
        prop_assert_eq!(synced.tip(), chain.tip());
        prop_assert_eq!(synced.state(), chain.state());
    }
}

// ---------------------------------------------------------------------------
// Mutating one field of a valid block.
// ---------------------------------------------------------------------------

/// Pays the transfers of the mutated blocks.
const RICH: u64 = 1;

/// One field changed by XOR with a non-zero value.
#[derive(Debug, Clone, Copy)]
enum Field {
    Height(u64),
    PrevHash([u8; 32]),
    Timestamp(u64),
    Difficulty(u8),
    Nonce(u64),
    Miner([u8; 32]),
    TxRoot([u8; 32]),
    TxFrom([u8; 32]),
    TxTo([u8; 32]),
    TxAmount(u64),
    TxFee(u64),
    TxNonce(u64),
    TxSignature([u8; 64]),
}

/// A non-zero XOR mask: small ones (near misses) as often as arbitrary ones.
fn mask64() -> impl Strategy<Value = u64> {
    prop_oneof![1..16u64, 1..=u64::MAX]
}

fn mask32() -> impl Strategy<Value = [u8; 32]> {
    prop_oneof![
        (0..32usize, 1..=u8::MAX).prop_map(|(i, b)| {
            let mut m = [0; 32];
            m[i] = b;
            m
        }),
        bytes32().prop_filter("non-zero", |m| *m != [0; 32]),
    ]
}

fn arb_field() -> impl Strategy<Value = Field> {
    prop_oneof![
        mask64().prop_map(Field::Height),
        mask32().prop_map(Field::PrevHash),
        mask64().prop_map(Field::Timestamp),
        (1..=u8::MAX).prop_map(Field::Difficulty),
        mask64().prop_map(Field::Nonce),
        mask32().prop_map(Field::Miner),
        mask32().prop_map(Field::TxRoot),
        mask32().prop_map(Field::TxFrom),
        mask32().prop_map(Field::TxTo),
        mask64().prop_map(Field::TxAmount),
        mask64().prop_map(Field::TxFee),
        mask64().prop_map(Field::TxNonce),
        (0..64usize, 1..=u8::MAX).prop_map(|(i, b)| {
            let mut m = [0; 64];
            m[i] = b;
            Field::TxSignature(m)
        }),
    ]
}

fn xor32(a: &mut [u8; 32], m: &[u8; 32]) {
    a.iter_mut().zip(m).for_each(|(a, m)| *a ^= m);
}

fn mutate(block: &mut Block, field: Field) {
    let header = &mut block.header;
    let tx = block.tx.as_mut().expect("mutated blocks carry a transfer");
    match field {
        Field::Height(m) => header.height ^= m,
        Field::PrevHash(m) => xor32(&mut header.prev_hash.0, &m),
        Field::Timestamp(m) => header.timestamp ^= m,
        Field::Difficulty(m) => header.difficulty ^= m,
        Field::Nonce(m) => header.nonce ^= m,
        Field::Miner(m) => xor32(&mut header.miner.0, &m),
        Field::TxRoot(m) => xor32(&mut header.tx_root.0, &m),
        Field::TxFrom(m) => xor32(&mut tx.from.0, &m),
        Field::TxTo(m) => xor32(&mut tx.to.0, &m),
        Field::TxAmount(m) => tx.amount ^= m,
        Field::TxFee(m) => tx.fee ^= m,
        Field::TxNonce(m) => tx.nonce ^= m,
        Field::TxSignature(m) => tx.signature.0.iter_mut().zip(m).for_each(|(s, m)| *s ^= m),
    }
}

/// A valid block on [`funded_chain`]'s tip: a transfer from [`RICH`] that
/// fits the 50 coins it holds, mined by `miner`.
fn valid_block(chain: &Chain, miner: u64, amount: u64, fee: u64) -> Block {
    block_on(
        &tip_header(chain),
        addr(miner),
        Some(pay(RICH, addr(2), amount, fee, 0)),
    )
}

/// What the receiver must answer for a block whose header, after the
/// mutation, still (or again) meets its target: the check that guards the
/// field, or acceptance for fields only proof of work protects.
fn reason_for_mined(field: Field, block: &Block, parent: &BlockHeader) -> Option<&'static str> {
    let header = &block.header;
    let tx = block.tx.as_ref().expect("mutated blocks carry a transfer");
    let max = now() + params().max_future_ms;
    match field {
        Field::Height(_) if header.height == 0 => Some("wrong_genesis"),
        Field::Height(_) => Some("bad_height"),
        Field::PrevHash(_) => Some("unknown_parent"),
        Field::Difficulty(_) => Some("wrong_difficulty"),
        Field::TxRoot(_) => Some("bad_tx_root"),
        Field::Timestamp(_) if header.timestamp < parent.timestamp => {
            Some("timestamp_before_parent")
        }
        Field::Timestamp(_) if header.timestamp > max => Some("timestamp_too_new"),
        // A different timestamp in range, another nonce that meets the
        // target, or another miner who redid the work: a different valid
        // block. Only proof of work protects these fields.
        Field::Timestamp(_) | Field::Nonce(_) | Field::Miner(_) => None,
        Field::TxAmount(_) if tx.amount == 0 => Some("zero_amount"),
        Field::TxAmount(_) | Field::TxFee(_) if tx.total().is_none() => Some("overflow"),
        // The signature covers every other field of the transfer.
        Field::TxFrom(_)
        | Field::TxTo(_)
        | Field::TxAmount(_)
        | Field::TxFee(_)
        | Field::TxNonce(_)
        | Field::TxSignature(_) => Some("bad_signature"),
    }
}

/// Check, then insert against `chain`; the chain must be unchanged when
/// the block is refused.
fn receive(chain: &Chain, block: Block) -> Result<(), &'static str> {
    let mut chain = chain.clone();
    let tip = chain.tip();
    let hash = block.hash();
    let result = validate::check(block, chain.params()).and_then(|b| chain.insert(b, now()));
    match result {
        Ok(_) => {
            assert!(chain.contains(&hash));
            Ok(())
        }
        Err(e) => {
            assert_eq!(chain.tip(), tip, "a refused block moved the tip");
            assert!(!chain.contains(&hash), "a refused block is kept");
            Err(e.reason())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The mutated block as it is: the header's proof of work no longer
    /// matches (or the transaction no longer matches the root it commits to).
    #[test]
    fn mutating_one_field_makes_a_valid_block_invalid(
        miner in 0..WALLETS,
        amount in 1..=49u64,
        fee in 0..=1u64,
        field in arb_field(),
    ) {
        let chain = funded_chain(RICH);
        let parent = tip_header(&chain);
        let original = valid_block(&chain, miner, amount, fee);
        prop_assert_eq!(receive(&chain, original.clone()), Ok(()), "the original is valid");

        let mut block = original.clone();
        mutate(&mut block, field);
        let header_changed = !matches!(
            field,
            Field::TxFrom(_) | Field::TxTo(_) | Field::TxAmount(_) | Field::TxFee(_)
                | Field::TxNonce(_) | Field::TxSignature(_)
        );
        // The hash commits to every header field; the tx root to every
        // field of the transfer.
        if header_changed {
            prop_assert_ne!(block.hash(), original.hash());
        } else {
            prop_assert_ne!(block.txid(), original.txid());
        }
        let want = if matches!(field, Field::Difficulty(_)) {
            // Checked before anything else.
            Some("wrong_difficulty")
        } else if !header_changed {
            // The header (and its proof of work) is intact, but it commits
            // to the original transfer.
            Some("bad_tx_root")
        } else if !block.header.meets_difficulty() {
            Some("bad_pow")
        } else {
            // About one mutation in 256 still meets 8 bits of work.
            reason_for_mined(field, &block, &parent)
        };
        prop_assert_eq!(receive(&chain, block), want.map_or(Ok(()), Err));
    }

    /// The mutated block with its tx root recomputed and its proof of work
    /// redone, as a forger would: every field is still guarded by a check of
    /// its own (except those only proof of work protects).
    #[test]
    fn a_mutated_block_with_fresh_proof_of_work_is_still_caught(
        miner in 0..WALLETS,
        amount in 1..=49u64,
        fee in 0..=1u64,
        field in arb_field().prop_filter(
            "re-mining at another difficulty could take forever, and re-mining \
             replaces the nonce",
            |f| !matches!(f, Field::Difficulty(_) | Field::Nonce(_)),
        ),
    ) {
        let chain = funded_chain(RICH);
        let parent = tip_header(&chain);
        let mut block = valid_block(&chain, miner, amount, fee);
        mutate(&mut block, field);
        if !matches!(field, Field::TxRoot(_)) {
            block.header.tx_root = tx_root(block.tx.as_ref());
        }
        block.header = mining::mine_blocking(block.header.clone());
        let want = reason_for_mined(field, &block, &parent);
        prop_assert_eq!(receive(&chain, block), want.map_or(Ok(()), Err));
    }
}

/// The forger's mutations of the difficulty field, at difficulties that
/// can be re-mined quickly: refused for the difficulty, whatever the work.
#[test]
fn another_difficulty_is_refused_even_with_its_work_done() {
    let chain = funded_chain(RICH);
    for difficulty in [0, 1, 7, 9, 12] {
        let block = forge(&tip_header(&chain), addr(0))
            .difficulty(difficulty)
            .mine();
        assert_eq!(
            receive(&chain, block),
            Err("wrong_difficulty"),
            "difficulty {difficulty}"
        );
    }
    let block = forge(&tip_header(&chain), addr(0))
        .difficulty(kit::chain::DIFFICULTY)
        .mine();
    assert_eq!(receive(&chain, block), Ok(()));
}

// ---------------------------------------------------------------------------
// Batch checks agree with one-by-one checks.
// ---------------------------------------------------------------------------

/// How one block of a batch is made.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Coinbase,
    Transfer,
    BadSignature,
    BadPow,
    WrongDifficulty,
    BadTxRoot,
    ZeroAmount,
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => proptest::strategy::Just(Kind::Coinbase),
        4 => proptest::strategy::Just(Kind::Transfer),
        1 => proptest::strategy::Just(Kind::BadSignature),
        1 => proptest::strategy::Just(Kind::BadPow),
        1 => proptest::strategy::Just(Kind::WrongDifficulty),
        1 => proptest::strategy::Just(Kind::BadTxRoot),
        1 => proptest::strategy::Just(Kind::ZeroAmount),
    ]
}

/// Block `i` of a batch, made as `kind` says. Blocks of a batch need not
/// link up: these checks do not look at parents.
fn batch_block(i: u64, kind: Kind) -> Block {
    let parent = params().genesis().header.clone();
    let miner = addr(3000 + i);
    let transfer = || pay(RICH, addr(2), 1 + i, 1, i);
    match kind {
        Kind::Coinbase => forge(&parent, miner).mine(),
        Kind::Transfer => forge(&parent, miner).tx(transfer()).mine(),
        Kind::BadSignature => {
            let mut tx = transfer();
            tx.signature = pay(RICH, addr(2), 2 + i, 1, i).signature;
            forge(&parent, miner).tx(tx).mine()
        }
        Kind::BadPow => forge(&parent, miner).tx(transfer()).bad_pow(),
        Kind::WrongDifficulty => forge(&parent, miner)
            .difficulty(kit::chain::DIFFICULTY - 1)
            .mine(),
        Kind::BadTxRoot => forge(&parent, miner)
            .tx(transfer())
            .tx_root(tx_root(None))
            .mine(),
        Kind::ZeroAmount => forge(&parent, miner).tx(pay(RICH, addr(2), 0, 1, i)).mine(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `check_batch` answers exactly what checking one by one answers: the
    /// first failing block's index and error, or every block checked.
    #[test]
    fn check_batch_agrees_with_check(kinds in prop::collection::vec(arb_kind(), 1..8)) {
        let blocks: Vec<Block> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| batch_block(i as u64, *kind))
            .collect();
        let one_by_one = blocks
            .iter()
            .enumerate()
            .find_map(|(i, b)| validate::check(b.clone(), &params()).err().map(|e| (i, e)));
        match (validate::check_batch(blocks.clone(), &params()), one_by_one) {
            (Ok(checked), None) => {
                let hashes: Vec<BlockHash> = checked.iter().map(|b| b.hash()).collect();
                let want: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
                prop_assert_eq!(hashes, want);
            }
            (Err(got), Some(want)) => prop_assert_eq!(got, want, "kinds {:?}", kinds),
            (got, want) => prop_assert!(false, "batch {:?}, one by one {:?}", got.map(|_| ()), want),
        }
    }
}
