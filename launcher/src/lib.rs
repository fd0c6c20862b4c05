//! `watercooler`, the CrapCoin launcher: starts a sandbox network of real
//! processes — honest `crapcoin-node`s ("bigload-N"), misbehaving ones
//! ("shit-N"), optionally Sauron and the Boss — shows its progress, hires
//! and fires nodes while it runs, and judges at the end whether the honest
//! nodes converged.
//!
//! ```text
//! watercooler -x 5 -y 2 --sauron --boss --auto
//! watercooler -x 5 -y 2 --sauron --boss --auto --duration 60 --seed 7 --report run.json
//! ```
//!
//! `launcher/README.md` is the guided tour; `watercooler --help` lists
//! every option.
//!
//! # Layout
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`tools`] | the subcommands `deploy k8s`, `boss --kubernetes`, `verdict` (beside a local run) |
//! | [`remote`] | `verdict --sauron URL`: agreement and the checker's checks on a network seen through Sauron |
//! | [`kube`] | the Boss inside a cluster: the seeded plan, kills as pod deletions, network faults through `/admin/faults` |
//! | [`deploy`] | `deploy k8s`: the network as Kubernetes manifests (StatefulSets, Sauron, PostgreSQL, the Boss's narrow RBAC, the verdict Job) |
//! | [`yaml`] | a small block-style YAML writer for the manifests |
//! | [`cli`] | the command line (`Args`), checked before anything starts (the fault menu or schedule included) |
//! | [`app`] | one run: binaries, data directory, start, steer, stop (awaiting every task), exit status |
//! | [`boss`] | the Boss: runs the fault timeline (kills, pauses, rollbacks, network and clock faults through `/admin/faults`), heals at the end |
//! | [`control`] | stdin commands and the HTTP control API (CORS, for Sauron's dashboard) |
//! | [`sauron`] | reporting firings to Sauron (`POST /api/boss`) as tracked tasks |
//! | [`watch`] | what the nodes say: polls, positions and counters, node views, the status line, the verdict |
//! | [`checker`] | the verdict's checks over the run's history: validity, no acknowledged transfer lost, conservation, liveness |
//! | [`forks`] | the verdict's fork figures (blocks mined, stale rate, interval, miners' shares, propagation): Sauron's, or the nodes' |
//! | [`fleet`] | the processes' lifecycle: hire, fire, pause, resume, rehire, stop; copies of a node's database and rollbacks; auto mode; names, data dirs; the run's client and task tracker |
//! | [`faults`] | the fault menu, the seeded timeline drawn from it, a schedule file's timeline, the "never no honest node" rule |
//! | [`cmdline`] | the node and Sauron command lines, behaviour kinds, derived seeds |
//! | [`docker`] | the runtime seam: members as local processes or as Docker containers (`--runtime docker`: `docker run --network host`, kill, pause, removal of the run's containers); the checks before a Docker run |
//! | [`spawn`] | the spawner thread: every child forked with PDEATHSIG and its own process group; starting a server child and waiting for its `listening on` line |
//! | [`client`] | every HTTP call, typed: `Status`, `BlockJson` pages, counters, the boss report, Sauron's answers |
//! | [`metrics`] | the node counters read from Prometheus text |
//! | [`ui`] | the indicatif display and a log writer that does not tear it |
//!
//! Each module uses only those below it in this table (`app` above
//! everything; `cli` only `faults`, `cmdline` and `docker`).
//!
//! # Decisions
//!
//! - **No orphans, ever.** Children are forked from one dedicated thread
//!   with `PR_SET_PDEATHSIG = SIGKILL` (the signal follows the forking
//!   *thread*, so never a pool thread), with a `getppid` check against the
//!   race of the parent dying mid-spawn, and in their own process group.
//!   An orderly stop sends SIGTERM, waits up to 5 s, then SIGKILLs; a
//!   SIGKILLed watercooler takes its children with it through the kernel.
//!   Every PID started is appended to `DIR/pids` and listed in the report.
//! - **Nodes run at the lowest priority** (`--node-nice N`: N steps below
//!   watercooler, capped at niceness 19; default 19). Proof of work takes every free cycle, and the
//!   kernel shares the CPU fairly between processes: with 40 nodes on two
//!   cores Sauron got its 1/41 share, every batch of reports timed out and
//!   its view fell minutes behind the network. Niced nodes still share the
//!   CPU fairly among themselves; Sauron and watercooler, which watch
//!   them, stay responsive.
//! - **The verdict comes from the nodes**, not Sauron: honest nodes agree
//!   when every one of them holds the same block at most `k = 2` blocks
//!   below the *highest* honest tip: Sauron's rule (which looks `k` below
//!   the lowest tip) plus "nobody lags", so a rehired node still catching
//!   up does not count as agreeing. Counters come from each node's
//!   `/metrics`; they restart with each process, so the totals add the last
//!   sample of every process (a fired node's last moments may be missed).
//! - **Winding down**: when `--duration` is over the Boss stops, fired
//!   nodes due for rehiring are rehired and paused ones resumed at once;
//!   auto mode is paused on every node (`POST /admin/auto {"on": false}`:
//!   no new transfers, no mining of their own accord; transfers already
//!   accepted are still mined), misbehaving nodes keep misbehaving, and
//!   watercooler polls for up to `--settle` seconds until the honest nodes
//!   agree.
//! - **Seeds**: each node's seed derives from `--seed`, its position and
//!   its start number (a rehired process must not replay its first life's
//!   choices on a different chain); the Boss has its own derived seed.
//!   Process scheduling still varies between runs, so the same seed gives
//!   the same choices, not the same chain.
//! - **Exit status**: 0 converged (or stopped by `quit`), 1 not converged
//!   or failed to start, 2 usage errors and missing binaries, 130/143
//!   stopped by SIGINT/SIGTERM.

pub mod app;
pub mod boss;
pub mod checker;
pub mod cli;
pub mod client;
pub mod cmdline;
pub mod control;
pub mod deploy;
pub mod docker;
pub mod faults;
pub mod fleet;
pub mod forks;
pub mod kube;
pub mod metrics;
pub mod remote;
pub mod sauron;
pub mod spawn;
pub mod tools;
pub mod ui;
pub mod watch;
pub mod yaml;
