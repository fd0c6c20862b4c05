//! [`Watch`]: what the nodes say. Polls (`GET /status`, `GET /metrics`)
//! and what they left (each node's position, every process's last
//! counters, the honest wallets), the [`NodeView`]s shown by `status`, the
//! control API and the report, the live [`Overview`], and the final
//! [`Verdict`], computed from the nodes themselves (and, when it ran,
//! Sauron's record of the blocks honest nodes accepted), with the
//! invariants of [`crate::checker`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crapcoin_core::network::MAX_ACKED_PAGE;
use crapcoin_core::{Address, Block, BlockHash, Params, TxId};
use crapcoin_node::http::models::AckedItem;
use futures_util::StreamExt as _;
use serde::Serialize;

use crate::checker::{self, Acked, Checks, Held, History};
use crate::client::{Client, Poll, boss_action};
use crate::fleet::{self, Fleet, Running, Tally};
use crate::forks::{ChainFacts, Known, Mining};
use crate::metrics::Sample;

/// Honest nodes agree when their best chains hold the same block at most
/// this many blocks below the highest honest tip (so every honest node is
/// within `k` of the best, and they share everything below).
pub const K: u64 = 2;
/// Polls in flight at once.
const CONCURRENCY: usize = 16;
/// How long the poll just before a firing may take.
const LAST_POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// One honest node's position.
#[derive(Debug, Clone)]
pub(crate) struct Position {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) height: u64,
    pub(crate) tip: BlockHash,
}

/// One member as shown by `status`, the control API and the report: its
/// lifecycle and its position at the last poll.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// Its lifecycle.
    #[serde(flatten)]
    pub member: fleet::View,
    /// Height from the last poll.
    pub height: Option<u64>,
    /// Tip from the last poll.
    pub tip: Option<BlockHash>,
}

/// What the polls left.
#[derive(Debug, Default)]
struct Seen {
    /// Last height and tip per member.
    positions: BTreeMap<String, (u64, BlockHash)>,
    /// Last metrics per (name, start number): counters restart at zero with
    /// every process, so totals add up the last sample of each process.
    samples: BTreeMap<(String, u32), Sample>,
    /// Wallet addresses honest node processes reported (`GET /status`).
    honest_addresses: BTreeSet<Address>,
    /// Every polled process by wallet address: its member's name, whether
    /// it is honest, its hash share (to name the miners of the chain).
    known: BTreeMap<Address, Known>,
    /// Transfers honest nodes listed as acknowledged while the run went
    /// on, by id (the first listing): watercooler's own record, so that a
    /// node that loses its record (its data rolled back) or is gone at the
    /// end does not take its transfers out of the check. At most
    /// [`MAX_RECORDED`].
    acked: BTreeMap<TxId, Acked>,
    /// The cursor of each honest process's listing (a new process of a
    /// member starts again at 0: its record may have been rolled back).
    acked_cursor: BTreeMap<(String, u32), u64>,
    /// The ids each honest process listed (at most [`MAX_RECORDED`] in
    /// all): what a later process of the same member no longer lists, a
    /// rollback took, even if a still later rollback brings the record
    /// back.
    acked_by_process: BTreeMap<(String, u32), BTreeSet<TxId>>,
}

/// Most acknowledged transfers watercooler records during a run.
const MAX_RECORDED: usize = 1_000_000;

/// Watches a fleet's nodes. Shared as `Arc<Watch>`; never holds its lock
/// across an `.await`.
#[derive(Debug)]
pub struct Watch {
    fleet: Arc<Fleet>,
    seen: Mutex<Seen>,
}

impl Seen {
    /// Adds `items`, listed by process `start` of `name`, to that process's
    /// list and to watercooler's record (the first listing of an id names
    /// its node); returns how many of them that process's list did not
    /// hold yet.
    fn list(&mut self, name: &str, start: u32, items: Vec<AckedItem>) -> usize {
        let mut new = 0;
        let listed: usize = self.acked_by_process.values().map(BTreeSet::len).sum();
        if listed < MAX_RECORDED {
            let list = self
                .acked_by_process
                .entry((name.to_owned(), start))
                .or_default();
            for item in &items {
                new += usize::from(list.insert(item.id));
            }
        }
        for item in items {
            if self.acked.len() >= MAX_RECORDED {
                break;
            }
            self.acked.entry(item.id).or_insert_with(|| Acked {
                node: name.to_owned(),
                item,
            });
        }
        new
    }
}

/// The acknowledged transfers recorded in the node database in `dir` (a
/// copy: the node that wrote it is dead), oldest first, none pending; at
/// most [`MAX_RECORDED`]. No database there is an empty record (and none
/// is made).
///
/// # Errors
///
/// The database cannot be opened or read.
pub(crate) async fn acknowledged_on_disk(dir: &Path) -> Result<Vec<AckedItem>, String> {
    use crapcoin_core::network::Store as _;
    if !dir.join(crapcoin_node::store::DB_FILE).exists() {
        // It died before it wrote anything.
        return Ok(Vec::new());
    }
    let store = crapcoin_node::store::Store::open(dir)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut after = 0;
    let read = loop {
        let page = match store.acknowledged(after, MAX_ACKED_PAGE).await {
            Ok(page) => page,
            Err(e) => break Err(e.to_string()),
        };
        let full = page.len() == MAX_ACKED_PAGE;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        out.extend(page.iter().map(|t| AckedItem::new(t, false)));
        if !full || out.len() >= MAX_RECORDED {
            break Ok(out);
        }
    };
    store.close().await;
    read
}

impl Watch {
    /// Watches `fleet`'s nodes (nothing seen yet).
    pub fn new(fleet: Arc<Fleet>) -> Self {
        Self {
            fleet,
            seen: Mutex::default(),
        }
    }

    /// The fleet it watches.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn client(&self) -> &Client {
        self.fleet.client()
    }

    /// Records a poll of `node`'s current process: its position, its
    /// wallet address (kept for honest nodes) and its counters.
    fn record(&self, node: &Running, poll: Poll) {
        let mut seen = self.lock();
        seen.positions
            .insert(node.name.clone(), (poll.status.height, poll.status.tip));
        if node.honest {
            seen.honest_addresses.insert(poll.status.address);
        }
        seen.known.insert(
            poll.status.address,
            Known {
                name: node.name.clone(),
                honest: node.honest,
                hash_share: poll.status.hash_share,
            },
        );
        seen.samples
            .insert((node.name.clone(), node.start), poll.sample);
    }

    /// Polls every running node once and records what it says; returns
    /// the honest nodes that answered.
    async fn poll(&self) -> Vec<Position> {
        self.fleet.reap();
        let running = self.fleet.running();
        let answers: Vec<_> = futures_util::stream::iter(running)
            .map(|node| async move {
                let poll = self.client().poll(&node.url, None).await?;
                Some((node, poll))
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let answers: Vec<(Running, Poll)> = answers.into_iter().flatten().collect();
        self.record_acknowledged(answers.iter().map(|(node, _)| node).filter(|n| n.honest))
            .await;
        let mut honest_positions = Vec::new();
        for (node, poll) in answers {
            if node.honest {
                honest_positions.push(Position {
                    name: node.name.clone(),
                    url: node.url.clone(),
                    height: poll.status.height,
                    tip: poll.status.tip,
                });
            }
            self.record(&node, poll);
        }
        honest_positions
    }

    /// Reads the next page of each of `nodes`' acknowledged transfers
    /// (one page a node a poll, so bounded) into watercooler's record.
    async fn record_acknowledged(&self, nodes: impl Iterator<Item = &Running>) {
        let asks: Vec<(Running, u64)> = {
            let seen = self.lock();
            if seen.acked.len() >= MAX_RECORDED {
                return;
            }
            nodes
                .map(|n| {
                    let key = (n.name.clone(), n.start);
                    (n.clone(), seen.acked_cursor.get(&key).copied().unwrap_or(0))
                })
                .collect()
        };
        let pages: Vec<_> = futures_util::stream::iter(asks)
            .map(|(node, after)| async move {
                let page = self.client().acknowledged(&node.url, after).await;
                (node, page)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut seen = self.lock();
        for (node, page) in pages {
            let Some(page) = page else { continue };
            if let Some(last) = page.transfers.last() {
                seen.acked_cursor
                    .insert((node.name.clone(), node.start), last.seq);
            }
            seen.list(&node.name, node.start, page.transfers);
        }
    }

    /// Records what the stopped process `start` of honest member `name`
    /// left in its record: `dir` holds a copy of its database taken after
    /// its SIGKILL. The polls read the records a page a round, so what it
    /// acknowledged since the last round would be missed, and with it the
    /// transfers a later rollback takes (the process after a rollback
    /// does not list them, and the verdict counts them as lost with a
    /// rolled-back disk). Bounded like the polls; a copy that cannot be
    /// read is logged and adds nothing.
    pub async fn record_left_on_disk(&self, name: &str, start: u32, dir: &Path) {
        match acknowledged_on_disk(dir).await {
            Ok(items) => {
                let on_disk = items.len();
                let unpolled = self.lock().list(name, start, items);
                tracing::info!(
                    node = %name,
                    start,
                    on_disk,
                    unpolled,
                    "its record of acknowledged transfers, read from the copy"
                );
            }
            Err(e) => {
                tracing::warn!(node = %name, start, error = %e, "could not read its record on disk");
            }
        }
    }

    /// Polls `name` once more just before it is fired, so its counters are
    /// counted up to (almost) its last moment: SIGKILL loses whatever it did
    /// since the previous poll. Bounded (one short timeout); a node that does
    /// not answer keeps its previous sample.
    pub async fn last_poll(&self, name: &str) {
        let Some(node) = self.fleet.running().into_iter().find(|r| r.name == name) else {
            return;
        };
        if let Some(poll) = self.client().poll(&node.url, Some(LAST_POLL_TIMEOUT)).await {
            self.record(&node, poll);
        }
    }

    /// `view` with its position at the last poll.
    fn with_position(&self, view: fleet::View) -> NodeView {
        let position = self.lock().positions.get(&view.name).cloned();
        NodeView {
            member: view,
            height: position.as_ref().map(|p| p.0),
            tip: position.map(|p| p.1),
        }
    }

    /// Every member.
    pub fn views(&self) -> Vec<NodeView> {
        self.fleet
            .views()
            .into_iter()
            .map(|v| self.with_position(v))
            .collect()
    }

    /// `view` of a member (as the fleet returned it) with its position.
    pub fn view(&self, view: fleet::View) -> NodeView {
        self.with_position(view)
    }

    /// The wallet addresses every honest node process polled so far
    /// reported (a rehired process keeps its data directory, hence
    /// usually its address).
    fn honest_addresses(&self) -> BTreeSet<Address> {
        self.lock().honest_addresses.clone()
    }

    /// The sum of the last sample of every process, honest nodes only or
    /// all.
    pub fn totals(&self, honest_only: bool) -> Sample {
        let honest: BTreeSet<String> = self
            .fleet
            .views()
            .into_iter()
            .filter(|v| v.honest)
            .map(|v| v.name)
            .collect();
        let seen = self.lock();
        let mut total = Sample::default();
        for ((name, _), sample) in &seen.samples {
            if !honest_only || honest.contains(name) {
                total.add(sample);
            }
        }
        total
    }
}

/// What the status line shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Nodes running (answering or not).
    pub running: usize,
    /// Members ever hired.
    pub members: usize,
    /// Honest nodes that answered the poll.
    pub honest: usize,
    /// Lowest and highest honest height.
    pub heights: Option<(u64, u64)>,
    /// Distinct tips among honest nodes.
    pub tips: usize,
    /// Totals over honest nodes.
    pub honest_totals: Sample,
    /// What happened to the fleet.
    pub tally: Tally,
}

impl Overview {
    /// One line: nodes, heights, tips, reorgs, rejected, firings.
    pub fn line(&self) -> String {
        let heights = match self.heights {
            Some((lo, hi)) if lo == hi => format!("{lo}"),
            Some((lo, hi)) => format!("{lo}..{hi}"),
            None => "-".to_owned(),
        };
        let verdict = match self.tips {
            0 => "no honest nodes",
            1 => "agreed",
            _ => "forked",
        };
        format!(
            "nodes {}/{} | honest height {heights} | tips {} ({verdict}) | reorgs {} | rejected {} | transfers submitted {} | fired {} rehired {} paused {}",
            self.running,
            self.members,
            self.tips,
            self.honest_totals.reorgs,
            self.honest_totals.rejected_total(),
            self.honest_totals.transfers_submitted,
            self.tally.fired,
            self.tally.rehired,
            self.tally.paused,
        )
    }
}

impl Watch {
    /// Polls the nodes and sums up.
    pub async fn overview(&self) -> Overview {
        let honest = self.poll().await;
        let tips: BTreeSet<&BlockHash> = honest.iter().map(|p| &p.tip).collect();
        let views = self.fleet.views();
        Overview {
            running: self.fleet.running().len(),
            members: views.len(),
            honest: honest.len(),
            heights: honest
                .iter()
                .map(|p| p.height)
                .min()
                .zip(honest.iter().map(|p| p.height).max()),
            tips: tips.len(),
            honest_totals: self.totals(true),
            tally: self.fleet.tally(),
        }
    }
}

/// The hashes of the best chain of the node at `url` from `from` up to
/// `top` (one `GET /blocks` page; `None` if the node does not answer or
/// its page does not reach `top`).
async fn hashes(client: &Client, url: &str, from: u64, top: u64) -> Option<Vec<BlockHash>> {
    let limit = top - from + 1;
    let page = client.blocks(url, from, Some(limit)).await?;
    let hashes: Vec<BlockHash> = page.into_iter().map(|block| block.hash).collect();
    (hashes.len() as u64 == limit).then_some(hashes)
}

/// The highest height at or below `top` where every node holds the same
/// block, looking at most `depth` blocks down; `None` if no such height
/// was found or a node did not answer. One page per node, [`CONCURRENCY`]
/// at a time.
pub(crate) async fn common_height(
    client: &Client,
    positions: &[Position],
    top: u64,
    depth: u64,
) -> Option<u64> {
    let from = top.saturating_sub(depth);
    let chains: Vec<Option<Vec<BlockHash>>> = futures_util::stream::iter(positions)
        .map(|p| hashes(client, &p.url, from, top))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let chains: Vec<Vec<BlockHash>> = chains.into_iter().collect::<Option<_>>()?;
    highest_agreed(&chains).map(|i| from + i as u64)
}

/// The highest index at which every chain (all of one length) holds the
/// same hash.
fn highest_agreed<T: PartialEq>(chains: &[Vec<T>]) -> Option<usize> {
    let first = chains.first()?;
    (0..first.len())
        .rev()
        .find(|&i| chains.iter().all(|c| c.get(i) == Some(&first[i])))
}

/// The best chain of the node at `url` from height `from` up to `top`
/// (`GET /blocks` pages; every block's hash checked). `None` if the node
/// stops answering, serves a block whose hash is not its own, or its pages
/// do not reach `top`.
pub(crate) async fn chain_blocks(
    client: &Client,
    url: &str,
    mut from: u64,
    top: u64,
) -> Option<Vec<Block>> {
    let mut out = Vec::new();
    while from <= top {
        let page = client.blocks(url, from, None).await?;
        let last = page.last()?.header.height;
        for json in page {
            let height = json.header.height;
            if height > top {
                break;
            }
            if height != from {
                return None;
            }
            out.push(json.into_block().ok()?);
            from = height + 1;
        }
        if last >= top {
            break;
        }
    }
    Some(out)
}

/// Of the `common` chain (genesis first), the transfers whose sender is
/// one of `senders`, and all of them. One per block (a block carries at
/// most one transfer, and a chain never holds a transfer twice: nonces).
/// In the same pass, each block's miner and timestamp ([`ChainFacts`]).
fn transfers_on_chain(common: &[Block], senders: &BTreeSet<Address>) -> (u64, u64, ChainFacts) {
    let mut count = 0;
    let mut all = 0;
    let mut facts = ChainFacts::default();
    for block in common {
        facts.add(
            block.header.height,
            block.header.timestamp,
            block.header.miner,
        );
        if let Some(tx) = &block.tx {
            all += 1;
            if senders.contains(&tx.from) {
                count += 1;
            }
        }
    }
    (count, all, facts)
}

/// Most pages of acknowledged transfers read from one node.
const MAX_ACKED_PAGES: usize = checker::MAX_ACKED_PER_NODE / 1_000;
/// Most pages of Sauron's `block_accepted` events read (500 a page).
const MAX_ACCEPTED_PAGES: usize = 400;
/// Most blocks fetched by hash for the validity check.
const MAX_FETCHED: usize = 20_000;

/// Every transfer each of `nodes` (name, URL) lists as acknowledged, all
/// pages (bounded); and the nodes that did not answer in full.
pub(crate) async fn acknowledged_by(
    client: &Client,
    nodes: &[(String, String)],
) -> (Vec<Acked>, Vec<String>) {
    let lists: Vec<(String, Option<Vec<Acked>>)> = futures_util::stream::iter(nodes)
        .map(|(name, url)| async move {
            let mut out = Vec::new();
            let mut after = 0;
            for _ in 0..MAX_ACKED_PAGES {
                let Some(page) = client.acknowledged(url, after).await else {
                    return (name.clone(), None);
                };
                out.extend(page.transfers.into_iter().map(|item| Acked {
                    node: name.clone(),
                    item,
                }));
                match page.next {
                    Some(next) => after = next,
                    None => return (name.clone(), Some(out)),
                }
            }
            (name.clone(), Some(out))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut all = Vec::new();
    let mut failed = Vec::new();
    for (name, list) in lists {
        match list {
            Some(list) => all.extend(list),
            None => failed.push(name),
        }
    }
    (all, failed)
}

/// The blocks Sauron at `sauron` saw honest nodes (`honest` names) accept,
/// other than those in `known`, fetched by hash from the running honest
/// nodes `sources` (name, URL), the node that accepted one first; and how
/// many could not be fetched. Each is marked `best` when a node accepted
/// it as its new tip or reorganised onto it. Bounded by
/// [`MAX_ACCEPTED_PAGES`] (per kind of event) and [`MAX_FETCHED`].
pub(crate) async fn accepted_blocks(
    client: &Client,
    sauron: &str,
    honest: &BTreeSet<String>,
    known: &BTreeSet<BlockHash>,
    sources: &[(String, String)],
) -> (Vec<Held>, usize) {
    // Hash -> (first honest node seen with it, on some best chain).
    let mut wanted: BTreeMap<BlockHash, (String, bool)> = BTreeMap::new();
    for (kind, field) in [("block_accepted", "hash"), ("reorg", "new_tip")] {
        let mut before = None;
        for _ in 0..MAX_ACCEPTED_PAGES {
            let Some(page) = client.sauron_events(sauron, kind, 500, before).await else {
                break;
            };
            for row in page.items.iter().filter(|row| honest.contains(&row.node)) {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&row.event) else {
                    continue;
                };
                let Some(hash) = event[field]
                    .as_str()
                    .and_then(|h| h.parse::<BlockHash>().ok())
                else {
                    continue;
                };
                // A reorg's new tip is on the best chain by definition.
                let best = kind == "reorg" || event["best"].as_bool() == Some(true);
                if !known.contains(&hash) {
                    let entry = wanted
                        .entry(hash)
                        .or_insert_with(|| (row.node.clone(), false));
                    entry.1 |= best;
                }
            }
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
    }
    let skipped = wanted.len().saturating_sub(MAX_FETCHED);
    let fetched: Vec<Option<Held>> =
        futures_util::stream::iter(wanted.into_iter().take(MAX_FETCHED))
            .map(|(hash, (node, best))| async move {
                let first = sources.iter().filter(|(name, _)| *name == node);
                let others = sources.iter().filter(|(name, _)| *name != node);
                for (_, url) in first.chain(others).take(3) {
                    if let Some(json) = client.block(url, &hash).await
                        && let Ok(block) = json.into_block()
                        && block.hash() == hash
                    {
                        return Some(Held {
                            node: node.clone(),
                            block,
                            best,
                        });
                    }
                }
                None
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let missing = fetched.iter().filter(|h| h.is_none()).count() + skipped;
    (fetched.into_iter().flatten().collect(), missing)
}

/// What Sauron saw of the run, asked at the end while it still runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SauronView {
    /// Its URL.
    pub url: String,
    /// The control URL it shows the dashboard (`GET /api/config`).
    pub control_url: Option<String>,
    /// Nodes it lists (`GET /api/nodes`, every node ever seen).
    pub nodes: usize,
    /// Its `boss` events by action (`GET /api/events?kind=boss`).
    pub boss_events: BTreeMap<String, u64>,
    /// Its consensus verdict (`GET /api/consensus`).
    pub verdict: Option<String>,
    /// Its fork figures (`GET /api/forks`), when it had a best chain.
    #[serde(skip)]
    pub forks: Option<crapcoin_node::sauron::state::Forks>,
}

/// Asks Sauron at `url` what it saw. Best effort, bounded.
async fn ask_sauron(client: &Client, url: String) -> SauronView {
    let mut view = SauronView {
        url: url.clone(),
        ..SauronView::default()
    };
    if let Some(config) = client.sauron_config(&url).await {
        view.control_url = config.control_url;
    }
    if let Some(nodes) = client.sauron_node_count(&url).await {
        view.nodes = nodes;
    }
    if let Some(consensus) = client.sauron_consensus(&url).await {
        view.verdict = Some(consensus.verdict.as_str().to_owned());
    }
    view.forks = client
        .sauron_forks(&url)
        .await
        .filter(|f| f.best_tip.is_some());
    let mut before: Option<i64> = None;
    // At most 20 pages of 500: far more firings than any run makes.
    for _ in 0..20 {
        let Some(page) = client.sauron_boss_events(&url, 500, before).await else {
            break;
        };
        for item in &page.items {
            *view
                .boss_events
                .entry(boss_action(item).to_owned())
                .or_default() += 1;
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    view
}

/// The summary at the end of a `--duration` run (and the `--report`
/// JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether the honest nodes agree ([`Verdict::agreement`]) and every
    /// check of [`Verdict::checks`] holds.
    pub converged: bool,
    /// Whether every honest node holds the same block at most `k` blocks
    /// below the highest honest tip.
    pub agreement: bool,
    /// Validity, acknowledged transfers, conservation and liveness, with
    /// every violation.
    pub checks: Checks,
    /// Honest nodes whose acknowledged transfers could not be read in
    /// full (their transfers are not checked).
    pub unread_nodes: Vec<String>,
    /// Honest nodes running at the end (and answering).
    pub honest_nodes: usize,
    /// Highest height at which every honest node holds the same block.
    pub common_height: u64,
    /// The `k` of the rule.
    pub k: u64,
    /// Lowest and highest honest tip height at the end.
    pub min_height: u64,
    /// See `min_height`.
    pub max_height: u64,
    /// Distinct honest tips at the end.
    pub tips: usize,
    /// Blocks on the common chain (its height).
    pub blocks: u64,
    /// Blocks mined by every node (forged ones included).
    pub blocks_mined: u64,
    /// Blocks honest nodes accepted (each node counts its own).
    pub blocks_accepted: u64,
    /// Reorgs on honest nodes.
    pub reorgs: u64,
    /// Blocks rolled back by those reorgs (forks abandoned).
    pub reorg_blocks: u64,
    /// Blocks honest nodes refused, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Nodes fired (SIGKILL), by the Boss or by hand.
    pub firings: u64,
    /// Nodes paused by the Boss.
    pub pauses: u64,
    /// Fired nodes started again on their data.
    pub rehires: u64,
    /// Nodes hired in total.
    pub hired: u64,
    /// Transfers honest nodes accepted to mine: the sum over honest node
    /// processes of their `crapcoin_transfers_submitted_total` (last
    /// sample of each process; each process is sampled once more just
    /// before it is fired).
    pub transfers_submitted: u64,
    /// Distinct transfers on the honest nodes' common chain (genesis to
    /// `common_height`) sent from an honest node's wallet: at most
    /// `transfers_submitted`. 0 when no common block was found.
    pub transfers_included: u64,
    /// Transfers on the common chain from any sender (misbehaving nodes'
    /// own included).
    pub transfers_on_chain: u64,
    /// Seconds the faults and load ran.
    pub duration_secs: u64,
    /// Seconds spent settling.
    pub settle_secs: f64,
    /// Nodes that confirmed pausing auto mode when settling began (`None`
    /// without `--auto`).
    pub auto_paused: Option<usize>,
    /// The run's seed.
    pub seed: u64,
    /// Every process watercooler started.
    pub pids: Vec<u32>,
    /// Blocks mined and on the best chain, the stale rate, the mean
    /// interval, miners' shares against hash shares, propagation: from
    /// Sauron when it ran, else from the nodes (see [`crate::forks`]).
    pub mining: Mining,
    /// Every node at the end.
    pub nodes: Vec<NodeView>,
    /// What Sauron saw, when it ran (asked before it is stopped).
    pub sauron: Option<SauronView>,
}

/// The ids a process of a member listed that a later process of the same
/// member did not list: its record was rolled back in between (a plain
/// restart keeps the record). Such a transfer's only copy may have been
/// on the lost tail, even when a still later rollback restores an older
/// copy that lists it again (the node may have reused its nonce in
/// between). A later process whose listing was still being paged when
/// the run ended can make a drop look like one; the checker counts a drop
/// only for nodes the Boss rolled back.
fn dropped_by_a_restart(listed: &BTreeMap<(String, u32), BTreeSet<TxId>>) -> BTreeSet<TxId> {
    let mut dropped = BTreeSet::new();
    // Keys sort by name, then by start: each member's processes in order.
    let processes: Vec<_> = listed.iter().collect();
    for (i, ((name, _), ids)) in processes.iter().enumerate() {
        for ((later_name, _), later_ids) in &processes[i + 1..] {
            if later_name != name {
                break;
            }
            dropped.extend(ids.difference(later_ids).copied());
        }
    }
    dropped
}

/// The verdict's first line: whether every check holds, and if not,
/// whether the honest nodes at least agree.
pub(crate) fn headline(converged: bool, agreement: bool) -> &'static str {
    match (converged, agreement) {
        (true, _) => "CONVERGED: the honest nodes share one chain and every check holds",
        (false, true) => "NOT CONVERGED: the honest nodes share one chain, but checks fail",
        (false, false) => "NOT CONVERGED: the honest nodes disagree",
    }
}

/// The verdict's line naming the nodes whose acknowledged transfers could
/// not be read (empty when there are none).
pub(crate) fn unread_line(unread: &[String]) -> String {
    if unread.is_empty() {
        String::new()
    } else {
        format!(
            "\n  unread            acknowledged transfers of {} could not be read",
            unread.join(", ")
        )
    }
}

impl Verdict {
    /// The human summary.
    pub fn text(&self) -> String {
        let rejected = if self.rejected.is_empty() {
            "none".to_owned()
        } else {
            self.rejected
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let headline = headline(self.converged, self.agreement);
        let unread = unread_line(&self.unread_nodes);
        format!(
            "verdict: {}\n  honest nodes      {} (tips at heights {}..{}, {} distinct)\n  common chain      height {} (k = {})\n  blocks            {} mined by all nodes, {} accepted by honest nodes\n  forks             {} reorgs on honest nodes, {} blocks rolled back\n{}\n  rejected blocks   {rejected}\n  boss              {} fired, {} paused, {} rehired ({} hired in all)\n  transfers         {} submitted by honest nodes, {} of them on the common chain ({} from anyone)\n  settling          {:.1} s{}\n{}{unread}\n  seed              {}",
            headline,
            self.honest_nodes,
            self.min_height,
            self.max_height,
            self.tips,
            self.common_height,
            self.k,
            self.blocks_mined,
            self.blocks_accepted,
            self.reorgs,
            self.reorg_blocks,
            self.mining.text(),
            self.firings,
            self.pauses,
            self.rehires,
            self.hired,
            self.transfers_submitted,
            self.transfers_included,
            self.transfers_on_chain,
            self.settle_secs,
            self.auto_paused
                .map(|n| format!(", auto mode paused on {n} nodes"))
                .unwrap_or_default(),
            self.checks.text(),
            self.seed,
        )
    }
}

impl Watch {
    /// Pauses auto mode on every node when `pause_auto` (the load stops,
    /// so the network can settle), polls until the honest nodes agree (all
    /// answered, and every one holds the same block at most `K` below the
    /// highest honest tip) and no honest node still holds a transfer it
    /// acknowledged in its mempool, or `settle` passes; then sums up and
    /// runs the [`checker`]'s checks, agreement within `liveness` of the
    /// start of settling being one of them.
    pub async fn verdict(
        &self,
        settle: Duration,
        duration_secs: u64,
        pause_auto: bool,
        liveness: Duration,
        rolled_back: BTreeSet<String>,
    ) -> Verdict {
        let fleet = &self.fleet;
        let client = self.client();
        let started = Instant::now();
        let auto_paused = if pause_auto {
            let (paused, asked) = fleet.set_auto(false).await;
            if paused < asked {
                tracing::warn!(paused, asked, "some nodes did not pause auto mode");
            }
            Some(paused)
        } else {
            None
        };
        let deadline = started + settle;
        let mut converged_after: Option<f64> = None;
        let (positions, common) = loop {
            let positions = self.poll().await;
            let expected = fleet.running().iter().filter(|r| r.honest).count();
            let min = positions.iter().map(|p| p.height).min().unwrap_or(0);
            let max = positions.iter().map(|p| p.height).max().unwrap_or(0);
            let common = if positions.is_empty() || positions.len() < expected {
                None
            } else {
                common_height(client, &positions, min, 64).await
            };
            let agreed = common.is_some_and(|c| c + K >= max);
            if agreed && converged_after.is_none() {
                converged_after = Some(started.elapsed().as_secs_f64());
            }
            // Once they agree, give the transfers still waiting in a
            // mempool the rest of the settle time to be mined.
            let waiting = if agreed {
                let nodes: Vec<(String, String)> = positions
                    .iter()
                    .map(|p| (p.name.clone(), p.url.clone()))
                    .collect();
                let (acked, _) = acknowledged_by(client, &nodes).await;
                acked.iter().filter(|a| a.item.pending).count()
            } else {
                0
            };
            if (agreed && waiting == 0) || Instant::now() >= deadline {
                break (positions, common);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let min_height = positions.iter().map(|p| p.height).min().unwrap_or(0);
        let max_height = positions.iter().map(|p| p.height).max().unwrap_or(0);
        let common_height = common.unwrap_or(0);
        let agreement = !positions.is_empty() && common.is_some_and(|c| c + K >= max_height);
        let honest = self.totals(true);
        let all = self.totals(false);
        let senders = self.honest_addresses();
        // The acknowledged transfers first, the chains after: a transfer
        // not pending when its node answered was mined before that (or
        // dropped), so the chains read next hold it unless it is lost.
        let sources: Vec<(String, String)> = positions
            .iter()
            .map(|p| (p.name.clone(), p.url.clone()))
            .collect();
        let (mut acknowledged, unread_nodes) = acknowledged_by(client, &sources).await;
        // The common chain from the first honest node; each honest node's
        // blocks above it, up to its tip now (blocks for pending transfers
        // are still mined while settling).
        let common_blocks = match (common, positions.first()) {
            (Some(top), Some(p)) => chain_blocks(client, &p.url, 1, top).await,
            _ => None,
        };
        let now = self.poll().await;
        let mut above = Vec::new();
        if let Some(top) = common {
            for p in &now {
                if p.height > top
                    && let Some(blocks) = chain_blocks(client, &p.url, top + 1, p.height).await
                {
                    above.extend(blocks);
                }
            }
        }
        let (transfers_included, transfers_on_chain, chain) = match &common_blocks {
            Some(blocks) => {
                let (included, on_chain, facts) = transfers_on_chain(blocks, &senders);
                (included, on_chain, Some(facts))
            }
            None => (0, 0, None),
        };
        // What watercooler recorded during the run and the nodes no longer
        // list (a rolled-back record, a node gone): not pending anywhere
        // it could be seen.
        let listed: BTreeSet<TxId> = acknowledged.iter().map(|a| a.item.id).collect();
        let recorded: Vec<Acked> = self
            .lock()
            .acked
            .values()
            .filter(|a| !listed.contains(&a.item.id))
            .cloned()
            .collect();
        let mut forgotten: BTreeSet<TxId> = recorded.iter().map(|a| a.item.id).collect();
        forgotten.extend(dropped_by_a_restart(&self.lock().acked_by_process));
        acknowledged.extend(recorded.into_iter().map(|mut a| {
            a.item.pending = false;
            a
        }));
        let common_blocks = common_blocks.unwrap_or_default();
        let mut history = History {
            params: Params::with_difficulty(fleet.settings().difficulty),
            common: common_blocks,
            above,
            acknowledged,
            forgotten,
            rolled_back,
            converged_after_secs: converged_after,
            liveness_secs: liveness.as_secs_f64(),
            ..History::default()
        };
        if let Some(url) = fleet.sauron_url() {
            let honest_names: BTreeSet<String> = fleet
                .views()
                .into_iter()
                .filter(|v| v.honest)
                .map(|v| v.name)
                .collect();
            let known: BTreeSet<BlockHash> = history
                .common
                .iter()
                .chain(&history.above)
                .map(Block::hash)
                .collect();
            let (held, unfetched) =
                accepted_blocks(client, &url, &honest_names, &known, &sources).await;
            history.held = held;
            history.unfetched = unfetched;
        }
        let checks = checker::check(&history);
        let converged = agreement && checks.hold();
        let sauron = match fleet.sauron_url() {
            Some(url) => Some(ask_sauron(client, url).await),
            None => None,
        };
        let mining = match sauron.as_ref().and_then(|s| s.forks.as_ref()) {
            Some(forks) => Mining::from_sauron(forks),
            None => {
                let known = self.lock().known.clone();
                let mut mining = Mining::from_nodes(chain.as_ref(), all.blocks_mined, &known);
                if sauron.is_some() {
                    mining
                        .missing
                        .push("Sauron's figures: it had no honest best chain at the end".into());
                }
                mining
            }
        };
        let tally = fleet.tally();
        Verdict {
            converged,
            agreement,
            checks,
            unread_nodes,
            honest_nodes: positions.len(),
            common_height,
            k: K,
            min_height,
            max_height,
            tips: positions
                .iter()
                .map(|p| &p.tip)
                .collect::<BTreeSet<_>>()
                .len(),
            blocks: common_height,
            blocks_mined: all.blocks_mined,
            blocks_accepted: honest.blocks_accepted,
            reorgs: honest.reorgs,
            reorg_blocks: honest.reorg_blocks,
            rejected: honest.rejected,
            firings: tally.fired,
            pauses: tally.paused,
            rehires: tally.rehired,
            hired: tally.hired,
            transfers_submitted: honest.transfers_submitted,
            transfers_included,
            transfers_on_chain,
            duration_secs,
            settle_secs: started.elapsed().as_secs_f64(),
            auto_paused,
            seed: fleet.settings().seed,
            pids: fleet.pids(),
            mining,
            nodes: self.views(),
            sauron,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use crapcoin_core::TxId;

    use crapcoin_core::network::Store as _;
    use crapcoin_node::http::models::AckedItem;

    use super::{Seen, acknowledged_on_disk, dropped_by_a_restart, highest_agreed};

    /// A transfer acknowledged after the last poll of a process that a
    /// SIGKILL then ended, gone with a rollback to genesis and back with a
    /// later rollback to that process's copy, counts as dropped by the
    /// restart once the copy is read: the polls alone never saw the first
    /// process list it, so it looked like the node's own loss.
    #[tokio::test]
    async fn what_a_killed_process_left_on_disk_counts_as_its_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        let txs: Vec<_> = (0..3)
            .map(|nonce| kit::chain::pay(1, kit::chain::addr(7), 5, 1, nonce))
            .collect();
        let store = crapcoin_node::store::Store::open(dir.path())
            .await
            .expect("opens");
        let mut polled = Vec::new();
        for (i, tx) in txs.iter().enumerate() {
            let seq = store
                .save_transfer(tx.id(), 1_000 + i as u64, tx)
                .await
                .expect("saves");
            if i == 0 {
                let page = store.acknowledged(0, 10).await.expect("reads");
                polled.extend(page.iter().map(|t| AckedItem::new(t, true)));
            }
            assert_eq!(seq, i as u64 + 1);
        }
        store.close().await;
        let on_disk = acknowledged_on_disk(dir.path()).await.expect("reads");
        assert_eq!(
            on_disk.iter().map(|t| t.id).collect::<Vec<_>>(),
            txs.iter()
                .map(crapcoin_core::Transaction::id)
                .collect::<Vec<_>>()
        );
        assert!(on_disk.iter().all(|t| !t.pending));

        let name = "bigload-1";
        let mut seen = Seen::default();
        // Process 1: one poll saw the first transfer, the disk holds all
        // three. Process 2 (rolled back to genesis) lists none of them;
        // process 3 (rolled back to process 1's copy) all three.
        assert_eq!(seen.list(name, 1, polled), 1);
        assert!(dropped_by_a_restart(&seen.acked_by_process).is_empty());
        seen.acked_by_process
            .insert((name.to_owned(), 2), BTreeSet::new());
        seen.list(name, 3, on_disk.clone());
        let dropped = dropped_by_a_restart(&seen.acked_by_process);
        assert_eq!(dropped, BTreeSet::from([txs[0].id()]));
        assert_eq!(seen.list(name, 1, on_disk), 2, "two were never polled");
        let dropped = dropped_by_a_restart(&seen.acked_by_process);
        assert_eq!(dropped, txs.iter().map(|t| t.id()).collect());
        assert_eq!(seen.acked.len(), 3);
        assert!(seen.acked.values().all(|a| a.node == name));
    }

    /// A copy that holds no database reads as an empty record, and is
    /// left empty (a rollback onto it starts from genesis).
    #[tokio::test]
    async fn an_empty_copy_holds_no_transfers() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(
            acknowledged_on_disk(dir.path())
                .await
                .expect("reads")
                .is_empty()
        );
        let left = std::fs::read_dir(dir.path()).expect("lists").count();
        assert_eq!(left, 0, "reading made files");
    }

    /// A transfer listed by a node's first process, gone from its second
    /// (rolled back to genesis) and back in its third (rolled back to a
    /// copy that held it) was dropped all the same; one every process
    /// lists, or another node's, was not.
    #[test]
    fn a_record_a_restart_dropped_counts_even_if_it_comes_back() {
        let id = |n: u8| TxId([n; 32]);
        let set = |ids: &[u8]| ids.iter().map(|&n| id(n)).collect::<BTreeSet<_>>();
        let listed: BTreeMap<(String, u32), BTreeSet<TxId>> = [
            (("bigload-1".to_owned(), 1), set(&[1, 2])),
            (("bigload-1".to_owned(), 2), set(&[2])),
            (("bigload-1".to_owned(), 3), set(&[1, 2, 3])),
            (("bigload-2".to_owned(), 1), set(&[4])),
            (("bigload-2".to_owned(), 2), set(&[4, 5])),
        ]
        .into_iter()
        .collect();
        assert_eq!(dropped_by_a_restart(&listed), set(&[1]));
    }

    fn chain(hashes: &str) -> Vec<String> {
        hashes.chars().map(String::from).collect()
    }

    #[test]
    fn the_highest_shared_block_is_found() {
        assert_eq!(highest_agreed(&[chain("abcd"), chain("abcd")]), Some(3));
        assert_eq!(
            highest_agreed(&[chain("abcd"), chain("abxy"), chain("abcz")]),
            Some(1)
        );
        assert_eq!(highest_agreed(&[chain("abcd"), chain("xbcd")]), Some(3));
        assert_eq!(highest_agreed(&[chain("ab"), chain("xy")]), None);
        assert_eq!(highest_agreed(&[chain("abc")]), Some(2));
        assert_eq!(highest_agreed::<String>(&[]), None);
    }
}
