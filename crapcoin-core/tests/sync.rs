//! Sync from one peer, page by page, on the in-memory transport: the pages
//! a fresh node asks for, and what it keeps when the peer stops answering
//! halfway.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crapcoin_core::network::{NetError, Unreachable};
use crapcoin_core::{
    Block, BlockHash, Config, Event, Handle, Node, Observer, PeerUrl, Store as _, memory, validate,
};
use kit::chain::{addr, branch, params, wallet};
use kit::net::{Tap, Tapped};

/// What a test sees of the pages a node asks for: records every page,
/// fails the `fail_at`-th such request (counted from 1), and alters the
/// block at height `tamper_at` in any page that holds it.
#[derive(Clone, Default)]
struct Pages {
    asked: Arc<Mutex<Vec<(u64, usize)>>>,
    fail_at: Option<usize>,
    tamper_at: Option<u64>,
}

impl Pages {
    fn asked(&self) -> Vec<(u64, usize)> {
        self.asked.lock().expect("not poisoned").clone()
    }
}

impl Tap for Pages {
    fn page_asked(&self, _to: &PeerUrl, from: u64, limit: usize) -> Result<(), NetError> {
        let count = {
            let mut asked = self.asked.lock().expect("not poisoned");
            asked.push((from, limit));
            asked.len()
        };
        if self.fail_at == Some(count) {
            return Err(NetError::Unreachable(Unreachable::ConnectionLost));
        }
        Ok(())
    }

    fn page(&self, _to: &PeerUrl, page: &mut [Block]) {
        for block in page {
            if Some(block.header.height) == self.tamper_at {
                block.header.tx_root = BlockHash([7; 32]);
            }
        }
    }
}

const LENGTH: usize = 1_200;

fn config(name: &str) -> Config {
    let mut config = Config::new(name, format!("mem://{name}").parse().expect("url"));
    // No maintenance round during the test: the only sync is the one asked.
    config.maintenance_interval = Duration::from_secs(3600);
    config
}

/// A node on `net` whose store already holds a chain of `LENGTH` blocks.
async fn seed(net: &memory::Network) -> Handle {
    let store = memory::Store::default();
    let blocks: Vec<_> = branch(&params().genesis().header, LENGTH, addr(1))
        .into_iter()
        .map(|b| Arc::new(validate::check(b, &params()).expect("valid")))
        .collect();
    store.save_blocks(&blocks).await.expect("stores");
    Node::builder(params())
        .config(config("seed"))
        .wallet(wallet(1))
        .network(net.clone())
        .store(store)
        .launch()
        .await
        .expect("the seed launches")
}

/// A fresh node on `net` syncing through `pages`; returns it and its store.
async fn fresh(net: &memory::Network, pages: &Pages) -> (Handle, memory::Store) {
    fresh_observed(net, pages, ()).await
}

/// [`fresh`], with an observer.
async fn fresh_observed(
    net: &memory::Network,
    pages: &Pages,
    observer: impl Observer,
) -> (Handle, memory::Store) {
    let store = memory::Store::default();
    let node = Node::builder(params())
        .config(config("fresh"))
        .wallet(wallet(2))
        .network(Tapped::new(net.clone(), pages.clone()))
        .store(store.clone())
        .observer(observer)
        .launch()
        .await
        .expect("the fresh node launches");
    (node, store)
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("in time")
}

#[tokio::test]
async fn pages_start_small_and_grow_to_the_page_limit() {
    let net = memory::Network::seeded(3);
    let seed = seed(&net).await;
    assert_eq!(seed.height(), LENGTH as u64);
    let pages = Pages { ..Pages::default() };
    let (node, store) = fresh(&net, &pages).await;

    within(node.sync_from(seed.url())).await.expect("syncs");

    assert_eq!(node.tip(), seed.tip());
    assert_eq!(store.block_count(), LENGTH, "every block is stored");
    // Each page half as large again as the one before, capped at 500, and
    // each starting where the one before ended, but the last one small (32
    // blocks); a fresh node does not probe for a fork point (it shares only
    // the genesis).
    assert_eq!(
        pages.asked(),
        vec![
            (1, 64),
            (65, 96),
            (161, 144),
            (305, 216),
            (521, 324),
            (845, 324),
            (1169, 32),
        ],
        "the seventh page ends at the peer's tip"
    );
    node.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test]
async fn a_peer_failing_halfway_leaves_the_pages_fetched_before_on_the_chain() {
    let net = memory::Network::seeded(4);
    let seed = seed(&net).await;
    let pages = Pages {
        fail_at: Some(3),
        ..Pages::default()
    };
    let (node, store) = fresh(&net, &pages).await;

    let result = within(node.sync_from(seed.url())).await;

    assert!(result.is_err(), "the sync reports the failure");
    // The first two pages (64 + 96 blocks) were fetched before the peer
    // failed: they are checked, added and stored all the same.
    assert_eq!(node.height(), 160);
    assert_eq!(
        node.tip(),
        seed.with_chain(|c| c.block_at(160).map(|b| b.hash()))
            .expect("block 160")
    );
    assert_eq!(store.block_count(), 160);
    node.shutdown().await;
    seed.shutdown().await;
}

#[tokio::test]
async fn a_bad_block_in_a_page_is_named_and_the_pages_before_it_kept() {
    let net = memory::Network::seeded(5);
    let seed = seed(&net).await;
    // Height 100 is in the second page (65..=160).
    let pages = Pages {
        tamper_at: Some(100),
        ..Pages::default()
    };
    let rejected = Arc::new(Mutex::new(Vec::new()));
    let seen = rejected.clone();
    let (node, store) = fresh_observed(&net, &pages, move |_: &str, event: &Event| {
        if let Event::BlockRejected { hash, .. } = event {
            seen.lock().expect("not poisoned").push(*hash);
        }
    })
    .await;

    let result = within(node.sync_from(seed.url())).await;

    assert!(result.is_err(), "the sync reports the bad block");
    let mut bad = seed
        .with_chain(|c| c.block_at(100).map(|b| b.block().clone()))
        .expect("block 100");
    bad.header.tx_root = BlockHash([7; 32]);
    assert_eq!(
        *rejected.lock().expect("not poisoned"),
        vec![Some(bad.hash())],
        "the rejection names the altered block"
    );
    assert_eq!(node.height(), 64, "the first page is kept");
    assert_eq!(store.block_count(), 64);
    // The fetcher runs at most two pages ahead of the checker (one waiting
    // in the channel, one being fetched); once the second page is refused,
    // it stops instead of fetching the remaining pages.
    let asked = pages.asked().len();
    assert!(asked <= 4, "{asked} pages asked for");
    node.shutdown().await;
    seed.shutdown().await;
}

/// Counts `BlockAccepted` events by block.
#[derive(Clone, Default)]
struct Accepted(Arc<Mutex<Vec<BlockHash>>>);

impl Observer for Accepted {
    fn on_event(&self, _node: &str, event: &Event) {
        if let Event::BlockAccepted { hash, .. } = event {
            self.0.lock().expect("not poisoned").push(*hash);
        }
    }
}

/// A short chain comes whole (one call for the peer's chain), and the
/// node already holds its first blocks: only the blocks it lacked are
/// accepted (once each) and stored. (It once re-announced and re-stored
/// the whole chain on every sync: the simulator showed a node past a
/// partition "accepting" the same blocks every maintenance round.)
#[tokio::test]
async fn a_sync_accepts_only_the_blocks_the_node_lacked() {
    let net = memory::Network::seeded(4);
    let chain: Vec<_> = branch(&params().genesis().header, 20, addr(1))
        .into_iter()
        .map(|b| Arc::new(validate::check(b, &params()).expect("valid")))
        .collect();
    let seed_store = memory::Store::default();
    seed_store.save_blocks(&chain).await.expect("stores");
    let seed = Node::builder(params())
        .config(config("seed"))
        .wallet(wallet(1))
        .network(net.clone())
        .store(seed_store)
        .launch()
        .await
        .expect("the seed launches");
    let store = memory::Store::default();
    store.save_blocks(&chain[..10]).await.expect("stores");
    let accepted = Accepted::default();
    let node = Node::builder(params())
        .config(config("behind"))
        .wallet(wallet(2))
        .network(net.clone())
        .store(store.clone())
        .observer(accepted.clone())
        .launch()
        .await
        .expect("the node launches");
    assert_eq!(node.height(), 10);
    let loaded = accepted.0.lock().expect("not poisoned").len();

    within(node.sync_from(seed.url())).await.expect("syncs");

    assert_eq!(node.tip(), seed.tip());
    let synced: Vec<BlockHash> = accepted.0.lock().expect("not poisoned")[loaded..].to_vec();
    let lacked: Vec<BlockHash> = chain[10..].iter().map(|b| b.hash()).collect();
    assert_eq!(
        synced, lacked,
        "accepted exactly the ten blocks it lacked, in order"
    );
    assert_eq!(store.block_count(), 20);
    node.shutdown().await;
    seed.shutdown().await;
}
