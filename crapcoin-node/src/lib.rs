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
//! | [`http`] | the API: `filters` (routes), `handlers`, `models` (bodies, errors), `server` (accept loop) |
//! | [`client`] | `Client`: the engine's `Network` over HTTP; `Tracker`: Sauron as tracker |
//! | [`store`] | `Store`: the engine's `Store` in SQLite (WAL, embedded migrations) |
//! | [`eye`] | the AllSeeingEye: request and event reports, bounded queue, batches to Sauron |
//! | [`metrics`] | counters and the Prometheus text of `GET /metrics` |
//!
//! # HTTP API
//!
//! Public: `GET /status`, `GET /blockchain`, `GET /blocks?from=H&limit=N`,
//! `GET /block/{hash}`, `POST /block` (gossip; the sender's URL in the
//! `X-Crapcoin-Peer` header), `GET /peers`, `POST /peers {"url"}`,
//! `POST /transactions`, `GET /balance/{address}`, `GET /metrics`. Admin
//! (`Authorization: Bearer TOKEN`): `POST /transfer {"to", "amount"}`,
//! `POST /mine` (optional `{"count": N}`), `POST /admin/peers {"url"}`.
//! Errors are `{"error": "...", "reason": "snake_case"}` with a 4xx status
//! (5xx only for the node's own trouble: a transfer not confirmed in time,
//! a shutdown).
//!
//! # Decisions
//!
//! - **Restart validates everything, in one batch.** On start the engine
//!   loads every stored block and checks it again — proof of work, tx
//!   root, amounts, and all signatures in one ed25519 batch — then replays
//!   them into the block tree and account state. Nothing read from disk is
//!   trusted, yet a 10,000-block chain restores in well under a second
//!   (measured figures are in `BENCHMARKS.md`, section "crapcoin-node").
//! - **Durability**: SQLite in WAL mode with `synchronous = NORMAL`; blocks
//!   are committed before the engine acknowledges them, so a node killed
//!   with SIGKILL restarts with every block it acknowledged.
//! - **Own accept loop** instead of `warp::serve`: bounded connections,
//!   eviction of the longest-idle connection at the limit, idle timeout;
//!   see [`http::server`].
//! - **Gossip sender attribution**: the `X-Crapcoin-Peer` header is
//!   believed only when its host, if an IP address, is the caller's, so
//!   nobody can get an honest node struck by sending junk in its name.
//! - **`GET /blockchain` is cached**: the JSON is kept with the blocks it
//!   was made from and served again while the node would serve the same
//!   blocks.
//! - Without `--data-dir` the node keeps its chain in memory and makes a
//!   fresh key: handy for benchmarks and throwaway networks.

pub mod cli;
pub mod client;
pub mod eye;
pub mod http;
pub mod metrics;
pub mod run;
pub mod store;

pub use client::Client;
pub use store::Store;
