//! Behaviours: the node's decision points, each defaulting to what an honest
//! node does.
//!
//! A misbehaviour implements [`Behaviour`] and overrides only the decisions
//! it corrupts; everything else stays honest. Each default calls the honest
//! decision in [`honest`], which an override can call too: to change one
//! thing (relay honestly, but to fewer peers), or to watch without changing
//! anything (look, then return the honest answer). Each method gets a
//! [`Context`] with read access to the node, through the [`View`] the
//! engine implements, and a [`Forge`] that builds blocks exactly as told —
//! valid proof of work over invalid content included.
//!
//! Decision points, in the order a block meets them:
//!
//! | method | decides |
//! | --- | --- |
//! | [`Behaviour::block_timestamp`] | the timestamp of a block this node mines |
//! | [`Behaviour::publish`] | what to send, to whom, after mining a block |
//! | [`Behaviour::incoming`] | what to do with a block from a peer, before validation |
//! | [`Behaviour::relay`] | what to send on after accepting a peer's block |
//! | [`Behaviour::serve_status`] | what to answer for the node's status |
//! | [`Behaviour::serve_blocks`] | what to answer for the chain and its pages |
//! | [`Behaviour::serve_peers`] | what to answer for the peer list |
//! | [`Behaviour::serve_delay`] | how long to wait before answering |
//! | [`Behaviour::next_auto`] | which transfer to make next in auto mode |
//! | [`Behaviour::tick`] | what to do on its own, every [`Behaviour::tick_interval`] |

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;

use crate::block::{Block, BlockHeader, CheckedBlock, tx_root};
use crate::hash::{Address, BlockHash};
use crate::mining;
use crate::params::Params;
use crate::state::Account;
use crate::tx::Transaction;
use crate::wallet::Wallet;
use crate::wire::{Outgoing, Payload, PeerUrl, Status};

pub mod honest;

/// What auto mode does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AutoAction {
    /// Transfer `amount` to `to` from the node's wallet.
    Transfer {
        /// Recipient.
        to: Address,
        /// Coins.
        amount: u64,
    },
    /// Mine a coinbase-only block (to earn coins, or to be known).
    Mine,
}

/// Something a behaviour does on its own from [`Behaviour::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send one message.
    Send(Outgoing),
    /// Send a payload to every peer.
    Broadcast(Payload),
    /// Let a block out: if it is valid and new to this node it is inserted
    /// and relayed like any accepted block; otherwise (e.g. withheld after
    /// mining) it is sent to every peer as is.
    Release(Block),
    /// Forget the chain (back to genesis) and the stored blocks.
    Wipe,
    /// Take a transaction as this node's own, as if submitted to it: into
    /// its mempool (mined by its miner) and passed on as
    /// [`Behaviour::relay_tx`] decides. A refused one is logged and
    /// dropped.
    Submit(Transaction),
    /// Send a transaction to every peer without taking it into this
    /// node's mempool (its miner never mines it).
    BroadcastTx(Transaction),
}

/// A node's decision points. Every method defaults to the honest decision.
pub trait Behaviour: Send + Sync + 'static {
    /// The behaviour's name, shown in `/status` and on the dashboard.
    fn name(&self) -> String {
        "honest".to_owned()
    }

    /// The timestamp of a block mined on `parent` at `now_ms`: honest nodes
    /// use their clock, never going below the parent's.
    fn block_timestamp(&self, ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
        honest::block_timestamp(ctx, parent, now_ms)
    }

    /// After mining `block`: what to send, to whom. Honest: the block to
    /// every peer, once.
    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        honest::publish(ctx, block, peers)
    }

    /// A block from `from`, before validation: return the block to process
    /// (possibly altered) or `None` to ignore it. Honest: process it.
    fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        honest::incoming(ctx, block, from)
    }

    /// After accepting a peer's new block: what to send on. Honest: the
    /// block to every peer but the sender (`peers` already excludes it).
    fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        honest::relay(ctx, block, peers)
    }

    /// After a peer's block joined the block tree (on the best chain or a
    /// side branch): what to do about it, at once. Honest: nothing. A
    /// selfish miner decides here what to release.
    fn accepted(&self, ctx: &Context<'_>, block: &Block, from: Option<&PeerUrl>) -> Vec<Action> {
        honest::accepted(ctx, block, from)
    }

    /// After accepting a transaction new to this node: the peers to pass it
    /// to. Honest: every peer but the sender (`peers` already excludes
    /// it).
    fn relay_tx(&self, ctx: &Context<'_>, tx: &Transaction, peers: &[PeerUrl]) -> Vec<PeerUrl> {
        honest::relay_tx(ctx, tx, peers)
    }

    /// The answer to a status request from a peer. Honest: the true status.
    /// A liar claims a height it does not have here, to lure peers into
    /// syncing from it.
    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        honest::serve_status(ctx, honest)
    }

    /// The answer to a chain request starting at height `from` (`0` with
    /// the whole chain for `/blockchain`). Honest: the true blocks.
    fn serve_blocks(&self, ctx: &Context<'_>, from: u64, honest: Vec<Block>) -> Vec<Block> {
        honest::serve_blocks(ctx, from, honest)
    }

    /// The answer to a peer-list request. Honest: the true peers.
    fn serve_peers(&self, ctx: &Context<'_>, honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
        honest::serve_peers(ctx, honest)
    }

    /// How long to wait before answering any request. Honest: no wait.
    fn serve_delay(&self, ctx: &Context<'_>) -> Duration {
        honest::serve_delay(ctx)
    }

    /// Auto mode's next move. Honest: a random amount to a random known
    /// address, mining a coinbase-only block first when broke or alone.
    fn next_auto(&self, ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
        honest::next_auto(ctx, rng)
    }

    /// How often [`Behaviour::tick`] runs; `None` (honest) runs no ticker.
    fn tick_interval(&self) -> Option<Duration> {
        honest::tick_interval()
    }

    /// Acts on its own. Honest: does nothing.
    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        honest::tick(ctx)
    }
}

/// The honest behaviour: every default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Honest;

impl Behaviour for Honest {}

impl<B: Behaviour + ?Sized> Behaviour for Arc<B> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn block_timestamp(&self, ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
        (**self).block_timestamp(ctx, parent, now_ms)
    }
    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        (**self).publish(ctx, block, peers)
    }
    fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        (**self).incoming(ctx, block, from)
    }
    fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        (**self).relay(ctx, block, peers)
    }
    fn accepted(&self, ctx: &Context<'_>, block: &Block, from: Option<&PeerUrl>) -> Vec<Action> {
        (**self).accepted(ctx, block, from)
    }
    fn relay_tx(&self, ctx: &Context<'_>, tx: &Transaction, peers: &[PeerUrl]) -> Vec<PeerUrl> {
        (**self).relay_tx(ctx, tx, peers)
    }
    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        (**self).serve_status(ctx, honest)
    }
    fn serve_blocks(&self, ctx: &Context<'_>, from: u64, honest: Vec<Block>) -> Vec<Block> {
        (**self).serve_blocks(ctx, from, honest)
    }
    fn serve_peers(&self, ctx: &Context<'_>, honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
        (**self).serve_peers(ctx, honest)
    }
    fn serve_delay(&self, ctx: &Context<'_>) -> Duration {
        (**self).serve_delay(ctx)
    }
    fn next_auto(&self, ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
        (**self).next_auto(ctx, rng)
    }
    fn tick_interval(&self) -> Option<Duration> {
        (**self).tick_interval()
    }
    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        (**self).tick(ctx)
    }
}

/// The honest auto-mode choice: the old name of [`honest::next_auto`],
/// kept so behaviours written against it still build.
#[deprecated(note = "use `behaviour::honest::next_auto`, beside every other honest decision")]
pub fn honest_auto(ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
    honest::next_auto(ctx, rng)
}

/// What a behaviour may read of its node: the engine implements it, a test
/// of a behaviour can implement it over a fixture. Read-only; every read is
/// short (the engine takes its lock per read and holds none between calls).
pub trait View: Send + Sync {
    /// The node's name.
    fn name(&self) -> &str;
    /// The node's wallet (its address, and signing).
    fn wallet(&self) -> &Wallet;
    /// Where the node is reached.
    fn url(&self) -> &PeerUrl;
    /// Network parameters.
    fn params(&self) -> &Params;
    /// The network's chain id (genesis hash).
    fn chain_id(&self) -> BlockHash;
    /// The fee the node pays on its transfers.
    fn fee(&self) -> u64;
    /// The node's clock, in ms since the epoch.
    fn now_ms(&self) -> u64;
    /// Height of the best chain.
    fn height(&self) -> u64;
    /// The best tip block.
    fn tip(&self) -> Arc<CheckedBlock>;
    /// The best chain's block at `height`.
    fn block_at(&self, height: u64) -> Option<Arc<CheckedBlock>>;
    /// An account on the best chain.
    fn account(&self, address: &Address) -> Account;
    /// The node's own balance minus what its pending transfers will spend.
    fn spendable(&self) -> u64;
    /// Every address with an account on the best chain, sorted.
    fn known_addresses(&self) -> Vec<Address>;
    /// The node's peers, sorted.
    fn peers(&self) -> Vec<PeerUrl>;
}

/// Read access to the node for a behaviour's decision (through its
/// [`View`]), and the tools to forge.
pub struct Context<'a> {
    view: &'a dyn View,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("node", &self.view.name())
            .finish()
    }
}

impl<'a> Context<'a> {
    /// A context reading `view` (the engine passes itself; a test passes a
    /// fixture).
    pub fn new(view: &'a dyn View) -> Self {
        Self { view }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.view.name()
    }

    /// The node's wallet address.
    pub fn address(&self) -> Address {
        self.view.wallet().address()
    }

    /// The node's wallet (to sign forged transactions).
    pub fn wallet(&self) -> &Wallet {
        self.view.wallet()
    }

    /// Where the node is reached.
    pub fn url(&self) -> &PeerUrl {
        self.view.url()
    }

    /// Network parameters.
    pub fn params(&self) -> &Params {
        self.view.params()
    }

    /// The network's chain id (genesis hash).
    pub fn chain_id(&self) -> BlockHash {
        self.view.chain_id()
    }

    /// The fee the node pays on its transfers.
    pub fn fee(&self) -> u64 {
        self.view.fee()
    }

    /// The node's clock, in ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.view.now_ms()
    }

    /// Height of the best chain.
    pub fn height(&self) -> u64 {
        self.view.height()
    }

    /// The best tip block.
    pub fn tip(&self) -> Arc<CheckedBlock> {
        self.view.tip()
    }

    /// The best chain's block at `height`.
    pub fn block_at(&self, height: u64) -> Option<Arc<CheckedBlock>> {
        self.view.block_at(height)
    }

    /// An account on the best chain.
    pub fn account(&self, address: &Address) -> Account {
        self.view.account(address)
    }

    /// The node's own balance minus what its pending transfers will spend.
    pub fn spendable(&self) -> u64 {
        self.view.spendable()
    }

    /// Every address with an account on the best chain.
    pub fn known_addresses(&self) -> Vec<Address> {
        self.view.known_addresses()
    }

    /// The node's peers.
    pub fn peers(&self) -> Vec<PeerUrl> {
        self.view.peers()
    }

    /// A block builder on the best tip, mined by this node, stamped now.
    pub fn forge(&self) -> Forge {
        let tip = self.tip();
        Forge::new(self.params(), &tip.header)
            .miner(self.address())
            .timestamp(self.now_ms().max(tip.header.timestamp))
    }

    /// A transfer signed by this node's wallet with the given nonce: valid
    /// or not, as asked (e.g. an overspend or a replayed nonce).
    pub fn sign_transfer(&self, to: Address, amount: u64, fee: u64, nonce: u64) -> Transaction {
        self.wallet()
            .transfer(&self.chain_id(), to, amount, fee, nonce)
    }
}

/// Builds a block exactly as told: by default a valid empty child of the
/// given parent; every field can be overridden, and [`Forge::mine`] gives it
/// valid proof of work whatever the content.
#[derive(Debug, Clone)]
pub struct Forge {
    header: BlockHeader,
    tx: Option<Transaction>,
    tx_root: Option<BlockHash>,
}

impl Forge {
    /// An empty block on `parent` with the network's difficulty, the
    /// parent's timestamp and a zero miner.
    pub fn new(params: &Params, parent: &BlockHeader) -> Self {
        Self {
            header: BlockHeader {
                height: parent.height + 1,
                prev_hash: parent.hash(),
                timestamp: parent.timestamp,
                difficulty: params.difficulty,
                nonce: 0,
                miner: Address::ZERO,
                tx_root: tx_root(None),
            },
            tx: None,
            tx_root: None,
        }
    }

    /// Who gets the reward.
    pub fn miner(mut self, miner: Address) -> Self {
        self.header.miner = miner;
        self
    }

    /// The timestamp.
    pub fn timestamp(mut self, ms: u64) -> Self {
        self.header.timestamp = ms;
        self
    }

    /// The transaction (the tx root follows unless overridden).
    pub fn tx(mut self, tx: Transaction) -> Self {
        self.tx = Some(tx);
        self
    }

    /// Overrides the height.
    pub fn height(mut self, height: u64) -> Self {
        self.header.height = height;
        self
    }

    /// Overrides the parent hash.
    pub fn prev_hash(mut self, hash: BlockHash) -> Self {
        self.header.prev_hash = hash;
        self
    }

    /// Overrides the difficulty field.
    pub fn difficulty(mut self, bits: u8) -> Self {
        self.header.difficulty = bits;
        self
    }

    /// Overrides the tx root (normally it commits to the transaction).
    pub fn tx_root(mut self, root: BlockHash) -> Self {
        self.tx_root = Some(root);
        self
    }

    /// The header as it stands, before proof of work.
    pub fn header(&self) -> BlockHeader {
        let mut header = self.header.clone();
        header.tx_root = self.tx_root.unwrap_or_else(|| tx_root(self.tx.as_ref()));
        header
    }

    /// The block with valid proof of work for its header's difficulty
    /// field. Blocking; at the network's difficulty it takes milliseconds.
    pub fn mine(self) -> Block {
        let header = mining::mine_blocking(self.header());
        Block {
            header,
            tx: self.tx,
        }
    }

    /// The block with a nonce that does NOT meet the difficulty.
    pub fn bad_pow(self) -> Block {
        let mut header = self.header();
        // At difficulty 0 every hash meets it; there is no bad nonce to find.
        while header.difficulty > 0 && header.meets_difficulty() {
            header.nonce += 1;
        }
        Block {
            header,
            tx: self.tx,
        }
    }
}
