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

use crapcoin_core::node::{AutoConfig, wait_for_agreement};
use crapcoin_core::{Config, Event, Node, Params, Wallet, memory};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let network = memory::Network::seeded(7)
        .with_latency(Duration::from_millis(2), Duration::from_millis(10));
    let tracker = memory::Tracker::seeded(7);
    let printed = Arc::new(AtomicUsize::new(0));

    let mut nodes = Vec::new();
    for i in 0..4u64 {
        // Reached at mem://node-I on the in-memory network.
        let mut config = Config::in_memory(format!("node-{i}"));
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

    // Let auto mode make its transfers, then wait (at most 20 seconds)
    // until every node has the same best tip.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all: Vec<_> = nodes.iter().collect();
    let verdict = match wait_for_agreement(&all, Duration::from_secs(20)).await {
        Ok(tip) => format!("agreed on {}", tip.short()),
        Err(e) => format!("NOT agreed: {e}"),
    };
    println!(
        "\n{} events printed; height {}: {verdict}",
        printed.load(Ordering::Relaxed),
        nodes[0].height(),
    );
    for node in nodes {
        node.shutdown().await;
    }
    Ok(())
}
