//! CrapCoin's test kit: the support code every crate's tests share, written
//! once. Dev-only (`publish = false`); crates take it as a
//! `dev-dependency`, the root package's examples too.
//!
//! It depends on `crapcoin-core` and `crapcoin-behaviours`, so those crates'
//! *integration* tests (`tests/*.rs`) can use it — cargo links one build of
//! the crate under test — but their unit tests (`#[cfg(test)]` in `src/`)
//! cannot. It does not depend on `crapcoin-node` or the launcher: what it
//! knows of them is their command lines and their HTTP answers.
//!
//! Every wait is bounded; every process started through it is killed by
//! PID when its guard drops; everything listens on 127.0.0.1.
//!
//! # Layout
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`time`] | `now_ms` (the system clock; a scenario run reads [`scenario::Run::now_ms`]), and bounded polling: [`time::eventually`] (async checks) and [`time::holds_within`] |
//! | [`chain`] | one test network's parameters, deterministic wallets, block builders on `Forge`, chains built block by block |
//! | [`net`] | [`net::Tapped`]: the in-memory network with a [`net::Tap`] that watches or alters calls, so a test writes no delegating `Network` |
//! | [`invariants`] | what must hold on any agreed chain: agreement, a ledger replayed independently of core, conservation of supply, each accepted transfer once |
//! | [`scenario`] | a network of honest and misbehaving in-memory nodes run for a while (in wall time, or in virtual time where the outcome depends on the seed alone: [`scenario::Time`]), everything it did recorded and digested, then checked with [`invariants`] |
//! | [`process`] | the workspace's binaries found (and built) beside the test, processes spawned with the `listening on` handshake, node / Sauron / watercooler guards |
//! | [`plugin`] | plugin libraries: the example plugin built by cargo, small `cdylib`s compiled with rustc, scratch directories |
//! | [`http`] | one reqwest client setup, JSON `GET`, admin `POST` with the test token, Prometheus lines, a blocking call |

pub mod chain;
pub mod http;
pub mod invariants;
pub mod net;
pub mod plugin;
pub mod process;
pub mod scenario;
pub mod time;
