//! [`Mining`]: the verdict's fork figures — blocks mined, blocks on the
//! best chain, the stale rate, the observed mean block interval, each
//! miner's share of the best chain beside its hash power share, and block
//! propagation delays.
//!
//! With Sauron they are Sauron's (`GET /api/forks`, see
//! `crapcoin_node::sauron::state::forks`): it saw every node's
//! `block_mined` and `block_accepted` report, so it knows the stale blocks
//! and when each node first saw each block. Without Sauron they are
//! computed from the nodes themselves ([`ChainFacts`], read from one honest
//! node's best chain, and the nodes' own counters and `GET /status`):
//! the best-chain blocks, their miners and timestamps are exact; blocks
//! mined come from the nodes' `crapcoin_blocks_mined_total` counters
//! (forged blocks included, and a process killed between two polls loses
//! what it mined since the last); propagation cannot be measured there
//! and [`Mining::missing`] says so.

use std::collections::BTreeMap;

use crapcoin_core::Address;
use crapcoin_node::sauron::state::Forks;
use serde::Serialize;

/// Miners listed by name in the text summary (the JSON has them all).
const MINERS_IN_TEXT: usize = 8;

/// Where the figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Sauron's `GET /api/forks`.
    Sauron,
    /// The nodes' own chains, counters and statuses.
    Nodes,
}

/// Delay figures, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Propagation {
    /// Delay samples (one per block and node that accepted it).
    pub samples: u64,
    /// The median.
    pub median_ms: u64,
    /// The 90th percentile.
    pub p90_ms: u64,
    /// The largest.
    pub max_ms: u64,
}

/// One miner's share of the best chain beside its hash power share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miner {
    /// Its node's name (`address:HEX8` when no polled node had that
    /// wallet address).
    pub node: String,
    /// Whether that node is honest (`false` when unknown).
    pub honest: bool,
    /// Its hash power share, as the node says; `None` when unknown.
    pub hash_share: Option<f64>,
    /// Best-chain blocks it mined.
    pub blocks_on_best_chain: u64,
    /// `blocks_on_best_chain` over the best-chain blocks with a known
    /// miner; `None` while there are none.
    pub best_chain_share: Option<f64>,
}

/// The verdict's fork figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mining {
    /// Where they come from.
    pub source: Source,
    /// Blocks mined (Sauron: reported mined in its window; nodes: the sum
    /// of every process's counter).
    pub blocks_mined: u64,
    /// Blocks on the best chain (Sauron: in its window; nodes: genesis
    /// excluded, up to the common height).
    pub blocks_on_best_chain: u64,
    /// Mined blocks not on the best chain over blocks mined, in `[0, 1]`;
    /// `None` before anything was mined.
    pub stale_rate: Option<f64>,
    /// Observed mean interval between best-chain blocks, seconds.
    pub mean_interval_secs: Option<f64>,
    /// Every miner (and every node with a known hash share), by name.
    pub miners: Vec<Miner>,
    /// Block propagation; `None` without Sauron.
    pub propagation: Option<Propagation>,
    /// What could not be measured, and why.
    pub missing: Vec<String>,
}

/// What one pass over a best chain found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainFacts {
    /// Blocks read (genesis excluded).
    pub blocks: u64,
    /// Blocks per miner address.
    pub miners: BTreeMap<Address, u64>,
    /// `(height, timestamp ms)` of the lowest block read above genesis.
    pub first: Option<(u64, u64)>,
    /// `(height, timestamp ms)` of the highest.
    pub last: Option<(u64, u64)>,
}

impl ChainFacts {
    /// Counts one best-chain block (genesis is skipped).
    pub fn add(&mut self, height: u64, timestamp: u64, miner: Address) {
        if height == 0 {
            return;
        }
        self.blocks += 1;
        *self.miners.entry(miner).or_default() += 1;
        if self.first.is_none_or(|(h, _)| height < h) {
            self.first = Some((height, timestamp));
        }
        if self.last.is_none_or(|(h, _)| height > h) {
            self.last = Some((height, timestamp));
        }
    }

    /// Mean interval, seconds, from the lowest to the highest block read.
    pub fn mean_interval_secs(&self) -> Option<f64> {
        let ((h0, t0), (h1, t1)) = (self.first?, self.last?);
        (h1 > h0 && t1 >= t0).then(|| (t1 - t0) as f64 / 1000.0 / (h1 - h0) as f64)
    }
}

/// A polled node as the nodes-only figures need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// Its name.
    pub name: String,
    /// Whether it is honest.
    pub honest: bool,
    /// Its hash power share, as its `GET /status` said.
    pub hash_share: Option<f64>,
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Mining {
    /// The figures of Sauron's `GET /api/forks` answer.
    pub fn from_sauron(forks: &Forks) -> Self {
        let p = forks.propagation;
        let propagation = match (p.median_ms, p.p90_ms, p.max_ms) {
            (Some(median_ms), Some(p90_ms), Some(max_ms)) => Some(Propagation {
                samples: p.samples,
                median_ms,
                p90_ms,
                max_ms,
            }),
            _ => None,
        };
        let mut missing = Vec::new();
        if propagation.is_none() {
            missing.push("propagation delay: no node reported accepting another's block".into());
        }
        if forks.mean_interval_ms.is_none() {
            missing.push("mean interval: fewer than two reported best-chain blocks".into());
        }
        Self {
            source: Source::Sauron,
            blocks_mined: forks.blocks_mined,
            blocks_on_best_chain: forks.blocks_on_best_chain,
            stale_rate: forks.stale_rate,
            mean_interval_secs: forks.mean_interval_ms.map(|ms| ms / 1000.0),
            miners: forks
                .miners
                .iter()
                .map(|m| Miner {
                    node: m.node.clone(),
                    honest: m.honest,
                    hash_share: m.hash_share,
                    blocks_on_best_chain: m.on_best_chain,
                    best_chain_share: m.best_chain_share,
                })
                .collect(),
            propagation,
            missing,
        }
    }

    /// The figures from the nodes alone: `chain` (one honest node's best
    /// chain), `blocks_mined` (the sum of every process's counter) and
    /// the polled nodes by wallet address.
    pub fn from_nodes(
        chain: Option<&ChainFacts>,
        blocks_mined: u64,
        nodes: &BTreeMap<Address, Known>,
    ) -> Self {
        let mut missing = vec![
            "propagation delay: needs Sauron (when each node first saw each block)".to_owned(),
        ];
        let Some(chain) = chain else {
            missing.push("best chain: no honest node served its chain".into());
            return Self {
                source: Source::Nodes,
                blocks_mined,
                blocks_on_best_chain: 0,
                stale_rate: None,
                mean_interval_secs: None,
                miners: Vec::new(),
                propagation: None,
                missing,
            };
        };
        let on_best = chain.blocks;
        if blocks_mined < on_best {
            missing.push(format!(
                "stale rate: the counters saw {blocks_mined} blocks mined but the chain holds \
                 {on_best} (processes killed before their last poll); counted as 0"
            ));
        }
        let mut miners: BTreeMap<String, Miner> = BTreeMap::new();
        for (address, blocks) in &chain.miners {
            let known = nodes.get(address);
            let name = known.map_or_else(
                || format!("address:{}", &address.to_string()[..8]),
                |k| k.name.clone(),
            );
            let miner = miners.entry(name.clone()).or_insert(Miner {
                node: name,
                honest: known.is_some_and(|k| k.honest),
                hash_share: known.and_then(|k| k.hash_share),
                blocks_on_best_chain: 0,
                best_chain_share: None,
            });
            miner.blocks_on_best_chain += blocks;
        }
        for known in nodes.values() {
            if known.hash_share.is_some() && !miners.contains_key(&known.name) {
                miners.insert(
                    known.name.clone(),
                    Miner {
                        node: known.name.clone(),
                        honest: known.honest,
                        hash_share: known.hash_share,
                        blocks_on_best_chain: 0,
                        best_chain_share: None,
                    },
                );
            }
        }
        for miner in miners.values_mut() {
            miner.best_chain_share = ratio(miner.blocks_on_best_chain, on_best);
        }
        let mean_interval_secs = chain.mean_interval_secs();
        if mean_interval_secs.is_none() {
            missing.push("mean interval: fewer than two blocks on the chain".into());
        }
        Self {
            source: Source::Nodes,
            blocks_mined,
            blocks_on_best_chain: on_best,
            stale_rate: ratio(blocks_mined.saturating_sub(on_best), blocks_mined),
            mean_interval_secs,
            miners: miners.into_values().collect(),
            propagation: None,
            missing,
        }
    }

    /// The lines of the human summary (each starts with two spaces).
    pub fn text(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1} %", 100.0 * v));
        let mut out = format!(
            "  mining            {} blocks mined, {} on the best chain, stale rate {}, mean interval {} (from {})",
            self.blocks_mined,
            self.blocks_on_best_chain,
            pct(self.stale_rate),
            self.mean_interval_secs
                .map_or("-".to_owned(), |s| format!("{s:.2} s")),
            match self.source {
                Source::Sauron => "Sauron",
                Source::Nodes => "the nodes",
            },
        );
        let mut miners: Vec<&Miner> = self.miners.iter().collect();
        miners.sort_by(|a, b| {
            b.blocks_on_best_chain
                .cmp(&a.blocks_on_best_chain)
                .then(a.node.cmp(&b.node))
        });
        let listed: Vec<String> = miners
            .iter()
            .take(MINERS_IN_TEXT)
            .map(|m| {
                format!(
                    "{} {} of the chain (hash share {})",
                    m.node,
                    pct(m.best_chain_share),
                    pct(m.hash_share)
                )
            })
            .collect();
        if !listed.is_empty() {
            out.push_str(&format!("\n  miners            {}", listed.join(", ")));
            if miners.len() > MINERS_IN_TEXT {
                out.push_str(&format!(" and {} more", miners.len() - MINERS_IN_TEXT));
            }
        }
        if let Some(p) = &self.propagation {
            out.push_str(&format!(
                "\n  propagation       median {} ms, p90 {} ms, max {} ms ({} samples)",
                p.median_ms, p.p90_ms, p.max_ms, p.samples
            ));
        }
        for what in &self.missing {
            out.push_str(&format!("\n  not measured      {what}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{ChainFacts, Known, Mining, Source};
    use crapcoin_core::Address;
    use std::collections::BTreeMap;

    #[test]
    fn the_nodes_alone_give_chain_shares_interval_and_stale_rate() {
        let (a, b, stranger) = (Address([1; 32]), Address([2; 32]), Address([0xab; 32]));
        let mut chain = ChainFacts::default();
        chain.add(0, 0, stranger); // genesis: not counted
        for (height, ts, miner) in [
            (1, 10_000, a),
            (2, 11_000, b),
            (3, 12_500, a),
            (4, 14_000, stranger),
        ] {
            chain.add(height, ts, miner);
        }
        assert_eq!(chain.mean_interval_secs(), Some(4.0 / 3.0));
        let mut nodes = BTreeMap::new();
        nodes.insert(
            a,
            Known {
                name: "bigload-1".into(),
                honest: true,
                hash_share: Some(0.5),
            },
        );
        nodes.insert(
            b,
            Known {
                name: "shit-1".into(),
                honest: false,
                hash_share: Some(0.3),
            },
        );
        let idle = Address([3; 32]);
        nodes.insert(
            idle,
            Known {
                name: "bigload-2".into(),
                honest: true,
                hash_share: Some(0.2),
            },
        );
        let m = Mining::from_nodes(Some(&chain), 5, &nodes);
        assert_eq!(m.source, Source::Nodes);
        assert_eq!((m.blocks_mined, m.blocks_on_best_chain), (5, 4));
        assert_eq!(m.stale_rate, Some(0.2));
        let shares: Vec<_> = m
            .miners
            .iter()
            .map(|m| {
                (
                    m.node.as_str(),
                    m.blocks_on_best_chain,
                    m.best_chain_share,
                    m.hash_share,
                )
            })
            .collect();
        assert_eq!(
            shares,
            [
                ("address:abababab", 1, Some(0.25), None),
                ("bigload-1", 2, Some(0.5), Some(0.5)),
                ("bigload-2", 0, Some(0.0), Some(0.2)),
                ("shit-1", 1, Some(0.25), Some(0.3)),
            ]
        );
        let total: f64 = m.miners.iter().filter_map(|m| m.best_chain_share).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(m.propagation.is_none());
        assert!(
            m.missing.iter().any(|w| w.contains("needs Sauron")),
            "{:?}",
            m.missing
        );
        let text = m.text();
        assert!(
            text.contains("stale rate 20.0 %") && text.contains("mean interval 1.33 s"),
            "{text}"
        );
        // Counters that lost blocks never make the rate negative.
        let lost = Mining::from_nodes(Some(&chain), 2, &nodes);
        assert_eq!(lost.stale_rate, Some(0.0));
        assert!(Mining::from_nodes(None, 0, &nodes).stale_rate.is_none());
    }
}
