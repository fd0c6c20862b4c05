//! [`Spawner`]: the one thread that forks every child.
//!
//! Children are started with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel
//! kills them when watercooler dies, even by SIGKILL. The death signal is
//! tied to the *thread* that forked, not the process: a child forked from a
//! short-lived thread (a tokio blocking-pool thread, say) would be killed
//! as soon as that thread retires. So every fork happens on one dedicated
//! thread that lives as long as the process. Each child also gets its own
//! process group, so a Ctrl-C typed in the terminal reaches watercooler
//! only, and watercooler stops its children in order. A child may be
//! started at a lower CPU priority (a niceness): node processes are, so
//! their proof of work cannot starve Sauron and watercooler.
//!
//! [`Spawner::launch`] starts a server child (a node or Sauron) and waits
//! for its `listening on URL` line.

use std::fs::OpenOptions;
use std::io::{self, BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

/// Longest a child may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why [`Spawner::launch`] did not bring a child up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Its data directory could not be made.
    #[error("{}: {error}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// Its log file could not be opened.
    #[error("log file: {0}")]
    Log(io::Error),
    /// The spawn failed.
    #[error("{0}")]
    Spawn(io::Error),
    /// It did not print `listening on URL` in time (it was killed).
    #[error("it did not print `listening on URL` (see {})", log.display())]
    Silent {
        /// Its log file.
        log: PathBuf,
    },
}

type Request = (Command, i32, oneshot::Sender<io::Result<Child>>);

/// A handle to the spawner thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Spawner {
    requests: mpsc::SyncSender<Request>,
}

impl Spawner {
    /// Starts the spawner thread.
    ///
    /// The thread runs until every handle is dropped; keep one for as long
    /// as any child may run (watercooler keeps it until it exits).
    ///
    /// # Errors
    ///
    /// The OS refused to start a thread.
    pub fn start() -> io::Result<Self> {
        let (requests, rx) = mpsc::sync_channel::<Request>(64);
        std::thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                for (mut command, nice, reply) in rx {
                    let _ = reply.send(spawn_guarded(&mut command, nice));
                }
            })?;
        Ok(Self { requests })
    }

    /// Spawns `command` on the spawner thread, `nice` steps below
    /// watercooler's priority (0: the same; capped at niceness 19).
    ///
    /// # Errors
    ///
    /// The spawn failed (e.g. the executable is missing), or the spawner
    /// thread is gone.
    pub async fn spawn(&self, command: Command, nice: i32) -> io::Result<Child> {
        let (reply, answer) = oneshot::channel();
        let requests = self.requests.clone();
        // The queue is bounded; a full queue waits off the runtime threads.
        let sent =
            tokio::task::spawn_blocking(move || requests.send((command, nice, reply)).is_ok())
                .await
                .map_err(io::Error::other)?;
        if !sent {
            return Err(io::Error::other("the spawner thread is gone"));
        }
        answer
            .await
            .map_err(|_| io::Error::other("the spawner thread is gone"))?
    }
}

impl Spawner {
    /// Spawns `command` at niceness `nice` (stdout piped, stderr appended
    /// to `log`, `RUST_LOG` from `WATERCOOLER_NODE_LOG` or `warn`) after
    /// making `dir`; calls `spawned` with its PID as soon as it runs; then
    /// waits (at most 60 s) for its first stdout line,
    /// `listening on URL`, and answers the child and that URL. A child
    /// that does not print it is killed. Stdout keeps being drained so the
    /// child never blocks on a full pipe.
    ///
    /// # Errors
    ///
    /// [`LaunchError`].
    pub async fn launch(
        &self,
        name: &str,
        dir: &Path,
        log: &Path,
        mut command: Command,
        nice: i32,
        spawned: impl FnOnce(u32),
    ) -> Result<(Child, String), LaunchError> {
        std::fs::create_dir_all(dir).map_err(|error| LaunchError::Dir {
            dir: dir.to_owned(),
            error,
        })?;
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(LaunchError::Log)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .env(
                "RUST_LOG",
                std::env::var("WATERCOOLER_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            );
        let mut child = self
            .spawn(command, nice)
            .await
            .map_err(LaunchError::Spawn)?;
        spawned(child.id());
        let stdout = child.stdout.take().expect("stdout is piped");
        let (line_tx, line_rx) = oneshot::channel();
        // A plain thread: reading a pipe blocks. It ends when the child's
        // stdout closes, i.e. when the child exits.
        let _ = std::thread::Builder::new()
            .name(format!("{name}-stdout"))
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = line_tx.send(lines.next().and_then(Result::ok));
                // Keep draining so the child never blocks on a full pipe.
                for _ in lines {}
            });
        let line = tokio::time::timeout(START_TIMEOUT, line_rx).await;
        let url = match line {
            Ok(Ok(Some(line))) => line.strip_prefix("listening on ").map(str::to_owned),
            _ => None,
        };
        match url {
            Some(url) => Ok((child, url)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(LaunchError::Silent {
                    log: log.to_owned(),
                })
            }
        }
    }
}

/// Spawns with the death signal set, a process group of its own and
/// niceness `nice`.
#[allow(unsafe_code)]
fn spawn_guarded(command: &mut Command, nice: i32) -> io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id() as libc::pid_t;
    // `nice` is relative to watercooler's own niceness, as with nice(1).
    // SAFETY: getpriority(2) has no memory-safety preconditions.
    let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let target = (own + nice).min(19);
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (prctl, getppid, setpgid,
    // setpriority); it
    // allocates nothing and touches no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then the
            // signal will never come, so give up now.
            if libc::getppid() != parent {
                return Err(io::Error::other("watercooler exited during spawn"));
            }
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if target != own && libc::setpriority(libc::PRIO_PROCESS, 0, target) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Sends `signal` to process `pid`; false when it is gone.
#[allow(unsafe_code)]
pub fn signal(pid: u32, signal: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; pid is a child
    // watercooler started and has not reaped yet (reaped children are never
    // signalled), so it cannot name another process.
    unsafe { libc::kill(pid, signal) == 0 }
}
