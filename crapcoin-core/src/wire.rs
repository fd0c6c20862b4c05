//! What peers exchange: [`PeerUrl`], [`Status`], [`PeerInfo`], [`BlockAck`],
//! [`Payload`] and [`Outgoing`], and the errors of talking to a peer
//! ([`NetError`], [`PeerError`]).
//!
//! The bottom layer of the engine: these are plain data, imported by the
//! plug-in traits ([`crate::network`], [`crate::behaviour`],
//! [`crate::observer`]), the engine and the in-memory network alike, and
//! they import none of those.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::block::Block;
use crate::hash::{Address, BlockHash};
use crate::invalid::ValidationError;

/// Longest peer URL accepted, in bytes.
pub const MAX_PEER_URL_LEN: usize = 256;

/// Where a peer is reached: `http://HOST:PORT`, `https://…` or, on the
/// in-memory network, `mem://NAME`. Checked on parse; never trusted further.
///
/// Shared text: a clone is a reference count, not a copy. A node clones
/// its peers' URLs for every message it queues, and a simulation queues
/// tens of thousands of messages a virtual second (BENCHMARKS.md, issue
/// 14). Hashing, ordering and equality are the text's, as before.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerUrl(Arc<str>);

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
        Ok(Self(Arc::from(s.trim_end_matches('/'))))
    }
}

impl Serialize for PeerUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Its share of the network's hash power, when it mines on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_share: Option<f64>,
}

/// A node as the tracker knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Where it is reached.
    pub url: PeerUrl,
    /// Its wallet address.
    pub address: Address,
    /// Its name.
    pub name: String,
    /// Its behaviour's name.
    pub behaviour: String,
    /// Its share of the network's hash power, when it mines on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_share: Option<f64>,
}

/// How a receiver answered a relayed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxAck {
    /// Valid and new: in the mempool, relayed on.
    Accepted,
    /// Already waiting there; not relayed again.
    Duplicate,
    /// Not kept, through no fault of the sender: the sender is banned, or
    /// the receiver's pool is full or holds another transaction with that
    /// nonce.
    Ignored,
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
    /// Not looked at: the receiver's behaviour chose to ignore it, the
    /// sender is banned (it was dropped for sending invalid data), or it is
    /// an orphan past the sender's orphan rate (see
    /// [`crate::Config::orphan_rate`]).
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
    /// Nobody answers at that URL, or the connection broke.
    #[error("unreachable: {0}")]
    Unreachable(Unreachable),
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
    BadResponse(BadResponse),
}

impl From<Unreachable> for NetError {
    fn from(e: Unreachable) -> Self {
        Self::Unreachable(e)
    }
}

impl From<BadResponse> for NetError {
    fn from(e: BadResponse) -> Self {
        Self::BadResponse(e)
    }
}

/// Why a peer could not be reached: the call never got an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unreachable {
    /// Nothing accepted the connection (nothing listens at that URL, or no
    /// in-memory node is attached there).
    #[error("nothing listens there")]
    NoListener,
    /// The connection broke before the answer was complete.
    #[error("connection lost")]
    ConnectionLost,
    /// This node is shutting down and makes no more calls.
    #[error("shutting down")]
    ShuttingDown,
    /// Any other transport failure, as the transport describes it.
    #[error("transport: {detail}")]
    Transport {
        /// The transport's description.
        detail: String,
    },
}

/// How an answer broke the protocol. A peer answering this way is
/// misbehaving or broken, not merely unreachable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadResponse {
    /// Not the JSON the call answers with.
    #[error("malformed answer: {detail}")]
    Malformed {
        /// What the parser said.
        detail: String,
    },
    /// A body larger than the call reads.
    #[error("answer over {cap} bytes")]
    TooLarge {
        /// The most bytes the call reads.
        cap: usize,
    },
    /// More items than asked for.
    #[error("{got} items, at most {asked} asked")]
    TooMany {
        /// Items asked for at most.
        asked: usize,
        /// Items answered.
        got: usize,
    },
    /// A page of blocks that does not start at the height asked for.
    #[error("page starts at height {got}, {asked} asked")]
    PageMismatch {
        /// The height asked for.
        asked: u64,
        /// The first block's height.
        got: u64,
    },
    /// An empty page below the height the peer claims as its tip.
    #[error("empty page at height {height}, below the peer's tip")]
    EmptyPage {
        /// The height asked for.
        height: u64,
    },
    /// The fork search found no block both chains hold.
    #[error("no common block found")]
    NoCommonBlock,
    /// Another block than the one asked for by hash.
    #[error("answered block {got}, {asked} asked")]
    WrongBlock {
        /// The hash asked for.
        asked: BlockHash,
        /// The hash answered.
        got: BlockHash,
    },
    /// A block in the answer does not hold together (e.g. its claimed
    /// hash is not its hash).
    #[error("invalid block in the answer: {0}")]
    InvalidBlock(ValidationError),
    /// An HTTP status the call does not expect (e.g. a redirect).
    #[error("unexpected status {0}")]
    UnexpectedStatus(u16),
}

/// Why a peer was not added, or a sync from it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// That URL is this node.
    #[error("that is this node's own url")]
    ItsMe,
    /// The peer misbehaved recently.
    #[error("peer is banned")]
    Banned,
    /// The peer table is full.
    #[error("peer table is full")]
    Full,
    /// The peer did not answer properly.
    #[error("peer did not answer: {0}")]
    Unreachable(NetError),
    /// The peer answered, but against the protocol (found during a sync:
    /// a page that does not start where asked, no common block, ...).
    #[error("peer broke the protocol: {0}")]
    Protocol(BadResponse),
    /// The peer is on another network (different genesis).
    #[error("peer is on another network")]
    WrongNetwork,
    /// The peer sent invalid data.
    #[error("peer sent invalid data: {0}")]
    BadData(ValidationError),
}

impl PeerError {
    /// The snake_case reason, as the HTTP API shows it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ItsMe => "own_url",
            Self::Banned => "banned",
            Self::Full => "peer_table_full",
            Self::Unreachable(_) => "unreachable",
            Self::Protocol(_) => "bad_response",
            Self::WrongNetwork => "wrong_network",
            Self::BadData(e) => e.reason(),
        }
    }

    /// A failed call during a sync: an answer against the protocol is
    /// [`PeerError::Protocol`], anything else [`PeerError::Unreachable`].
    pub(crate) fn from_sync(e: NetError) -> Self {
        match e {
            NetError::BadResponse(bad) => Self::Protocol(bad),
            other => Self::Unreachable(other),
        }
    }
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
