//! # Watching a network with an observer
//!
//! Observers receive every event a node reports: blocks mined, accepted,
//! rejected (with the reason), orphaned, reorgs, peers added and dropped,
//! transfers submitted and included. This example starts four honest nodes
//! on one in-memory network, attaches the same printing observer to each,
//! lets them make a few transfers, and prints what they saw.
//!
//! ```text
//! cargo run --example observer
//! ```
//!
//! Any `Fn(&str, &Event)` closure is an observer; so is `()`, and any type
//! implementing `Observer`. Observers run on the node's path and must
//! return quickly: for slow work, forward into a bounded queue
//! (`crapcoin_core::observer::Channel` does that).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crapcoin_core::node::AutoConfig;
use crapcoin_core::{Config, Event, Node, Params, Wallet, memory};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let network = memory::Network::seeded(7)
        .with_latency(Duration::from_millis(2), Duration::from_millis(10));
    let tracker = memory::Tracker::seeded(7);
    let printed = Arc::new(AtomicUsize::new(0));

    let mut nodes = Vec::new();
    for i in 0..4u64 {
        let name = format!("node-{i}");
        let mut config = Config::new(name.clone(), format!("mem://{name}").parse()?);
        config.seed = Some(i);
        config.maintenance_interval = Duration::from_millis(300);
        config.auto = Some(AutoConfig {
            interval: Duration::from_millis(200),
            max_transfers: Some(2),
        });
        let printed = printed.clone();
        let node = Node::builder(Params::with_difficulty(8))
            .config(config)
            .wallet(Wallet::from_seed(i))
            .network(network.clone())
            .tracker(tracker.clone())
            // The observer: a closure printing the interesting events.
            .observer(move |node: &str, event: &Event| {
                let line = match event {
                    Event::BlockMined {
                        height, hash, tx, ..
                    } => {
                        format!(
                            "mined #{height} {} ({})",
                            hash.short(),
                            if tx.is_some() { "transfer" } else { "coinbase" }
                        )
                    }
                    Event::Reorg { depth, height, .. } => {
                        format!("reorg: rolled back {depth}, now at #{height}")
                    }
                    Event::BlockRejected { reason, .. } => {
                        format!("rejected a block: {}", reason.reason())
                    }
                    Event::PeerAdded { peer } => format!("new peer {peer}"),
                    Event::TransferIncluded { txid, height, .. } => {
                        format!("transfer {} included at #{height}", txid.short())
                    }
                    _ => return,
                };
                printed.fetch_add(1, Ordering::Relaxed);
                println!("[{node}] {line}");
            })
            .launch()
            .await?;
        nodes.push(node);
    }

    // Let auto mode run until every node made its two transfers and the
    // network agrees, or 20 seconds pass.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let tip = nodes[0].tip();
        let settled =
            nodes.iter().all(|n| n.tip() == tip && n.mempool_len() == 0) && nodes[0].height() >= 8;
        if settled || tokio::time::Instant::now() > deadline {
            break;
        }
    }
    println!(
        "\n{} events printed; all nodes at height {} with tip {}: {}",
        printed.load(Ordering::Relaxed),
        nodes[0].height(),
        nodes[0].tip().short(),
        if nodes.iter().all(|n| n.tip() == nodes[0].tip()) {
            "agreed"
        } else {
            "NOT agreed"
        }
    );
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
