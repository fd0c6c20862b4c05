//! CrapCoin: a toy proof-of-work cryptocurrency and a sandbox for watching
//! consensus under attack and failure.
//!
//! This facade re-exports the workspace's crates:
//!
//! - [`core`]: protocol, validation, fork choice and the embeddable node engine;
//! - [`behaviours`]: the behaviour catalogue and plugin loader;
//! - [`node`]: the full node over HTTP and Sauron.

pub use behaviours;
pub use crapcoin_core as core;
pub use crapcoin_node as node;
