//! Acknowledged transfers: recorded in the store before the caller hears
//! of them, and put back into the mempool when the node starts again, so a
//! node killed (SIGKILL) between accepting a transfer and mining it still
//! mines it.

use super::{Handle, Shared, TxError};
use crate::hash::TxId;
use crate::maps::Set;
use crate::network::{AckedTransfer, StoreError};
use crate::tx::Transaction;
use crate::validate;

impl Shared {
    /// Records `tx`, just admitted to the mempool as `txid`, as
    /// acknowledged now (node clock); returns its sequence number. When
    /// the store fails, the transfer is taken back out of the mempool and
    /// the caller is told it was not accepted.
    pub(crate) async fn record(&self, txid: TxId, tx: &Transaction) -> Result<u64, TxError> {
        let now = self.clock.now_ms();
        match self.store.save_transfer(txid, now, tx).await {
            Ok(seq) => Ok(seq),
            Err(e) => {
                tracing::error!(node = %self.config.name, %txid, error = %e, "recording an acknowledged transfer failed; refused");
                let mut inner = self.lock();
                inner.mempool.remove(&txid);
                inner.tracked.remove(&txid);
                Err(TxError::NotRecorded(e.to_string()))
            }
        }
    }

    /// Puts the restored acknowledged transfers (oldest first) that are not
    /// on the best chain back into the mempool, as the node's own, after
    /// checking them again (signature and chain id, then nonce and balance
    /// on the best chain). One that no longer fits (its nonce was taken by
    /// another transaction, its coins are gone) stays in the record but is
    /// not pooled, and is logged. Returns how many were pooled.
    pub(crate) fn repool(&self, transfers: Vec<AckedTransfer>) -> usize {
        if transfers.is_empty() {
            return 0;
        }
        let on_chain: Set<TxId> = {
            let inner = self.lock();
            let chain = &inner.chain;
            // A checked block's tx root is its transaction's id.
            (1..=chain.height())
                .filter_map(|h| chain.block_at(h))
                .filter(|b| b.tx.is_some())
                .map(|b| TxId(b.header.tx_root.0))
                .collect()
        };
        let mut pooled = 0;
        for transfer in transfers {
            if on_chain.contains(&transfer.id) {
                continue;
            }
            let checked = if transfer.tx.id() == transfer.id {
                validate::check_tx(&transfer.tx, &self.chain_id)
                    .map_err(TxError::from)
                    .and_then(|()| self.admit(&transfer.tx, Some(None)))
            } else {
                Err(TxError::NotRecorded(
                    "the stored id is not the transaction's".to_owned(),
                ))
            };
            match checked {
                Ok(_) => {
                    pooled += 1;
                    self.relay_tx(&transfer.tx, None);
                }
                Err(TxError::Mempool(crate::mempool::MempoolError::Duplicate)) => {}
                Err(e) => tracing::warn!(
                    node = %self.config.name,
                    seq = transfer.seq,
                    txid = %transfer.id,
                    reason = e.reason(),
                    error = %e,
                    "an acknowledged transfer is no longer valid: kept in the record, not re-pooled"
                ),
            }
        }
        if pooled > 0 {
            tracing::info!(node = %self.config.name, pooled, "acknowledged transfers back in the mempool");
            self.mine_wake.notify_one();
        }
        pooled
    }
}

impl Handle {
    /// Up to `limit` (capped at [`crate::network::MAX_ACKED_PAGE`]) of the
    /// transfers this node acknowledged, those recorded after sequence
    /// number `after`, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read.
    pub async fn acknowledged(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AckedTransfer>, StoreError> {
        self.shared.store.acknowledged(after, limit).await
    }

    /// For each id, whether that transaction waits in the mempool now.
    pub fn pending(&self, ids: &[TxId]) -> Vec<bool> {
        let inner = self.shared.lock();
        ids.iter().map(|id| inner.mempool.contains(id)).collect()
    }
}
