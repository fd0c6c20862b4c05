//! [`Spawner`]: the one thread that forks every child.
//!
//! Children are started with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel
//! kills them when watercooler dies, even by SIGKILL. The death signal is
//! tied to the *thread* that forked, not the process: a child forked from a
//! short-lived thread (a tokio blocking-pool thread, say) would be killed
//! as soon as that thread retires. So every fork happens on one dedicated
//! thread that lives as long as the process. Each child also gets its own
//! process group, so a Ctrl-C typed in the terminal reaches watercooler
//! only, and watercooler stops its children in order.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;

use tokio::sync::oneshot;

type Request = (Command, oneshot::Sender<io::Result<Child>>);

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
                for (mut command, reply) in rx {
                    let _ = reply.send(spawn_guarded(&mut command));
                }
            })?;
        Ok(Self { requests })
    }

    /// Spawns `command` on the spawner thread.
    ///
    /// # Errors
    ///
    /// The spawn failed (e.g. the executable is missing), or the spawner
    /// thread is gone.
    pub async fn spawn(&self, command: Command) -> io::Result<Child> {
        let (reply, answer) = oneshot::channel();
        let requests = self.requests.clone();
        // The queue is bounded; a full queue waits off the runtime threads.
        let sent = tokio::task::spawn_blocking(move || requests.send((command, reply)).is_ok())
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

/// Spawns with the death signal set and a process group of its own.
#[allow(unsafe_code)]
fn spawn_guarded(command: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (prctl, getppid, setpgid); it
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
