//! # Writing a behaviour
//!
//! ```text
//! cargo run --example custom_behaviour
//! ```
//!
//! A behaviour decides what a node does at each of its decision points
//! (`crapcoin_core::Behaviour`); every method defaults to what an honest
//! node does, so a misbehaviour overrides only the decision it corrupts.
//! This one, the *gossip hoarder*, overrides a single decision, `publish`:
//! after mining a block it tells only one peer about it instead of all of
//! them, hoping to keep the others in the dark (and mining on a stale tip).
//!
//! We run it against four honest nodes on the in-memory network, in auto
//! mode, for a few seconds, and print how each honest node learnt of the
//! hoarder's blocks. The peer it told relays every block that extends its
//! chain to all of its own peers, so the others hear of it one hop later,
//! and the nodes agree on one chain. The hoarder only hurts itself: its
//! blocks spread a hop slower, so more of them lose the race against an
//! honest block of the same height and end up stale (the last lines
//! count them). Try the honest `publish` (delete the override) and compare.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crapcoin_core::behaviour::honest;
use crapcoin_core::network::Outgoing;
use crapcoin_core::node::{AutoConfig, wait_for_agreement};
use crapcoin_core::{
    Behaviour, Block, BlockHash, Config, Context, Event, Node, Params, PeerUrl, Wallet, memory,
};

/// Who sent each node each block: (node, block) -> sender (`None`: mined).
type Heard = HashMap<(String, BlockHash), Option<PeerUrl>>;

/// Publishes each block it mines to its first peer only.
struct GossipHoarder;

impl Behaviour for GossipHoarder {
    fn name(&self) -> String {
        "gossip_hoarder".to_owned()
    }

    // The one decision we change. `peers` is every peer the node has; the
    // honest decision (`honest::publish`, what the default calls) sends the
    // block to each of them. We make the honest decision for the first
    // peer only, without re-typing it.
    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        honest::publish(ctx, block, peers.get(..1).unwrap_or_default())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let params = Params::with_difficulty(8);
    let network =
        memory::Network::seeded(1).with_latency(Duration::from_millis(1), Duration::from_millis(5));
    let tracker = memory::Tracker::seeded(1);

    let heard: Arc<Mutex<Heard>> = Arc::default();
    let mined_by_hoarder: Arc<Mutex<Vec<BlockHash>>> = Arc::default();

    let mut nodes = Vec::new();
    for i in 0..5u64 {
        let name = if i == 0 {
            "hoarder".to_owned()
        } else {
            format!("honest{i}")
        };
        // Reached at mem://NAME on the in-memory network.
        let mut config = Config::in_memory(&name);
        config.maintenance_interval = Duration::from_millis(200);
        config.seed = Some(i);
        config.auto = Some(AutoConfig {
            interval: Duration::from_millis(150),
            max_transfers: Some(8),
        });
        let heard = heard.clone();
        let mined = mined_by_hoarder.clone();
        let observer = move |node: &str, event: &Event| match event {
            Event::BlockAccepted { hash, from, .. } => {
                heard
                    .lock()
                    .expect("lock")
                    .insert((node.to_owned(), *hash), from.clone());
            }
            Event::BlockMined { hash, .. } if node == "hoarder" => {
                mined.lock().expect("lock").push(*hash);
            }
            _ => {}
        };
        let builder = Node::builder(params.clone())
            .config(config)
            .wallet(Wallet::from_seed(i))
            .network(network.clone())
            .tracker(tracker.clone())
            .observer(observer);
        let node = if i == 0 {
            builder.behaviour(GossipHoarder).launch().await?
        } else {
            builder.launch().await?
        };
        nodes.push(node);
    }

    println!("running 1 gossip hoarder against 4 honest nodes for 6 seconds…");
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mined = mined_by_hoarder.lock().expect("lock").clone();
    let heard = heard.lock().expect("lock").clone();
    println!(
        "the hoarder mined {} blocks and told one peer about each",
        mined.len()
    );
    for node in nodes.iter().skip(1) {
        let (mut direct, mut relayed, mut missed) = (0, 0, 0);
        for hash in &mined {
            match heard.get(&(node.name().to_owned(), *hash)) {
                Some(Some(from)) if from.as_str() == "mem://hoarder" => direct += 1,
                Some(_) => relayed += 1,
                None => missed += 1,
            }
        }
        println!(
            "{:8} heard {direct:3} straight from the hoarder, {relayed:3} relayed by honest peers, \
             {missed} never",
            node.name()
        );
    }
    let stale = nodes[1].with_chain(|chain| mined.iter().filter(|h| !chain.is_active(h)).count());
    println!(
        "{stale} of the hoarder's {} blocks are stale (not on honest1's best chain): they lost \
         the race to an honest block of the same height",
        mined.len()
    );
    let all: Vec<_> = nodes.iter().collect();
    match wait_for_agreement(&all, Duration::from_secs(10)).await {
        Ok(tip) => println!("all five nodes agree on tip {}", tip.short()),
        Err(e) => println!("the nodes do not agree: {e}"),
    }
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
