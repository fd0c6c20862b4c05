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
use super::{AutoConfig, Handle, Mined, Mining, Shared, TxRelay};
use crate::behaviour::{Action, AutoAction, Forge};
use crate::block::Block;
use crate::intern;
use crate::mining;
use crate::observer::Event;
use crate::tx::Transaction;
use crate::wire::{BlockAck, Outgoing, Payload};

pub(super) fn spawn_all(
    handle: &Handle,
    outbox: mpsc::Receiver<Outgoing>,
    tx_outbox: mpsc::Receiver<TxRelay>,
) {
    let shared = &handle.shared;
    shared.tasks.spawn(maintenance(shared.clone()));
    shared.tasks.spawn(miner(shared.clone()));
    shared
        .tasks
        .spawn(gossip(shared.clone(), outbox, tx_outbox));
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
    let factor = shared.rng().random_range(0.5..1.5);
    base.mul_f64(factor)
}

async fn maintenance(shared: Arc<Shared>) {
    tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => return,
        _ = shared.bootstrap() => {}
    }
    shared.caught_up.send_replace(true);
    let mut round = 1u64;
    loop {
        let wait = jittered(&shared, shared.config.maintenance_interval);
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            _ = shared.clock.sleep(wait) => {}
        }
        tokio::select! {
            biased;
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
    /// A block holding this transaction (or none).
    Tx(Option<Transaction>),
}

/// Mines: requested coinbase-only blocks first, at once; then, on demand,
/// a block for the best mempool transaction as soon as there is one, or,
/// on a schedule, a block whenever the node's draw comes up (see
/// [`crate::power`]). Abandons a block as soon as the tip moves.
async fn miner(shared: Arc<Shared>) {
    loop {
        let job = shared.lock().mine_jobs.pop_front();
        let work = match (job, shared.config.mining) {
            (Some(job), _) => Work::Empty(job),
            (None, Mining::OnDemand) => {
                let tx = {
                    let inner = shared.lock();
                    inner.mempool.select(inner.chain.state())
                };
                if tx.is_none() {
                    idle_on_demand(&shared).await;
                    if shared.is_stopping() {
                        return;
                    }
                    continue;
                }
                Work::Tx(tx)
            }
            (None, Mining::Scheduled(power)) => {
                // Redrawn on every wake (a new tip, a new transaction, a
                // request): exact, since the draw is memoryless.
                let draw = {
                    let mut rng = shared.rng();
                    power.draw(&mut *rng)
                };
                let won = async {
                    match draw {
                        Some(wait) => shared.clock.sleep(wait).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = shared.cancel.cancelled() => return,
                    _ = shared.mine_wake.notified() => continue,
                    _ = won => {}
                }
                let inner = shared.lock();
                Work::Tx(inner.mempool.select(inner.chain.state()))
            }
        };
        let tx = match &work {
            Work::Tx(tx) => tx.clone(),
            Work::Empty(_) => None,
        };
        let found = mine_on_tip(&shared, tx).await;
        if shared.is_stopping() {
            return;
        }
        match (work, found) {
            (Work::Empty(job), Some(mined)) => {
                let _ = job.send(mined);
            }
            (Work::Empty(job), None) => shared.lock().mine_jobs.push_front(job),
            (Work::Tx(_), _) => {}
        }
    }
}

/// Waits, on demand, until there may be something to mine.
async fn idle_on_demand(shared: &Shared) {
    // Foreign transactions become minable when their grace ends without
    // anyone waking us: look again now and then.
    let idle = match shared.config.remine_foreign {
        Some(grace) if shared.lock().mempool.has_waiting_foreign() => {
            grace.max(Duration::from_millis(100)) / 2
        }
        _ => Duration::from_secs(3600),
    };
    tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => {}
        _ = shared.mine_wake.notified() => {}
        _ = shared.clock.sleep(idle) => {}
    }
}

/// Searches the proof of work for a block holding `tx` on the best tip and
/// accepts it as our own. `None` when the tip moved first, the node stops,
/// or the block was refused.
async fn mine_on_tip(shared: &Arc<Shared>, tx: Option<Transaction>) -> Option<Mined> {
    let version = shared.tip_version.load(Ordering::SeqCst);
    let tip = shared.lock().chain.tip_block().clone();
    let ctx = shared.ctx();
    let timestamp = shared
        .behaviour
        .block_timestamp(&ctx, &tip.header, shared.clock.now_ms());
    let mut forge = Forge::new(&shared.params, &tip.header)
        .miner(shared.wallet.address())
        .timestamp(timestamp);
    if let Some(tx) = &tx {
        forge = forge.tx(tx.clone());
    }
    let mut header = forge.header();
    header.nonce = shared.rng().random();
    let stale = || shared.is_stopping() || shared.tip_version.load(Ordering::SeqCst) != version;
    let header = mining::mine(header, stale).await?;
    let block = Block { header, tx };
    let hash = block.hash();
    let height = block.header.height;
    let checked = match intern::check(block, &shared.params, &shared.chain_id) {
        Ok(checked) => checked,
        Err(e) => {
            tracing::warn!(node = %shared.config.name, error = %e, "mined an invalid block");
            return None;
        }
    };
    shared.blocks_mined.fetch_add(1, Ordering::Relaxed);
    shared.emit(&Event::BlockMined {
        hash,
        height,
        parent: checked.block().header.prev_hash,
        tx: checked.txid(),
    });
    match shared.accept(checked, Origin::Mined).await {
        Ok(_) => Some(Mined { hash, height }),
        Err(e) => {
            tracing::debug!(node = %shared.config.name, error = %e, "own block refused");
            None
        }
    }
}

/// Sends queued messages (blocks, then relayed transactions), at most
/// `max_inflight_sends` at once. The sends are aborted when the node
/// stops.
async fn gossip(
    shared: Arc<Shared>,
    mut outbox: mpsc::Receiver<Outgoing>,
    mut tx_outbox: mpsc::Receiver<TxRelay>,
) {
    let mut inflight = JoinSet::new();
    let max = shared.config.max_inflight_sends.max(1);
    // One wait for the stop for the whole loop, polled last: only when
    // nothing else is ready, that is before the task sleeps. While
    // messages keep coming, each is checked against the stop flag.
    let cancelled = shared.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        // Biased: finished sends first (they free slots), then blocks
        // before transactions; and the same order on every run.
        tokio::select! {
            biased;
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            message = outbox.recv(), if inflight.len() < max => {
                let Some(message) = message else { break };
                if shared.is_stopping() {
                    break;
                }
                let Some(message) = shared.network.post_block(message, &shared.config.url) else {
                    continue;
                };
                let shared = shared.clone();
                inflight.spawn(async move {
                    let me = &shared.config.url;
                    let _ = shared
                        .call_in_task(shared.network.push_block(&message.to, me, &message.payload))
                        .await;
                });
            }
            relay = tx_outbox.recv(), if inflight.len() < max => {
                let Some(relay) = relay else { break };
                if shared.is_stopping() {
                    break;
                }
                if shared.network.post_tx(&relay.to, &shared.config.url, &relay.tx) {
                    continue;
                }
                let shared = shared.clone();
                inflight.spawn(async move {
                    let me = &shared.config.url;
                    let _ = shared
                        .call_in_task(shared.network.push_tx(&relay.to, me, &relay.tx))
                        .await;
                });
            }
            _ = &mut cancelled => break,
        }
    }
    inflight.shutdown().await;
}

/// Auto mode: asks the behaviour for the next move at jittered intervals.
async fn auto_mode(handle: Handle, auto: AutoConfig) {
    let shared = handle.shared.clone();
    let mut made = 0u64;
    // The first move comes after a uniform fraction of the interval, so a
    // fleet started together spreads its moves over the first interval
    // instead of waiting a whole one (with a fleet-wide rate spread over
    // many nodes, one node's interval can be minutes).
    let mut first = true;
    loop {
        let wait = if first {
            first = false;
            let fraction: f64 = shared.rng().random_range(0.0..1.0);
            auto.interval.mul_f64(fraction)
        } else {
            jittered(&shared, auto.interval)
        };
        tokio::select! {
            biased;
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
        // On a schedule, coins come only from the node's own blocks: it
        // cannot mine at will, so it waits for them.
        let on_demand = shared.config.mining == Mining::OnDemand;
        if pending {
            if short && on_demand {
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
            let mut rng = shared.rng();
            shared.behaviour.next_auto(&shared.ctx(), &mut *rng)
        };
        match action {
            Some(AutoAction::Mine) if on_demand => {
                let _ = handle.mine().await;
            }
            // On a schedule the node is mining already.
            Some(AutoAction::Mine) => {}
            // Submitted, not awaited: the checks above follow it to its
            // block, and re-earn its coins if a reorg takes them.
            // Before the start-up sync the wallet signs nothing (its chain
            // may be behind its own past: see `TxError::CatchingUp`), and
            // the turn is not spent waiting for it.
            Some(AutoAction::Transfer { .. }) if !handle.caught_up() => {}
            Some(AutoAction::Transfer { to, amount }) => {
                match handle.submit_transfer(to, amount).await {
                    Ok(_) => made += 1,
                    Err(e) => {
                        tracing::debug!(node = %shared.config.name, error = %e, "auto transfer refused");
                    }
                }
            }
            None => {}
        }
    }
}

/// Runs the behaviour's own actions every `every`.
async fn ticker(shared: Arc<Shared>, every: Duration) {
    loop {
        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return,
            _ = shared.clock.sleep(every) => {}
        }
        let actions = shared.behaviour.tick(&shared.ctx());
        shared.act(actions).await;
    }
}

impl Shared {
    /// Carries out a behaviour's own actions, in order.
    pub(super) async fn act(self: &Arc<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(message) => self.send(vec![message]),
                Action::Broadcast(payload) => {
                    let messages = self
                        .lock()
                        .peers
                        .urls()
                        .into_iter()
                        .map(|to| Outgoing {
                            to,
                            payload: payload.clone(),
                        })
                        .collect();
                    self.send(messages);
                }
                Action::Release(block) => {
                    // New to us: accepting relays it. Known already (e.g.
                    // withheld after mining): send it to everyone directly.
                    let relayed = match intern::check(block.clone(), &self.params, &self.chain_id) {
                        Ok(checked) => matches!(
                            self.accept(checked, Origin::Peer(None)).await,
                            Ok(BlockAck::Accepted)
                        ),
                        Err(_) => false,
                    };
                    if !relayed {
                        let messages = self
                            .lock()
                            .peers
                            .urls()
                            .into_iter()
                            .map(|to| Outgoing {
                                to,
                                payload: Payload::Block(block.clone()),
                            })
                            .collect();
                        self.send(messages);
                    }
                }
                Action::Wipe => self.wipe().await,
                Action::Submit(tx) => {
                    if let Err(e) = self.submit(tx, None).await {
                        tracing::debug!(node = %self.config.name, error = %e, "behaviour's transaction refused");
                    }
                }
                Action::BroadcastTx(tx) => {
                    let tx = Arc::new(tx);
                    let peers = self.lock().peers.sorted();
                    for to in peers.iter().cloned() {
                        self.queue_tx(to, tx.clone());
                    }
                }
            }
        }
    }
}
