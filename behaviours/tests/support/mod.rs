//! Kept only for `benches/flood.rs`, which includes this file with
//! `#[path]`: the scenario runner now lives in the test kit
//! (`kit::scenario`). Once the bench imports `kit::scenario::{Run,
//! Scenario}` itself, this file goes.

pub(crate) use kit::scenario::{Run, Scenario};
