//! # Loading an attacker plugin
//!
//! ```text
//! cargo build --workspace --lib --bins --tests --examples
//! cargo run --example load_plugin -- target/debug/libattacker_plugin.so
//! ```
//!
//! (`.dylib` on macOS, `attacker_plugin.dll` on Windows.) The first command
//! builds the example plugin, `examples/attacker-plugin`, with the same
//! targets, hence the same features, as the node that will load it; a plugin
//! is only sound next to the exact `crapcoin-core` build it was compiled
//! against, which the loader checks by version (see
//! `examples/attacker-plugin/README.md`).
//!
//! This example loads the plugin with `behaviours::loader` (which checks
//! magic number, loader ABI, rustc and core versions before running any of
//! its code), starts one node with the loaded behaviour and four honest
//! nodes on the in-memory network, runs them for a few seconds, and prints
//! what the honest nodes made of the attacker: the blocks they refused, by
//! reason, and whether they dropped it. A path that is not a plugin shows
//! the loader's error instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use behaviours::loader;
use crapcoin_core::node::AutoConfig;
use crapcoin_core::{Config, Event, Node, Params, Wallet, memory};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        anyhow::bail!("usage: load_plugin PATH_TO_PLUGIN_LIBRARY");
    };
    // Every failure here is a typed error naming the file and what differs.
    let attacker = loader::load(&path, 1)?;
    println!("loaded {path}: behaviour {:?}", attacker.name());

    let params = Params::with_difficulty(8);
    let network =
        memory::Network::seeded(2).with_latency(Duration::from_millis(1), Duration::from_millis(5));
    let tracker = memory::Tracker::seeded(2);
    let seen: Arc<Mutex<Vec<(String, Event)>>> = Arc::default();

    let mut nodes = Vec::new();
    for i in 0..5u64 {
        let name = if i == 0 {
            "attacker".to_owned()
        } else {
            format!("honest{i}")
        };
        let mut config = Config::in_memory(&name);
        config.maintenance_interval = Duration::from_millis(200);
        config.seed = Some(i);
        config.auto = Some(AutoConfig {
            interval: Duration::from_millis(150),
            max_transfers: Some(8),
        });
        let seen = seen.clone();
        let builder = Node::builder(params.clone())
            .config(config)
            .wallet(Wallet::from_seed(i))
            .network(network.clone())
            .tracker(tracker.clone())
            .observer(move |node: &str, event: &Event| {
                seen.lock()
                    .expect("lock")
                    .push((node.to_owned(), event.clone()));
            });
        let node = if i == 0 {
            builder.behaviour_arc(attacker.clone()).launch().await?
        } else {
            builder.launch().await?
        };
        nodes.push(node);
    }

    println!("running the plugin against 4 honest nodes for 5 seconds…");
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut dropped_by = Vec::new();
    for (node, event) in seen.lock().expect("lock").iter() {
        match event {
            Event::BlockRejected {
                reason,
                from: Some(from),
                ..
            } if from.as_str() == "mem://attacker" => {
                *refused.entry(reason.reason()).or_default() += 1;
            }
            Event::PeerDropped { peer, why } if peer.as_str() == "mem://attacker" => {
                dropped_by.push(format!("{node} ({why:?})"));
            }
            _ => {}
        }
    }
    println!("honest nodes refused the attacker's blocks: {refused:?}");
    println!("honest nodes that dropped the attacker: {dropped_by:?}");
    let tips: Vec<_> = nodes
        .iter()
        .skip(1)
        .map(|n| (n.name().to_owned(), n.height(), n.tip().short()))
        .collect();
    println!("honest tips: {tips:?}");
    for node in nodes {
        node.shutdown().await;
    }
    // The library is unloaded only now, with the last object from it.
    drop(attacker);
    Ok(())
}
