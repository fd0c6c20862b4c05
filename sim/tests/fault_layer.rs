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

/// Six nodes whose calls all wait 400 ± 100 ms for 30 s, and one of
/// which loses half its calls to two others.
fn slow() -> String {
    let mut text = String::from(
        r#"
name = "slow-and-lossy"
seed = 3
block_interval_ms = 1000

[[nodes]]
name = "n"
count = 6

[latency]
kind = "uniform"
min_ms = 1
max_ms = 10
"#,
    );
    for i in 0..6 {
        text += &format!(
            "\n[[faults]]\nat_ms = 1_000\nkind = \"latency\"\nnode = \"n-{i}\"\nmean_ms = 400\njitter_ms = 100\nfor_ms = 30_000\n"
        );
    }
    text + r#"
[[faults]]
at_ms = 2_000
kind = "loss"
node = "n-1"
rate = 0.5
to = ["n-2", "n-3"]
for_ms = 30_000

[stop]
time_ms = 45_000
"#
}

#[test]
fn latency_and_loss_faults_slow_a_run_and_replay_from_its_seed() {
    let text = slow();
    let first = outcome(&text);
    let again = outcome(&text);
    eprintln!("faulty: {}", crapcoin_sim::output::one_line(&first));
    assert_eq!(first.digest, again.digest, "same seed, same run");
    assert!(first.agreed, "the faults ended 13 s before the stop");
    // Every call waited at least 300 ms while the faults lasted: blocks
    // took that long to reach another node. Without them, a few ms.
    let calm = outcome(
        &(text
            .split("[[faults]]")
            .next()
            .expect("the head")
            .to_owned()
            + "[stop]\ntime_ms = 45_000\n"),
    );
    eprintln!("calm: {}", crapcoin_sim::output::one_line(&calm));
    let median = |o: &Outcome| o.propagation_median_ms.expect("blocks propagated");
    assert!(median(&first) >= 300.0, "{} ms", median(&first));
    assert!(median(&calm) < 100.0, "{} ms", median(&calm));
}
