//! # The four plots, drawn from synthetic data
//!
//! Draws one picture of each kind that [`crapcoin_sim::plot`] makes, so
//! the documentation can show what the runner's plots look like before
//! the runner feeds them real runs. The data is synthetic but honest:
//! every number comes from a small model stated below, with noise from a
//! generator seeded here, so the pictures are the same on every run.
//!
//! - stale rate: for each block interval T, 1,000 blocks, each stale with
//!   probability 1 − e^(−Δ/T) (the approximation itself, so the points
//!   scatter around the curve by binomial noise only);
//! - selfish revenue: Eyal and Sirer's selfish-mining strategy played out
//!   block by block (20,000 blocks per α, γ = 0), not the closed form;
//! - propagation CDF: delays over 1 to 5 hops of a fixed per-hop latency
//!   plus exponential jitter, for a near and a far region;
//! - heights: 12 nodes of a network partitioned 8 / 4 at t = 300 s and
//!   healed at t = 600 s, each receiving each block after a random delay.
//!
//! ```text
//! cargo run -p crapcoin-sim --example plots -- docs/img
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use crapcoin_sim::plot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seed of every picture's noise.
const SEED: u64 = 14;

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map_or_else(|| "docs/img".into(), PathBuf::from);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = StdRng::seed_from_u64(SEED);

    let written = [
        stale_rate(&dir, &mut rng)?,
        selfish_revenue(&dir, &mut rng)?,
        propagation_cdf(&dir, &mut rng)?,
        heights(&dir, &mut rng)?,
    ];
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Stale rate: three seeds of 1,000 blocks per interval, Δ = 2 s.
fn stale_rate(dir: &Path, rng: &mut StdRng) -> anyhow::Result<PathBuf> {
    const DELAY: f64 = 2.0;
    const BLOCKS: u32 = 1_000;
    let mut points = Vec::new();
    for t in [2.0, 4.0, 6.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0] {
        let p = -(-DELAY / t).exp_m1();
        for _seed in 0..3 {
            let stale = (0..BLOCKS).filter(|_| rng.random_bool(p)).count();
            points.push((t, stale as f64 / f64::from(BLOCKS)));
        }
    }
    let path = dir.join("stale-rate.png");
    plot::stale_rate(&path, &points, DELAY)?;
    Ok(path)
}

/// Selfish mining played out (Eyal and Sirer's Algorithm 1) with γ = 0:
/// the share of best-chain blocks that are the selfish miner's.
fn selfish_revenue(dir: &Path, rng: &mut StdRng) -> anyhow::Result<PathBuf> {
    const GAMMA: f64 = 0.0;
    const BLOCKS: u32 = 20_000;
    let mut points = Vec::new();
    for i in 1..=9 {
        let alpha = f64::from(i) * 0.05;
        let (mut selfish, mut honest) = (0u64, 0u64);
        let mut lead = 0u64;
        let mut tie = false;
        for _ in 0..BLOCKS {
            if rng.random_bool(alpha) {
                if tie {
                    // Wins the race: its published block and this one.
                    selfish += 2;
                    tie = false;
                } else {
                    lead += 1;
                }
            } else if tie {
                if rng.random_bool(GAMMA) {
                    selfish += 1;
                } else {
                    honest += 1;
                }
                honest += 1;
                tie = false;
            } else {
                match lead {
                    0 => honest += 1,
                    1 => {
                        // Publishes its block: a race of two equal chains.
                        lead = 0;
                        tie = true;
                    }
                    2 => {
                        // Publishes both and orphans the honest block.
                        selfish += 2;
                        lead = 0;
                    }
                    _ => {
                        // Publishes one, keeps ahead by more than one.
                        selfish += 1;
                        lead -= 1;
                    }
                }
            }
        }
        selfish += lead;
        points.push((alpha, selfish as f64 / (selfish + honest) as f64));
    }
    let path = dir.join("selfish-revenue.png");
    plot::selfish_revenue(&path, &points, GAMMA)?;
    Ok(path)
}

/// Delays over 1–5 hops: a fixed latency per hop plus exponential jitter.
fn propagation_cdf(dir: &Path, rng: &mut StdRng) -> anyhow::Result<PathBuf> {
    let mut delays = |hop_ms: f64, jitter_ms: f64| -> Vec<f64> {
        (0..2_000)
            .map(|_| {
                let hops = rng.random_range(1..=5);
                (0..hops)
                    .map(|_| hop_ms - jitter_ms * (1.0 - rng.random::<f64>()).ln())
                    .sum()
            })
            .collect()
    };
    let series = vec![
        ("same region (20 ms/hop)".to_owned(), delays(20.0, 10.0)),
        ("across regions (80 ms/hop)".to_owned(), delays(80.0, 30.0)),
    ];
    let path = dir.join("propagation-cdf.png");
    plot::propagation_cdf(&path, &series)?;
    Ok(path)
}

/// 12 nodes, blocks every 10 s on average, split 8 / 4 (by hash power
/// too) from 300 s to 600 s; every node hears of a block 0.2–3 s late.
fn heights(dir: &Path, rng: &mut StdRng) -> anyhow::Result<PathBuf> {
    const NODES: usize = 12;
    const MAJORITY: usize = 8;
    const T: f64 = 10.0;
    const SPLIT: f64 = 300.0;
    const HEAL: f64 = 600.0;
    const END: f64 = 900.0;
    let mut samples: Vec<Vec<(f64, u64)>> = vec![vec![(0.0, 0)]; NODES];
    // Chain heights: one chain before the split and after the heal, two
    // during it.
    let (mut major, mut minor) = (0u64, 0u64);
    let mut healed = false;
    let mut t = 0.0;
    loop {
        t += -T * (1.0 - rng.random::<f64>()).ln();
        if t > END {
            break;
        }
        if t >= HEAL && !healed {
            // The heal: every node adopts the longer chain (the
            // minority's side reorganises).
            healed = true;
            let best = major.max(minor);
            for node in samples.iter_mut() {
                node.push((HEAL + rng.random_range(0.2..3.0), best));
            }
        }
        let split = (SPLIT..HEAL).contains(&t);
        let majority_mined = rng.random_range(0..NODES) < MAJORITY;
        let (height, hearers) = if !split {
            major = major.max(minor) + 1;
            minor = major;
            (major, 0..NODES)
        } else if majority_mined {
            major += 1;
            (major, 0..MAJORITY)
        } else {
            minor += 1;
            (minor, MAJORITY..NODES)
        };
        for node in hearers {
            samples[node].push((t + rng.random_range(0.2..3.0), height));
        }
    }
    // Arrival order is not send order; a node keeps its best height.
    let series = samples
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut best = 0;
            for sample in &mut s {
                best = best.max(sample.1);
                sample.1 = best;
            }
            (format!("node {i}"), s)
        })
        .collect::<Vec<_>>();
    let marks = vec![
        (SPLIT, "partition 8 | 4".to_owned()),
        (HEAL, "heal".to_owned()),
    ];
    let path = dir.join("heights.png");
    plot::heights(&path, &series, &marks)?;
    Ok(path)
}
