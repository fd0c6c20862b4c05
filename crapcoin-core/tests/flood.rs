//! The engine's defences against a flooding peer, each tested so that the
//! test fails when the defence is removed:
//!
//! - pushes from a banned peer are ignored unread;
//! - a block already known by its hash (held, pooled as an orphan, or
//!   found invalid) is answered before its signature is checked;
//! - orphans and duplicates are decided without queueing for the node's
//!   write-order lock, so they never wait behind a store write;
//! - a full orphan pool makes room by sender (one at its quarter evicts
//!   its own oldest), so a flood of orphans cannot evict the orphans other
//!   peers sent;
//! - blocks shared between the nodes of one process
//!   (`crapcoin_core::intern`) are no way around the checks: another body
//!   under a known header hash is checked, refused and struck, even while
//!   the genuine block is held (and the genuine one is one allocation).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use crapcoin_core::network::{AckedTransfer, BlockAck, Snapshot, StoreError};
use crapcoin_core::{
    Block, BlockHash, BlockHeader, CheckedBlock, Config, Forge, Handle, Node, PeerUrl, Store,
    Transaction, TxId, ValidationError, memory,
};
use kit::chain::{addr, params, pay};
use kit::time::now_ms;
use tokio::sync::Notify;

/// Longest any single answer may take in these tests.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

fn url(name: &str) -> PeerUrl {
    format!("mem://{name}").parse().expect("a valid url")
}

fn config(name: &str) -> Config {
    let mut config = Config::new(name, url(name));
    // No maintenance or syncs getting in the way of what is measured.
    config.maintenance_interval = Duration::from_secs(3600);
    config.call_timeout = Duration::from_millis(500);
    config.max_strikes = 3;
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

/// A valid block on `parent`, stamped now, paying wallet `miner`.
fn child(parent: &BlockHeader, miner: u64) -> Block {
    Forge::new(&params(), parent)
        .miner(addr(miner))
        .timestamp(now_ms().max(parent.timestamp))
        .mine()
}

/// A block with valid work whose parent nobody has.
fn orphan(n: u8) -> Block {
    let genesis = params().genesis().header.clone();
    Forge::new(&params(), &genesis)
        .prev_hash(BlockHash([n; 32]))
        .height(7)
        .miner(addr(9))
        .timestamp(now_ms())
        .mine()
}

fn tip_header(node: &Handle) -> BlockHeader {
    node.with_chain(|c| c.tip_block().header.clone())
}

/// Receives with a time limit: a push that waits is a failure here.
async fn push(
    node: &Handle,
    block: Block,
    from: Option<PeerUrl>,
) -> Result<BlockAck, ValidationError> {
    tokio::time::timeout(ANSWER_WITHIN, node.receive_block(block, from))
        .await
        .expect("the push was answered in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_peers_pushes_are_ignored_unread() {
    let net = memory::Network::new();
    let node = launch(config("a"), &net).await;
    let bad = launch(config("bad"), &net).await;
    node.add_peer(bad.url().clone())
        .await
        .expect("bad becomes a peer");
    let from = Some(bad.url().clone());

    // Three blocks with short work: three strikes, dropped and banned.
    for _ in 0..3 {
        let junk = Forge::new(&params(), &tip_header(&node))
            .miner(addr(2))
            .timestamp(now_ms())
            .bad_pow();
        let e = push(&node, junk, from.clone()).await.expect_err("bad work");
        assert_eq!(e.reason(), "bad_pow");
    }
    assert!(
        !node.known_peers().contains(bad.url()),
        "three strikes drop the peer"
    );
    assert_eq!(node.ignored_from_banned(), 0);

    // A perfectly valid new block from the banned peer is not even read...
    let valid = child(&tip_header(&node), 2);
    let answer = push(&node, valid.clone(), from.clone()).await;
    assert_eq!(answer, Ok(BlockAck::Ignored));
    assert_eq!(node.height(), 0, "nothing from a banned peer is taken");
    // ...nor are its bytes parsed.
    let answer = tokio::time::timeout(
        ANSWER_WITHIN,
        node.receive_block_json(b"not even json", from.clone()),
    )
    .await
    .expect("answered in time");
    assert_eq!(answer, Ok(BlockAck::Ignored));
    assert_eq!(node.ignored_from_banned(), 2);

    // The same block from anyone else is taken: it was the sender.
    assert_eq!(push(&node, valid, None).await, Ok(BlockAck::Accepted));
    assert_eq!(node.height(), 1);

    node.shutdown().await;
    bad.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_block_is_answered_before_its_contents_are_checked() {
    let net = memory::Network::new();
    let node = launch(config("a"), &net).await;
    // Block 1 pays wallet 1; block 2 carries its signed transfer.
    let b1 = child(&tip_header(&node), 1);
    assert_eq!(push(&node, b1.clone(), None).await, Ok(BlockAck::Accepted));
    let tx = pay(1, addr(2), 5, 1, 0);
    let b2 = Forge::new(&params(), &b1.header)
        .miner(addr(1))
        .timestamp(now_ms().max(b1.header.timestamp))
        .tx(tx)
        .mine();
    assert_eq!(push(&node, b2.clone(), None).await, Ok(BlockAck::Accepted));

    // The same header with a broken signature: the node holds the real
    // block of that hash (tx_root commits to its transaction), so it
    // answers from the hash, with no signature check and no strike.
    let mut tampered = b2.clone();
    let tx = tampered.tx.as_mut().expect("a transfer");
    tx.signature.0[0] ^= 0xff;
    assert_eq!(tampered.hash(), b2.hash(), "the header is unchanged");
    assert_eq!(
        push(&node, tampered.clone(), None).await,
        Ok(BlockAck::Duplicate)
    );

    // A block found invalid is answered with the reason remembered for
    // its hash, whatever body comes with it.
    let overspend = Forge::new(&params(), &b2.header)
        .miner(addr(3))
        .timestamp(now_ms().max(b2.header.timestamp))
        .tx(pay(3, addr(1), 5, 1, 0))
        .mine();
    let e = push(&node, overspend.clone(), None)
        .await
        .expect_err("overspend");
    assert_eq!(e.reason(), "overspend");
    let mut tampered = overspend;
    tampered.tx.as_mut().expect("a transfer").signature.0[0] ^= 0xff;
    let e = push(&node, tampered, None)
        .await
        .expect_err("still invalid");
    assert_eq!(e.reason(), "overspend", "the remembered reason: {e}");

    // An orphan already pooled is a duplicate too.
    let o = orphan(1);
    assert_eq!(push(&node, o.clone(), None).await, Ok(BlockAck::Orphan));
    let mut tampered = o;
    tampered.tx = Some(pay(1, addr(2), 1, 1, 0));
    assert_eq!(push(&node, tampered, None).await, Ok(BlockAck::Duplicate));
    node.shutdown().await;
}

/// An in-memory store whose block writes wait while the gate is closed.
#[derive(Clone, Default)]
struct GatedStore {
    inner: memory::Store,
    closed: Arc<AtomicBool>,
    open: Arc<Notify>,
    waiting: Arc<Notify>,
}

#[async_trait]
impl Store for GatedStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load().await
    }

    async fn save_blocks(&self, blocks: &[Arc<CheckedBlock>]) -> Result<(), StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            let opened = self.open.notified();
            self.waiting.notify_one();
            opened.await;
        }
        self.inner.save_blocks(blocks).await
    }

    async fn save_peer(&self, peer: &PeerUrl) -> Result<(), StoreError> {
        self.inner.save_peer(peer).await
    }

    async fn remove_peer(&self, peer: &PeerUrl) -> Result<(), StoreError> {
        self.inner.remove_peer(peer).await
    }

    async fn clear_blocks(&self) -> Result<(), StoreError> {
        self.inner.clear_blocks().await
    }

    async fn save_transfer(
        &self,
        id: TxId,
        acknowledged_ms: u64,
        tx: &Transaction,
    ) -> Result<u64, StoreError> {
        self.inner.save_transfer(id, acknowledged_ms, tx).await
    }

    async fn acknowledged(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AckedTransfer>, StoreError> {
        self.inner.acknowledged(after, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_and_duplicates_never_wait_behind_a_store_write() {
    let net = memory::Network::new();
    let store = GatedStore::default();
    let node = Node::builder(params())
        .config(config("a"))
        .network(net.clone())
        .store(store.clone())
        .launch()
        .await
        .expect("launches");

    // A new block goes the ordered way and its store write hangs, holding
    // the write order.
    store.closed.store(true, Ordering::SeqCst);
    let b1 = child(&tip_header(&node), 1);
    let waiting = store.waiting.notified();
    let slow = tokio::spawn({
        let node = node.clone();
        let b1 = b1.clone();
        async move { node.receive_block(b1, None).await }
    });
    tokio::time::timeout(ANSWER_WITHIN, waiting)
        .await
        .expect("the write started");

    // Meanwhile a copy of that block, an orphan and a copy of the orphan
    // are answered at once: nothing of them is stored.
    assert_eq!(push(&node, b1.clone(), None).await, Ok(BlockAck::Duplicate));
    let o = orphan(2);
    assert_eq!(push(&node, o.clone(), None).await, Ok(BlockAck::Orphan));
    assert_eq!(push(&node, o, None).await, Ok(BlockAck::Duplicate));
    assert!(!slow.is_finished(), "the write is still held");

    store.closed.store(false, Ordering::SeqCst);
    store.open.notify_waiters();
    let answer = tokio::time::timeout(ANSWER_WITHIN, slow)
        .await
        .expect("the held write ends")
        .expect("no panic");
    assert_eq!(answer, Ok(BlockAck::Accepted));
    assert_eq!(node.height(), 1);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_orphans_cannot_evict_anothers_orphan() {
    let net = memory::Network::new();
    let mut cfg = config("a");
    cfg.orphan_capacity = 8;
    let node = launch(cfg, &net).await;
    let genesis = tip_header(&node);
    let b1 = child(&genesis, 1);
    let b2 = child(&b1.header, 1);

    // An honest peer's block arrives before its parent: an orphan.
    let honest = Some(url("honest"));
    assert_eq!(push(&node, b2.clone(), honest).await, Ok(BlockAck::Orphan));
    // A flooder sends many orphans with valid work.
    let flooder = Some(url("flooder"));
    for n in 0..40 {
        assert_eq!(
            push(&node, orphan(10 + n), flooder.clone()).await,
            Ok(BlockAck::Orphan)
        );
    }
    assert!(node.orphan_count() <= 8, "{}", node.orphan_count());

    // The parent arrives: the honest orphan was kept and joins the chain.
    assert_eq!(push(&node, b1, None).await, Ok(BlockAck::Accepted));
    assert_eq!(node.height(), 2, "the honest orphan was evicted");
    assert_eq!(node.tip(), b2.hash());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_hold_one_allocation_of_a_block() {
    let net = memory::Network::new();
    let a = launch(config("share-a"), &net).await;
    let b = launch(config("share-b"), &net).await;
    let block = child(&tip_header(&a), 41);
    let hash = block.hash();
    assert_eq!(push(&a, block.clone(), None).await, Ok(BlockAck::Accepted));
    assert_eq!(push(&b, block, None).await, Ok(BlockAck::Accepted));
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
    let mut strict = config("forge-b");
    // One strike and the peer is dropped: that is how the strike shows.
    strict.max_strikes = 1;
    let b = launch(strict, &net).await;
    let bad = launch(config("forge-bad"), &net).await;
    b.add_peer(bad.url().clone())
        .await
        .expect("bad becomes a peer");

    let genuine = child(&tip_header(&a), 42);
    let hash = genuine.hash();
    // The genuine block is checked, interned, and held by a.
    assert_eq!(
        push(&a, genuine.clone(), None).await,
        Ok(BlockAck::Accepted)
    );

    // The same header (so the same hash) with a transaction slipped in.
    let mut forged = genuine.clone();
    forged.tx = Some(pay(42, addr(43), 5, 1, 0));
    assert_eq!(forged.hash(), hash);
    let answer = push(&b, forged, Some(bad.url().clone())).await;
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
    assert_eq!(push(&b, genuine, None).await, Ok(BlockAck::Accepted));
    let in_a = a.with_chain(|c| c.get(&hash).cloned()).expect("a holds it");
    let in_b = b.with_chain(|c| c.get(&hash).cloned()).expect("b holds it");
    assert!(Arc::ptr_eq(&in_a, &in_b));
    a.shutdown().await;
    b.shutdown().await;
    bad.shutdown().await;
}
