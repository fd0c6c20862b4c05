//! The workspace's binaries as processes: found in the target directory
//! beside the test executable (and built there once per test process when
//! missing or stale), started with the `listening on` handshake, and
//! guarded: every guard kills its process (SIGKILL, by PID) when dropped.
//! Every wait is bounded.
//!
//! `CARGO_BIN_EXE_*` only names a package's own binaries, so tests outside
//! the package of `crapcoin-node`, `sauron` or `watercooler` use [`bin`].

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::http::{self, TOKEN};

/// The workspace's root directory (where its `Cargo.toml` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the kit lives in tests/kit of the workspace")
        .to_path_buf()
}

/// The profile directory the running test was built in
/// (`target/debug`): test executables sit in its `deps`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().expect("the executable has a directory");
    let dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps is inside the profile directory")
    } else {
        dir
    };
    dir.to_path_buf()
}

/// The target directory the running test was built in.
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("the profile directory is inside the target directory")
        .to_path_buf()
}

/// Runs `command` (stdin closed, output captured) to completion within
/// `limit`, killing it by PID past that.
///
/// # Panics
///
/// When it cannot start or takes longer than `limit`.
pub fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    // Drained while it runs: a chatty build must not block on a full pipe.
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    };
    let (out, err) = (drain(Box::new(stdout)), drain(Box::new(stderr)));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Makes sure the workspace's binaries and the example plugin are built
/// in [`target_dir`], building them once per test process (serialised
/// across threads; cargo's own lock serialises processes). It builds the
/// targets `cargo test --workspace` builds — `--lib --bins --tests
/// --examples` — so features unify the same way, a fresh tree makes it a
/// no-op, and the plugin links the very crapcoin-core build the node and
/// the test link.
///
/// # Panics
///
/// When cargo fails, takes longer than 20 minutes, or a binary is still
/// missing after it.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _serial = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    BUILT.get_or_init(|| {
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
            .arg(workspace_root().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir());
        if profile_dir().file_name().is_some_and(|n| n == "release") {
            command.arg("--release");
        }
        let output = run_bounded(command, Duration::from_secs(1200));
        assert!(
            output.status.success(),
            "cargo build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    let dir = profile_dir();
    for bin in ["crapcoin-node", "sauron", "watercooler"] {
        assert!(
            dir.join(bin).is_file(),
            "{bin} missing in {}",
            dir.display()
        );
    }
}

/// The workspace binary `name` (`crapcoin-node`, `sauron`, `watercooler`),
/// built first by [`ensure_built`].
pub fn bin(name: &str) -> PathBuf {
    ensure_built();
    profile_dir().join(name)
}

/// Starts the binary `bin` with `args` and waits (at most 60 s) for its
/// first stdout line, `listening on http://127.0.0.1:PORT`; answers the
/// child and that URL. Stdout keeps being drained so the child never
/// blocks on a full pipe; if the line does not come, the child is killed
/// before the test fails.
pub fn spawn_listening(bin: &Path, args: &[String]) -> (Child, String) {
    spawn_listening_env(bin, args, &[])
}

/// [`spawn_listening`] with `envs` set in the child's environment (and
/// `CRAPCOIN_ADMIN_TOKEN` only when `envs` sets it: the one the tests run
/// with never leaks into the processes they start).
pub fn spawn_listening_env(bin: &Path, args: &[String], envs: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove(TOKEN_ENV)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawns {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(60));
    let url = line
        .as_deref()
        .ok()
        .and_then(|line| line.strip_prefix("listening on "))
        .filter(|url| url.starts_with("http://127.0.0.1:"))
        .map(str::to_owned);
    match url {
        Some(url) => (child, url),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not print `listening on http://127.0.0.1:PORT` in time: {line:?}",
                bin.display()
            );
        }
    }
}

/// Kills (SIGKILL) and reaps `child` if it is still there.
fn kill_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends `signal` (`TERM`, `INT`, `KILL`, ...) to `pid`; whether `kill`
/// succeeded.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The environment variable a node takes its admin token from.
pub const TOKEN_ENV: &str = "CRAPCOIN_ADMIN_TOKEN";

/// Network arguments every test node process shares: difficulty 4, quick
/// maintenance, and blocks on demand (a test that wants a proof-of-work
/// schedule passes `--hash-share` and `--block-interval` and drops
/// `--on-demand` from these). The test admin [`TOKEN`] is not among them:
/// [`NodeProc`] hands it over in the environment, as nothing secret
/// belongs on a command line.
pub fn net_args() -> Vec<String> {
    [
        "--on-demand",
        "--difficulty",
        "4",
        "--maintenance-ms",
        "300",
        "--call-timeout-ms",
        "1000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A `crapcoin-node` process, killed (SIGKILL, by PID) when dropped.
pub struct NodeProc {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its `--data-dir`.
    pub data_dir: PathBuf,
    /// Its arguments (for a restart).
    pub args: Vec<String>,
}

impl NodeProc {
    /// Starts `crapcoin-node` on `data_dir` with `extra` arguments after
    /// [`net_args`]; waits (at most 60 s) for its `listening on` line.
    pub fn start(data_dir: &Path, extra: &[String]) -> Self {
        let mut args = net_args();
        args.extend(["--data-dir".to_owned(), data_dir.display().to_string()]);
        args.extend(extra.iter().cloned());
        Self::spawn(data_dir, args)
    }

    /// As [`NodeProc::start`], but mining on a proof-of-work schedule:
    /// [`net_args`] without `--on-demand` (pass `--hash-share` and
    /// `--block-interval` in `extra`; a share of 0 mines nothing).
    pub fn start_scheduled(data_dir: &Path, extra: &[String]) -> Self {
        let mut args: Vec<String> = net_args()
            .into_iter()
            .filter(|a| a != "--on-demand")
            .collect();
        args.extend(["--data-dir".to_owned(), data_dir.display().to_string()]);
        args.extend(extra.iter().cloned());
        Self::spawn(data_dir, args)
    }

    /// Starts it again with the same arguments (same data directory).
    pub fn restart(&self) -> Self {
        Self::spawn(&self.data_dir, self.args.clone())
    }

    fn spawn(data_dir: &Path, args: Vec<String>) -> Self {
        let (child, url) = spawn_listening_env(&bin("crapcoin-node"), &args, &[(TOKEN_ENV, TOKEN)]);
        Self {
            child: Some(child),
            url,
            data_dir: data_dir.to_path_buf(),
            args,
        }
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        kill_child(&mut self.child);
    }

    /// SIGTERM; waits (at most 20 s) for a clean exit and returns its
    /// status code.
    pub fn terminate(mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// A `sauron` process, killed (SIGKILL, by PID) when dropped.
pub struct SauronProc {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its arguments (for a restart).
    pub args: Vec<String>,
}

impl SauronProc {
    /// Starts `sauron` with `--data-dir data_dir` and `extra`; waits (at
    /// most 60 s) for its `listening on` line.
    pub fn start(data_dir: &Path, extra: &[String]) -> Self {
        let mut args = vec!["--data-dir".to_owned(), data_dir.display().to_string()];
        args.extend(extra.iter().cloned());
        Self::spawn(args)
    }

    /// Its arguments without `--listen`, for a restart.
    pub fn restart_args(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut skip = false;
        for arg in &self.args {
            if skip {
                skip = false;
            } else if arg == "--listen" {
                skip = true;
            } else {
                args.push(arg.clone());
            }
        }
        args
    }

    /// Starts `sauron` with `args` listening on `listen` (`HOST:PORT`).
    pub fn start_with(mut args: Vec<String>, listen: &str) -> Self {
        args.extend(["--listen".to_owned(), listen.to_owned()]);
        Self::spawn(args)
    }

    fn spawn(args: Vec<String>) -> Self {
        let (child, url) = spawn_listening(&bin("sauron"), &args);
        Self {
            child: Some(child),
            url,
            args,
        }
    }

    /// `HOST:PORT` it listens on.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        kill_child(&mut self.child);
    }
}

impl Drop for SauronProc {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// A running watercooler with piped stdin and stdout. Dropping it
/// SIGKILLs it and every process listed in its pids file.
pub struct Watercooler {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Its `--data-dir` (kept until the guard drops).
    pub dir: tempfile::TempDir,
    /// Stdout lines seen so far.
    pub seen: Vec<String>,
}

impl Watercooler {
    /// Starts `watercooler --data-dir TMP --plain --difficulty 8 ARGS`.
    pub fn start(args: &[&str]) -> Self {
        Self::start_env(args, &[])
    }

    /// [`Watercooler::start`] with `envs` added to its environment (e.g.
    /// `DOCKER_HOST` for `--runtime docker`).
    pub fn start_env(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("watercooler-test-")
            .tempdir()
            .expect("temp dir");
        let mut child = Command::new(bin("watercooler"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--plain", "--difficulty", "8"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
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
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits (at most `limit`) for a stdout line containing `needle`.
    pub fn expect_line(&mut self, needle: &str, limit: Duration) -> String {
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

    /// The URL printed after `prefix` on a stdout line (trailing `/` and
    /// anything after the URL dropped); waits at most 90 s for the line.
    pub fn url_after(&mut self, prefix: &str) -> String {
        let line = self.expect_line(prefix, Duration::from_secs(90));
        let rest = &line[line.find(prefix).expect("the prefix") + prefix.len()..];
        rest.split_whitespace()
            .next()
            .expect("a URL")
            .trim_end_matches('/')
            .to_owned()
    }

    /// Types a command on its stdin.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("writes stdin");
        stdin.flush().expect("flushes");
    }

    /// Sends `signal` (`INT`, `TERM`, ...) to watercooler.
    pub fn signal(&self, name: &str) {
        assert!(signal(self.pid(), name), "kill -{name} failed");
    }

    /// Waits (at most `limit`) for it to exit; its exit code (`None` when
    /// killed by a signal).
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
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
    pub fn pids(&self) -> Vec<u32> {
        pids(self.dir.path())
    }
}

impl Drop for Watercooler {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        for pid in self.pids() {
            if alive(pid, self.dir.path()) {
                signal(pid, "KILL");
            }
        }
    }
}

/// PIDs listed in `DIR/pids` (`PID NAME` lines).
pub fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Whether `pid` is a live (not zombie) process whose command line
/// mentions `dir` — i.e. one watercooler started for this test, not a
/// recycled PID.
pub fn alive(pid: u32, dir: &Path) -> bool {
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

/// The JSON report watercooler wrote at `path` (`--report`).
///
/// # Panics
///
/// When it was not written or is not JSON.
pub fn read_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

/// The `pids` of a watercooler report: every process it started.
pub fn report_pids(report: &serde_json::Value) -> Vec<u32> {
    report["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect()
}

/// Waits (at most `limit`) until none of `pids` is alive; returns the
/// survivors.
pub fn survivors(pids: &[u32], dir: &Path, limit: Duration) -> Vec<u32> {
    let end = Instant::now() + limit;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p, dir)).collect();
        if left.is_empty() || Instant::now() >= end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls (at most 60 s) Sauron's `/api/nodes` until it lists `want`
/// nodes; their names.
pub fn await_sauron_nodes(sauron: &str, want: usize) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, nodes) = http::blocking("GET", &format!("{sauron}/api/nodes"), None);
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
        assert!(Instant::now() < end, "Sauron lists only {names:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}
