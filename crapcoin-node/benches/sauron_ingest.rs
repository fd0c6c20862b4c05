//! Sauron's ingest throughput and the cost of reporting to it, as a
//! scripted benchmark (one median line per measurement):
//!
//!     cargo bench -p crapcoin-node --bench sauron_ingest
//!
//! 1. **Ingest**, in events (reports) per second, 100,000 request reports
//!    in eye batches of 1,000, on SQLite (a file in a temporary
//!    directory) and on PostgreSQL (`CRAPCOIN_TEST_POSTGRES`, default the
//!    `.ci/deps` server; skipped with a note when unreachable):
//!    - `raw`: the rows already built, written with `Db::insert` (multi-row
//!      inserts, one transaction per 1,000): the storage bound;
//!    - `parse+insert`: the batch JSON checked (`model::check_batch`) then
//!      inserted: Sauron's ingest minus HTTP;
//!    - `http`: the batches POSTed to a running Sauron's `/api/events`
//!      (sequentially, one connection): the whole path;
//!    - `http x4`: the same batches split among 4 clients posting at
//!      once, as several nodes report: one batch's checks overlap
//!      another's commit.
//! 2. **Reporting overhead**: p50 and p90 of a node's `GET /status`
//!    (2,000 sequential requests on one connection) with the AllSeeingEye
//!    reporting to a Sauron, and without.
//!
//! Each measurement runs 5 times; the median is printed.

#![allow(clippy::unwrap_used, missing_docs, reason = "a benchmark")]

use std::time::{Duration, Instant};

use clap::Parser;
use crapcoin_node::sauron::db::{Db, RequestRow};
use crapcoin_node::sauron::{self, Config, model};

const EVENTS: usize = 100_000;
const BATCH: usize = 1_000;
const RUNS: usize = 5;
/// Clients posting at once in the concurrent HTTP run.
const CLIENTS: usize = 4;

fn report_json(i: usize) -> serde_json::Value {
    serde_json::json!({"type": "request", "at_ms": 1_700_000_000_000u64 + i as u64,
        "method": "GET", "path": format!("/block/{:064x}", i), "route": "/block/{hash}",
        "status": 200, "latency_us": 87, "caller": "127.0.0.1:40000", "peer": null,
        "request_bytes": 0, "response_bytes": 412, "excerpt": ""})
}

fn batches() -> Vec<Vec<u8>> {
    (0..EVENTS / BATCH)
        .map(|b| {
            let reports: Vec<_> = (0..BATCH).map(|i| report_json(b * BATCH + i)).collect();
            serde_json::to_vec(
                &serde_json::json!({"node": "bench", "url": "http://127.0.0.1:9",
                "reports": reports}),
            )
            .unwrap()
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

async fn ingest(db: &Db, label: &str, bodies: &[Vec<u8>], url: &str) {
    let rows: Vec<Vec<RequestRow>> = bodies
        .iter()
        .map(|b| model::check_batch(b).unwrap().requests)
        .collect();
    let mut next_id = db.max_ids().await.unwrap().0 + 1;
    let mut raw = Vec::new();
    let mut parsed = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        for batch in &rows {
            let mut batch = batch.clone();
            for row in &mut batch {
                row.id = next_id;
                next_id += 1;
            }
            db.insert(&batch, &[]).await.unwrap();
        }
        raw.push(EVENTS as f64 / started.elapsed().as_secs_f64());
        let started = Instant::now();
        for body in bodies {
            let mut batch = model::check_batch(body).unwrap().requests;
            for row in &mut batch {
                row.id = next_id;
                next_id += 1;
            }
            db.insert(&batch, &[]).await.unwrap();
        }
        parsed.push(EVENTS as f64 / started.elapsed().as_secs_f64());
    }
    // The whole path, through a running Sauron on the same database.
    let running = sauron::start(Config {
        db: Some(url.to_owned()),
        ..Config::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let endpoint = format!("{}/api/events", running.listen_url());
    let mut http = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        for body in bodies {
            let response = client
                .post(&endpoint)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
        }
        http.push(EVENTS as f64 / started.elapsed().as_secs_f64());
    }
    // As a network reports: CLIENTS nodes posting their batches at once.
    let mut concurrent = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let posts = bodies.chunks(bodies.len().div_ceil(CLIENTS)).map(|share| {
            let (client, endpoint) = (client.clone(), endpoint.clone());
            async move {
                for body in share {
                    let response = client
                        .post(&endpoint)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    assert!(response.status().is_success());
                }
            }
        });
        futures_util::future::join_all(posts).await;
        concurrent.push(EVENTS as f64 / started.elapsed().as_secs_f64());
    }
    running.shutdown().await;
    let concurrent = median(concurrent);
    let (raw, parsed, http) = (median(raw), median(parsed), median(http));
    println!("ingest/{label}/raw            {raw:>10.0} events/s");
    println!(
        "ingest/{label}/parse+insert   {parsed:>10.0} events/s  ({:.0}% of raw)",
        100.0 * parsed / raw
    );
    println!(
        "ingest/{label}/http           {http:>10.0} events/s  ({:.0}% of raw)",
        100.0 * http / raw
    );
    println!(
        "ingest/{label}/http x{CLIENTS}        {concurrent:>10.0} events/s  ({:.0}% of raw)",
        100.0 * concurrent / raw
    );
}

async fn status_latency(sauron: Option<&str>) -> (Duration, Duration) {
    // On demand: a node mining on its schedule would add its own work to
    // the latency measured.
    let mut args = vec!["crapcoin-node", "--on-demand", "--difficulty", "4"];
    if let Some(url) = sauron {
        args.extend(["--sauron", url]);
    }
    let node = crapcoin_node::run::start(crapcoin_node::cli::Args::parse_from(args).node_config())
        .await
        .unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/status", node.listen_url());
    for _ in 0..200 {
        client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let mut p50 = Vec::new();
    let mut p90 = Vec::new();
    for _ in 0..RUNS {
        let mut times = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let started = Instant::now();
            client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        p50.push(times[times.len() / 2].as_secs_f64());
        p90.push(times[times.len() * 9 / 10].as_secs_f64());
    }
    node.shutdown().await;
    (
        Duration::from_secs_f64(median(p50)),
        Duration::from_secs_f64(median(p90)),
    )
}

/// Empties the request and event tables (retention keeping nothing).
async fn empty(db: &Db) {
    let nothing = sauron::db::Retention {
        requests: 0,
        events: 0,
        max_age: None,
    };
    let _ = db.retain(&nothing, 0).await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bodies = batches();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sauron.db").display());
        let db = Db::open(&url).await.unwrap();
        ingest(&db, "sqlite", &bodies, &url).await;
        db.close().await;

        let base = std::env::var("CRAPCOIN_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://crapcoin@127.0.0.1:55432/postgres".to_owned());
        match Db::open(&base).await {
            Ok(pg) => {
                // A fresh schema each run: empty the tables.
                empty(&pg).await;
                ingest(&pg, "postgres", &bodies, &base).await;
                empty(&pg).await;
                pg.close().await;
            }
            Err(e) => println!("ingest/postgres skipped: {e} (run .ci/deps)"),
        }

        let (off50, off90) = status_latency(None).await;
        let running = sauron::start(Config::default()).await.unwrap();
        let (on50, on90) = status_latency(Some(&running.listen_url())).await;
        running.shutdown().await;
        println!("status/reporting-off  p50 {off50:>10.1?}  p90 {off90:>10.1?}");
        println!(
            "status/reporting-on   p50 {on50:>10.1?}  p90 {on90:>10.1?}  (p50 {:+.1}%)",
            100.0 * (on50.as_secs_f64() / off50.as_secs_f64() - 1.0)
        );
    });
}
