//! The traits that connect a [`crate::Node`] to the world: [`Network`] (how to
//! reach peers), [`Tracker`] (where to find them) and [`Store`] (where blocks
//! and peers persist), with the types they exchange. `crapcoin-node`
//! implements them over HTTP and SQL; [`crate::memory`] implements them in
//! memory for tests and simulations.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize};

use crate::block::{Block, CheckedBlock};
use crate::hash::{Address, BlockHash};
use crate::node::WeakHandle;

/// Longest peer URL accepted, in bytes.
pub const MAX_PEER_URL_LEN: usize = 256;

/// Where a peer is reached: `http://HOST:PORT`, `https://…` or, on the
/// in-memory network, `mem://NAME`. Checked on parse; never trusted further.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PeerUrl(String);

/// Why text is not a [`PeerUrl`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad peer url: {0}")]
pub struct PeerUrlError(pub &'static str);

impl PeerUrl {
    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PeerUrl {
    type Err = PeerUrlError;

    fn from_str(s: &str) -> Result<Self, PeerUrlError> {
        if s.len() > MAX_PEER_URL_LEN {
            return Err(PeerUrlError("too long"));
        }
        let rest = ["http://", "https://", "mem://"]
            .iter()
            .find_map(|scheme| s.strip_prefix(scheme))
            .ok_or(PeerUrlError("scheme must be http, https or mem"))?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PeerUrlError("host must be printable ascii"));
        }
        Ok(Self(s.trim_end_matches('/').to_owned()))
    }
}

impl<'de> Deserialize<'de> for PeerUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerUrl({})", self.0)
    }
}

/// What a node says about itself (`GET /status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's name.
    pub node_id: String,
    /// The node's wallet address (where its rewards go).
    pub address: Address,
    /// The name of its behaviour.
    pub behaviour: String,
    /// Height of its best chain.
    pub height: u64,
    /// Its best tip.
    pub tip: BlockHash,
    /// How many peers it knows.
    pub peers: usize,
    /// Software version.
    pub version: String,
    /// Its network's genesis, to spot nodes of another network at once.
    pub genesis: BlockHash,
    /// Where it is reached.
    pub url: PeerUrl,
}

/// A node as the tracker knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Where it is reached.
    pub url: PeerUrl,
    /// Its wallet address.
    pub address: Address,
    /// Its name.
    pub name: String,
    /// Its behaviour's name.
    pub behaviour: String,
}

/// How a receiver answered a pushed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockAck {
    /// Valid and new: stored (on the best chain or a side branch).
    Accepted,
    /// Already known; not relayed again.
    Duplicate,
    /// Parent unknown: kept in the orphan pool while ancestors are fetched.
    Orphan,
    /// Not looked at: the receiver's behaviour chose to ignore it, or the
    /// sender is banned (it was dropped for sending invalid data).
    Ignored,
}

/// What a node sends a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "blocks are the common case; boxing them would allocate on every send"
)]
pub enum Payload {
    /// A block.
    Block(Block),
    /// Raw bytes as a block body: what a garbling behaviour sends.
    Raw(Vec<u8>),
}

/// One message to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The receiver.
    pub to: PeerUrl,
    /// What it gets.
    pub payload: Payload,
}

impl Outgoing {
    /// A block for `to`.
    pub fn block(to: &PeerUrl, block: &Block) -> Self {
        Self {
            to: to.clone(),
            payload: Payload::Block(block.clone()),
        }
    }
}

/// Why a call to a peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Nobody answers at that URL.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The message was lost on the way (in-memory loss knob).
    #[error("message lost")]
    Lost,
    /// The peer refused the request, naming a reason.
    #[error("refused ({status}): {reason}")]
    Refused {
        /// HTTP-like status code.
        status: u16,
        /// The snake_case reason.
        reason: String,
    },
    /// The answer was not what the protocol allows.
    #[error("bad response: {0}")]
    BadResponse(String),
}

/// How a node reaches its peers. Every call is made with a timeout by the
/// caller; implementations should still bound their own work.
#[async_trait]
pub trait Network: Send + Sync + 'static {
    /// Tells the network a local node now answers at `url` (the in-memory
    /// network delivers through this; HTTP networks need nothing).
    fn attach(&self, _url: &PeerUrl, _node: WeakHandle) {}

    /// Pushes a block (gossip). `from` is the sender's URL, so the receiver
    /// can fetch missing ancestors from it.
    async fn push_block(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, NetError>;

    /// The peer's [`Status`].
    async fn status(&self, to: &PeerUrl) -> Result<Status, NetError>;

    /// A page of the peer's best chain.
    async fn blocks(&self, to: &PeerUrl, from: u64, limit: usize) -> Result<Vec<Block>, NetError>;

    /// The peer's whole best chain, genesis first.
    async fn chain(&self, to: &PeerUrl) -> Result<Vec<Block>, NetError>;

    /// One block by hash, `None` when the peer does not know it.
    async fn block(&self, to: &PeerUrl, hash: &BlockHash) -> Result<Option<Block>, NetError>;

    /// The peers the peer knows.
    async fn peers(&self, to: &PeerUrl) -> Result<Vec<PeerUrl>, NetError>;

    /// Tells the peer about us.
    async fn announce(&self, to: &PeerUrl, me: &PeerUrl) -> Result<(), NetError>;
}

/// Where nodes find each other.
#[async_trait]
pub trait Tracker: Send + Sync + 'static {
    /// Registers (or refreshes) this node.
    async fn register(&self, me: &PeerInfo) -> Result<(), NetError>;

    /// Up to `count` live nodes other than `me`, at random.
    async fn sample(&self, me: &PeerUrl, count: usize) -> Result<Vec<PeerUrl>, NetError>;
}

/// No tracker: a node finds peers only through `--peer`-style seeds and
/// announcements.
#[async_trait]
impl Tracker for () {
    async fn register(&self, _me: &PeerInfo) -> Result<(), NetError> {
        Ok(())
    }

    async fn sample(&self, _me: &PeerUrl, _count: usize) -> Result<Vec<PeerUrl>, NetError> {
        Ok(Vec::new())
    }
}

/// What a [`Store`] gives back on start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every stored block (any order; the node sorts by height).
    pub blocks: Vec<Block>,
    /// Known peers.
    pub peers: Vec<PeerUrl>,
}

/// A storage failure, with its cause.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// Where a node persists blocks and peers. A block is acknowledged only
/// after [`Store::save_blocks`] returned.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Everything stored.
    async fn load(&self) -> Result<Snapshot, StoreError>;

    /// Stores blocks (already valid), parents before children.
    async fn save_blocks(&self, blocks: &[Arc<CheckedBlock>]) -> Result<(), StoreError>;

    /// Remembers a peer.
    async fn save_peer(&self, peer: &PeerUrl) -> Result<(), StoreError>;

    /// Forgets a peer.
    async fn remove_peer(&self, peer: &PeerUrl) -> Result<(), StoreError>;

    /// Forgets every block (an amnesiac behaviour's wipe).
    async fn clear_blocks(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_checked() {
        assert!("http://127.0.0.1:80".parse::<PeerUrl>().is_ok());
        assert_eq!(
            "mem://a/".parse::<PeerUrl>().expect("valid").as_str(),
            "mem://a"
        );
        for bad in ["", "ftp://x", "http://", "http://a b", &"x".repeat(300)] {
            assert!(bad.parse::<PeerUrl>().is_err(), "{bad}");
        }
    }
}
