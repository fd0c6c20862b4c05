//! `watercooler verdict --sauron URL`: the verdict of a network
//! watercooler did not start (the verdict Job of `watercooler deploy
//! k8s`, or any network reporting to a Sauron).
//!
//! The honest nodes are those Sauron lists as honest, registered, alive
//! and not fired; they are reached at the URLs they advertise. Agreement
//! is [`crate::watch`]'s rule (every honest node holds the same block at
//! most `K` below the highest honest tip) and the checks are
//! [`crate::checker`]'s (validity, acknowledged transfers, conservation,
//! liveness), read through the same helpers as watercooler's own
//! verdict. What watercooler alone knows (its record of the transfers
//! acknowledged during the run, the nodes it rolled back) is not there:
//! the transfers are those the nodes list at the end.
//!
//! With `CRAPCOIN_ADMIN_TOKEN` in its environment it first pauses auto
//! mode on every node Sauron lists, as watercooler does when settling.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clap::Parser;
use crapcoin_core::{Block, BlockHash, Params, PeerUrl};
use crapcoin_node::sauron::state::Node;
use futures_util::StreamExt as _;
use serde::Serialize;

use crate::checker::{self, Checks, History};
use crate::client::Client;
use crate::watch::{
    K, Position, accepted_blocks, acknowledged_by, chain_blocks, common_height, headline,
    unread_line,
};

/// Nodes polled at once.
const CONCURRENCY: usize = 16;
/// Most nodes read from Sauron's list.
const MAX_NODES: usize = 10_000;

/// `watercooler verdict`.
#[derive(Debug, Clone, Parser)]
#[command(after_help = "Exit status: 0 converged, 1 not (or Sauron unreachable), 2 usage.")]
pub struct VerdictArgs {
    /// Sauron's URL (`http://HOST:PORT`).
    #[arg(long, value_parser = sauron_url)]
    pub sauron: String,
    /// Seconds to wait before judging (the run's length).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub after: u64,
    /// At most this many seconds of settling (polling until the honest
    /// nodes agree).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub settle: u64,
    /// The liveness bound: agreement within this many seconds of the
    /// start of settling.
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub liveness_secs: u64,
    /// The network's proof-of-work bits (default: Sauron's
    /// `/api/config`, else the node's default).
    #[arg(long, value_name = "BITS")]
    pub difficulty: Option<u8>,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

fn sauron_url(s: &str) -> Result<String, String> {
    s.parse::<PeerUrl>()
        .map(|u| u.to_string().trim_end_matches('/').to_owned())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// The verdict of a network seen through Sauron.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteVerdict {
    /// Agreement and every check.
    pub converged: bool,
    /// Whether the honest nodes agree.
    pub agreement: bool,
    /// Honest nodes Sauron listed as up.
    pub honest_listed: usize,
    /// Of those, the ones that answered.
    pub honest_nodes: usize,
    /// Highest height where every honest node holds the same block.
    pub common_height: u64,
    /// Lowest honest tip height.
    pub min_height: u64,
    /// Highest honest tip height.
    pub max_height: u64,
    /// Honest nodes whose acknowledged transfers could not be read.
    pub unread_nodes: Vec<String>,
    /// Seconds spent settling.
    pub settle_secs: f64,
    /// Nodes that paused auto mode for the verdict (`None`: no admin
    /// token in the environment, nothing paused).
    pub auto_paused: Option<usize>,
    /// The checks.
    pub checks: Checks,
}

impl RemoteVerdict {
    /// The human summary.
    pub fn text(&self) -> String {
        let headline = headline(self.converged, self.agreement);
        let unread = unread_line(&self.unread_nodes);
        format!(
            "verdict: {headline}\n  honest nodes      {} answered of {} Sauron lists (tips at heights {}..{})\n  common chain      height {} (k = {K})\n  settling          {:.1} s\n{}{unread}",
            self.honest_nodes,
            self.honest_listed,
            self.min_height,
            self.max_height,
            self.common_height,
            self.settle_secs,
            self.checks.text(),
        )
    }
}

/// The honest nodes Sauron lists as up (alive, registered, not fired).
fn honest_up(nodes: &[Node]) -> Vec<(String, String)> {
    nodes
        .iter()
        .filter(|n| n.honest && n.alive && n.registered && !n.fired)
        .map(|n| (n.name.clone(), n.url.clone()))
        .collect()
}

/// Polls `nodes` (name, URL) once; the positions of those that answered.
async fn positions(client: &Client, nodes: &[(String, String)]) -> Vec<Position> {
    futures_util::stream::iter(nodes)
        .map(|(name, url)| async move {
            let status = client.status(url, None).await?;
            Some(Position {
                name: name.clone(),
                url: url.clone(),
                height: status.height,
                tip: status.tip,
            })
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(std::future::ready)
        .collect()
        .await
}

/// Judges the network behind Sauron at `args.sauron`; `None` when Sauron
/// does not answer.
pub async fn judge(client: &Client, args: &VerdictArgs) -> Option<RemoteVerdict> {
    let sauron = &args.sauron;
    let config = client.sauron_config(sauron).await?;
    let difficulty = args
        .difficulty
        .or_else(|| config.difficulty.and_then(|d| u8::try_from(d).ok()))
        .unwrap_or(Params::default().difficulty);
    let mut auto_paused = None;
    if let Ok(token) = std::env::var(crapcoin_node::cookie::TOKEN_ENV) {
        let nodes = client.sauron_nodes(sauron).await.unwrap_or_default();
        let mut paused = 0;
        for node in nodes.iter().filter(|n| n.alive).take(MAX_NODES) {
            if client.set_auto(&node.url, &token, false).await {
                paused += 1;
            }
        }
        tracing::info!(paused, "auto mode paused for the verdict");
        auto_paused = Some(paused);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.settle);
    let mut converged_after = None;
    let (listed, positions, common) = loop {
        let mut nodes = client.sauron_nodes(sauron).await?;
        nodes.truncate(MAX_NODES);
        let listed = honest_up(&nodes);
        let positions = positions(client, &listed).await;
        let min = positions.iter().map(|p| p.height).min().unwrap_or(0);
        let max = positions.iter().map(|p| p.height).max().unwrap_or(0);
        let common = if positions.is_empty() || positions.len() < listed.len() {
            None
        } else {
            common_height(client, &positions, min, 64).await
        };
        let agreed = common.is_some_and(|c| c + K >= max);
        if agreed && converged_after.is_none() {
            converged_after = Some(started.elapsed().as_secs_f64());
        }
        let waiting = if agreed {
            let (acked, _) = acknowledged_by(client, &listed).await;
            acked.iter().filter(|a| a.item.pending).count()
        } else {
            0
        };
        if (agreed && waiting == 0) || Instant::now() >= deadline {
            break (listed, positions, common);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let min_height = positions.iter().map(|p| p.height).min().unwrap_or(0);
    let max_height = positions.iter().map(|p| p.height).max().unwrap_or(0);
    let agreement = !positions.is_empty()
        && positions.len() == listed.len()
        && common.is_some_and(|c| c + K >= max_height);
    let sources: Vec<(String, String)> = positions
        .iter()
        .map(|p| (p.name.clone(), p.url.clone()))
        .collect();
    let (acknowledged, unread_nodes) = acknowledged_by(client, &sources).await;
    let common_blocks = match (common, positions.first()) {
        (Some(top), Some(p)) => chain_blocks(client, &p.url, 1, top).await,
        _ => None,
    };
    let mut above = Vec::new();
    if let Some(top) = common {
        for p in self::positions(client, &sources).await {
            if p.height > top
                && let Some(blocks) = chain_blocks(client, &p.url, top + 1, p.height).await
            {
                above.extend(blocks);
            }
        }
    }
    let mut history = History {
        params: Params::with_difficulty(difficulty),
        common: common_blocks.unwrap_or_default(),
        above,
        acknowledged,
        converged_after_secs: converged_after,
        liveness_secs: args.liveness_secs as f64,
        ..History::default()
    };
    let honest: BTreeSet<String> = listed.iter().map(|(n, _)| n.clone()).collect();
    let known: BTreeSet<BlockHash> = history
        .common
        .iter()
        .chain(&history.above)
        .map(Block::hash)
        .collect();
    let (held, unfetched) = accepted_blocks(client, sauron, &honest, &known, &sources).await;
    history.held = held;
    history.unfetched = unfetched;
    let checks = checker::check(&history);
    Some(RemoteVerdict {
        converged: agreement && checks.hold(),
        agreement,
        honest_listed: listed.len(),
        honest_nodes: positions.len(),
        common_height: common.unwrap_or(0),
        min_height,
        max_height,
        unread_nodes,
        settle_secs: started.elapsed().as_secs_f64(),
        auto_paused,
        checks,
    })
}

/// `watercooler verdict`: waits `--after`, judges, prints; exit 0
/// converged, 1 not (or Sauron unreachable).
pub async fn main(args: VerdictArgs) -> i32 {
    if args.after > 0 {
        tracing::info!(secs = args.after, "waiting for the run before the verdict");
        tokio::time::sleep(Duration::from_secs(args.after)).await;
    }
    let client = match Client::new() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("watercooler verdict: {e}");
            return 1;
        }
    };
    let Some(verdict) = judge(&client, &args).await else {
        eprintln!(
            "watercooler verdict: Sauron at {} does not answer",
            args.sauron
        );
        return 1;
    };
    if args.json {
        match serde_json::to_string_pretty(&verdict) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("watercooler verdict: {e}"),
        }
    } else {
        println!("{}", verdict.text());
    }
    i32::from(!verdict.converged)
}
