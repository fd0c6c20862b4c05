//! Shared helpers of the watercooler tests: building the binaries it
//! starts, running it with piped stdio, reading its pids file, and checking
//! that no process it started is left. Every wait is bounded; every
//! process is killed when its guard drops.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The `watercooler` under test.
pub(crate) fn watercooler_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_watercooler"))
}

/// Makes sure `crapcoin-node`, `sauron` and the example plugin are built
/// beside `watercooler`: `cargo test -p crapcoin-launcher` builds only
/// this package's binaries. Builds the targets `cargo test --workspace`
/// builds (so features unify the same way and a fresh tree makes this a
/// no-op), once per test binary, bounded.
pub(crate) fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the launcher lives in the workspace");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the tmp dir is inside the target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command
            .args([
                "build",
                "--workspace",
                "--lib",
                "--bins",
                "--tests",
                "--examples",
            ])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("runs cargo");
        let end = Instant::now() + Duration::from_secs(1200);
        while child.try_wait().expect("waits").is_none() {
            if Instant::now() > end {
                let _ = child.kill();
                panic!("cargo build took longer than 20 minutes");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output().expect("output");
        assert!(
            output.status.success(),
            "cargo build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    let dir = watercooler_bin()
        .parent()
        .expect("the binary has a directory")
        .to_path_buf();
    for bin in ["crapcoin-node", "sauron"] {
        assert!(
            dir.join(bin).is_file(),
            "{bin} missing in {}",
            dir.display()
        );
    }
}

/// The example attacker plugin, built by [`ensure_built`].
pub(crate) fn example_plugin() -> PathBuf {
    let dir = watercooler_bin()
        .parent()
        .expect("the binary has a directory")
        .to_path_buf();
    dir.join(format!(
        "{}attacker_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// A running watercooler with piped stdin and stdout. Dropping it
/// SIGKILLs it and every process listed in its pids file.
pub(crate) struct Run {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Its `--data-dir` (kept until the guard drops).
    pub(crate) dir: tempfile::TempDir,
    /// Stdout lines seen so far.
    pub(crate) seen: Vec<String>,
}

impl Run {
    /// Starts `watercooler --data-dir TMP --plain ARGS` (small difficulty).
    pub(crate) fn start(args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("watercooler-test-")
            .tempdir()
            .expect("temp dir");
        let mut child = Command::new(watercooler_bin())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--plain", "--difficulty", "8"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawns watercooler");
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child: Some(child),
            stdin,
            lines,
            dir,
            seen: Vec::new(),
        }
    }

    /// PID of watercooler.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits (at most `limit`) for a stdout line containing `needle`.
    pub(crate) fn expect_line(&mut self, needle: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "no line with {needle:?} within {limit:?}; saw {:?}",
                        self.seen
                    )
                }
            }
        }
    }

    /// Types a command on its stdin.
    pub(crate) fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("writes stdin");
        stdin.flush().expect("flushes");
    }

    /// Sends `signal` to watercooler.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (at most `limit`) for it to exit; its exit code (`None` when
    /// killed by a signal).
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("waits") {
                self.child = None;
                return status.code();
            }
            assert!(
                Instant::now() < end,
                "watercooler still running after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every PID in the pids file.
    pub(crate) fn pids(&self) -> Vec<u32> {
        pids(self.dir.path())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self.pids() {
            if alive(pid, self.dir.path()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// PIDs listed in `DIR/pids` (`PID NAME` lines).
pub(crate) fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Whether `pid` is a live (not zombie) process whose command line
/// mentions `dir` — i.e. one watercooler started for this test, not a
/// recycled PID.
pub(crate) fn alive(pid: u32, dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?");
    if state == "Z" || state == "X" {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy())
}

/// Waits (at most `limit`) until none of `pids` is alive; returns the
/// survivors.
pub(crate) fn survivors(pids: &[u32], dir: &Path, limit: Duration) -> Vec<u32> {
    let end = Instant::now() + limit;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p, dir)).collect();
        if left.is_empty() || Instant::now() >= end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A blocking HTTP call (curl-free): method, URL, JSON body; status and
/// JSON answer.
pub(crate) fn http(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .no_proxy()
            .build()
            .expect("client");
        let mut request = client.request(method.parse().expect("method"), url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    })
}

/// The URL printed after `prefix` on a stdout line (trailing `/` and
/// anything after the URL dropped).
pub(crate) fn url_after(run: &mut Run, prefix: &str) -> String {
    let line = run.expect_line(prefix, Duration::from_secs(90));
    let rest = &line[line.find(prefix).expect("the prefix") + prefix.len()..];
    rest.split_whitespace()
        .next()
        .expect("a URL")
        .trim_end_matches('/')
        .to_owned()
}

/// Polls (bounded) Sauron's `/api/nodes` until it lists `want` nodes; their
/// names.
pub(crate) fn await_sauron_nodes(sauron: &str, want: usize) -> Vec<String> {
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, nodes) = http("GET", &format!("{sauron}/api/nodes"), None);
        assert_eq!(code, 200, "{nodes}");
        let names: Vec<String> = nodes
            .as_array()
            .or_else(|| nodes["items"].as_array())
            .expect("a list of nodes")
            .iter()
            .filter_map(|n| n["name"].as_str().map(str::to_owned))
            .collect();
        if names.len() >= want {
            return names;
        }
        assert!(
            std::time::Instant::now() < end,
            "Sauron lists only {names:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
