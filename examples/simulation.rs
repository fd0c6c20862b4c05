//! # A whole network in one process
//!
//! Starts `--nodes N` honest nodes on the in-memory network (random peers
//! found through an in-memory tracker, optional latency and message loss),
//! lets `--active K` of them make `--transfers T` auto transfers between
//! them, then waits for the network to settle and checks that every node
//! ended on the same chain, that every transfer a node accepted is on it
//! exactly once, and that the supply equals the rewards minted.
//!
//! ```text
//! cargo run --release --example simulation -- --nodes 100
//! cargo run --release --example simulation -- --nodes 10000 --transfers 20
//! ```
//!
//! With `--block-interval SECS` every node mines on its proof-of-work
//! schedule (`Mining::Scheduled`, equal hash power shares, or the ones
//! `--shares` gives), as real networks do: blocks arrive at mean interval
//! T whatever the number of nodes. Without it nodes mine on demand, a
//! block per transfer (the old model).
//!
//! ```text
//! cargo run --release --example simulation -- --nodes 100 --block-interval 0.5
//! ```
//!
//! Progress goes to stderr; the last line on stdout is one JSON object:
//! `nodes`, `converged`, `height`, `elapsed_ms`, the fork summary `forks`
//! (blocks mined, on the best chain, stale rate, mean block interval, each
//! miner's share of the best chain beside its hash share, propagation
//! delay: `crapcoin_core::measure::ForkStats`), and more. The exit status
//! is 0 when the network converged and 1 when it did not.
//!
//! Only `K` nodes make transfers (all `N` validate and relay every block):
//! with every node transferring, a 10,000-node network would spend its time
//! mining competing blocks rather than showing agreement.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use crapcoin_core::measure::ForkMeter;
use crapcoin_core::node::AutoConfig;
use crapcoin_core::{
    Clock, Config, Event, Handle, HashPower, Mining, Node, Params, TxId, Wallet, memory,
};

/// A network of honest nodes on the in-memory transport.
#[derive(Parser, Debug)]
struct Args {
    /// Honest nodes to start.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Nodes that make auto transfers (default: min(nodes, 10)).
    #[arg(long)]
    active: Option<usize>,
    /// Transfers in total, spread over the active nodes.
    #[arg(long, default_value_t = 40)]
    transfers: u64,
    /// Proof-of-work difficulty in leading zero bits.
    #[arg(long, default_value_t = 10)]
    difficulty: u8,
    /// Largest one-way latency of a call, in milliseconds (uniform from 1).
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Share of calls lost, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Give up waiting for agreement after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Target block interval T in seconds: mine on a proof-of-work
    /// schedule (default: on demand, a block per transfer).
    #[arg(long)]
    block_interval: Option<f64>,
    /// Hash power shares of the first nodes, comma-separated (the others
    /// share what is left equally; default: equal shares).
    #[arg(long, value_delimiter = ',')]
    shares: Vec<f64>,
}

/// Each node's hash power share: the given ones first, the rest equal.
fn shares(nodes: usize, given: &[f64]) -> anyhow::Result<Vec<f64>> {
    anyhow::ensure!(given.len() <= nodes, "more --shares than nodes");
    let taken: f64 = given.iter().sum();
    anyhow::ensure!(
        given.iter().all(|s| (0.0..=1.0).contains(s)) && taken <= 1.0 + 1e-9,
        "--shares must be between 0 and 1 and sum to at most 1"
    );
    let rest = nodes - given.len();
    let each = if rest == 0 {
        0.0
    } else {
        (1.0 - taken).max(0.0) / rest as f64
    };
    Ok(given
        .iter()
        .copied()
        .chain(std::iter::repeat_n(each, rest))
        .collect())
}

/// Counts what happens across the network, and which transfers were accepted.
#[derive(Default)]
struct Tally {
    mined: AtomicU64,
    reorgs: AtomicU64,
    rejected: AtomicU64,
    submitted: Mutex<HashSet<TxId>>,
}

/// Whether every accepted transfer is on `node`'s best chain exactly once
/// (the test kit's check, the same the behaviour tests run).
async fn all_included_once(node: &Handle, tally: &Tally) -> bool {
    let submitted = tally
        .submitted
        .lock()
        .expect("observer never panics")
        .clone();
    kit::invariants::each_once(&node.chain().await, &submitted).is_ok()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let active = args
        .active
        .unwrap_or(args.nodes.min(10))
        .min(args.nodes)
        .max(1);
    let network = memory::Network::seeded(args.seed)
        .with_latency(
            Duration::from_millis(1),
            Duration::from_millis(args.latency_ms.max(1)),
        )
        .with_loss(args.loss);
    let tracker = memory::Tracker::seeded(args.seed);
    let tally = Arc::new(Tally::default());
    // Bigger networks get calmer maintenance so liveness checks do not
    // drown the work being measured.
    let maintenance = Duration::from_millis(500 + (args.nodes as u64).min(20_000));
    let per_node = args.transfers.div_ceil(active as u64);
    let shares = shares(args.nodes, &args.shares)?;
    let block_interval = match args.block_interval {
        Some(secs) => {
            anyhow::ensure!(
                secs.is_finite() && secs > 0.0,
                "--block-interval must be positive"
            );
            Some(Duration::from_secs_f64(secs))
        }
        None => None,
    };
    let meter = Arc::new(ForkMeter::new(Clock::system()));

    let mut nodes: Vec<Handle> = Vec::with_capacity(args.nodes);
    for (i, share) in shares.iter().copied().enumerate() {
        let name = format!("n{i}");
        let mut config = Config::in_memory(name);
        config.seed = Some(args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
        config.maintenance_interval = maintenance;
        config.call_timeout = Duration::from_secs(10);
        config.confirm_timeout = Duration::from_secs(120);
        if let Some(t) = block_interval {
            config.mining = Mining::Scheduled(HashPower::new(share, t)?);
            meter.set_share(&config.name, share);
        }
        if i < active {
            config.auto = Some(AutoConfig {
                interval: Duration::from_millis(300),
                max_transfers: Some(per_node),
            });
        }
        let observed = tally.clone();
        let node = Node::builder(Params::with_difficulty(args.difficulty))
            .config(config)
            .wallet(Wallet::from_seed(args.seed.wrapping_add(i as u64)))
            .network(network.clone())
            .tracker(tracker.clone())
            .observer(meter.clone())
            .observer(move |_: &str, event: &Event| match event {
                Event::BlockMined { .. } => {
                    observed.mined.fetch_add(1, Ordering::Relaxed);
                }
                Event::Reorg { .. } => {
                    observed.reorgs.fetch_add(1, Ordering::Relaxed);
                }
                Event::BlockRejected { .. } => {
                    observed.rejected.fetch_add(1, Ordering::Relaxed);
                }
                Event::TransferSubmitted { txid, .. } => {
                    observed
                        .submitted
                        .lock()
                        .expect("no observer panics while holding it")
                        .insert(*txid);
                }
                _ => {}
            })
            .launch()
            .await?;
        nodes.push(node);
        if (i + 1) % 1000 == 0 {
            eprintln!("started {} of {} nodes", i + 1, args.nodes);
        }
    }
    eprintln!(
        "{} nodes up in {:.1}s; {} active, {} transfers each",
        args.nodes,
        started.elapsed().as_secs_f64(),
        active,
        per_node
    );

    // Wait until the transfers are done and every node holds the same tip.
    // Fork choice keeps the first-seen block on a tie, so a network that
    // goes quiet on a tie stays split until the next block: like any
    // longest-chain network, it settles by mining one more (at most a few).
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut last_report = Instant::now();
    let mut quiet_since: Option<(Instant, u64)> = None;
    let mut tie_breaks = 0u64;
    let converged = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut tips: HashMap<_, usize> = HashMap::new();
        for node in &nodes {
            *tips.entry(node.tip()).or_default() += 1;
        }
        let pending: usize = nodes.iter().map(Handle::mempool_len).sum();
        let submitted = tally.submitted.lock().expect("observer never panics").len() as u64;
        let done = submitted >= args.transfers.min(per_node * active as u64);
        let mined = tally.mined.load(Ordering::Relaxed);
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "t={:.0}s height {} | {} distinct tips | transfers submitted {} | mempools {} | mined {} reorgs {}",
                started.elapsed().as_secs_f64(),
                nodes[0].height(),
                tips.len(),
                submitted,
                pending,
                mined,
                tally.reorgs.load(Ordering::Relaxed)
            );
            last_report = Instant::now();
        }
        if done && tips.len() == 1 && all_included_once(&nodes[0], &tally).await {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        // Mempools may keep copies of other nodes' transfers (see
        // crapcoin_core::mempool), so quiet means "no block mined lately".
        match quiet_since {
            Some((since, at))
                if at == mined && since.elapsed() > Duration::from_secs(3) && tie_breaks < 20 =>
            {
                if tips.len() > 1 {
                    eprintln!("quiet on {} tips: node 0 mines one more block", tips.len());
                    tie_breaks += 1;
                    let _ = nodes[0].mine().await;
                }
                quiet_since = None;
            }
            Some((_, at)) if at == mined => {}
            _ => quiet_since = Some((Instant::now(), mined)),
        }
    };

    // Audit the agreed chain: every accepted transfer exactly once, supply
    // equal to rewards minted.
    let chain = nodes[0].chain().await;
    let on_chain = kit::invariants::tx_counts(&chain);
    let submitted = tally
        .submitted
        .lock()
        .expect("observer never panics")
        .clone();
    let included_once = submitted
        .iter()
        .filter(|t| on_chain.get(t) == Some(&1))
        .count();
    let height = nodes[0].height();
    let reward = nodes[0].params().block_reward;
    let supply =
        nodes[0].with_chain(|c| kit::invariants::supply_conserved(c.state(), height, reward));
    let all_once = kit::invariants::each_once(&chain, &submitted);
    if let Err(why) = &supply {
        eprintln!("violation: {why}");
    }
    if let Err(why) = &all_once {
        eprintln!("violation: {why}");
    }
    let supply_ok = supply.is_ok();
    let all_once = all_once.is_ok();

    let best: Vec<_> = chain.iter().map(|b| b.hash()).collect();
    let forks = meter.summary(&best);
    eprintln!("forks: {forks}");
    let elapsed_ms = started.elapsed().as_millis();
    for node in nodes {
        node.shutdown().await;
    }
    let converged = converged && supply_ok && all_once;
    let summary = serde_json::json!({
        "nodes": args.nodes,
        "active": active,
        "converged": converged,
        "height": height,
        "elapsed_ms": elapsed_ms,
        "transfers_submitted": submitted.len(),
        "transfers_included_once": included_once,
        "blocks_mined": tally.mined.load(Ordering::Relaxed),
        "reorgs": tally.reorgs.load(Ordering::Relaxed),
        "rejected": tally.rejected.load(Ordering::Relaxed),
        "supply_ok": supply_ok,
        "peak_rss_mib": peak_rss_mib(),
        "calls_lost": network.stats().1,
        "tie_breaks": tie_breaks,
        "block_interval_ms": block_interval.map(|t| t.as_secs_f64() * 1000.0),
        "forks": forks,
    });
    println!("{summary}");
    if !converged {
        std::process::exit(1);
    }
    Ok(())
}
