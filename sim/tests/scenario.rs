//! The scenario file: the shipped examples load, every kind of bad input is
//! refused with its line and a reason naming the key, and no text makes the
//! parser panic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crapcoin_sim::scenario::{
    FaultKind, LinkDelay, MAX_FILE_BYTES, Scenario, ScenarioError, SweepParam,
};
use proptest::prelude::*;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// A valid scenario the refusal cases below start from (one key changed).
const BASE: &str = r#"name = "base"
seeds = [1, 2]
block_interval_ms = 1000

[[nodes]]
name = "honest"
count = 4
hash_share = 0.5

[[nodes]]
name = "evil"
count = 2
behaviour = "selfish"
region = "eu"

[latency]
kind = "uniform"
min_ms = 1
max_ms = 20

[latency.regions]
names = ["eu", "us"]
one_way_ms = [[5, 40], [40, 5]]

[[faults]]
at_ms = 1000
kind = "crash"
node = "honest-1"

[[faults]]
at_ms = 2000
kind = "restart"
node = "honest-1"

[stop]
height = 10
"#;

#[test]
fn base_is_valid() {
    let s = Scenario::parse(BASE).expect("base parses");
    assert_eq!(s.name, "base");
    assert_eq!(s.seeds, vec![1, 2]);
    assert_eq!(s.groups.len(), 2);
    assert_eq!(
        s.groups[1].hash_share, 0.5,
        "the group without a share takes the rest"
    );
    assert_eq!(s.groups[1].region.as_deref(), Some("eu"));
}

#[test]
fn shipped_examples_load() {
    let fork = Scenario::load(&example("fork-rate.toml")).expect("fork-rate.toml");
    assert_eq!(fork.node_count(), 100);
    assert!(fork.groups.iter().all(|g| g.behaviour == "honest"));
    assert_eq!(
        fork.latency.link,
        LinkDelay::Uniform {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200)
        }
    );
    assert_eq!(fork.stop.height, Some(200));
    let sweep = fork.sweep.as_ref().expect("fork-rate sweeps");
    assert_eq!(sweep.parameter, SweepParam::BlockIntervalMs);
    assert_eq!(sweep.values, vec![250.0, 500.0, 1000.0, 2000.0, 4000.0]);
    let runs = fork.runs();
    assert_eq!(runs.len(), 5 * fork.seeds.len());
    assert_eq!(
        runs[0].scenario.block_interval,
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        runs.last().expect("runs").scenario.block_interval,
        Some(Duration::from_millis(4000))
    );

    let selfish = Scenario::load(&example("selfish.toml")).expect("selfish.toml");
    let sweep = selfish.sweep.as_ref().expect("selfish sweeps");
    assert_eq!(sweep.parameter, SweepParam::HashShare("selfish".into()));
    assert_eq!(sweep.values.first(), Some(&0.1));
    assert_eq!(sweep.values.last(), Some(&0.45));
    assert!(selfish.groups.iter().any(|g| g.behaviour == "selfish"));
    assert!(selfish.groups.iter().any(|g| g.behaviour == "honest"));

    let partition = Scenario::load(&example("partition.toml")).expect("partition.toml");
    assert_eq!(partition.latency.regions, vec!["eu", "us"]);
    assert_eq!(partition.stop.time, Some(Duration::from_secs(300)));
    let kinds: Vec<(u64, &FaultKind)> = partition
        .faults
        .iter()
        .map(|f| (f.at.as_secs(), &f.kind))
        .collect();
    assert!(matches!(kinds[0], (60, FaultKind::Partition { .. })));
    assert!(matches!(kinds[1], (90, FaultKind::Crash { .. })));
    assert!(matches!(kinds[2], (150, FaultKind::Restart { .. })));
    assert!(matches!(kinds[3], (180, FaultKind::Heal)));
}

#[test]
fn nodes_are_expanded_in_group_order() {
    let s = Scenario::parse(BASE).expect("base");
    let nodes = s.nodes();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "honest-0", "honest-1", "honest-2", "honest-3", "evil-0", "evil-1"
        ]
    );
    assert_eq!(nodes[0].group, 0);
    assert_eq!(nodes[5].group, 1);
    assert_eq!(nodes[0].hash_share, 0.5 / 4.0);
    assert_eq!(nodes[4].hash_share, 0.25);
    assert_eq!(nodes[4].behaviour, "selfish");
    assert_eq!(nodes[0].region, None);
    assert_eq!(nodes[4].region, Some(0));
    let total: f64 = nodes.iter().map(|n| n.hash_share).sum();
    assert!((total - 1.0).abs() < 1e-12, "{total}");
}

#[test]
fn defaults() {
    let s = Scenario::parse("[[nodes]]\nname = \"n\"\n[stop]\ntime_ms = 5000\n").expect("minimal");
    assert_eq!(s.name, "scenario");
    assert_eq!(s.seeds, vec![1]);
    assert_eq!(s.difficulty, 8);
    assert_eq!(s.block_interval, Some(Duration::from_millis(1000)));
    assert_eq!(s.max_peers, 8);
    assert_eq!(s.maintenance, None, "scaled with the node count");
    assert_eq!(s.groups[0].count, 1);
    assert_eq!(s.groups[0].behaviour, "honest");
    assert_eq!(s.groups[0].hash_share, 1.0);
    assert_eq!(
        s.latency.link,
        LinkDelay::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(20)
        }
    );
    assert_eq!(s.loss, 0.0);
    assert_eq!(s.transfers.rate_per_sec, 1.0);
    assert_eq!(s.transfers.max, None);
    assert!(s.faults.is_empty());
    assert_eq!(s.stop.height, None);
    assert!(s.sweep.is_none());
    assert_eq!(s.runs().len(), 1);
}

#[test]
fn maintenance_interval_is_read_in_milliseconds() {
    for (written, expected) in [
        ("100", Duration::from_millis(100)),
        ("2_500.5", Duration::from_micros(2_500_500)),
        ("3_600_000", Duration::from_secs(3_600)),
    ] {
        let text = BASE.replace(
            "block_interval_ms = 1000",
            &format!("block_interval_ms = 1000\nmaintenance_ms = {written}"),
        );
        let s = Scenario::parse(&text).expect(written);
        assert_eq!(s.maintenance, Some(expected), "{written}");
        assert!(
            s.runs()
                .iter()
                .all(|r| r.scenario.maintenance == Some(expected)),
            "every run keeps it"
        );
    }
}

#[test]
fn on_demand_mining_and_names_normalised() {
    let s = Scenario::parse(
        "block_interval_ms = \"on_demand\"\n[[nodes]]\nname = \"a\"\nbehaviour = \" double-spender \"\nhash_share = 0\n[stop]\nheight = 3\n",
    )
    .expect("on demand");
    assert_eq!(s.block_interval, None);
    assert_eq!(s.groups[0].behaviour, "double_spender");
}

#[test]
fn partition_expands_groups_and_adds_the_unlisted_nodes() {
    let text = BASE.replace(
        "[stop]",
        "[[faults]]\nat_ms = 500\nkind = \"partition\"\ngroups = [[\"evil\", \"honest-0\"]]\n\n[stop]",
    );
    let s = Scenario::parse(&text).expect("partition");
    // Sorted by time: the partition at 500 ms comes first.
    let FaultKind::Partition { groups, .. } = &s.faults[0].kind else {
        panic!("first fault is the partition: {:?}", s.faults);
    };
    assert_eq!(
        groups,
        &vec![
            vec!["evil-0".to_owned(), "evil-1".into(), "honest-0".into()],
            vec!["honest-1".to_owned(), "honest-2".into(), "honest-3".into()],
        ]
    );
    assert_eq!(s.faults[0].line, 35, "the line of its [[faults]] header");
}

#[test]
fn faults_at_the_same_time_keep_their_file_order() {
    let text = BASE.replace(
        "[stop]",
        "[[faults]]\nat_ms = 1000\nkind = \"heal\"\n\n[[faults]]\nat_ms = 1000\nkind = \"isolate\"\nnode = \"evil-0\"\n\n[[faults]]\nat_ms = 0\nkind = \"clock_skew\"\nnode = \"evil-1\"\nskew_ms = -3000\n\n[stop]",
    );
    let s = Scenario::parse(&text).expect("faults");
    let kinds: Vec<&FaultKind> = s.faults.iter().map(|f| &f.kind).collect();
    assert!(matches!(
        kinds[0],
        FaultKind::ClockSkew { skew_ms: -3000, .. }
    ));
    assert!(matches!(kinds[1], FaultKind::Crash { .. }));
    assert!(matches!(kinds[2], FaultKind::Heal));
    assert!(matches!(kinds[3], FaultKind::Isolate { .. }));
    assert!(matches!(kinds[4], FaultKind::Restart { .. }));
}

#[test]
fn hash_share_sweep_keeps_the_other_groups_in_proportion() {
    let s = Scenario::load(&example("selfish.toml")).expect("selfish");
    for run in s.runs() {
        let value = run.value.expect("swept");
        let groups = &run.scenario.groups;
        assert_eq!(groups[0].hash_share, value);
        assert!((groups[1].hash_share - (1.0 - value)).abs() < 1e-12);
        assert_eq!(run.scenario.seeds, vec![run.seed]);
        assert!(run.scenario.sweep.is_none());
    }
}

#[test]
fn latency_sweep_moves_the_mean_and_keeps_the_shape() {
    let text = BASE.replace(
        "[stop]",
        "[sweep]\nparameter = \"latency_ms\"\nvalues = [21, 105]\n\n[stop]",
    );
    let s = Scenario::parse(&text).expect("latency sweep");
    let runs = s.runs();
    assert_eq!(runs.len(), 4);
    assert_eq!(
        runs[2].scenario.latency.link,
        LinkDelay::Uniform {
            min: Duration::from_millis(10),
            max: Duration::from_millis(200)
        }
    );
    assert_eq!(
        runs[0].scenario.latency.link.mean(),
        Duration::from_millis(21)
    );
}

/// One refusal: the text, the line the error must name, and a word of the
/// reason.
struct Bad {
    case: &'static str,
    text: String,
    line: usize,
    word: &'static str,
}

fn bad(case: &'static str, from: &str, to: &str, line: usize, word: &'static str) -> Bad {
    assert!(BASE.contains(from), "{case}: {from:?} is not in BASE");
    Bad {
        case,
        text: BASE.replacen(from, to, 1),
        line,
        word,
    }
}

fn refusals() -> Vec<Bad> {
    let add = |case, extra: &str, line, word| Bad {
        case,
        text: BASE.replace("[stop]", &format!("{extra}\n[stop]")),
        line,
        word,
    };
    vec![
        bad(
            "unknown top-level key",
            "seeds = [1, 2]",
            "seeds = [1, 2]\ncolour = 3",
            3,
            "colour",
        ),
        bad(
            "unknown group key",
            "count = 2\n",
            "count = 2\nspeed = 9\n",
            13,
            "speed",
        ),
        bad("unknown table", "[latency]\n", "[latancy]\n", 16, "latancy"),
        bad("syntax error", "count = 4", "count = = 4", 7, "count"),
        bad("wrong type", "count = 4", "count = \"four\"", 7, "count"),
        bad(
            "negative latency",
            "min_ms = 1",
            "min_ms = -1",
            18,
            "min_ms",
        ),
        bad("NaN latency", "max_ms = 20", "max_ms = nan", 19, "max_ms"),
        bad("max below min", "max_ms = 20", "max_ms = 0.5", 19, "max_ms"),
        bad(
            "key of another latency kind",
            "max_ms = 20",
            "max_ms = 20\nmean_ms = 4",
            20,
            "mean_ms",
        ),
        bad(
            "unknown latency kind",
            "kind = \"uniform\"",
            "kind = \"gaussian\"",
            17,
            "kind",
        ),
        bad(
            "negative region latency",
            "[[5, 40], [40, 5]]",
            "[[5, 40], [-40, 5]]",
            23,
            "one_way_ms",
        ),
        bad(
            "region matrix not square",
            "[[5, 40], [40, 5]]",
            "[[5, 40], [40]]",
            23,
            "one_way_ms",
        ),
        bad(
            "unknown region",
            "region = \"eu\"",
            "region = \"asia\"",
            14,
            "region",
        ),
        bad(
            "zero hash share",
            "hash_share = 0.5",
            "hash_share = 0",
            8,
            "hash_share",
        ),
        bad(
            "negative hash share",
            "hash_share = 0.5",
            "hash_share = -0.5",
            8,
            "hash_share",
        ),
        bad(
            "shares above one",
            "region = \"eu\"",
            "region = \"eu\"\nhash_share = 0.6",
            15,
            "hash_share",
        ),
        bad(
            "nothing left for a group without a share",
            "hash_share = 0.5",
            "hash_share = 1.0",
            10,
            "hash_share",
        ),
        bad(
            "unknown behaviour",
            "behaviour = \"selfish\"",
            "behaviour = \"saint\"",
            13,
            "behaviour",
        ),
        bad(
            "duplicate group name",
            "name = \"evil\"",
            "name = \"honest\"",
            11,
            "name",
        ),
        bad(
            "bad group name",
            "name = \"evil\"",
            "name = \"Evil One\"",
            11,
            "name",
        ),
        bad("zero nodes", "count = 2", "count = 0", 12, "count"),
        bad("too many nodes", "count = 2", "count = 199997", 12, "count"),
        bad(
            "loss of one",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\nloss = 1.0",
            4,
            "loss",
        ),
        bad(
            "negative loss",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\nloss = -0.1",
            4,
            "loss",
        ),
        bad(
            "difficulty too high",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\ndifficulty = 25",
            4,
            "difficulty",
        ),
        bad(
            "difficulty zero",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\ndifficulty = 0",
            4,
            "difficulty",
        ),
        bad(
            "max_peers zero",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\nmax_peers = 0",
            4,
            "max_peers",
        ),
        bad(
            "maintenance too often",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\nmaintenance_ms = 99.5",
            4,
            "maintenance_ms",
        ),
        bad(
            "maintenance over an hour",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\nmaintenance_ms = 3_600_001",
            4,
            "maintenance_ms",
        ),
        bad(
            "negative maintenance",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\nmaintenance_ms = -1",
            4,
            "maintenance_ms",
        ),
        bad(
            "maintenance word",
            "block_interval_ms = 1000",
            "block_interval_ms = 1000\nmaintenance_ms = \"rarely\"",
            4,
            "maintenance_ms",
        ),
        bad(
            "block interval zero",
            "block_interval_ms = 1000",
            "block_interval_ms = 0",
            3,
            "block_interval_ms",
        ),
        bad(
            "block interval word",
            "block_interval_ms = 1000",
            "block_interval_ms = \"fast\"",
            3,
            "block_interval_ms",
        ),
        bad(
            "seed and seeds",
            "name = \"base\"",
            "name = \"base\"\nseed = 4",
            3,
            "seed",
        ),
        bad(
            "negative seed",
            "seeds = [1, 2]",
            "seeds = [1, -2]",
            2,
            "seeds",
        ),
        bad(
            "duplicate seed",
            "seeds = [1, 2]",
            "seeds = [1, 1]",
            2,
            "seeds",
        ),
        bad("empty seeds", "seeds = [1, 2]", "seeds = []", 2, "seeds"),
        bad(
            "unknown fault node",
            "node = \"honest-1\"",
            "node = \"honest-9\"",
            28,
            "node",
        ),
        bad(
            "unknown fault kind",
            "kind = \"crash\"",
            "kind = \"explode\"",
            27,
            "kind",
        ),
        bad(
            "restart without crash",
            "kind = \"crash\"",
            "kind = \"pause\"\nfor_ms = 10",
            31,
            "restart",
        ),
        bad(
            "restart before its crash",
            "at_ms = 1000",
            "at_ms = 3000",
            30,
            "restart",
        ),
        bad(
            "negative fault time",
            "at_ms = 1000",
            "at_ms = -1",
            26,
            "at_ms",
        ),
        bad(
            "fault key of another kind",
            "node = \"honest-1\"",
            "node = \"honest-1\"\nskew_ms = 5",
            29,
            "skew_ms",
        ),
        add(
            "pause without duration",
            "[[faults]]\nat_ms = 5\nkind = \"pause\"\nnode = \"evil-0\"\n",
            35,
            "for_ms",
        ),
        add(
            "pause of zero",
            "[[faults]]\nat_ms = 5\nkind = \"pause\"\nnode = \"evil-0\"\nfor_ms = 0\n",
            39,
            "for_ms",
        ),
        add(
            "skew too far",
            "[[faults]]\nat_ms = 5\nkind = \"clock_skew\"\nnode = \"evil-0\"\nskew_ms = 99999999999999\n",
            39,
            "skew_ms",
        ),
        add(
            "crash twice",
            "[[faults]]\nat_ms = 1500\nkind = \"crash\"\nnode = \"honest-1\"\n",
            35,
            "crash",
        ),
        add(
            "partition naming unknown nodes",
            "[[faults]]\nat_ms = 5\nkind = \"partition\"\ngroups = [[\"honest\"], [\"ghost-1\"]]\n",
            38,
            "ghost-1",
        ),
        add(
            "partition with an empty group",
            "[[faults]]\nat_ms = 5\nkind = \"partition\"\ngroups = [[\"honest\"], []]\n",
            38,
            "empty",
        ),
        add(
            "partition without groups",
            "[[faults]]\nat_ms = 5\nkind = \"partition\"\n",
            35,
            "groups",
        ),
        add(
            "partition splitting nothing",
            "[[faults]]\nat_ms = 5\nkind = \"partition\"\ngroups = [[\"honest\", \"evil\"]]\n",
            38,
            "nothing",
        ),
        add(
            "node in two partition groups",
            "[[faults]]\nat_ms = 5\nkind = \"partition\"\ngroups = [[\"honest\"], [\"honest-2\"]]\n",
            38,
            "honest-2",
        ),
        add(
            "isolate a group",
            "[[faults]]\nat_ms = 5\nkind = \"isolate\"\nnode = \"evil\"\n",
            38,
            "node",
        ),
        bad(
            "stop without time or height",
            "height = 10",
            "# nothing",
            35,
            "height",
        ),
        bad(
            "stop at height zero",
            "height = 10",
            "height = 0",
            36,
            "height",
        ),
        bad(
            "stop time zero",
            "height = 10",
            "time_ms = 0",
            36,
            "time_ms",
        ),
        bad("no stop", "[stop]\nheight = 10\n", "", 0, "stop"),
        Bad {
            case: "no nodes",
            text: "name = \"empty\"\n[stop]\nheight = 3\n".into(),
            line: 0,
            word: "nodes",
        },
        add(
            "unknown sweep parameter",
            "[sweep]\nparameter = \"colour\"\nvalues = [1]\n",
            36,
            "parameter",
        ),
        add(
            "sweep of an unknown group's share",
            "[sweep]\nparameter = \"hash_share:ghost\"\nvalues = [0.1]\n",
            36,
            "ghost",
        ),
        add(
            "sweep value impossible",
            "[sweep]\nparameter = \"loss\"\nvalues = [0.1,\n 1.5]\n",
            38,
            "values",
        ),
        add(
            "sweep share above what the others hold",
            "[sweep]\nparameter = \"hash_share:honest\"\nvalues = [1.0]\n",
            37,
            "values",
        ),
        add(
            "empty sweep",
            "[sweep]\nparameter = \"loss\"\nvalues = []\n",
            37,
            "values",
        ),
        add(
            "sweep too large",
            &format!(
                "[sweep]\nparameter = \"loss\"\nvalues = [{}]\n",
                vec!["0.1"; 501].join(", ")
            ),
            37,
            "too large",
        ),
        add(
            "sweep with too many values",
            &format!(
                "[sweep]\nparameter = \"loss\"\nvalues = [{}]\n",
                vec!["0.1"; 1001].join(", ")
            ),
            37,
            "values",
        ),
    ]
}

#[test]
fn bad_input_is_refused_with_its_line_and_key() {
    let mut failures = Vec::new();
    for Bad {
        case,
        text,
        line,
        word,
    } in refusals()
    {
        match Scenario::parse(&text) {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(ScenarioError {
                line: got, reason, ..
            }) => {
                if got != line || !reason.contains(word) {
                    failures.push(format!(
                        "{case}: line {got} (want {line}), reason {reason:?} (want {word:?})"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn too_many_seeds_and_nodes_are_refused() {
    let seeds: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let text = BASE.replace("seeds = [1, 2]", &format!("seeds = [{}]", seeds.join(", ")));
    let e = Scenario::parse(&text).expect_err("1,001 seeds");
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("seeds"), "{e}");

    let e = Scenario::parse_with_memory(BASE, 1024).expect_err("6 nodes in 1 KiB");
    assert_eq!(e.line, 7, "the count that no longer fits");
    assert!(e.reason.contains("too large"), "{e}");
}

#[test]
fn load_refuses_large_files_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("crapcoin-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let big = dir.join("big.toml");
    let padding = "# padding\n".repeat((MAX_FILE_BYTES as usize / 10) + 1);
    std::fs::write(&big, format!("{BASE}{padding}")).expect("write");
    let e = Scenario::load(&big).expect_err("over 1 MiB");
    assert!(e.reason.contains("larger"), "{e}");
    assert!(e.to_string().contains("big.toml"), "{e}");

    let named = dir.join("my-run.toml");
    std::fs::write(&named, BASE.replace("name = \"base\"\n", "")).expect("write");
    assert_eq!(Scenario::load(&named).expect("loads").name, "my-run");
    std::fs::write(&named, BASE.replace("count = 4", "count = -4")).expect("write");
    let e = Scenario::load(&named).expect_err("negative count");
    assert_eq!(e.line, 7);
    assert!(
        e.to_string()
            .starts_with(&format!("{}: line 7:", named.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn every_truncation_parses_or_is_refused() {
    for file in ["fork-rate.toml", "selfish.toml", "partition.toml"] {
        let text = std::fs::read_to_string(example(file)).expect("example");
        for end in 0..=text.len() {
            if let Some(prefix) = text.get(..end) {
                if let Err(e) = Scenario::parse(prefix) {
                    assert!(e.line <= prefix.lines().count() + 1, "{file}[..{end}]: {e}");
                }
            }
        }
    }
    for end in 0..=BASE.len() {
        let _ = Scenario::parse(&BASE[..end]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any edit of a valid file (a span replaced by arbitrary text) parses
    /// or is refused with a line inside the file.
    #[test]
    fn mangled_scenarios_never_panic(
        start in 0usize..BASE.len(),
        len in 0usize..16,
        insert in "[ -~\n]{0,12}",
    ) {
        let end = (start + len).min(BASE.len());
        let text = format!("{}{}{}", &BASE[..start], insert, &BASE[end..]);
        if let Err(e) = Scenario::parse(&text) {
            prop_assert!(e.line <= text.lines().count() + 1, "{}", e);
        }
    }

    /// Numbers of every sign and size in every numeric key never panic.
    #[test]
    fn extreme_numbers_never_panic(
        key in prop::sample::select(vec![
            "min_ms = 1", "max_ms = 20", "count = 4", "hash_share = 0.5",
            "at_ms = 1000", "height = 10", "block_interval_ms = 1000",
        ]),
        value in prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:?}")),
            Just("inf".to_owned()), Just("-inf".to_owned()), Just("nan".to_owned()),
        ],
    ) {
        let name = key.split(' ').next().expect("key");
        let text = BASE.replacen(key, &format!("{name} = {value}"), 1);
        let _ = Scenario::parse(&text);
    }
}

/// A network of `nodes` honest nodes with `partitions` partition faults,
/// run with `seeds` seeds.
fn partitioned(nodes: usize, partitions: usize, seeds: usize) -> String {
    let seeds: Vec<String> = (0..seeds).map(|i| i.to_string()).collect();
    let mut text = format!(
        "seeds = [{}]\n[[nodes]]\nname = \"n\"\ncount = {nodes}\n[stop]\nheight = 5\n",
        seeds.join(", ")
    );
    for i in 0..partitions {
        text.push_str(&format!(
            "[[faults]]\nat_ms = {i}\nkind = \"partition\"\ngroups = [[\"n-0\"]]\n"
        ));
    }
    text
}

#[test]
fn fault_schedules_too_large_to_expand_or_copy_are_refused() {
    // 10 partitions of 200,000 nodes expand to 2,000,000 names: the limit.
    let at_limit = partitioned(200_000, 10, 1);
    let s = Scenario::parse_with_memory(&at_limit, u64::MAX).expect("at the limit");
    let FaultKind::Partition { groups, .. } = &s.faults[9].kind else {
        panic!("a partition");
    };
    assert_eq!(
        groups.iter().map(Vec::len).collect::<Vec<_>>(),
        [1, 199_999]
    );
    // An eleventh is refused at its `kind` line (9 + 4 × 10).
    let e = Scenario::parse_with_memory(&partitioned(200_000, 11, 1), u64::MAX)
        .expect_err("one partition too many");
    assert_eq!(e.line, 49, "{e}");
    assert!(e.reason.contains("partition"), "{e}");

    // 600 runs × (10 faults + 10 × 2,000 names) = 12,006,000 > 10,000,000.
    assert!(Scenario::parse(&partitioned(2_000, 10, 400)).is_ok());
    let e = Scenario::parse(&partitioned(2_000, 10, 600)).expect_err("600 copies");
    assert_eq!(e.line, 1, "the seeds line: {e}");
    assert!(e.reason.contains("too large"), "{e}");
}

#[test]
fn every_run_of_the_examples_gives_the_engine_valid_hash_power() {
    for file in ["fork-rate.toml", "selfish.toml", "partition.toml"] {
        let scenario = Scenario::load(&example(file)).expect("example");
        for run in scenario.runs() {
            let interval = run
                .scenario
                .block_interval
                .expect("examples mine on a schedule");
            let nodes = run.scenario.nodes();
            let total: f64 = nodes.iter().map(|n| n.hash_share).sum();
            assert!(total <= 1.0 + 1e-9, "{file} {:?}: {total}", run.value);
            for node in nodes {
                assert!(node.hash_share > 0.0, "{file}: {}", node.name);
                crapcoin_core::power::HashPower::new(node.hash_share, interval)
                    .unwrap_or_else(|e| panic!("{file} {}: {e}", node.name));
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let n = 100_000;
    for text in [
        format!("seeds = {}{}\n", "[".repeat(n), "]".repeat(n)),
        format!("seeds = {}1{}\n", "{a=".repeat(n), "}".repeat(n)),
        format!("{} = 1\n", vec!["a"; n].join(".")),
    ] {
        let e = Scenario::parse(&text).expect_err("nested");
        assert!(e.reason.contains("recurs"), "{e}");
    }
}

/// The fault kinds of the node's fault layer (`latency`, `loss`) and a
/// partition's `bridge` parse into their values.
#[test]
fn latency_loss_and_bridge_faults_parse() {
    let text = BASE.replace(
        "[stop]",
        r#"[[faults]]
at_ms = 100
kind = "latency"
node = "honest-0"
mean_ms = 200
jitter_ms = 50
to = ["evil", "honest-2"]
for_ms = 10_000

[[faults]]
at_ms = 200
kind = "loss"
node = "evil-1"
rate = 0.25
for_ms = 5_000

[[faults]]
at_ms = 300
kind = "partition"
groups = [["honest"], ["evil-0"]]
bridge = ["honest-3", "evil-1"]

[stop]"#,
    );
    let s = Scenario::parse(&text).expect("valid");
    let kinds: Vec<&FaultKind> = s.faults.iter().map(|f| &f.kind).collect();
    assert_eq!(
        kinds[0],
        &FaultKind::Latency {
            node: "honest-0".into(),
            mean: Duration::from_millis(200),
            jitter: Duration::from_millis(50),
            to: Some(vec!["evil-0".into(), "evil-1".into(), "honest-2".into()]),
            duration: Duration::from_secs(10),
        }
    );
    assert_eq!(
        kinds[1],
        &FaultKind::Loss {
            node: "evil-1".into(),
            rate: 0.25,
            to: None,
            duration: Duration::from_secs(5),
        }
    );
    // A bridge inside a group named whole is taken out of it; the nodes
    // listed nowhere form one more group, without the bridges.
    assert_eq!(
        kinds[2],
        &FaultKind::Partition {
            groups: vec![
                vec!["honest-0".into(), "honest-1".into(), "honest-2".into()],
                vec!["evil-0".into()],
            ],
            bridge: vec!["honest-3".into(), "evil-1".into()],
        }
    );
}

#[test]
fn bad_latency_loss_and_bridge_faults_are_refused_with_their_line() {
    // The extra `[[faults]]` starts at line 35 of BASE; its keys follow.
    let fault =
        |keys: &str| BASE.replace("[stop]", &format!("[[faults]]\nat_ms = 5\n{keys}\n[stop]"));
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "latency without mean",
            fault("kind = \"latency\"\nnode = \"honest-0\"\nfor_ms = 10"),
            35,
            "mean_ms",
        ),
        (
            "negative mean",
            fault("kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = -1\nfor_ms = 10"),
            39,
            "mean_ms",
        ),
        (
            "mean over an hour",
            fault("kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = 3_600_001\nfor_ms = 10"),
            39,
            "mean_ms",
        ),
        (
            "NaN jitter",
            fault(
                "kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = 1\njitter_ms = nan\nfor_ms = 10",
            ),
            40,
            "jitter_ms",
        ),
        (
            "latency without for_ms",
            fault("kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = 1"),
            35,
            "for_ms",
        ),
        (
            "latency for no time",
            fault("kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = 1\nfor_ms = 0"),
            40,
            "for_ms",
        ),
        (
            "latency to a stranger",
            fault(
                "kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = 1\nto = [\"ghost\"]\nfor_ms = 1",
            ),
            40,
            "ghost",
        ),
        (
            "latency to nobody",
            fault("kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = 1\nto = []\nfor_ms = 1"),
            40,
            "`to` is empty",
        ),
        (
            "latency of a stranger",
            fault("kind = \"latency\"\nnode = \"ghost\"\nmean_ms = 1\nfor_ms = 1"),
            38,
            "node",
        ),
        (
            "latency with a loss key",
            fault("kind = \"latency\"\nnode = \"honest-0\"\nmean_ms = 1\nrate = 0.5\nfor_ms = 1"),
            40,
            "rate",
        ),
        (
            "loss above 1",
            fault("kind = \"loss\"\nnode = \"honest-0\"\nrate = 1.5\nfor_ms = 1"),
            39,
            "rate",
        ),
        (
            "negative loss",
            fault("kind = \"loss\"\nnode = \"honest-0\"\nrate = -0.1\nfor_ms = 1"),
            39,
            "rate",
        ),
        (
            "loss without rate",
            fault("kind = \"loss\"\nnode = \"honest-0\"\nfor_ms = 1"),
            35,
            "rate",
        ),
        (
            "loss with a latency key",
            fault("kind = \"loss\"\nnode = \"honest-0\"\nrate = 0.1\nmean_ms = 1\nfor_ms = 1"),
            40,
            "mean_ms",
        ),
        (
            "loss with a negative duration",
            fault("kind = \"loss\"\nnode = \"honest-0\"\nrate = 0.1\nfor_ms = -5"),
            40,
            "for_ms",
        ),
        (
            "bridge to a stranger",
            fault("kind = \"partition\"\ngroups = [[\"evil\"]]\nbridge = [\"ghost\"]"),
            39,
            "ghost",
        ),
        (
            "empty bridge",
            fault("kind = \"partition\"\ngroups = [[\"evil\"]]\nbridge = []"),
            39,
            "bridge",
        ),
        (
            "bridge named in a group",
            fault("kind = \"partition\"\ngroups = [[\"evil-0\"]]\nbridge = [\"evil-0\"]"),
            38,
            "bridge",
        ),
        (
            "a group of bridges only",
            fault(
                "kind = \"partition\"\ngroups = [[\"evil\"], [\"honest-0\"]]\nbridge = [\"evil\"]",
            ),
            38,
            "only bridges",
        ),
        (
            "bridge on an isolation",
            fault("kind = \"isolate\"\nnode = \"evil-0\"\nbridge = [\"evil-1\"]"),
            39,
            "bridge",
        ),
    ];
    let mut failures = Vec::new();
    for (case, text, line, word) in cases {
        match Scenario::parse(&text) {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(ScenarioError {
                line: got, reason, ..
            }) => {
                if got != line || !reason.contains(word) {
                    failures.push(format!(
                        "{case}: line {got} (want {line}), reason {reason:?} (want {word:?})"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_fault_listing_more_than_1024_nodes_is_refused() {
    let text = "[[nodes]]\nname = \"many\"\ncount = 1100\n\n[[faults]]\nat_ms = 1\nkind = \"loss\"\nnode = \"many-0\"\nrate = 0.5\nto = [\"many\"]\nfor_ms = 10\n\n[stop]\nheight = 2\n";
    let e = Scenario::parse(text).expect_err("too many");
    assert_eq!(e.line, 10, "{e}");
    assert!(e.reason.contains("1100 nodes, more than 1024"), "{e}");
}
