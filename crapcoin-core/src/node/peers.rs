//! Peers: the bounded table, adding and dropping, sync, bootstrap and
//! maintenance. A peer is never trusted for being a peer: it is kept only
//! while it answers, and dropped (and banned for a while) once it has sent
//! invalid data [`super::Config::max_strikes`] times.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;

use super::Shared;
use crate::block::{Block, CheckedBlock};
use crate::hash::BlockHash;
use crate::network::{NetError, PeerInfo, PeerUrl, Status};
use crate::observer::{DropReason, Event};
use crate::params::Params;
use crate::validate::{self, ValidationError};

/// Peers a sync may run from at once.
const MAX_CONCURRENT_SYNCS: usize = 4;
/// Peer URLs taken from one peer's answer during discovery.
const MAX_DISCOVERED_PER_PEER: usize = 64;
/// Banned URLs remembered at most.
const MAX_BANNED: usize = 1024;
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

/// Maintenance rounds between two tracker registrations.
const REGISTER_EVERY: u64 = 5;

/// Why a peer was not added, or a sync from it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// That URL is this node.
    #[error("that is this node's own url")]
    ItsMe,
    /// The peer misbehaved recently.
    #[error("peer is banned")]
    Banned,
    /// The peer table is full.
    #[error("peer table is full")]
    Full,
    /// The peer did not answer properly.
    #[error("peer did not answer: {0}")]
    Unreachable(NetError),
    /// The peer is on another network (different genesis).
    #[error("peer is on another network")]
    WrongNetwork,
    /// The peer sent invalid data.
    #[error("peer sent invalid data: {0}")]
    BadData(ValidationError),
}

impl PeerError {
    /// The snake_case reason, as the HTTP API shows it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ItsMe => "own_url",
            Self::Banned => "banned",
            Self::Full => "peer_table_full",
            Self::Unreachable(_) => "unreachable",
            Self::WrongNetwork => "wrong_network",
            Self::BadData(e) => e.reason(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct PeerState {
    failures: u32,
    strikes: u32,
}

/// The peer table: at most `max` peers, plus a bounded ban list.
#[derive(Debug, Clone)]
pub(crate) struct Peers {
    map: HashMap<PeerUrl, PeerState>,
    banned: HashMap<PeerUrl, Instant>,
    max: usize,
}

impl Peers {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            banned: HashMap::new(),
            max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn urls(&self) -> Vec<PeerUrl> {
        let mut urls: Vec<PeerUrl> = self.map.keys().cloned().collect();
        urls.sort_unstable();
        urls
    }

    pub(crate) fn contains(&self, url: &PeerUrl) -> bool {
        self.map.contains_key(url)
    }

    /// Whether `url` is banned now (forgets a ban that has run out).
    pub(crate) fn is_banned(&mut self, url: &PeerUrl) -> bool {
        match self.banned.get(url) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                self.banned.remove(url);
                false
            }
            None => false,
        }
    }

    /// Adds a peer; false when present, banned or full.
    pub(crate) fn insert(&mut self, url: PeerUrl) -> bool {
        if self.map.len() >= self.max || self.map.contains_key(&url) || self.is_banned(&url) {
            return false;
        }
        self.map.insert(url, PeerState::default());
        true
    }

    fn remove(&mut self, url: &PeerUrl) -> bool {
        self.map.remove(url).is_some()
    }

    fn ban(&mut self, url: &PeerUrl, until: Instant) {
        if self.banned.len() >= MAX_BANNED {
            let now = Instant::now();
            self.banned.retain(|_, t| *t > now);
            if self.banned.len() >= MAX_BANNED {
                return;
            }
        }
        self.banned.insert(url.clone(), until);
    }
}

impl Shared {
    /// Runs `fut` with the call timeout; cancellation counts as a timeout.
    pub(crate) async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, NetError> {
        tokio::select! {
            _ = self.cancel.cancelled() => Err(NetError::Timeout),
            r = tokio::time::timeout(self.config.call_timeout, fut) => r.unwrap_or(Err(NetError::Timeout)),
        }
    }

    fn info(&self) -> PeerInfo {
        PeerInfo {
            url: self.config.url.clone(),
            address: self.wallet.address(),
            name: self.config.name.clone(),
            behaviour: self.behaviour.name(),
        }
    }

    /// Adds `peer` if it answers with our genesis; optionally announces us.
    /// Returns the status it answered, or `None` when it was known already.
    pub(crate) async fn try_add_peer(
        &self,
        peer: PeerUrl,
        announce: bool,
    ) -> Result<Option<Status>, PeerError> {
        if peer == self.config.url {
            return Err(PeerError::ItsMe);
        }
        {
            let mut inner = self.lock();
            if inner.peers.contains(&peer) {
                return Ok(None);
            }
            if inner.peers.is_banned(&peer) {
                return Err(PeerError::Banned);
            }
            if inner.peers.len() >= inner.peers.max {
                return Err(PeerError::Full);
            }
        }
        let status = self
            .call(self.network.status(&peer))
            .await
            .map_err(PeerError::Unreachable)?;
        if status.genesis != self.chain_id {
            return Err(PeerError::WrongNetwork);
        }
        if !self.lock().peers.insert(peer.clone()) {
            return Ok(None);
        }
        if let Err(e) = self.store.save_peer(&peer).await {
            tracing::warn!(node = %self.config.name, error = %e, "storing a peer failed");
        }
        self.emit(&Event::PeerAdded { peer: peer.clone() });
        if announce {
            let _ = self
                .call(self.network.announce(&peer, &self.config.url))
                .await;
        }
        Ok(Some(status))
    }

    async fn drop_peer(&self, peer: &PeerUrl, why: DropReason) {
        let removed = {
            let mut inner = self.lock();
            let removed = inner.peers.remove(peer);
            if why == DropReason::Misbehaving {
                inner
                    .peers
                    .ban(peer, Instant::now() + self.config.ban_duration);
            }
            removed
        };
        if removed {
            if let Err(e) = self.store.remove_peer(peer).await {
                tracing::warn!(node = %self.config.name, error = %e, "forgetting a peer failed");
            }
            tracing::debug!(node = %self.config.name, %peer, ?why, "dropped peer");
            self.emit(&Event::PeerDropped {
                peer: peer.clone(),
                why,
            });
        }
    }

    /// Counts invalid data from `peer`; drops and bans it at the limit.
    pub(crate) async fn strike(&self, peer: &PeerUrl) {
        let drop_it = {
            let mut inner = self.lock();
            match inner.peers.map.get_mut(peer) {
                Some(state) => {
                    state.strikes += 1;
                    state.strikes >= self.config.max_strikes
                }
                // Not a peer of ours: there is no standing to lose, and
                // banning URLs anyone can name would let a liar get honest
                // nodes banned.
                None => false,
            }
        };
        if drop_it {
            self.drop_peer(peer, DropReason::Misbehaving).await;
        }
    }

    /// Starts a sync from `peer` in the background, unless one runs already
    /// (`status`: what the peer just answered, if the caller asked).
    pub(crate) fn spawn_sync(self: &Arc<Self>, peer: PeerUrl, status: Option<Status>) {
        {
            let mut syncing = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
            if syncing.len() >= MAX_CONCURRENT_SYNCS || !syncing.insert(peer.clone()) {
                return;
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
        let started = Instant::now();
        let before = self.lock().chain.height();
        let result = tokio::select! {
            _ = self.cancel.cancelled() => Ok(()),
            r = tokio::time::timeout(self.config.sync_timeout, self.sync_steps(peer, status)) => {
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
                .map_err(PeerError::Unreachable)?,
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
                .map_err(PeerError::Unreachable)?;
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
                .map_err(PeerError::Unreachable)?;
            let Some(first) = page.first() else { break };
            if first.header.height != next || page.len() > ask {
                self.strike(peer).await;
                return Err(PeerError::Unreachable(NetError::BadResponse(
                    "page does not start where asked".into(),
                )));
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
        checked: tokio::sync::mpsc::Sender<Vec<CheckedBlock>>,
    ) -> Result<(), PeerError> {
        let (params, chain_id) = (self.params.clone(), self.chain_id);
        let checking = tokio::task::spawn_blocking(move || {
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
        mut checked: tokio::sync::mpsc::Receiver<Vec<CheckedBlock>>,
    ) -> Result<(), PeerError> {
        while let Some(page) = checked.recv().await {
            self.add_page(page, peer).await?;
        }
        Ok(())
    }

    /// Adds one checked run of the peer's blocks to the chain and the
    /// store, in a task of its own, so a sync that is dropped (timed out,
    /// shut down) never stops it halfway between the chain and the store.
    async fn add_page(
        self: &Arc<Self>,
        page: Vec<CheckedBlock>,
        peer: &PeerUrl,
    ) -> Result<(), PeerError> {
        let (shared, from) = (Arc::clone(self), peer.clone());
        let adding = tokio::spawn(async move {
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
                .map_err(PeerError::Unreachable)?;
            let Some(block) = page.first() else {
                return Err(PeerError::Unreachable(NetError::BadResponse(
                    "empty page below the peer's tip".into(),
                )));
            };
            if block.header.height != height {
                return Err(PeerError::Unreachable(NetError::BadResponse(
                    "page does not start where asked".into(),
                )));
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
        Err(PeerError::Unreachable(NetError::BadResponse(
            "no common block found".into(),
        )))
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
    ) -> Result<Vec<CheckedBlock>, PeerError> {
        // A long run is checked on a blocking-pool thread, so this node's
        // runtime thread stays free meanwhile.
        let checked = if blocks.len() >= OFF_THREAD_CHECK {
            let (params, chain_id) = (self.params.clone(), self.chain_id);
            let checking =
                tokio::task::spawn_blocking(move || check_run(blocks, &params, chain_id));
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

    /// Start-up: register with the tracker, meet seeds or tracker peers,
    /// announce ourselves and sync from each peer.
    pub(crate) async fn bootstrap(self: &Arc<Self>) {
        let _ = self.call(self.tracker.register(&self.info())).await;
        // What each new seed answered: its sync starts from that.
        let mut statuses = HashMap::new();
        for seed in self.config.seeds.clone() {
            match self.try_add_peer(seed.clone(), false).await {
                Ok(Some(status)) => {
                    statuses.insert(seed, status);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::info!(node = %self.config.name, %seed, error = %e, "seed not added");
                }
            }
        }
        // Seeds and peers restored from the store alike are announced to
        // once, all at the same time and while the syncs run (peers from
        // the tracker are announced to as they are added).
        let known = self.lock().peers.urls();
        if known.is_empty() {
            self.discover_from_tracker().await;
        }
        let announcements = known
            .iter()
            .map(|peer| self.call(self.network.announce(peer, &self.config.url)));
        let syncs = async {
            let peers = self.lock().peers.urls();
            for peer in peers {
                if self.cancel.is_cancelled() {
                    return;
                }
                let status = statuses.remove(&peer);
                let _ = self.sync_from(&peer, status).await;
            }
        };
        tokio::join!(futures_util::future::join_all(announcements), syncs);
    }

    async fn discover_from_tracker(&self) {
        let want = self.config.target_peers;
        let sample = self
            .call(self.tracker.sample(&self.config.url, want))
            .await
            .unwrap_or_default();
        for peer in sample.into_iter().take(want) {
            let _ = self.try_add_peer(peer, true).await;
        }
    }

    /// One maintenance round: check every peer's liveness, sync from the
    /// best one ahead of us, look for more peers when short.
    pub(crate) async fn maintain(self: &Arc<Self>, round: u64) {
        let peers = self.lock().peers.urls();
        let checks = peers
            .iter()
            .map(|peer| async move { (peer, self.call(self.network.status(peer)).await) });
        let results = futures_util::future::join_all(checks).await;
        let our_height = self.lock().chain.height();
        let mut best: Option<(Status, PeerUrl)> = None;
        for (peer, result) in results {
            match result {
                Ok(status) if status.genesis != self.chain_id => {
                    self.drop_peer(peer, DropReason::WrongNetwork).await;
                }
                Ok(status) => {
                    if let Some(state) = self.lock().peers.map.get_mut(peer) {
                        state.failures = 0;
                    }
                    if status.height > our_height
                        && best.as_ref().is_none_or(|(b, _)| status.height > b.height)
                    {
                        best = Some((status, peer.clone()));
                    }
                }
                Err(_) => {
                    let failures = self.lock().peers.map.get_mut(peer).map(|s| {
                        s.failures += 1;
                        s.failures
                    });
                    if failures.is_some_and(|f| f >= self.config.max_failures) {
                        self.drop_peer(peer, DropReason::Unresponsive).await;
                    }
                }
            }
        }
        if let Some((status, peer)) = best {
            self.spawn_sync(peer, Some(status));
        }
        if self.lock().peers.len() < self.config.target_peers {
            self.discover().await;
        }
        if round % REGISTER_EVERY == 0 {
            let _ = self.call(self.tracker.register(&self.info())).await;
        }
    }

    /// Looks for peers: first among our peers' peers, then the tracker.
    async fn discover(&self) {
        let mut peers = self.lock().peers.urls();
        {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            peers.shuffle(&mut *rng);
        }
        let mut candidates: Vec<PeerUrl> = Vec::new();
        let mut seen: HashSet<PeerUrl> = HashSet::new();
        for peer in peers.iter().take(3) {
            if let Ok(theirs) = self.call(self.network.peers(peer)).await {
                for url in theirs.into_iter().take(MAX_DISCOVERED_PER_PEER) {
                    if seen.insert(url.clone()) {
                        candidates.push(url);
                    }
                }
            }
        }
        let target = self.config.target_peers;
        for url in candidates {
            if self.lock().peers.len() >= target {
                return;
            }
            let _ = self.try_add_peer(url, true).await;
        }
        if self.lock().peers.len() < target {
            self.discover_from_tracker().await;
        }
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
) -> Result<Vec<CheckedBlock>, BadRun> {
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
    validate::check_batch_naming(blocks, params).map_err(|(_, hash, reason)| BadRun {
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
    PeerError::Unreachable(NetError::Unreachable("shutting down".into()))
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
