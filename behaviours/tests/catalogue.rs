//! Every catalogue entry against honest nodes: 5 honest nodes and 2 of the
//! entry on the in-memory network, in auto mode. Each test checks the
//! invariants of `kit::scenario::Run::check_invariants` (one agreed chain that
//! re-validates, an independent ledger replay, supply, no acknowledged
//! transfer lost, heights never fall, pools bounded) and then the evidence
//! that the attack really happened and was defended against.
//!
//! Every run is in virtual time (`kit::scenario::Time::Virtual`, on a
//! paused current-thread runtime): its outcome depends on its seed alone,
//! never on how loaded the machine is, and
//! [`a_catalogue_run_replays_from_its_seed`] proves it with the digest of
//! the event stream.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use behaviours::malicious::PeerPoisoner;
use behaviours::random::Decision;
use behaviours::registry;
use crapcoin_core::observer::DropReason;
use crapcoin_core::{Address, Event, PeerUrl};
use kit::scenario::{Call, Run, Scenario, Sent, Topology};

/// The nodes of a run whose behaviour is called `name`.
struct Attackers {
    name: String,
    urls: HashSet<PeerUrl>,
    addresses: HashSet<Address>,
    names: HashSet<String>,
}

impl Attackers {
    fn of(run: &Run, name: &str) -> Self {
        let nodes: Vec<_> = run
            .bad()
            .filter(|n| n.handle.behaviour_name() == name)
            .collect();
        assert!(!nodes.is_empty(), "{}: nobody runs {name}", run.label);
        Self {
            name: name.to_owned(),
            urls: nodes.iter().map(|n| n.handle.url().clone()).collect(),
            addresses: nodes.iter().map(|n| n.handle.address()).collect(),
            names: nodes.iter().map(|n| n.name.clone()).collect(),
        }
    }

    /// Rejections honest nodes made of what these nodes sent, by reason.
    fn rejections(&self, run: &Run) -> HashMap<&'static str, usize> {
        let mut out = HashMap::new();
        for record in run.honest_events() {
            if let Event::BlockRejected {
                reason,
                from: Some(from),
                ..
            } = &record.event
                && self.urls.contains(from)
            {
                *out.entry(reason.reason()).or_default() += 1;
            }
        }
        out
    }

    fn assert_rejected(&self, run: &Run, reasons: &[&str]) {
        let seen = self.rejections(run);
        for reason in reasons {
            assert!(
                seen.get(reason).copied().unwrap_or(0) > 0,
                "{}: no honest node rejected a {reason} block from {}; rejections: {seen:?}",
                run.label,
                self.name
            );
        }
    }

    /// How many times an honest node dropped one of these nodes for `why`.
    fn drops(&self, run: &Run, why: DropReason) -> usize {
        run.drops_of_bad()
            .iter()
            .filter(|(_, peer, w)| self.urls.contains(peer) && *w == why)
            .count()
    }

    fn assert_dropped(&self, run: &Run, why: DropReason) {
        assert!(
            self.drops(run, why) > 0,
            "{}: no honest node dropped {} as {why:?}: {:?}",
            run.label,
            self.name,
            run.drops_of_bad()
        );
    }
}

/// Checks that `name`'s attack happened in `run` and met the defence its
/// module docs promise.
fn evidence(run: &Run, name: &str, topology: Topology) {
    let bad = Attackers::of(run, name);
    let label = &run.label;
    match name {
        "honest" => {
            let rejected: Vec<_> = run
                .events
                .snapshot()
                .into_iter()
                .filter(|r| {
                    matches!(&r.event, Event::BlockRejected { reason, .. } if !reason.is_transient())
                        || matches!(&r.event, Event::PeerDropped { why: DropReason::Misbehaving, .. })
                })
                .collect();
            assert!(
                rejected.is_empty(),
                "{label}: honest nodes only, yet {rejected:?}"
            );
        }
        "double_spender" => {
            // The catalogue mines on demand, and on demand honest nodes
            // never mine a relayed transfer: the victim's payment stays
            // unconfirmed, and after its patience the attacker releases
            // its longer private branch holding the conflicting spend.
            // Honest nodes must reorg onto it and keep exactly one spend
            // (the ledger checks above). Reverting a payment confirmed by
            // k blocks with hash power is tests/hash_power.rs.
            let known = run.known_blocks();
            let onto_attacker = run.honest_events().into_iter().any(|r| match r.event {
                Event::Reorg { new_tip, .. } => known
                    .get(&new_tip)
                    .is_some_and(|b| bad.addresses.contains(&b.header.miner)),
                _ => false,
            });
            assert!(
                onto_attacker,
                "{label}: no honest node reorged onto a released double-spender branch"
            );
            let spent = run.final_chain.iter().any(|b| {
                b.tx.as_ref()
                    .is_some_and(|tx| bad.addresses.contains(&tx.from))
                    && bad.addresses.contains(&b.header.miner)
            });
            assert!(
                spent,
                "{label}: the agreed chain holds no spend the attacker mined in private"
            );
        }
        "forger" => {
            bad.assert_rejected(run, &["bad_pow", "bad_signature", "overspend"]);
            bad.assert_dropped(run, DropReason::Misbehaving);
        }
        "chain_liar" => {
            bad.assert_rejected(run, &["overspend", "bad_pow"]);
            bad.assert_dropped(run, DropReason::Misbehaving);
        }
        "peer_poisoner" => {
            let calls = run.calls.snapshot();
            let poisoned = calls.iter().any(|c| {
                matches!(c, Call::Peers { to, answer, .. }
                    if bad.urls.contains(to) && answer.iter().any(PeerPoisoner::is_ghost))
            });
            assert!(poisoned, "{label}: no honest node was answered ghosts");
            let probed = calls.iter().any(|c| {
                matches!(c, Call::Status { to, answered: false, .. } if PeerPoisoner::is_ghost(to))
            });
            assert!(probed, "{label}: no ghost was ever probed");
            for record in run.honest_events() {
                if let Event::PeerAdded { peer } = &record.event {
                    assert!(
                        !PeerPoisoner::is_ghost(peer),
                        "{label}: {} added {peer}",
                        record.node
                    );
                }
            }
            for sample in &run.samples {
                for (node, _, _, peers) in &sample.nodes {
                    assert!(
                        !run.is_honest(node) || !peers.iter().any(PeerPoisoner::is_ghost),
                        "{label}: a ghost in {node}'s peer table"
                    );
                }
            }
        }
        "selfish" => {
            let known = run.known_blocks();
            let orphaning: Vec<_> = run
                .honest_events()
                .into_iter()
                .filter_map(|r| match r.event {
                    Event::Reorg { new_tip, depth, .. } if depth >= 1 => known
                        .get(&new_tip)
                        .filter(|b| bad.addresses.contains(&b.header.miner))
                        .map(|_| depth),
                    _ => None,
                })
                .collect();
            assert!(
                !orphaning.is_empty(),
                "{label}: no honest node reorged onto a released selfish branch"
            );
        }
        "equivocator" => {
            let mut twins: HashMap<_, HashSet<_>> = HashMap::new();
            for block in run.known_blocks().values() {
                if bad.addresses.contains(&block.header.miner) {
                    twins
                        .entry((block.header.prev_hash, block.header.miner))
                        .or_default()
                        .insert(block.hash());
                }
            }
            assert!(
                twins.values().any(|hashes| hashes.len() >= 2),
                "{label}: honest nodes never saw two blocks of one height from the equivocator"
            );
        }
        "replayer" => {
            bad.assert_rejected(run, &["bad_nonce"]);
            bad.assert_dropped(run, DropReason::Misbehaving);
        }
        "flooder" => {
            bad.assert_rejected(run, &["bad_pow"]);
            let orphans = run
                .honest_events()
                .iter()
                .filter(|r| {
                    matches!(&r.event, Event::BlockOrphaned { from: Some(from), .. }
                        if bad.urls.contains(from))
                })
                .count();
            assert!(
                orphans > 0,
                "{label}: no flood orphan reached an honest node"
            );
            bad.assert_dropped(run, DropReason::Misbehaving);
        }
        "forgetful" => {
            let relayed_others = run.calls.snapshot().iter().any(|c| {
                matches!(c, Call::Push { from, sent: Sent::Block { miner, .. }, .. }
                    if bad.urls.contains(from) && !bad.addresses.contains(miner))
            });
            assert!(!relayed_others, "{label}: a forgetful node relayed a block");
            let took = run.events.snapshot().iter().any(|r| {
                bad.names.contains(&r.node)
                    && matches!(&r.event, Event::BlockAccepted { from: Some(_), .. })
            });
            assert!(took, "{label}: forgetful nodes never took a peer's block");
            if topology == Topology::Bridged {
                // Blocks crossed between the two honest groups, and only
                // through syncing from a forgetful node.
                let miners: HashMap<Address, String> = run
                    .honest()
                    .map(|n| (n.handle.address(), n.name.clone()))
                    .collect();
                let group = |name: &str| ["h0", "h1", "h2"].contains(&name);
                let known = run.known_blocks();
                let crossed = run.honest_events().iter().any(|r| match &r.event {
                    Event::BlockAccepted {
                        hash,
                        from: Some(from),
                        ..
                    } if bad.urls.contains(from) => known
                        .get(hash)
                        .and_then(|b| miners.get(&b.header.miner))
                        .is_some_and(|miner| group(miner) != group(&r.node)),
                    _ => false,
                });
                assert!(crossed, "{label}: no block crossed the forgetful bridge");
            }
        }
        "garbler" => {
            bad.assert_rejected(run, &["malformed", "bad_hash", "too_large"]);
            bad.assert_dropped(run, DropReason::Misbehaving);
        }
        "laggard" => {
            let timed_out = run.calls.snapshot().iter().any(
                |c| matches!(c, Call::Status { to, answered: false, .. } if bad.urls.contains(to)),
            );
            assert!(timed_out, "{label}: no call to a laggard timed out");
            bad.assert_dropped(run, DropReason::Unresponsive);
        }
        "time_traveller" => {
            bad.assert_rejected(run, &["timestamp_too_new"]);
            assert_eq!(
                bad.drops(run, DropReason::Misbehaving),
                0,
                "{label}: a clock problem was punished as misbehaviour"
            );
            let ahead = run.final_chain.iter().any(|b| {
                bad.addresses.contains(&b.header.miner) && b.header.timestamp > run.now_ms()
            });
            assert!(
                ahead,
                "{label}: no block stamped ahead (within the limit) was agreed on"
            );
        }
        "amnesiac" => {
            for name in &bad.names {
                let heights = run.heights_of(name);
                assert!(
                    heights.windows(2).any(|w| w[1] < w[0]),
                    "{label}: {name} never forgot its chain: {heights:?}"
                );
            }
        }
        "random" => {
            let seen = bad.rejections(run);
            let attacks: usize = seen.values().sum();
            assert!(
                attacks > 0,
                "{label}: the random mix never sent an invalid block"
            );
        }
        other => panic!("no evidence check for {other}"),
    }
}

/// Runs the catalogue entry `name` and checks invariants and evidence.
async fn attack(name: &str, topology: Topology) {
    let run = Scenario::catalogue(name)
        .topology(topology)
        .in_virtual_time()
        .run()
        .await;
    run.check_invariants();
    let members: HashSet<String> = run.bad().map(|n| n.handle.behaviour_name()).collect();
    for member in &members {
        evidence(&run, member, topology);
    }
    run.shutdown().await;
}

macro_rules! catalogue_test {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "current_thread", start_paused = true)]
        async fn $name() {
            attack(stringify!($name), Topology::Mesh).await;
        }
    )*};
}

catalogue_test!(
    honest,
    double_spender,
    forger,
    chain_liar,
    peer_poisoner,
    selfish,
    equivocator,
    replayer,
    flooder,
    garbler,
    laggard,
    time_traveller,
    amnesiac,
    random,
    malicious,
    stupid,
);

/// The forgetful nodes are the only link between two honest groups, so
/// the groups agree only if honest nodes sync from peers that are ahead.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn forgetful() {
    attack("forgetful", Topology::Bridged).await;
}

/// Every name in the registry has a test above.
#[test]
fn every_catalogue_entry_is_tested() {
    let tested = [
        "honest",
        "double_spender",
        "forger",
        "chain_liar",
        "peer_poisoner",
        "selfish",
        "equivocator",
        "replayer",
        "flooder",
        "forgetful",
        "garbler",
        "laggard",
        "time_traveller",
        "amnesiac",
        "random",
        "malicious",
        "stupid",
    ];
    for (name, _) in registry::list() {
        assert!(tested.contains(name), "{name} has no network test");
    }
}

/// Two `random` nodes with the same seed pick the same inner behaviour for
/// the n-th decision of every kind; a third with another seed does not.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn random_with_a_fixed_seed_picks_the_same_twice() {
    let built: Arc<Mutex<Vec<Arc<behaviours::random::Behaviour>>>> = Arc::default();
    let keep = built.clone();
    let mut scenario = Scenario::custom("random twice", move |i| {
        let seed = if i < 2 { 42 } else { 43 };
        let options = registry::Options {
            seed,
            interval: std::time::Duration::from_millis(100),
        };
        let behaviour = Arc::new(registry::random(&options));
        keep.lock().expect("lock").push(behaviour.clone());
        behaviour
    });
    scenario.bad = 3;
    scenario.run_for = std::time::Duration::from_secs(3);
    let run = scenario.in_virtual_time().run().await;
    let built = built.lock().expect("lock").clone();
    assert_eq!(built.len(), 3);
    let by_decision = |b: &behaviours::random::Behaviour, d: Decision| -> Vec<String> {
        b.history()
            .into_iter()
            .filter(|p| p.decision == d)
            .map(|p| p.behaviour)
            .collect()
    };
    let mut compared = 0;
    let mut differs = false;
    for decision in Decision::ALL {
        let (a, b, c) = (
            by_decision(&built[0], decision),
            by_decision(&built[1], decision),
            by_decision(&built[2], decision),
        );
        let n = a.len().min(b.len());
        assert_eq!(a[..n], b[..n], "{decision:?} picks differ for one seed");
        compared += n;
        let m = a.len().min(c.len());
        differs |= a[..m] != c[..m];
    }
    assert!(compared >= 50, "only {compared} picks to compare");
    assert!(differs, "another seed picked exactly the same");
    run.shutdown().await;
}

/// Runs the catalogue entry `name` with `seed` in virtual time on a fresh
/// paused runtime of its own, checks it, and returns its digest.
fn digest_of(name: &str, seed: u64) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let run = Scenario::catalogue(name)
            .seeded(seed)
            .in_virtual_time()
            .run()
            .await;
        run.check_invariants();
        evidence(&run, name, Topology::Mesh);
        let digest = run.digest();
        run.shutdown().await;
        digest
    })
}

/// Replay: one catalogue scenario run twice with one seed gives the same
/// event stream (equal digests), and with another seed another one, so
/// the digest is no constant. In wall time the two runs would differ
/// (message timings and the machine's load decide the order).
#[test]
fn a_catalogue_run_replays_from_its_seed() {
    let first = digest_of("double_spender", 7);
    let again = digest_of("double_spender", 7);
    assert_eq!(first, again, "one seed, two event streams");
    let other = digest_of("double_spender", 8);
    assert_ne!(first, other, "two seeds, one event stream");
}
