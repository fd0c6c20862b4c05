//! The Boss's faults on real processes, bounded: `watercooler -x 3 -y 1
//! --sauron --faults partition,rollback,kill,skew --duration 30` prints
//! its seeded timeline, runs it (partitions and clock skews through each
//! node's `/admin/faults`, rollbacks onto an earlier copy of a node's
//! data), reports each fault to Sauron (`GET /api/faults` lists them),
//! lists them in the report, and still converges: a rolled back node is
//! back with the others. A schedule file or menu that is wrong is refused
//! before anything starts (exit 2, the line and the reason).

use std::process::Command;
use std::time::{Duration, Instant};

use kit::http::blocking;
use kit::process::{Watercooler, bin, ensure_built, read_report, report_pids, survivors};

const ARGS: [&str; 18] = [
    "-x",
    "3",
    "-y",
    "1",
    "--sauron",
    "--faults",
    "partition=2,rollback=2,kill,skew",
    "--boss-interval",
    "3",
    "--fault-duration",
    "4",
    "--rehire-after",
    "3",
    "--block-interval",
    "0.5",
    "--seed",
    "5",
    "--auto",
];

fn timeline_lines(run: &mut Watercooler) -> Vec<String> {
    let head = run.expect_line("the Boss's timeline (", Duration::from_secs(120));
    let count: usize = head
        .split('(')
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {head:?}"));
    (0..count)
        .map(|_| run.expect_line("  #", Duration::from_secs(10)))
        .collect()
}

#[test]
fn the_boss_runs_its_seeded_timeline_and_the_network_survives() {
    ensure_built();
    let report_dir = tempfile::tempdir().expect("dir");
    let report_path = report_dir.path().join("report.json");
    let report_arg = report_path.display().to_string();
    let mut args: Vec<&str> = ARGS.to_vec();
    args.extend(["--duration", "30", "--report", &report_arg]);
    let mut run = Watercooler::start(&args);
    let sauron = run.url_after("Sauron's dashboard: ");
    let printed = timeline_lines(&mut run);
    assert!(
        printed.iter().any(|l| l.contains("partition ["))
            && printed.iter().any(|l| l.contains("rollback ")),
        "the seed draws no partition or rollback: {printed:#?}"
    );

    // Sauron records the faults as they run (start, then end).
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let (code, faults) = blocking("GET", &format!("{sauron}/api/faults"), None);
        assert_eq!(code, 200, "{faults}");
        let kinds: Vec<String> = faults["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|r| r["fault"]["kind"].as_str().map(str::to_owned))
            .collect();
        if kinds.iter().any(|k| k == "partition") && kinds.iter().any(|k| k == "rollback") {
            break faults;
        }
        assert!(
            Instant::now() < deadline,
            "Sauron has no partition and rollback: {faults:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for r in seen["records"].as_array().expect("records") {
        assert!(r["start_ms"].as_u64().is_some(), "{r}");
    }

    let code = run.wait(Duration::from_secs(240));
    let report = read_report(&report_path);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["converged"], true, "{report:#}");
    let faults = &report["faults"];
    // The report's timeline is the printed one.
    let timeline = faults["timeline"].as_array().expect("timeline");
    assert_eq!(timeline.len(), printed.len(), "{faults:#}");
    // Every planned fault ran or was skipped, in order, none failed; the
    // partition and a rollback ran, and ended.
    let executed = faults["executed"].as_array().expect("executed");
    assert_eq!(executed.len(), timeline.len(), "{faults:#}");
    for (e, t) in executed.iter().zip(timeline) {
        assert_eq!(e["id"], t["id"], "{faults:#}");
        let outcome = e["outcome"].as_str().unwrap_or("");
        assert!(
            outcome == "done" || outcome.starts_with("skipped"),
            "{e}: {faults:#}"
        );
    }
    let done = |kind: &str| {
        executed
            .iter()
            .filter(|e| e["kind"] == kind && e["outcome"] == "done")
            .collect::<Vec<_>>()
    };
    assert!(!done("partition").is_empty(), "{faults:#}");
    let rollbacks = done("rollback");
    assert!(!rollbacks.is_empty(), "{faults:#}");
    assert!(
        executed
            .iter()
            .filter(|e| e["outcome"] == "done")
            .all(|e| e["end_ms"].as_u64().is_some()),
        "a fault never ended: {faults:#}"
    );
    assert!(faults["last_fault_end_ms"].as_u64().is_some(), "{faults:#}");
    // A rolled back node is running again, at the common height or above.
    let common = report["common_height"].as_u64().expect("common height");
    for r in rollbacks {
        let node = r["what"]
            .as_str()
            .and_then(|w| w.strip_prefix("rollback "))
            .expect("rollback NODE");
        let view = report["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["name"] == node)
            .unwrap_or_else(|| panic!("{node} not in {report:#}"));
        assert_eq!(view["state"], "running", "{view}");
        if view["honest"] == true {
            assert!(
                view["height"].as_u64().is_some_and(|h| h >= common),
                "{node} did not catch up: {view} (common height {common})"
            );
        }
    }
    let pids = report_pids(&report);
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

fn refused(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(bin("watercooler"))
        .args(args)
        .output()
        .expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_menus_and_schedules_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("dir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("writes");
        path.display().to_string()
    };
    let unknown = file(
        "unknown.toml",
        "[[faults]]\nat_ms = 1000\nkind = \"meteor\"\n",
    );
    let negative = file(
        "negative.toml",
        "[[faults]]\nat_ms = 1000\nkind = \"pause\"\nnode = \"bigload-1\"\nfor_ms = -5\n",
    );
    let stranger = file(
        "stranger.toml",
        "[[faults]]\nat_ms = 1000\nkind = \"partition\"\ngroups = [[\"bigload-1\"], [\"bigload-7\"]]\n",
    );
    let nobody = file(
        "nobody.toml",
        "[[faults]]\nat_ms = 1000\nkind = \"crash\"\nnode = \"bigload-1\"\n\n\
         [[faults]]\nat_ms = 2000\nkind = \"isolate\"\nnode = \"bigload-2\"\n",
    );
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "unknown fault",
            vec!["--fault-schedule", &unknown],
            "line 3",
        ),
        (
            "negative duration",
            vec!["--fault-schedule", &negative],
            "line 5",
        ),
        (
            "unknown node",
            vec!["--fault-schedule", &stranger],
            "bigload-7",
        ),
        (
            "no honest node left",
            vec!["--fault-schedule", &nobody],
            "line 6",
        ),
        (
            "unknown menu item",
            vec!["--faults", "kill,meteor"],
            "meteor",
        ),
        ("negative weight", vec!["--faults", "kill=-1"], "weight"),
        (
            "negative duration",
            vec!["--faults", "kill", "--fault-duration=-3"],
            "positive",
        ),
        (
            "lone honest node",
            vec!["--faults", "kill"],
            "no honest node",
        ),
    ];
    for (name, extra, message) in cases {
        let mut args = if name == "lone honest node" {
            vec!["-x", "1"]
        } else {
            vec!["-x", "2", "-y", "1"]
        };
        args.extend(extra);
        let (code, stderr) = refused(&args);
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: {stderr:?} lacks {message:?}"
        );
    }
    let (code, stderr) = refused(&[
        "-x",
        "2",
        "-y",
        "1",
        "--fault-schedule",
        "/nonexistent/f.toml",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot open"), "{stderr}");
}
