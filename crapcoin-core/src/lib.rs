//! `crapcoin-core`: CrapCoin's protocol and embeddable node engine.
//!
//! CrapCoin is a toy proof-of-work cryptocurrency built as a sandbox for
//! watching consensus under attack. This crate is everything but the
//! transports: the types and their canonical encoding, validation, fork
//! choice, mining, the wallet, and a [`Node`] engine whose decisions
//! ([`Behaviour`]), reports ([`Observer`]), transport ([`Network`]), peer
//! discovery ([`Tracker`]), persistence ([`Store`]) and time ([`Clock`]) are
//! pluggable. No HTTP, no SQL: `crapcoin-node` adds those.
//!
//! ```
//! use crapcoin_core::{Node, Params};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let node = Node::builder(Params::with_difficulty(8)).launch().await?;
//! let mined = node.mine().await?;
//! assert_eq!(mined.height, 1);
//! assert_eq!(node.balance(&node.address()).balance, 50);
//! node.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Layout
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`hash`] | `BlockHash`, `TxId`, `Address`, `Signature` newtypes (hex in JSON) and tagged SHA-256 |
//! | [`encode`] | the canonical binary encoding hashes and signatures are computed over |
//! | [`tx`] | `Transaction`: one signed transfer; batch signature verification |
//! | [`invalid`] | `ValidationError`: why a block or transaction is invalid, one variant per reason |
//! | [`block`] | `BlockHeader`, `Block` (unchecked), `CheckedBlock`, the JSON wire form |
//! | [`params`] | network `Params` and the deterministic genesis |
//! | [`validate`] | the checks that make a `CheckedBlock` |
//! | [`state`] | balances and nonces with apply and undo |
//! | [`chain`] | the block tree: fork choice by most work, reorgs of any depth, `TipChange` |
//! | [`orphans`], [`mempool`] | the bounded orphan pool and mempool |
//! | [`mining`] | cooperative, cancellable proof-of-work search |
//! | [`power`] | `HashPower`: a miner's share and the target block interval, the Poisson schedule of its blocks |
//! | [`wallet`] | the ed25519 key: address, signing, saving |
//! | [`wire`] | what peers exchange: `PeerUrl`, `Status`, `PeerInfo`, `BlockAck`, `TxAck`, `Payload`, `Outgoing`, `NetError`, `PeerError` |
//! | [`clock`] | `Clock`: the node's time (now, sleeps, timeouts), the seam for simulated time |
//! | [`network`] | the `Network`, `Tracker` and `Store` traits, and `Inbox`: what a node answers |
//! | [`behaviour`] | `Behaviour` (decision points), `View` (what it reads), `Context`, `Forge`, and [`behaviour::honest`]: every honest decision |
//! | [`observer`] | `Event`s and `Observer` hooks |
//! | [`measure`] | `ForkMeter`: an observer of many nodes summing up forks (stale rate, shares of the best chain, propagation delay, races) |
//! | [`node`] | the engine: `Node` builder, `Config`, `Handle`, sync, gossip, peers, auto mode |
//! | [`memory`] | in-memory network, tracker and store for simulations |
//! | [`faults`] | `NetFaults`: one node's network faults (unreachable peers, latency, loss, clock skew) and `Faulty`, the `Network` wrapper obeying them |
//!
//! # Layers
//!
//! Inside the crate, imports go one way, down this list and never up:
//!
//! 1. the protocol's data and rules: `hash`, `encode`, `invalid`, `tx`,
//!    `block`, `params`, `validate`, `state`, `chain`, `orphans`,
//!    `mempool`, `mining`, `power`, `wallet`;
//! 2. what peers exchange and the time: `wire`, `clock`;
//! 3. the plug-in traits: `network` (`Network`, `Tracker`, `Store`,
//!    `Inbox`), `behaviour` (`Behaviour`, `View`), `observer`, and
//!    `measure` (an observer, reading events and the clock). They see a
//!    node only through `Inbox` (what it answers) and `View` (what a
//!    behaviour reads), never the engine's types;
//! 4. the engine, `node`, which implements `Inbox` and `View`, and beside
//!    it `memory`, the in-memory implementations of the traits, and
//!    `faults`, the fault layer every node's network is wrapped in. The
//!    engine uses `memory` for its builder defaults and `faults` around
//!    every network; `memory` knows nodes only as `Inbox`es, `faults`
//!    networks only as `Network`s.
//!
//! # Decisions
//!
//! - Signatures use ed25519 with ZIP-215 validation rules
//!   (`ed25519-consensus`), so batch verification accepts exactly what
//!   one-by-one verification accepts: a node syncing a chain in batches and
//!   a node receiving the same blocks one by one can never disagree.
//! - The coinbase is implicit (no reward transaction): applying a block
//!   pays its miner `block_reward + fee`, so there is no coinbase to get
//!   wrong and no `bad_coinbase` reason.
//! - Nodes never poll for blocks, but peer maintenance asks every peer for
//!   its status (to see that it is alive); a peer reporting a higher chain
//!   is synced from. That is what lets a node that lost a gossip message
//!   catch up once the network goes quiet.

pub mod behaviour;
pub mod block;
pub mod chain;
pub mod clock;
pub mod encode;
pub mod faults;
pub mod hash;
pub mod intern;
pub mod invalid;
pub mod maps;
pub mod measure;
pub mod memory;
pub mod mempool;
pub mod mining;
pub mod network;
pub mod node;
pub mod observer;
pub mod orphans;
pub mod params;
pub mod power;
pub mod sigcache;
pub mod state;
pub mod tx;
pub mod validate;
pub mod wallet;
pub mod wire;

pub use behaviour::{Behaviour, Context, Forge};
pub use block::{Block, BlockHeader, CheckedBlock};
pub use chain::{Chain, TipChange};
pub use clock::{Clock, Skew};
pub use hash::{Address, BlockHash, Signature, TxId};
pub use network::{Inbox, Network, Store, Tracker};
pub use node::{Config, Handle, Mining, Node, wait_for_agreement};
pub use observer::{Event, Observer};
pub use params::Params;
pub use power::HashPower;
pub use state::{Account, State};
pub use tx::Transaction;
pub use validate::ValidationError;
pub use wallet::Wallet;
pub use wire::{
    BlockAck, NetError, Outgoing, Payload, PeerError, PeerInfo, PeerUrl, PeerUrlError, Status,
    TxAck,
};
