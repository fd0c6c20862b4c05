//! `crapcoin-node`: the real CrapCoin full node. It puts the
//! `crapcoin-core` engine on the network: a warp HTTP server in front of a
//! [`crapcoin_core::Handle`], a reqwest client to reach peers and the
//! tracker, SQLite storage through sqlx, and the AllSeeingEye reporter.
//!
//! Start one with the `crapcoin-node` binary (`--help` lists every option)
//! or in-process with [`run::start`].
//!
//! # Layout
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`cli`] | the command line (`Args`) and the `--behaviour` lookup |
//! | [`run`] | start and stop a whole node: listener, store, wallet, engine, server, reporter |
//! | [`cookie`] | the admin token off the command line: environment, private token file, or the cookie file in the data directory |
//! | [`http`] | the API: `filters` (routes), `handlers`, `models` (bodies, errors), `server` (accept loop serving any tower service) |
//! | [`client`] | `Client`: the engine's `Network` over HTTP; `Tracker`: Sauron as tracker |
//! | [`gossip`] | gossip streams: one upgraded connection per peer for blocks and relayed transfers, answers only for refusals |
//! | [`store`] | `Store`: the engine's `Store` in SQLite (WAL, embedded migrations) |
//! | [`eye`] | the AllSeeingEye: the request-reporting tower layer, event reports, bounded queue, batches to Sauron |
//! | [`report`] | the eye's wire format (batches of reports), shared by the eye and Sauron |
//! | [`metrics`] | counters and the Prometheus text of `GET /metrics` |
//! | [`process`] | what both binaries do once up: the `listening on` line, waiting for SIGTERM or Ctrl-C |
//! | [`sauron`] | Sauron (the `sauron` binary): tracker, aggregator, dashboard |
//!
//! # HTTP API
//!
//! Public: `GET /status`, `GET /blockchain`, `GET /blocks?from=H&limit=N`,
//! `GET /block/{hash}`, `POST /block` (gossip; the sender's URL in the
//! `X-Crapcoin-Peer` header), `POST /gossip` (an upgrade to a gossip
//! stream: frames of blocks and transfers, each served as `POST /block` or
//! `POST /transactions`; [`gossip`]), `GET /peers`, `POST /peers {"url"}`,
//! `POST /transactions`, `GET /balance/{address}`, `GET /metrics`,
//! `GET /transfers/acknowledged?after=SEQ&limit=N` (the transfers this node
//! acknowledged, stored before it answered; pages of at most 1,000). Admin
//! (`Authorization: Bearer TOKEN`): `POST /transfer {"to", "amount"}`,
//! `POST /mine` (optional `{"count": N}`), `POST /admin/peers {"url"}`,
//! `POST /admin/auto {"on": bool}` (pause or resume auto mode; the
//! launcher pauses it while a network settles),
//! `POST/GET/DELETE /admin/faults` (the node's network faults:
//! unreachable peers, latency, loss, clock skew; [`http::faults`]).
//! Errors are `{"error": "...", "reason": "snake_case"}` with a 4xx status
//! (5xx only for the node's own trouble: a transfer not confirmed in time,
//! a shutdown).
//!
//! # Decisions
//!
//! - **Restart validates everything, in one batch.** On start the engine
//!   loads every stored block (one sequential scan: rows, one per saved
//!   batch of blocks, are appended parents first) and checks it again — proof of work, tx root, amounts,
//!   and all signatures in one ed25519 batch — then replays them into the
//!   block tree and account state. Nothing read from disk is trusted, and a
//!   node with 10,000 blocks (each with a signed transfer) is listening
//!   again after about a fifth of a second on a 2-core machine
//!   (`BENCHMARKS.md`, section "crapcoin-node", has the command and the
//!   figures). A stored block that fails is a launch error, not a silent
//!   truncation.
//! - **Durability**: SQLite in WAL mode with `synchronous = NORMAL`; blocks
//!   are committed before the engine acknowledges them, so a node killed
//!   with SIGKILL restarts with every block it acknowledged.
//! - **Own accept loop** instead of `warp::serve`: bounded connections,
//!   a deadline on every request body, stalled connections closed, and at
//!   the limit eviction of connections that have not completed a request
//!   while a share of the slots is kept for those that have; see
//!   [`http::server`].
//! - **Admin tokens never on the command line**: from the environment, a
//!   private token file, or a cookie file the node writes in its data
//!   directory; see [`cookie`].
//! - **Gossip streams, not a `POST` per block**: blocks and relayed
//!   transfers go to each peer on one upgraded connection as frames,
//!   answered only when refused, and are served as the `POST /block` or
//!   `POST /transactions` they stand for (same handlers, limits, eye and
//!   counters); a peer that refuses the upgrade gets `POST`s. A hop costs
//!   the next node's wake-up, not also an answer and the sender's wake-up
//!   to read it: see [`gossip`] and `docs/decisions.md`.
//! - **Gossip sender attribution**: the `X-Crapcoin-Peer` header is
//!   believed only when its host, if an IP address, is the caller's, so
//!   nobody can get an honest node struck by sending junk in its name.
//! - **`GET /blockchain` is cached**: the JSON is kept with the blocks it
//!   was made from and served again while the node would serve the same
//!   blocks.
//! - **Sync is pipelined by the engine**: while one thread checks a page
//!   of a peer's chain, the runtime thread fetches and parses the next and
//!   adds and stores the one before (see `crapcoin_core::node` and
//!   `docs/decisions.md`); the client only makes single calls.
//! - Without `--data-dir` the node keeps its chain in memory and makes a
//!   fresh key: handy for benchmarks and throwaway networks.
//! - The `dist` cargo profile (fat LTO, one codegen unit) is the build to
//!   run many nodes with: it keeps an idle node under 8 MiB of RSS.

pub mod cli;
pub mod client;
pub mod cookie;
pub mod eye;
pub mod gossip;
pub mod http;
pub mod metrics;
pub mod process;
pub mod report;
pub mod run;
pub mod sauron;
pub mod store;

pub use client::Client;
pub use store::Store;
