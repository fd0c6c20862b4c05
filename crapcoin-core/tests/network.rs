//! In-process network tests on the in-memory transport: many honest nodes
//! with latency and message loss agree on one chain.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crapcoin_core::node::AutoConfig;
use crapcoin_core::{Chain, Config, Event, Handle, Node, Params, TxId, Wallet, memory, validate};

/// Transfers each node accepted, from the observers.
type Accepted = Arc<Mutex<HashMap<String, HashSet<TxId>>>>;

async fn start(
    n: usize,
    transfers_each: u64,
    net: &memory::Network,
    accepted: &Accepted,
) -> Vec<Handle> {
    let tracker = memory::Tracker::seeded(11);
    let mut nodes = Vec::new();
    for i in 0..n {
        let name = format!("n{i}");
        let mut config = Config::new(name.clone(), format!("mem://{name}").parse().expect("url"));
        config.seed = Some(i as u64);
        config.maintenance_interval = Duration::from_millis(300);
        config.call_timeout = Duration::from_secs(2);
        config.confirm_timeout = Duration::from_secs(60);
        config.auto = Some(AutoConfig {
            interval: Duration::from_millis(150),
            max_transfers: Some(transfers_each),
        });
        let seen = accepted.clone();
        let node = Node::builder(Params::with_difficulty(8))
            .config(config)
            .wallet(Wallet::from_seed(1000 + i as u64))
            .network(net.clone())
            .tracker(tracker.clone())
            .observer(move |node: &str, event: &Event| {
                if let Event::TransferSubmitted { txid, .. } = event {
                    seen.lock()
                        .expect("observer lock")
                        .entry(node.to_owned())
                        .or_default()
                        .insert(*txid);
                }
            })
            .launch()
            .await
            .expect("node launches");
        nodes.push(node);
    }
    nodes
}

/// Whether every transfer any node accepted is on `node`'s chain once.
async fn all_included_once(node: &Handle, accepted: &Accepted) -> bool {
    let all: HashSet<TxId> = accepted
        .lock()
        .expect("observer lock")
        .values()
        .flatten()
        .copied()
        .collect();
    let mut count: HashMap<TxId, usize> = HashMap::new();
    for block in node.chain().await {
        if let Some(txid) = block.txid() {
            *count.entry(txid).or_default() += 1;
        }
    }
    all.iter().all(|t| count.get(t) == Some(&1))
}

/// Waits (bounded) until `want` transfers were accepted, all are on the
/// chain once, and every node holds the same tip. Fork choice keeps the first-seen block
/// on a tie, so a network that goes quiet on a tie stays split until the
/// next block: as any longest-chain network, it settles by mining one more.
async fn settle(nodes: &[Handle], accepted: &Accepted, want: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut quiet: Option<(Instant, Vec<u64>)> = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let submitted: usize = accepted
            .lock()
            .expect("observer lock")
            .values()
            .map(HashSet::len)
            .sum();
        let tip = nodes[0].tip();
        let done = submitted >= want;
        if done
            && nodes.iter().all(|n| n.tip() == tip)
            && all_included_once(&nodes[0], accepted).await
        {
            return true;
        }
        // Quiet (no height moved for a while) but split: mine one more.
        let heights: Vec<u64> = nodes.iter().map(Handle::height).collect();
        match &quiet {
            Some((since, before)) if *before == heights => {
                if since.elapsed() > Duration::from_secs(3) {
                    if nodes.iter().any(|n| n.tip() != tip) {
                        let _ = nodes[0].mine().await;
                    }
                    quiet = None;
                }
            }
            _ => quiet = Some((Instant::now(), heights)),
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_with_latency_and_loss_agree_on_one_chain() {
    let net = memory::Network::seeded(5)
        .with_latency(Duration::from_millis(1), Duration::from_millis(10))
        .with_loss(0.05);
    let accepted: Accepted = Arc::default();
    // 50 nodes x 4 transfers = 200 transfers.
    let nodes = start(50, 4, &net, &accepted).await;
    let settled = settle(&nodes, &accepted, 200, Duration::from_secs(240)).await;
    let heights: Vec<u64> = nodes.iter().map(Handle::height).collect();
    assert!(settled, "network did not settle; heights {heights:?}");
    let (_, lost) = net.stats();
    assert!(lost > 0, "the loss knob must actually have lost messages");

    // One chain, re-validated from scratch by a fresh Chain.
    let chain = nodes[0].chain().await;
    let params = nodes[0].params().clone();
    let mut fresh = Chain::new(params.clone());
    let checked = validate::check_batch(chain[1..].to_vec(), &params).expect("every block checks");
    let _ = fresh
        .insert_segment(checked, u64::MAX)
        .expect("the chain re-validates");
    assert_eq!(fresh.tip(), nodes[0].tip());

    // Every transfer any node accepted is on it exactly once.
    let mut count: HashMap<TxId, usize> = HashMap::new();
    for block in &chain {
        if let Some(txid) = block.txid() {
            *count.entry(txid).or_default() += 1;
        }
    }
    let accepted = accepted.lock().expect("observer lock").clone();
    let all: HashSet<TxId> = accepted.values().flatten().copied().collect();
    assert!(all.len() >= 200, "only {} transfers accepted", all.len());
    for txid in &all {
        assert_eq!(
            count.get(txid),
            Some(&1),
            "transfer {txid} not included exactly once"
        );
    }
    assert!(
        count.values().all(|n| *n == 1),
        "a transaction appears twice"
    );

    // Supply: the sum of balances equals the rewards minted.
    let height = fresh.height();
    let balances: u64 = fresh.state().accounts().map(|(_, a)| a.balance).sum();
    assert_eq!(balances, height * params.block_reward);
    assert_eq!(fresh.state().supply(), balances);

    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_the_last_block_catches_up_through_maintenance() {
    // Two nodes; the network loses everything while one mines, so the
    // push never arrives. Once the network heals, maintenance notices the
    // peer is ahead and syncs, although no further block is ever pushed.
    let net = memory::Network::seeded(9);
    let accepted: Accepted = Arc::default();
    let nodes = start(2, 0, &net, &accepted).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes.iter().any(|n| n.known_peers().is_empty()) {
        assert!(Instant::now() < deadline, "nodes never became peers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    net.set_loss(1.0);
    let mined = nodes[0].mine().await.expect("mines alone");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(nodes[1].height(), 0, "the push was lost");
    net.set_loss(0.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes[1].tip() != mined.hash {
        assert!(Instant::now() < deadline, "node 1 never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in nodes {
        node.shutdown().await;
    }
}

/// Two idle nodes on one in-memory network, in virtual time.
async fn pair(net: &memory::Network) -> (Handle, Handle) {
    pair_with(net, |_| {}, |_: &str, _: &Event| {}).await
}

/// [`pair`] with each node's config changed by `tweak` and `observer`
/// watching both.
async fn pair_with(
    net: &memory::Network,
    tweak: impl Fn(&mut Config),
    observer: impl Fn(&str, &Event) + Clone + Send + Sync + 'static,
) -> (Handle, Handle) {
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let mut config = Config::in_memory(name);
        config.seed = Some(1);
        config.maintenance_interval = Duration::from_secs(3600);
        tweak(&mut config);
        let node = Node::builder(Params::with_difficulty(8))
            .config(config)
            .observer(observer.clone())
            .wallet(Wallet::from_seed(7))
            .network(net.view(&format!("mem://{name}").parse().expect("url")))
            .clock(crapcoin_core::Clock::simulated(
                crapcoin_core::clock::SIMULATION_EPOCH_MS,
                crapcoin_core::Skew::default(),
            ))
            .launch()
            .await
            .expect("launches");
        nodes.push(node);
    }
    let b = nodes.pop().expect("b");
    (nodes.pop().expect("a"), b)
}

/// A node posts its gossip where it sends it, but never past a message
/// still waiting in its queue: a block mined while the one before waits
/// there (the network handed it back, and the node's one send in flight
/// is busy) goes out behind it, and its peer never receives it before its
/// parent. Posted at once, it would overtake its parent and be orphaned.
#[tokio::test(start_paused = true)]
async fn gossip_posted_where_it_is_sent_waits_behind_the_queue() {
    let latency = Duration::from_millis(5);
    let net = memory::Network::seeded(4).with_latency(latency, latency);
    let orphaned = Arc::new(Mutex::new(Vec::new()));
    let seen = orphaned.clone();
    let (a, b) = pair_with(
        &net,
        |config| config.max_inflight_sends = 1,
        move |node: &str, event: &Event| {
            if let Event::BlockOrphaned { hash, .. } = event {
                seen.lock().expect("lock").push((node.to_owned(), *hash));
            }
        },
    )
    .await;
    a.announce(b.url().clone()).await.expect("b is a's peer");
    assert_eq!(a.known_peers(), [b.url().clone()], "a gossips to b");
    // The post office takes nothing: a's blocks go through its queue and
    // its one send in flight (a call that takes the latency).
    net.set_max_letters(0);
    let first = a.mine().await.expect("mines");
    let second = a.mine().await.expect("mines");
    // Posts are taken again while the second block still waits.
    net.set_max_letters(1 << 10);
    let third = a.mine().await.expect("mines");
    tokio::time::sleep(10 * latency).await;
    for mined in [first, second, third] {
        assert!(
            b.with_chain(|c| c.contains(&mined.hash)),
            "b did not get block {}",
            mined.height
        );
    }
    assert_eq!(
        *orphaned.lock().expect("lock"),
        Vec::new(),
        "a block overtook its parent"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The faults the network makes: a partition loses calls between its
/// sides (in both directions) until the heal, an isolated node reaches no
/// one, a pause holds calls to the paused node until it resumes, and
/// regions add their one-way delay.
#[tokio::test(start_paused = true)]
async fn partitions_isolation_pauses_and_regions_act_on_calls() {
    use crapcoin_core::Network as _;
    use crapcoin_core::network::NetError;
    let latency = Duration::from_millis(5);
    let net = memory::Network::seeded(3).with_latency(latency, latency);
    let (a, b) = pair(&net).await;
    let from_a = net.view(a.url());
    let from_b = net.view(b.url());
    let now = tokio::time::Instant::now;

    assert!(from_a.status(b.url()).await.is_ok());
    net.partition(&[vec![a.url().clone()], vec![b.url().clone()]]);
    assert!(matches!(from_a.status(b.url()).await, Err(NetError::Lost)));
    assert!(matches!(from_b.status(a.url()).await, Err(NetError::Lost)));
    net.heal();
    assert!(from_b.status(a.url()).await.is_ok());

    net.isolate(b.url());
    assert!(matches!(from_a.status(b.url()).await, Err(NetError::Lost)));
    net.heal();

    let started = now();
    net.pause(b.url(), (started + Duration::from_secs(4)).into_std());
    assert!(from_a.status(b.url()).await.is_ok());
    assert_eq!(
        now() - started,
        Duration::from_secs(4) + latency,
        "held until b resumed"
    );

    net.set_regions(
        vec![
            vec![Duration::ZERO, Duration::from_millis(80)],
            vec![Duration::from_millis(80), Duration::ZERO],
        ],
        vec![(a.url().clone(), 0), (b.url().clone(), 1)],
    );
    let started = now();
    assert!(from_a.status(b.url()).await.is_ok());
    assert_eq!(now() - started, latency + Duration::from_millis(80));
    a.shutdown().await;
    b.shutdown().await;
}

/// Gossip posted to the in-memory network (`Network::post_block`, what
/// the gossip sender uses) takes its route as a call does: it arrives
/// after its latency and not before, a partition loses it, a pause holds
/// it until the receiver resumes; a full queue hands it back; and the
/// postman task ends with the network.
#[tokio::test(start_paused = true)]
async fn posted_gossip_arrives_on_its_route_and_the_queue_is_bounded() {
    use crapcoin_core::Network as _;
    use crapcoin_core::network::Outgoing;
    let latency = Duration::from_millis(5);
    let net = memory::Network::seeded(4).with_latency(latency, latency);
    let (a, b) = pair(&net).await;
    let from_a = net.view(a.url());
    let mut blocks = Vec::new();
    for _ in 0..4 {
        let mined = a.mine().await.expect("mines");
        blocks.push(a.block(&mined.hash).await.expect("a holds its block"));
    }
    let post = |block: &crapcoin_core::Block| {
        from_a
            .post_block(Outgoing::block(b.url(), block), a.url())
            .is_none()
    };
    let has = |block: &crapcoin_core::Block| b.with_chain(|c| c.contains(&block.hash()));
    let step = Duration::from_millis(1);

    // Arrives after its latency, not before.
    assert!(post(&blocks[0]), "the in-memory network takes gossip");
    tokio::time::sleep(latency - step).await;
    assert!(!has(&blocks[0]), "arrived before its latency");
    tokio::time::sleep(2 * step).await;
    assert!(has(&blocks[0]), "not delivered after its latency");

    // A partition loses it, and the heal does not bring it back.
    let (_, lost_before) = net.stats();
    net.partition(&[vec![a.url().clone()], vec![b.url().clone()]]);
    assert!(post(&blocks[1]));
    net.heal();
    tokio::time::sleep(10 * latency).await;
    assert!(!has(&blocks[1]), "crossed a partition");
    assert_eq!(net.stats().1, lost_before + 1, "counted as lost");

    // A pause of the receiver holds it until the receiver resumes.
    let started = tokio::time::Instant::now();
    net.pause(b.url(), (started + Duration::from_secs(2)).into_std());
    assert!(post(&blocks[1]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!has(&blocks[1]), "delivered to a paused node");
    tokio::time::sleep(latency + step).await;
    assert!(
        has(&blocks[1]),
        "not delivered after the pause and its latency"
    );

    // Full: handed back, for the sender to push itself.
    net.set_max_letters(1);
    assert!(post(&blocks[2]));
    assert!(!post(&blocks[3]), "a full queue took a letter");
    tokio::time::sleep(2 * latency).await;
    assert!(has(&blocks[2]) && !has(&blocks[3]));

    // The postman goes with the network.
    a.shutdown().await;
    b.shutdown().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let alive = metrics.num_alive_tasks();
    drop(from_a);
    drop(net);
    tokio::time::sleep(step).await;
    assert_eq!(
        metrics.num_alive_tasks(),
        alive - 1,
        "the postman outlived its network"
    );
}
