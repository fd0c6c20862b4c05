//! Quick engine check: a few nodes on the in-memory network converge.
use std::time::Duration;

use crapcoin_core::node::AutoConfig;
use crapcoin_core::{Config, Node, Params, memory};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge() {
    let net =
        memory::Network::seeded(1).with_latency(Duration::from_millis(1), Duration::from_millis(5));
    let tracker = memory::Tracker::seeded(2);
    let mut nodes = Vec::new();
    for i in 0..5u64 {
        let mut cfg = Config::new(
            format!("n{i}"),
            format!("mem://n{i}").parse().expect("a valid url"),
        );
        cfg.maintenance_interval = Duration::from_millis(200);
        cfg.auto = Some(AutoConfig {
            interval: Duration::from_millis(50),
            max_transfers: Some(5),
        });
        cfg.seed = Some(i);
        let h = Node::builder(Params::with_difficulty(8))
            .config(cfg)
            .wallet(crapcoin_core::Wallet::from_seed(i))
            .network(net.clone())
            .tracker(tracker.clone())
            .launch()
            .await
            .expect("launches");
        nodes.push(h);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let tips: Vec<_> = nodes
            .iter()
            .map(|n| (n.height(), n.tip(), n.mempool_len(), n.known_peers().len()))
            .collect();
        println!("{tips:?}");
        let done = nodes.iter().all(|n| n.mempool_len() == 0)
            && tips.iter().all(|t| t.1 == tips[0].1)
            && tips[0].0 > 20;
        if done || tokio::time::Instant::now() > deadline {
            break;
        }
    }
    let tip = nodes[0].tip();
    for n in nodes {
        assert_eq!(n.tip(), tip);
        n.shutdown().await;
    }
}
