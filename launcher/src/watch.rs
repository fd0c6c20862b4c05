//! Watching the nodes: polls (`GET /status`, `GET /metrics`), the live
//! [`Overview`], and the final [`Verdict`], computed from the nodes
//! themselves so it never depends on Sauron.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use crate::fleet::{Fleet, Poll, Tally};
use crate::metrics::Sample;

/// Honest nodes agree when their best chains hold the same block at most
/// this many blocks below the highest honest tip (so every honest node is
/// within `k` of the best, and they share everything below).
pub const K: u64 = 2;
/// Polls in flight at once.
const CONCURRENCY: usize = 16;

/// An HTTP client with short timeouts, for polls.
///
/// # Panics
///
/// When the TLS-less client cannot be built (it always can).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

async fn get_text(client: &reqwest::Client, url: &str) -> Option<String> {
    let response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    serde_json::from_str(&get_text(client, url).await?).ok()
}

/// One honest node's position.
#[derive(Debug, Clone)]
struct Position {
    url: String,
    height: u64,
    tip: String,
}

/// Polls one node process (`GET /status`, `GET /metrics`); `None` when it
/// does not answer.
async fn poll_one(client: &reqwest::Client, url: &str) -> Option<Poll> {
    let status = get_json(client, &format!("{url}/status")).await?;
    let metrics = get_text(client, &format!("{url}/metrics")).await?;
    Some(Poll {
        height: status["height"].as_u64()?,
        tip: status["tip"].as_str()?.to_owned(),
        address: status["address"].as_str().map(str::to_owned),
        sample: Sample::parse(&metrics),
    })
}

/// Polls every running node once and records what it says in the fleet;
/// returns the honest nodes that answered.
async fn poll(fleet: &Fleet, client: &reqwest::Client) -> Vec<Position> {
    fleet.reap();
    let running = fleet.running();
    let answers: Vec<_> = futures_util::stream::iter(running)
        .map(|(name, url, honest, start)| {
            let client = client.clone();
            async move {
                let poll = poll_one(&client, &url).await?;
                Some((name, url, honest, start, poll))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut honest_positions = Vec::new();
    for (name, url, honest, start, poll) in answers.into_iter().flatten() {
        if honest {
            honest_positions.push(Position {
                url,
                height: poll.height,
                tip: poll.tip.clone(),
            });
        }
        fleet.record(&name, start, poll);
    }
    honest_positions
}

/// Polls `name` once more just before it is fired, so its counters are
/// counted up to (almost) its last moment: SIGKILL loses whatever it did
/// since the previous poll. Bounded (one short timeout); a node that does
/// not answer keeps its previous sample.
pub async fn last_poll(fleet: &Fleet, name: &str) {
    let Some((_, url, _, start)) = fleet.running().into_iter().find(|r| r.0 == name) else {
        return;
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .no_proxy()
        .build()
        .unwrap_or_else(|_| client());
    if let Some(poll) = poll_one(&client, &url).await {
        fleet.record(name, start, poll);
    }
}

/// Pauses (`on = false`) or resumes auto mode on every running node
/// through `POST /admin/auto`, and for nodes started later (see
/// [`Fleet::set_auto_paused`]); returns how many nodes confirmed, of how
/// many asked. Bounded: [`CONCURRENCY`] calls at once, each with the
/// client's timeouts.
pub async fn set_auto(fleet: &Fleet, client: &reqwest::Client, on: bool) -> (usize, usize) {
    fleet.set_auto_paused(!on);
    let targets = fleet.admin_targets();
    let asked = targets.len();
    let confirmed = futures_util::stream::iter(targets)
        .map(|(url, token)| async move { set_auto_one(client, &url, &token, on).await })
        .buffer_unordered(CONCURRENCY)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    (confirmed, asked)
}

/// `POST {url}/admin/auto {"on": on}` with the node's admin token; true
/// when the node confirmed.
pub async fn set_auto_one(client: &reqwest::Client, url: &str, token: &str, on: bool) -> bool {
    let sent = client
        .post(format!("{url}/admin/auto"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "on": on }).to_string())
        .send()
        .await;
    matches!(sent, Ok(r) if r.status().is_success())
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

/// Polls the nodes and sums up.
pub async fn overview(fleet: &Fleet, client: &reqwest::Client) -> Overview {
    let honest = poll(fleet, client).await;
    let tips: BTreeSet<&str> = honest.iter().map(|p| p.tip.as_str()).collect();
    let views = fleet.views();
    Overview {
        running: fleet.running().len(),
        members: views.len(),
        honest: honest.len(),
        heights: honest
            .iter()
            .map(|p| p.height)
            .min()
            .zip(honest.iter().map(|p| p.height).max()),
        tips: tips.len(),
        honest_totals: fleet.totals(true),
        tally: fleet.tally(),
    }
}

/// The hashes of the best chain of the node at `url` from `from` up to
/// `top` (one `GET /blocks` page; `None` if the node does not answer or
/// its page does not reach `top`).
async fn hashes(client: &reqwest::Client, url: &str, from: u64, top: u64) -> Option<Vec<String>> {
    let limit = top - from + 1;
    let page = get_json(client, &format!("{url}/blocks?from={from}&limit={limit}")).await?;
    let hashes = page
        .as_array()?
        .iter()
        .map(|block| {
            let hash = block
                .get("hash")
                .or_else(|| block.get("header")?.get("hash"))?;
            hash.as_str().map(str::to_owned)
        })
        .collect::<Option<Vec<_>>>()?;
    (hashes.len() as u64 == limit).then_some(hashes)
}

/// The highest height at or below `top` where every node holds the same
/// block, looking at most `depth` blocks down; `None` if no such height
/// was found or a node did not answer. One page per node, [`CONCURRENCY`]
/// at a time.
async fn common_height(
    client: &reqwest::Client,
    positions: &[Position],
    top: u64,
    depth: u64,
) -> Option<u64> {
    let from = top.saturating_sub(depth);
    let chains: Vec<Option<Vec<String>>> = futures_util::stream::iter(positions)
        .map(|p| hashes(client, &p.url, from, top))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let chains: Vec<Vec<String>> = chains.into_iter().collect::<Option<_>>()?;
    highest_agreed(&chains).map(|i| from + i as u64)
}

/// The highest index at which every chain (all of one length) holds the
/// same hash.
fn highest_agreed(chains: &[Vec<String>]) -> Option<usize> {
    let first = chains.first()?;
    (0..first.len())
        .rev()
        .find(|&i| chains.iter().all(|c| c.get(i) == Some(&first[i])))
}

/// Transfers on the best chain of the node at `url` from genesis up to
/// `top`: those whose sender is one of `senders`, and all of them. One
/// per block (a block carries at most one transfer, and a chain never
/// holds a transfer twice: nonces). Reads `GET /blocks` pages; `None` if
/// the node stops answering or its pages do not reach `top`.
async fn transfers_on_chain(
    client: &reqwest::Client,
    url: &str,
    top: u64,
    senders: &BTreeSet<String>,
) -> Option<(u64, u64)> {
    let mut from = 0;
    let mut count = 0;
    let mut all = 0;
    while from <= top {
        let page = get_json(client, &format!("{url}/blocks?from={from}")).await?;
        let blocks = page.as_array()?;
        if blocks.is_empty() {
            return None;
        }
        for block in blocks {
            let height = block["header"]["height"].as_u64()?;
            if height > top {
                break;
            }
            if let Some(sender) = block["tx"]["from"].as_str() {
                all += 1;
                if senders.contains(sender) {
                    count += 1;
                }
            }
            from = height + 1;
        }
        if blocks.last()?["header"]["height"].as_u64()? >= top {
            break;
        }
    }
    Some((count, all))
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
}

/// Asks Sauron (when it runs) what it saw. Best effort, bounded.
async fn ask_sauron(fleet: &Fleet, client: &reqwest::Client) -> Option<SauronView> {
    let url = fleet.sauron_url()?;
    let mut view = SauronView {
        url: url.clone(),
        ..SauronView::default()
    };
    if let Some(config) = get_json(client, &format!("{url}/api/config")).await {
        view.control_url = config["control_url"].as_str().map(str::to_owned);
    }
    if let Some(nodes) = get_json(client, &format!("{url}/api/nodes")).await {
        let rows = nodes.as_array().or_else(|| nodes["items"].as_array());
        view.nodes = rows.map_or(0, Vec::len);
    }
    if let Some(consensus) = get_json(client, &format!("{url}/api/consensus")).await {
        view.verdict = consensus["verdict"].as_str().map(str::to_owned);
    }
    let mut before: Option<i64> = None;
    // At most 20 pages of 500: far more firings than any run makes.
    for _ in 0..20 {
        let mut query = format!("{url}/api/events?kind=boss&limit=500");
        if let Some(b) = before {
            query.push_str(&format!("&before={b}"));
        }
        let Some(page) = get_json(client, &query).await else {
            break;
        };
        for item in page["items"].as_array().into_iter().flatten() {
            let action = item["event"]["action"]
                .as_str()
                .unwrap_or("unknown")
                .to_owned();
            *view.boss_events.entry(action).or_default() += 1;
        }
        match page["next"].as_i64() {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    Some(view)
}

/// The summary at the end of a `--duration` run (and the `--report`
/// JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether every honest node holds the same block at most `k` blocks
    /// below the highest honest tip.
    pub converged: bool,
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
    /// Every node at the end.
    pub nodes: Vec<crate::fleet::View>,
    /// What Sauron saw, when it ran (asked before it is stopped).
    pub sauron: Option<SauronView>,
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
        format!(
            "verdict: {}\n  honest nodes      {} (tips at heights {}..{}, {} distinct)\n  common chain      height {} (k = {})\n  blocks            {} mined by all nodes, {} accepted by honest nodes\n  forks             {} reorgs on honest nodes, {} blocks rolled back\n  rejected blocks   {rejected}\n  boss              {} fired, {} paused, {} rehired ({} hired in all)\n  transfers         {} submitted by honest nodes, {} of them on the common chain ({} from anyone)\n  settling          {:.1} s{}\n  seed              {}",
            if self.converged {
                "CONVERGED: the honest nodes share one chain"
            } else {
                "NOT CONVERGED: the honest nodes disagree"
            },
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
            self.seed,
        )
    }
}

/// Pauses auto mode on every node when `pause_auto` (the load stops, so
/// the network can settle), polls until the honest nodes agree (all
/// answered, and every one holds the same block at most `K` below the
/// highest honest tip) or `settle` passes; then sums up.
pub async fn verdict(
    fleet: &Arc<Fleet>,
    settle: Duration,
    duration_secs: u64,
    pause_auto: bool,
) -> Verdict {
    let client = client();
    let started = Instant::now();
    let auto_paused = if pause_auto {
        let (paused, asked) = set_auto(fleet, &client, false).await;
        if paused < asked {
            tracing::warn!(paused, asked, "some nodes did not pause auto mode");
        }
        Some(paused)
    } else {
        None
    };
    let deadline = started + settle;
    let (positions, common) = loop {
        let positions = poll(fleet, &client).await;
        let expected = fleet
            .running()
            .iter()
            .filter(|(_, _, honest, _)| *honest)
            .count();
        let min = positions.iter().map(|p| p.height).min().unwrap_or(0);
        let max = positions.iter().map(|p| p.height).max().unwrap_or(0);
        let common = if positions.is_empty() || positions.len() < expected {
            None
        } else {
            common_height(&client, &positions, min, 64).await
        };
        let agreed = common.is_some_and(|c| c + K >= max);
        if agreed || Instant::now() >= deadline {
            break (positions, common);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let min_height = positions.iter().map(|p| p.height).min().unwrap_or(0);
    let max_height = positions.iter().map(|p| p.height).max().unwrap_or(0);
    let common_height = common.unwrap_or(0);
    let converged = !positions.is_empty() && common.is_some_and(|c| c + K >= max_height);
    let honest = fleet.totals(true);
    let all = fleet.totals(false);
    let senders = fleet.honest_addresses();
    let (transfers_included, transfers_on_chain) = match (common, positions.first()) {
        (Some(top), Some(p)) => transfers_on_chain(&client, &p.url, top, &senders)
            .await
            .unwrap_or((0, 0)),
        _ => (0, 0),
    };
    let sauron = ask_sauron(fleet, &client).await;
    let tally = fleet.tally();
    Verdict {
        converged,
        honest_nodes: positions.len(),
        common_height,
        k: K,
        min_height,
        max_height,
        tips: positions
            .iter()
            .map(|p| p.tip.as_str())
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
        nodes: fleet.views(),
        sauron,
    }
}

#[cfg(test)]
mod tests {
    use super::highest_agreed;

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
        assert_eq!(highest_agreed(&[]), None);
    }
}
