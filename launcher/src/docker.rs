//! [`Runtime`]: where the fleet's members run — local processes (the
//! default) or Docker containers (`watercooler --runtime docker`).
//!
//! The fleet builds each member's command line as for a local process
//! ([`crate::cmdline`]) and hands it to [`Runtime::wrap`]: the process
//! runtime runs it as it is; the Docker runtime turns it into
//! `docker run --rm --init --network host --user UID:GID -v DIR:/data
//! --entrypoint PROGRAM IMAGE ARGS` in the foreground, so the `docker`
//! client is the child the spawner starts, and the container's stdout
//! (`listening on URL`) and stderr (the node's log) come through it. Every
//! container is named `crapcoin-RUN-NAME` and labelled
//! `crapcoin.run=RUN`; [`Runtime::kill`] (`docker kill`, SIGKILL),
//! [`Runtime::pause`]/[`Runtime::resume`] (`docker pause`/`unpause`) and
//! [`Runtime::terminate`] (SIGTERM) act on the container, and
//! [`Runtime::clean_up`] removes every container the run created, and
//! nothing else. Host networking keeps every address on 127.0.0.1, so the
//! URLs, the Boss, Sauron's dashboard and the verdict work as they do with
//! processes; the data directory is bind-mounted from the run's directory,
//! so rehiring on old data, rollback copies and the admin cookie work
//! from the host.
//!
//! Everything a user can get wrong is refused before anything starts
//! ([`Docker::check`] and the limits' parsers, [`parse_cpus`],
//! [`parse_memory`], [`check_image_name`], [`check_plugin_path`]).

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the image holds attacker plugins: a `--plugin` path under
/// `--runtime docker` must name a file here.
pub const PLUGIN_DIR: &str = "/usr/local/lib/crapcoin/plugins";
/// Where the image holds `crapcoin-node`.
pub const NODE_BIN: &str = "/usr/local/bin/crapcoin-node";
/// Where the image holds `sauron`.
pub const SAURON_BIN: &str = "/usr/local/bin/sauron";
/// Where a container sees its member's data directory.
pub const DATA: &str = "/data";
/// The label every container of a run carries (`crapcoin.run=RUN`).
pub const RUN_LABEL: &str = "crapcoin.run";

/// Longest one `docker` client call may take (an answer from the daemon;
/// `docker stop`-like waits are bounded separately).
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// The image watercooler runs by default: `crapcoin:VERSION`.
pub fn default_image() -> String {
    format!("crapcoin:{}", env!("CARGO_PKG_VERSION"))
}

/// Where the fleet's members run (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Local processes (the default).
    #[default]
    Process,
    /// One Docker container each, host networking.
    Docker,
}

/// Resource limits of each node container (`--node-cpus`,
/// `--node-memory`); Sauron runs without.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// CPUs (`docker run --cpus`).
    pub cpus: Option<f64>,
    /// Memory in bytes (`docker run --memory`).
    pub memory: Option<u64>,
}

/// Parses `--node-cpus`: a number of CPUs above 0.01 and at most the
/// host's (what the daemon would accept).
///
/// # Errors
///
/// Why it is refused.
pub fn parse_cpus(s: &str) -> Result<f64, String> {
    let host = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.01..=host as f64).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of CPUs from 0.01 to {host} (this host's)"
        )),
    }
}

/// Smallest memory limit the daemon accepts (6 MiB).
const MIN_MEMORY: u64 = 6 << 20;

/// Parses `--node-memory`: bytes with an optional unit `b`, `k`, `m` or
/// `g` (powers of 1024, as docker reads them), at least 6 MiB and at most
/// 1 TiB.
///
/// # Errors
///
/// Why it is refused.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'b')) => (&t[..i], 0),
        Some((i, 'k')) => (&t[..i], 10),
        Some((i, 'm')) => (&t[..i], 20),
        Some((i, 'g')) => (&t[..i], 30),
        _ => (t.as_str(), 0),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift));
    match bytes {
        Some(b) if (MIN_MEMORY..=1 << 40).contains(&b) => Ok(b),
        _ => Err(format!(
            "{s:?} is not a memory size from 6m to 1024g (a number with b, k, m or g)"
        )),
    }
}

/// Checks `--image`: a docker image reference (letters, digits and
/// `._-/:@`, not starting with `-`).
///
/// # Errors
///
/// Why it is refused.
pub fn check_image_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(['-', '.', ':', '/', '@'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not an image reference (e.g. crapcoin:0.1.0)"
        ))
    }
}

/// Checks that `path`, a `--plugin` under `--runtime docker`, names a
/// file in the image's plugin directory ([`PLUGIN_DIR`]).
///
/// # Errors
///
/// Why it is refused.
pub fn check_plugin_path(path: &Path) -> Result<(), String> {
    let inside = path
        .strip_prefix(PLUGIN_DIR)
        .ok()
        .filter(|rest| {
            rest.components().count() == 1
                && rest
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .is_some();
    if inside {
        Ok(())
    } else {
        Err(format!(
            "--plugin {}: with --runtime docker a plugin is a file of the image's {PLUGIN_DIR}/",
            path.display()
        ))
    }
}

/// What a member is, for the container it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sauron: no limits, the default CPU weight.
    Sauron,
    /// A node, `nice` steps below watercooler's priority: the node limits
    /// and a CPU weight as the kernel gives that niceness.
    Node {
        /// Its niceness (0 to 19).
        nice: i32,
    },
}

/// The CPU weight (`--cpu-shares`, 1024 for niceness 0) the kernel gives
/// a process of niceness `nice`: each step is about 25% less.
fn cpu_shares(nice: i32) -> u64 {
    let weight = 1024.0 / 1.25_f64.powi(nice.clamp(0, 19));
    (weight.round() as u64).max(2)
}

/// A run's Docker containers: how they are made, and which ones it made.
#[derive(Debug)]
pub struct Docker {
    cli: OsString,
    image: String,
    run: String,
    limits: Limits,
    user: String,
    /// Names of the containers created so far, in order.
    created: Mutex<Vec<String>>,
}

impl Docker {
    /// The Docker runtime of one run: containers of `image`, named after
    /// `run` (letters, digits and `-`), nodes limited by `limits`, running
    /// as watercooler's own user. The client is `docker` on the `PATH`
    /// (`WATERCOOLER_DOCKER` overrides); `DOCKER_HOST` chooses the daemon
    /// as for any docker command.
    pub fn new(image: String, run: String, limits: Limits) -> Self {
        let cli = std::env::var_os("WATERCOOLER_DOCKER").unwrap_or_else(|| "docker".into());
        let (uid, gid) = own_ids();
        Self {
            cli,
            image,
            run,
            limits,
            user: format!("{uid}:{gid}"),
            created: Mutex::new(Vec::new()),
        }
    }

    /// The image.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The run's name, in every container's name and label.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The container name of member `name`: `crapcoin-RUN-NAME`.
    pub fn container(&self, name: &str) -> String {
        format!("crapcoin-{}-{name}", self.run)
    }

    /// Names of the containers created so far.
    pub fn created(&self) -> Vec<String> {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn docker(&self) -> Command {
        let mut command = Command::new(&self.cli);
        command.stdin(Stdio::null());
        command
    }

    /// Runs `docker ARGS` to its end (at most `limit`, then killed).
    fn call(&self, args: &[&str], limit: Duration) -> std::io::Result<Output> {
        let mut command = self.docker();
        command.args(args);
        run_bounded(command, limit)
    }

    /// Runs `docker ARGS`; `Err` with its message when it fails.
    fn call_ok(&self, args: &[&str]) -> Result<String, String> {
        match self.call(args, CLI_TIMEOUT) {
            Ok(out) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
            }
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Checks, before anything starts, that a daemon answers, that the
    /// image is there (nothing is pulled) and that each of `plugins` is a
    /// file of it.
    ///
    /// # Errors
    ///
    /// What is wrong and what to do about it.
    pub fn check(&self, plugins: &[PathBuf]) -> Result<(), String> {
        let cli = self.cli.to_string_lossy();
        self.call_ok(&["version", "--format", "{{.Server.Version}}"])
            .map_err(|e| {
                format!(
                    "--runtime docker: no docker daemon answers `{cli} version` ({e}); \
                     start dockerd, or point DOCKER_HOST at one"
                )
            })?;
        self.call_ok(&["image", "inspect", "--format", "{{.Id}}", &self.image])
            .map_err(|e| {
                format!(
                    "--runtime docker: image {} is not on this docker host ({e}); \
                     build it (docs/docker.md) or name another with --image",
                    self.image
                )
            })?;
        if plugins.is_empty() {
            return Ok(());
        }
        // A container created, never started, to look inside the image.
        let probe = self.container("image-check");
        self.remember(&probe);
        let created = self.call_ok(&[
            "create",
            "--name",
            &probe,
            "--label",
            &format!("{RUN_LABEL}={}", self.run),
            "--network",
            "none",
            "--entrypoint",
            NODE_BIN,
            &self.image,
        ]);
        let result = created
            .map_err(|e| format!("--runtime docker: looking inside {}: {e}", self.image))
            .and_then(|_| {
                plugins.iter().try_for_each(|plugin| {
                    let source = format!("{probe}:{}", plugin.display());
                    match self.call_ok(&["cp", &source, "-"]) {
                        Ok(_) => Ok(()),
                        Err(e) => Err(format!(
                            "--plugin {}: not in image {} ({e})",
                            plugin.display(),
                            self.image
                        )),
                    }
                })
            });
        let _ = self.call(&["rm", "-f", &probe], CLI_TIMEOUT);
        result
    }

    fn remember(&self, container: &str) -> bool {
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if created.iter().any(|c| c == container) {
            return false;
        }
        created.push(container.to_owned());
        true
    }

    /// The `docker run` command running `command` (a local command line
    /// from [`crate::cmdline`]) as member `name` in its container: its
    /// program as the entrypoint, its arguments (its data directory
    /// `data_dir` read as [`DATA`], where it is mounted), its environment
    /// passed by name (values stay off the command line), `RUST_LOG`
    /// passed through. A container of the same name left by an earlier
    /// process of the member is removed first.
    pub fn wrap(&self, name: &str, command: &Command, data_dir: &Path, role: Role) -> Command {
        let container = self.container(name);
        if !self.remember(&container) {
            // A rehire: the fired container is normally gone (--rm).
            let _ = self.call(&["rm", "-f", &container], CLI_TIMEOUT);
        }
        let host_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        let mut run = self.docker();
        run.args(["run", "--rm", "--init", "--pull", "never"])
            .args(["--name", &container])
            .args(["--label", &format!("{RUN_LABEL}={}", self.run)])
            .args(["--network", "host", "--user", &self.user])
            .arg("--volume")
            .arg(volume(&host_dir))
            .args(["--env", "RUST_LOG"]);
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                run.arg("--env").arg(key).env(key, value);
            }
        }
        if let Role::Node { nice } = role {
            run.args(["--cpu-shares", &cpu_shares(nice).to_string()]);
            if let Some(cpus) = self.limits.cpus {
                run.args(["--cpus", &cpus.to_string()]);
            }
            if let Some(memory) = self.limits.memory {
                // No swap beyond the limit.
                let bytes = memory.to_string();
                run.args(["--memory", &bytes, "--memory-swap", &bytes]);
            }
        }
        run.arg("--entrypoint")
            .arg(command.get_program())
            .arg(&self.image);
        for arg in command.get_args() {
            if Path::new(arg) == data_dir || Path::new(arg) == host_dir {
                run.arg(DATA);
            } else {
                run.arg(arg);
            }
        }
        run
    }

    /// `docker kill` (SIGKILL) member `name`'s container, unpausing it
    /// first when `paused`.
    pub fn kill(&self, name: &str, paused: bool) {
        let container = self.container(name);
        if paused {
            let _ = self.call(&["unpause", &container], CLI_TIMEOUT);
        }
        if let Err(e) = self.call_ok(&["kill", &container]) {
            tracing::debug!(%container, error = %e, "docker kill");
        }
    }

    /// `docker pause` member `name`'s container; false when it failed.
    pub fn pause(&self, name: &str) -> bool {
        self.call_ok(&["pause", &self.container(name)]).is_ok()
    }

    /// `docker unpause` member `name`'s container; false when it failed.
    pub fn resume(&self, name: &str) -> bool {
        self.call_ok(&["unpause", &self.container(name)]).is_ok()
    }

    /// Asks the containers of `names` to stop (SIGTERM), unpausing the
    /// `paused` ones first; one call each.
    pub fn terminate(&self, names: &[String], paused: &[String]) {
        let containers =
            |names: &[String]| -> Vec<String> { names.iter().map(|n| self.container(n)).collect() };
        if !paused.is_empty() {
            let mut args = vec!["unpause".to_owned()];
            args.extend(containers(paused));
            let _ = self.call(&strs(&args), CLI_TIMEOUT);
        }
        if !names.is_empty() {
            let mut args = vec!["kill".to_owned(), "--signal".into(), "TERM".into()];
            args.extend(containers(names));
            let _ = self.call(&strs(&args), CLI_TIMEOUT);
        }
    }

    /// Removes (`docker rm -f`) every container this run created since
    /// the last call, and no other; answers how many were still there.
    pub fn remove_all(&self) -> usize {
        let created = std::mem::take(&mut *self.created.lock().unwrap_or_else(|p| p.into_inner()));
        if created.is_empty() {
            return 0;
        }
        let mut args = vec!["rm".to_owned(), "-f".into()];
        args.extend(created);
        match self.call(&strs(&args), CLI_TIMEOUT) {
            Ok(out) => String::from_utf8_lossy(&out.stdout).lines().count(),
            Err(e) => {
                tracing::warn!(error = %e, run = %self.run, "removing the run's containers");
                0
            }
        }
    }
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `HOST:/data`, as `--volume` takes it.
fn volume(host_dir: &Path) -> OsString {
    let mut spec = host_dir.as_os_str().to_owned();
    spec.push(":");
    spec.push(DATA);
    spec
}

/// Watercooler's own user and group IDs.
#[allow(unsafe_code)]
fn own_ids() -> (u32, u32) {
    // SAFETY: getuid(2) and getgid(2) always succeed and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Runs `command` (output captured) to its end within `limit`, killing it
/// past that.
fn run_bounded(mut command: Command, limit: Duration) -> std::io::Result<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{command:?} took longer than {limit:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Where the fleet's members run: the seam between the fleet and the
/// processes or containers.
#[derive(Debug, Default)]
pub enum Runtime {
    /// Local processes, signalled by PID.
    #[default]
    Process,
    /// Docker containers.
    Docker(Docker),
}

impl Runtime {
    /// The command that runs member `name`'s `command` here.
    pub fn wrap(&self, name: &str, command: Command, data_dir: &Path, role: Role) -> Command {
        match self {
            Self::Process => command,
            Self::Docker(docker) => docker.wrap(name, &command, data_dir, role),
        }
    }

    /// Kills member `name` at once (SIGKILL), whose current child is
    /// `child`; `paused` when it is paused. Does not reap.
    pub fn kill(&self, name: &str, child: &mut Child, paused: bool) {
        match self {
            Self::Process => {
                let _ = child.kill();
            }
            Self::Docker(docker) => {
                docker.kill(name, paused);
                // The client exits with its container; this makes sure.
                let _ = child.kill();
            }
        }
    }

    /// Pauses member `name` (SIGSTOP, `docker pause`); false when it
    /// failed.
    pub fn pause(&self, name: &str, child: &Child) -> bool {
        match self {
            Self::Process => crate::spawn::signal(child.id(), libc::SIGSTOP),
            Self::Docker(docker) => docker.pause(name),
        }
    }

    /// Resumes member `name` (SIGCONT, `docker unpause`); false when it
    /// failed.
    pub fn resume(&self, name: &str, child: &Child) -> bool {
        match self {
            Self::Process => crate::spawn::signal(child.id(), libc::SIGCONT),
            Self::Docker(docker) => docker.resume(name),
        }
    }

    /// Asks every member of `members` (name, child, paused) to stop:
    /// SIGCONT and SIGTERM to processes; unpause and SIGTERM to
    /// containers.
    pub fn terminate(&self, members: &[(String, &Child, bool)]) {
        match self {
            Self::Process => {
                for (_, child, _) in members {
                    crate::spawn::signal(child.id(), libc::SIGCONT);
                    crate::spawn::signal(child.id(), libc::SIGTERM);
                }
            }
            Self::Docker(docker) => {
                let names: Vec<String> = members.iter().map(|(n, _, _)| n.clone()).collect();
                let paused: Vec<String> = members
                    .iter()
                    .filter(|(_, _, p)| *p)
                    .map(|(n, _, _)| n.clone())
                    .collect();
                docker.terminate(&names, &paused);
            }
        }
    }

    /// Cleans up after every member is stopped: removes the run's
    /// containers (nothing to do for processes).
    pub fn clean_up(&self) {
        if let Self::Docker(docker) = self {
            let created = docker.created().len();
            if created > 0 {
                let left = docker.remove_all();
                tracing::info!(run = %docker.run(), created, left, "removed the run's containers");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_docker_reads_them() {
        assert_eq!(parse_memory("256m"), Ok(256 << 20));
        assert_eq!(parse_memory("1G"), Ok(1 << 30));
        assert_eq!(parse_memory("7340032"), Ok(7 << 20));
        for bad in [
            "",
            "m",
            "5m",
            "-1m",
            "1.5g",
            "2048g",
            "12q",
            "99999999999999999999g",
        ] {
            assert!(parse_memory(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        for bad in ["0", "0.001", "-1", "NaN", "inf", "1e9", "two"] {
            assert!(parse_cpus(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_plugins_of_the_image_directory_pass() {
        assert!(check_plugin_path(Path::new("/usr/local/lib/crapcoin/plugins/libx.so")).is_ok());
        for bad in [
            "/usr/local/lib/crapcoin/plugins",
            "/usr/local/lib/crapcoin/plugins/../libx.so",
            "/usr/local/lib/crapcoin/plugins/a/libx.so",
            "target/debug/libattacker_plugin.so",
            "/tmp/libx.so",
        ] {
            assert!(check_plugin_path(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(check_image_name("crapcoin:0.1.0").is_ok());
        assert!(check_image_name("registry.example/x/crapcoin@sha256:ab").is_ok());
        for bad in ["", "-x", "a b", "crap;coin", ":tag"] {
            assert!(check_image_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nodes_get_the_weight_of_their_niceness() {
        assert_eq!(cpu_shares(0), 1024);
        assert_eq!(cpu_shares(19), 15);
        assert_eq!(cpu_shares(40), 15);
    }

    #[test]
    fn a_node_line_becomes_a_container_with_host_networking() {
        let docker = Docker::new(
            "crapcoin:test".into(),
            "r1".into(),
            Limits {
                cpus: Some(0.5),
                memory: Some(256 << 20),
            },
        );
        let mut node = Command::new(NODE_BIN);
        node.args(["--listen", "127.0.0.1:0", "--data-dir", "/runs/x/bigload-1"])
            .env("CRAPCOIN_ADMIN_TOKEN", "secret");
        let run = docker.wrap(
            "bigload-1",
            &node,
            Path::new("/runs/x/bigload-1"),
            Role::Node { nice: 19 },
        );
        let args: Vec<String> = run
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        let (uid, gid) = own_ids();
        assert_eq!(
            line,
            format!(
                "run --rm --init --pull never --name crapcoin-r1-bigload-1 \
                 --label crapcoin.run=r1 --network host --user {uid}:{gid} \
                 --volume /runs/x/bigload-1:/data --env RUST_LOG \
                 --env CRAPCOIN_ADMIN_TOKEN --cpu-shares 15 --cpus 0.5 \
                 --memory 268435456 --memory-swap 268435456 \
                 --entrypoint /usr/local/bin/crapcoin-node crapcoin:test \
                 --listen 127.0.0.1:0 --data-dir /data"
            )
        );
        assert!(!line.contains("secret"), "the token stays off the line");
        let token = run
            .get_envs()
            .find(|(k, _)| *k == "CRAPCOIN_ADMIN_TOKEN")
            .and_then(|(_, v)| v);
        assert_eq!(token, Some(std::ffi::OsStr::new("secret")));
        assert_eq!(docker.created(), ["crapcoin-r1-bigload-1"]);
        // Sauron gets no limits.
        let sauron = docker.wrap(
            "sauron",
            &Command::new(SAURON_BIN),
            Path::new("/runs/x/sauron"),
            Role::Sauron,
        );
        let line: Vec<String> = sauron
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            !line
                .iter()
                .any(|a| a.starts_with("--cpu") || a == "--memory")
        );
    }
}
