//! The honest behaviour: every decision is [`crapcoin_core::Behaviour`]'s
//! default. It publishes what it mines to every peer, relays what it
//! accepts, answers truthfully and attacks nobody; the test suite's control
//! group.

pub use crapcoin_core::behaviour::Honest as Behaviour;
