//! [`Fleet`]: the node processes watercooler runs, and Sauron: their
//! lifecycle.
//!
//! Every member has a name (`bigload-N` for honest nodes, `shit-N` for
//! misbehaving ones), its own data directory (`DIR/NAME`), an admin token
//! and a seed derived from the run's seed. Hiring starts a process, firing
//! SIGKILLs it, pausing SIGSTOPs it; rehiring starts it again on the same
//! data directory, the node's crash recovery in action. The fleet never
//! holds a lock across an `.await`. Where the processes run is the
//! fleet's [`Runtime`]: local processes (the default), or Docker
//! containers, where firing is `docker kill` and pausing `docker pause`
//! ([`crate::docker`]).
//!
//! Command lines come from [`crate::cmdline`]; what the nodes say when
//! polled is [`crate::watch`]'s. The fleet also carries the run's one
//! [`Client`] (it pauses auto mode on nodes it starts while auto mode is
//! paused) and its [`TaskTracker`], which everything steering the fleet
//! spawns on and the end of the run awaits.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;
use tokio_util::task::TaskTracker;

use crate::client::Client;
use crate::cmdline::{self, Bootstrap, Kind, Settings};
use crate::docker::{Role, Runtime};
use crate::spawn::{self, Spawner};

/// How long children get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Admin calls in flight at once.
const CONCURRENCY: usize = 16;

/// Where a member is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Started, not yet listening.
    Starting,
    /// Listening.
    Running,
    /// SIGSTOPped.
    Paused,
    /// SIGKILLed by the Boss or by hand.
    Fired,
    /// Exited on its own (or never came up).
    Exited,
}

/// One member as shown by `status`, the control API and the report.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// `bigload-N` or `shit-N`.
    pub name: String,
    /// Its behaviour (`honest`, a catalogue name, `plugin:FILE`).
    pub behaviour: String,
    /// Whether it is honest.
    pub honest: bool,
    /// Where it is in its life.
    pub state: State,
    /// Its URL while it runs (the last one after).
    pub url: Option<String>,
    /// PID of the current (or last) process.
    pub pid: Option<u32>,
    /// Processes started for it so far.
    pub starts: u32,
}

/// A running member, as polls and the Boss need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Whether it is honest.
    pub honest: bool,
    /// Which of its processes runs (1 for the first): counters restart
    /// with each.
    pub start: u32,
}

struct Member {
    name: String,
    kind: Kind,
    data_dir: PathBuf,
    token: String,
    seed: u64,
    state: State,
    url: Option<String>,
    child: Option<Child>,
    starts: u32,
    /// Its hash power share (kept across restarts).
    hash_share: f64,
}

impl Member {
    /// Its URL and admin token, while it has a URL.
    fn admin_target(&self) -> Option<(String, String)> {
        Some((self.url.clone()?, self.token.clone()))
    }
}

/// Counts of what happened to the fleet.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    /// Nodes hired (initial ones included).
    pub hired: u64,
    /// Nodes fired (SIGKILL), by the Boss or by hand.
    pub fired: u64,
    /// Nodes paused (SIGSTOP) by the Boss.
    pub paused: u64,
    /// Fired nodes started again on their data.
    pub rehired: u64,
    /// Paused nodes resumed.
    pub resumed: u64,
}

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No member of that name.
    #[error("no node named {0:?}")]
    Unknown(String),
    /// The member is not in a state the operation applies to.
    #[error("{name} is {state:?}")]
    State {
        /// The member.
        name: String,
        /// Its state.
        state: State,
    },
    /// A process could not be started.
    #[error("starting {name}: {reason}")]
    Start {
        /// The member (or `sauron`).
        name: String,
        /// What went wrong (shown in this error's message, not as its
        /// source, so a chain prints it once).
        reason: spawn::LaunchError,
    },
    /// The fleet is shutting down.
    #[error("shutting down")]
    Closed,
    /// Copying or restoring a node's data failed.
    #[error("{name}'s data: {reason}")]
    Data {
        /// The member.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Copies of a node's database kept for rollbacks.
const COPIES_KEPT: usize = 2;

/// The files of a node's database in its data directory (the database,
/// its write-ahead log and shared memory index); the wallet key and
/// anything else stay.
fn db_files(dir: &Path) -> Vec<PathBuf> {
    let db = crapcoin_node::store::DB_FILE;
    [db.to_owned(), format!("{db}-wal"), format!("{db}-shm")]
        .into_iter()
        .map(|f| dir.join(f))
        .collect()
}

/// The copies of a node's database, oldest first: `COPIES/N`.
fn copies(root: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    found.sort();
    found
}

/// What a rollback restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restored {
    /// The copy taken at the node's N-th stop by the Boss.
    Copy(u64),
    /// No earlier copy: the database is gone (the node starts from
    /// genesis; its wallet key stays).
    Nothing,
}

struct Inner {
    members: Vec<Member>,
    next_honest: u32,
    next_other: u32,
    tally: Tally,
    pids: Vec<u32>,
    closed: bool,
}

/// The running processes. Shared as `Arc<Fleet>`.
pub struct Fleet {
    settings: Settings,
    spawner: Spawner,
    runtime: Runtime,
    client: Client,
    tasks: TaskTracker,
    inner: Mutex<Inner>,
    sauron: Mutex<Option<(String, Child)>>,
    pids_file: PathBuf,
    /// Auto mode is paused: nodes started from now on are paused too.
    auto_paused: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("data_dir", &self.settings.data_dir)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// An empty fleet; `pids` in the data directory lists every process it
    /// starts (`PID NAME` per line). `client` and `tasks` are the run's.
    pub fn new(settings: Settings, spawner: Spawner, client: Client, tasks: TaskTracker) -> Self {
        let pids_file = settings.data_dir.join("pids");
        Self {
            settings,
            spawner,
            runtime: Runtime::Process,
            client,
            tasks,
            inner: Mutex::new(Inner {
                members: Vec::new(),
                next_honest: 0,
                next_other: 0,
                tally: Tally::default(),
                pids: Vec::new(),
                closed: false,
            }),
            sauron: Mutex::new(None),
            pids_file,
            auto_paused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The same fleet, its members run by `runtime` (local processes by
    /// default).
    pub fn with_runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = runtime;
        self
    }

    /// Where its members run.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The run's HTTP client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The run's tasks: spawn on it whatever the end of the run must
    /// await.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// Sauron's URL when it runs.
    pub fn sauron_url(&self) -> Option<String> {
        self.sauron
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(url, _)| url.clone())
    }

    fn record_pid(&self, pid: u32, name: &str) {
        self.lock().pids.push(pid);
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.pids_file)
            .and_then(|mut f| writeln!(f, "{pid} {name}"));
        if let Err(e) = written {
            tracing::warn!(error = %e, file = %self.pids_file.display(), "writing the pids file");
        }
    }

    /// Every PID started so far (Sauron's included).
    pub fn pids(&self) -> Vec<u32> {
        self.lock().pids.clone()
    }

    /// Starts Sauron with `--control-url control_url`; returns its URL.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] when it does not come up.
    pub async fn start_sauron(&self, control_url: &str) -> Result<String, Error> {
        let dir = self.settings.data_dir.join("sauron");
        let command = self.runtime.wrap(
            "sauron",
            cmdline::sauron(&self.settings, control_url, &dir),
            &dir,
            Role::Sauron,
        );
        let (child, url) = self.launch("sauron", &dir, command, 0).await?;
        *self.sauron.lock().unwrap_or_else(|p| p.into_inner()) = Some((url.clone(), child));
        Ok(url)
    }

    /// Spawns `command` at niceness `nice` (stdout piped, stderr to
    /// `DIR/NAME.log`) and waits for its `listening on URL` line
    /// ([`Spawner::launch`]); its PID is recorded as soon as it runs.
    async fn launch(
        &self,
        name: &str,
        dir: &Path,
        command: Command,
        nice: i32,
    ) -> Result<(Child, String), Error> {
        let log = self.settings.data_dir.join(format!("{name}.log"));
        self.spawner
            .launch(name, dir, &log, command, nice, |pid| {
                self.record_pid(pid, name);
            })
            .await
            .map_err(|reason| Error::Start {
                name: name.to_owned(),
                reason,
            })
    }

    /// Hires a node of `kind`; returns its name once it listens.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] when the process does not come up (the member stays
    /// listed as exited).
    pub async fn hire(&self, kind: Kind) -> Result<String, Error> {
        let name = {
            let mut inner = self.lock();
            if inner.closed {
                return Err(Error::Closed);
            }
            let name = if kind.is_honest() {
                inner.next_honest += 1;
                format!("bigload-{}", inner.next_honest)
            } else {
                inner.next_other += 1;
                format!("shit-{}", inner.next_other)
            };
            let index = inner.members.len() as u64;
            // A node hired later gets the share its kind got at start, so
            // the fleet's power grows with hires and shrinks with firings
            // (T is the target of the starting fleet).
            let hash_share = if kind.is_honest() {
                self.settings.shares.honest
            } else {
                self.settings.shares.misbehaving
            };
            inner.members.push(Member {
                hash_share,
                data_dir: self.settings.data_dir.join(&name),
                name: name.clone(),
                kind,
                token: format!("{:032x}", rand::random::<u128>()),
                seed: cmdline::derive_seed(self.settings.seed, 1_000 + index),
                state: State::Starting,
                url: None,
                child: None,
                starts: 0,
            });
            inner.tally.hired += 1;
            name
        };
        self.start(&name).await?;
        Ok(name)
    }

    /// Whether auto mode is paused fleet-wide (see [`Fleet::set_auto`]).
    pub fn auto_paused(&self) -> bool {
        self.auto_paused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pauses (`on = false`) or resumes auto mode on every running node
    /// through `POST /admin/auto`, and for nodes started later (each gets
    /// the same right after it is up); returns how many nodes confirmed,
    /// of how many asked. Bounded: a few calls at once, each with the
    /// client's timeouts.
    pub async fn set_auto(&self, on: bool) -> (usize, usize) {
        self.auto_paused
            .store(!on, std::sync::atomic::Ordering::Relaxed);
        let targets = self.admin_targets();
        let asked = targets.len();
        let confirmed = futures_util::stream::iter(targets)
            .map(|(url, token)| async move { self.client.set_auto(&url, &token, on).await })
            .buffer_unordered(CONCURRENCY)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        (confirmed, asked)
    }

    /// Starts `name`'s process (its first or a later one); with auto mode
    /// paused fleet-wide, pauses it as soon as it is up.
    async fn start(&self, name: &str) -> Result<(), Error> {
        self.start_process(name).await?;
        if self.settings.auto && self.auto_paused() {
            let target = {
                let inner = self.lock();
                inner
                    .members
                    .iter()
                    .find(|m| m.name == name)
                    .and_then(Member::admin_target)
            };
            if let Some((url, token)) = target
                && !self.client.set_auto(&url, &token, false).await
            {
                tracing::warn!(node = %name, "could not pause auto mode on a new node");
            }
        }
        Ok(())
    }

    /// Spawns `name`'s process and waits until it listens.
    async fn start_process(&self, name: &str) -> Result<(), Error> {
        let sauron = self.sauron_url();
        let (command, dir) = {
            let mut inner = self.lock();
            // Without Sauron a node needs someone to bootstrap from: the
            // earliest and the latest running nodes.
            let running: Vec<String> = inner
                .members
                .iter()
                .filter(|m| m.state == State::Running && m.name != name)
                .filter_map(|m| m.url.clone())
                .collect();
            let peers = cmdline::bootstrap_peers(&running);
            let member = find(&mut inner, name)?;
            member.state = State::Starting;
            member.starts += 1;
            let command = cmdline::node(
                &self.settings,
                &cmdline::Node {
                    name,
                    kind: &member.kind,
                    data_dir: &member.data_dir,
                    token: &member.token,
                    seed: member.seed,
                    start: member.starts,
                    hash_share: member.hash_share,
                    bootstrap: match &sauron {
                        Some(url) => Bootstrap::Tracker(url),
                        None => Bootstrap::Peers(&peers),
                    },
                },
            );
            (command, member.data_dir.clone())
        };
        let command = self.runtime.wrap(
            name,
            command,
            &dir,
            Role::Node {
                nice: self.settings.node_nice,
            },
        );
        let launched = self
            .launch(name, &dir, command, self.settings.node_nice)
            .await;
        let mut inner = self.lock();
        let closed = inner.closed;
        let member = find(&mut inner, name)?;
        match launched {
            Ok((mut child, url)) => {
                if closed {
                    self.runtime.kill(name, &mut child, false);
                    let _ = child.wait();
                    member.state = State::Exited;
                    return Err(Error::Closed);
                }
                tracing::info!(%name, %url, pid = child.id(), behaviour = %member.kind, "node up");
                member.url = Some(url);
                member.child = Some(child);
                member.state = State::Running;
                Ok(())
            }
            Err(e) => {
                member.state = State::Exited;
                Err(e)
            }
        }
    }

    /// SIGKILLs `name`.
    ///
    /// # Errors
    ///
    /// Unknown name, or a node not running or paused.
    pub fn fire(&self, name: &str) -> Result<View, Error> {
        let mut inner = self.lock();
        let member = find(&mut inner, name)?;
        if !matches!(member.state, State::Running | State::Paused) {
            return Err(state_error(member));
        }
        let paused = member.state == State::Paused;
        if let Some(mut child) = member.child.take() {
            self.runtime.kill(&member.name, &mut child, paused);
            let _ = child.wait();
        }
        member.state = State::Fired;
        let view = view(member);
        inner.tally.fired += 1;
        Ok(view)
    }

    /// SIGSTOPs `name`.
    ///
    /// # Errors
    ///
    /// Unknown name, or a node not running.
    pub fn pause(&self, name: &str) -> Result<View, Error> {
        self.signal_member(name, State::Running, State::Paused, Runtime::pause)?;
        let mut inner = self.lock();
        inner.tally.paused += 1;
        let member = find(&mut inner, name)?;
        Ok(view(member))
    }

    /// SIGCONTs `name`.
    ///
    /// # Errors
    ///
    /// Unknown name, or a node not paused.
    pub fn resume(&self, name: &str) -> Result<View, Error> {
        self.signal_member(name, State::Paused, State::Running, Runtime::resume)?;
        let mut inner = self.lock();
        inner.tally.resumed += 1;
        let member = find(&mut inner, name)?;
        Ok(view(member))
    }

    fn signal_member(
        &self,
        name: &str,
        from: State,
        to: State,
        signal: fn(&Runtime, &str, &Child) -> bool,
    ) -> Result<(), Error> {
        let mut inner = self.lock();
        let member = find(&mut inner, name)?;
        if member.state != from {
            return Err(state_error(member));
        }
        // Only a child not yet reaped is signalled: its PID is still ours.
        let alive = member
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        let signalled = alive
            && member
                .child
                .as_ref()
                .is_some_and(|child| signal(&self.runtime, name, child));
        if !signalled {
            member.state = State::Exited;
            return Err(state_error(member));
        }
        member.state = to;
        Ok(())
    }

    /// Starts a fired (or exited) node again on its data directory.
    ///
    /// # Errors
    ///
    /// Unknown name, a node that is not fired or exited, or a start failure.
    pub async fn rehire(&self, name: &str) -> Result<View, Error> {
        {
            let mut inner = self.lock();
            if inner.closed {
                return Err(Error::Closed);
            }
            let member = find(&mut inner, name)?;
            if !matches!(member.state, State::Fired | State::Exited) {
                return Err(state_error(member));
            }
            member.state = State::Starting;
        }
        self.start(name).await?;
        let mut inner = self.lock();
        inner.tally.rehired += 1;
        Ok(view(find(&mut inner, name)?))
    }

    /// Its URL and admin token while it has a URL (its last one after it
    /// stopped), for admin calls.
    pub fn admin_of(&self, name: &str) -> Option<(String, String)> {
        self.lock()
            .members
            .iter()
            .find(|m| m.name == name)
            .and_then(Member::admin_target)
    }

    /// Where the copies of `name`'s database go.
    fn copies_dir(&self, name: &str) -> PathBuf {
        self.settings.data_dir.join(format!("{name}.copies"))
    }

    fn stopped_dir(&self, name: &str) -> Result<PathBuf, Error> {
        let mut inner = self.lock();
        let member = find(&mut inner, name)?;
        if !matches!(member.state, State::Fired | State::Exited) {
            return Err(state_error(member));
        }
        Ok(member.data_dir.clone())
    }

    /// Copies a fired node's database (crash-consistent: its process is
    /// dead, so the files are what a power cut would have left) into
    /// `DIR/NAME.copies/N`, for a later rollback; keeps the newest two
    /// copies. Returns the copy's directory.
    ///
    /// # Errors
    ///
    /// Unknown name, a node that is not stopped, or a failed copy.
    pub fn keep_copy(&self, name: &str) -> Result<PathBuf, Error> {
        let dir = self.stopped_dir(name)?;
        let data = |e: std::io::Error| Error::Data {
            name: name.to_owned(),
            reason: e.to_string(),
        };
        let root = self.copies_dir(name);
        let existing = copies(&root);
        let n = existing.last().map_or(1, |(n, _)| n + 1);
        let target = root.join(n.to_string());
        std::fs::create_dir_all(&target).map_err(data)?;
        for file in db_files(&dir) {
            if file.exists() {
                let to = target.join(file.file_name().unwrap_or_default());
                std::fs::copy(&file, to).map_err(data)?;
            }
        }
        let mut all = copies(&root);
        while all.len() > COPIES_KEPT {
            let (_, old) = all.remove(0);
            std::fs::remove_dir_all(old).map_err(data)?;
        }
        Ok(target)
    }

    /// Rolls a fired node's database back: replaces it with the newest
    /// copy older than the newest one (taken at an earlier stop; the
    /// newest is its state just now), or removes it when there is none.
    /// The wallet key stays.
    ///
    /// # Errors
    ///
    /// Unknown name, a node that is not stopped, or failed file
    /// operations.
    pub fn roll_back(&self, name: &str) -> Result<Restored, Error> {
        let dir = self.stopped_dir(name)?;
        let data = |e: std::io::Error| Error::Data {
            name: name.to_owned(),
            reason: e.to_string(),
        };
        let all = copies(&self.copies_dir(name));
        let earlier = all.len().checked_sub(2).map(|i| all[i].clone());
        for file in db_files(&dir) {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(data(e)),
            }
        }
        let Some((n, copy)) = earlier else {
            return Ok(Restored::Nothing);
        };
        for file in db_files(&copy) {
            if file.exists() {
                let to = dir.join(file.file_name().unwrap_or_default());
                std::fs::copy(&file, to).map_err(data)?;
            }
        }
        Ok(Restored::Copy(n))
    }

    /// Notices children that exited on their own.
    pub fn reap(&self) {
        let mut inner = self.lock();
        for member in &mut inner.members {
            if let Some(child) = member.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                tracing::warn!(name = %member.name, %status, "node exited on its own");
                member.child = None;
                member.state = State::Exited;
            }
        }
    }

    /// Every member.
    pub fn views(&self) -> Vec<View> {
        self.lock().members.iter().map(view).collect()
    }

    /// One member.
    pub fn view(&self, name: &str) -> Option<View> {
        self.lock()
            .members
            .iter()
            .find(|m| m.name == name)
            .map(view)
    }

    /// What happened so far.
    pub fn tally(&self) -> Tally {
        self.lock().tally
    }

    /// Running members.
    pub fn running(&self) -> Vec<Running> {
        self.lock()
            .members
            .iter()
            .filter(|m| m.state == State::Running)
            .filter_map(|m| {
                Some(Running {
                    name: m.name.clone(),
                    url: m.url.clone()?,
                    honest: m.kind.is_honest(),
                    start: m.starts,
                })
            })
            .collect()
    }

    /// Running members as `(url, admin token)`, for admin calls.
    fn admin_targets(&self) -> Vec<(String, String)> {
        self.lock()
            .members
            .iter()
            .filter(|m| m.state == State::Running)
            .filter_map(Member::admin_target)
            .collect()
    }

    /// Stops every child: SIGCONT (paused ones), SIGTERM, up to
    /// 5 s (`STOP_GRACE`) to exit, then SIGKILL; reaps them all; then lets
    /// the runtime clean up (the Docker runtime removes the run's
    /// containers). No hire succeeds afterwards.
    pub async fn stop_all(&self) {
        let mut children: Vec<(String, Child, bool)> = {
            let mut inner = self.lock();
            inner.closed = true;
            inner
                .members
                .iter_mut()
                .filter_map(|m| {
                    let child = m.child.take()?;
                    let paused = m.state == State::Paused;
                    m.state = State::Exited;
                    Some((m.name.clone(), child, paused))
                })
                .collect()
        };
        if let Some((_, child)) = self.sauron.lock().unwrap_or_else(|p| p.into_inner()).take() {
            children.push(("sauron".to_owned(), child, false));
        }
        let alive: Vec<(String, &Child, bool)> = children
            .iter_mut()
            .filter_map(|(name, child, paused)| {
                matches!(child.try_wait(), Ok(None)).then_some((name.clone(), &*child, *paused))
            })
            .collect();
        self.runtime.terminate(&alive);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline
            && children
                .iter_mut()
                .any(|(_, c, _)| matches!(c.try_wait(), Ok(None)))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (name, child, paused) in &mut children {
            if matches!(child.try_wait(), Ok(None)) {
                tracing::warn!(%name, "did not stop on SIGTERM; killing");
                self.runtime.kill(name, child, *paused);
            }
            let _ = child.wait();
        }
        self.runtime.clean_up();
    }

    /// Kills every child at once (SIGKILL) and reaps them, then lets the
    /// runtime clean up: the last resort on the way out.
    pub fn kill_all(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for member in &mut inner.members {
            if let Some(mut child) = member.child.take() {
                let paused = member.state == State::Paused;
                self.runtime.kill(&member.name, &mut child, paused);
                let _ = child.wait();
            }
        }
        if let Some((_, mut child)) = self.sauron.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.runtime.kill("sauron", &mut child, false);
            let _ = child.wait();
        }
        drop(inner);
        self.runtime.clean_up();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn find<'a>(inner: &'a mut Inner, name: &str) -> Result<&'a mut Member, Error> {
    inner
        .members
        .iter_mut()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::Unknown(name.to_owned()))
}

fn state_error(member: &Member) -> Error {
    Error::State {
        name: member.name.clone(),
        state: member.state,
    }
}

fn view(member: &Member) -> View {
    View {
        name: member.name.clone(),
        behaviour: member.kind.to_string(),
        honest: member.kind.is_honest(),
        state: member.state,
        url: member.url.clone(),
        pid: member.child.as_ref().map(Child::id),
        starts: member.starts,
    }
}
