//! A bounded pool of signature-checked transactions waiting for a block.

use std::collections::HashMap;

use crate::hash::{Address, TxId};
use crate::state::State;
use crate::tx::Transaction;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// The pool is at capacity.
    #[error("mempool is full ({capacity} transactions)")]
    Full {
        /// The bound.
        capacity: usize,
    },
    /// The same transaction is already waiting.
    #[error("transaction already in the mempool")]
    Duplicate,
    /// Another transaction of the sender already uses this nonce.
    #[error("another pending transaction uses nonce {nonce}")]
    NonceTaken {
        /// The nonce.
        nonce: u64,
    },
}

/// Pending transactions, at most one per (sender, nonce).
#[derive(Debug, Clone)]
pub struct Mempool {
    txs: HashMap<TxId, Transaction>,
    capacity: usize,
}

impl Mempool {
    /// An empty pool of at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            txs: HashMap::new(),
            capacity,
        }
    }

    /// Transactions waiting.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Whether the transaction waits here.
    pub fn contains(&self, id: &TxId) -> bool {
        self.txs.contains_key(id)
    }

    /// Every waiting transaction, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Transaction> {
        self.txs.values()
    }

    /// Adds a transaction whose signature the caller checked.
    ///
    /// # Errors
    ///
    /// [`MempoolError`] when full, already there, or the nonce is taken.
    pub fn insert(&mut self, tx: Transaction) -> Result<TxId, MempoolError> {
        let id = tx.id();
        if self.txs.contains_key(&id) {
            return Err(MempoolError::Duplicate);
        }
        if self
            .txs
            .values()
            .any(|t| t.from == tx.from && t.nonce == tx.nonce)
        {
            return Err(MempoolError::NonceTaken { nonce: tx.nonce });
        }
        if self.txs.len() >= self.capacity {
            return Err(MempoolError::Full {
                capacity: self.capacity,
            });
        }
        self.txs.insert(id, tx);
        Ok(id)
    }

    /// Removes a transaction (it was included, or is abandoned).
    pub fn remove(&mut self, id: &TxId) -> Option<Transaction> {
        self.txs.remove(id)
    }

    /// The next sender nonce counting pending transactions of `from`.
    pub fn next_nonce(&self, state: &State, from: &Address) -> u64 {
        let chain = state.account(from).nonce;
        self.txs
            .values()
            .filter(|t| t.from == *from && t.nonce >= chain)
            .map(|t| t.nonce + 1)
            .max()
            .unwrap_or(chain)
            .max(chain)
    }

    /// The best transaction to mine on `state`: its nonce is the sender's
    /// next and the sender can pay; highest fee first, then lowest id (so
    /// the choice is deterministic).
    pub fn select(&self, state: &State) -> Option<Transaction> {
        self.txs
            .iter()
            .filter(|(_, t)| {
                let acc = state.account(&t.from);
                t.nonce == acc.nonce && t.total().is_some_and(|n| n <= acc.balance)
            })
            .max_by(|(ia, a), (ib, b)| a.fee.cmp(&b.fee).then(ib.cmp(ia)))
            .map(|(_, t)| t.clone())
    }

    /// Drops transactions the state has made unusable (nonce already used).
    /// Returns how many went.
    pub fn prune(&mut self, state: &State) -> usize {
        let before = self.txs.len();
        self.txs
            .retain(|_, t| t.nonce >= state.account(&t.from).nonce);
        before - self.txs.len()
    }

    /// Empties the pool.
    pub fn clear(&mut self) {
        self.txs.clear();
    }
}
