//! End to end: a partition of real `crapcoin-node` processes made with
//! `/admin/faults` (each side's nodes get the other side's URLs as
//! unreachable), both sides mining apart, and one chain again once the
//! faults end. Every process is killed by PID when its guard drops; every
//! wait is bounded.

use std::time::Duration;

use kit::http::{TOKEN, admin, client, get};
use kit::process::NodeProc;
use kit::time::eventually;
use serde_json::{Value, json};

async fn status(client: &reqwest::Client, node: &NodeProc) -> Value {
    get(client, &format!("{}/status", node.url)).await
}

async fn tip(client: &reqwest::Client, node: &NodeProc) -> (u64, String) {
    let s = status(client, node).await;
    (
        s["height"].as_u64().unwrap_or(0),
        s["tip"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Whether `node` knows the block `hash`.
async fn knows(client: &reqwest::Client, node: &NodeProc, hash: &str) -> bool {
    client
        .get(format!("{}/block/{hash}", node.url))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

async fn set_faults(client: &reqwest::Client, node: &NodeProc, body: Value) -> Value {
    let (code, answer) = admin(client, &format!("{}/admin/faults", node.url), body).await;
    assert_eq!(code, 200, "{answer}");
    answer
}

async fn mine(client: &reqwest::Client, node: &NodeProc, count: u64) -> String {
    let (code, mined) = admin(
        client,
        &format!("{}/mine", node.url),
        json!({ "count": count }),
    )
    .await;
    assert_eq!(code, 200, "{mined}");
    mined["hash"].as_str().expect("hash").to_owned()
}

/// Waits (bounded) until every node has the same tip at `height` or more.
async fn one_chain(client: &reqwest::Client, nodes: &[&NodeProc], height: u64) -> bool {
    eventually(Duration::from_secs(30), || async {
        let mut tips = Vec::new();
        for node in nodes {
            tips.push(tip(client, node).await);
        }
        tips.iter().all(|t| t.0 >= height && t.1 == tips[0].1)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_made_with_admin_faults_splits_the_chain_until_it_heals() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let client = client();
    let n0 = NodeProc::start(dirs[0].path(), &["--name".into(), "n0".into()]);
    let n1 = NodeProc::start(
        dirs[1].path(),
        &[
            "--name".into(),
            "n1".into(),
            "--peer".into(),
            n0.url.clone(),
        ],
    );
    let n2 = NodeProc::start(
        dirs[2].path(),
        &[
            "--name".into(),
            "n2".into(),
            "--peer".into(),
            n0.url.clone(),
            "--peer".into(),
            n1.url.clone(),
        ],
    );
    mine(&client, &n0, 3).await;
    assert!(one_chain(&client, &[&n0, &n1, &n2], 3).await, "start");
    assert!(
        eventually(Duration::from_secs(20), || async {
            status(&client, &n0).await["peers"] == 2
                && status(&client, &n1).await["peers"] == 2
                && status(&client, &n2).await["peers"] == 2
        })
        .await,
        "everyone knows everyone"
    );

    // n2 on one side, n0 and n1 on the other, for a minute at most.
    set_faults(
        &client,
        &n2,
        json!({"unreachable": [n0.url, n1.url], "for_ms": 60_000}),
    )
    .await;
    for node in [&n0, &n1] {
        let answer = set_faults(
            &client,
            node,
            json!({"unreachable": [n2.url], "for_ms": 60_000}),
        )
        .await;
        assert_eq!(answer["faults"]["unreachable"], json!([n2.url]));
    }
    // Both sides mine: the bigger side 2 blocks, n2 alone 3.
    let big = mine(&client, &n0, 2).await;
    let small = mine(&client, &n2, 3).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            tip(&client, &n1).await == (5, big.clone())
        })
        .await,
        "n1 follows n0 on its side"
    );
    // Several maintenance rounds (300 ms) later, the sides still differ:
    // neither knows the other's blocks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(tip(&client, &n0).await, (5, big.clone()));
    assert_eq!(tip(&client, &n1).await, (5, big.clone()));
    assert_eq!(tip(&client, &n2).await, (6, small.clone()));
    for node in [&n0, &n1] {
        assert!(
            !knows(&client, node, &small).await,
            "{} saw n2's tip",
            node.url
        );
    }
    assert!(
        !knows(&client, &n2, &big).await,
        "n2 saw the other side's tip"
    );
    let failed = kit::http::metric(&client, &n2.url, "crapcoin_fault_failed_calls_total").await;
    assert!(failed > 0, "n2's calls across the cut failed: {failed}");

    // DELETE ends the partition: one chain again, n2's (the most work).
    for node in [&n0, &n1, &n2] {
        let answer = client
            .delete(format!("{}/admin/faults", node.url))
            .header("authorization", format!("Bearer {TOKEN}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status(), 200);
    }
    assert!(
        one_chain(&client, &[&n0, &n1, &n2], 6).await,
        "one chain after the heal: {:?} {:?} {:?}",
        tip(&client, &n0).await,
        tip(&client, &n1).await,
        tip(&client, &n2).await
    );
    assert_eq!(tip(&client, &n0).await.1, small);
}
