//! `sauron --replay FILE.jsonl`: Sauron plays back a simulation's event
//! log. The log here is written by the test in the simulation log format
//! (docs/sauron.md, "Replaying a simulation"), its events being real
//! `crapcoin_core::Event` values serialised as the runner serialises them:
//! a scripted three-node run (two honest nodes, one selfish) with a
//! partition, a fork, a crash and restart, a reorg on heal and a pause.
//! It is not an in-memory network's output: the test knows exactly what
//! each node's height is at each virtual time.
//!
//! The API is read at several positions, forward and back; bad logs are
//! refused before serving with their line (exit status 2); a live Sauron
//! refuses `at_ms`; and a headless Chromium (tests/dashboard.rs) loads the
//! page in replay mode, moves the scrubber and plays, and sees the node
//! heights change (its screenshot at 4.5 s goes to
//! `target/test-artifacts/replay.png`; docs/replay.png is one). Every process is killed by PID by its guard; every
//! wait is bounded.

#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crapcoin_core::{BlockHash, Event};
use kit::http::{client, get, json_body};
use kit::process::{SauronProc, bin, run_bounded};
use serde_json::{Value, json};
use webdriver::Browser;

/// How long any one condition may take to show up in the browser.
const WAIT: Duration = Duration::from_secs(30);

/// A block hash made of one repeated byte.
fn h(b: u8) -> BlockHash {
    BlockHash([b; 32])
}

const GENESIS: u8 = 0x00;
const X1: u8 = 0x11;
const X2: u8 = 0x12;
const X3: u8 = 0x13;
const X4: u8 = 0x14;
const Y3: u8 = 0x23;

fn event_line(t_ms: u64, node: &str, event: &Event) -> Value {
    json!({"t_ms": t_ms, "node": node, "event": serde_json::to_value(event).expect("serialises")})
}

fn mined(t_ms: u64, node: &str, hash: u8, parent: u8, height: u64) -> Value {
    event_line(
        t_ms,
        node,
        &Event::BlockMined {
            hash: h(hash),
            height,
            parent: h(parent),
            tx: None,
        },
    )
}

fn accepted(t_ms: u64, node: &str, hash: u8, parent: u8, height: u64, best: bool) -> Value {
    event_line(
        t_ms,
        node,
        &Event::BlockAccepted {
            hash: h(hash),
            height,
            parent: h(parent),
            from: None,
            best,
        },
    )
}

fn fault(t_ms: u64, fault: Value) -> Value {
    json!({"t_ms": t_ms, "fault": fault})
}

/// The scripted run, one JSON value per line. Heights by node:
///
/// | t (ms) | a | b | s | what |
/// | --- | --- | --- | --- | --- |
/// | 1,000 | 1 | 0 | 0 | a mines x1 |
/// | 1,500 | 1 | 1 | 1 | |
/// | 2,200 | 2 | 2 | 2 | |
/// | 2,500 | | | | partition {a} {b, s} |
/// | 3,600 | 3 (x3) | 3 (y3) | 3 (y3) | fork |
/// | 4,000 | | | | s crashes |
/// | 4,500 | 4 | 3 | 3 (fired) | |
/// | 5,000 | | | | heal |
/// | 5,200 | 4 | 4 (x4, reorg) | 3 | |
/// | 5,600 | 4 | 4 | 4 | s restarted, reorg |
/// | 6,000–7,000 | | | | b paused |
fn script() -> Vec<Value> {
    let reorg = |t_ms, node: &str| {
        event_line(
            t_ms,
            node,
            &Event::Reorg {
                old_tip: h(Y3),
                new_tip: h(X4),
                depth: 1,
                height: 4,
            },
        )
    };
    vec![
        json!({"crapcoin_sim_log": 1, "scenario": "partition-heal", "seed": 5,
               "block_interval_ms": 1000, "nodes": [
                   {"name": "a", "behaviour": "honest", "hash_share": 0.4, "region": "eu"},
                   {"name": "b", "behaviour": "honest", "hash_share": 0.4, "region": "us"},
                   {"name": "s", "behaviour": "selfish", "hash_share": 0.2, "region": null}]}),
        mined(1_000, "a", X1, GENESIS, 1),
        accepted(1_040, "b", X1, GENESIS, 1, true),
        accepted(1_060, "s", X1, GENESIS, 1, true),
        mined(2_000, "a", X2, X1, 2),
        accepted(2_030, "b", X2, X1, 2, true),
        accepted(2_050, "s", X2, X1, 2, true),
        fault(
            2_500,
            json!({"kind": "partition", "groups": [["a"], ["b", "s"]]}),
        ),
        mined(3_000, "a", X3, X2, 3),
        mined(3_500, "b", Y3, X2, 3),
        accepted(3_550, "s", Y3, X2, 3, true),
        fault(4_000, json!({"kind": "crash", "node": "s"})),
        mined(4_200, "a", X4, X3, 4),
        fault(5_000, json!({"kind": "heal"})),
        accepted(5_100, "b", X3, X2, 3, false),
        accepted(5_110, "b", X4, X3, 4, true),
        reorg(5_111, "b"),
        fault(5_500, json!({"kind": "restart", "node": "s"})),
        accepted(5_600, "s", X3, X2, 3, false),
        accepted(5_610, "s", X4, X3, 4, true),
        reorg(5_611, "s"),
        fault(
            6_000,
            json!({"kind": "pause", "node": "b", "for_ms": 1_000}),
        ),
        json!({"t_ms": 7_000, "end": {"height": 4, "digest": "ab".repeat(32), "events": 17}}),
    ]
}

fn write_log(dir: &Path, name: &str, lines: &[Value]) -> String {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes the log");
    path.display().to_string()
}

fn replay_args(log: &str) -> Vec<String> {
    vec!["--replay".into(), log.into()]
}

/// Each node's `(height, tip, alive, fired)` from `GET /api/nodes`.
async fn nodes_at(
    c: &reqwest::Client,
    base: &str,
    at_ms: u64,
) -> Vec<(String, u64, String, bool, bool)> {
    let nodes = get(c, &format!("{base}/api/nodes?at_ms={at_ms}")).await;
    nodes
        .as_array()
        .expect("a list")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_owned(),
                n["height"].as_u64().expect("height"),
                n["tip"].as_str().unwrap_or("").to_owned(),
                n["alive"].as_bool().expect("alive"),
                n["fired"].as_bool().expect("fired"),
            )
        })
        .collect()
}

fn heights(nodes: &[(String, u64, String, bool, bool)]) -> Vec<(&str, u64)> {
    nodes.iter().map(|n| (n.0.as_str(), n.1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_the_log_says_at_each_position() {
    let dir = tempfile::tempdir().expect("dir");
    let log = write_log(dir.path(), "run.jsonl", &script());
    let sauron = SauronProc::start(dir.path(), &replay_args(&log));
    let c = client();
    let base = sauron.url.as_str();

    let info = get(&c, &format!("{base}/api/replay")).await;
    assert_eq!(info["scenario"], "partition-heal");
    assert_eq!(
        (info["seed"].as_u64(), info["end_ms"].as_u64()),
        (Some(5), Some(7_000))
    );
    assert_eq!(info["entries"], 21);
    assert_eq!(info["complete"], true);
    assert_eq!(get(&c, &format!("{base}/api/config")).await["replay"], true);

    // Forward through the run: heights as the script's table says.
    let cases: [(u64, [(&str, u64); 3]); 5] = [
        (500, [("a", 0), ("b", 0), ("s", 0)]),
        (1_500, [("a", 1), ("b", 1), ("s", 1)]),
        (2_200, [("a", 2), ("b", 2), ("s", 2)]),
        (4_500, [("a", 4), ("b", 3), ("s", 3)]),
        (5_200, [("a", 4), ("b", 4), ("s", 3)]),
    ];
    for (at, want) in cases {
        assert_eq!(heights(&nodes_at(&c, base, at).await), want, "at {at} ms");
    }
    // The fork during the partition: a on x3, b and s on y3.
    let fork = nodes_at(&c, base, 3_600).await;
    let tips: Vec<_> = fork.iter().map(|n| n.2.clone()).collect();
    assert_eq!(
        tips,
        [h(X3).to_string(), h(Y3).to_string(), h(Y3).to_string()]
    );
    let faults = &get(&c, &format!("{base}/api/replay?at_ms=3600")).await["faults"];
    assert_eq!(faults["partition"], json!([["a"], ["b", "s"]]));
    // s crashed: shown fired; healed and restarted later.
    let crashed = nodes_at(&c, base, 4_500).await;
    assert!(crashed[2].4 && !crashed[0].4, "s fired, a not: {crashed:?}");
    let faults = &get(&c, &format!("{base}/api/replay?at_ms=4500")).await["faults"];
    assert_eq!(faults["crashed"], json!(["s"]));
    // b's reorg on heal puts it on x4.
    let healed = nodes_at(&c, base, 5_200).await;
    assert_eq!(healed[1].2, h(X4).to_string());
    assert_eq!(
        get(&c, &format!("{base}/api/replay?at_ms=5200")).await["faults"]["partition"],
        Value::Null
    );
    // The same faults as a timeline (`GET /api/faults`, as live): at
    // 4,500 the partition and the crash, neither ended yet; at the end
    // the partition ended at the heal, the crash at the restart.
    let timeline = get(&c, &format!("{base}/api/faults?at_ms=4500")).await;
    let extents = |v: &Value| -> Vec<(String, Value, Value)> {
        v["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| {
                (
                    r["fault"]["kind"].as_str().unwrap_or("?").to_owned(),
                    r["start_ms"].clone(),
                    r["end_ms"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        extents(&timeline),
        vec![
            ("partition".to_owned(), json!(2_500), Value::Null),
            ("crash".to_owned(), json!(4_000), Value::Null),
        ],
        "{timeline}"
    );
    assert_eq!(timeline["active"]["partition"], json!([["a"], ["b", "s"]]));
    let whole = get(&c, &format!("{base}/api/faults")).await;
    let ends = extents(&whole);
    assert_eq!(
        ends[0],
        ("partition".to_owned(), json!(2_500), json!(5_000)),
        "{whole}"
    );
    assert_eq!(
        ends[1],
        ("crash".to_owned(), json!(4_000), json!(5_500)),
        "{whole}"
    );
    // b paused: down until its pause ends.
    let paused = nodes_at(&c, base, 6_500).await;
    assert!(!paused[1].3 && paused[0].3, "b down, a up: {paused:?}");
    let end = nodes_at(&c, base, 7_000).await;
    assert_eq!(heights(&end), [("a", 4), ("b", 4), ("s", 4)]);
    assert!(
        end.iter().all(|n| n.3 && !n.4),
        "all up at the end: {end:?}"
    );
    // Back inside the pause after its end was shown: down again.
    assert!(
        !nodes_at(&c, base, 6_500).await[1].3,
        "b down again at 6.5 s"
    );
    let live_honest = |at: u64| {
        let (c, url) = (c.clone(), format!("{base}/api/consensus?at_ms={at}"));
        async move { get(&c, &url).await["live_honest"].as_u64() }
    };
    assert_eq!(
        (live_honest(3_600).await, live_honest(6_500).await),
        (Some(2), Some(1))
    );
    // Back to the start: rebuilt, not left at the end.
    assert_eq!(
        heights(&nodes_at(&c, base, 1_500).await),
        [("a", 1), ("b", 1), ("s", 1)]
    );

    // The block tree grows with the position; the fork counts as stale.
    let hashes = |v: &Value| -> Vec<String> {
        let mut hs: Vec<String> = v["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .map(|b| b["hash"].as_str().expect("hash").to_owned())
            .collect();
        hs.sort();
        hs
    };
    let early = get(&c, &format!("{base}/api/blocks?at_ms=2200")).await;
    assert_eq!(hashes(&early), [h(X1).to_string(), h(X2).to_string()]);
    let all = get(&c, &format!("{base}/api/blocks")).await;
    assert_eq!(hashes(&all).len(), 5);
    let forks = get(&c, &format!("{base}/api/forks?at_ms=7000")).await;
    assert_eq!(
        (
            forks["blocks_mined"].as_u64(),
            forks["stale_blocks"].as_u64()
        ),
        (Some(5), Some(1))
    );

    // Events up to the position, newest first; faults in the Boss panel.
    let events = get(&c, &format!("{base}/api/events?at_ms=2200&limit=500")).await;
    let at: Vec<i64> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["at_ms"].as_i64().expect("at_ms"))
        .collect();
    assert_eq!(at, [2_050, 2_030, 2_000, 1_060, 1_040, 1_000]);
    let boss = get(&c, &format!("{base}/api/events?kind=boss")).await;
    let actions: Vec<String> = boss["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            let body = &e["event"];
            format!(
                "{} {}",
                body["action"].as_str().expect("action"),
                e["node"].as_str().expect("node")
            )
        })
        .collect();
    assert_eq!(actions, ["paused b", "rehired s", "fired s"]);

    // A replay takes no reports or registrations.
    let posted = c
        .post(format!("{base}/api/events"))
        .header("content-type", "application/json")
        .body(json!({"node": "a", "url": "http://127.0.0.1:9", "reports": []}).to_string())
        .send()
        .await
        .expect("answers");
    let (status, body) = json_body(posted).await;
    assert_eq!((status, body["reason"].as_str()), (409, Some("replaying")));
    sauron.kill();

    // A live Sauron refuses a position and has no replay.
    let live_dir = tempfile::tempdir().expect("dir");
    let live = SauronProc::start(live_dir.path(), &[]);
    let (status, body) = json_body(
        c.get(format!("{}/api/nodes?at_ms=5", live.url))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (400, Some("not_replaying"))
    );
    let (status, _) = json_body(
        c.get(format!("{}/api/replay", live.url))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        get(&c, &format!("{}/api/config", live.url)).await["replay"],
        false
    );
    live.kill();
}

/// Runs `sauron --replay` on a log with `lines` and answers its exit code
/// and stderr (it must exit before serving).
fn refused(dir: &Path, lines: &[Value], extra: &[&str]) -> (Option<i32>, String) {
    let log = write_log(dir, "bad.jsonl", lines);
    let mut command = Command::new(bin("sauron"));
    command.args(["--replay", &log]).args(extra);
    let out = run_bounded(command, Duration::from_secs(60));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_log_is_refused_with_its_line_before_serving() {
    let dir = tempfile::tempdir().expect("dir");
    let good = script();
    let mut unknown = good.clone();
    unknown[4] = mined(2_000, "z", X2, X1, 2);
    let mut backwards = good.clone();
    backwards[9] = mined(1_000, "b", Y3, X2, 3);
    let mut short_hash = good.clone();
    short_hash[2] = json!({"t_ms": 1_040, "node": "b", "event": {"kind": "block_accepted",
        "hash": "1111", "parent": h(GENESIS).to_string(), "height": 1, "from": null, "best": true}});
    let mut partition = good.clone();
    partition[7] = fault(
        2_500,
        json!({"kind": "partition", "groups": [["a"], ["nobody"]]}),
    );
    let mut negative = good.clone();
    negative[21] = fault(6_000, json!({"kind": "pause", "node": "b", "for_ms": -5}));
    let mut after_end = good.clone();
    after_end.push(mined(8_000, "a", 0x15, X4, 5));
    let cases: Vec<(&str, Vec<Value>, &[&str], &str)> = vec![
        (
            "unknown node",
            unknown,
            &[],
            "line 5: node \"z\" is not in the header",
        ),
        (
            "time backwards",
            backwards,
            &[],
            "line 10: t_ms 1000 is before the previous line's 3000",
        ),
        (
            "short hash",
            short_hash,
            &[],
            "line 3: block_accepted needs a 64-hex hash",
        ),
        (
            "unknown partition node",
            partition,
            &[],
            "line 8: node \"nobody\" is not in the header",
        ),
        ("negative pause", negative, &[], "line 22: invalid value"),
        (
            "a line after the end",
            after_end,
            &[],
            "line 24: a line after the end line",
        ),
        (
            "too many events",
            good.clone(),
            &["--replay-max-events", "3"],
            "line 5: more than 3 events",
        ),
        (
            "too many nodes",
            good,
            &["--max-nodes", "2"],
            "line 1: 3 nodes, more than 2",
        ),
    ];
    for (name, lines, extra, want) in cases {
        let (code, stderr) = refused(dir.path(), &lines, extra);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(want),
            "{name}: wanted {want:?} in {stderr:?}"
        );
        assert!(!stderr.contains("listening on"), "{name}: served");
    }
}

/// The replay bar and each row's height and liveness, read from the DOM.
const PAGE: &str = r#"
const bar = document.getElementById('replay');
return {
  shown: !bar.hidden,
  at: bar.getAttribute('data-at'),
  faults: document.getElementById('replay-faults').textContent,
  link: document.getElementById('link-text').textContent,
  rows: [...document.querySelectorAll('#node-rows tr[data-node]')].map((r) => [
    r.getAttribute('data-node'),
    r.querySelector('td.height').textContent.trim(),
    r.querySelector('td.alive').textContent.trim(),
  ]),
  blocks: document.querySelectorAll('#tree g.blk').length,
};
"#;

/// Moves the scrubber to `at_ms` as a person dragging it does: sets the
/// range input's value and fires its `input` event.
fn scrub(at_ms: u64) -> String {
    format!(
        "const r = document.getElementById('replay-pos'); r.value = '{at_ms}'; \
         r.dispatchEvent(new Event('input', {{bubbles: true}})); return r.value;"
    )
}

/// Waits until the page's rows are `want` (`[name, height, state]`).
async fn wait_rows(browser: &Browser, want: Value, what: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = browser.script(PAGE).await;
        if page["rows"] == want {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_scrubs_and_plays_a_replay() {
    webdriver::require_chromium();
    let dir = tempfile::tempdir().expect("dir");
    let log = write_log(dir.path(), "run.jsonl", &script());
    let sauron = SauronProc::start(dir.path(), &replay_args(&log));
    let browser = Browser::start(1400, 900).await;
    browser.goto(&format!("{}/", sauron.url)).await;

    // It opens at the start: every node at height 0.
    let page = wait_rows(
        &browser,
        json!([
            ["a", "0", "alive"],
            ["b", "0", "alive"],
            ["s", "0", "alive"]
        ]),
        "the start",
    )
    .await;
    assert_eq!(page["shown"], true, "the replay bar is shown");
    assert!(
        page["link"]
            .as_str()
            .unwrap_or("")
            .contains("partition-heal"),
        "{page}"
    );

    browser.script(&scrub(2_200)).await;
    wait_rows(
        &browser,
        json!([
            ["a", "2", "alive"],
            ["b", "2", "alive"],
            ["s", "2", "alive"]
        ]),
        "t = 2.2 s",
    )
    .await;

    browser.script(&scrub(4_500)).await;
    let page = wait_rows(
        &browser,
        json!([
            ["a", "4", "alive"],
            ["b", "3", "alive"],
            ["s", "3", "fired"]
        ]),
        "t = 4.5 s",
    )
    .await;
    let faults = page["faults"].as_str().unwrap_or("");
    assert!(
        faults.contains("partition") && faults.contains("crashed s"),
        "{faults}"
    );
    assert!(
        page["blocks"].as_u64().unwrap_or(0) >= 4,
        "the tree shows the fork: {page}"
    );

    // The screenshot in docs/sauron.md: the fork, the partition, s crashed.
    let png = browser.screenshot().await;
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(kit::process::target_dir)
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    std::fs::write(dir.join("replay.png"), &png).expect("writes the screenshot");

    // Back, then play to the end at 100× (25 s of virtual time a tick).
    browser.script(&scrub(1_500)).await;
    wait_rows(
        &browser,
        json!([
            ["a", "1", "alive"],
            ["b", "1", "alive"],
            ["s", "1", "alive"]
        ]),
        "back to 1.5 s",
    )
    .await;
    browser
        .script("const s = document.getElementById('replay-speed'); s.value = '100'; s.dispatchEvent(new Event('change')); document.getElementById('replay-play').click(); return true;")
        .await;
    let page = wait_rows(
        &browser,
        json!([
            ["a", "4", "alive"],
            ["b", "4", "alive"],
            ["s", "4", "alive"]
        ]),
        "the end after play",
    )
    .await;
    assert_eq!(page["at"], "7000");
    browser.close().await;
    sauron.kill();
}

/// A log the simulation runner wrote (not a hand-made one) replays: the
/// same nodes, the heights the run ended with, the partition in force
/// while it lasted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_by_the_simulation_runner_replays() {
    let scenario = crapcoin_sim::scenario::Scenario::parse(
        r#"
name = "runner-log"
seed = 9
block_interval_ms = 1000

[[nodes]]
name = "a"
count = 4
behaviour = "honest"

[[nodes]]
name = "b"
count = 3
behaviour = "honest"

[[faults]]
at_ms = 5_000
kind = "partition"
groups = [["a"], ["b"]]

[[faults]]
at_ms = 15_000
kind = "heal"

[stop]
time_ms = 30_000
"#,
    )
    .expect("a valid scenario");
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("run.jsonl");
    let options = crapcoin_sim::run::Options {
        log: Some(log.clone()),
        progress: None,
    };
    let outcome = std::thread::spawn(move || crapcoin_sim::run::run(&scenario, 9, None, &options))
        .join()
        .expect("the run does not panic")
        .expect("the run completes");

    let sauron = SauronProc::start(dir.path(), &replay_args(&log.display().to_string()));
    let c = client();
    let base = sauron.url.as_str();
    let info = get(&c, &format!("{base}/api/replay?at_ms=10000")).await;
    assert_eq!(info["scenario"], "runner-log");
    assert_eq!(info["end"]["digest"], outcome.digest.as_str());
    assert_eq!(info["end_ms"], 30_000);
    assert!(!info["faults"]["partition"].is_null(), "{info}");
    let at_end = nodes_at(&c, base, 30_000).await;
    assert_eq!(at_end.len(), 7);
    let top = at_end.iter().map(|n| n.1).max().expect("nodes");
    assert_eq!(top, outcome.height, "{at_end:?}");
    let early = nodes_at(&c, base, 3_000).await;
    assert!(
        early.iter().map(|n| n.1).max() < Some(top),
        "heights grow over the run: {early:?}"
    );
}
