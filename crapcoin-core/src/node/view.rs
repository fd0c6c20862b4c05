//! The engine as the plug-in traits see it: [`View`] (what a behaviour
//! reads) and [`Inbox`] (what a network delivers to). Both are implemented
//! on the node's shared state; neither trait knows the engine.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Handle, Shared, TxError};
use crate::behaviour::View;
use crate::block::{Block, CheckedBlock};
use crate::hash::{Address, BlockHash};
use crate::invalid::ValidationError;
use crate::network::Inbox;
use crate::params::Params;
use crate::state::Account;
use crate::tx::Transaction;
use crate::wallet::Wallet;
use crate::wire::{BlockAck, Payload, PeerError, PeerUrl, Status, TxAck};

impl View for Shared {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn wallet(&self) -> &Wallet {
        &self.wallet
    }

    fn url(&self) -> &PeerUrl {
        &self.config.url
    }

    fn params(&self) -> &Params {
        &self.params
    }

    fn chain_id(&self) -> BlockHash {
        self.chain_id
    }

    fn fee(&self) -> u64 {
        self.config.fee
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn height(&self) -> u64 {
        self.lock().chain.height()
    }

    fn tip(&self) -> Arc<CheckedBlock> {
        self.lock().chain.tip_block().clone()
    }

    fn block_at(&self, height: u64) -> Option<Arc<CheckedBlock>> {
        self.lock().chain.block_at(height).cloned()
    }

    fn account(&self, address: &Address) -> Account {
        self.lock().chain.state().account(address)
    }

    fn spendable(&self) -> u64 {
        let inner = self.lock();
        let me = self.wallet.address();
        let pending = inner.mempool.pending_spend(&me, u64::MAX);
        inner
            .chain
            .state()
            .account(&me)
            .balance
            .saturating_sub(pending)
    }

    fn known_addresses(&self) -> Vec<Address> {
        let inner = self.lock();
        let mut out: Vec<Address> = inner.chain.state().accounts().map(|(a, _)| *a).collect();
        out.sort_unstable();
        out
    }

    fn peers(&self) -> Vec<PeerUrl> {
        self.lock().peers.urls()
    }
}

/// Each call goes through a [`Handle`] made for it, so a network's call
/// answers exactly as the same call on a handle does.
#[async_trait]
impl Inbox for Shared {
    fn is_open(&self) -> bool {
        !self.is_stopping()
    }

    async fn push_block(
        self: Arc<Self>,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, ValidationError> {
        let node = Handle { shared: self };
        match payload {
            Payload::Block(block) => node.receive_block(block.clone(), Some(from.clone())).await,
            Payload::Raw(bytes) => node.receive_block_json(bytes, Some(from.clone())).await,
        }
    }

    async fn push_tx(
        self: Arc<Self>,
        from: &PeerUrl,
        tx: &Transaction,
    ) -> Result<TxAck, ValidationError> {
        match self.receive_tx(tx, Some(from.clone())).await {
            Ok(ack) => Ok(ack),
            Err(TxError::Invalid(e)) => Err(e),
            Err(_) => Ok(TxAck::Ignored),
        }
    }

    async fn status(self: Arc<Self>) -> Status {
        Handle { shared: self }.serve_status().await
    }

    async fn blocks(self: Arc<Self>, from: u64, limit: usize) -> Vec<Block> {
        Handle { shared: self }.blocks(from, limit).await
    }

    async fn chain(self: Arc<Self>) -> Vec<Block> {
        Handle { shared: self }.chain().await
    }

    async fn block(self: Arc<Self>, hash: &BlockHash) -> Option<Block> {
        Handle { shared: self }.block(hash).await
    }

    async fn peers(self: Arc<Self>) -> Vec<PeerUrl> {
        Handle { shared: self }.peers().await
    }

    async fn announce(self: Arc<Self>, peer: PeerUrl) -> Result<(), PeerError> {
        Handle { shared: self }.announce(peer).await
    }
}
