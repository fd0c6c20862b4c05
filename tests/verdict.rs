//! The command line, bounded: `-x 5 -y 2 --sauron --boss --auto
//! --duration 60 --seed 7 --report PATH` converges, Sauron sees the run
//! (its nodes, its control URL, the Boss's firings), the report shows the
//! faults and the load, and no process it started is left.

use std::time::Duration;

use kit::http::blocking;
use kit::process::{Watercooler, await_sauron_nodes, ensure_built, survivors};

#[test]
fn sixty_seconds_of_chaos_converge() {
    ensure_built();
    let report_dir = tempfile::tempdir().expect("dir");
    let report_path = report_dir.path().join("report.json");
    let report_arg = report_path.display().to_string();
    let args = [
        "-x",
        "5",
        "-y",
        "2",
        "--sauron",
        "--boss",
        "--auto",
        "--duration",
        "60",
        "--seed",
        "7",
        "--report",
        &report_arg,
    ];
    let mut run = Watercooler::start(&args);
    let sauron = run.url_after("Sauron's dashboard: ");
    let control = run.url_after("control API: ");
    // While it runs: Sauron shows watercooler's control URL and, through
    // the nodes' --tracker registrations, all 7 nodes.
    let (code, config) = blocking("GET", &format!("{sauron}/api/config"), None);
    assert_eq!(code, 200, "{config}");
    assert_eq!(config["control_url"].as_str(), Some(control.as_str()));
    let names = await_sauron_nodes(&sauron, 7);
    for name in [
        "bigload-1",
        "bigload-2",
        "bigload-3",
        "bigload-4",
        "bigload-5",
        "shit-1",
        "shit-2",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    // 60 s of run, up to 30 s of settling, starts and stops.
    let code = run.wait(Duration::from_secs(240));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report written"))
            .expect("report is JSON");
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["converged"], true, "{report:#}");
    let count = |key: &str| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {report:#}"))
    };
    assert!(count("honest_nodes") >= 1, "{report:#}");
    assert!(count("common_height") > 0, "{report:#}");
    assert!(count("firings") > 0, "the Boss fired nobody: {report:#}");
    let rejected: u64 = report["rejected"]
        .as_object()
        .expect("rejected by reason")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert!(rejected > 0, "no block rejected: {report:#}");
    assert!(count("transfers_included") > 0, "{report:#}");
    // Distinct transfers from honest wallets on the common chain: each was
    // submitted to (and counted by) an honest node.
    assert!(
        count("transfers_included") <= count("transfers_submitted"),
        "{report:#}"
    );
    assert!(
        count("transfers_included") <= count("transfers_on_chain"),
        "{report:#}"
    );

    // Sauron saw the run: asked by watercooler before it was stopped.
    let seen = &report["sauron"];
    assert_eq!(seen["url"].as_str(), Some(sauron.as_str()), "{report:#}");
    assert_eq!(
        seen["control_url"].as_str(),
        Some(control.as_str()),
        "{report:#}"
    );
    assert!(
        seen["nodes"].as_u64().unwrap_or(0) >= 7,
        "Sauron lists fewer than 7 nodes: {report:#}"
    );
    let fired = seen["boss_events"]["fired"].as_u64().unwrap_or(0);
    assert!(
        fired > 0 && fired <= count("firings"),
        "Sauron saw {fired} firings: {report:#}"
    );
    for key in ["blocks", "reorgs"] {
        count(key);
    }
    // The load stopped for settling: every node running then paused its
    // auto mode (the Boss rehired and resumed everyone first).
    let running = report["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["state"] == "running")
        .count();
    assert_eq!(count("auto_paused") as usize, running, "{report:#}");
    assert!(running >= 7, "{report:#}");

    // 5 + 2 nodes and Sauron at least (rehires add more).
    let pids: Vec<u32> = report["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(|p| p.as_u64().map(|p| p as u32))
        .collect();
    assert!(pids.len() >= 8, "{pids:?}");
    assert_eq!(pids, run.pids(), "the report and the pids file agree");
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
