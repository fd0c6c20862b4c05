//! Why a block or transaction is invalid: [`ValidationError`], one variant
//! per reason. It sits below [`crate::block`] and [`crate::validate`] (both
//! name it), so the data types and the checks that use it never import each
//! other in a loop.

use serde::Serialize;

use crate::hash::BlockHash;

/// Why a block or transaction is refused. Each variant is one reason, with a
/// stable snake_case name ([`ValidationError::reason`]) that the HTTP API,
/// metrics and Sauron show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ValidationError {
    /// The bytes or JSON are not a block or transaction at all.
    #[error("malformed input: {detail}")]
    Malformed {
        /// What the decoder said.
        detail: String,
    },
    /// The input is larger than any valid one.
    #[error("input is {size} bytes, at most {max} allowed")]
    TooLarge {
        /// Size received.
        size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The claimed hash is not the hash of the contents.
    #[error("claimed hash {claimed} does not match contents ({computed})")]
    BadHash {
        /// What the sender said.
        claimed: BlockHash,
        /// What the contents hash to.
        computed: BlockHash,
    },
    /// The header's difficulty is not the network's.
    #[error("difficulty {got} is not the network's {want}")]
    WrongDifficulty {
        /// In the header.
        got: u8,
        /// The network's.
        want: u8,
    },
    /// The header hash has too few leading zero bits.
    #[error("proof of work has {zeros} leading zero bits, {need} needed")]
    BadPow {
        /// Leading zero bits of the hash.
        zeros: u32,
        /// Bits required.
        need: u8,
    },
    /// `tx_root` does not commit to the block's transaction.
    #[error("tx root does not commit to the block's transaction")]
    BadTxRoot,
    /// The signature does not verify for `from`.
    #[error("signature does not verify for the sender")]
    BadSignature,
    /// A transfer of nothing.
    #[error("amount must be positive")]
    ZeroAmount,
    /// `amount + fee`, a balance or the supply would overflow.
    #[error("arithmetic overflow")]
    Overflow,
    /// The height is not the parent's plus one.
    #[error("height {got}, expected {want}")]
    BadHeight {
        /// In the header.
        got: u64,
        /// Parent height + 1.
        want: u64,
    },
    /// The parent is not known (the block is an orphan for now).
    #[error("unknown parent {parent}")]
    UnknownParent {
        /// The missing parent.
        parent: BlockHash,
    },
    /// The parent (or an earlier ancestor) was found invalid.
    #[error("builds on invalid block {ancestor}")]
    InvalidAncestor {
        /// The invalid ancestor.
        ancestor: BlockHash,
    },
    /// A chain that does not start from this network's genesis.
    #[error("genesis {got} is not this network's {want}")]
    WrongGenesis {
        /// The other genesis.
        got: BlockHash,
        /// Ours.
        want: BlockHash,
    },
    /// The timestamp is too far in the future. Not remembered as invalid:
    /// the same block is accepted once its time has come.
    #[error("timestamp {timestamp} is more than {max_future_ms} ms ahead of {now}")]
    TimestampTooNew {
        /// In the header.
        timestamp: u64,
        /// The receiver's clock.
        now: u64,
        /// Allowed lead.
        max_future_ms: u64,
    },
    /// The timestamp is earlier than the parent's.
    #[error("timestamp {timestamp} is before the parent's {parent}")]
    TimestampBeforeParent {
        /// In the header.
        timestamp: u64,
        /// The parent's.
        parent: u64,
    },
    /// The nonce is not the sender's next one (replay, or a gap).
    #[error("nonce {got}, the sender's next is {want}")]
    BadNonce {
        /// In the transaction.
        got: u64,
        /// The sender's next nonce.
        want: u64,
    },
    /// `amount + fee` exceeds the sender's balance.
    #[error("spends {needed}, the sender has {balance}")]
    Overspend {
        /// `amount + fee`.
        needed: u64,
        /// The sender's balance.
        balance: u64,
    },
}

impl ValidationError {
    /// Every reason name, in declaration order, for metrics and dashboards.
    pub const REASONS: &'static [&'static str] = &[
        "malformed",
        "too_large",
        "bad_hash",
        "wrong_difficulty",
        "bad_pow",
        "bad_tx_root",
        "bad_signature",
        "zero_amount",
        "overflow",
        "bad_height",
        "unknown_parent",
        "invalid_ancestor",
        "wrong_genesis",
        "timestamp_too_new",
        "timestamp_before_parent",
        "bad_nonce",
        "overspend",
    ];

    /// The stable snake_case name of the reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::TooLarge { .. } => "too_large",
            Self::BadHash { .. } => "bad_hash",
            Self::WrongDifficulty { .. } => "wrong_difficulty",
            Self::BadPow { .. } => "bad_pow",
            Self::BadTxRoot => "bad_tx_root",
            Self::BadSignature => "bad_signature",
            Self::ZeroAmount => "zero_amount",
            Self::Overflow => "overflow",
            Self::BadHeight { .. } => "bad_height",
            Self::UnknownParent { .. } => "unknown_parent",
            Self::InvalidAncestor { .. } => "invalid_ancestor",
            Self::WrongGenesis { .. } => "wrong_genesis",
            Self::TimestampTooNew { .. } => "timestamp_too_new",
            Self::TimestampBeforeParent { .. } => "timestamp_before_parent",
            Self::BadNonce { .. } => "bad_nonce",
            Self::Overspend { .. } => "overspend",
        }
    }

    /// Whether the block may become valid later, so it must not be
    /// remembered as invalid: it is early, or its parent has not arrived.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::TimestampTooNew { .. } | Self::UnknownParent { .. }
        )
    }
}
