//! # Selfish mining, measured against the paper
//!
//! Runs Eyal and Sirer's selfish miner ("Majority is not Enough", 2014;
//! `behaviours::malicious::Selfish`) in the in-memory simulation, the real
//! engine on every node: one selfish node with hash power share α and
//! `--honest` honest nodes sharing 1 − α equally, every node mining on its
//! proof-of-work schedule (`Mining::Scheduled`, target block interval
//! `--block-interval-ms`). For each α it prints the selfish miner's share
//! of the best chain's blocks beside the paper's closed-form revenue
//!
//! ```text
//! R(α, γ) = [α(1−α)²(4α + γ(1−2α)) − α³] / [1 − α(1 + (2−α)α)]
//! ```
//!
//! at γ = 0 and at the γ measured: the share of honest power that mined on
//! the selfish branch during a tie (among honest blocks built on one of two
//! competing blocks of one height, one selfish and one honest, the share
//! built on the selfish one; `crapcoin_core::measure::ForkMeter::race`).
//! The best chain is the longest any node holds at the end (the selfish
//! node's own when it is ahead: its withheld blocks win once released).
//! Every call on the network takes `--latency-ms`, the same for all, so the
//! honest block of a race reaches every honest node before the selfish
//! answer does: γ stays near 0.
//!
//! ```text
//! cargo run --release --example selfish_mining
//! cargo run --release --example selfish_mining -- --alphas 0.1,0.45 --blocks 400
//! ```
//!
//! Wall-clock time (a virtual clock is a later issue): T is small so a few
//! hundred blocks take seconds. The last line on stdout is one JSON object
//! with every row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use crapcoin_core::measure::{ForkMeter, ForkStats, selfish_revenue};
use crapcoin_core::{Behaviour, Clock, Config, Handle, HashPower, Mining, Node, Params, memory};

/// Selfish mining for several shares α.
#[derive(Parser, Debug)]
struct Args {
    /// The selfish miner's shares to try, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0.1, 0.25, 0.33, 0.4, 0.45])]
    alphas: Vec<f64>,
    /// Honest nodes (sharing 1 − α equally).
    #[arg(long, default_value_t = 4)]
    honest: usize,
    /// Best-chain blocks to run for, per α.
    #[arg(long, default_value_t = 200)]
    blocks: u64,
    /// Target block interval T, in milliseconds.
    #[arg(long, default_value_t = 30)]
    block_interval_ms: u64,
    /// One-way latency of every call, in milliseconds.
    #[arg(long, default_value_t = 1)]
    latency_ms: u64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// One run's result.
struct Row {
    alpha: f64,
    /// The selfish miner's share of all blocks mined: its effective α.
    mined_share: f64,
    share: f64,
    gamma: Option<f64>,
    stats: ForkStats,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.honest >= 1, "--honest must be at least 1");
    anyhow::ensure!(
        args.block_interval_ms >= 1,
        "--block-interval-ms must be positive"
    );
    for alpha in &args.alphas {
        anyhow::ensure!((0.0..1.0).contains(alpha), "alpha {alpha} is not in [0, 1)");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "  alpha | share of blocks mined | share of best chain | R(a, 0) | gamma | R(a, gamma) | stale rate | best-chain blocks"
    );
    let mut rows = Vec::new();
    for (i, alpha) in args.alphas.iter().enumerate() {
        let row = one(&args, *alpha, args.seed.wrapping_add(i as u64 * 7919)).await?;
        println!(
            "  {:5.2} | {:21.3} | {:19.3} | {:7.3} | {:>5} | {:>11} | {:9.1}% | {}",
            row.alpha,
            row.mined_share,
            row.share,
            selfish_revenue(row.alpha, 0.0),
            row.gamma.map_or("-".to_owned(), |g| format!("{g:.2}")),
            row.gamma.map_or("-".to_owned(), |g| format!(
                "{:.3}",
                selfish_revenue(row.alpha, g)
            )),
            row.stats.stale_rate * 100.0,
            row.stats.on_best_chain,
        );
        rows.push(row);
    }
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "alpha": r.alpha,
                "selfish_share": r.share,
                "selfish_mined_share": r.mined_share,
                "revenue_gamma_0": selfish_revenue(r.alpha, 0.0),
                "gamma": r.gamma,
                "revenue_gamma": r.gamma.map(|g| selfish_revenue(r.alpha, g)),
                "stats": r.stats,
            })
        })
        .collect();
    println!("{}", serde_json::json!({ "runs": json }));
    Ok(())
}

/// One network: the selfish node `s` with share `alpha` and honest nodes
/// `h0..` sharing the rest, run until `h0`'s chain holds `args.blocks`.
async fn one(args: &Args, alpha: f64, seed: u64) -> anyhow::Result<Row> {
    let t = Duration::from_millis(args.block_interval_ms);
    let latency = Duration::from_millis(args.latency_ms);
    let network = memory::Network::seeded(seed).with_latency(latency, latency);
    let meter = Arc::new(ForkMeter::new(Clock::system()));
    let honest_share = (1.0 - alpha) / args.honest as f64;
    let mut specs: Vec<(String, f64, Arc<dyn Behaviour>)> = vec![(
        "s".into(),
        alpha,
        Arc::new(behaviours::malicious::Selfish::new()),
    )];
    for i in 0..args.honest {
        specs.push((
            format!("h{i}"),
            honest_share,
            Arc::new(behaviours::honest::Behaviour),
        ));
    }
    let mut nodes: Vec<Handle> = Vec::new();
    for (k, (name, share, behaviour)) in specs.into_iter().enumerate() {
        let mut config = Config::in_memory(&name);
        config.seed = Some(seed.wrapping_mul(1_000_003).wrapping_add(k as u64));
        config.mining = Mining::Scheduled(HashPower::new(share, t)?);
        // Every node knows every other from the start: a full mesh.
        config.seeds = nodes.iter().map(|n| n.url().clone()).collect();
        meter.set_share(&name, share);
        let node = Node::builder(Params::with_difficulty(8))
            .config(config)
            .behaviour_arc(behaviour)
            .network(network.clone())
            .observer(meter.clone())
            .launch()
            .await?;
        nodes.push(node);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while nodes[1].height() < args.blocks && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The longest chain any node holds: the selfish node's own when it is
    // ahead (its withheld blocks win once released), else an honest one's.
    let reference = nodes
        .iter()
        .rev()
        .max_by_key(|n| n.height())
        .expect("nodes")
        .clone();
    let best: Vec<_> = reference.with_chain(|c| {
        c.blocks(0, usize::MAX)
            .iter()
            .map(|b| b.hash())
            .collect::<Vec<_>>()
    });
    for node in nodes {
        node.shutdown().await;
    }
    let stats = meter.summary(&best);
    let (mined, _, share) = stats.group(&["s"]);
    let mined_share = mined as f64 / stats.blocks_mined.max(1) as f64;
    let gamma = meter.race(&["s"]).gamma();
    eprintln!("alpha {alpha}: {stats}");
    Ok(Row {
        alpha,
        mined_share,
        share,
        gamma,
        stats,
    })
}
