//! A bounded pool of signature-checked transactions waiting for a block.
//!
//! Mining policy: a node mines the transactions it accepted itself
//! ("local"). Transactions that came back from another node's abandoned
//! block ("foreign") are kept (so they are pruned once included) but mined
//! only after an optional grace period, off by default. When a branch is
//! abandoned, every node that held it gets its transactions back; if all of
//! them mined those, a network of thousands would answer one reorg with
//! thousands of competing blocks (measured: 10,000 nodes mined 5,500 blocks
//! for 18 heights). A transfer is the business of the node that accepted it,
//! as a wallet's is in any real network.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::hash::{Address, TxId};
use crate::maps::{Map, Set};
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

impl MempoolError {
    /// The stable snake_case name of the reason, as the HTTP API shows it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Full { .. } => "mempool_full",
            Self::Duplicate => "duplicate",
            Self::NonceTaken { .. } => "nonce_taken",
        }
    }
}

#[derive(Debug, Clone)]
struct Pending {
    tx: Transaction,
    local: bool,
    since: Instant,
}

/// Pending transactions, at most one per (sender, nonce).
///
/// Indexed by sender and nonce as well as by id: what a sender has
/// pending, its next nonce, and what a new block makes unusable are
/// looked up, never scanned for (a node asks on every transaction and
/// every block, and a busy network's pools hold thousands).
#[derive(Debug, Clone)]
pub struct Mempool {
    txs: Map<TxId, Pending>,
    /// The ids of each sender's pending transactions, by nonce.
    by_sender: Map<Address, BTreeMap<u64, TxId>>,
    capacity: usize,
    /// When foreign transactions become minable (`None`: never).
    grace: Option<Duration>,
    /// Ids of transactions accepted here, remembered past their inclusion
    /// so they count as local again if a reorg returns them (bounded).
    local_ids: Set<TxId>,
    local_order: VecDeque<TxId>,
    /// Where the ages of foreign transactions are read.
    clock: Clock,
}

impl Mempool {
    /// An empty pool of at most `capacity` transactions, mining foreign
    /// ones at once (no grace).
    pub fn new(capacity: usize) -> Self {
        Self::with_grace(capacity, Some(Duration::ZERO))
    }

    /// An empty pool of at most `capacity` transactions whose foreign
    /// transactions become minable after `grace` (`None`: never).
    pub fn with_grace(capacity: usize, grace: Option<Duration>) -> Self {
        Self {
            txs: Map::default(),
            by_sender: Map::default(),
            capacity,
            grace,
            local_ids: Set::default(),
            local_order: VecDeque::new(),
            clock: Clock::system(),
        }
    }

    /// The same pool reading ages from `clock` (default: the system's).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
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

    /// The waiting transaction with this id.
    pub fn get(&self, id: &TxId) -> Option<&Transaction> {
        self.txs.get(id).map(|p| &p.tx)
    }

    /// Every waiting transaction, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &Transaction> {
        self.txs.values().map(|p| &p.tx)
    }

    /// Adds a transaction this node accepted (local: mined at once) whose
    /// signature the caller checked.
    ///
    /// # Errors
    ///
    /// [`MempoolError`] when full, already there, or the nonce is taken.
    pub fn insert(&mut self, tx: Transaction) -> Result<TxId, MempoolError> {
        let id = self.add(tx, true)?;
        if self.local_ids.insert(id) {
            self.local_order.push_back(id);
            if self.local_order.len() > 4 * self.capacity.max(1)
                && let Some(old) = self.local_order.pop_front()
            {
                self.local_ids.remove(&old);
            }
        }
        Ok(id)
    }

    /// Adds a transaction relayed by a peer (foreign: mined after the
    /// grace) whose signature the caller checked.
    ///
    /// # Errors
    ///
    /// As [`Mempool::insert`].
    pub fn insert_foreign(&mut self, tx: Transaction) -> Result<TxId, MempoolError> {
        self.add(tx, false)
    }

    /// Puts back a transaction of an abandoned block: local if this node
    /// accepted it once, foreign otherwise.
    ///
    /// # Errors
    ///
    /// As [`Mempool::insert`].
    pub fn reinsert(&mut self, tx: Transaction) -> Result<TxId, MempoolError> {
        let local = self.local_ids.contains(&tx.id());
        self.add(tx, local)
    }

    fn add(&mut self, tx: Transaction, local: bool) -> Result<TxId, MempoolError> {
        let id = tx.id();
        if self.txs.contains_key(&id) {
            return Err(MempoolError::Duplicate);
        }
        if self
            .by_sender
            .get(&tx.from)
            .is_some_and(|nonces| nonces.contains_key(&tx.nonce))
        {
            return Err(MempoolError::NonceTaken { nonce: tx.nonce });
        }
        if self.txs.len() >= self.capacity {
            return Err(MempoolError::Full {
                capacity: self.capacity,
            });
        }
        self.by_sender
            .entry(tx.from)
            .or_default()
            .insert(tx.nonce, id);
        self.txs.insert(
            id,
            Pending {
                tx,
                local,
                since: self.clock.now(),
            },
        );
        Ok(id)
    }

    /// Removes a transaction (it was included, or is abandoned).
    pub fn remove(&mut self, id: &TxId) -> Option<Transaction> {
        let tx = self.txs.remove(id)?.tx;
        if let Some(nonces) = self.by_sender.get_mut(&tx.from) {
            nonces.remove(&tx.nonce);
            if nonces.is_empty() {
                self.by_sender.remove(&tx.from);
            }
        }
        Some(tx)
    }

    /// The pending transactions of `from` with a nonce below `before`.
    fn pending_of(&self, from: &Address, before: u64) -> impl Iterator<Item = &Transaction> {
        self.by_sender
            .get(from)
            .into_iter()
            .flat_map(move |nonces| nonces.range(..before))
            .filter_map(|(_, id)| self.txs.get(id))
            .map(|p| &p.tx)
    }

    /// Coins the pending transactions of `from` with a nonce below
    /// `before` will spend (`u64::MAX` for all of them), saturating.
    pub fn pending_spend(&self, from: &Address, before: u64) -> u64 {
        self.pending_of(from, before)
            .map(|t| t.total().unwrap_or(u64::MAX))
            .fold(0, u64::saturating_add)
    }

    /// The next sender nonce counting pending transactions of `from`.
    pub fn next_nonce(&self, state: &State, from: &Address) -> u64 {
        let chain = state.account(from).nonce;
        self.by_sender
            .get(from)
            .and_then(|nonces| nonces.last_key_value())
            .map_or(chain, |(last, _)| last.saturating_add(1))
            .max(chain)
    }

    /// Whether any transaction could become minable later without a wake-up
    /// (a foreign one waiting out its grace).
    pub fn has_waiting_foreign(&self) -> bool {
        self.grace.is_some() && self.txs.values().any(|p| !p.local)
    }

    /// The best transaction to mine on `state`: local, or foreign and past
    /// the grace; its nonce is the sender's next and the sender can pay;
    /// highest fee first, then the longest waiting, then lowest id (so the
    /// choice is deterministic).
    pub fn select(&self, state: &State) -> Option<Transaction> {
        let now = self.clock.now();
        // Only each sender's next nonce can be mined.
        self.by_sender
            .iter()
            .filter_map(|(from, nonces)| {
                let id = nonces.get(&state.account(from).nonce)?;
                Some((id, self.txs.get(id)?))
            })
            .filter(|(_, p)| {
                p.local
                    || self
                        .grace
                        .is_some_and(|g| now.saturating_duration_since(p.since) >= g)
            })
            .filter(|(_, p)| {
                let acc = state.account(&p.tx.from);
                p.tx.nonce == acc.nonce && p.tx.total().is_some_and(|n| n <= acc.balance)
            })
            .max_by(|(ia, a), (ib, b)| {
                a.tx.fee
                    .cmp(&b.tx.fee)
                    .then(b.since.cmp(&a.since))
                    .then(ib.cmp(ia))
            })
            .map(|(_, p)| p.tx.clone())
    }

    /// Drops transactions the state has made unusable (nonce already used).
    /// Returns how many went.
    pub fn prune(&mut self, state: &State) -> usize {
        let senders: Vec<Address> = self.by_sender.keys().copied().collect();
        self.prune_senders(state, &senders)
    }

    /// [`Mempool::prune`] for the transactions of `senders` alone: after
    /// a block, only its senders' nonces moved (the node's admission
    /// refuses a used nonce, so nothing else can have become unusable).
    /// Returns how many went.
    pub fn prune_senders(&mut self, state: &State, senders: &[Address]) -> usize {
        let mut gone = 0;
        for from in senders {
            let Some(nonces) = self.by_sender.get_mut(from) else {
                continue;
            };
            let used = state.account(from).nonce;
            let keep = nonces.split_off(&used);
            for id in std::mem::replace(nonces, keep).into_values() {
                self.txs.remove(&id);
                gone += 1;
            }
            if nonces.is_empty() {
                self.by_sender.remove(from);
            }
        }
        gone
    }

    /// Empties the pool.
    pub fn clear(&mut self) {
        self.txs.clear();
        self.by_sender.clear();
    }
}
