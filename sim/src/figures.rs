//! Which plots a set of runs gets, drawn from their outcomes with
//! [`crate::plot`]:
//!
//! - always: `heights.png` (best-chain height over virtual time, the
//!   first run's nodes, faults marked) and `propagation.png` (the CDF of
//!   block propagation delays, one curve a run, at most eight);
//! - a sweep of `block_interval_ms`: `stale-rate.png`, the stale rate of
//!   every run against T, with 1 − e^(−Δ/T) beside it, Δ the median
//!   propagation delay over all runs;
//! - a sweep of `hash_share:<group>`: `selfish-revenue.png`, that
//!   group's share of the best chain against its hash share α, with Eyal
//!   and Sirer's curve for the γ the runs measured (the share of honest
//!   blocks mined on the group's side of a tie; their mean, 0 when no
//!   race was seen).

use std::path::{Path, PathBuf};

use crate::plot;
use crate::run::Outcome;
use crate::scenario::{Scenario, SweepParam};

/// Curves drawn at most in the propagation plot.
const MAX_CDF_CURVES: usize = 8;

/// Draws the plots that fit `scenario` into `dir`; returns their paths.
///
/// # Errors
///
/// When a plot cannot be drawn or written.
pub fn draw(
    dir: &Path,
    scenario: &Scenario,
    outcomes: &[&Outcome],
) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let Some(first) = outcomes.first() else {
        return Ok(files);
    };
    let path = dir.join("heights.png");
    plot::heights(&path, &first.heights, &first.faults)?;
    files.push(path);

    let series: Vec<(String, Vec<f64>)> = outcomes
        .iter()
        .take(MAX_CDF_CURVES)
        .map(|o| (label(o), o.delays_ms.clone()))
        .collect();
    let path = dir.join("propagation.png");
    plot::propagation_cdf(&path, &series)?;
    files.push(path);

    match scenario.sweep.as_ref().map(|s| &s.parameter) {
        Some(SweepParam::BlockIntervalMs) => {
            let points: Vec<(f64, f64)> = outcomes
                .iter()
                .filter_map(|o| Some((o.value? / 1000.0, o.stale_rate)))
                .collect();
            let path = dir.join("stale-rate.png");
            plot::stale_rate(&path, &points, median_delay_secs(outcomes))?;
            files.push(path);
        }
        Some(SweepParam::HashShare(group)) => {
            let points: Vec<(f64, f64)> = outcomes
                .iter()
                .filter_map(|o| {
                    let g = o.groups.iter().find(|g| &g.name == group)?;
                    Some((o.value?, g.revenue))
                })
                .collect();
            let gammas: Vec<f64> = outcomes
                .iter()
                .filter_map(|o| o.groups.iter().find(|g| &g.name == group)?.gamma)
                .collect();
            let gamma = if gammas.is_empty() {
                0.0
            } else {
                gammas.iter().sum::<f64>() / gammas.len() as f64
            };
            let path = dir.join("selfish-revenue.png");
            plot::selfish_revenue(&path, &points, gamma)?;
            files.push(path);
        }
        _ => {}
    }
    Ok(files)
}

fn label(o: &Outcome) -> String {
    match o.value {
        Some(v) => format!("{v} (seed {})", o.seed),
        None => format!("seed {}", o.seed),
    }
}

/// The median of every run's propagation delays, in seconds.
pub fn median_delay_secs(outcomes: &[&Outcome]) -> f64 {
    let mut all: Vec<f64> = outcomes
        .iter()
        .flat_map(|o| o.delays_ms.iter().copied())
        .filter(|d| d.is_finite())
        .collect();
    if all.is_empty() {
        return 0.0;
    }
    all.sort_by(f64::total_cmp);
    all[all.len() / 2] / 1000.0
}
