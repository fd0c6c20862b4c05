//! Transactions coming in from peers: checked, pooled and passed on once.
//!
//! A relayed transaction is hostile like a block. Its body is size-capped;
//! a banned sender is not read; one already waiting here is answered
//! `Duplicate` and goes no further, so each node relays each transaction
//! once; bytes that are no transaction, and a transaction that fails the
//! checks that need no chain (signature, chain id, amount), cost the
//! sender a strike like an invalid block does. A transaction that does not
//! fit the best chain (a used or future nonce, an overspend) is refused
//! without a strike: on another branch it may be fine, and peers disagree
//! for a moment about the tip all the time. Refused transactions are never
//! relayed, and the relay queue is bounded ([`crate::Config::tx_outbox_capacity`]).

use std::sync::Arc;

use super::{Shared, TxError};
use crate::mempool::MempoolError;
use crate::tx::Transaction;
use crate::validate;
use crate::wire::{PeerUrl, TxAck};

impl Shared {
    /// A transaction relayed by `from` (or pushed by anyone): see the
    /// module docs.
    pub(crate) async fn receive_tx(
        self: &Arc<Self>,
        tx: &Transaction,
        from: Option<PeerUrl>,
    ) -> Result<TxAck, TxError> {
        if self.ignores(from.as_ref()) {
            return Ok(TxAck::Ignored);
        }
        let txid = tx.id();
        // The id covers the signature: a known id is this very transaction.
        if self.lock().mempool.contains(&txid) {
            return Ok(TxAck::Duplicate);
        }
        if let Err(e) = validate::check_tx(tx, &self.chain_id) {
            tracing::debug!(node = %self.config.name, %txid, error = %e, "relayed transaction refused");
            if let Some(peer) = &from {
                self.strike(peer).await;
            }
            return Err(e.into());
        }
        match self.admit(tx, None) {
            Ok(_) => {
                self.mine_wake.notify_one();
                self.relay_tx(tx, from.as_ref());
                Ok(TxAck::Accepted)
            }
            Err(TxError::Mempool(MempoolError::Duplicate)) => Ok(TxAck::Duplicate),
            Err(e) => Err(e),
        }
    }

    /// [`Shared::receive_tx`] from JSON bytes: bytes that are no
    /// transaction count as invalid data from `from`.
    pub(crate) async fn receive_tx_json(
        self: &Arc<Self>,
        bytes: &[u8],
        from: Option<PeerUrl>,
    ) -> Result<TxAck, TxError> {
        if self.ignores(from.as_ref()) {
            return Ok(TxAck::Ignored);
        }
        match Transaction::from_json(bytes) {
            Ok(tx) => self.receive_tx(&tx, from).await,
            Err(e) => {
                if let Some(peer) = &from {
                    self.strike(peer).await;
                }
                Err(e.into())
            }
        }
    }
}
