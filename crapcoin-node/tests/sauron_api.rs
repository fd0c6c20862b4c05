//! Sauron's HTTP API in-process (real sockets on 127.0.0.1): bad input is
//! refused with a 4xx reason and stores nothing; registrations are
//! verified; floods of registrations and events stay bounded; the read
//! API, the stream and the dashboard files answer.

mod support;

use std::time::Duration;

use clap::Parser;
use crapcoin_node::cli::Args as NodeArgs;
use crapcoin_node::sauron::{self, Config, db::Retention};
use kit::http::client;
use kit::time::eventually;
use serde_json::{Value, json};
use support::assert_refused;

async fn sauron(tweak: impl FnOnce(&mut Config)) -> sauron::Running {
    let mut config = Config {
        poll_interval: Duration::from_millis(100),
        retention_interval: Duration::from_millis(50),
        ..Config::default()
    };
    tweak(&mut config);
    sauron::start(config).await.expect("sauron starts")
}

async fn node() -> crapcoin_node::run::Running {
    let args = NodeArgs::parse_from(["crapcoin-node", "--difficulty", "4"]);
    crapcoin_node::run::start(args.node_config())
        .await
        .expect("node starts")
}

async fn post(client: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    kit::http::get(client, url).await
}

fn request_report(path: &str) -> Value {
    json!({"type": "request", "at_ms": kit::time::now_ms(), "method": "GET", "path": path,
           "route": "/block/{hash}", "status": 200, "latency_us": 42, "caller": "127.0.0.1:9",
           "peer": null, "request_bytes": 0, "response_bytes": 100, "excerpt": ""})
}

fn block_event(kind: &str, hash: char, parent: char, height: u64) -> Value {
    json!({"type": "event", "at_ms": kit::time::now_ms(), "event": {"kind": kind,
           "hash": hash.to_string().repeat(64), "parent": parent.to_string().repeat(64),
           "height": height, "from": null, "best": true, "tx": null}})
}

fn batch(node: &str, reports: Vec<Value>) -> String {
    json!({"node": node, "url": "http://127.0.0.1:9", "reports": reports}).to_string()
}

#[tokio::test]
async fn bad_batches_are_refused_whole() {
    let s = sauron(|_| {}).await;
    let c = client();
    let url = format!("{}/api/events", s.listen_url());
    let good = request_report("/block/abc");
    let mut wrong_type = request_report("/x");
    wrong_type["status"] = json!("200");
    let mut missing = request_report("/x");
    missing.as_object_mut().expect("object").remove("route");
    let too_long = request_report(&"/x".repeat(2000));
    let bad_hash = json!({"type": "event", "at_ms": 1, "event": {"kind": "block_mined",
                          "hash": "zz", "parent": "00", "height": 1}});
    let no_kind = json!({"type": "event", "at_ms": 1, "event": {"hash": "a"}});
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("not json", "{\"node\":".to_owned(), 400, "malformed"),
        ("a string", "\"hello\"".to_owned(), 400, "malformed"),
        (
            "wrong type",
            batch("n", vec![good.clone(), wrong_type]),
            400,
            "malformed",
        ),
        (
            "missing field",
            batch("n", vec![good.clone(), missing]),
            400,
            "malformed",
        ),
        (
            "overlong path",
            batch("n", vec![good.clone(), too_long]),
            400,
            "malformed",
        ),
        (
            "bad block hash",
            batch("n", vec![good.clone(), bad_hash]),
            400,
            "malformed",
        ),
        (
            "event without kind",
            batch("n", vec![good.clone(), no_kind]),
            400,
            "malformed",
        ),
        (
            "unknown report type",
            batch("n", vec![json!({"type": "gossip"})]),
            400,
            "malformed",
        ),
        (
            "empty node name",
            batch("", vec![good.clone()]),
            400,
            "malformed",
        ),
        (
            "too many reports",
            batch("n", vec![good.clone(); 1025]),
            413,
            "too_many_reports",
        ),
        (
            "oversize body",
            "x".repeat(2 * 1024 * 1024),
            413,
            "too_large",
        ),
    ];
    for (name, body, status, reason) in cases {
        let answer = post(&c, &url, body).await;
        assert_eq!(answer.0, status, "{name}: {answer:?}");
        assert_refused(&answer, status, reason);
    }
    let counts = s.shared().db.counts().await.expect("counts");
    assert_eq!((counts.requests, counts.events), (0, 0), "nothing stored");
    assert!(get(&c, &format!("{}/api/nodes", s.listen_url())).await == json!([]));

    // The good one is stored whole, and read back newest first with paging.
    let reports = (0..5)
        .map(|i| request_report(&format!("/block/{i}")))
        .collect();
    let answer = post(&c, &url, batch("n0", reports)).await;
    assert_eq!(answer, (200, json!({"stored": 5})));
    let page = get(
        &c,
        &format!("{}/api/requests?node=n0&limit=3", s.listen_url()),
    )
    .await;
    let paths: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, ["/block/4", "/block/3", "/block/2"]);
    let next = page["next"].as_i64().expect("a next cursor");
    let rest = get(
        &c,
        &format!("{}/api/requests?node=n0&before={next}", s.listen_url()),
    )
    .await;
    assert_eq!(rest["items"].as_array().expect("items").len(), 2);
    assert_eq!(rest["next"], Value::Null);
    let bad_query = c
        .get(format!("{}/api/requests?limit=many", s.listen_url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(bad_query.status().as_u16(), 400);
    s.shutdown().await;
}

#[tokio::test]
async fn registrations_are_verified_and_bounded() {
    let s = sauron(|c| c.max_nodes = 4).await;
    let n = node().await;
    let c = client();
    let url = format!("{}/api/peers", s.listen_url());
    let address = n.handle().address().to_string();
    let register = |name: &str, url: &str, address: &str| {
        json!({"url": url, "address": address, "name": name, "behaviour": "honest"}).to_string()
    };
    // Nobody answers there.
    let answer = post(&c, &url, register("ghost", "http://127.0.0.1:1", &address)).await;
    assert_refused(&answer, 422, "unreachable");
    // It answers, with another address.
    let other = crapcoin_core::Wallet::from_seed(99).address().to_string();
    let answer = post(&c, &url, register("liar", &n.listen_url(), &other)).await;
    assert_refused(&answer, 422, "address_mismatch");
    // Wrong types.
    let answer = post(
        &c,
        &url,
        json!({"url": 5, "address": address, "name": "x"}).to_string(),
    )
    .await;
    assert_refused(&answer, 400, "malformed");
    // Nonsense hash shares.
    for share in [json!(1.5), json!(-0.1), json!("half")] {
        let body = json!({"url": n.listen_url(), "address": address, "name": "n0",
                          "behaviour": "honest", "hash_share": share});
        let answer = post(&c, &url, body.to_string()).await;
        assert_refused(&answer, 400, "malformed");
    }
    assert_eq!(s.shared().state().node_count(), 0);

    // The node's own GET /status says its share (1: it mines alone on a
    // schedule); that wins over what the registration announces.
    let body = json!({"url": n.listen_url(), "address": address, "name": "n0",
                      "behaviour": "honest", "hash_share": 0.25});
    let answer = post(&c, &url, body.to_string()).await;
    assert_eq!(answer, (200, json!({"ok": true})));
    let nodes = get(&c, &format!("{}/api/nodes", s.listen_url())).await;
    assert_eq!(nodes[0]["name"], "n0");
    let status = get(&c, &format!("{}/status", n.listen_url())).await;
    assert_eq!(nodes[0]["hash_share"], status["hash_share"], "{status}");
    assert_ne!(nodes[0]["hash_share"], 0.25);
    assert_eq!(nodes[0]["alive"], true);
    assert_eq!(nodes[0]["honest"], true);
    let sample = get(&c, &format!("{url}?count=5")).await;
    assert_eq!(sample[0]["url"], n.listen_url());
    let excluded = get(&c, &format!("{url}?count=5&exclude={}", n.listen_url())).await;
    assert_eq!(excluded, json!([]), "never the caller");

    // A flood of registrations: the table stops at its cap.
    let mut refused = 0;
    for i in 0..10 {
        let answer = post(
            &c,
            &url,
            register(&format!("flood{i}"), &n.listen_url(), &address),
        )
        .await;
        if answer.0 == 429 {
            assert_refused(&answer, 429, "too_many_nodes");
            refused += 1;
        }
    }
    assert_eq!(refused, 7);
    // And a flood of event batches from made-up nodes.
    for i in 0..10 {
        let answer = post(
            &c,
            &format!("{}/api/events", s.listen_url()),
            batch(&format!("made-up{i}"), vec![request_report("/status")]),
        )
        .await;
        assert_eq!(answer.0, 200, "rows are stored even when the table is full");
    }
    assert_eq!(s.shared().state().node_count(), 4);
    assert!(
        get(&c, &format!("{}/api/nodes", s.listen_url()))
            .await
            .as_array()
            .expect("nodes")
            .len()
            <= 4
    );
    n.shutdown().await;
    s.shutdown().await;
}

#[tokio::test]
async fn an_event_flood_is_cut_back_by_retention() {
    let s = sauron(|c| {
        c.retention = Retention {
            requests: 300,
            events: 200,
            max_age: None,
        };
    })
    .await;
    let c = client();
    let url = format!("{}/api/events", s.listen_url());
    for round in 0..20 {
        let mut reports: Vec<Value> = (0..100)
            .map(|i| request_report(&format!("/block/{round}-{i}")))
            .collect();
        reports.extend((0..50).map(|_| json!({"type": "event", "at_ms": 1, "event": {"kind": "peer_added", "peer": "http://127.0.0.1:1"}})));
        let answer = post(&c, &url, batch("n0", reports)).await;
        assert_eq!(answer, (200, json!({"stored": 150})));
    }
    let shared = s.shared().clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let shared = shared.clone();
            async move {
                let counts = shared.db.counts().await.expect("counts");
                counts.requests <= 300 && counts.events <= 200
            }
        })
        .await,
        "retention cut the tables back"
    );
    // The newest survive.
    let page = get(&c, &format!("{}/api/requests?limit=1", s.listen_url())).await;
    assert_eq!(page["items"][0]["path"], "/block/19-99");
    s.shutdown().await;
}

#[tokio::test]
async fn blocks_consensus_boss_stream_and_dashboard() {
    let s = sauron(|c| c.k = 1).await;
    let c = client();
    let base = s.listen_url();
    // The stream first, so it sees what follows.
    let mut stream = c
        .get(format!("{base}/api/stream"))
        .send()
        .await
        .expect("stream");
    assert_eq!(
        stream.headers()["content-type"].to_str().expect("type"),
        "text/event-stream"
    );
    let events = format!("{base}/api/events");
    let answer = post(
        &c,
        &events,
        batch(
            "n0",
            vec![
                block_event("block_mined", 'a', '0', 1),
                block_event("block_mined", 'b', 'a', 2),
                request_report("/block/distinctive"),
            ],
        ),
    )
    .await;
    assert_eq!(answer.0, 200, "{answer:?}");
    let answer = post(&c, &events, batch("n1", vec![
        block_event("block_accepted", 'a', '0', 1),
        block_event("block_accepted", 'b', 'a', 2),
        json!({"type": "event", "at_ms": 1, "event": {"kind": "block_rejected", "hash": null,
               "reason": {"reason": "bad_pow"}, "from": null}}),
    ])).await;
    assert_eq!(answer.0, 200, "{answer:?}");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("/block/distinctive") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("stream data in time")
            .expect("chunk")
            .expect("not ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event:request"), "{seen}");

    let blocks = get(&c, &format!("{base}/api/blocks")).await;
    assert_eq!(blocks["blocks"].as_array().expect("blocks").len(), 2);
    // No registered honest node: the window follows the live ones.
    assert_eq!(blocks["window"]["anchor"], "live", "{blocks}");
    assert_eq!(blocks["window"]["anchor_height"], 2, "{blocks}");
    assert_eq!(blocks["blocks"][0]["miner_node"], "n0");
    assert_eq!(blocks["tips"]["n1"], "b".repeat(64));
    let propagation = get(&c, &format!("{base}/api/propagation")).await;
    assert_eq!(propagation["samples"], 2);
    let rejections = get(&c, &format!("{base}/api/rejections")).await;
    assert_eq!(rejections, json!({"bad_pow": 1}));
    // Nodes known only from batches are not honest-verified: no verdict.
    let consensus = get(&c, &format!("{base}/api/consensus")).await;
    assert_eq!(consensus["verdict"], "no_honest_nodes");
    assert_eq!(consensus["k"], 1);
    // Nor a best chain to measure forks against.
    let forks: sauron::state::Forks =
        serde_json::from_value(get(&c, &format!("{base}/api/forks")).await).expect("typed");
    assert_eq!(
        (forks.best_tip, forks.blocks_mined, forks.stale_rate),
        (None, 0, None)
    );

    let boss = json!({"action": "fired", "node": "n1", "url": null, "at_ms": 5}).to_string();
    assert_eq!(post(&c, &format!("{base}/api/boss"), boss).await.0, 200);
    let bad_boss = json!({"action": "promoted", "node": "n1", "at_ms": 5}).to_string();
    assert_refused(
        &post(&c, &format!("{base}/api/boss"), bad_boss).await,
        400,
        "malformed",
    );
    let nodes = get(&c, &format!("{base}/api/nodes")).await;
    let n1 = nodes
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "n1")
        .expect("n1");
    assert_eq!(n1["fired"], true);
    let boss_events = get(&c, &format!("{base}/api/events?kind=boss")).await;
    assert_eq!(boss_events["items"][0]["event"]["action"], "fired");
    let config = get(&c, &format!("{base}/api/config")).await;
    assert_eq!(config["control_url"], Value::Null);

    for (path, content_type) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let response = c
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let ty = response.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_owned();
        assert!(ty.starts_with(content_type), "{path}: {ty}");
    }
    drop(stream);
    s.shutdown().await;
}

#[tokio::test]
async fn the_node_table_survives_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let n = node().await;
    let c = client();
    let config = |c: &mut Config| c.data_dir = Some(dir.path().to_path_buf());
    let s = sauron(config).await;
    let body = json!({"url": n.listen_url(), "address": n.handle().address().to_string(),
                      "name": "keeper", "behaviour": "honest"});
    let answer = post(
        &c,
        &format!("{}/api/peers", s.listen_url()),
        body.to_string(),
    )
    .await;
    assert_eq!(answer.0, 200, "{answer:?}");
    let answer = post(
        &c,
        &format!("{}/api/events", s.listen_url()),
        batch("keeper", vec![block_event("block_mined", 'a', '0', 1)]),
    )
    .await;
    assert_eq!(answer.0, 200);
    // The node row is saved by the writer shortly after.
    let shared = s.shared().clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let shared = shared.clone();
            async move { shared.db.counts().await.expect("counts").nodes == 1 }
        })
        .await
    );
    s.shutdown().await;
    let s = sauron(config).await;
    let nodes = get(&c, &format!("{}/api/nodes", s.listen_url())).await;
    assert_eq!(nodes[0]["name"], "keeper");
    let blocks = get(&c, &format!("{}/api/blocks", s.listen_url())).await;
    assert_eq!(blocks["blocks"][0]["hash"], "a".repeat(64));
    n.shutdown().await;
    s.shutdown().await;
}
