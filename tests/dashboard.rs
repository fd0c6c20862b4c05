//! Sauron's dashboard in a real browser: a `sauron` process, three
//! `crapcoin-node` processes that use it as their tracker (and report to
//! it), and a headless Chromium driven over WebDriver. The page must show
//! what the nodes themselves say (`GET /status`), follow them live as
//! blocks are mined, and call the network in consensus. A screenshot of
//! the page goes to `target/test-artifacts/dashboard.png` (the README uses
//! it).
//!
//! Needs Chromium and ChromeDriver: run `.ci/deps`. Every process is killed
//! by PID when its guard drops; every wait is bounded.

#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kit::http::{admin, client, get};
use kit::process::{NodeProc, SauronProc};
use kit::time::now_ms;
use serde_json::{Value, json};
use webdriver::Browser;

/// How long any one condition may take to show up.
const WAIT: Duration = Duration::from_secs(30);

/// Where screenshots go: `$CARGO_TARGET_DIR/test-artifacts`, else the
/// `target` directory this test executable was built in.
fn artifacts_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(kit::process::target_dir)
        .join("test-artifacts")
}

/// What the page shows, read from the DOM through its stable hooks.
const SNAPSHOT: &str = r#"
const rows = [...document.querySelectorAll('#node-rows tr[data-node]')].map((r) => ({
  name: r.getAttribute('data-node'),
  height: r.querySelector('td.height').textContent.trim(),
  tip: r.querySelector('td.tip').getAttribute('data-tip'),
  tip_text: r.querySelector('td.tip').textContent.trim(),
  alive: r.querySelector('td.alive').textContent.trim(),
}));
const v = document.getElementById('verdict');
return {
  rows,
  verdict: v.getAttribute('data-verdict'),
  verdict_text: v.textContent.replace(/\s+/g, ' ').trim(),
  common_height: document.getElementById('common-height').textContent.trim(),
  blocks: [...document.querySelectorAll('#tree g.blk')].map((g) => g.getAttribute('data-hash')),
  stream_nodes: [...document.querySelectorAll('#stream .node-tag')].map((t) => t.textContent),
  histogram: !!document.querySelector('#histogram svg rect'),
};
"#;

/// The Boss panel and n2's liveness cell, and whether anything injected ran.
const BOSS: &str = r#"
const row = document.querySelector('#node-rows tr[data-node="n2"] td.alive');
return {
  n2: row ? row.textContent.trim() : null,
  boss: document.getElementById('boss').textContent,
  xss: window.__xss !== undefined,
  injected: document.querySelectorAll('#boss img, #stream img, #node-rows img, #toasts img').length,
};
"#;

/// Each node's own `GET /status`: name -> (height, tip).
async fn statuses(
    client: &reqwest::Client,
    nodes: &[(&str, &NodeProc)],
) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    for (name, node) in nodes {
        let s = get(client, &format!("{}/status", node.url)).await;
        out.push((
            (*name).to_owned(),
            s["height"].as_u64().expect("status height"),
            s["tip"].as_str().expect("status tip").to_owned(),
        ));
    }
    out
}

/// Whether the page's row for each node shows exactly the node's own
/// height and tip, as alive.
fn page_matches(page: &Value, truth: &[(String, u64, String)]) -> bool {
    let rows = page["rows"].as_array().cloned().unwrap_or_default();
    truth.iter().all(|(name, height, tip)| {
        rows.iter().any(|r| {
            r["name"] == name.as_str()
                && r["height"].as_str().and_then(|h| h.parse::<u64>().ok()) == Some(*height)
                && r["tip"] == tip.as_str()
                && tip.starts_with(
                    r["tip_text"]
                        .as_str()
                        .unwrap_or("?")
                        .trim_end_matches("fork"),
                )
                && r["alive"] == "alive"
        })
    })
}

/// Polls `check` until it answers `Some` or [`WAIT`] passes; `what` and
/// the last state explain a timeout.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}; last seen: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_nodes_heights_and_consensus_live() {
    webdriver::require_chromium();
    let client = client();
    let sauron_dir = tempfile::tempdir().expect("dir");
    let sauron = SauronProc::start(sauron_dir.path(), &[]);

    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let names = ["n0", "n1", "n2"];
    let procs: Vec<NodeProc> = dirs
        .iter()
        .zip(names)
        .map(|(dir, name)| {
            NodeProc::start(
                dir.path(),
                &[
                    "--name".into(),
                    name.into(),
                    "--tracker".into(),
                    sauron.url.clone(),
                ],
            )
        })
        .collect();
    let nodes: Vec<(&str, &NodeProc)> = names.iter().copied().zip(procs.iter()).collect();

    let browser = Browser::start(1400, 900).await;
    browser.goto(&format!("{}/", sauron.url)).await;
    let title = browser.script("return document.title;").await;
    assert!(
        title.as_str().unwrap_or("").contains("Sauron"),
        "not the dashboard: {title}"
    );

    // 1. Three rows, each with the height and tip the node itself reports.
    let before = wait_for("three node rows matching each node's GET /status", || {
        let (client, nodes, browser) = (&client, &nodes, &browser);
        async move {
            let truth = statuses(client, nodes).await;
            let page = browser.script(SNAPSHOT).await;
            if page_matches(&page, &truth) {
                Ok(truth)
            } else {
                Err(format!("page {page} vs nodes {truth:?}"))
            }
        }
    })
    .await;
    let start_height = before.iter().map(|t| t.1).max().expect("three nodes");

    // 2. Mine on n0: the page follows every node up, and calls consensus.
    let (code, mined) = admin(
        &client,
        &format!("{}/mine", procs[0].url),
        json!({"count": 4}),
    )
    .await;
    assert_eq!(code, 200, "mine: {mined}");
    let target = start_height + 4;
    let after = wait_for(
        "the page to show all nodes at the new tip, in consensus",
        || {
            let (client, nodes, browser, sauron) = (&client, &nodes, &browser, &sauron);
            async move {
                let truth = statuses(client, nodes).await;
                let converged = truth.iter().all(|t| t.1 >= target && t.2 == truth[0].2);
                let page = browser.script(SNAPSHOT).await;
                let consensus = get(client, &format!("{}/api/consensus", sauron.url)).await;
                let shown = page_matches(&page, &truth)
                    && page["verdict"] == "consensus"
                    && page["verdict_text"]
                        .as_str()
                        .is_some_and(|t| t.to_lowercase().contains("consensus"))
                    && consensus["verdict"] == "consensus"
                    && page["common_height"] == consensus["common_height"].to_string().as_str()
                    && page["blocks"]
                        .as_array()
                        .is_some_and(|b| b.iter().any(|h| h == truth[0].2.as_str()));
                if converged && shown {
                    Ok(truth)
                } else {
                    Err(format!(
                        "nodes {truth:?}, sauron consensus {consensus}, page {page}"
                    ))
                }
            }
        },
    )
    .await;
    assert!(
        after.iter().all(|t| t.1 > start_height),
        "heights did not increase: {before:?} -> {after:?}"
    );

    // 3. The live stream carries the nodes' own reports.
    wait_for("stream rows reported by the nodes", || {
        let browser = &browser;
        async move {
            let page = browser.script(SNAPSHOT).await;
            let seen = page["stream_nodes"].as_array().cloned().unwrap_or_default();
            if seen.iter().any(|n| names.iter().any(|name| n == name)) {
                Ok(())
            } else {
                Err(format!("stream nodes {seen:?}"))
            }
        }
    })
    .await;

    // 4. Screenshot for the README, once the slower panels filled in.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && browser.script(SNAPSHOT).await["histogram"] != true {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let path = dir.join("dashboard.png");
    std::fs::write(&path, &png).expect("writes the screenshot");
    println!("dashboard screenshot: {}", path.display());

    // 5. Boss firings show up live, and names are shown, never run: a
    // hostile name must come out as text.
    let hostile = r#"<img src=x onerror="window.__xss=1">"#;
    for (node, url) in [("n2", json!(procs[2].url)), (hostile, Value::Null)] {
        let response = client
            .post(format!("{}/api/boss", sauron.url))
            .header("content-type", "application/json")
            .body(
                json!({"action": "fired", "node": node, "url": url, "at_ms": now_ms()}).to_string(),
            )
            .send()
            .await
            .expect("sauron answers");
        assert!(
            response.status().is_success(),
            "POST /api/boss: {}",
            response.status()
        );
    }
    wait_for("the firings in the node table and the Boss list", || {
        let browser = &browser;
        async move {
            let page = browser.script(BOSS).await;
            let fired = page["n2"] == "fired";
            let listed = page["boss"]
                .as_str()
                .is_some_and(|t| t.contains("n2") && t.contains(&hostile[..20]));
            assert!(
                page["xss"] == false && page["injected"] == 0,
                "hostile name ran: {page}"
            );
            if fired && listed {
                Ok(())
            } else {
                Err(page.to_string())
            }
        }
    })
    .await;

    browser.close().await;
    drop(procs);
    drop(sauron);
}
