//! End to end: a node that acknowledged transfers it could not mine yet is
//! killed with SIGKILL, and still has them when it starts again on its
//! data: in its mempool, in `GET /transfers/acknowledged`, and then on its
//! chain. Real `crapcoin-node` processes on 127.0.0.1; every process is
//! killed by PID when its guard drops; every wait is bounded.

use std::time::Duration;

use crapcoin_core::Params;
use kit::http::{admin, client, get, json_body, metric};
use kit::process::NodeProc;
use kit::time::eventually;
use serde_json::{Value, json};

/// The payer's deterministic wallet.
const PAYER: u64 = 41;
/// The payee's.
const PAYEE: u64 = 42;
/// Transfers acknowledged while the node cannot mine.
const PENDING: u64 = 3;

/// A node that mines nothing: a hash share of 0 on a proof-of-work
/// schedule.
fn no_mining() -> Vec<String> {
    ["--hash-share", "0", "--block-interval", "3600"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

/// Every transfer `url` lists as acknowledged, read `limit` at a time
/// through the `next` cursor (bounded: 100 pages).
async fn acknowledged(client: &reqwest::Client, url: &str, limit: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    for _ in 0..100 {
        let page = get(
            client,
            &format!("{url}/transfers/acknowledged?after={after}&limit={limit}"),
        )
        .await;
        out.extend(page["transfers"].as_array().cloned().unwrap_or_default());
        match page["next"].as_u64() {
            Some(next) => after = next,
            None => return out,
        }
    }
    panic!("more than 100 pages");
}

fn ids(transfers: &[Value]) -> Vec<String> {
    transfers
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transfers_survive_sigkill_and_are_mined_after_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let client = client();
    let chain_id = Params::with_difficulty(4).chain_id();
    let payer = kit::chain::wallet(PAYER);
    let payee = kit::chain::addr(PAYEE);

    // The node earns coins and pays the payer (mined at once, on demand).
    let node = NodeProc::start(dir.path(), &[]);
    let (code, answer) = admin(&client, &format!("{}/mine", node.url), json!({"count": 3})).await;
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = admin(
        &client,
        &format!("{}/transfer", node.url),
        json!({"to": payer.address(), "amount": 100}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    let height = answer["height"].as_u64().expect("a height");
    node.kill();

    // Started again on its data, mining nothing: it acknowledges transfers
    // it cannot mine.
    let node = NodeProc::start_scheduled(dir.path(), &no_mining());
    let mut submitted = Vec::new();
    for nonce in 0..PENDING {
        let tx = payer.transfer(&chain_id, payee, 5, 1, nonce);
        let response = client
            .post(format!("{}/transactions", node.url))
            .header("content-type", "application/json")
            .body(serde_json::to_string(&tx).expect("json"))
            .send()
            .await
            .expect("answers");
        let (code, answer) = json_body(response).await;
        assert_eq!(code, 200, "{answer}");
        assert_eq!(answer["txid"], json!(tx.id()));
        submitted.push(tx.id().to_string());
    }
    assert_eq!(
        metric(&client, &node.url, "crapcoin_mempool ").await,
        PENDING
    );
    let before = acknowledged(&client, &node.url, 1000).await;
    assert_eq!(before.len() as u64, PENDING + 1, "{before:?}");
    assert_eq!(ids(&before)[1..], submitted[..]);
    assert_eq!(before[1]["from"], json!(payer.address()));
    assert_eq!(before[1]["to"], json!(payee));
    assert_eq!(before[1]["amount"], json!(5));
    assert_eq!(before[1]["nonce"], json!(0));
    assert!(before[1]["acknowledged_ms"].as_u64().unwrap_or(0) > 0);
    assert_eq!(
        before[0]["pending"],
        json!(false),
        "the first one was mined"
    );
    assert_eq!(before[1]["pending"], json!(true), "the others wait");

    // SIGKILL, and the same node again on its data: it still holds every
    // transfer it acknowledged, in its record and in its mempool.
    node.kill();
    let node = NodeProc::start_scheduled(dir.path(), &no_mining());
    let status = get(&client, &format!("{}/status", node.url)).await;
    assert_eq!(status["height"], json!(height), "nothing was mined");
    let after = acknowledged(&client, &node.url, 2).await;
    assert_eq!(
        after, before,
        "the record survived, read two at a time, still pending"
    );
    assert_eq!(
        metric(&client, &node.url, "crapcoin_mempool ").await,
        PENDING,
        "the transfers not on the chain are back in the mempool"
    );

    // Bad queries are refused with a reason, and the node keeps serving.
    for (query, reason) in [
        ("limit=0", "bad_limit"),
        ("limit=1001", "bad_limit"),
        ("after=-1", "bad_query"),
        ("after=x", "bad_query"),
        ("cursor=3", "bad_query"),
    ] {
        let response = client
            .get(format!("{}/transfers/acknowledged?{query}", node.url))
            .send()
            .await
            .expect("answers");
        let (code, answer) = json_body(response).await;
        assert_eq!(
            (code, answer["reason"].as_str()),
            (400, Some(reason)),
            "{query}"
        );
    }

    // Killed once more and started mining on demand, it mines them.
    node.kill();
    let node = NodeProc::start(dir.path(), &[]);
    let balance_url = format!("{}/balance/{payee}", node.url);
    let mined = eventually(Duration::from_secs(30), || {
        let client = client.clone();
        let url = balance_url.clone();
        async move { get(&client, &url).await["balance"].as_u64() == Some(5 * PENDING) }
    })
    .await;
    assert!(mined, "the restored transfers were mined");
    let status = get(&client, &format!("{}/status", node.url)).await;
    assert_eq!(status["height"], json!(height + PENDING));
    node.kill();
}
