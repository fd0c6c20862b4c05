//! The node's background tasks. Each selects on the node's cancellation
//! token and is spawned on its task tracker, so shutdown stops and awaits
//! them all.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::receive::Origin;
use super::{AutoConfig, Handle, Mined, Shared};
use crate::behaviour::{Action, AutoAction, Forge};
use crate::block::Block;
use crate::mining;
use crate::observer::Event;
use crate::tx::Transaction;
use crate::validate;
use crate::wire::{BlockAck, Outgoing, Payload};

pub(super) fn spawn_all(handle: &Handle, outbox: mpsc::Receiver<Outgoing>) {
    let shared = &handle.shared;
    shared.tasks.spawn(maintenance(shared.clone()));
    shared.tasks.spawn(miner(shared.clone()));
    shared.tasks.spawn(gossip(shared.clone(), outbox));
    if let Some(auto) = shared.config.auto.clone() {
        shared.tasks.spawn(auto_mode(handle.clone(), auto));
    }
    if let Some(every) = shared.behaviour.tick_interval() {
        shared.tasks.spawn(ticker(shared.clone(), every));
    }
}

/// `base` scaled by a random factor in [0.5, 1.5), so nodes started
/// together do not act in lockstep.
fn jittered(shared: &Shared, base: Duration) -> Duration {
    let factor = shared
        .rng
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .random_range(0.5..1.5);
    base.mul_f64(factor)
}

async fn maintenance(shared: Arc<Shared>) {
    tokio::select! {
        _ = shared.cancel.cancelled() => return,
        _ = shared.bootstrap() => {}
    }
    let mut round = 1u64;
    loop {
        let wait = jittered(&shared, shared.config.maintenance_interval);
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = shared.clock.sleep(wait) => {}
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = shared.maintain(round) => {}
        }
        round += 1;
    }
}

/// What the miner works on.
enum Work {
    /// A coinbase-only block someone asked for.
    Empty(tokio::sync::oneshot::Sender<Mined>),
    /// A block holding this transaction.
    Tx(Transaction),
}

/// Mines while there is work: requested coinbase-only blocks first, then
/// the best mempool transaction. Abandons a block as soon as the tip moves.
async fn miner(shared: Arc<Shared>) {
    loop {
        let work = {
            let mut inner = shared.lock();
            if let Some(job) = inner.mine_jobs.pop_front() {
                Some(Work::Empty(job))
            } else {
                inner.mempool.select(inner.chain.state()).map(Work::Tx)
            }
        };
        let Some(work) = work else {
            // Foreign transactions become minable when their grace ends
            // without anyone waking us: look again now and then.
            let idle = match shared.config.remine_foreign {
                Some(grace) if shared.lock().mempool.has_waiting_foreign() => {
                    grace.max(Duration::from_millis(100)) / 2
                }
                _ => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                _ = shared.mine_wake.notified() => continue,
                _ = shared.clock.sleep(idle) => continue,
            }
        };
        let version = shared.tip_version.load(std::sync::atomic::Ordering::SeqCst);
        let tip = shared.lock().chain.tip_block().clone();
        let ctx = shared.ctx();
        let timestamp = shared
            .behaviour
            .block_timestamp(&ctx, &tip.header, shared.clock.now_ms());
        let mut forge = Forge::new(&shared.params, &tip.header)
            .miner(shared.wallet.address())
            .timestamp(timestamp);
        let tx = match &work {
            Work::Tx(tx) => Some(tx.clone()),
            Work::Empty(_) => None,
        };
        if let Some(tx) = &tx {
            forge = forge.tx(tx.clone());
        }
        let mut header = forge.header();
        header.nonce = shared
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .random();
        let stale = || {
            shared.cancel.is_cancelled()
                || shared.tip_version.load(std::sync::atomic::Ordering::SeqCst) != version
        };
        let Some(header) = mining::mine(header, stale).await else {
            if let Work::Empty(job) = work {
                shared.lock().mine_jobs.push_front(job);
            }
            if shared.cancel.is_cancelled() {
                return;
            }
            continue;
        };
        let block = Block { header, tx };
        let hash = block.hash();
        let height = block.header.height;
        let checked = match validate::check(block, &shared.params) {
            Ok(checked) => checked,
            Err(e) => {
                tracing::warn!(node = %shared.config.name, error = %e, "mined an invalid block");
                continue;
            }
        };
        shared.emit(&Event::BlockMined {
            hash,
            height,
            parent: checked.block().header.prev_hash,
            tx: checked.txid(),
        });
        match shared.accept(checked, Origin::Mined).await {
            Ok(_) => {
                if let Work::Empty(job) = work {
                    let _ = job.send(Mined { hash, height });
                }
            }
            Err(e) => {
                tracing::debug!(node = %shared.config.name, error = %e, "own block refused");
                if let Work::Empty(job) = work {
                    shared.lock().mine_jobs.push_front(job);
                }
            }
        }
    }
}

/// Sends queued messages, at most `max_inflight_sends` at once.
async fn gossip(shared: Arc<Shared>, mut outbox: mpsc::Receiver<Outgoing>) {
    let mut inflight = JoinSet::new();
    let max = shared.config.max_inflight_sends.max(1);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            message = outbox.recv(), if inflight.len() < max => {
                let Some(message) = message else { break };
                let shared = shared.clone();
                inflight.spawn(async move {
                    let me = &shared.config.url;
                    let _ = shared
                        .call(shared.network.push_block(&message.to, me, &message.payload))
                        .await;
                });
            }
        }
    }
    inflight.shutdown().await;
}

/// Auto mode: asks the behaviour for the next move at jittered intervals.
async fn auto_mode(handle: Handle, auto: AutoConfig) {
    let shared = handle.shared.clone();
    let mut made = 0u64;
    loop {
        let wait = jittered(&shared, auto.interval);
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = shared.clock.sleep(wait) => {}
        }
        if !shared.auto_on.load(Ordering::Relaxed) {
            continue;
        }
        // One transfer in flight at a time. If the pending one can no longer
        // be paid for (the block that earned the coins was abandoned in a
        // reorg), earn them again; otherwise wait for it to be mined.
        let me = shared.wallet.address();
        let (pending, short) = {
            let inner = shared.lock();
            // Every pooled transaction moves a positive amount, so a
            // positive spend means one is pending.
            let needed = inner.mempool.pending_spend(&me, u64::MAX);
            (
                needed > 0,
                needed > inner.chain.state().account(&me).balance,
            )
        };
        if pending {
            if short {
                let _ = handle.mine().await;
            }
            continue;
        }
        // After the last transfer, keep watching: a later reorg can hand a
        // transfer back whose coins are gone, and it must not be left behind.
        if auto.max_transfers.is_some_and(|max| made >= max) {
            continue;
        }
        let action = {
            let mut rng = shared.rng.lock().unwrap_or_else(|p| p.into_inner());
            shared.behaviour.next_auto(&shared.ctx(), &mut *rng)
        };
        match action {
            Some(AutoAction::Mine) => {
                let _ = handle.mine().await;
            }
            // Submitted, not awaited: the checks above follow it to its
            // block, and re-earn its coins if a reorg takes them.
            Some(AutoAction::Transfer { to, amount }) => match handle.submit_transfer(to, amount) {
                Ok(_) => made += 1,
                Err(e) => {
                    tracing::debug!(node = %shared.config.name, error = %e, "auto transfer refused");
                }
            },
            None => {}
        }
    }
}

/// Runs the behaviour's own actions every `every`.
async fn ticker(shared: Arc<Shared>, every: Duration) {
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = shared.clock.sleep(every) => {}
        }
        let actions = shared.behaviour.tick(&shared.ctx());
        for action in actions {
            match action {
                Action::Send(message) => shared.send(vec![message]),
                Action::Broadcast(payload) => {
                    let messages = shared
                        .lock()
                        .peers
                        .urls()
                        .into_iter()
                        .map(|to| Outgoing {
                            to,
                            payload: payload.clone(),
                        })
                        .collect();
                    shared.send(messages);
                }
                Action::Release(block) => {
                    // New to us: accepting relays it. Known already (e.g.
                    // withheld after mining): send it to everyone directly.
                    let relayed = match validate::check(block.clone(), &shared.params) {
                        Ok(checked) => matches!(
                            shared.accept(checked, Origin::Peer(None)).await,
                            Ok(BlockAck::Accepted)
                        ),
                        Err(_) => false,
                    };
                    if !relayed {
                        let messages = shared
                            .lock()
                            .peers
                            .urls()
                            .into_iter()
                            .map(|to| Outgoing {
                                to,
                                payload: Payload::Block(block.clone()),
                            })
                            .collect();
                        shared.send(messages);
                    }
                }
                Action::Wipe => shared.wipe().await,
            }
        }
    }
}
