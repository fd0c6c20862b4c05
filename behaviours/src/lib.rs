//! The behaviour catalogue of CrapCoin: honest, malicious, stupid and random
//! behaviours, and the loader for attacker plugins built as `cdylib` crates.
//!
//! The catalogue is filled by the behaviours issue; today it re-exports the
//! honest behaviour that `crapcoin-core` defines, so every other crate can
//! already name `behaviours::honest::Behaviour`.

pub mod honest {
    //! The honest behaviour: every decision is `crapcoin_core::Behaviour`'s default.
    pub use crapcoin_core::behaviour::Honest as Behaviour;
}
