//! The Boss: fires a random node every so often (SIGKILL, or SIGSTOP with
//! `--boss-pause`) and, after a delay, rehires it on its old data (or
//! resumes it).
//!
//! The Boss never fires Sauron (it is not a fleet member) and never the
//! last running honest node. Its choices come from its own seeded RNG.
//! Every firing is reported to Sauron when Sauron runs.

use std::sync::Arc;
use std::time::Duration;

use crapcoin_node::sauron::model::BossAction;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::fleet::{Fleet, View};
use crate::sauron;
use crate::watch::Watch;

/// How the Boss works.
#[derive(Debug, Clone)]
pub struct Config {
    /// Mean time between firings (each wait is jittered ±50%).
    pub interval: Duration,
    /// Delay before a fired node is rehired (or a paused one resumed);
    /// `None`: never.
    pub rehire_after: Option<Duration>,
    /// Pause instead of kill.
    pub pause: bool,
    /// Seed of its choices.
    pub seed: u64,
}

/// Runs the Boss on `watch`'s fleet until `cancel`; rehires and resumes
/// still pending are then done at once (a fired node comes back, a paused
/// one continues), so the network is whole again for the verdict.
pub async fn run(watch: Arc<Watch>, config: Config, cancel: CancellationToken) {
    let fleet = watch.fleet().clone();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut comebacks: JoinSet<()> = JoinSet::new();
    let come_back = CancellationToken::new();
    loop {
        let wait = config.interval.mul_f64(rng.random_range(0.5..1.5));
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        let Some(target) = pick(&fleet, &mut rng) else {
            tracing::info!("the Boss found nobody to fire");
            continue;
        };
        let done = if config.pause {
            fleet.pause(&target)
        } else {
            // Its counters up to (almost) the kill: SIGKILL loses the rest.
            watch.last_poll(&target).await;
            fleet.fire(&target)
        };
        let view = match done {
            Ok(view) => view,
            Err(e) => {
                tracing::info!(%target, error = %e, "the Boss could not fire");
                continue;
            }
        };
        let (action, word) = if config.pause {
            (BossAction::Paused, "paused")
        } else {
            (BossAction::Fired, "fired")
        };
        tracing::info!(node = %target, "the Boss {word} {target}");
        sauron::report(&fleet, action, &view);
        if let Some(delay) = config.rehire_after {
            let fleet = fleet.clone();
            let come_back = come_back.clone();
            let pause = config.pause;
            comebacks.spawn(async move {
                tokio::select! {
                    _ = come_back.cancelled() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
                bring_back(&fleet, &view, pause).await;
            });
        }
        // Forget finished comebacks so the set stays small.
        while comebacks.try_join_next().is_some() {}
    }
    come_back.cancel();
    while comebacks.join_next().await.is_some() {}
}

async fn bring_back(fleet: &Fleet, view: &View, pause: bool) {
    let name = &view.name;
    let result = if pause {
        fleet
            .resume(name)
            .map(|v| (BossAction::Resumed, "resumed", v))
    } else {
        fleet
            .rehire(name)
            .await
            .map(|v| (BossAction::Rehired, "rehired", v))
    };
    match result {
        Ok((action, word, view)) => {
            tracing::info!(node = %name, "the Boss {word} {name}");
            sauron::report(fleet, action, &view);
        }
        // Fired by hand meanwhile, or shutting down: nothing to do.
        Err(e) => tracing::debug!(node = %name, error = %e, "no comeback"),
    }
}

/// A random running node whose loss leaves at least one honest node
/// running.
fn pick(fleet: &Fleet, rng: &mut StdRng) -> Option<String> {
    let running = fleet.running();
    let honest = running.iter().filter(|r| r.honest).count();
    let candidates: Vec<&String> = running
        .iter()
        .filter(|r| !r.honest || honest > 1)
        .map(|r| &r.name)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    Some(candidates[rng.random_range(0..candidates.len())].clone())
}
