//! Per-peer limits on what a peer's orphans cost an honest node, each
//! tested so that the test fails when the limit is removed:
//!
//! - orphans (pushed blocks whose parent the node lacks) from one sender
//!   are looked at up to a token bucket (`Config::orphan_rate`); past it
//!   they are ignored before their signature is checked;
//! - the syncs a sender's orphans start are one per
//!   `Config::orphan_sync_interval` at most;
//! - senders outside the peer table share one bucket and one interval, so
//!   naming new URLs earns nothing;
//! - orphans start syncs only while fewer than `Config::orphan_sync_slots`
//!   syncs run, so many peers' orphans cannot hold every sync slot;
//! - and a peer that really is ahead after a partition heals is still
//!   synced from, by its orphans alone (maintenance is off here).
//!
//! In virtual time, as `simulation` runs: a current-thread runtime with
//! paused time, every node on `Clock::simulated_since`, hash maps in a
//! fixed order. Every loop is bounded in count and (virtual) time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crapcoin_core::network::BlockAck;
use crapcoin_core::observer::Event;
use crapcoin_core::{
    Block, BlockHash, Clock, Config, Forge, Handle, Network, Node, PeerUrl, Skew, maps, memory,
};
use kit::chain::{addr, params};
use kit::net::{Tap, Tapped, mem_url};
use tokio::time::Instant;

/// A virtual clock counting from `origin`, as every node of a run has.
fn clock(origin: Instant) -> Clock {
    Clock::simulated_since(
        origin.into_std(),
        crapcoin_core::clock::SIMULATION_EPOCH_MS,
        Skew::default(),
    )
}

/// Status calls a node made, by callee: every sync starts with one.
#[derive(Clone, Default)]
struct Statuses(Arc<Mutex<Vec<PeerUrl>>>);

impl Statuses {
    /// Status calls made so far to `to` (`None`: to anyone).
    fn to(&self, to: Option<&PeerUrl>) -> usize {
        let calls = self.0.lock().expect("not poisoned");
        calls
            .iter()
            .filter(|c| to.is_none_or(|to| *c == to))
            .count()
    }
}

impl Tap for Statuses {
    fn status_done(&self, to: &PeerUrl, _answered: bool) {
        self.0.lock().expect("not poisoned").push(to.clone());
    }
}

/// Orphans a node pooled (looked at and kept), by sender.
#[derive(Clone, Default)]
struct Orphaned(Arc<Mutex<Vec<Option<PeerUrl>>>>);

impl Orphaned {
    fn from(&self, from: Option<&PeerUrl>) -> usize {
        let seen = self.0.lock().expect("not poisoned");
        match from {
            Some(from) => seen.iter().filter(|f| f.as_ref() == Some(from)).count(),
            None => seen.len(),
        }
    }
}

/// A node config with maintenance off: only orphans start syncs.
fn config(name: &str, seeds: Vec<PeerUrl>) -> Config {
    let mut config = Config::in_memory(name);
    config.maintenance_interval = Duration::from_secs(3600);
    config.seeds = seeds;
    config.seed = Some(7);
    config
}

async fn launch(
    config: Config,
    network: impl Network,
    origin: Instant,
    orphaned: Option<Orphaned>,
) -> Handle {
    let mut builder = Node::builder(params())
        .config(config)
        .network(network)
        .clock(clock(origin));
    if let Some(orphaned) = orphaned {
        builder = builder.observer(move |_: &str, event: &Event| {
            if let Event::BlockOrphaned { from, .. } = event {
                orphaned.0.lock().expect("not poisoned").push(from.clone());
            }
        });
    }
    builder.launch().await.expect("a fresh node launches")
}

/// A block with valid work on a parent nobody has, stamped at `now_ms`.
fn orphan(n: u64, now_ms: u64) -> Block {
    let genesis = params().genesis().header.clone();
    let mut parent = [0u8; 32];
    parent[..8].copy_from_slice(&n.to_le_bytes());
    Forge::new(&params(), &genesis)
        .prev_hash(BlockHash(parent))
        .height(7)
        .miner(addr(9))
        .timestamp(now_ms)
        .mine()
}

/// Waits (in virtual time, at most `within`) until `done` holds.
async fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while !done() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// How many a limit lets through in `window` at most: the burst, a token
/// per `every`, and one for the edge.
fn most(burst: u32, every: Duration, window: Duration) -> usize {
    burst as usize + (window.as_nanos() / every.as_nanos().max(1)) as usize + 1
}

/// The flood of the flood bench's never-banned flooder, at its pace: ten
/// orphans with valid work every 100 ms for 10 s, from one sender. Returns
/// the acks by kind: (orphan, ignored).
async fn flood(node: &Handle, from: &[PeerUrl], clock: &Clock, first: u64) -> (usize, usize) {
    let (mut pooled, mut ignored) = (0, 0);
    let mut n = first;
    for _ in 0..100 {
        for _ in 0..10 {
            n += 1;
            let sender = from[n as usize % from.len()].clone();
            match node
                .receive_block(orphan(n, clock.now_ms()), Some(sender))
                .await
            {
                Ok(BlockAck::Orphan) => pooled += 1,
                Ok(BlockAck::Ignored) => ignored += 1,
                other => panic!("a flood orphan got {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (pooled, ignored)
}

const WINDOW: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn a_peer_flooding_orphans_gets_at_most_one_sync_per_interval() {
    maps::fix_order_on_this_thread();
    let origin = Instant::now();
    let net =
        memory::Network::seeded(1).with_latency(Duration::from_millis(1), Duration::from_millis(1));
    let flooder = launch(config("flooder", Vec::new()), net.clone(), origin, None).await;
    let statuses = Statuses::default();
    let orphaned = Orphaned::default();
    let honest = launch(
        config("honest", vec![flooder.url().clone()]),
        Tapped::new(net.clone(), statuses.clone()),
        origin,
        Some(orphaned.clone()),
    )
    .await;
    let f = flooder.url().clone();
    assert!(
        wait_until(Duration::from_secs(5), || honest.known_peers().contains(&f)).await,
        "the flooder is a peer (so its own limits apply)"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = statuses.to(Some(&f));

    let (pooled, ignored) = flood(&honest, std::slice::from_ref(&f), &clock(origin), 0).await;

    let cfg = honest.config();
    let syncs = statuses.to(Some(&f)) - before;
    let most_syncs = (WINDOW.as_nanos() / cfg.orphan_sync_interval.as_nanos()) as usize + 1;
    assert!(
        syncs <= most_syncs,
        "{syncs} syncs from the flooder in {WINDOW:?}, at most {most_syncs} allowed"
    );
    assert!(
        syncs >= 2,
        "its orphans still ask it for ancestors now and then"
    );
    let looked_at = orphaned.from(Some(&f));
    let most_orphans = most(cfg.orphan_rate.burst, cfg.orphan_rate.every, WINDOW);
    assert_eq!(
        looked_at, pooled,
        "every orphan answered `orphan` was pooled"
    );
    assert!(
        looked_at <= most_orphans,
        "{looked_at} of the flooder's orphans looked at, at most {most_orphans} allowed"
    );
    assert!(ignored >= 1000 - most_orphans, "{ignored} ignored");
    assert!(honest.orphan_count() <= cfg.orphan_capacity);
    honest.shutdown().await;
    flooder.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn senders_outside_the_peer_table_share_one_limit() {
    maps::fix_order_on_this_thread();
    let origin = Instant::now();
    let net =
        memory::Network::seeded(2).with_latency(Duration::from_millis(1), Duration::from_millis(1));
    let statuses = Statuses::default();
    let orphaned = Orphaned::default();
    let honest = launch(
        config("honest", Vec::new()),
        Tapped::new(net.clone(), statuses.clone()),
        origin,
        Some(orphaned.clone()),
    )
    .await;
    // Fifty names, none a peer (none even exists: a sync from one fails at
    // its status call).
    let names: Vec<PeerUrl> = (0..50).map(|i| mem_url(&format!("nobody-{i}"))).collect();
    let before = statuses.to(None);

    let (pooled, _) = flood(&honest, &names, &clock(origin), 0).await;

    let cfg = honest.config();
    let syncs = statuses.to(None) - before;
    let most_syncs = (WINDOW.as_nanos() / cfg.orphan_sync_interval.as_nanos()) as usize + 1;
    assert!(
        syncs <= most_syncs,
        "{syncs} syncs from strangers in {WINDOW:?}, at most {most_syncs} allowed"
    );
    let most_orphans = most(cfg.orphan_rate.burst, cfg.orphan_rate.every, WINDOW);
    assert_eq!(orphaned.from(None), pooled);
    assert!(
        pooled <= most_orphans,
        "{pooled} strangers' orphans looked at, at most {most_orphans} allowed"
    );
    honest.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_peer_really_ahead_is_synced_from_after_a_partition_heals() {
    maps::fix_order_on_this_thread();
    let origin = Instant::now();
    let net =
        memory::Network::seeded(3).with_latency(Duration::from_millis(1), Duration::from_millis(1));
    let a = launch(config("a", Vec::new()), net.clone(), origin, None).await;
    let b = launch(
        config("b", vec![a.url().clone()]),
        net.clone(),
        origin,
        None,
    )
    .await;
    let (a_url, b_url) = (a.url().clone(), b.url().clone());
    assert!(
        wait_until(Duration::from_secs(5), || a.known_peers().contains(&b_url)
            && b.known_peers().contains(&a_url))
        .await,
        "a and b are peers"
    );
    b.mine().await.expect("b mines");
    assert!(wait_until(Duration::from_secs(5), || a.height() == 1).await);

    // Twice: a partition in which b mines on, then b's next block, an
    // orphan to a, is all a hears. The second heal comes within a's
    // orphan sync interval of the first sync: a's sync from b waits for
    // b's next orphan after the interval, and comes.
    for round in 0..2 {
        net.partition(&[vec![a_url.clone()], vec![b_url.clone()]]);
        for _ in 0..20 {
            b.mine().await.expect("b mines");
        }
        assert!(a.height() < b.height(), "the partition held");
        net.heal();
        // b mines on, a block every 300 ms, until a has caught up (each
        // block an orphan to a until then).
        let mut mined_after_heal = 0;
        let mut caught_up = false;
        while !caught_up && mined_after_heal < 10 {
            b.mine().await.expect("b mines");
            mined_after_heal += 1;
            caught_up = wait_until(Duration::from_millis(300), || a.height() == b.height()).await;
        }
        assert!(
            caught_up,
            "round {round}: a at {} never caught up with b at {}",
            a.height(),
            b.height()
        );
        assert_eq!(a.tip(), b.tip(), "round {round}");
        if round == 0 {
            assert_eq!(mined_after_heal, 1, "the first orphan starts the sync");
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn orphans_from_many_peers_leave_sync_slots_free() {
    maps::fix_order_on_this_thread();
    let origin = Instant::now();
    // Slow calls, so the syncs the orphans start are still running when
    // the last orphan comes.
    let latency = Duration::from_millis(50);
    let net = memory::Network::seeded(4).with_latency(latency, latency);
    let mut senders = Vec::new();
    for i in 0..4 {
        senders.push(
            launch(
                config(&format!("s{i}"), Vec::new()),
                net.clone(),
                origin,
                None,
            )
            .await,
        );
    }
    let urls: Vec<PeerUrl> = senders.iter().map(|s| s.url().clone()).collect();
    let statuses = Statuses::default();
    let honest = launch(
        config("honest", urls.clone()),
        Tapped::new(net.clone(), statuses.clone()),
        origin,
        None,
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(10), || urls
            .iter()
            .all(|u| honest.known_peers().contains(u)))
        .await,
        "every sender is a peer"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = statuses.to(None);

    // One orphan from each, at the same moment: each would start a sync.
    let now_ms = clock(origin).now_ms();
    for (i, url) in urls.iter().enumerate() {
        let ack = honest
            .receive_block(orphan(1000 + i as u64, now_ms), Some(url.clone()))
            .await;
        assert_eq!(ack, Ok(BlockAck::Orphan));
    }
    // Long enough for a status call to be answered, not for a second one.
    tokio::time::sleep(latency * 3).await;

    let started = statuses.to(None) - before;
    let slots = honest.config().orphan_sync_slots;
    assert_eq!(
        started, slots,
        "syncs started by four peers' orphans at once: {started}, slots for them {slots}"
    );
    honest.shutdown().await;
    for s in senders {
        s.shutdown().await;
    }
}
