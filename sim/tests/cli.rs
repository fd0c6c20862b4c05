//! The `simulation` binary end to end: a bad scenario is refused before
//! anything runs, with its line; a good one writes its table, CSV/JSON,
//! plots and an event log whose last line carries the digest of the
//! lines before it.

use std::process::Command;

use sha2::{Digest, Sha256};

const TINY: &str = r#"
name = "tiny"
seeds = [3]
block_interval_ms = 500

[[nodes]]
name = "n"
count = 6
behaviour = "honest"

[transfers]
rate_per_sec = 2

[[faults]]
at_ms = 3_000
kind = "isolate"
node = "n-1"

[[faults]]
at_ms = 6_000
kind = "heal"

[stop]
time_ms = 10_000
"#;

fn simulation() -> Command {
    Command::new(env!("CARGO_BIN_EXE_simulation"))
}

#[test]
fn a_bad_scenario_is_refused_with_its_line_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    let bad = TINY.replace("rate_per_sec = 2", "rate_per_sec = 2\nspeed = 9");
    std::fs::write(&path, bad).expect("writes");
    let out_dir = dir.path().join("out");
    let out = simulation()
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 13") && stderr.contains("speed"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "nothing was written");
}

#[test]
fn a_run_writes_its_results_and_a_log_that_hashes_to_its_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.toml");
    std::fs::write(&path, TINY).expect("writes");
    let log = dir.path().join("tiny.jsonl");
    let out_dir = dir.path().join("out");
    let out = simulation()
        .arg(&path)
        .arg("--log")
        .arg(&log)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<&str> = text.lines().collect();
    let header: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON header");
    assert_eq!(header["crapcoin_sim_log"], 1);
    assert_eq!(header["nodes"].as_array().map(Vec::len), Some(6));
    let end: serde_json::Value =
        serde_json::from_str(lines[lines.len() - 1]).expect("a JSON end line");
    let body = &lines[1..lines.len() - 1];
    let mut digest = Sha256::new();
    for line in body {
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(end["end"]["digest"], hex.as_str());
    assert_eq!(end["end"]["events"], body.len() as u64);
    assert!(body.iter().any(|l| l.contains(r#""kind":"block_mined""#)));
    assert!(
        body.iter()
            .any(|l| l.contains(r#""fault":{"kind":"isolate""#))
    );
    assert!(
        stdout.contains(&hex[..16]),
        "the table shows the digest: {stdout}"
    );

    let csv = std::fs::read_to_string(out_dir.join("runs.csv")).expect("runs.csv");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(&hex));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("runs.json")).expect("json"))
            .expect("runs.json parses");
    assert_eq!(json[0]["seed"], 3);
    assert_eq!(json[0]["virtual_ms"], 10_000);
    for png in ["heights.png", "propagation.png"] {
        let bytes = std::fs::read(out_dir.join(png)).expect("a plot");
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
}
