//! The command line, bounded: `-x 5 -y 2 --sauron --boss --auto
//! --duration 60 --seed 7 --report PATH` converges, Sauron sees the run
//! (its nodes, its control URL, the Boss's firings), the report shows the
//! faults, the load and the forks (Sauron's figures), and no process it
//! started is left. Without Sauron, a short run still reports the fork
//! figures the nodes alone can give, and says what is missing.

use std::time::Duration;

use serde_json::Value;

use kit::http::blocking;
use kit::process::{
    Watercooler, await_sauron_nodes, ensure_built, read_report, report_pids, survivors,
};

/// Checks the report's `mining` figures are there and sane, from
/// `source`; returns them.
fn check_mining(report: &Value, source: &str) -> Value {
    let m = report["mining"].clone();
    assert_eq!(m["source"], source, "{m:#}");
    let mined = m["blocks_mined"].as_u64().expect("blocks mined");
    let on_best = m["blocks_on_best_chain"].as_u64().expect("on best chain");
    assert!(on_best > 0 && mined > 0, "{m:#}");
    let stale = m["stale_rate"].as_f64().expect("a stale rate");
    assert!((0.0..=1.0).contains(&stale), "{m:#}");
    let interval = m["mean_interval_secs"].as_f64().expect("a mean interval");
    assert!(interval > 0.0 && interval.is_finite(), "{m:#}");
    let miners = m["miners"].as_array().expect("miners");
    assert!(!miners.is_empty(), "{m:#}");
    let chain_share: f64 = miners
        .iter()
        .filter_map(|m| m["best_chain_share"].as_f64())
        .sum();
    assert!(
        (chain_share - 1.0).abs() < 1e-6,
        "chain shares sum to {chain_share}: {m:#}"
    );
    for miner in miners {
        if let Some(share) = miner["hash_share"].as_f64() {
            assert!((0.0..=1.0).contains(&share), "{miner}");
        }
        assert!(
            miner["node"].as_str().is_some_and(|n| !n.is_empty()),
            "{miner}"
        );
    }
    // Every honest node mines on a schedule and says its share.
    assert!(
        miners
            .iter()
            .filter(|m| m["honest"] == true)
            .all(|m| m["hash_share"].as_f64().is_some_and(|s| s > 0.0)),
        "{m:#}"
    );
    m
}

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
    let mining_line = run.expect_line("  mining ", Duration::from_secs(240));
    assert!(mining_line.contains("stale rate"), "{mining_line}");
    let code = run.wait(Duration::from_secs(240));
    let report = read_report(&report_path);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["converged"], true, "{report:#}");
    check_checks(&report);
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

    // The forks, measured by Sauron: propagation too.
    let m = check_mining(&report, "sauron");
    let p = &m["propagation"];
    let (median, p90, max) = (
        p["median_ms"].as_u64().expect("median"),
        p["p90_ms"].as_u64().expect("p90"),
        p["max_ms"].as_u64().expect("max"),
    );
    assert!(
        median <= p90 && p90 <= max && p["samples"].as_u64() > Some(0),
        "{m:#}"
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
    let pids = report_pids(&report);
    assert!(pids.len() >= 8, "{pids:?}");
    assert_eq!(pids, run.pids(), "the report and the pids file agree");
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// The checker's figures of a converged run: agreement, every check
/// holding, and where every acknowledged transfer is.
fn check_checks(report: &Value) {
    assert_eq!(report["agreement"], true, "{report:#}");
    let c = &report["checks"];
    assert_eq!(c["violation_count"], 0, "{c:#}");
    assert_eq!(c["violations"].as_array().map(Vec::len), Some(0), "{c:#}");
    let n = |key: &str| c[key].as_u64().unwrap_or_else(|| panic!("{key}: {c:#}"));
    // Validity: at least the common chain was rechecked from genesis.
    assert!(
        n("blocks_checked") >= report["common_height"].as_u64().expect("height"),
        "{report:#}"
    );
    // Every acknowledged transfer is somewhere, and none is lost.
    let t = &c["transfers"];
    let t = |key: &str| t[key].as_u64().unwrap_or_else(|| panic!("{key}: {c:#}"));
    assert!(t("acknowledged") > 0, "auto mode made transfers: {c:#}");
    assert_eq!(t("lost"), 0, "{c:#}");
    assert_eq!(
        t("acknowledged"),
        t("on_common_chain") + t("above_common_chain") + t("pending") + t("lost"),
        "{c:#}"
    );
    // Conservation: as many coins as the rewards of the common chain.
    assert_eq!(c["supply"], c["minted"], "{c:#}");
    assert!(n("minted") > 0, "{c:#}");
    // Liveness: measured, within the bound.
    let took = c["converged_after_secs"].as_f64().expect("measured");
    assert!(took <= c["liveness_secs"].as_f64().expect("bound"), "{c:#}");
}

#[test]
fn without_sauron_the_nodes_give_the_fork_figures() {
    ensure_built();
    let report_dir = tempfile::tempdir().expect("dir");
    let report_path = report_dir.path().join("report.json");
    let report_arg = report_path.display().to_string();
    let args = [
        "-x",
        "3",
        "--auto",
        "--block-interval",
        "0.3",
        "--duration",
        "8",
        "--seed",
        "11",
        "--report",
        &report_arg,
    ];
    let mut run = Watercooler::start(&args);
    let line = run.expect_line("not measured      propagation", Duration::from_secs(120));
    assert!(line.contains("needs Sauron"), "{line}");
    let code = run.wait(Duration::from_secs(120));
    let report = read_report(&report_path);
    assert_eq!(code, Some(0), "{report:#}");
    check_checks(&report);
    let m = check_mining(&report, "nodes");
    assert_eq!(m["propagation"], Value::Null, "{m:#}");
    assert!(
        m["missing"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("propagation")))),
        "{m:#}"
    );
    // The best chain's blocks are the common chain's, genesis excluded.
    assert_eq!(
        m["blocks_on_best_chain"], report["common_height"],
        "{report:#}"
    );
    // Three honest nodes, a third of the power each.
    let shares: Vec<f64> = m["miners"]
        .as_array()
        .expect("miners")
        .iter()
        .filter_map(|m| m["hash_share"].as_f64())
        .collect();
    assert_eq!(shares.len(), 3, "{m:#}");
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{m:#}");
    let pids = report_pids(&report);
    let left = survivors(&pids, run.dir.path(), Duration::from_secs(5));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
