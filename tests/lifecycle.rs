//! A running watercooler steered through stdin and the HTTP control API,
//! then stopped by SIGINT; and one SIGKILLed. Nothing it started may
//! outlive it either way.

use std::time::Duration;

use kit::http::blocking;
use kit::plugin::example_plugin;
use kit::process::{Watercooler, await_sauron_nodes, ensure_built, survivors};
use serde_json::Value;

const START: Duration = Duration::from_secs(90);

/// A process's niceness (field 19 of `/proc/PID/stat`).
fn niceness(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The command name (field 2) may hold spaces: count from its `)`.
    let after = &stat[stat.rfind(')').expect("(comm)") + 2..];
    after
        .split(' ')
        .nth(16)
        .and_then(|n| n.parse().ok())
        .expect("a niceness")
}

fn control_url(run: &mut Watercooler) -> String {
    let line = run.expect_line("control API: ", START);
    line.split_whitespace()
        .nth(2)
        .expect("control API: URL ...")
        .to_owned()
}

fn nodes(control: &str) -> Vec<Value> {
    let (code, status) = blocking("GET", &format!("{control}/status"), None);
    assert_eq!(code, 200, "{status}");
    status["nodes"].as_array().expect("nodes").clone()
}

fn state_of(control: &str, name: &str) -> Option<String> {
    nodes(control)
        .iter()
        .find(|n| n["name"] == name)
        .map(|n| n["state"].as_str().unwrap_or_default().to_owned())
}

/// Polls (bounded) until `name` is in `state`.
fn await_state(control: &str, name: &str, state: &str) {
    let end = std::time::Instant::now() + START;
    while std::time::Instant::now() < end {
        if state_of(control, name).as_deref() == Some(state) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{name} never became {state}: {:?}", nodes(control));
}

#[test]
fn hire_and_fire_through_stdin_and_http_then_sigint_stops_everyone() {
    ensure_built();
    let mut run = Watercooler::start(&["-x", "2", "--auto", "--auto-interval-ms", "500"]);
    let control = control_url(&mut run);
    run.expect_line("nodes up", START);
    assert_eq!(nodes(&control).len(), 2);

    // stdin: hire one honest node, one plugin node; fire one.
    run.type_line("hire 1");
    run.expect_line("hired bigload-3", START);
    let plugin = example_plugin();
    if plugin.is_file() {
        run.type_line(&format!("hire 1 plugin:{}", plugin.display()));
        run.expect_line("hired shit-", START);
    }
    run.type_line("fire bigload-1");
    run.expect_line("fired bigload-1", START);
    assert_eq!(state_of(&control, "bigload-1").as_deref(), Some("fired"));
    await_state(&control, "bigload-3", "running");
    run.type_line("status");
    run.expect_line("bigload-3", START);

    // HTTP: the same, as Sauron's dashboard calls it (CORS).
    let (code, hired) = blocking(
        "POST",
        &format!("{control}/hire"),
        Some(r#"{"count": 2, "behaviour": "forger"}"#),
    );
    assert_eq!(code, 200, "{hired}");
    let names: Vec<&str> = hired["hired"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names.len(), 2, "{hired}");
    for name in &names {
        assert!(name.starts_with("shit-"), "{name}");
        await_state(&control, name, "running");
    }
    let (code, fired) = blocking(
        "POST",
        &format!("{control}/fire"),
        Some(r#"{"node": "bigload-2"}"#),
    );
    assert_eq!(code, 200, "{fired}");
    assert_eq!(fired["state"], "fired");
    let (code, refused) = blocking(
        "POST",
        &format!("{control}/fire"),
        Some(r#"{"node": "nobody"}"#),
    );
    assert_eq!(
        (code, refused["reason"].as_str()),
        (404, Some("unknown_node"))
    );
    let (code, refused) = blocking(
        "POST",
        &format!("{control}/hire"),
        Some(r#"{"count": 1, "behaviour": "saint"}"#),
    );
    assert_eq!(
        (code, refused["reason"].as_str()),
        (422, Some("unknown_behaviour"))
    );
    let preflight = std::process::Command::new("curl")
        .args([
            "-s",
            "-i",
            "-X",
            "OPTIONS",
            "-H",
            "Origin: http://127.0.0.1:1",
            "-H",
            "Access-Control-Request-Method: POST",
            "-H",
            "Access-Control-Request-Headers: content-type",
            &format!("{control}/hire"),
        ])
        .output();
    if let Ok(out) = preflight {
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(text.contains("access-control-allow-origin"), "{text}");
    }

    // SIGINT in the middle of the run: everyone stops.
    let pids = run.pids();
    assert!(pids.len() >= 5, "{pids:?}");
    run.signal("INT");
    let code = run.wait(Duration::from_secs(30));
    assert_eq!(code, Some(130));
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "children outlived watercooler: {left:?}");
}

/// `crapcoin_auto_on` from a node's `/metrics`.
fn auto_on(url: &str) -> Option<u64> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "5", &format!("{url}/metrics")])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("crapcoin_auto_on ")?.trim().parse().ok())
}

/// Waits until every running node reports `crapcoin_auto_on` = `want`;
/// returns how many nodes run.
fn await_auto(control: &str, want: u64) -> usize {
    let end = std::time::Instant::now() + START;
    loop {
        let urls: Vec<String> = nodes(control)
            .iter()
            .filter(|n| n["state"] == "running")
            .filter_map(|n| n["url"].as_str().map(str::to_owned))
            .collect();
        let got: Vec<Option<u64>> = urls.iter().map(|u| auto_on(u)).collect();
        if !urls.is_empty() && got.iter().all(|g| *g == Some(want)) {
            return urls.len();
        }
        assert!(
            std::time::Instant::now() < end,
            "crapcoin_auto_on {got:?}, wanted {want} everywhere"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn auto_mode_pauses_and_resumes_across_the_fleet() {
    ensure_built();
    let mut run = Watercooler::start(&["-x", "2", "--auto", "--auto-interval-ms", "300"]);
    let control = control_url(&mut run);
    run.expect_line("nodes up", START);
    assert_eq!(await_auto(&control, 1), 2);

    // HTTP: pause every node.
    let (code, paused) = blocking("POST", &format!("{control}/auto"), Some(r#"{"on": false}"#));
    assert_eq!(code, 200, "{paused}");
    assert_eq!(paused["auto"], "paused", "{paused}");
    assert_eq!(paused["confirmed"], 2, "{paused}");
    assert_eq!(await_auto(&control, 0), 2);

    // A node hired while the fleet is paused starts paused.
    run.type_line("hire 1");
    run.expect_line("hired bigload-3", START);
    await_state(&control, "bigload-3", "running");
    assert_eq!(await_auto(&control, 0), 3);

    // stdin: resume, the new node too.
    run.type_line("auto on");
    run.expect_line("auto mode resumed on 3 of 3 nodes", START);
    assert_eq!(await_auto(&control, 1), 3);
    let (code, status) = blocking("GET", &format!("{control}/status"), None);
    assert_eq!(
        (code, status["auto"].as_str()),
        (200, Some("on")),
        "{status}"
    );

    let (code, refused) = blocking(
        "POST",
        &format!("{control}/auto"),
        Some(r#"{"on": "maybe"}"#),
    );
    assert_eq!((code, refused["reason"].as_str()), (422, Some("bad_body")));
    run.type_line("auto sideways");
    run.expect_line("usage: auto on|off", START);

    let pids = run.pids();
    run.signal("INT");
    assert_eq!(run.wait(Duration::from_secs(30)), Some(130));
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "children outlived watercooler: {left:?}");
}

#[test]
fn sigkill_of_watercooler_takes_every_child_with_it() {
    ensure_built();
    let mut run = Watercooler::start(&["-x", "3", "-y", "1", "--behaviour", "stupid"]);
    run.expect_line("nodes up", START);
    let pids = run.pids();
    assert_eq!(pids.len(), 4, "{pids:?}");
    assert!(survivors(&pids, run.dir.path(), Duration::ZERO).len() == 4);
    run.signal("KILL");
    assert_eq!(run.wait(Duration::from_secs(10)), None);
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "children outlived a SIGKILLed watercooler: {left:?}"
    );
}

#[test]
fn sauron_sees_the_nodes_hired_through_the_control_api() {
    ensure_built();
    let mut run = Watercooler::start(&["-x", "2", "--sauron"]);
    let sauron = run.url_after("Sauron's dashboard: ");
    let control = run.url_after("control API: ");
    run.expect_line("nodes up", START);

    // Sauron offers the dashboard watercooler's control API.
    let (code, config) = blocking("GET", &format!("{sauron}/api/config"), None);
    assert_eq!(code, 200, "{config}");
    assert_eq!(config["control_url"].as_str(), Some(control.as_str()));
    let (code, status) = blocking("GET", &format!("{control}/status"), None);
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["sauron"].as_str(), Some(sauron.as_str()));

    // The nodes registered with Sauron (--tracker).
    let names = await_sauron_nodes(&sauron, 2);
    assert!(names.iter().any(|n| n == "bigload-1"), "{names:?}");
    assert!(names.iter().any(|n| n == "bigload-2"), "{names:?}");

    // A node hired through the control API shows up in Sauron, and so
    // does the hire itself (a `boss` event).
    let (code, hired) = blocking(
        "POST",
        &format!("{control}/hire"),
        Some(r#"{"count": 1, "behaviour": null}"#),
    );
    assert_eq!(code, 200, "{hired}");
    let name = hired["hired"][0].as_str().expect("a name").to_owned();
    assert_eq!(name, "bigload-3");
    let names = await_sauron_nodes(&sauron, 3);
    assert!(names.contains(&name), "{names:?}");
    let end = std::time::Instant::now() + START;
    loop {
        let (code, events) = blocking("GET", &format!("{sauron}/api/events?kind=boss"), None);
        assert_eq!(code, 200, "{events}");
        let hires = events["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["node"] == name.as_str() && e["event"]["action"] == "hired")
            .count();
        if hires == 1 {
            break;
        }
        assert!(std::time::Instant::now() < end, "no hire event: {events}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Started without --auto: there is no auto mode to switch.
    let (code, refused) = blocking("POST", &format!("{control}/auto"), Some(r#"{"on": false}"#));
    assert_eq!(
        (code, refused["reason"].as_str()),
        (409, Some("auto_not_configured"))
    );

    let pids = run.pids();
    assert_eq!(pids.len(), 4, "two nodes, Sauron, one hire: {pids:?}");
    // Nodes run at the lowest priority (19 steps down by default), so their
    // proof of work cannot starve Sauron, which runs as watercooler does.
    for pid in &pids {
        // The program's name (the kernel's `comm`), not the whole command
        // line: a checkout whose path holds "sauron" must not make a node
        // look like Sauron.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
        let is_sauron = comm.trim_end() == "sauron";
        let own = niceness(std::process::id());
        let want = if is_sauron { own } else { 19 };
        assert_eq!(niceness(*pid), want, "pid {pid} (Sauron: {is_sauron})");
    }
    run.signal("INT");
    assert_eq!(run.wait(Duration::from_secs(30)), Some(130));
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "children outlived watercooler: {left:?}");
}
