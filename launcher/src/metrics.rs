//! [`Sample`]: the counters watercooler reads from a node's `GET /metrics`.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counters of one node process (they restart at zero with the process).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Blocks the node mined.
    pub blocks_mined: u64,
    /// Valid new blocks it stored.
    pub blocks_accepted: u64,
    /// Blocks it put in the orphan pool.
    pub blocks_orphaned: u64,
    /// Blocks it refused, by reason (non-zero reasons only).
    pub rejected: BTreeMap<String, u64>,
    /// Switches of its best chain to another branch.
    pub reorgs: u64,
    /// Blocks those switches rolled back.
    pub reorg_blocks: u64,
    /// Transfers it accepted into its mempool.
    pub transfers_submitted: u64,
    /// Of those, the ones seen in a best-chain block.
    pub transfers_included: u64,
}

impl Sample {
    /// Reads the counters from Prometheus text; unknown lines are skipped.
    pub fn parse(text: &str) -> Self {
        let mut sample = Self::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<u64>() else {
                continue;
            };
            let (name, labels) = match key.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (key, ""),
            };
            match name {
                "crapcoin_blocks_mined_total" => sample.blocks_mined = value,
                "crapcoin_blocks_accepted_total" => sample.blocks_accepted = value,
                "crapcoin_blocks_orphaned_total" => sample.blocks_orphaned = value,
                "crapcoin_reorgs_total" => sample.reorgs = value,
                "crapcoin_reorg_blocks_total" => sample.reorg_blocks = value,
                "crapcoin_transfers_submitted_total" => sample.transfers_submitted = value,
                "crapcoin_transfers_included_total" => sample.transfers_included = value,
                "crapcoin_blocks_rejected_total" if value > 0 => {
                    if let Some(reason) = labels
                        .strip_prefix("reason=\"")
                        .and_then(|r| r.strip_suffix('"'))
                    {
                        sample.rejected.insert(reason.to_owned(), value);
                    }
                }
                _ => {}
            }
        }
        sample
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Self) {
        self.blocks_mined += other.blocks_mined;
        self.blocks_accepted += other.blocks_accepted;
        self.blocks_orphaned += other.blocks_orphaned;
        self.reorgs += other.reorgs;
        self.reorg_blocks += other.reorg_blocks;
        self.transfers_submitted += other.transfers_submitted;
        self.transfers_included += other.transfers_included;
        for (reason, count) in &other.rejected {
            *self.rejected.entry(reason.clone()).or_default() += count;
        }
    }

    /// Blocks rejected for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::Sample;

    #[test]
    fn parses_the_node_exposition() {
        let text = "# HELP x\ncrapcoin_blocks_mined_total 3\n\
            crapcoin_blocks_rejected_total{reason=\"bad_pow\"} 2\n\
            crapcoin_blocks_rejected_total{reason=\"bad_nonce\"} 0\n\
            crapcoin_reorgs_total 1\ncrapcoin_transfers_included_total 4\n\
            crapcoin_requests_total{route=\"/status\",method=\"GET\",status=\"200\"} 9\n";
        let s = Sample::parse(text);
        assert_eq!(s.blocks_mined, 3);
        assert_eq!(s.reorgs, 1);
        assert_eq!(s.transfers_included, 4);
        assert_eq!(s.rejected.len(), 1);
        assert_eq!(s.rejected["bad_pow"], 2);
        let mut sum = s.clone();
        sum.add(&s);
        assert_eq!(sum.rejected_total(), 4);
    }
}
