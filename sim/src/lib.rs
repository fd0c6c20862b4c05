//! # crapcoin-sim: the real engine in virtual time
//!
//! Runs a whole CrapCoin network in one process on the in-memory
//! transport, with every node's clock virtual: time jumps to the next
//! timer when every task waits, so a run is far faster than real time and
//! the same seed replays it bit for bit.

pub mod plot;
