//! Sauron's dashboard in a real browser: a `sauron` process, three
//! `crapcoin-node` processes that use it as their tracker (and report to
//! it), and a headless Chromium driven over WebDriver. The page must show
//! what the nodes themselves say (`GET /status`), follow them live as
//! blocks are mined, and call the network in consensus. It draws the
//! stale rate and the propagation delay over time and the miners' shares;
//! its block tree follows the honest nodes' tips whatever another node
//! reports; the Boss's toasts never cover the header; the faults the Boss
//! reports make a timeline, and a partition's groups are coloured apart in
//! the node table. A screenshot of
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

/// The forks panel, the tree's window, and where the toasts and the
/// header's figures are.
const FORKS: &str = r#"
const rect = (e) => { const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, w: r.width, h: r.height}; };
const chart = (id) => { const svg = document.querySelector('#' + id + ' svg'); return svg ? Number(svg.getAttribute('data-points')) : 0; };
return {
  stale_points: chart('stale-chart'),
  delay_points: chart('delay-chart'),
  delay_lines: document.querySelectorAll('#delay-chart path').length,
  stale_text: document.getElementById('forks-stale').textContent.trim(),
  header_stale: document.getElementById('stale-rate').textContent.trim(),
  miners: [...document.querySelectorAll('#miners .miner')].map((m) => m.getAttribute('data-node')),
  window: document.getElementById('tree').getAttribute('data-window'),
  best_height: document.getElementById('best-height').textContent.trim(),
  heights: [...document.querySelectorAll('#tree g.blk')].map((g) => Number(g.getAttribute('data-height'))),
  hashes: [...document.querySelectorAll('#tree g.blk')].map((g) => g.getAttribute('data-hash')),
  badges: [...document.querySelectorAll('#tree g.badge[data-node]')].map((g) => g.getAttribute('data-node')),
  behind: [...document.querySelectorAll('#tree .behind')].map((p) => p.textContent).join(' | '),
  prop_heights: [...document.querySelectorAll('#prop-blocks .prop-row')].map((r) => Number(r.getAttribute('data-height'))),
  toasts: [...document.querySelectorAll('#toasts .toast')].map(rect),
  figures: [...document.querySelectorAll('header.top, #verdict, .verdict-stats dd')].map(rect),
};
"#;

/// Whether two rectangles (as [`FORKS`] reads them) overlap.
fn overlap(a: &Value, b: &Value) -> bool {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    f(a, "left") < f(b, "right")
        && f(b, "left") < f(a, "right")
        && f(a, "top") < f(b, "bottom")
        && f(b, "top") < f(a, "bottom")
}

/// A batch from `node` of `block_mined` events, one per `(hash, parent,
/// height)`, as an AllSeeingEye sends it.
fn mined_batch(node: &str, blocks: &[(String, String, u64)]) -> String {
    let reports: Vec<Value> = blocks
        .iter()
        .map(|(hash, parent, height)| {
            json!({"type": "event", "at_ms": now_ms(), "event": {"kind": "block_mined",
                   "hash": hash, "parent": parent, "height": height, "tx": null}})
        })
        .collect();
    json!({"node": node, "url": "http://127.0.0.1:9", "reports": reports}).to_string()
}

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

/// The fault timeline and what the node table marks: an element per
/// fault, each row's partition group and colour, its fault tags.
const FAULTS: &str = r#"
const rows = {};
for (const r of document.querySelectorAll('#node-rows tr[data-node]')) {
  rows[r.getAttribute('data-node')] = {
    group: r.getAttribute('data-group'),
    colour: r.style.getPropertyValue('--group').trim(),
    marks: [...r.querySelectorAll('.fault-tag')].map((t) => t.getAttribute('data-mark')),
  };
}
return {
  faults: [...document.querySelectorAll('#faults .fault')].map((f) => ({
    id: f.getAttribute('data-id'), kind: f.getAttribute('data-kind'), active: f.getAttribute('data-active'),
  })),
  rows,
  injected: document.querySelectorAll('#faults img').length,
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

    // 2b. The forks panel: the stale rate and the delays drawn over time,
    // the miners' shares listed (n0 mined every block).
    wait_for("the forks charts and the miners' shares", || {
        let browser = &browser;
        async move {
            let page = browser.script(FORKS).await;
            let drawn = page["stale_points"].as_u64().unwrap_or(0) >= 1
                && page["delay_points"].as_u64().unwrap_or(0) >= 1
                && page["delay_lines"].as_u64().unwrap_or(0) >= 1
                && page["stale_text"]
                    .as_str()
                    .is_some_and(|t| t.ends_with('%'))
                && page["header_stale"] == page["stale_text"]
                && page["miners"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|n| n == "n0"));
            if drawn { Ok(()) } else { Err(page.to_string()) }
        }
    })
    .await;

    // 2c. Another node reports a branch at old heights and a made-up
    // chain far ahead (the newest and the highest reports): the tree and
    // the propagation list still follow the honest tips.
    let honest_height = after.iter().map(|t| t.1).max().expect("three nodes");
    let honest_tip = after[0].2.clone();
    let fake = |tag: u64, i: u64| format!("{tag:02x}{i:062x}");
    let mut reports = Vec::new();
    for i in 400..=410 {
        reports.push((fake(0xfa, i), fake(0xfa, i - 1), i));
    }
    let old_from = honest_height.saturating_sub(3).max(1);
    for i in old_from..=honest_height {
        reports.push((fake(0x01, i), fake(0x01, i - 1), i));
    }
    let response = client
        .post(format!("{}/api/events", sauron.url))
        .header("content-type", "application/json")
        .body(mined_batch("liar", &reports))
        .send()
        .await
        .expect("sauron answers");
    assert!(response.status().is_success(), "{}", response.status());
    wait_for("the tree to keep the honest window", || {
        let (browser, honest_tip) = (&browser, &honest_tip);
        async move {
            let page = browser.script(FORKS).await;
            let heights: Vec<u64> = page["heights"]
                .as_array()
                .map(|h| h.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let in_window = |h: &u64| *h + 64 > honest_height && *h <= honest_height + 3;
            // The liar's old branch is in the window: it must be drawn.
            let liar_drawn = page["hashes"]
                .as_array()
                .is_some_and(|h| h.iter().any(|h| h == fake(0x01, honest_height).as_str()));
            let ok = liar_drawn
                && page["best_height"] == honest_height.to_string().as_str()
                && !heights.is_empty()
                && heights.iter().all(in_window)
                && page["hashes"]
                    .as_array()
                    .is_some_and(|h| h.iter().any(|h| h == honest_tip.as_str()))
                && ["n0", "n1", "n2"].iter().all(|n| {
                    page["badges"]
                        .as_array()
                        .is_some_and(|b| b.iter().any(|b| b == n))
                })
                && !page["behind"].as_str().unwrap_or("").contains("n0")
                && page["prop_heights"]
                    .as_array()
                    .is_some_and(|p| p.iter().filter_map(Value::as_u64).all(|h| in_window(&h)));
            if ok { Ok(()) } else { Err(page.to_string()) }
        }
    })
    .await;

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
    // The Boss's toasts (one per firing above) never cover the header.
    wait_for("toasts clear of the header's figures", || {
        let browser = &browser;
        async move {
            let page = browser.script(FORKS).await;
            let toasts = page["toasts"].as_array().cloned().unwrap_or_default();
            let figures = page["figures"].as_array().cloned().unwrap_or_default();
            assert!(figures.len() >= 3, "header figures: {page}");
            for t in &toasts {
                for f in &figures {
                    assert!(!overlap(t, f), "a toast {t} covers the header {f}");
                }
            }
            if toasts.is_empty() {
                Err(format!("no toast shown: {page}"))
            } else {
                Ok(())
            }
        }
    })
    .await;
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

    // 6. Faults the Boss reports: one element each in the timeline, the
    // partition's groups coloured apart in the node table, the skewed
    // node marked; a fault that ended stays listed, not in effect.
    let now = now_ms();
    let records = [
        json!({"id": 1, "fault": {"kind": "partition", "groups": [["n0"], ["n1", "n2"]]},
               "start_ms": now - 1_000, "end_ms": now + 600_000}),
        json!({"id": 2, "fault": {"kind": "clock_skew", "node": "n2", "skew_ms": 90_000},
               "start_ms": now - 500, "end_ms": null}),
        json!({"id": 3, "fault": {"kind": "rollback", "node": hostile},
               "start_ms": now - 5_000, "end_ms": now - 4_000}),
    ];
    for record in &records {
        let response = client
            .post(format!("{}/api/faults", sauron.url))
            .header("content-type", "application/json")
            .body(record.to_string())
            .send()
            .await
            .expect("sauron answers");
        assert!(
            response.status().is_success(),
            "POST /api/faults: {}",
            response.status()
        );
    }
    let api = get(&client, &format!("{}/api/faults", sauron.url)).await;
    assert_eq!(api["records"].as_array().map(Vec::len), Some(3), "{api}");
    assert_eq!(
        api["active"]["partition"],
        json!([["n0"], ["n1", "n2"]]),
        "{api}"
    );
    wait_for("the fault timeline and the partition's colours", || {
        let browser = &browser;
        async move {
            let page = browser.script(FAULTS).await;
            assert_eq!(page["injected"], 0, "a hostile name ran: {page}");
            let faults = page["faults"].as_array().cloned().unwrap_or_default();
            let active = |id: &str| {
                faults
                    .iter()
                    .find(|f| f["id"] == id)
                    .map(|f| f["active"].clone())
            };
            let row = |n: &str| page["rows"][n].clone();
            let ok = faults.len() == 3
                && active("1") == Some(json!("1"))
                && active("2") == Some(json!("1"))
                && active("3") == Some(json!("0"))
                && row("n0")["group"] == "0"
                && row("n1")["group"] == "1"
                && row("n2")["group"] == "1"
                && row("n0")["colour"] != row("n1")["colour"]
                && row("n1")["colour"] == row("n2")["colour"]
                && row("n0")["colour"].as_str().is_some_and(|c| !c.is_empty())
                && row("n2")["marks"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m == "skewed"));
            if ok { Ok(()) } else { Err(page.to_string()) }
        }
    })
    .await;
    // A bad report is refused and changes nothing.
    let response = client
        .post(format!("{}/api/faults", sauron.url))
        .header("content-type", "application/json")
        .body(
            json!({"id": 4, "fault": {"kind": "loss", "node": "n1", "rate": 7.0},
                     "start_ms": now, "end_ms": null})
            .to_string(),
        )
        .send()
        .await
        .expect("sauron answers");
    assert_eq!(response.status().as_u16(), 400);
    let api = get(&client, &format!("{}/api/faults", sauron.url)).await;
    assert_eq!(api["records"].as_array().map(Vec::len), Some(3), "{api}");

    browser.close().await;
    drop(procs);
    drop(sauron);
}
