//! Acknowledged transfers on the engine: recorded in the store before the
//! caller hears of them, and put back into the mempool when a node starts
//! again on its store, except one that no longer fits the chain, which
//! stays in the record only.

use std::time::Duration;

use crapcoin_core::network::MAX_ACKED_PAGE;
use crapcoin_core::{
    Config, Forge, Handle, HashPower, Mining, Node, Store, Wallet, memory, validate,
};
use kit::chain::{addr, branch, params};

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

/// A node back on an older copy of its data (a lost disk tail) whose
/// wallet spent a nonce on the network's chain after that copy was taken
/// signs nothing until it has synced from its peers: a transfer signed on
/// the old chain would reuse the spent nonce, be acknowledged, and never be
/// mined.
#[tokio::test]
async fn a_node_back_on_an_older_copy_signs_nothing_before_it_has_synced() {
    let coins = branch(&params().genesis().header, 3, addr(NODE));
    let tip = coins.last().expect("three blocks").header.clone();
    let spent = kit::chain::pay(NODE, addr(3), 7, 1, 0);
    let network_chain: Vec<_> = coins
        .iter()
        .cloned()
        .chain([kit::chain::block_on(&tip, addr(4), Some(spent))])
        .map(|b| std::sync::Arc::new(validate::check(b, &params()).expect("valid")))
        .collect();
    // Every call takes 100 ms each way: the start-up sync takes a while.
    let net =
        memory::Network::new().with_latency(Duration::from_millis(100), Duration::from_millis(100));
    let peer_store = memory::Store::default();
    peer_store
        .save_blocks(&network_chain)
        .await
        .expect("stores");
    let peer = Node::builder(params())
        .config(Config::new("peer", "mem://peer".parse().expect("url")))
        .wallet(Wallet::from_seed(5))
        .network(net.clone())
        .store(peer_store)
        .launch()
        .await
        .expect("launches");
    // The node's own copy: the coins, not the block that spent nonce 0.
    let old_copy = memory::Store::default();
    old_copy
        .save_blocks(&network_chain[..3])
        .await
        .expect("stores");
    let mut config = Config::new("a", "mem://a".parse().expect("url"));
    config.seeds = vec!["mem://peer".parse().expect("url")];
    config.mining =
        Mining::Scheduled(HashPower::new(0.0, Duration::from_secs(3600)).expect("a valid power"));
    let node = Node::builder(params())
        .config(config)
        .wallet(Wallet::from_seed(NODE))
        .network(net.clone())
        .store(old_copy)
        .launch()
        .await
        .expect("launches");
    assert_eq!(node.height(), 3, "it starts on its old copy");
    let id = tokio::time::timeout(
        Duration::from_secs(60),
        node.submit_transfer(addr(PAYEE), 5),
    )
    .await
    .expect("in time")
    .expect("accepted once caught up");
    assert!(node.caught_up());
    assert_eq!(
        node.height(),
        4,
        "it signed after syncing the spending block"
    );
    let nonce = node
        .mempool()
        .iter()
        .find(|tx| tx.id() == id)
        .map(|tx| tx.nonce)
        .expect("pooled");
    assert_eq!(
        nonce, 1,
        "the next nonce on the network's chain, not the spent 0"
    );
    node.shutdown().await;
    peer.shutdown().await;
}
