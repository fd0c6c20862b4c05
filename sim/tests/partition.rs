//! A partition splits the chain and the heal reorganises the minority
//! side: after the heal every honest node is on one chain again, and the
//! minority's blocks of the split are off it. It takes the engine's peer
//! rotation: each side has more nodes than a node's target of peers (8),
//! so without it every node keeps the full table it found on its side
//! during the split, looks for no one else, and the network stays two.

use crapcoin_sim::run::{self, Options};
use crapcoin_sim::scenario::Scenario;

const SCENARIO: &str = r#"
name = "split"
seed = 4
block_interval_ms = 1000

[[nodes]]
name = "big"
count = 14
behaviour = "honest"
hash_share = 0.7

[[nodes]]
name = "small"
count = 10
behaviour = "honest"
hash_share = 0.3

[latency]
kind = "uniform"
min_ms = 5
max_ms = 30

[[faults]]
at_ms = 20_000
kind = "partition"
groups = [["big"], ["small"]]

[[faults]]
at_ms = 80_000
kind = "heal"

[stop]
time_ms = 150_000
"#;

#[test]
fn the_heal_reorganises_the_minority_onto_the_majority_chain() {
    let scenario = Scenario::parse(SCENARIO).expect("a valid scenario");
    let o = run::run(&scenario, 4, None, &Options::default()).expect("the run completes");
    eprintln!("{}", crapcoin_sim::output::one_line(&o));
    assert!(
        o.agreed,
        "split after the heal: common height {} of {}",
        o.common_height, o.height
    );
    assert!(o.common_height + 6 >= o.height);
    // 60 s of split at 0.3 of the hash power: the minority's blocks of
    // those 60 s (about 18) went stale at the heal.
    let small = o
        .groups
        .iter()
        .find(|g| g.name == "small")
        .expect("the group");
    assert!(
        small.mined >= small.on_best_chain + 8,
        "the minority's split blocks were not replaced: {small:?}"
    );
    assert!(o.reorgs > 0);
}
