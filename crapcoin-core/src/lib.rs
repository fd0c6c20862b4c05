//! `crapcoin-core`: CrapCoin's protocol and embeddable node engine.
//!
//! CrapCoin is a toy proof-of-work cryptocurrency built as a sandbox for
//! watching consensus under attack. This crate is everything but the
//! transports: the types and their canonical encoding, validation, fork
//! choice, mining, the wallet, and a [`Node`] engine whose decisions
//! ([`Behaviour`]), reports ([`Observer`]), transport ([`Network`]), peer
//! discovery ([`Tracker`]) and persistence ([`Store`]) are pluggable. No HTTP,
//! no SQL: `crapcoin-node` adds those.
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
//! | [`block`] | `BlockHeader`, `Block` (unchecked), `CheckedBlock`, the JSON wire form |
//! | [`params`] | network `Params` and the deterministic genesis |
//! | [`validate`] | `ValidationError` (one variant per reason) and the checks that make a `CheckedBlock` |
//! | [`state`] | balances and nonces with apply and undo |
//! | [`chain`] | the block tree: fork choice by most work, reorgs of any depth, `TipChange` |
//! | [`orphans`], [`mempool`] | the bounded orphan pool and mempool |
//! | [`mining`] | cooperative, cancellable proof-of-work search |
//! | [`wallet`] | the ed25519 key: address, signing, saving |
//! | [`behaviour`] | `Behaviour` (decision points, honest defaults), `Context`, `Forge` |
//! | [`observer`] | `Event`s and `Observer` hooks |
//! | [`network`] | the `Network`, `Tracker` and `Store` traits and what they exchange |
//! | [`node`] | the engine: `Node` builder, `Handle`, sync, gossip, peers, auto mode |
//! | [`memory`] | in-memory network, tracker and store for simulations |
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
pub mod hash;
pub mod invalid;
pub mod memory;
pub mod mempool;
pub mod mining;
pub mod network;
pub mod node;
pub mod observer;
pub mod orphans;
pub mod params;
pub mod state;
pub mod tx;
pub mod validate;
pub mod wallet;
pub mod wire;

pub use behaviour::{Behaviour, Context, Forge};
pub use block::{Block, BlockHeader, CheckedBlock};
pub use chain::{Chain, TipChange};
pub use clock::Clock;
pub use hash::{Address, BlockHash, Signature, TxId};
pub use network::{Inbox, Network, Store, Tracker};
pub use node::{Config, Handle, Node};
pub use observer::{Event, Observer};
pub use params::Params;
pub use state::{Account, State};
pub use tx::Transaction;
pub use validate::ValidationError;
pub use wallet::Wallet;
pub use wire::{
    BlockAck, NetError, Outgoing, Payload, PeerError, PeerInfo, PeerUrl, PeerUrlError, Status,
};
