//! Every class of bad input, sent through HTTP: each test checks the 4xx
//! status and reason AND that height, tip, mempool and balances did not
//! change. Most go through `warp::test` (no socket); the ones about
//! connections, relaying and peers use real sockets on 127.0.0.1.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crapcoin_core::node::AutoConfig;
use crapcoin_core::{Address, BlockHash, Params, Signature, Wallet};
use kit::time::{eventually, now_ms};
use serde_json::{Value, json};
use support::{TOKEN, TestNode, assert_refused};
use warp::Filter;

/// The node's wallet, a funded outsider's and a pauper's addresses.
fn wallets() -> (Wallet, Wallet, Wallet) {
    (
        Wallet::from_seed(1),
        Wallet::from_seed(2),
        Wallet::from_seed(3),
    )
}

fn everyone() -> Vec<Address> {
    let (a, b, c) = wallets();
    vec![a.address(), b.address(), c.address()]
}

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_refused() {
    let node = TestNode::start(3, |_| {}).await;
    let before = node.snapshot(&everyone());
    let good = node.forge(node.handle.address()).mine();
    let mut wrong_type: Value = serde_json::to_value(&good).expect("json");
    wrong_type["header"]["height"] = json!("four");
    let mut missing: Value = serde_json::to_value(&good).expect("json");
    missing["header"]
        .as_object_mut()
        .expect("object")
        .remove("nonce");
    let mut unknown: Value = serde_json::to_value(&good).expect("json");
    unknown["extra"] = json!(1);
    for (name, body) in [
        ("not json", b"{not json".to_vec()),
        ("empty", Vec::new()),
        ("array", b"[1,2,3]".to_vec()),
        ("wrong type", wrong_type.to_string().into_bytes()),
        ("missing field", missing.to_string().into_bytes()),
        ("unknown field", unknown.to_string().into_bytes()),
    ] {
        let answer = node.post_block_bytes(&body).await;
        assert_eq!(answer.1["reason"], "malformed", "{name}: {answer:?}");
        assert_refused(&answer, 400, "malformed");
    }
    let (_, outsider, _) = wallets();
    let tx = node.sign(&outsider, node.handle.address(), 1, 0, 0);
    let mut tx_wrong: Value = serde_json::to_value(&tx).expect("json");
    tx_wrong["amount"] = json!(-5);
    let mut tx_missing: Value = serde_json::to_value(&tx).expect("json");
    tx_missing
        .as_object_mut()
        .expect("object")
        .remove("signature");
    for body in [
        b"nope".to_vec(),
        tx_wrong.to_string().into_bytes(),
        tx_missing.to_string().into_bytes(),
        br#"{"from": "zz"}"#.to_vec(),
    ] {
        assert_refused(&node.post_tx_bytes(&body).await, 400, "malformed");
    }
    assert_refused(
        &node
            .call(
                warp::test::request()
                    .method("POST")
                    .path("/peers")
                    .body("{\"url\": 5}"),
            )
            .await,
        400,
        "malformed",
    );
    assert_eq!(node.snapshot(&everyone()), before);
    node.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_refused_before_reading() {
    let node = TestNode::start(2, |_| {}).await;
    let before = node.snapshot(&everyone());
    let big = vec![b' '; 64 * 1024];
    assert_refused(&node.post_block_bytes(&big).await, 413, "too_large");
    assert_refused(&node.post_tx_bytes(&big).await, 413, "too_large");
    for path in [
        "/peers",
        "/transfer",
        "/mine",
        "/admin/peers",
        "/admin/auto",
    ] {
        let answer = node
            .call(
                warp::test::request()
                    .method("POST")
                    .path(path)
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .body(&big),
            )
            .await;
        assert_refused(&answer, 413, "too_large");
    }
    assert_eq!(node.snapshot(&everyone()), before);
    node.stop().await;
}

#[tokio::test]
async fn blocks_failing_context_free_checks_are_refused() {
    let node = TestNode::start(3, |_| {}).await;
    let (me, outsider, _) = wallets();
    let before = node.snapshot(&everyone());
    let miner = outsider.address();

    // `hash` not matching contents.
    let good = node.forge(miner).mine();
    let mut lying: Value = serde_json::to_value(&good).expect("json");
    lying["hash"] = json!(BlockHash([7; 32]).to_string());
    assert_refused(
        &node.post_block_bytes(lying.to_string().as_bytes()).await,
        400,
        "bad_hash",
    );

    let spend = node.sign(&me, miner, 10, 1, 0);
    let mut bad_sig = spend.clone();
    bad_sig.signature = Signature([9; 64]);
    // Signed by the outsider's key but claiming to come from the node.
    let mut foreign = node.sign(&outsider, miner, 10, 1, 0);
    foreign.from = me.address();
    let cases = [
        ("insufficient pow", node.forge(miner).bad_pow(), "bad_pow"),
        (
            "wrong difficulty",
            node.forge(miner).difficulty(5).mine(),
            "wrong_difficulty",
        ),
        (
            "bad tx root",
            node.forge(miner).tx_root(BlockHash([1; 32])).mine(),
            "bad_tx_root",
        ),
        (
            "bad signature",
            node.forge(miner).tx(bad_sig).mine(),
            "bad_signature",
        ),
        (
            "foreign signature",
            node.forge(miner).tx(foreign).mine(),
            "bad_signature",
        ),
        (
            "zero amount",
            node.forge(miner).tx(node.sign(&me, miner, 0, 1, 0)).mine(),
            "zero_amount",
        ),
        (
            "amount + fee overflows",
            node.forge(miner)
                .tx(node.sign(&me, miner, u64::MAX, 1, 0))
                .mine(),
            "overflow",
        ),
        (
            "wrong height",
            node.forge(miner).height(9).mine(),
            "bad_height",
        ),
        (
            "wrong genesis",
            node.forge(miner)
                .height(0)
                .prev_hash(BlockHash([3; 32]))
                .mine(),
            "wrong_genesis",
        ),
    ];
    for (name, block, reason) in cases {
        let answer = node.post_block(&block).await;
        assert_eq!(answer.1["reason"], reason, "{name}: {answer:?}");
        assert_refused(&answer, 400, reason);
        assert_eq!(node.snapshot(&everyone()), before, "{name}");
    }
    assert!(node.app.metrics.rejected("bad_pow") >= 1);
    node.stop().await;
}

#[tokio::test]
async fn blocks_failing_state_checks_are_refused() {
    let node = TestNode::start(3, |_| {}).await;
    let (me, outsider, pauper) = wallets();
    let before = node.snapshot(&everyone());
    let balance = before.balances[0].0;
    assert_eq!(balance, 150);
    let miner = outsider.address();
    let cases = [
        (
            "overspend",
            node.forge(miner)
                .tx(node.sign(&me, miner, balance, 1, 0))
                .mine(),
            "overspend",
        ),
        (
            "pauper spends",
            node.forge(miner)
                .tx(node.sign(&pauper, miner, 1, 0, 0))
                .mine(),
            "overspend",
        ),
        (
            "nonce gap",
            node.forge(miner).tx(node.sign(&me, miner, 1, 1, 5)).mine(),
            "bad_nonce",
        ),
    ];
    for (name, block, reason) in cases {
        let answer = node.post_block(&block).await;
        assert_eq!(answer.1["reason"], reason, "{name}: {answer:?}");
        assert_refused(&answer, 400, reason);
        assert_eq!(node.snapshot(&everyone()), before, "{name}");
    }
    // A replayed transaction: include a transfer once, then the same again.
    let tx = node.sign(&me, miner, 5, 1, 0);
    let first = node.forge(miner).tx(tx.clone()).mine();
    assert_eq!(
        node.post_block(&first).await,
        (200, json!({"result": "accepted"}))
    );
    let after_first = node.snapshot(&everyone());
    assert_eq!(after_first.balances[0].0, balance - 6);
    let replay = node.forge(miner).tx(tx).mine();
    assert_refused(&node.post_block(&replay).await, 400, "bad_nonce");
    assert_eq!(node.snapshot(&everyone()), after_first);
    node.stop().await;
}

#[tokio::test]
async fn bad_transactions_are_refused() {
    let node = TestNode::start(2, |_| {}).await;
    let (me, outsider, pauper) = wallets();
    let to = outsider.address();
    let before = node.snapshot(&everyone());
    let mut bad_sig = node.sign(&me, to, 1, 1, 0);
    bad_sig.signature = Signature([1; 64]);
    let mut foreign = node.sign(&outsider, to, 1, 1, 0);
    foreign.from = me.address();
    let wrong_network = me.transfer(&Params::with_difficulty(9).chain_id(), to, 1, 1, 0);
    let cases = [
        ("bad signature", bad_sig, "bad_signature"),
        ("foreign signature", foreign, "bad_signature"),
        ("signed for another network", wrong_network, "bad_signature"),
        ("zero amount", node.sign(&me, to, 0, 1, 0), "zero_amount"),
        ("overflow", node.sign(&me, to, u64::MAX, 1, 0), "overflow"),
        ("overspend", node.sign(&me, to, 100, 1, 0), "overspend"),
        ("pauper", node.sign(&pauper, to, 1, 0, 0), "overspend"),
        ("nonce gap", node.sign(&me, to, 1, 1, 3), "bad_nonce"),
    ];
    for (name, tx, reason) in cases {
        let answer = node.post_tx(&tx).await;
        assert_eq!(answer.1["reason"], reason, "{name}: {answer:?}");
        assert_refused(&answer, 400, reason);
        assert_eq!(node.snapshot(&everyone()), before, "{name}");
    }
    // Replay: once mined, the same transaction is refused.
    let tx = node.sign(&me, to, 3, 1, 0);
    let (status, body) = node.post_tx(&tx).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(Duration::from_secs(10), || async {
            node.handle.balance(&to).balance == 3
        })
        .await,
        "the transfer is mined"
    );
    let mined = node.snapshot(&everyone());
    assert_refused(&node.post_tx(&tx).await, 400, "bad_nonce");
    assert_eq!(node.snapshot(&everyone()), mined);
    node.stop().await;
}

#[tokio::test]
async fn timestamps_too_new_wait_their_turn_and_before_parent_are_refused() {
    let node = TestNode::start(2, |_| {}).await;
    let before = node.snapshot(&everyone());
    let miner = Wallet::from_seed(2).address();
    // The network allows 1 s ahead of the clock; this block is 2.5 s ahead.
    let early = node.forge(miner).timestamp(now_ms() + 2_500).mine();
    assert_refused(&node.post_block(&early).await, 400, "timestamp_too_new");
    assert_eq!(node.snapshot(&everyone()), before);
    let parent_ts = node.handle.with_chain(|c| c.tip_block().header.timestamp);
    let before_parent = node.forge(miner).timestamp(parent_ts - 1).mine();
    assert_refused(
        &node.post_block(&before_parent).await,
        400,
        "timestamp_before_parent",
    );
    assert_eq!(node.snapshot(&everyone()), before);
    // Once its time has come, the same block is accepted: "too new" is not
    // remembered as invalid.
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    assert_eq!(
        node.post_block(&early).await,
        (200, json!({"result": "accepted"}))
    );
    assert_eq!(node.handle.height(), before.height + 1);
    assert_eq!(node.handle.tip(), early.hash());
    node.stop().await;
}

#[tokio::test]
async fn a_longer_chain_with_one_invalid_block_is_refused() {
    // Side blocks this close to the tip are state-checked on arrival (the
    // default); with the check off (as for branches deeper than
    // `Limits::side_check_depth`) the switch to the branch finds the bad one.
    for check_side in [true, false] {
        let node = TestNode::start(2, |c| {
            if !check_side {
                c.limits.side_check_depth = 0;
            }
        })
        .await;
        let (me, outsider, _) = wallets();
        let before = node.snapshot(&everyone());
        let genesis = node.params.genesis();
        let miner = outsider.address();
        let ts = now_ms();
        // A branch from genesis, three long (more work than our two
        // blocks), whose second block spends coins the node's wallet does
        // not have on that branch.
        let b1 = crapcoin_core::Forge::new(&node.params, &genesis.header)
            .miner(miner)
            .timestamp(ts)
            .mine();
        let b2 = crapcoin_core::Forge::new(&node.params, &b1.header)
            .miner(miner)
            .timestamp(ts)
            .tx(node.sign(&me, miner, 10, 0, 0))
            .mine();
        let b3 = crapcoin_core::Forge::new(&node.params, &b2.header)
            .miner(miner)
            .timestamp(ts)
            .mine();
        let b4 = crapcoin_core::Forge::new(&node.params, &b3.header)
            .miner(miner)
            .timestamp(ts)
            .mine();
        // b1 is a side block (no more work than the best chain).
        assert_eq!(node.post_block(&b1).await.0, 200);
        if check_side {
            assert_refused(&node.post_block(&b2).await, 400, "overspend");
            assert_refused(&node.post_block(&b3).await, 400, "invalid_ancestor");
        } else {
            assert_eq!(node.post_block(&b2).await.0, 200);
            // b3 makes the branch heavier: switching to it fails at b2.
            assert_refused(&node.post_block(&b3).await, 400, "overspend");
        }
        assert_refused(&node.post_block(&b4).await, 400, "invalid_ancestor");
        assert_eq!(
            node.snapshot(&everyone()),
            before,
            "check_side {check_side}"
        );
        node.stop().await;
    }
}

#[tokio::test]
async fn an_orphan_flood_keeps_the_pool_bounded() {
    let node = TestNode::start(1, |c| c.orphan_capacity = 16).await;
    let before = node.snapshot(&everyone());
    let miner = Wallet::from_seed(2).address();
    for i in 0..100u8 {
        let mut parent = node.handle.with_chain(|c| c.tip_block().header.clone());
        parent.nonce = u64::from(i) + 1_000; // a parent nobody has
        let orphan = crapcoin_core::Forge::new(&node.params, &parent)
            .miner(miner)
            .timestamp(now_ms())
            .mine();
        assert_eq!(
            node.post_block(&orphan).await,
            (200, json!({"result": "orphan"}))
        );
        assert!(node.handle.orphan_count() <= 16);
    }
    assert_eq!(node.handle.orphan_count(), 16);
    assert_eq!(node.snapshot(&everyone()), before);
    node.stop().await;
}

#[tokio::test]
async fn pages_are_capped_and_empty_past_the_tip() {
    let node = TestNode::start(30, |c| c.page_limit = 20).await;
    let before = node.snapshot(&everyone());
    let page = |q: &'static str| {
        let node = &node;
        async move {
            node.call(warp::test::request().path(&format!("/blocks{q}")))
                .await
        }
    };
    let (status, huge) = page("?from=0&limit=1000000").await;
    assert_eq!(status, 200);
    assert_eq!(huge.as_array().expect("array").len(), 20);
    let (_, default) = page("?from=5").await;
    let default = default.as_array().expect("array");
    assert_eq!(default.len(), 20);
    assert_eq!(default[0]["header"]["height"], 5);
    let (status, past) = page("?from=31&limit=5").await;
    assert_eq!((status, past), (200, json!([])));
    let (status, far) = page("?from=18446744073709551615").await;
    assert_eq!((status, far), (200, json!([])));
    assert_refused(&page("?from=-1").await, 400, "bad_query");
    assert_refused(&page("?limit=lots").await, 400, "bad_query");
    // The whole chain is not capped, and is served from the cache the
    // second time (same bytes).
    let first = warp::test::request()
        .path("/blockchain")
        .reply(&node.routes)
        .await;
    let second = warp::test::request()
        .path("/blockchain")
        .reply(&node.routes)
        .await;
    assert_eq!(first.body(), second.body());
    let chain: Value = serde_json::from_slice(first.body()).expect("json");
    assert_eq!(chain.as_array().expect("array").len(), 31);
    assert_eq!(node.snapshot(&everyone()), before);
    node.stop().await;
}

#[tokio::test]
async fn block_lookups_with_bad_or_unknown_hashes() {
    let node = TestNode::start(1, |_| {}).await;
    let before = node.snapshot(&everyone());
    let get = |path: String| {
        let node = &node;
        async move { node.call(warp::test::request().path(&path)).await }
    };
    assert_refused(&get("/block/not-hex".into()).await, 400, "bad_hash_format");
    assert_refused(
        &get(format!("/block/{}", "zz".repeat(32))).await,
        400,
        "bad_hash_format",
    );
    assert_refused(&get("/block/abcd".into()).await, 400, "bad_hash_format");
    assert_refused(
        &get(format!("/block/{}", BlockHash([5; 32]))).await,
        404,
        "unknown_block",
    );
    let tip = node.handle.tip();
    let (status, block) = get(format!("/block/{tip}")).await;
    assert_eq!(status, 200);
    assert_eq!(block["hash"], tip.to_string());
    assert_refused(&get("/balance/xyz".into()).await, 400, "bad_address");
    assert_refused(&get("/nowhere".into()).await, 404, "not_found");
    assert_eq!(node.snapshot(&everyone()), before);
    node.stop().await;
}

#[tokio::test]
async fn admin_routes_need_the_token() {
    let node = TestNode::start(1, |_| {}).await;
    let before = node.snapshot(&everyone());
    let to = Wallet::from_seed(2).address();
    let transfer = json!({"to": to, "amount": 5}).to_string();
    for (path, body) in [
        ("/transfer", transfer.as_str()),
        ("/mine", "{}"),
        ("/admin/peers", r#"{"url": "http://127.0.0.1:9"}"#),
        ("/admin/auto", r#"{"on": false}"#),
    ] {
        for auth in [
            None,
            Some("Bearer wrong-token".to_owned()),
            Some(format!("Bearer {TOKEN}x")),
            Some(TOKEN.to_owned()),
            Some(format!("Basic {TOKEN}")),
        ] {
            let mut request = warp::test::request().method("POST").path(path).body(body);
            if let Some(auth) = &auth {
                request = request.header("authorization", auth);
            }
            let answer = node.call(request).await;
            assert_refused(&answer, 401, "unauthorized");
        }
    }
    assert_eq!(node.snapshot(&everyone()), before);
    // With the token, it works.
    let answer = node
        .call(
            warp::test::request()
                .method("POST")
                .path("/mine")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body("{}"),
        )
        .await;
    assert_eq!(answer.0, 200, "{answer:?}");
    assert_eq!(answer.1["height"], before.height + 1);
    node.stop().await;
}

/// `POST /admin/auto` with the token.
async fn set_auto(node: &TestNode, body: &str) -> (u16, Value) {
    node.call(
        warp::test::request()
            .method("POST")
            .path("/admin/auto")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_pauses_and_resumes_on_the_admin_route() {
    // Alone, an auto node mines a block every move: its height is the load.
    let node = TestNode::start(0, |c| {
        c.auto = Some(AutoConfig {
            interval: Duration::from_millis(40),
            max_transfers: None,
        });
    })
    .await;
    let grows = |from: u64| {
        let handle = node.handle.clone();
        eventually(Duration::from_secs(20), move || {
            let height = handle.height();
            async move { height > from + 2 }
        })
    };
    assert!(grows(0).await, "auto mode never mined");
    for body in [r#"{"on": "no"}"#, "{}", r#"{"on": false, "x": 1}"#, "nope"] {
        assert_refused(&set_auto(&node, body).await, 400, "malformed");
    }
    assert!(node.handle.auto_on(), "bad requests changed nothing");

    assert_eq!(
        set_auto(&node, r#"{"on": false}"#).await,
        (200, json!({"auto": false}))
    );
    assert!(!node.handle.auto_on());
    // A move already under way may still finish; after that, nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused_at = node.handle.height();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        node.handle.height(),
        paused_at,
        "paused auto mode kept mining"
    );

    assert_eq!(
        set_auto(&node, r#"{"on": true}"#).await,
        (200, json!({"auto": true}))
    );
    assert!(grows(paused_at).await, "resumed auto mode never mined");
    node.stop().await;

    // A node launched without auto mode cannot be switched to it.
    let plain = TestNode::start(0, |_| {}).await;
    assert_refused(
        &set_auto(&plain, r#"{"on": true}"#).await,
        409,
        "auto_not_configured",
    );
    assert_eq!(
        set_auto(&plain, r#"{"on": false}"#).await,
        (200, json!({"auto": false}))
    );
    plain.stop().await;
}

/// A fake peer on a real socket: answers `/status` as a node of the test
/// network and counts the blocks pushed to it.
async fn fake_peer(
    genesis_status: Value,
) -> (String, Arc<AtomicUsize>, tokio::sync::oneshot::Sender<()>) {
    let (url, pushed, _, stop) = fake_peer_counting_txs(genesis_status).await;
    (url, pushed, stop)
}

/// [`fake_peer`], also counting the transactions relayed to it.
async fn fake_peer_counting_txs(
    genesis_status: Value,
) -> (
    String,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    tokio::sync::oneshot::Sender<()>,
) {
    let pushed = Arc::new(AtomicUsize::new(0));
    let relayed = Arc::new(AtomicUsize::new(0));
    let tx_counter = relayed.clone();
    let (listener, url) = kit::http::loopback().await;
    let mut status = genesis_status;
    status["url"] = json!(url);
    status["node_id"] = json!("fake");
    let counter = pushed.clone();
    let routes = warp::path!("status")
        .map(move || warp::reply::json(&status))
        .or(warp::path!("block").and(warp::post()).map(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            warp::reply::json(&json!({"result": "accepted"}))
        }))
        .or(warp::path!("transactions").and(warp::post()).map(move || {
            tx_counter.fetch_add(1, Ordering::SeqCst);
            warp::reply::json(&json!({"result": "accepted"}))
        }))
        .or(warp::path!("peers").map(|| warp::reply::json(&json!([]))));
    let stop = kit::http::serve(listener, routes);
    (url, pushed, relayed, stop)
}

/// A transaction relayed by a peer (the peer header names it) is checked
/// like a submitted one and like a block: junk is refused with its reason
/// and never passed on, a new valid one is passed on once, and copies of it
/// are answered `duplicate` and go no further.
#[tokio::test]
async fn relayed_transactions_are_checked_and_passed_on_once() {
    let node = TestNode::start(1, |_| {}).await;
    let status = serde_json::to_value(node.handle.status()).expect("json");
    let (peer_url, _, relayed, stop) = fake_peer_counting_txs(status).await;
    node.handle
        .add_peer(peer_url.parse().expect("url"))
        .await
        .expect("fake peer added");
    let relay = |bytes: Vec<u8>| {
        node.call(
            warp::test::request()
                .method("POST")
                .path("/transactions")
                .header("x-crapcoin-peer", "http://127.0.0.1:1")
                .body(bytes),
        )
    };
    let (me, outsider, _) = wallets();
    let before = node.snapshot(&everyone());
    let mut forged = node.sign(&me, outsider.address(), 1, 1, 0);
    forged.amount = 2;
    let cases = [
        (
            "forged",
            serde_json::to_vec(&forged).expect("json"),
            400,
            "bad_signature",
        ),
        (
            "not a transaction",
            b"{\"amount\": 1}".to_vec(),
            400,
            "malformed",
        ),
        ("too large", vec![b' '; 3000], 413, "too_large"),
        (
            "nonce gap",
            serde_json::to_vec(&node.sign(&me, outsider.address(), 1, 1, 5)).expect("json"),
            400,
            "bad_nonce",
        ),
    ];
    for (name, bytes, status, reason) in cases {
        let answer = relay(bytes).await;
        assert_refused(&answer, status, reason);
        assert_eq!(node.snapshot(&everyone()), before, "{name}");
    }
    let good = node.sign(&me, outsider.address(), 1, 1, 0);
    let bytes = serde_json::to_vec(&good).expect("json");
    assert_eq!(
        relay(bytes.clone()).await,
        (200, json!({"result": "accepted"}))
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            relayed.load(Ordering::SeqCst) == 1
        })
        .await,
        "the new transaction is relayed to the peer once"
    );
    for _ in 0..3 {
        assert_eq!(
            relay(bytes.clone()).await,
            (200, json!({"result": "duplicate"}))
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        relayed.load(Ordering::SeqCst),
        1,
        "junk and copies are not relayed"
    );
    let _ = stop.send(());
    node.stop().await;
}

#[tokio::test]
async fn a_duplicate_block_is_answered_as_duplicate_and_not_relayed_again() {
    let node = TestNode::start(1, |_| {}).await;
    let status = serde_json::to_value(node.handle.status()).expect("json");
    let (peer_url, pushed, stop) = fake_peer(status).await;
    node.handle
        .add_peer(peer_url.parse().expect("url"))
        .await
        .expect("fake peer added");
    let block = node.forge(Wallet::from_seed(2).address()).mine();
    assert_eq!(
        node.post_block(&block).await,
        (200, json!({"result": "accepted"}))
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            pushed.load(Ordering::SeqCst) == 1
        })
        .await,
        "the new block is relayed once"
    );
    let before = node.snapshot(&everyone());
    for _ in 0..3 {
        assert_eq!(
            node.post_block(&block).await,
            (200, json!({"result": "duplicate"}))
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        pushed.load(Ordering::SeqCst),
        1,
        "duplicates are not relayed"
    );
    assert_eq!(node.snapshot(&everyone()), before);
    let _ = stop.send(());
    node.stop().await;
}

#[tokio::test]
async fn announcements_of_garbage_ourselves_or_the_silent_are_not_kept() {
    let node = TestNode::start(1, |_| {}).await;
    let before = node.snapshot(&everyone());
    let announce = |body: String| {
        let node = &node;
        async move {
            node.call(
                warp::test::request()
                    .method("POST")
                    .path("/peers")
                    .body(body),
            )
            .await
        }
    };
    assert_refused(&announce("garbage".into()).await, 400, "malformed");
    assert_refused(
        &announce(r#"{"url": "ftp://x"}"#.into()).await,
        400,
        "malformed",
    );
    assert_refused(
        &announce(format!(r#"{{"url": "http://{}"}}"#, "a".repeat(300))).await,
        400,
        "malformed",
    );
    assert_refused(
        &announce(format!(r#"{{"url": "{}"}}"#, node.handle.url())).await,
        400,
        "own_url",
    );
    // A port nobody listens on.
    let silent = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("addr")
    };
    assert_refused(
        &announce(format!(r#"{{"url": "http://{silent}"}}"#)).await,
        400,
        "unreachable",
    );
    // Something that answers, but not as a node of this network.
    let mut other = serde_json::to_value(node.handle.status()).expect("json");
    other["genesis"] = json!(BlockHash([4; 32]).to_string());
    let (other_url, _, stop) = fake_peer(other).await;
    assert_refused(
        &announce(format!(r#"{{"url": "{other_url}"}}"#)).await,
        400,
        "wrong_network",
    );
    assert!(node.handle.known_peers().is_empty());
    let (_, peers) = node.call(warp::test::request().path("/peers")).await;
    assert_eq!(peers, json!([]));
    assert_eq!(node.snapshot(&everyone()), before);
    let _ = stop.send(());
    node.stop().await;
}

#[tokio::test]
async fn many_idle_connections_are_bounded_and_others_still_served() {
    use clap::Parser;
    use crapcoin_node::cli::Args;
    use tokio::io::AsyncReadExt;

    let args = Args::try_parse_from([
        "crapcoin-node",
        "--on-demand",
        "--difficulty",
        "4",
        "--max-connections",
        "8",
        "--idle-timeout-ms",
        "60000",
    ])
    .expect("args");
    let running = crapcoin_node::run::start(args.node_config())
        .await
        .expect("starts");
    let url = running.listen_url();
    let before = running.handle().status();
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(
            tokio::net::TcpStream::connect(running.addr())
                .await
                .expect("connects"),
        );
    }
    // Others are still served, long before any idle timeout.
    let client = kit::http::client();
    let started = std::time::Instant::now();
    let status = tokio::time::timeout(
        Duration::from_secs(5),
        kit::http::get(&client, &format!("{url}/status")),
    )
    .await
    .expect("served while 64 idle connections are open");
    assert_eq!(status["height"], before.height);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The node never holds more than its bound...
    let open = running.metrics().connections_open();
    assert!(open <= 8, "{open} connections open");
    // ...because it closed the idle sockets it had to make room for.
    let mut closed = 0;
    for stream in &mut idle {
        let mut buf = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 64 - 8, "only {closed} idle connections closed");
    assert_eq!(running.handle().status(), before);
    drop(idle);
    running.shutdown().await;
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_idle_timeout() {
    use clap::Parser;
    use crapcoin_node::cli::Args;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let args = Args::try_parse_from([
        "crapcoin-node",
        "--on-demand",
        "--difficulty",
        "4",
        "--idle-timeout-ms",
        "300",
    ])
    .expect("args");
    let running = crapcoin_node::run::start(args.node_config())
        .await
        .expect("starts");
    let mut silent = tokio::net::TcpStream::connect(running.addr())
        .await
        .expect("connects");
    // A kept-alive connection after one request, then silence.
    let mut kept = tokio::net::TcpStream::connect(running.addr())
        .await
        .expect("connects");
    kept.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("writes");
    let mut buf = vec![0u8; 4096];
    let n = kept.read(&mut buf).await.expect("reads");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    for stream in [&mut silent, &mut kept] {
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "an idle connection stayed open");
    }
    assert!(
        eventually(Duration::from_secs(2), || async {
            running.metrics().connections_open() == 0
        })
        .await
    );
    running.shutdown().await;
}
