//! The fault layer's kinds in a simulation: a partition's bridge keeps
//! the sides on one chain (without it they split), and latency and loss
//! faults change a run yet replay exactly from its seed.

use crapcoin_sim::run::{self, Options, Outcome};
use crapcoin_sim::scenario::Scenario;

/// Two sides and one node between them, split for the last 50 s of the
/// run; `bridge` is the partition's `bridge` line (or nothing).
fn split(bridge: &str) -> String {
    format!(
        r#"
name = "bridged"
seed = 11
block_interval_ms = 1000

[[nodes]]
name = "left"
count = 4
hash_share = 0.5

[[nodes]]
name = "right"
count = 3
hash_share = 0.45

[[nodes]]
name = "mid"
count = 1
hash_share = 0.05

[latency]
kind = "uniform"
min_ms = 5
max_ms = 30

[[faults]]
at_ms = 10_000
kind = "partition"
groups = [["left"], ["right"]]
{bridge}

[stop]
time_ms = 60_000
"#
    )
}

fn outcome(text: &str) -> Outcome {
    let scenario = Scenario::parse(text).expect("a valid scenario");
    let seed = scenario.seeds[0];
    run::run(&scenario, seed, None, &Options::default()).expect("the run completes")
}

#[test]
fn a_bridge_keeps_a_partitioned_network_on_one_chain() {
    let bridged = outcome(&split("bridge = [\"mid\"]"));
    eprintln!("bridged: {}", crapcoin_sim::output::one_line(&bridged));
    assert!(
        bridged.agreed && bridged.common_height + 6 >= bridged.height,
        "the bridge relays between the sides: common height {} of {}",
        bridged.common_height,
        bridged.height
    );
    // Without the bridge, `mid` is on a third side: 50 s apart, the
    // sides' chains differ from the split on.
    let cut = outcome(&split(""));
    eprintln!("cut: {}", crapcoin_sim::output::one_line(&cut));
    assert!(
        cut.common_height + 10 < cut.height,
        "sides without a bridge stay apart: common height {} of {}",
        cut.common_height,
        cut.height
    );
    assert!(bridged.common_height > cut.common_height + 10);
}

const SLOW: &str = r#"
name = "slow-and-lossy"
seed = 3
block_interval_ms = 1000

[[nodes]]
name = "n"
count = 6

[[faults]]
at_ms = 5_000
kind = "latency"
node = "n-0"
mean_ms = 400
jitter_ms = 300
for_ms = 20_000

[[faults]]
at_ms = 6_000
kind = "loss"
node = "n-1"
rate = 0.5
to = ["n-2", "n-3"]
for_ms = 20_000

[stop]
time_ms = 40_000
"#;

#[test]
fn latency_and_loss_faults_change_a_run_and_replay_from_its_seed() {
    let first = outcome(SLOW);
    let again = outcome(SLOW);
    assert_eq!(first.digest, again.digest, "same seed, same run");
    assert!(first.agreed, "the faults ended 14 s before the stop");
    // The same run without the two faults is another run.
    let calm = SLOW
        .split("[[faults]]")
        .next()
        .expect("the head")
        .to_owned()
        + "[stop]\ntime_ms = 40_000\n";
    let calm = outcome(&calm);
    assert_ne!(first.digest, calm.digest, "the faults changed nothing");
}
