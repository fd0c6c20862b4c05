//! `POST/GET/DELETE /admin/faults`: every bad request is refused with a
//! 4xx reason and changes nothing; good ones set, show and end the
//! node's faults; a skewed clock mints blocks its peers refuse as too new
//! until the skew ends.

mod support;

use std::time::Duration;

use crapcoin_core::Wallet;
use kit::time::{eventually, now_ms};
use serde_json::{Value, json};
use support::{TOKEN, TestNode, assert_refused};

/// `METHOD /admin/faults` with the token and `body`.
async fn faults(node: &TestNode, method: &str, body: Option<&str>) -> (u16, Value) {
    let mut request = warp::test::request()
        .method(method)
        .path("/admin/faults")
        .header("authorization", format!("Bearer {TOKEN}"));
    if let Some(body) = body {
        request = request.body(body);
    }
    node.call(request).await
}

fn urls(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("http://127.0.0.1:{}", 10_000 + i))
        .collect()
}

#[tokio::test]
async fn bad_fault_requests_are_refused_and_change_nothing() {
    let node = TestNode::start(0, |_| {}).await;
    // A fault in force first: a refused request must leave it as it is.
    let (code, set) = faults(
        &node,
        "POST",
        Some(r#"{"loss": {"rate": 0.25}, "for_ms": 60000}"#),
    )
    .await;
    assert_eq!(code, 200, "{set}");
    let before = faults(&node, "GET", None).await;
    assert_eq!(before.1["faults"]["loss"]["rate"], 0.25);
    let many = json!({"unreachable": urls(1025), "for_ms": 1000}).to_string();
    let many_to = json!({"latency": {"mean_ms": 5, "to": urls(1025)}, "for_ms": 1000}).to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        ("not json", "{oops".into(), "malformed"),
        (
            "unknown field",
            r#"{"for_ms": 5, "drop": 1}"#.into(),
            "malformed",
        ),
        (
            "bad url",
            r#"{"unreachable": ["ftp://x"], "for_ms": 5}"#.into(),
            "malformed",
        ),
        (
            "wrong type",
            r#"{"skew_ms": "soon", "for_ms": 5}"#.into(),
            "malformed",
        ),
        ("no for_ms", r#"{"skew_ms": 5}"#.into(), "bad_for_ms"),
        (
            "zero for_ms",
            r#"{"skew_ms": 5, "for_ms": 0}"#.into(),
            "bad_for_ms",
        ),
        (
            "negative for_ms",
            r#"{"skew_ms": 5, "for_ms": -1}"#.into(),
            "bad_for_ms",
        ),
        (
            "long for_ms",
            r#"{"skew_ms": 5, "for_ms": 3600001}"#.into(),
            "bad_for_ms",
        ),
        (
            "rate > 1",
            r#"{"loss": {"rate": 1.5}, "for_ms": 5}"#.into(),
            "bad_loss",
        ),
        (
            "rate < 0",
            r#"{"loss": {"rate": -0.1}, "for_ms": 5}"#.into(),
            "bad_loss",
        ),
        (
            "negative mean",
            r#"{"latency": {"mean_ms": -1}, "for_ms": 5}"#.into(),
            "bad_latency",
        ),
        (
            "negative jitter",
            r#"{"latency": {"mean_ms": 1, "jitter_ms": -1}, "for_ms": 5}"#.into(),
            "bad_latency",
        ),
        (
            "mean over an hour",
            r#"{"latency": {"mean_ms": 3600001}, "for_ms": 5}"#.into(),
            "bad_latency",
        ),
        (
            "skew over a year",
            r#"{"skew_ms": 31536000001, "for_ms": 5}"#.into(),
            "bad_skew",
        ),
        (
            "skew under a year",
            r#"{"skew_ms": -31536000001, "for_ms": 5}"#.into(),
            "bad_skew",
        ),
        ("1025 unreachable", many, "too_many_peers"),
        ("1025 latency.to", many_to, "too_many_peers"),
        // A good field beside a bad one is not set either.
        (
            "good and bad",
            r#"{"unreachable": ["http://127.0.0.1:9"], "loss": {"rate": 2}, "for_ms": 5}"#.into(),
            "bad_loss",
        ),
    ];
    for (name, body, reason) in cases {
        let answer = faults(&node, "POST", Some(&body)).await;
        assert_eq!(answer.1["reason"], reason, "{name}: {answer:?}");
        assert_refused(&answer, 400, reason);
        let now = faults(&node, "GET", None).await;
        same_loss(&now.1, &before.1, name);
        assert_eq!(
            now.1["faults"].as_object().map(|o| o.len()),
            Some(1),
            "{name}: {now:?}"
        );
    }
    // Oversize bodies are refused unread.
    let big = vec![b' '; 64 * 1024 + 1];
    let answer = node
        .call(
            warp::test::request()
                .method("POST")
                .path("/admin/faults")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(&big),
        )
        .await;
    assert_refused(&answer, 413, "too_large");
    // Without the right token, no method does anything.
    for method in ["POST", "GET", "DELETE"] {
        for auth in [None, Some("Bearer nope".to_owned())] {
            let mut request = warp::test::request()
                .method(method)
                .path("/admin/faults")
                .body(r#"{"skew_ms": 1, "for_ms": 1000}"#);
            if let Some(auth) = &auth {
                request = request.header("authorization", auth);
            }
            assert_refused(&node.call(request).await, 401, "unauthorized");
        }
    }
    let after = faults(&node, "GET", None).await;
    assert_eq!(after.0, 200);
    same_loss(&after.1, &before.1, "after the refusals");
    assert_eq!(after.1["faults"].as_object().map(|o| o.len()), Some(1));
    node.stop().await;
}

/// Both answers show the same loss fault (its end, a Unix time computed
/// at each answer, within a millisecond or two).
#[track_caller]
fn same_loss(now: &Value, before: &Value, name: &str) {
    let (now, before) = (&now["faults"]["loss"], &before["faults"]["loss"]);
    assert_eq!(now["rate"], before["rate"], "{name}");
    let end = |v: &Value| v["until_ms"].as_u64().expect("an end");
    assert!(
        end(now).abs_diff(end(before)) <= 2,
        "{name}: {now} {before}"
    );
}

#[tokio::test]
async fn faults_are_set_shown_replaced_one_by_one_and_ended() {
    let node = TestNode::start(0, |_| {}).await;
    let (code, empty) = faults(&node, "GET", None).await;
    assert_eq!((code, empty), (200, json!({"faults": {}})));
    let start = now_ms();
    let (code, set) = faults(
        &node,
        "POST",
        Some(
            r#"{"unreachable": ["http://127.0.0.1:4001"],
                "latency": {"mean_ms": 200, "jitter_ms": 50, "to": ["http://127.0.0.1:4002"]},
                "loss": {"rate": 0.2},
                "skew_ms": -90000,
                "for_ms": 10000}"#,
        ),
    )
    .await;
    assert_eq!(code, 200, "{set}");
    let f = &set["faults"];
    assert_eq!(f["unreachable"], json!(["http://127.0.0.1:4001"]));
    assert_eq!(f["latency"]["mean_ms"], 200);
    assert_eq!(f["latency"]["jitter_ms"], 50);
    assert_eq!(f["latency"]["to"], json!(["http://127.0.0.1:4002"]));
    assert_eq!(f["loss"]["rate"], 0.2);
    assert!(f["loss"].get("to").is_none(), "every peer: {f}");
    assert_eq!(f["skew_ms"], -90000);
    for until in [
        &f["unreachable_until_ms"],
        &f["latency"]["until_ms"],
        &f["loss"]["until_ms"],
        &f["skew_until_ms"],
    ] {
        let until = until.as_u64().expect("a time");
        assert!(
            until >= start + 9_000 && until <= now_ms() + 10_000,
            "{until}"
        );
    }
    // The node's clock reads 90 s behind: a block it mines says so.
    let mined = node.handle.mine().await.expect("mines");
    let stamped = node.handle.with_chain(|c| c.tip_block().header.timestamp);
    assert_eq!(mined.height, 1);
    assert!(stamped < now_ms() - 80_000, "{stamped}");
    // One field replaces its fault only; `[]` clears the unreachable list.
    let (code, after) = faults(
        &node,
        "POST",
        Some(r#"{"unreachable": [], "loss": {"rate": 0.5}, "for_ms": 20000}"#),
    )
    .await;
    assert_eq!(code, 200, "{after}");
    let f = &after["faults"];
    assert!(f.get("unreachable").is_none(), "{f}");
    assert_eq!(f["loss"]["rate"], 0.5);
    assert_eq!(f["latency"]["mean_ms"], 200);
    assert_eq!(f["skew_ms"], -90000);
    let metrics = kit::http::metric_sum(
        &node.app.metrics.render(&node.handle),
        "crapcoin_faults_active",
    );
    assert_eq!(metrics, 3);
    // DELETE ends them all, and the clock reads true again.
    let (code, cleared) = faults(&node, "DELETE", None).await;
    assert_eq!((code, cleared), (200, json!({"faults": {}})));
    let metrics = kit::http::metric_sum(
        &node.app.metrics.render(&node.handle),
        "crapcoin_faults_active",
    );
    assert_eq!(metrics, 0);
    node.handle.mine().await.expect("mines");
    let stamped = node.handle.with_chain(|c| c.tip_block().header.timestamp);
    assert!(stamped + 5_000 >= now_ms(), "{stamped}");
    node.stop().await;
}

#[tokio::test]
async fn faults_end_by_themselves() {
    let node = TestNode::start(0, |_| {}).await;
    let (code, set) = faults(
        &node,
        "POST",
        Some(r#"{"skew_ms": 600000, "unreachable": ["http://127.0.0.1:4001"], "for_ms": 300}"#),
    )
    .await;
    assert_eq!(code, 200, "{set}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            faults(&node, "GET", None).await.1 == json!({"faults": {}})
        })
        .await,
        "the faults ended"
    );
    node.handle.mine().await.expect("mines");
    let stamped = node.handle.with_chain(|c| c.tip_block().header.timestamp);
    assert!(stamped <= now_ms() + 1_000, "the skew ended too: {stamped}");
    node.stop().await;
}

/// A node whose clock runs far ahead mints a block its peer refuses as
/// too new; once the skew ends, it follows its peer's chain and its next
/// blocks are taken.
#[tokio::test]
async fn a_skewed_node_mints_blocks_its_peers_refuse_until_the_skew_ends() {
    let ahead = TestNode::start(0, |_| {}).await;
    let peer = TestNode::start(0, |_| {}).await;
    let (code, set) = faults(
        &ahead,
        "POST",
        Some(r#"{"skew_ms": 600000, "for_ms": 1500}"#),
    )
    .await;
    assert_eq!(code, 200, "{set}");
    ahead.handle.mine().await.expect("mines");
    let early = ahead.handle.with_chain(|c| c.tip_block().clone());
    assert!(early.header.timestamp > now_ms() + 500_000);
    assert_refused(&peer.post_block(&early).await, 400, "timestamp_too_new");
    assert_eq!(peer.handle.height(), 0);
    assert!(
        eventually(Duration::from_secs(10), || async {
            ahead.handle.faults().current().count() == 0
        })
        .await,
        "the skew ended"
    );
    // The peer's longer chain, at true time, is taken by the node that
    // was ahead; its next block, stamped at true time too, by the peer.
    let miner = Wallet::from_seed(7).address();
    for _ in 0..2 {
        let block = peer.forge(miner).mine();
        assert_eq!(peer.post_block(&block).await.0, 200);
        let answer = ahead.post_block(&block).await;
        assert_eq!(answer.0, 200, "{answer:?}");
    }
    assert_eq!(ahead.handle.tip(), peer.handle.tip());
    ahead.handle.mine().await.expect("mines");
    let next = ahead.handle.with_chain(|c| c.tip_block().clone());
    assert!(next.header.timestamp <= now_ms() + 1_000);
    assert_eq!(
        peer.post_block(&next).await,
        (200, json!({"result": "accepted"}))
    );
    assert_eq!(peer.handle.tip(), next.hash());
    ahead.stop().await;
    peer.stop().await;
}
