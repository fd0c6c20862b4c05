//! # crapcoin-sim: the real engine in virtual time
//!
//! Runs a whole CrapCoin network in one process on the in-memory
//! transport, with every node's clock virtual: time jumps to the next
//! timer when every task waits, so a run is far faster than real time and
//! the same seed replays it bit for bit.
//!
//! - [`scenario`]: the scenario file (TOML), checked before anything runs;
//! - [`schedule`]: a file of only `[[faults]]` over given nodes (watercooler's
//!   `--fault-schedule`);
//! - [`run`]: one run on its own thread in virtual time, and many in
//!   parallel; its [`run::Outcome`] carries the digest of its events;
//! - [`output`] and [`figures`]: the table, CSV/JSON and plots ([`plot`]).

pub mod figures;
pub mod output;
pub mod plot;
pub mod run;
pub mod scenario;
pub mod schedule;
