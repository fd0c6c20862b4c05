//! The behaviour catalogue of CrapCoin: the honest node, the misbehaving
//! ones ("BigLoadofShits") it must survive, a seeded random mix of them,
//! and the plugin ABI and loader for attackers built as separate `cdylib`
//! crates.
//!
//! Every misbehaviour implements [`crapcoin_core::Behaviour`] and overrides
//! only the decisions it corrupts; each module's docs say what it attacks
//! and what an honest node must do about it. Nodes pick one by name through
//! the [`registry`]:
//!
//! ```
//! let behaviour = behaviours::registry::build("double_spender", 7)?;
//! assert_eq!(behaviour.name(), "double_spender");
//! for (name, description) in behaviours::registry::list() {
//!     println!("{name:16} {description}");
//! }
//! # Ok::<(), behaviours::registry::UnknownBehaviour>(())
//! ```
//!
//! # Layout
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`honest`] | the honest behaviour: every default of the trait |
//! | [`malicious`] | attackers: double spender, forger, chain liar, peer poisoner, selfish miner, equivocator, replayer, flooder |
//! | [`stupid`] | broken nodes: forgetful, garbler, laggard, time traveller, amnesiac |
//! | [`random`] | a seeded mix: each decision delegated to a misbehaviour picked at random |
//! | [`registry`] | names to constructors, with one-line descriptions (`--behaviour`, `--list-behaviours`) |
//! | [`plugin`] | the ABI an attacker `cdylib` exports through [`export_plugin!`] |
//! | [`loader`] | loads such a plugin, checking magic, ABI, rustc and core versions first |
//!
//! # Decisions
//!
//! - Misbehaviours that act on their own (forging, flooding, releasing
//!   withheld blocks, wiping) do it from [`crapcoin_core::Behaviour::tick`];
//!   their period is one knob, [`registry::Options::interval`], so tests can
//!   run the whole catalogue fast and real nodes at a watchable pace.
//! - Blocks forged for an attack carry valid proof of work unless bad proof
//!   of work is the attack: at the sandbox's low difficulty work is cheap,
//!   so the interesting question is always whether the *content* is checked.

pub mod honest;
pub mod loader;
pub mod malicious;
pub mod plugin;
pub mod random;
pub mod registry;
pub mod stupid;

mod util;

pub use util::derive_seed;
