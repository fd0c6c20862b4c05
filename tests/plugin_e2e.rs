//! Multi-process: real `crapcoin-node` processes on 127.0.0.1, one of them
//! loading the example attacker plugin (`examples/attacker-plugin`, the
//! lazy miner) with `--plugin`; and the loader's error cases as the binary
//! reports them: a non-zero exit and a message naming the file.
//!
//! `cargo test` does not build `cdylib`s: the example plugin is built here
//! with `cargo build --workspace --lib --bins --tests --examples`, the
//! targets `cargo test --workspace` builds, so cargo unifies the same
//! features and the plugin links the very crapcoin-core build the node
//! binary links (as `behaviours/tests/plugin.rs` does). Every process is
//! killed by PID when its guard drops; every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kit::http::{admin, client, get};
use kit::plugin::{example_plugin, library_name};
use kit::process::{NodeProc, bin, run_bounded};
use kit::time::eventually;
use serde_json::{Value, json};

/// A scratch directory for this test binary.
fn scratch(name: &str) -> PathBuf {
    kit::plugin::scratch("plugin-e2e", name)
}

/// Compiles `source` into a `cdylib` called `stem` with plain rustc.
fn compile_library(stem: &str, source: &str) -> PathBuf {
    kit::plugin::compile_library("plugin-e2e", stem, source)
}

/// The sum of the metric lines of `node` that start with `prefix`.
async fn metric(client: &reqwest::Client, node: &NodeProc, prefix: &str) -> u64 {
    kit::http::metric(client, &node.url, prefix).await
}

const WRONG_DIFFICULTY: &str = "crapcoin_blocks_rejected_total{reason=\"wrong_difficulty\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_node_attacks_real_honest_nodes_and_they_converge() {
    let plugin = example_plugin();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("dir")).collect();
    let client = client();
    let n0 = NodeProc::start(dirs[0].path(), &["--name".into(), "n0".into()]);
    let (code, _) = admin(&client, &format!("{}/mine", n0.url), json!({"count": 3})).await;
    assert_eq!(code, 200);
    let n1 = NodeProc::start(
        dirs[1].path(),
        &[
            "--name".into(),
            "n1".into(),
            "--peer".into(),
            n0.url.clone(),
        ],
    );
    let n2 = NodeProc::start(
        dirs[2].path(),
        &[
            "--name".into(),
            "n2".into(),
            "--peer".into(),
            n0.url.clone(),
            "--peer".into(),
            n1.url.clone(),
        ],
    );
    let honest = [&n0, &n1, &n2];
    let mut args: Vec<String> = vec![
        "--name".into(),
        "lazy".into(),
        "--plugin".into(),
        plugin.display().to_string(),
    ];
    for node in honest {
        args.extend(["--peer".into(), node.url.clone()]);
    }
    let lazy = NodeProc::start(dirs[3].path(), &args);

    // It runs the plugin's behaviour.
    let status = get(&client, &format!("{}/status", lazy.url)).await;
    assert_eq!(status["behaviour"], "lazy_miner", "{status}");
    for node in honest {
        let status = get(&client, &format!("{}/status", node.url)).await;
        assert_eq!(status["behaviour"], "honest", "{status}");
    }

    // Its attack happens: every honest node refuses its blocks for
    // claiming less work than the network's.
    let refused = eventually(Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            for node in honest {
                if metric(&client, node, WRONG_DIFFICULTY).await == 0 {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(refused, "not every honest node refused a lazy block");

    // Honest nodes keep working and agree, the lazy blocks nowhere in
    // their chain.
    let (code, body) = admin(&client, &format!("{}/mine", n2.url), json!({"count": 2})).await;
    assert_eq!(code, 200, "{body}");
    let last: Arc<Mutex<Vec<Value>>> = Arc::default();
    let agreed = eventually(Duration::from_secs(60), || {
        let client = client.clone();
        let last = last.clone();
        async move {
            let mut statuses = Vec::new();
            for node in honest {
                statuses.push(get(&client, &format!("{}/status", node.url)).await);
            }
            let ok = statuses
                .iter()
                .all(|s| s["height"].as_u64() >= Some(5) && s["tip"] == statuses[0]["tip"]);
            *last.lock().expect("lock") = statuses;
            ok
        }
    })
    .await;
    assert!(
        agreed,
        "honest nodes did not converge: {:?}",
        last.lock().expect("lock")
    );
    let chain = get(&client, &format!("{}/blockchain", n1.url)).await;
    let blocks = chain.as_array().expect("a list of blocks");
    assert!(blocks.len() >= 6, "{}", blocks.len());
    for block in blocks {
        assert_eq!(block["header"]["difficulty"], 4, "{block}");
    }
    // The lazy node is dropped by whoever had it as a peer: it is in no
    // honest node's peer list any more.
    let lazy_url = lazy.url.clone();
    let dropped = eventually(Duration::from_secs(30), || {
        let client = client.clone();
        let lazy_url = lazy_url.clone();
        async move {
            for node in honest {
                let peers = get(&client, &format!("{}/peers", node.url)).await;
                if peers
                    .as_array()
                    .is_some_and(|p| p.iter().any(|u| u.as_str() == Some(&lazy_url)))
                {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(dropped, "an honest node still lists the lazy miner");
    let dropped_total = metric(&client, &n0, "crapcoin_peers_dropped_total").await
        + metric(&client, &n1, "crapcoin_peers_dropped_total").await
        + metric(&client, &n2, "crapcoin_peers_dropped_total").await;
    assert!(dropped_total > 0, "no honest node dropped the lazy miner");
    drop((lazy, n2, n1, n0));
}

/// Runs `crapcoin-node --plugin path` and returns its exit status and
/// stderr; it must exit on its own.
fn node_with_plugin(path: &Path) -> (Option<i32>, String) {
    let mut command = Command::new(bin("crapcoin-node"));
    command
        .args(["--listen", "127.0.0.1:0", "--plugin"])
        .arg(path)
        .env("RUST_LOG", "warn");
    let output = run_bounded(command, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("listening on"),
        "the node served with a bad plugin: {stdout}"
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[track_caller]
fn assert_refused(path: &Path, says: &str) {
    let (code, stderr) = node_with_plugin(path);
    assert!(
        code.is_some_and(|c| c != 0),
        "exit {code:?} for {}: {stderr}",
        path.display()
    );
    assert!(
        stderr.contains(&path.display().to_string()),
        "the message does not name {}: {stderr}",
        path.display()
    );
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
}

#[test]
fn a_missing_plugin_file_is_named_and_the_node_exits() {
    let path = scratch("missing").join(library_name("nothing_here"));
    assert_refused(&path, "no such file");
}

#[test]
fn a_plugin_that_is_not_a_library_is_named_and_the_node_exits() {
    let path = scratch("not-a-library").join(library_name("text"));
    std::fs::write(&path, "this is not a shared library\n").expect("writes");
    assert_refused(&path, "not a loadable library");
}

#[test]
fn a_library_without_the_declaration_is_named_and_the_node_exits() {
    let path = compile_library(
        "no_declaration",
        "#[no_mangle] pub extern \"C\" fn something_else() -> u32 { 7 }",
    );
    assert_refused(&path, "CRAPCOIN_PLUGIN_DECLARATION");
}
