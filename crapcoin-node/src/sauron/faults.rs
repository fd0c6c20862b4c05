//! The fault timeline (`GET /api/faults`, `POST /api/faults`): every
//! fault of a live run as watercooler's Boss reports it, or of a replayed
//! simulation log, as one [`FaultRecord`] each: what ([`Fault`], the one
//! representation of a fault in Sauron), when it started and when it ended.
//!
//! A live record is reported twice under the same `id`: when the fault
//! starts (with the end it is planned to have, or none) and when it ends
//! (with the end it had); the second replaces the first. At most
//! [`MAX_RECORDS`] are kept (the oldest go first); they live in memory
//! only (a restarted Sauron starts an empty timeline).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::model;
use super::replay::{Fault, Faults};
use crate::http::models::ApiError;

/// Most fault records kept.
pub const MAX_RECORDS: usize = 10_000;
/// Largest body of `POST /api/faults`.
pub const MAX_FAULT_BODY: u64 = 64 * 1024;
/// Most node names one fault may carry (its groups together).
pub const MAX_FAULT_NAMES: usize = 1_024;

/// One fault with its extent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRecord {
    /// Its id: the Boss's sequence number, or its index in a replayed log.
    pub id: u64,
    /// What.
    pub fault: Fault,
    /// When it started: ms since the epoch (live) or virtual ms (replay).
    pub start_ms: u64,
    /// When it ended (or is planned to); none: until further notice.
    #[serde(default)]
    pub end_ms: Option<u64>,
}

impl FaultRecord {
    /// Whether it is in effect at `now`.
    pub fn active(&self, now: u64) -> bool {
        self.start_ms <= now && self.end_ms.is_none_or(|end| end > now)
    }

    /// Checks a reported record: names and counts bounded, a rate in
    /// [0, 1], an end not before the start.
    ///
    /// # Errors
    ///
    /// A 400 naming what is wrong.
    pub fn check(&self) -> Result<(), ApiError> {
        let bad = |why: &str| ApiError::bad_request("malformed", why);
        if self.end_ms.is_some_and(|end| end < self.start_ms) {
            return Err(bad("end_ms is before start_ms"));
        }
        if let Some(node) = self.fault.node() {
            model::check_name(node)?;
        }
        match &self.fault {
            Fault::Partition { groups, bridge } => {
                let names: usize = groups.iter().map(Vec::len).sum();
                if groups.len() < 2 || groups.iter().any(Vec::is_empty) {
                    return Err(bad("a partition needs two or more non-empty groups"));
                }
                if names > MAX_FAULT_NAMES {
                    return Err(bad("a partition names too many nodes"));
                }
                if bridge.len() > MAX_FAULT_NAMES {
                    return Err(bad("a partition names too many bridges"));
                }
                for name in groups.iter().flatten().chain(bridge) {
                    model::check_name(name)?;
                }
            }
            Fault::Loss { rate, to, .. } => {
                if !(0.0..=1.0).contains(rate) {
                    return Err(bad("a loss rate is in [0, 1]"));
                }
                check_targets(to)?;
            }
            Fault::Latency { to, .. } => check_targets(to)?,
            _ => {}
        }
        Ok(())
    }
}

/// Checks the peers a latency or loss fault names.
fn check_targets(to: &[String]) -> Result<(), ApiError> {
    if to.len() > MAX_FAULT_NAMES {
        return Err(ApiError::bad_request(
            "malformed",
            "a fault names too many peers",
        ));
    }
    to.iter().try_for_each(|name| model::check_name(name))
}

/// The records of a live run, newest last, bounded.
#[derive(Debug, Default)]
pub struct FaultLog {
    records: VecDeque<FaultRecord>,
}

impl FaultLog {
    /// Adds `record`, or replaces the one with its id; returns it.
    pub fn upsert(&mut self, record: FaultRecord) -> &FaultRecord {
        let at = match self.records.iter().rposition(|r| r.id == record.id) {
            Some(i) => {
                self.records[i] = record;
                i
            }
            None => {
                if self.records.len() >= MAX_RECORDS {
                    self.records.pop_front();
                }
                self.records.push_back(record);
                self.records.len() - 1
            }
        };
        &self.records[at]
    }

    /// Every record, oldest first.
    pub fn records(&self) -> Vec<FaultRecord> {
        self.records.iter().cloned().collect()
    }
}

/// The faults of `records` in effect at `now`, applied in start order
/// (a later partition replaces an earlier one).
pub fn in_effect(records: &[FaultRecord], now: u64) -> Faults {
    let mut live: Vec<&FaultRecord> = records.iter().filter(|r| r.active(now)).collect();
    live.sort_by_key(|r| (r.start_ms, r.id));
    let mut faults = Faults::default();
    for r in live {
        faults.apply(&r.fault, r.start_ms, r.end_ms);
    }
    faults
}

/// The records of a simulation's faults, `(virtual ms, fault)` in time
/// order: a partition or isolation ends at the next heal, a crash at the
/// node's restart, a pause after its `for_ms`, a clock skew at the node's
/// next one; the others have no end. Heals and restarts are ends, not
/// records.
pub fn from_schedule<'a>(faults: impl IntoIterator<Item = (u64, &'a Fault)>) -> Vec<FaultRecord> {
    let mut out: Vec<FaultRecord> = Vec::new();
    // Index in `out` of what is open.
    let mut cuts: Vec<usize> = Vec::new();
    let mut open_by_node: Vec<(String, &'static str, usize)> = Vec::new();
    let close = |out: &mut Vec<FaultRecord>, i: usize, t: u64| {
        if out[i].end_ms.is_none() {
            out[i].end_ms = Some(t);
        }
    };
    for (i, (t, fault)) in faults.into_iter().enumerate() {
        let id = i as u64 + 1;
        match fault {
            Fault::Heal {} => {
                for c in cuts.drain(..) {
                    close(&mut out, c, t);
                }
                continue;
            }
            Fault::Restart { node } => {
                if let Some(p) = open_by_node
                    .iter()
                    .position(|(n, k, _)| n == node && *k == "crash")
                {
                    let (_, _, c) = open_by_node.remove(p);
                    close(&mut out, c, t);
                }
                continue;
            }
            _ => {}
        }
        let end_ms = match fault {
            Fault::Pause { for_ms, .. } => Some(t.saturating_add(*for_ms)),
            Fault::Latency {
                for_ms: Some(f), ..
            }
            | Fault::Loss {
                for_ms: Some(f), ..
            } => Some(t.saturating_add(*f)),
            _ => None,
        };
        out.push(FaultRecord {
            id,
            fault: fault.clone(),
            start_ms: t,
            end_ms,
        });
        let at = out.len() - 1;
        match fault {
            Fault::Partition { .. } | Fault::Isolate { .. } => cuts.push(at),
            Fault::Crash { node } => open_by_node.push((node.clone(), "crash", at)),
            Fault::ClockSkew { node, .. } => {
                if let Some(p) = open_by_node
                    .iter()
                    .position(|(n, k, _)| n == node && *k == "skew")
                {
                    let (_, _, c) = open_by_node.remove(p);
                    close(&mut out, c, t);
                }
                open_by_node.push((node.clone(), "skew", at));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Fault, FaultLog, FaultRecord, MAX_RECORDS, from_schedule, in_effect};

    fn partition() -> Fault {
        Fault::Partition {
            groups: vec![vec!["a".into()], vec!["b".into(), "c".into()]],
            bridge: Vec::new(),
        }
    }

    #[test]
    fn a_schedule_becomes_records_with_ends() {
        let faults = [
            (10, partition()),
            (20, Fault::Crash { node: "a".into() }),
            (
                25,
                Fault::Pause {
                    node: "b".into(),
                    for_ms: 5,
                },
            ),
            (40, Fault::Heal {}),
            (50, Fault::Restart { node: "a".into() }),
        ];
        let records = from_schedule(faults.iter().map(|(t, f)| (*t, f)));
        let extents: Vec<(u64, Option<u64>)> =
            records.iter().map(|r| (r.start_ms, r.end_ms)).collect();
        assert_eq!(
            extents,
            vec![(10, Some(40)), (20, Some(50)), (25, Some(30))]
        );
        let at_27 = in_effect(&records, 27);
        assert_eq!(at_27.partition.as_ref().map(Vec::len), Some(2));
        assert!(at_27.crashed.contains("a") && at_27.paused.contains_key("b"));
        assert!(in_effect(&records, 60).is_empty());
    }

    #[test]
    fn the_live_log_replaces_by_id_and_stays_bounded() {
        let mut log = FaultLog::default();
        let mut r = FaultRecord {
            id: 1,
            fault: partition(),
            start_ms: 100,
            end_ms: None,
        };
        log.upsert(r.clone());
        r.end_ms = Some(150);
        log.upsert(r.clone());
        assert_eq!(log.records(), vec![r]);
        for id in 2..=(MAX_RECORDS as u64 + 5) {
            log.upsert(FaultRecord {
                id,
                fault: Fault::Rollback { node: "a".into() },
                start_ms: id,
                end_ms: Some(id + 1),
            });
        }
        assert_eq!(log.records().len(), MAX_RECORDS);
        let bad = FaultRecord {
            id: 9,
            fault: Fault::Loss {
                node: "a".into(),
                rate: 1.5,
                to: Vec::new(),
                for_ms: None,
            },
            start_ms: 1,
            end_ms: None,
        };
        assert!(bad.check().is_err());
    }
}
