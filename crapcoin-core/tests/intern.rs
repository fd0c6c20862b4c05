//! Blocks are shared between the nodes of one process, not copied
//! (`crapcoin_core::intern`): two nodes that receive the same block hold
//! the same allocation; and the interner is no way around the checks: a
//! block with a known header hash but another body is checked, refused
//! and costs its sender a strike, even while the genuine block is held.

use std::sync::Arc;
use std::time::Duration;

use crapcoin_core::network::BlockAck;
use crapcoin_core::{Block, BlockHeader, Config, Forge, Handle, Node, PeerUrl, memory};
use kit::chain::{addr, params, pay};
use kit::time::now_ms;

/// Longest any single answer may take in these tests.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

fn url(name: &str) -> PeerUrl {
    format!("mem://{name}").parse().expect("a valid url")
}

fn config(name: &str) -> Config {
    let mut config = Config::new(name, url(name));
    config.maintenance_interval = Duration::from_secs(3600);
    config.call_timeout = Duration::from_millis(500);
    // One strike and the peer is dropped: that is how the strike shows.
    config.max_strikes = 1;
    config.ban_duration = Duration::from_secs(600);
    config
}

async fn launch(config: Config, net: &memory::Network) -> Handle {
    Node::builder(params())
        .config(config)
        .network(net.clone())
        .launch()
        .await
        .expect("a fresh node launches")
}

fn genesis_header() -> BlockHeader {
    params().genesis().header.clone()
}

async fn push(node: &Handle, block: Block, from: Option<PeerUrl>) -> BlockAck {
    tokio::time::timeout(ANSWER_WITHIN, node.receive_block(block, from))
        .await
        .expect("the push was answered in time")
        .expect("the block is valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_hold_one_allocation_of_a_block() {
    let net = memory::Network::new();
    let a = launch(config("share-a"), &net).await;
    let b = launch(config("share-b"), &net).await;
    let block = Forge::new(&params(), &genesis_header())
        .miner(addr(41))
        .timestamp(now_ms())
        .mine();
    let hash = block.hash();
    assert_eq!(push(&a, block.clone(), None).await, BlockAck::Accepted);
    assert_eq!(push(&b, block, None).await, BlockAck::Accepted);
    let in_a = a.with_chain(|c| c.get(&hash).cloned()).expect("a holds it");
    let in_b = b.with_chain(|c| c.get(&hash).cloned()).expect("b holds it");
    assert!(Arc::ptr_eq(&in_a, &in_b), "one allocation, not two copies");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_body_under_a_known_hash_is_checked_refused_and_struck() {
    let net = memory::Network::new();
    let a = launch(config("forge-a"), &net).await;
    let b = launch(config("forge-b"), &net).await;
    let bad = launch(config("forge-bad"), &net).await;
    b.add_peer(bad.url().clone())
        .await
        .expect("bad becomes a peer");

    let genuine = Forge::new(&params(), &genesis_header())
        .miner(addr(42))
        .timestamp(now_ms())
        .mine();
    let hash = genuine.hash();
    // The genuine block is checked, interned, and held by a.
    assert_eq!(push(&a, genuine.clone(), None).await, BlockAck::Accepted);

    // The same header (so the same hash) with a transaction slipped in.
    let mut forged = genuine.clone();
    forged.tx = Some(pay(42, addr(43), 5, 1, 0));
    assert_eq!(forged.hash(), hash);
    let answer = tokio::time::timeout(
        ANSWER_WITHIN,
        b.receive_block(forged, Some(bad.url().clone())),
    )
    .await
    .expect("the push was answered in time");
    assert_eq!(
        answer.expect_err("another body is refused").reason(),
        "bad_tx_root"
    );
    assert_eq!(b.height(), 0, "nothing of the forged block is taken");
    assert!(
        !b.known_peers().contains(bad.url()),
        "its sender got its strike"
    );

    // The genuine block is still welcome at b, and shared with a.
    assert_eq!(push(&b, genuine, None).await, BlockAck::Accepted);
    let in_a = a.with_chain(|c| c.get(&hash).cloned()).expect("a holds it");
    let in_b = b.with_chain(|c| c.get(&hash).cloned()).expect("b holds it");
    assert!(Arc::ptr_eq(&in_a, &in_b));
    a.shutdown().await;
    b.shutdown().await;
    bad.shutdown().await;
}
