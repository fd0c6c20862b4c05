//! `maintenance_ms` reaches the nodes: the same network with frequent peer
//! maintenance delivers many more messages (a status call to every peer a
//! round) than with maintenance calmed past the run's end, and both agree.

use crapcoin_sim::run::{self, Options, Outcome};
use crapcoin_sim::scenario::Scenario;

/// Ten honest nodes for 20 s of virtual time, maintaining every
/// `maintenance_ms`.
fn outcome(maintenance_ms: u64) -> Outcome {
    let text = format!(
        r#"
name = "maintenance"
seed = 3
block_interval_ms = 1000
maintenance_ms = {maintenance_ms}

[[nodes]]
name = "n"
count = 10

[latency]
kind = "uniform"
min_ms = 5
max_ms = 30

[stop]
time_ms = 20_000
"#
    );
    let scenario = Scenario::parse(&text).expect("a valid scenario");
    run::run(&scenario, 3, None, &Options::default()).expect("the run completes")
}

#[test]
fn the_maintenance_interval_sets_how_often_nodes_poll_their_peers() {
    let frequent = outcome(500);
    let calm = outcome(600_000);
    for o in [&frequent, &calm] {
        eprintln!("{}", crapcoin_sim::output::one_line(o));
        assert!(o.agreed && o.height >= 5, "the network works either way");
    }
    // 40 rounds × 10 nodes × 8 peers = 3,200 status calls, against none:
    // the calm run's messages are its gossip, which the frequent run has
    // as well (give or take the blocks its draws differ by).
    assert!(
        frequent.messages > calm.messages + 2_500,
        "status rounds every 500 ms: {} messages, every 10 min: {}",
        frequent.messages,
        calm.messages
    );
}
