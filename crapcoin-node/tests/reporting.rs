//! The AllSeeingEye and `/metrics`, against a small Sauron stand-in served
//! by the test itself: every request and event is reported; a slow or
//! absent Sauron never slows the node, and what it could not take is
//! counted as dropped.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use crapcoin_node::cli::Args;
use kit::http::{client, metrics_text};
use kit::time::eventually;
use serde_json::{Value, json};
use support::TOKEN;
use warp::Filter;

/// What the stand-in received.
#[derive(Default)]
struct Received {
    batches: Vec<Value>,
    registrations: Vec<Value>,
}

/// Serves `POST /api/events`, `POST /api/peers` and `GET /api/peers` on
/// 127.0.0.1; each events answer waits `delay` first.
async fn sauron(
    delay: Duration,
) -> (
    String,
    Arc<Mutex<Received>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let received = Arc::new(Mutex::new(Received::default()));
    let events = {
        let received = received.clone();
        warp::path!("api" / "events")
            .and(warp::post())
            .and(warp::body::json())
            .then(move |batch: Value| {
                let received = received.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    received.lock().expect("lock").batches.push(batch);
                    warp::reply::json(&json!({"stored": true}))
                }
            })
    };
    let register = {
        let received = received.clone();
        warp::path!("api" / "peers")
            .and(warp::post())
            .and(warp::body::json())
            .map(move |node: Value| {
                received.lock().expect("lock").registrations.push(node);
                warp::reply::json(&json!({"ok": true}))
            })
    };
    let sample = warp::path!("api" / "peers")
        .and(warp::get())
        .map(|| warp::reply::json(&json!([])));
    let (listener, url) = kit::http::loopback().await;
    let stop = kit::http::serve(listener, events.or(register).or(sample));
    (url, received, stop)
}

async fn start(extra: &[&str]) -> crapcoin_node::run::Running {
    let mut args = vec![
        "crapcoin-node",
        "--on-demand",
        "--difficulty",
        "4",
        "--name",
        "watched",
    ];
    args.extend_from_slice(extra);
    let mut config = Args::try_parse_from(args).expect("args").node_config();
    config.admin_token = Some(TOKEN.to_owned());
    crapcoin_node::run::start(config).await.expect("starts")
}

fn reports(received: &Mutex<Received>) -> Vec<Value> {
    received
        .lock()
        .expect("lock")
        .batches
        .iter()
        .flat_map(|b| b["reports"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn every_request_and_event_reaches_sauron() {
    let (sauron_url, received, stop) = sauron(Duration::ZERO).await;
    let node = start(&["--tracker", &sauron_url]).await;
    let url = node.listen_url();
    let client = client();
    client
        .get(format!("{url}/status"))
        .send()
        .await
        .expect("answers");
    client
        .get(format!("{url}/nowhere"))
        .send()
        .await
        .expect("answers");
    client
        .post(format!("{url}/block"))
        .header("x-crapcoin-peer", "http://127.0.0.1:1")
        .body("definitely not a block")
        .send()
        .await
        .expect("answers");
    let mined = client
        .post(format!("{url}/mine"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(mined.status(), 200);

    let wanted = |r: &Value, path: &str, status: u64| {
        r["type"] == "request" && r["path"] == path && r["status"] == status
    };
    let all_there = eventually(Duration::from_secs(10), || async {
        let reports = reports(&received);
        reports.iter().any(|r| wanted(r, "/status", 200))
            && reports.iter().any(|r| wanted(r, "/nowhere", 404))
            && reports.iter().any(|r| wanted(r, "/block", 400))
            && reports.iter().any(|r| wanted(r, "/mine", 200))
            && reports
                .iter()
                .any(|r| r["type"] == "event" && r["event"]["kind"] == "block_mined")
            && reports
                .iter()
                .any(|r| r["type"] == "event" && r["event"]["kind"] == "block_accepted")
    })
    .await;
    let reports = reports(&received);
    assert!(all_there, "missing reports in {reports:#?}");
    let garbage = reports
        .iter()
        .find(|r| wanted(r, "/block", 400))
        .expect("found above");
    assert_eq!(garbage["method"], "POST");
    assert_eq!(garbage["route"], "/block");
    assert_eq!(garbage["excerpt"], "definitely not a block");
    assert_eq!(garbage["request_bytes"], 22);
    assert_eq!(garbage["peer"], "http://127.0.0.1:1");
    assert!(
        garbage["caller"]
            .as_str()
            .expect("caller")
            .starts_with("127.0.0.1:")
    );
    assert!(garbage["latency_us"].is_u64());
    assert!(garbage["response_bytes"].as_u64().expect("size") > 0);
    {
        let received = received.lock().expect("lock");
        assert_eq!(received.batches[0]["node"], "watched");
        assert_eq!(received.batches[0]["url"], url);
        assert!(
            received.registrations.iter().any(|r| r["url"] == url),
            "registered with the tracker"
        );
    }
    let answer = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics answer");
    assert_eq!(
        answer.headers().get("content-type").map(|v| v.as_bytes()),
        Some(crapcoin_node::http::handlers::METRICS_CONTENT_TYPE.as_bytes()),
        "the body is OpenMetrics text and says so"
    );
    let metrics = metrics_text(&client, &url).await;
    assert!(
        metrics
            .contains("crapcoin_requests_total{route=\"/status\",method=\"GET\",status=\"200\"} 1")
    );
    assert!(
        metrics
            .contains("crapcoin_requests_total{route=\"other\",method=\"GET\",status=\"404\"} 1")
    );
    assert!(metrics.contains("crapcoin_blocks_rejected_total{reason=\"malformed\"} 1"));
    assert!(metrics.contains("crapcoin_height 1"));
    assert!(metrics.contains("crapcoin_reports_dropped_total 0"));
    node.shutdown().await;
    let _ = stop.send(());
}

async fn hammer(url: &str, n: usize) -> Duration {
    let client = client();
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let started = Instant::now();
        let response = client
            .get(format!("{url}/status"))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), 200);
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

fn dropped(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("crapcoin_reports_dropped_total "))
        .and_then(|v| v.parse().ok())
        .expect("dropped counter")
}

#[tokio::test]
async fn a_slow_or_absent_sauron_never_slows_the_node() {
    let (slow_url, _received, stop) = sauron(Duration::from_secs(30)).await;
    let absent: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("addr")
    };
    let absent_url = format!("http://{absent}");
    for sauron in [slow_url.as_str(), absent_url.as_str()] {
        let node = start(&[
            "--sauron",
            sauron,
            "--report-queue",
            "8",
            "--report-batch",
            "4",
        ])
        .await;
        let url = node.listen_url();
        let slowest = hammer(&url, 300).await;
        assert!(
            slowest < Duration::from_millis(500),
            "a request took {slowest:?} with sauron at {sauron}"
        );
        let text = metrics_text(&client(), &url).await;
        assert!(
            dropped(&text) > 0,
            "no drop counted with sauron at {sauron}"
        );
        let started = Instant::now();
        node.shutdown().await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shutdown waited for sauron"
        );
    }
    let _ = stop.send(());
}
