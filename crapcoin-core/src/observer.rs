//! Observer hooks: typed events a node reports as it works.
//!
//! Observers are called synchronously, outside every lock, in the order
//! events happen. They must return quickly and never block: an observer that
//! needs to do I/O pushes into a bounded queue (see [`Channel`]) and returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::hash::{BlockHash, TxId};
use crate::invalid::ValidationError;
use crate::wire::PeerUrl;

/// Why a peer was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// It stopped answering.
    Unresponsive,
    /// It sent invalid data too often.
    Misbehaving,
    /// It is on another network.
    WrongNetwork,
    /// A fresh peer took its place (see the engine's peer rotation), so
    /// the overlay keeps mixing: two halves of a network that lost sight of
    /// each other find each other again.
    Rotated,
}

/// Something a node did or saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// This node mined a block.
    BlockMined {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u64,
        /// Its parent.
        parent: BlockHash,
        /// Its transaction, if any.
        tx: Option<TxId>,
    },
    /// A valid new block was stored.
    BlockAccepted {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u64,
        /// Its parent, so that observers can draw the block tree.
        parent: BlockHash,
        /// Who sent it (`None`: mined here or loaded).
        from: Option<PeerUrl>,
        /// Whether it is on the best chain now.
        best: bool,
    },
    /// A block was refused.
    BlockRejected {
        /// The block, when it could be hashed.
        hash: Option<BlockHash>,
        /// Why.
        reason: ValidationError,
        /// Who sent it.
        from: Option<PeerUrl>,
    },
    /// A block's parent is unknown; it waits in the orphan pool.
    BlockOrphaned {
        /// The block.
        hash: BlockHash,
        /// Its missing parent.
        parent: BlockHash,
        /// Who sent it (ancestors are fetched from there).
        from: Option<PeerUrl>,
    },
    /// The best chain switched branches.
    Reorg {
        /// Tip before.
        old_tip: BlockHash,
        /// Tip after.
        new_tip: BlockHash,
        /// Blocks rolled back.
        depth: usize,
        /// New height.
        height: u64,
    },
    /// A peer joined the peer table.
    PeerAdded {
        /// The peer.
        peer: PeerUrl,
    },
    /// A peer left the peer table.
    PeerDropped {
        /// The peer.
        peer: PeerUrl,
        /// Why.
        why: DropReason,
    },
    /// This node accepted a transfer to mine.
    TransferSubmitted {
        /// The transaction.
        txid: TxId,
        /// Coins moved.
        amount: u64,
    },
    /// A transfer this node accepted is on its best chain.
    TransferIncluded {
        /// The transaction.
        txid: TxId,
        /// The block holding it.
        block: BlockHash,
        /// That block's height.
        height: u64,
    },
    /// A transport served a request (reported by the transport).
    RequestServed {
        /// E.g. `GET`.
        method: String,
        /// The route template, e.g. `/block/{hash}`.
        route: String,
        /// Response status.
        status: u16,
        /// Time to serve.
        #[serde(with = "micros")]
        latency: Duration,
        /// The caller, when known.
        peer: Option<String>,
    },
}

mod micros {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

impl Event {
    /// The event's kind as a snake_case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BlockMined { .. } => "block_mined",
            Self::BlockAccepted { .. } => "block_accepted",
            Self::BlockRejected { .. } => "block_rejected",
            Self::BlockOrphaned { .. } => "block_orphaned",
            Self::Reorg { .. } => "reorg",
            Self::PeerAdded { .. } => "peer_added",
            Self::PeerDropped { .. } => "peer_dropped",
            Self::TransferSubmitted { .. } => "transfer_submitted",
            Self::TransferIncluded { .. } => "transfer_included",
            Self::RequestServed { .. } => "request_served",
        }
    }
}

/// Receives a node's events. Every method has a do-nothing default.
pub trait Observer: Send + Sync + 'static {
    /// Called for every event of the node named `node`.
    fn on_event(&self, _node: &str, _event: &Event) {}
}

/// The observer that ignores everything.
impl Observer for () {}

/// Closures are observers.
impl<F> Observer for F
where
    F: Fn(&str, &Event) + Send + Sync + 'static,
{
    fn on_event(&self, node: &str, event: &Event) {
        self(node, event);
    }
}

impl<O: Observer + ?Sized> Observer for Arc<O> {
    fn on_event(&self, node: &str, event: &Event) {
        (**self).on_event(node, event);
    }
}

/// An observer that forwards events into a bounded channel, dropping (and
/// counting) what does not fit, so a slow consumer never slows the node.
#[derive(Debug)]
pub struct Channel {
    tx: tokio::sync::mpsc::Sender<(String, Event)>,
    dropped: AtomicU64,
}

impl Channel {
    /// A channel observer holding at most `capacity` events, and its receiver.
    pub fn new(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<(String, Event)>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        (
            Self {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Events dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Observer for Channel {
    fn on_event(&self, node: &str, event: &Event) {
        if self.tx.try_send((node.to_owned(), event.clone())).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
