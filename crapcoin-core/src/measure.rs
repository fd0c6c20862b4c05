//! Forks, measured: [`ForkMeter`], an [`Observer`] of many nodes that
//! records who mined which block and when each node first saw it, and
//! sums that up as [`ForkStats`] against a best chain.
//!
//! What it computes:
//!
//! - blocks mined, and how many of them ended on the best chain;
//! - the **stale rate**: mined blocks that did not end on the best chain,
//!   over blocks mined;
//! - the observed mean block interval along the best chain (from the
//!   times its blocks were mined);
//! - each miner's share of the best chain's blocks beside its hash power
//!   share (when told, [`ForkMeter::set_share`]);
//! - the **propagation delay**: from a block's mining to each other node's
//!   first acceptance of it (median, p90, max). A block its miner withheld
//!   counts its withholding too: the delay is what the network saw;
//! - race data ([`ForkMeter::race`]): among blocks mined by one group of
//!   nodes on top of a height where that group and another competed, on
//!   whose block they built (the `γ` of selfish mining).
//!
//! [`selfish_revenue`] is the paper's closed form to set the measured
//! shares against.
//!
//! Memory is bounded: at most [`ForkMeter::with_capacity`]'s blocks are
//! recorded (the default [`DEFAULT_MAX_BLOCKS`]) and at most
//! [`MAX_DELAYS`] propagation samples; what comes after is counted in
//! [`ForkStats::records_dropped`], not kept.
//!
//! Layer 3, beside [`crate::observer`]: it reads events and the time
//! through a [`Clock`], nothing of the engine.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::Clock;
use crate::hash::BlockHash;
use crate::maps::{Map, Set};
use crate::observer::{Event, Observer};

/// Blocks a [`ForkMeter`] records by default.
pub const DEFAULT_MAX_BLOCKS: usize = 200_000;

/// Propagation samples a [`ForkMeter`] keeps at most.
pub const MAX_DELAYS: usize = 2_000_000;

/// One mined block as recorded.
#[derive(Debug, Clone)]
struct Mined {
    /// Index of the miner's name in `Records::names`.
    miner: u32,
    parent: BlockHash,
    height: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Records {
    names: Vec<String>,
    index: Map<String, u32>,
    shares: Map<String, f64>,
    blocks: Map<BlockHash, Mined>,
    /// Microseconds from mining to a node's first acceptance.
    delays: Vec<u64>,
    dropped: u64,
}

impl Records {
    fn node(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }
}

/// Records mined blocks and first sightings across nodes; see the
/// [module docs](self). Attach one meter (in an `Arc`) to every node
/// measured.
#[derive(Debug)]
pub struct ForkMeter {
    clock: Clock,
    max_blocks: usize,
    records: Mutex<Records>,
}

impl ForkMeter {
    /// A meter reading the time from `clock` (the nodes' clock), keeping
    /// at most [`DEFAULT_MAX_BLOCKS`] blocks.
    pub fn new(clock: Clock) -> Self {
        Self::with_capacity(clock, DEFAULT_MAX_BLOCKS)
    }

    /// A meter keeping at most `max_blocks` blocks.
    pub fn with_capacity(clock: Clock, max_blocks: usize) -> Self {
        Self {
            clock,
            max_blocks,
            records: Mutex::new(Records::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the meter the hash power share of the node called `node`,
    /// shown beside its share of the best chain.
    pub fn set_share(&self, node: &str, share: f64) {
        self.lock().shares.insert(node.to_owned(), share);
    }

    /// Blocks recorded as mined so far.
    pub fn blocks_mined(&self) -> u64 {
        self.lock().blocks.len() as u64
    }

    /// The summary against the best chain given by its block hashes (in
    /// any order; blocks not recorded as mined, like the genesis, are
    /// left out).
    pub fn summary<'a>(&self, best_chain: impl IntoIterator<Item = &'a BlockHash>) -> ForkStats {
        let records = self.lock();
        let best: Set<BlockHash> = best_chain.into_iter().copied().collect();
        let mut per_miner: Map<u32, (u64, u64)> = Map::default();
        let mut best_times: Vec<(u64, Instant)> = Vec::new();
        for (hash, block) in &records.blocks {
            let entry = per_miner.entry(block.miner).or_default();
            entry.0 += 1;
            if best.contains(hash) {
                entry.1 += 1;
                best_times.push((block.height, block.at));
            }
        }
        let blocks_mined = records.blocks.len() as u64;
        let on_best_chain = best_times.len() as u64;
        let stale_rate = if blocks_mined == 0 {
            0.0
        } else {
            (blocks_mined - on_best_chain) as f64 / blocks_mined as f64
        };
        best_times.sort_by_key(|(height, _)| *height);
        let mean_interval_ms = match (best_times.first(), best_times.last()) {
            (Some(first), Some(last)) if best_times.len() >= 2 => {
                let span = last.1.saturating_duration_since(first.1);
                Some(span.as_secs_f64() * 1000.0 / (best_times.len() - 1) as f64)
            }
            _ => None,
        };
        let mut miners: Vec<MinerStats> = per_miner
            .into_iter()
            .map(|(i, (mined, on_best))| {
                let node = records.names[i as usize].clone();
                MinerStats {
                    hash_share: records.shares.get(&node).copied(),
                    best_chain_share: if on_best_chain == 0 {
                        0.0
                    } else {
                        on_best as f64 / on_best_chain as f64
                    },
                    node,
                    mined,
                    on_best_chain: on_best,
                }
            })
            .collect();
        miners.sort_by(|a, b| a.node.cmp(&b.node));
        ForkStats {
            blocks_mined,
            on_best_chain,
            stale_rate,
            mean_interval_ms,
            miners,
            propagation: Delays::of(&records.delays),
            records_dropped: records.dropped,
        }
    }

    /// Every propagation delay recorded so far (from mining to another
    /// node's first acceptance), in milliseconds, in the order seen.
    pub fn delays_ms(&self) -> Vec<f64> {
        self.lock()
            .delays
            .iter()
            .map(|&micros| micros as f64 / 1000.0)
            .collect()
    }

    /// Race data between `group` and everyone else: at every height where
    /// a block of the group and a block of another miner compete, the
    /// blocks the others mined next on one of them, split by whose block
    /// they built on. [`RaceStats::gamma`] is then the share of the
    /// others' power that mined on the group's branch during a tie.
    pub fn race(&self, group: &[&str]) -> RaceStats {
        let records = self.lock();
        let members: Set<u32> = group
            .iter()
            .filter_map(|name| records.index.get(*name).copied())
            .collect();
        // Per height: (group blocks, other blocks).
        let mut by_height: Map<u64, (Set<BlockHash>, Set<BlockHash>)> = Map::default();
        for (hash, block) in &records.blocks {
            let entry = by_height.entry(block.height).or_default();
            if members.contains(&block.miner) {
                entry.0.insert(*hash);
            } else {
                entry.1.insert(*hash);
            }
        }
        let mut stats = RaceStats::default();
        for (group_blocks, others) in by_height.values() {
            if !group_blocks.is_empty() && !others.is_empty() {
                stats.ties += 1;
            }
        }
        for block in records.blocks.values() {
            if members.contains(&block.miner) || block.height == 0 {
                continue;
            }
            let Some((group_blocks, others)) = by_height.get(&(block.height - 1)) else {
                continue;
            };
            if group_blocks.is_empty() || others.is_empty() {
                continue;
            }
            if group_blocks.contains(&block.parent) {
                stats.others_on_group += 1;
            } else if others.contains(&block.parent) {
                stats.others_on_others += 1;
            }
        }
        stats
    }
}

impl Observer for ForkMeter {
    fn on_event(&self, node: &str, event: &Event) {
        match event {
            Event::BlockMined {
                hash,
                height,
                parent,
                ..
            } => {
                let at = self.clock.now();
                let mut records = self.lock();
                if records.blocks.len() >= self.max_blocks {
                    records.dropped += 1;
                    return;
                }
                let miner = records.node(node);
                records.blocks.entry(*hash).or_insert(Mined {
                    miner,
                    parent: *parent,
                    height: *height,
                    at,
                });
            }
            Event::BlockAccepted {
                hash,
                from: Some(_),
                ..
            } => {
                let now = self.clock.now();
                let mut records = self.lock();
                let Some(mined) = records.blocks.get(hash) else {
                    return;
                };
                let micros = now.saturating_duration_since(mined.at).as_micros();
                if records.delays.len() >= MAX_DELAYS {
                    records.dropped += 1;
                    return;
                }
                records
                    .delays
                    .push(u64::try_from(micros).unwrap_or(u64::MAX));
            }
            _ => {}
        }
    }
}

/// A summary of block production against one best chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForkStats {
    /// Blocks mined by the measured nodes.
    pub blocks_mined: u64,
    /// Of those, on the best chain.
    pub on_best_chain: u64,
    /// Mined blocks not on the best chain, over blocks mined.
    pub stale_rate: f64,
    /// Mean time between two best-chain blocks, by when they were mined
    /// (`None` with fewer than two).
    pub mean_interval_ms: Option<f64>,
    /// Each miner, by name.
    pub miners: Vec<MinerStats>,
    /// From mining to each other node's first acceptance (`None`: no
    /// sample).
    pub propagation: Option<Delays>,
    /// Records not kept because a bound was reached.
    pub records_dropped: u64,
}

impl ForkStats {
    /// The miner called `node`, if it mined anything.
    pub fn miner(&self, node: &str) -> Option<&MinerStats> {
        self.miners.iter().find(|m| m.node == node)
    }

    /// The miners in `nodes` taken together: blocks mined, on the best
    /// chain, and their share of the best chain.
    pub fn group(&self, nodes: &[&str]) -> (u64, u64, f64) {
        let (mined, on_best) = self
            .miners
            .iter()
            .filter(|m| nodes.contains(&m.node.as_str()))
            .fold((0, 0), |(a, b), m| (a + m.mined, b + m.on_best_chain));
        let share = if self.on_best_chain == 0 {
            0.0
        } else {
            on_best as f64 / self.on_best_chain as f64
        };
        (mined, on_best, share)
    }
}

impl std::fmt::Display for ForkStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} blocks mined, {} on the best chain, stale rate {:.1} %",
            self.blocks_mined,
            self.on_best_chain,
            self.stale_rate * 100.0
        )?;
        if let Some(ms) = self.mean_interval_ms {
            write!(f, ", mean interval {ms:.1} ms")?;
        }
        if let Some(d) = &self.propagation {
            write!(
                f,
                ", propagation median {:.2} ms p90 {:.2} ms max {:.2} ms",
                d.median_ms, d.p90_ms, d.max_ms
            )?;
        }
        Ok(())
    }
}

/// One miner's blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinerStats {
    /// The node's name.
    pub node: String,
    /// Blocks it mined.
    pub mined: u64,
    /// Of those, on the best chain.
    pub on_best_chain: u64,
    /// Its share of the best chain's (recorded) blocks.
    pub best_chain_share: f64,
    /// Its hash power share, when the meter was told.
    pub hash_share: Option<f64>,
}

/// A distribution of delays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delays {
    /// Samples.
    pub samples: u64,
    /// Median.
    pub median_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Delays {
    fn of(micros: &[u64]) -> Option<Self> {
        if micros.is_empty() {
            return None;
        }
        let mut sorted = micros.to_vec();
        sorted.sort_unstable();
        let at = |q: f64| {
            let i = ((sorted.len() - 1) as f64 * q).round() as usize;
            Duration::from_micros(sorted[i]).as_secs_f64() * 1000.0
        };
        Some(Self {
            samples: sorted.len() as u64,
            median_ms: at(0.5),
            p90_ms: at(0.9),
            max_ms: at(1.0),
        })
    }
}

/// What blocks mined by others built on when a group's block and another's
/// competed at the height below; see [`ForkMeter::race`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RaceStats {
    /// Heights where the group and another miner both had a block.
    pub ties: u64,
    /// Others' blocks on top of the group's block of such a height.
    pub others_on_group: u64,
    /// Others' blocks on top of another's block of such a height.
    pub others_on_others: u64,
}

impl RaceStats {
    /// The share of the others' blocks after a tie that built on the
    /// group's block (`None` without any).
    pub fn gamma(&self) -> Option<f64> {
        let total = self.others_on_group + self.others_on_others;
        (total > 0).then(|| self.others_on_group as f64 / total as f64)
    }
}

/// Eyal and Sirer's relative revenue R(α, γ) of a selfish miner with
/// hash power share `alpha` when a share `gamma` of the honest power mines
/// on its branch during a tie ("Majority is not Enough", 2014): its
/// expected share of the best chain's blocks.
pub fn selfish_revenue(alpha: f64, gamma: f64) -> f64 {
    let a = alpha;
    (a * (1.0 - a).powi(2) * (4.0 * a + gamma * (1.0 - 2.0 * a)) - a.powi(3))
        / (1.0 - a * (1.0 + (2.0 - a) * a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper's landmarks: at γ = 0 selfish mining pays exactly its
    /// share at α = 1/3 (the threshold (1 − γ) / (3 − 2γ)), at γ = 1/2 at
    /// α = 1/4; R(0.45, 0) ≈ 0.652.
    #[test]
    fn selfish_revenue_meets_the_papers_thresholds() {
        assert!((selfish_revenue(1.0 / 3.0, 0.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((selfish_revenue(0.25, 0.5) - 0.25).abs() < 1e-12);
        assert!((selfish_revenue(0.45, 0.0) - 0.652).abs() < 1e-3);
        assert!(selfish_revenue(0.1, 0.0) < 0.1);
    }

    fn hash(n: u8) -> BlockHash {
        BlockHash([n; 32])
    }

    fn mined(meter: &ForkMeter, node: &str, n: u8, parent: u8, height: u64) {
        meter.on_event(
            node,
            &Event::BlockMined {
                hash: hash(n),
                height,
                parent: hash(parent),
                tx: None,
            },
        );
    }

    /// a mines 1 and 2 on the best chain; b mines 3 beside 1 (stale), then
    /// c builds 4 on b's 3 (a race won by b's side, for the others).
    #[test]
    fn stale_rate_shares_and_races() {
        let meter = ForkMeter::new(Clock::system());
        meter.set_share("a", 0.5);
        mined(&meter, "a", 1, 0, 1);
        mined(&meter, "b", 3, 0, 1);
        mined(&meter, "a", 2, 1, 2);
        mined(&meter, "c", 4, 3, 2);
        meter.on_event(
            "b",
            &Event::BlockAccepted {
                hash: hash(1),
                height: 1,
                parent: hash(0),
                from: Some("mem://a".parse().expect("url")),
                best: true,
            },
        );
        let stats = meter.summary(&[hash(0), hash(1), hash(2)]);
        assert_eq!(stats.blocks_mined, 4);
        assert_eq!(stats.on_best_chain, 2);
        assert!((stats.stale_rate - 0.5).abs() < 1e-9);
        let a = stats.miner("a").expect("a mined");
        assert_eq!((a.mined, a.on_best_chain), (2, 2));
        assert!((a.best_chain_share - 1.0).abs() < 1e-9);
        assert_eq!(a.hash_share, Some(0.5));
        assert_eq!(stats.group(&["b", "c"]), (2, 0, 0.0));
        assert_eq!(stats.propagation.as_ref().map(|d| d.samples), Some(1));
        assert!(stats.mean_interval_ms.is_some());
        let race = meter.race(&["b"]);
        assert_eq!(race.ties, 1);
        assert_eq!((race.others_on_group, race.others_on_others), (1, 1));
        assert_eq!(race.gamma(), Some(0.5));
    }

    #[test]
    fn records_are_bounded() {
        let meter = ForkMeter::with_capacity(Clock::system(), 2);
        for n in 1..=5 {
            mined(&meter, "a", n, n - 1, u64::from(n));
        }
        assert_eq!(meter.blocks_mined(), 2);
        assert_eq!(meter.summary(&[]).records_dropped, 3);
    }
}
