//! End to end: real `crapcoin-node` processes on 127.0.0.1, talking HTTP.
//! Every process is killed by PID when its guard drops; every wait is
//! bounded.

use std::time::Duration;

use crapcoin_core::block::BlockJson;
use crapcoin_core::{Address, Forge, Params};
use kit::http::{admin, client, get};
use kit::process::NodeProc;
use kit::time::{eventually, now_ms};
use serde_json::{Value, json};

async fn status(client: &reqwest::Client, node: &NodeProc) -> Value {
    get(client, &format!("{}/status", node.url)).await
}

/// The sum of `node`'s metric lines that start with `line_prefix`.
async fn metric(client: &reqwest::Client, node: &NodeProc, line_prefix: &str) -> u64 {
    kit::http::metric(client, &node.url, line_prefix).await
}

/// Waits (bounded) until every node reports the same tip at `height` or
/// more; returns that tip.
async fn converged(
    client: &reqwest::Client,
    nodes: &[&NodeProc],
    height: u64,
    limit: Duration,
) -> String {
    let last = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let ok = eventually(limit, || {
        let client = client.clone();
        let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
        let last = last.clone();
        async move {
            let mut tips = Vec::new();
            for url in &urls {
                let s = get(&client, &format!("{url}/status")).await;
                tips.push((s["height"].as_u64().unwrap_or(0), s["tip"].to_string()));
            }
            let done = tips.iter().all(|t| t.0 >= height && t.1 == tips[0].1);
            *last.lock().expect("lock") = tips;
            done
        }
    })
    .await;
    let last = last.lock().expect("lock").clone();
    assert!(ok, "nodes did not converge at height {height}: {last:?}");
    last[0].1.trim_matches('"').to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_gossip_blocks_and_transfers() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let client = client();
    let n0 = NodeProc::start(dirs[0].path(), &["--name".into(), "n0".into()]);
    // A short chain first: joiners sync it through GET /blockchain.
    let (code, _) = admin(&client, &format!("{}/mine", n0.url), json!({"count": 5})).await;
    assert_eq!(code, 200);
    let n1 = NodeProc::start(dirs[1].path(), &["--peer".into(), n0.url.clone()]);
    let n2 = NodeProc::start(
        dirs[2].path(),
        &[
            "--peer".into(),
            n0.url.clone(),
            "--peer".into(),
            n1.url.clone(),
        ],
    );
    converged(&client, &[&n0, &n1, &n2], 5, Duration::from_secs(20)).await;
    // Each joiner fetched the short chain whole, from n0 or (n2) from n1.
    let whole = "crapcoin_requests_total{route=\"/blockchain\"";
    assert!(metric(&client, &n0, whole).await + metric(&client, &n1, whole).await >= 2);
    assert!(
        eventually(Duration::from_secs(20), || async {
            status(&client, &n0).await["peers"] == 2
                && status(&client, &n1).await["peers"] == 2
                && status(&client, &n2).await["peers"] == 2
        })
        .await,
        "everyone knows everyone"
    );

    // A block mined on n1 reaches the other two by gossip.
    let (code, mined) = admin(&client, &format!("{}/mine", n1.url), json!({})).await;
    assert_eq!(code, 200, "{mined}");
    let hash = mined["hash"].as_str().expect("hash").to_owned();
    for node in [&n0, &n2] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                client
                    .get(format!("{}/block/{hash}", node.url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await,
            "block reached {}",
            node.url
        );
    }
    let tip = converged(&client, &[&n0, &n1, &n2], 6, Duration::from_secs(10)).await;
    assert_eq!(tip, hash);

    // A transfer from n1 to n2 moves the balance on all three.
    let from = status(&client, &n1).await["address"]
        .as_str()
        .expect("address")
        .to_owned();
    let to = status(&client, &n2).await["address"]
        .as_str()
        .expect("address")
        .to_owned();
    let before = get(&client, &format!("{}/balance/{from}", n0.url)).await["balance"]
        .as_u64()
        .expect("balance");
    let (code, answer) = admin(
        &client,
        &format!("{}/transfer", n1.url),
        json!({"to": to, "amount": 7}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    let height = answer["height"].as_u64().expect("height");
    converged(&client, &[&n0, &n1, &n2], height, Duration::from_secs(10)).await;
    for node in [&n0, &n1, &n2] {
        let received = get(&client, &format!("{}/balance/{to}", node.url)).await;
        assert_eq!(received["balance"], 7, "on {}", node.url);
        let sent = get(&client, &format!("{}/balance/{from}", node.url)).await;
        // n1 paid 7 + a fee of 1, and mined the block holding it: +50 +1.
        assert_eq!(
            sent["balance"].as_u64(),
            Some(before - 8 + 51),
            "on {}",
            node.url
        );
        assert_eq!(sent["nonce"], 1);
    }
    // SIGTERM stops each cleanly.
    for node in [n2, n1, n0] {
        assert_eq!(node.terminate(), Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_and_syncs_a_2000_block_chain() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let client = client();
    let seed = NodeProc::start(dirs[0].path(), &[]);
    let (code, answer) = admin(
        &client,
        &format!("{}/mine", seed.url),
        json!({"count": 2000}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["height"], 2000);
    let joiner = NodeProc::start(dirs[1].path(), &["--peer".into(), seed.url.clone()]);
    let tip = converged(&client, &[&seed, &joiner], 2000, Duration::from_secs(60)).await;
    assert_eq!(tip, answer["hash"].as_str().expect("hash"));
    // Long chains go by pages of GET /blocks (500 each), not in one piece.
    assert!(metric(&client, &seed, "crapcoin_requests_total{route=\"/blocks\"").await >= 4);
    assert_eq!(
        metric(
            &client,
            &seed,
            "crapcoin_requests_total{route=\"/blockchain\""
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_while_blocks_arrive_restarts_intact_and_catches_up() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().expect("dir")).collect();
    let client = client();
    let miner = NodeProc::start(dirs[0].path(), &[]);
    let (code, _) = admin(
        &client,
        &format!("{}/mine", miner.url),
        json!({"count": 20}),
    )
    .await;
    assert_eq!(code, 200);
    let victim = NodeProc::start(dirs[1].path(), &["--peer".into(), miner.url.clone()]);
    converged(&client, &[&miner, &victim], 20, Duration::from_secs(20)).await;
    let before = status(&client, &victim).await;

    // Blocks keep arriving while the victim is killed: gossip from the
    // miner, and blocks this test pushes itself, noting which ones the
    // victim acknowledged.
    let mining = {
        let client = client.clone();
        let url = miner.url.clone();
        tokio::spawn(async move {
            for _ in 0..40 {
                let _ = admin(&client, &format!("{url}/mine"), json!({})).await;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let pushing = {
        let client = client.clone();
        let url = victim.url.clone();
        let tip = before["tip"].as_str().expect("tip").to_owned();
        tokio::spawn(async move {
            let parent = get(&client, &format!("{url}/block/{tip}")).await;
            let parent: BlockJson = serde_json::from_value(parent).expect("block");
            let mut parent = parent.into_block().expect("hash matches").header;
            let params = Params::with_difficulty(4);
            let mut acknowledged = Vec::new();
            for _ in 0..500 {
                let block = Forge::new(&params, &parent)
                    .miner(Address([7; 32]))
                    .timestamp(now_ms().max(parent.timestamp))
                    .mine();
                let sent = client
                    .post(format!("{url}/block"))
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&block).expect("json"))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                let Ok(body) = response.bytes().await else {
                    break;
                };
                let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if answer["result"] != "accepted" {
                    break;
                }
                acknowledged.push(block.hash().to_string());
                parent = block.header;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let port = victim.url.rsplit(':').next().expect("port").to_owned();
    victim.kill();
    mining.await.expect("mining finished");
    let acknowledged = pushing.await.expect("pushing finished");
    assert!(
        acknowledged.len() > 3,
        "only {} blocks pushed",
        acknowledged.len()
    );

    // Restart on the same data directory and port, without --peer: the
    // peer must come from the database.
    let restart_args = vec!["--listen".to_owned(), format!("127.0.0.1:{port}")];
    let restarted = NodeProc::start(dirs[1].path(), &restart_args);
    let after = status(&client, &restarted).await;
    assert_eq!(after["address"], before["address"], "same wallet");
    assert_eq!(after["genesis"], before["genesis"]);
    assert!(after["height"].as_u64().expect("height") >= 20);
    // SIGKILL lost nothing the victim had acknowledged.
    for hash in &acknowledged {
        let found = client
            .get(format!("{}/block/{hash}", restarted.url))
            .send()
            .await
            .expect("answers");
        assert_eq!(found.status(), 200, "acknowledged block {hash} lost");
    }
    let peers = get(&client, &format!("{}/peers", restarted.url)).await;
    assert_eq!(
        peers,
        json!([miner.url]),
        "peers restored from the database"
    );
    // It catches up with what it missed, and follows new blocks.
    let (code, _) = admin(&client, &format!("{}/mine", miner.url), json!({})).await;
    assert_eq!(code, 200);
    let height = status(&client, &miner).await["height"]
        .as_u64()
        .expect("height");
    assert!(height > 20);
    converged(
        &client,
        &[&miner, &restarted],
        height,
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_mine_apart_then_all_end_on_the_most_work_chain() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let client = client();
    let a0 = NodeProc::start(dirs[0].path(), &[]);
    let a1 = NodeProc::start(dirs[1].path(), &["--peer".into(), a0.url.clone()]);
    let b0 = NodeProc::start(dirs[2].path(), &[]);
    let b1 = NodeProc::start(dirs[3].path(), &["--peer".into(), b0.url.clone()]);
    let (code, _) = admin(&client, &format!("{}/mine", a0.url), json!({"count": 10})).await;
    assert_eq!(code, 200);
    let (code, _) = admin(&client, &format!("{}/mine", b1.url), json!({"count": 15})).await;
    assert_eq!(code, 200);
    let a_tip = converged(&client, &[&a0, &a1], 10, Duration::from_secs(20)).await;
    let b_tip = converged(&client, &[&b0, &b1], 15, Duration::from_secs(20)).await;
    assert_ne!(a_tip, b_tip);

    // Connect the groups through one pair of nodes.
    let (code, answer) = admin(
        &client,
        &format!("{}/admin/peers", a1.url),
        json!({"url": b0.url}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    let tip = converged(&client, &[&a0, &a1, &b0, &b1], 15, Duration::from_secs(30)).await;
    assert_eq!(tip, b_tip, "the heavier chain wins");
    for node in [&a0, &a1] {
        assert!(metric(&client, node, "crapcoin_reorgs_total").await >= 1);
    }
    // New work on the losing side now extends the common chain everywhere.
    let (code, answer) = admin(&client, &format!("{}/mine", a0.url), json!({})).await;
    assert_eq!(code, 200);
    let tip = converged(&client, &[&a0, &a1, &b0, &b1], 16, Duration::from_secs(20)).await;
    assert_eq!(tip, answer["hash"].as_str().expect("hash"));
}
