//! Sauron end to end, with real processes on 127.0.0.1: three nodes given
//! only `--tracker` find each other through Sauron, every request they
//! serve shows up in `/api/requests` with its full path, the consensus
//! check agrees after blocks are mined, and killing Sauron (SIGKILL) does
//! not disturb the nodes, which report again once it is back on the same
//! address and data directory. Every process is killed by PID when its
//! guard drops; every wait is bounded.

use std::time::Duration;

use kit::http::{admin, client, get};
use kit::process::{NodeProc, SauronProc};
use kit::time::eventually;
use serde_json::{Value, json};

/// Whether `/api/requests` (filtered by `query`) lists a request with
/// exactly `path`.
async fn logged(client: &reqwest::Client, sauron: &str, query: &str, path: &str) -> bool {
    let Ok(response) = client
        .get(format!("{sauron}/api/requests?limit=500&{query}"))
        .send()
        .await
    else {
        return false;
    };
    let bytes = response.bytes().await.unwrap_or_default();
    let page: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    page["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|r| r["path"] == path))
}

async fn newest_request_id(client: &reqwest::Client, sauron: &str) -> i64 {
    let page = get(client, &format!("{sauron}/api/requests?limit=1")).await;
    page["items"][0]["id"].as_i64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_meet_through_sauron_and_survive_its_death() {
    let dir = tempfile::tempdir().expect("dir");
    let c = client();
    let sauron = SauronProc::start(
        &dir.path().join("sauron"),
        &["--poll-ms".into(), "300".into(), "--k".into(), "1".into()],
    );
    let nodes: Vec<NodeProc> = (0..3)
        .map(|i| {
            NodeProc::start(
                &dir.path().join(format!("n{i}")),
                &[
                    "--name".into(),
                    format!("n{i}"),
                    "--tracker".into(),
                    sauron.url.clone(),
                ],
            )
        })
        .collect();

    // They find each other through the tracker alone.
    assert!(
        eventually(Duration::from_secs(40), || async {
            for node in &nodes {
                if get(&c, &format!("{}/status", node.url)).await["peers"] != 2 {
                    return false;
                }
            }
            true
        })
        .await,
        "every node found the other two through Sauron"
    );
    let listed = get(&c, &format!("{}/api/nodes", sauron.url)).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // Blocks mined on n0 reach everyone; consensus agrees.
    let (code, mined) = admin(&c, &format!("{}/mine", nodes[0].url), json!({"count": 3})).await;
    assert_eq!(code, 200, "{mined}");
    let hash = mined["hash"].as_str().expect("hash").to_owned();
    assert!(
        eventually(Duration::from_secs(30), || async {
            let consensus = get(&c, &format!("{}/api/consensus", sauron.url)).await;
            consensus["verdict"] == "consensus"
                && consensus["live_honest"] == 3
                && consensus["agreeing"] == 3
                && consensus["common_height"].as_u64() >= Some(2)
        })
        .await,
        "consensus: {}",
        get(&c, &format!("{}/api/consensus", sauron.url)).await
    );

    // Distinctive requests appear with their full paths.
    let unknown = "ab".repeat(32);
    for node in &nodes[1..] {
        assert!(
            eventually(Duration::from_secs(10), || async {
                c.get(format!("{}/block/{hash}", node.url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await
        );
    }
    let missing = c
        .get(format!("{}/block/{unknown}", nodes[2].url))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status().as_u16(), 404);
    for (query, path) in [
        (
            "node=n1&route=/block/{hash}".to_owned(),
            format!("/block/{hash}"),
        ),
        ("node=n2&status=404".to_owned(), format!("/block/{unknown}")),
        ("node=n0&route=/mine".to_owned(), "/mine".to_owned()),
    ] {
        let query = query.replace('{', "%7B").replace('}', "%7D");
        assert!(
            eventually(Duration::from_secs(15), || logged(
                &c,
                &sauron.url,
                &query,
                &path
            ))
            .await,
            "{path} logged under {query}"
        );
    }
    let blocks = get(&c, &format!("{}/api/blocks", sauron.url)).await;
    assert!(
        blocks["blocks"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["hash"] == hash)),
        "{blocks}"
    );

    // Kill Sauron: nodes keep serving and mining.
    let before = newest_request_id(&c, &sauron.url).await;
    assert!(before > 0);
    let addr = sauron.addr();
    let restart_args = SauronProc::restart_args(&sauron);
    sauron.kill();
    let (code, mined) = admin(&c, &format!("{}/mine", nodes[1].url), json!({})).await;
    assert_eq!(code, 200, "mining without Sauron: {mined}");
    let tip = mined["hash"].as_str().expect("hash").to_owned();
    assert!(
        eventually(Duration::from_secs(20), || async {
            let mut all = true;
            for node in &nodes {
                all &= get(&c, &format!("{}/status", node.url)).await["tip"] == tip.as_str();
            }
            all
        })
        .await,
        "the block spread while Sauron was down"
    );

    // Back on the same address and data: the nodes report again.
    let sauron = SauronProc::start_with(restart_args, &addr);
    assert_eq!(sauron.url, format!("http://{addr}"));
    let reloaded = get(&c, &format!("{}/api/nodes", sauron.url)).await;
    assert_eq!(
        reloaded.as_array().map(Vec::len),
        Some(3),
        "node table reloaded: {reloaded}"
    );
    let _ = c.get(format!("{}/status", nodes[2].url)).send().await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            newest_request_id(&c, &sauron.url).await > before
        })
        .await,
        "new rows after the restart"
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            get(&c, &format!("{}/api/consensus", sauron.url)).await["agreeing"] == 3
        })
        .await,
        "consensus seen again after the restart"
    );
    drop(nodes);
    drop(sauron);
}
