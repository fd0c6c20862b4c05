//! Account state: balances and nonces, with apply and undo.

use serde::{Deserialize, Serialize};

use crate::block::Block;
use crate::hash::Address;
use crate::invalid::ValidationError;
use crate::maps::Map;

/// One account's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Coins held.
    pub balance: u64,
    /// Transactions sent so far: the nonce the next one must carry.
    pub nonce: u64,
}

/// What applying a block changed, so it can be taken back exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    /// Accounts touched, with their values before the block (`None`: absent).
    before: Vec<(Address, Option<Account>)>,
    /// Supply before the block.
    supply_before: u64,
}

/// Balances and nonces of every account on one chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    accounts: Map<Address, Account>,
    supply: u64,
}

impl State {
    /// The empty state (genesis pays nobody).
    pub fn new() -> Self {
        Self::default()
    }

    /// An account's state; absent accounts are empty.
    pub fn account(&self, address: &Address) -> Account {
        self.accounts.get(address).copied().unwrap_or_default()
    }

    /// Coins minted so far: the sum of every balance.
    pub fn supply(&self) -> u64 {
        self.supply
    }

    /// Every account with state, in no order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &Account)> {
        self.accounts.iter()
    }

    /// Number of accounts with state.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether no account has state.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Applies a block's transfer and reward: the sender pays `amount + fee`
    /// and its nonce advances, the recipient gets `amount`, the miner gets
    /// `reward + fee`. Nothing changes on error.
    ///
    /// # Errors
    ///
    /// [`ValidationError::BadNonce`], [`ValidationError::Overspend`] or
    /// [`ValidationError::Overflow`].
    pub fn apply(&mut self, block: &Block, reward: u64) -> Result<Undo, ValidationError> {
        let miner = block.header.miner;
        let mut touched = vec![miner];
        // Compute every new value first, write only when all succeed.
        let mut writes: Vec<(Address, Account)> = Vec::with_capacity(3);
        let get = |writes: &[(Address, Account)], a: &Address| {
            writes
                .iter()
                .rev()
                .find(|(w, _)| w == a)
                .map(|(_, acc)| *acc)
                .unwrap_or_else(|| self.account(a))
        };
        let mut miner_gain = reward;
        if let Some(tx) = &block.tx {
            let needed = tx.total().ok_or(ValidationError::Overflow)?;
            let mut sender = get(&writes, &tx.from);
            if tx.nonce != sender.nonce {
                return Err(ValidationError::BadNonce {
                    got: tx.nonce,
                    want: sender.nonce,
                });
            }
            if needed > sender.balance {
                return Err(ValidationError::Overspend {
                    needed,
                    balance: sender.balance,
                });
            }
            sender.balance -= needed;
            sender.nonce = sender
                .nonce
                .checked_add(1)
                .ok_or(ValidationError::Overflow)?;
            writes.push((tx.from, sender));
            let mut recipient = get(&writes, &tx.to);
            recipient.balance = recipient
                .balance
                .checked_add(tx.amount)
                .ok_or(ValidationError::Overflow)?;
            writes.push((tx.to, recipient));
            miner_gain = miner_gain
                .checked_add(tx.fee)
                .ok_or(ValidationError::Overflow)?;
            touched.push(tx.from);
            touched.push(tx.to);
        }
        let mut miner_acc = get(&writes, &miner);
        miner_acc.balance = miner_acc
            .balance
            .checked_add(miner_gain)
            .ok_or(ValidationError::Overflow)?;
        writes.push((miner, miner_acc));
        let supply = self
            .supply
            .checked_add(reward)
            .ok_or(ValidationError::Overflow)?;

        touched.sort_unstable();
        touched.dedup();
        let before = touched
            .iter()
            .map(|a| (*a, self.accounts.get(a).copied()))
            .collect();
        let undo = Undo {
            before,
            supply_before: self.supply,
        };
        for (address, account) in writes {
            self.accounts.insert(address, account);
        }
        self.supply = supply;
        Ok(undo)
    }

    /// Takes back the block whose [`State::apply`] returned `undo`. Undos must
    /// be applied newest first.
    pub fn undo(&mut self, undo: Undo) {
        for (address, before) in undo.before {
            match before {
                Some(account) => self.accounts.insert(address, account),
                None => self.accounts.remove(&address),
            };
        }
        self.supply = undo.supply_before;
    }
}
