//! Nodes mining on a proof-of-work schedule, with transactions relayed to
//! every miner, on the in-memory network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crapcoin_core::network::TxAck;
use crapcoin_core::node::TxError;
use crapcoin_core::{
    Config, Handle, HashPower, Mining, NetError, Network as _, Node, PeerUrl, Transaction, TxId,
    ValidationError, Wallet, memory,
};
use kit::chain::params;
use kit::net::{Tap, Tapped};
use kit::time::holds_within;

/// A relay: who pushed which transaction to whom.
type Push = (PeerUrl, PeerUrl, TxId);

/// Counts relays per (sender, receiver, transaction).
#[derive(Clone, Default)]
struct Relays(Arc<Mutex<HashMap<Push, usize>>>);

impl Tap for Relays {
    fn tx_pushed(&self, to: &PeerUrl, from: &PeerUrl, tx: &Transaction) {
        *self
            .0
            .lock()
            .expect("relay counts")
            .entry((from.clone(), to.clone(), tx.id()))
            .or_default() += 1;
    }
}

impl Relays {
    /// The most times one sender other than `except` (the node that
    /// rebroadcasts its own transaction) pushed `txid` to one receiver.
    fn most_from_one_relay(&self, txid: &TxId, except: &PeerUrl) -> usize {
        let counts = self.0.lock().expect("relay counts");
        counts
            .iter()
            .filter(|((from, _, id), _)| id == txid && from != except)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    }

    /// Pushes of `txid` to `to`, from anyone.
    fn count(&self, to: &PeerUrl, txid: &TxId) -> usize {
        let counts = self.0.lock().expect("relay counts");
        counts
            .iter()
            .filter(|((_, receiver, id), _)| receiver == to && id == txid)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Nodes `txid` was pushed to.
    fn receivers(&self, txid: &TxId) -> usize {
        let counts = self.0.lock().expect("relay counts");
        counts
            .keys()
            .filter(|(_, _, id)| id == txid)
            .map(|(_, to, _)| to)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }
}

/// Launches node `i` with `share` of the power (`None`: on demand) on a
/// network whose target block interval is `interval`, seeded with `seeds`.
async fn launch(
    net: &Tapped<Relays>,
    i: usize,
    share: Option<f64>,
    interval: Duration,
    seeds: Vec<PeerUrl>,
) -> Handle {
    let mut config = Config::in_memory(format!("n{i}"));
    config.seed = Some(i as u64 + 1);
    config.seeds = seeds;
    config.maintenance_interval = Duration::from_millis(200);
    config.mining = match share {
        Some(share) => Mining::Scheduled(HashPower::new(share, interval).expect("valid")),
        None => Mining::OnDemand,
    };
    Node::builder(params())
        .config(config)
        .wallet(Wallet::from_seed(100 + i as u64))
        .network(net.clone())
        .launch()
        .await
        .expect("launches")
}

/// Starts `shares.len()` nodes that know each other (each is seeded with
/// every earlier one), mining with those shares of the power on a network
/// whose target block interval is `interval`; `None` mines on demand.
async fn start(net: &Tapped<Relays>, shares: &[Option<f64>], interval: Duration) -> Vec<Handle> {
    let mut nodes: Vec<Handle> = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        let seeds = nodes.iter().map(|n| n.url().clone()).collect();
        nodes.push(launch(net, i, *share, interval, seeds).await);
    }
    let count = nodes.len();
    let meshed = holds_within(Duration::from_secs(20), || {
        nodes.iter().all(|n| n.known_peers().len() == count - 1)
    })
    .await;
    assert!(meshed, "the nodes did not all meet");
    nodes
}

async fn stop(nodes: Vec<Handle>) {
    for node in nodes {
        node.shutdown().await;
    }
}

/// A transfer accepted by a node that owns no hash power reaches the miners
/// and is mined by one of them: without relaying it would wait forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_mined_by_whichever_miner_finds_the_next_block() {
    let net = Tapped::new(memory::Network::seeded(3), Relays::default());
    let nodes = start(
        &net,
        &[Some(0.0), Some(0.5), Some(0.5)],
        Duration::from_millis(50),
    )
    .await;
    let wallet = &nodes[0];
    // The powerless node earns coins with a block on demand (the admin's
    // way), then pays one of the miners. The miners find a block every
    // 50 ms, so the block on demand may lose a race at its height and
    // leave the wallet with nothing: then it makes another (bounded).
    let miners: Vec<_> = nodes[1..].iter().map(Handle::address).collect();
    let mut on_demand: u64 = 0;
    let mined = loop {
        wallet.mine().await.expect("a block on demand");
        on_demand += 1;
        match wallet.transfer(miners[0], 10).await {
            Ok(mined) => break mined,
            Err(TxError::Invalid(ValidationError::Overspend { .. })) if on_demand < 20 => {}
            Err(e) => panic!("the transfer is mined: {e:?} after {on_demand} blocks on demand"),
        }
    };
    let block = wallet
        .with_chain(|c| c.get(&mined.hash).cloned())
        .expect("the block is on the chain");
    assert!(
        miners.contains(&block.header.miner),
        "mined by a node with hash power, not by the node that accepted it"
    );
    assert_eq!(
        wallet.mining_stats().mined,
        on_demand,
        "a share of 0 finds nothing on its own: its blocks were on demand"
    );
    stop(nodes).await;
}

/// A node rebroadcasts the transfers it waits for, as a wallet does: one
/// made before any miner was there (so relayed to nobody) reaches the
/// miners that join later and is mined by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_transfer_is_rebroadcast_to_miners_that_come_later() {
    let net = Tapped::new(memory::Network::seeded(7), Relays::default());
    let interval = Duration::from_millis(50);
    let wallet = launch(&net, 0, Some(0.0), interval, Vec::new()).await;
    wallet.mine().await.expect("a block on demand");
    let to = Wallet::from_seed(999).address();
    let txid = wallet.submit_transfer(to, 10).await.expect("accepted");
    assert_eq!(net.tap().receivers(&txid), 0, "nobody to relay it to yet");
    let miners = vec![
        launch(&net, 1, Some(0.5), interval, vec![wallet.url().clone()]).await,
        launch(&net, 2, Some(0.5), interval, vec![wallet.url().clone()]).await,
    ];
    let mined = holds_within(Duration::from_secs(30), || {
        wallet.balance(&to).balance == 10
    })
    .await;
    assert!(mined, "the waiting transfer reached a miner and was mined");
    assert_eq!(
        wallet.mining_stats().mined,
        1,
        "not by the node without power"
    );
    for node in miners {
        node.shutdown().await;
    }
    wallet.shutdown().await;
}

/// A miner with all the power makes blocks with nothing to put in them;
/// one with none makes none, however long it runs beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_come_on_schedule_not_on_demand() {
    let net = Tapped::new(memory::Network::seeded(4), Relays::default());
    let nodes = start(&net, &[Some(1.0), Some(0.0)], Duration::from_millis(20)).await;
    let grew = holds_within(Duration::from_secs(20), || {
        nodes.iter().all(|n| n.height() >= 20)
    })
    .await;
    assert!(grew, "a full share mines empty blocks on its own");
    let full = nodes[0].mining_stats();
    let none = nodes[1].mining_stats();
    assert!(full.mined >= 20, "{full:?}");
    assert_eq!(full.hash_share, Some(1.0));
    assert_eq!(none.mined, 0, "{none:?}");
    assert_eq!(none.mined_on_best_chain, 0);
    assert!(nodes[1].status().hash_share == Some(0.0));
    stop(nodes).await;
}

/// Each node passes a new transaction on once: nobody gets it twice from
/// the same relaying node, and every node ends up holding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_relayed_once_to_every_node() {
    let net = Tapped::new(memory::Network::seeded(5), Relays::default());
    // Nobody mines on their own: the transaction stays in the mempools.
    let nodes = start(
        &net,
        &[None, Some(0.0), Some(0.0), Some(0.0), Some(0.0)],
        Duration::from_secs(1),
    )
    .await;
    nodes[0].mine().await.expect("coins");
    let all_at_height = holds_within(Duration::from_secs(20), || {
        nodes.iter().all(|n| n.height() == 1)
    })
    .await;
    assert!(all_at_height);
    // Submitted on a node that is on a schedule (share 0): kept in its
    // pool, relayed, mined by nobody.
    let payer = &nodes[1];
    let to = nodes[2].address();
    let funded = Wallet::from_seed(100);
    let tx = funded.transfer(&params().chain_id(), to, 5, 1, 0);
    let txid = payer.submit_transaction(tx).await.expect("accepted");
    let everywhere = holds_within(Duration::from_secs(20), || {
        nodes
            .iter()
            .all(|n| n.mempool().iter().any(|t| t.id() == txid))
    })
    .await;
    assert!(everywhere, "every node holds the relayed transaction");
    // Give stray duplicates time to show up, then count.
    let relays = net.tap().clone();
    let quiet = holds_within(Duration::from_secs(5), || {
        relays.receivers(&txid) >= nodes.len() - 1
    })
    .await;
    assert!(quiet, "each node but the first got it relayed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        relays.most_from_one_relay(&txid, payer.url()),
        1,
        "a node passes a transaction new to it on once to each neighbour (only its \
         originator rebroadcasts it while it waits)"
    );
    stop(nodes).await;
}

/// A relayed transaction is hostile like a block: a forged one is refused
/// with its reason, never relayed, and its sender loses standing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_transactions_are_refused_not_relayed_and_cost_the_sender() {
    let net = Tapped::new(memory::Network::seeded(6), Relays::default());
    let nodes = start(&net, &[None, None], Duration::from_secs(1)).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    a.mine().await.expect("coins");
    let synced = holds_within(Duration::from_secs(20), || b.height() == 1).await;
    assert!(synced);
    // b turns bad: what it relays to a is junk.
    let from = b.url().clone();
    let funded = Wallet::from_seed(100);
    let mut forged = funded.transfer(&params().chain_id(), b.address(), 5, 1, 0);
    forged.amount = 50;
    let refused = net.push_tx(a.url(), &from, &forged).await;
    assert!(
        matches!(&refused, Err(NetError::Refused { reason, .. }) if reason == "bad_signature"),
        "{refused:?}"
    );
    // A valid transaction accepted after the forged one reaches b; the
    // forged one is never passed on.
    let good = funded.transfer(&params().chain_id(), b.address(), 7, 1, 0);
    assert_eq!(a.receive_tx(good.clone(), None).await, Ok(TxAck::Accepted));
    let relayed = holds_within(Duration::from_secs(20), || {
        b.mempool().iter().any(|t| t.id() == good.id())
    })
    .await;
    assert!(relayed);
    assert_eq!(net.tap().count(b.url(), &forged.id()), 0, "never relayed");
    assert_eq!(net.tap().count(b.url(), &good.id()), 1, "relayed once");
    // The same transaction again is a duplicate, relayed no further.
    assert_eq!(
        a.receive_tx(good, Some(from.clone())).await,
        Ok(TxAck::Duplicate)
    );
    // Bytes that are no transaction at all: refused, and a strike.
    let garbage = a
        .receive_tx_json(b"{\"not\":\"a tx\"}", Some(from.clone()))
        .await;
    assert!(matches!(
        garbage,
        Err(TxError::Invalid(ValidationError::Malformed { .. }))
    ));
    assert!(a.known_peers().contains(&from), "two strikes: still a peer");
    let third = a.receive_tx_json(b"[]", Some(from.clone())).await;
    assert!(third.is_err());
    let dropped = holds_within(Duration::from_secs(5), || !a.known_peers().contains(&from)).await;
    assert!(
        dropped,
        "a peer that relays junk loses standing like one sending junk blocks"
    );
    let ignored = a.receive_tx(forged, Some(from)).await;
    assert_eq!(ignored, Ok(TxAck::Ignored), "a banned sender is not read");
    stop(nodes).await;
}
