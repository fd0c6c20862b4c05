//! The in-memory network with a tap: [`Tapped`] forwards every call to a
//! [`memory::Network`] and lets a [`Tap`] see calls (record them) or alter
//! them (fail a page, tamper with a block), so no test writes a delegating
//! [`Network`] of its own.

use async_trait::async_trait;
use crapcoin_core::network::{BlockAck, Inbox, NetError, Payload, TxAck};
use crapcoin_core::{Block, BlockHash, Network, PeerUrl, Status, Transaction, memory};

/// The URL of the in-memory node called `name` (`mem://NAME`).
pub fn mem_url(name: &str) -> PeerUrl {
    format!("mem://{name}").parse().expect("a valid url")
}

/// What a test wants to see or change of the calls one node makes. Every
/// hook defaults to doing nothing: a tap overrides what it watches.
pub trait Tap: Send + Sync + 'static {
    /// A push to `to`, before it is forwarded.
    fn pushed(&self, _to: &PeerUrl, _payload: &Payload) {}

    /// A transaction relayed from `from` to `to`, before it is forwarded.
    fn tx_pushed(&self, _to: &PeerUrl, _from: &PeerUrl, _tx: &Transaction) {}

    /// A status call to `to` ended, `answered` or not — also when the
    /// caller's timeout dropped it mid-call.
    fn status_done(&self, _to: &PeerUrl, _answered: bool) {}

    /// A page of `limit` blocks from height `from` is asked of `to`; an
    /// error fails the call instead of forwarding it.
    ///
    /// # Errors
    ///
    /// Whatever the tap wants the caller to see.
    fn page_asked(&self, _to: &PeerUrl, _from: u64, _limit: usize) -> Result<(), NetError> {
        Ok(())
    }

    /// A page as `to` answered it, before the caller sees it.
    fn page(&self, _to: &PeerUrl, _page: &mut [Block]) {}

    /// `to` answered a peers call with `answer`.
    fn peers_answered(&self, _to: &PeerUrl, _answer: &[PeerUrl]) {}
}

/// No tap: the plain in-memory network.
impl Tap for () {}

/// The in-memory network seen through `tap`.
#[derive(Clone)]
pub struct Tapped<T> {
    inner: memory::Network,
    tap: T,
}

impl<T: Tap> Tapped<T> {
    /// Calls on `inner`, shown to `tap`.
    pub fn new(inner: memory::Network, tap: T) -> Self {
        Self { inner, tap }
    }

    /// The tap.
    pub fn tap(&self) -> &T {
        &self.tap
    }
}

/// Tells the tap about a status call when dropped, answered or not.
struct StatusDone<'a, T: Tap> {
    tap: &'a T,
    to: &'a PeerUrl,
    answered: bool,
}

impl<T: Tap> Drop for StatusDone<'_, T> {
    fn drop(&mut self) {
        self.tap.status_done(self.to, self.answered);
    }
}

#[async_trait]
impl<T: Tap> Network for Tapped<T> {
    fn attach(&self, url: &PeerUrl, node: std::sync::Weak<dyn Inbox>) {
        self.inner.attach(url, node);
    }

    async fn push_block(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        payload: &Payload,
    ) -> Result<BlockAck, NetError> {
        self.tap.pushed(to, payload);
        self.inner.push_block(to, from, payload).await
    }

    async fn push_tx(
        &self,
        to: &PeerUrl,
        from: &PeerUrl,
        tx: &Transaction,
    ) -> Result<TxAck, NetError> {
        self.tap.tx_pushed(to, from, tx);
        self.inner.push_tx(to, from, tx).await
    }

    async fn status(&self, to: &PeerUrl) -> Result<Status, NetError> {
        let mut done = StatusDone {
            tap: &self.tap,
            to,
            answered: false,
        };
        let result = self.inner.status(to).await;
        done.answered = result.is_ok();
        result
    }

    async fn blocks(&self, to: &PeerUrl, from: u64, limit: usize) -> Result<Vec<Block>, NetError> {
        self.tap.page_asked(to, from, limit)?;
        let mut page = self.inner.blocks(to, from, limit).await?;
        self.tap.page(to, &mut page);
        Ok(page)
    }

    async fn chain(&self, to: &PeerUrl) -> Result<Vec<Block>, NetError> {
        self.inner.chain(to).await
    }

    async fn block(&self, to: &PeerUrl, hash: &BlockHash) -> Result<Option<Block>, NetError> {
        self.inner.block(to, hash).await
    }

    async fn peers(&self, to: &PeerUrl) -> Result<Vec<PeerUrl>, NetError> {
        let result = self.inner.peers(to).await;
        if let Ok(answer) = &result {
            self.tap.peers_answered(to, answer);
        }
        result
    }

    async fn announce(&self, to: &PeerUrl, me: &PeerUrl) -> Result<(), NetError> {
        self.inner.announce(to, me).await
    }
}
