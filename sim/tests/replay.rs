//! Replay: the same seed and the same build give a bit-identical run.
//! A 200-node scenario with misbehaving nodes, latency between regions,
//! loss, a partition, crashes, a pause and a skewed clock runs twice with
//! one seed and once with another: the first two event streams hash to
//! the same digest, the third to another.

use crapcoin_sim::run::{self, Options};
use crapcoin_sim::scenario::{Run, Scenario};

const SCENARIO: &str = r#"
name = "replay"
seeds = [11, 12]
block_interval_ms = 1000
loss = 0.01

[[nodes]]
name = "h"
count = 188
behaviour = "honest"
hash_share = 0.8
region = "eu"

[[nodes]]
name = "selfish"
count = 4
behaviour = "selfish"
hash_share = 0.1
region = "us"

[[nodes]]
name = "ds"
count = 4
behaviour = "double_spender"
hash_share = 0.05
region = "us"

[[nodes]]
name = "rnd"
count = 4
behaviour = "random"
hash_share = 0.05
region = "eu"

[latency]
kind = "exponential"
mean_ms = 20

[latency.regions]
names = ["eu", "us"]
one_way_ms = [[2, 40], [40, 2]]

[transfers]
rate_per_sec = 2

[[faults]]
at_ms = 5_000
kind = "crash"
node = "h-10"

[[faults]]
at_ms = 6_000
kind = "pause"
node = "h-30"
for_ms = 3_000

[[faults]]
at_ms = 7_000
kind = "clock_skew"
node = "h-40"
skew_ms = 5_000

[[faults]]
at_ms = 8_000
kind = "partition"
groups = [["h-0", "h-1", "h-2", "h-3", "h-4", "selfish"]]

[[faults]]
at_ms = 10_000
kind = "crash"
node = "h-20"

[[faults]]
at_ms = 12_000
kind = "restart"
node = "h-10"

[[faults]]
at_ms = 16_000
kind = "heal"

[stop]
time_ms = 25_000
"#;

#[test]
fn the_same_seed_replays_the_same_run_and_another_seed_does_not() {
    let scenario = Scenario::parse(SCENARIO).expect("a valid scenario");
    assert_eq!(scenario.node_count(), 200);
    let with = |seed: u64| Run {
        seed,
        value: None,
        scenario: scenario.clone(),
    };
    let runs = [with(11), with(11), with(12)];
    let results = run::run_all(&runs, 3, &Options::default(), &|_, _| {});
    let outcomes: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("the run completes"))
        .collect();
    for o in &outcomes {
        eprintln!(
            "seed {}: {} events, height {}, {} mined, {} reorgs, {} transfers, digest {}",
            o.seed, o.events, o.height, o.blocks_mined, o.reorgs, o.transfers, o.digest
        );
        // The run did what the scenario says: blocks, forks, transfers.
        assert!(o.height >= 10, "height {}", o.height);
        assert!(o.reorgs > 0, "no reorg after a partition");
        assert!(o.transfers > 10, "{} transfers", o.transfers);
        assert_eq!(o.virtual_ms, 25_000);
    }
    assert_eq!(
        outcomes[0].digest, outcomes[1].digest,
        "same seed, same run"
    );
    assert_eq!(outcomes[0].events, outcomes[1].events);
    assert_eq!(outcomes[0].height, outcomes[1].height);
    assert_ne!(
        outcomes[0].digest, outcomes[2].digest,
        "another seed, another run"
    );
}
