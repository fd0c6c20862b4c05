//! Why a node did not launch ([`LaunchError`]) and why a transaction or
//! transfer was refused or not confirmed ([`TxError`]).

use crate::invalid::ValidationError;
use crate::mempool::MempoolError;
use crate::network::StoreError;

/// Why a node did not launch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store holds a block that is not valid here.
    #[error("stored block at height {height} is invalid: {reason}")]
    CorruptStore {
        /// Its height.
        height: u64,
        /// Why.
        reason: ValidationError,
    },
}

/// Why a transaction or transfer was refused or not confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The transaction is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The mempool refused it.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// Too many coinbase-only blocks are waiting to be mined
    /// ([`crate::Handle::mine`]); nothing was queued.
    #[error("mine queue is full ({capacity} requests)")]
    MineQueueFull {
        /// The bound.
        capacity: usize,
    },
    /// It was accepted, but no block held it in time.
    #[error("not confirmed within the timeout")]
    Timeout,
    /// It was dropped before inclusion (a conflicting transaction won).
    #[error("dropped before inclusion")]
    Dropped,
    /// The node is shutting down.
    #[error("node is shutting down")]
    ShuttingDown,
    /// The node has not yet synced from its peers since it started, so its
    /// wallet signs nothing: its chain may be behind its own past (a node
    /// restarted on an older copy of its data, say), and a transfer signed
    /// now could reuse a nonce already spent on the network's chain and
    /// never be mined. Try again in a moment.
    #[error("catching up with its peers since start; try again shortly")]
    CatchingUp,
    /// The store could not record it, so it was not acknowledged (and is
    /// not in the mempool); the store's message.
    #[error("not recorded: {0}")]
    NotRecorded(String),
}

impl TxError {
    /// The snake_case reason, as the HTTP API shows it. A full mine queue
    /// answers `mempool_full`, as it did before it had its own variant:
    /// the reason is part of the HTTP contract.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.reason(),
            Self::Mempool(e) => e.reason(),
            Self::MineQueueFull { .. } => "mempool_full",
            Self::Timeout => "timeout",
            Self::Dropped => "dropped",
            Self::ShuttingDown => "shutting_down",
            Self::CatchingUp => "catching_up",
            Self::NotRecorded(_) => "not_recorded",
        }
    }
}
