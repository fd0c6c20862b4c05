//! Acknowledged transfers on the engine: recorded in the store before the
//! caller hears of them, and put back into the mempool when a node starts
//! again on its store, except one that no longer fits the chain, which
//! stays in the record only.

use std::time::Duration;

use crapcoin_core::network::MAX_ACKED_PAGE;
use crapcoin_core::{
    Config, Forge, Handle, HashPower, Mining, Node, Store, Wallet, memory, validate,
};
use kit::chain::{addr, params};

/// The node's wallet.
const NODE: u64 = 1;
/// Whom it pays.
const PAYEE: u64 = 2;

/// A node on `store` that mines nothing on its own (a hash share of 0):
/// transfers wait in its mempool.
async fn launch(store: &memory::Store) -> Handle {
    let mut config = Config::new("a", "mem://a".parse().expect("url"));
    config.mining =
        Mining::Scheduled(HashPower::new(0.0, Duration::from_secs(3600)).expect("a valid power"));
    Node::builder(params())
        .config(config)
        .wallet(Wallet::from_seed(NODE))
        .store(store.clone())
        .launch()
        .await
        .expect("launches")
}

#[tokio::test]
async fn a_restart_repools_what_was_acknowledged_unless_the_chain_took_its_nonce() {
    let store = memory::Store::default();
    let node = launch(&store).await;
    // Coins for the node: three coinbase-only blocks on demand.
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(30), node.mine())
            .await
            .expect("a block at difficulty 8 takes milliseconds")
            .expect("mines");
    }
    let first = node
        .submit_transfer(addr(PAYEE), 5)
        .await
        .expect("accepted");
    let second = node
        .submit_transfer(addr(PAYEE), 6)
        .await
        .expect("accepted");
    let listed = node.acknowledged(0, MAX_ACKED_PAGE).await.expect("reads");
    assert_eq!(
        listed.iter().map(|t| (t.seq, t.id)).collect::<Vec<_>>(),
        [(1, first), (2, second)],
        "recorded in order before being acknowledged"
    );
    assert_eq!(node.pending(&[first, second]), [true, true]);
    let tip = node.with_chain(|c| c.tip_block().header.clone());
    node.shutdown().await;

    // While it was down, its wallet's nonce 0 went into a block on its
    // chain with another transfer: the first acknowledged one can never be
    // mined any more; the second (nonce 1) still can.
    let conflict = Wallet::from_seed(NODE).transfer(&params().chain_id(), addr(3), 7, 1, 0);
    let block = Forge::new(&params(), &tip)
        .miner(addr(4))
        .timestamp(tip.timestamp + 1)
        .tx(conflict)
        .mine();
    let checked = validate::check(block, &params()).expect("valid");
    store
        .save_blocks(&[std::sync::Arc::new(checked)])
        .await
        .expect("stores");

    let node = launch(&store).await;
    assert_eq!(node.height(), 4);
    let pooled: Vec<_> = node.mempool().iter().map(|tx| tx.id()).collect();
    assert_eq!(
        pooled,
        [second],
        "only the transfer that still fits is back"
    );
    assert_eq!(node.pending(&[first, second]), [false, true]);
    let listed = node.acknowledged(0, MAX_ACKED_PAGE).await.expect("reads");
    assert_eq!(listed.len(), 2, "the record keeps both");
    assert_eq!(node.acknowledged(1, 1).await.expect("reads")[0].id, second);
    node.shutdown().await;
}
