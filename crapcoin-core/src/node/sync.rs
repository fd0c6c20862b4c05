//! Sync: fetching a peer's better chain. Short chains come whole; longer
//! ones in a pipeline of pages (fetch, check on one blocking-pool thread,
//! add and store), after a search for where the two chains fork. Every
//! answer against the protocol is a [`PeerError::Protocol`], every invalid
//! block a strike against the peer.

use std::sync::Arc;

use super::Shared;
use crate::block::{Block, CheckedBlock};
use crate::hash::BlockHash;
use crate::intern;
use crate::invalid::ValidationError;
use crate::params::Params;
use crate::wire::{BadResponse, NetError, PeerError, PeerUrl, Status, Unreachable};

/// Peers a sync may run from at once.
const MAX_CONCURRENT_SYNCS: usize = 4;
/// Rounds of the fork search (it halves the distance each round).
const MAX_FORK_PROBES: usize = 70;
/// Runs of at least this many blocks that come outside a paged sync (a
/// short chain, a gossiped block's ancestors) are checked off the runtime
/// thread; a paged sync checks every page on its own checking thread.
const OFF_THREAD_CHECK: usize = 64;
/// Blocks asked for in a sync's first page (later pages grow to the page
/// limit).
const FIRST_SYNC_PAGE: usize = 64;
/// Blocks asked for in a sync's last page: it is checked, added and stored
/// after every other page, so its size is what a sync takes beyond
/// checking its blocks.
const LAST_SYNC_PAGE: usize = 32;

impl Shared {
    /// Starts a sync from `peer` in the background, unless one runs already
    /// (`status`: what the peer just answered, if the caller asked).
    pub(crate) fn spawn_sync(self: &Arc<Self>, peer: PeerUrl, status: Option<Status>) {
        self.spawn_sync_within(peer, status, MAX_CONCURRENT_SYNCS);
    }

    /// Asks the sender of an orphan for its ancestors: starts a sync from
    /// it, unless one runs from it already, an orphan of its started one
    /// within [`super::Config::orphan_sync_interval`], or
    /// [`super::Config::orphan_sync_slots`] syncs (of any kind) run
    /// already. A peer that really is ahead is synced from all the same:
    /// by its next orphan after the interval, and by maintenance, which
    /// syncs from the best peer ahead every round.
    pub(crate) fn sync_for_orphan(self: &Arc<Self>, peer: PeerUrl) {
        if !self
            .lock()
            .peers
            .orphan_sync_due(&peer, self.config.orphan_sync_interval)
        {
            return;
        }
        let slots = self.config.orphan_sync_slots.min(MAX_CONCURRENT_SYNCS);
        if self.spawn_sync_within(peer.clone(), None, slots) {
            self.lock().peers.orphan_synced(&peer);
        }
    }

    /// Starts a sync from `peer` in the background if fewer than `slots`
    /// syncs run and none from `peer`; whether it started.
    fn spawn_sync_within(
        self: &Arc<Self>,
        peer: PeerUrl,
        status: Option<Status>,
        slots: usize,
    ) -> bool {
        {
            let mut syncing = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
            if syncing.len() >= slots || !syncing.insert(peer.clone()) {
                return false;
            }
        }
        let shared = self.clone();
        self.tasks.spawn(async move {
            let result = shared.sync_inner(&peer, status).await;
            shared
                .syncing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&peer);
            if let Err(e) = result {
                tracing::debug!(node = %shared.config.name, %peer, error = %e, "sync failed");
            }
        });
        true
    }

    /// Syncs from `peer` now (used by the handle and bootstrap), asking
    /// for its status first unless the caller just did.
    pub(crate) async fn sync_from(
        self: &Arc<Self>,
        peer: &PeerUrl,
        status: Option<Status>,
    ) -> Result<(), PeerError> {
        self.sync_inner(peer, status).await
    }

    async fn sync_inner(
        self: &Arc<Self>,
        peer: &PeerUrl,
        status: Option<Status>,
    ) -> Result<(), PeerError> {
        let started = self.clock.now();
        let before = self.lock().chain.height();
        let result = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Ok(()),
            r = self.clock.timeout(self.config.sync_timeout, self.sync_steps(peer, status)) => {
                r.unwrap_or(Err(PeerError::Unreachable(NetError::Timeout)))
            }
        };
        let height = self.lock().chain.height();
        if result.is_ok() && height > before {
            tracing::info!(
                node = %self.config.name,
                %peer,
                from = before,
                height,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "synced"
            );
        }
        result
    }

    async fn sync_steps(
        self: &Arc<Self>,
        peer: &PeerUrl,
        status: Option<Status>,
    ) -> Result<(), PeerError> {
        let status = match status {
            Some(status) => status,
            None => self
                .call(self.network.status(peer))
                .await
                .map_err(PeerError::from_sync)?,
        };
        if status.genesis != self.chain_id {
            return Err(PeerError::WrongNetwork);
        }
        let our_height = self.lock().chain.height();
        if status.height <= our_height {
            return Ok(());
        }
        let limit = self.config.page_limit;
        if status.height < limit as u64 {
            let blocks = self
                .call(self.network.chain(peer))
                .await
                .map_err(PeerError::from_sync)?;
            if blocks.len() > limit {
                let e = ValidationError::TooLarge {
                    size: blocks.len(),
                    max: limit,
                };
                self.strike(peer).await;
                return Err(PeerError::BadData(e));
            }
            return self.take_blocks(blocks, peer).await;
        }
        // A fresh node shares only the genesis with the peer, and the
        // status already showed it is the same genesis.
        let fork = if our_height == 0 {
            0
        } else {
            self.find_fork(peer, our_height.min(status.height)).await?
        };
        // Three stages joined in this task, each handing pages to the next
        // through a channel that holds one: while page k is added to the
        // chain (and stored), page k+1 is checked (off this thread) and
        // page k+2 fetched, so at most five pages are in hand at once. A
        // stage that fails drops its ends of the channels and the others
        // finish what they hold; the first error, in stage order, is the
        // sync's.
        let (pages_tx, pages_rx) = tokio::sync::mpsc::channel(1);
        let (checked_tx, checked_rx) = tokio::sync::mpsc::channel(1);
        let (fetched, checked, added) = tokio::join!(
            self.fetch_pages(peer, fork + 1, status.height, pages_tx),
            self.check_pages(peer, pages_rx, checked_tx),
            self.add_pages(peer, checked_rx),
        );
        fetched.and(checked).and(added)
    }

    /// Fetches the peer's best chain from `next` up to `until` in pages
    /// and hands them on in order. The first page is small, so checking
    /// starts early, and each next one is half as large again, up to the
    /// page limit: a page is fetched while the one before it is checked,
    /// and checking a block takes longer than fetching it, so the fetcher
    /// stays ahead while the pages grow. The last page is small again
    /// ([`LAST_SYNC_PAGE`]), so little is left to add once checking ends.
    async fn fetch_pages(
        &self,
        peer: &PeerUrl,
        mut next: u64,
        until: u64,
        pages: tokio::sync::mpsc::Sender<Vec<Block>>,
    ) -> Result<(), PeerError> {
        let limit = self.config.page_limit;
        let mut size = FIRST_SYNC_PAGE.min(limit);
        while next <= until {
            let ask = page_size(size, until - next + 1);
            let page = self
                .call(self.network.blocks(peer, next, ask))
                .await
                .map_err(PeerError::from_sync)?;
            let Some(first) = page.first() else { break };
            let bad = if first.header.height != next {
                Some(BadResponse::PageMismatch {
                    asked: next,
                    got: first.header.height,
                })
            } else if page.len() > ask {
                Some(BadResponse::TooMany {
                    asked: ask,
                    got: page.len(),
                })
            } else {
                None
            };
            if let Some(bad) = bad {
                self.strike(peer).await;
                return Err(PeerError::Protocol(bad));
            }
            next += page.len() as u64;
            size = (size + size / 2).min(limit);
            if pages.send(page).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Checks the fetched pages in order and hands them on. One
    /// blocking-pool thread checks every page in turn and waits on the
    /// channels itself, so no page waits for this node's runtime thread
    /// (busy adding and storing the page before, or serving) to start it.
    async fn check_pages(
        self: &Arc<Self>,
        peer: &PeerUrl,
        mut pages: tokio::sync::mpsc::Receiver<Vec<Block>>,
        checked: tokio::sync::mpsc::Sender<Vec<Arc<CheckedBlock>>>,
    ) -> Result<(), PeerError> {
        let (params, chain_id) = (self.params.clone(), self.chain_id);
        if self.clock.is_virtual() {
            // In simulation every check runs inline, in the same order on
            // every run.
            while let Some(page) = pages.recv().await {
                let page = match check_run(page, &params, chain_id) {
                    Ok(page) => page,
                    Err(bad) => return Err(self.refuse(bad, peer).await),
                };
                if !page.is_empty() && checked.send(page).await.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        let checking = self.tasks.spawn_blocking(move || {
            while let Some(page) = pages.blocking_recv() {
                let page = check_run(page, &params, chain_id)?;
                if !page.is_empty() && checked.blocking_send(page).is_err() {
                    break;
                }
            }
            Ok(())
        });
        match finished(checking.await) {
            Some(Ok(())) => Ok(()),
            Some(Err(bad)) => Err(self.refuse(bad, peer).await),
            None => Err(shutting_down()),
        }
    }

    /// Adds the checked pages to the chain, in order, each stored before
    /// the next goes in.
    async fn add_pages(
        self: &Arc<Self>,
        peer: &PeerUrl,
        mut checked: tokio::sync::mpsc::Receiver<Vec<Arc<CheckedBlock>>>,
    ) -> Result<(), PeerError> {
        while let Some(page) = checked.recv().await {
            self.add_page(page, peer).await?;
        }
        Ok(())
    }

    /// Adds one checked run of the peer's blocks to the chain and the
    /// store, in a task of its own (on the node's tracker, so shutdown
    /// waits for it), so a sync that is dropped (timed out, shut down)
    /// never stops it halfway between the chain and the store.
    async fn add_page(
        self: &Arc<Self>,
        page: Vec<Arc<CheckedBlock>>,
        peer: &PeerUrl,
    ) -> Result<(), PeerError> {
        let (shared, from) = (Arc::clone(self), peer.clone());
        let adding = self.tasks.spawn(async move {
            shared
                .accept_segment(page, &from)
                .await
                .map_err(PeerError::BadData)
        });
        joined(adding.await)
    }

    /// The highest height at or below `start` where the peer's best chain
    /// holds a block we know: probes back in doubling steps.
    async fn find_fork(&self, peer: &PeerUrl, start: u64) -> Result<u64, PeerError> {
        let mut height = start;
        let mut step = 1u64;
        for _ in 0..MAX_FORK_PROBES {
            let page = self
                .call(self.network.blocks(peer, height, 1))
                .await
                .map_err(PeerError::from_sync)?;
            let Some(block) = page.first() else {
                return Err(PeerError::Protocol(BadResponse::EmptyPage { height }));
            };
            if block.header.height != height {
                return Err(PeerError::Protocol(BadResponse::PageMismatch {
                    asked: height,
                    got: block.header.height,
                }));
            }
            if self.lock().chain.contains(&block.hash()) {
                return Ok(height);
            }
            if height == 0 {
                return Err(PeerError::WrongNetwork);
            }
            height = height.saturating_sub(step);
            step = step.saturating_mul(2);
        }
        Err(PeerError::Protocol(BadResponse::NoCommonBlock))
    }

    /// Checks a run of the peer's blocks (signatures in one batch) and
    /// inserts it all or nothing.
    async fn take_blocks(
        self: &Arc<Self>,
        blocks: Vec<Block>,
        peer: &PeerUrl,
    ) -> Result<(), PeerError> {
        let checked = self.check_blocks(blocks, peer).await?;
        if checked.is_empty() {
            return Ok(());
        }
        self.add_page(checked, peer).await
    }

    /// Checks a run of the peer's blocks (signatures in one batch), leaving
    /// out a leading genesis; a bad block strikes the peer.
    async fn check_blocks(
        self: &Arc<Self>,
        blocks: Vec<Block>,
        peer: &PeerUrl,
    ) -> Result<Vec<Arc<CheckedBlock>>, PeerError> {
        // A long run is checked on a blocking-pool thread, so this node's
        // runtime thread stays free meanwhile.
        // (In simulation it runs inline: see `Clock::is_virtual`.)
        let checked = if blocks.len() >= OFF_THREAD_CHECK && !self.clock.is_virtual() {
            let (params, chain_id) = (self.params.clone(), self.chain_id);
            let checking = self
                .tasks
                .spawn_blocking(move || check_run(blocks, &params, chain_id));
            finished(checking.await).ok_or_else(shutting_down)?
        } else {
            check_run(blocks, &self.params, self.chain_id)
        };
        match checked {
            Ok(checked) => Ok(checked),
            Err(bad) => Err(self.refuse(bad, peer).await),
        }
    }

    /// A run of the peer's blocks failed its checks: tell observers which
    /// block, strike the peer, and give the sync's error.
    async fn refuse(&self, bad: BadRun, peer: &PeerUrl) -> PeerError {
        if let Some(hash) = bad.block {
            self.rejected(Some(hash), &bad.reason, Some(peer));
        }
        self.strike(peer).await;
        PeerError::BadData(bad.reason)
    }
}

/// Why a run of a peer's blocks failed its checks: the reason, and the
/// failing block's hash (none when the run's genesis was not ours).
struct BadRun {
    reason: ValidationError,
    block: Option<BlockHash>,
}

/// Checks a run of a peer's blocks (signatures in one batch), leaving out a
/// leading genesis, which must be ours.
fn check_run(
    mut blocks: Vec<Block>,
    params: &Params,
    chain_id: BlockHash,
) -> Result<Vec<Arc<CheckedBlock>>, BadRun> {
    if let Some(first) = blocks.first()
        && first.header.height == 0
    {
        let got = first.hash();
        if got != chain_id {
            return Err(BadRun {
                reason: ValidationError::WrongGenesis {
                    got,
                    want: chain_id,
                },
                block: None,
            });
        }
        blocks.remove(0);
    }
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    intern::check_batch_naming(blocks, params, &chain_id).map_err(|(_, hash, reason)| BadRun {
        reason,
        block: Some(hash),
    })
}

/// How many blocks to ask for next, `remaining` being left to fetch and
/// `size` the page the growth plan is at: what remains when that is at
/// most twice [`LAST_SYNC_PAGE`], else at most `size` but leaving at least
/// [`LAST_SYNC_PAGE`] for a small last page.
fn page_size(size: usize, remaining: u64) -> usize {
    let remaining = usize::try_from(remaining).unwrap_or(usize::MAX);
    if remaining <= 2 * LAST_SYNC_PAGE {
        remaining
    } else {
        size.min(remaining - LAST_SYNC_PAGE)
    }
}

/// The error of a check cut short by the runtime shutting down.
fn shutting_down() -> PeerError {
    PeerError::Unreachable(NetError::Unreachable(Unreachable::ShuttingDown))
}

/// The result of a page's insert task; a panic in it is passed on, and a
/// task cancelled by the runtime shutting down counts as done.
fn joined(result: Result<Result<(), PeerError>, tokio::task::JoinError>) -> Result<(), PeerError> {
    finished(result).unwrap_or(Ok(()))
}

/// A task's output; a panic in it is passed on, and `None` when the
/// runtime shutting down cancelled it.
fn finished<T>(result: Result<T, tokio::task::JoinError>) -> Option<T> {
    match result {
        Ok(output) => Some(output),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}
