//! A fault schedule on its own: a file of only `[[faults]]`, in the
//! scenario format (`docs/scenarios.md`), checked against a given list of
//! node names and groups instead of a scenario's `[[nodes]]`.
//!
//! watercooler runs it over real processes (`--fault-schedule FILE`): its
//! nodes are `bigload-N` (honest) and `shit-N` (misbehaving), its groups
//! `honest` and `misbehaving`. The parsing and every check are the
//! scenario's own ([`crate::scenario`]): unknown keys and kinds, negative
//! or NaN times and durations, unknown nodes or groups, a restart without
//! a crash are refused with the 1-based line and the reason
//! ([`ScenarioError`]), before anything starts.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::scenario::{
    self as scenario, Fault, Group, Lines, MAX_NODES, RawFault, ScenarioError, faults_over,
};

/// The nodes a schedule may name: every node's name, group by group (a
/// group's nodes are consecutive in `nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// Every node, in group order.
    pub nodes: Vec<String>,
    /// The groups, in order: a name (what `groups` of a partition may
    /// say instead of listing nodes) and how many of `nodes` it covers.
    pub groups: Vec<(String, usize)>,
}

impl Roster {
    /// A roster of consecutive groups, each `(group name, its nodes)`.
    pub fn of(groups: &[(&str, Vec<String>)]) -> Self {
        Roster {
            nodes: groups.iter().flat_map(|(_, n)| n.iter().cloned()).collect(),
            groups: groups
                .iter()
                .map(|(g, n)| ((*g).to_owned(), n.len()))
                .collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(default)]
    faults: Vec<Spanned<RawFault>>,
}

/// Parses and checks a schedule's text over `roster`; the faults sorted by
/// time (stable).
///
/// # Errors
///
/// The first offending line and why: TOML syntax, keys other than
/// `[[faults]]`, anything [`crate::scenario::Scenario::parse`] refuses in
/// a `[[faults]]` entry, a roster too large.
pub fn parse(text: &str, roster: &Roster) -> Result<Vec<Fault>, ScenarioError> {
    let lines = Lines::new(text);
    let raw: RawSchedule = toml::from_str(text).map_err(|e| lines.toml_error(&e))?;
    if roster.nodes.len() > MAX_NODES {
        return Err(ScenarioError::new(
            0,
            format!("{} nodes, more than {MAX_NODES}", roster.nodes.len()),
        ));
    }
    let groups: Vec<Group> = roster
        .groups
        .iter()
        .map(|(name, count)| Group {
            name: name.clone(),
            count: *count,
            behaviour: String::new(),
            hash_share: 0.0,
            region: None,
        })
        .collect();
    let covered: usize = groups.iter().map(|g| g.count).sum();
    if covered != roster.nodes.len() {
        return Err(ScenarioError::new(
            0,
            format!(
                "the roster's groups cover {covered} nodes, not its {}",
                roster.nodes.len()
            ),
        ));
    }
    faults_over(&lines, &raw.faults, &roster.nodes, &groups)
}

/// Reads (at most [`MAX_FILE_BYTES`](scenario::MAX_FILE_BYTES)) and parses a schedule file.
///
/// # Errors
///
/// As [`parse`], the error naming the file; or the file cannot be read,
/// is too large or not UTF-8 (line 0).
pub fn load(path: &Path, roster: &Roster) -> Result<Vec<Fault>, ScenarioError> {
    let text = scenario::read_text(path)?;
    parse(&text, roster).map_err(|e| e.in_file(path))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Roster, parse};
    use crate::scenario::FaultKind;

    fn roster() -> Roster {
        let names = |p: &str, n: usize| (1..=n).map(|i| format!("{p}-{i}")).collect::<Vec<_>>();
        Roster::of(&[
            ("honest", names("bigload", 3)),
            ("misbehaving", names("shit", 1)),
        ])
    }

    #[test]
    fn a_schedule_names_watercooler_nodes_and_groups() {
        let text = r#"
[[faults]]
at_ms = 5000
kind = "partition"
groups = [["bigload-1", "misbehaving"]]

[[faults]]
at_ms = 2000
kind = "crash"
node = "bigload-3"

[[faults]]
at_ms = 9000
kind = "heal"
"#;
        let faults = parse(text, &roster()).expect("parses");
        assert_eq!(faults.len(), 3);
        assert_eq!(faults[0].at, Duration::from_secs(2));
        assert_eq!(faults[0].line, 7);
        assert_eq!(
            faults[1].kind,
            FaultKind::Partition {
                groups: vec![
                    vec!["bigload-1".to_owned(), "shit-1".to_owned()],
                    vec!["bigload-2".to_owned(), "bigload-3".to_owned()],
                ],
                bridge: Vec::new(),
            }
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_their_line() {
        for (text, line, words) in [
            ("[[faults]]\nat_ms = 1\nkind = \"explode\"\n", 3, "unknown"),
            ("[[faults]]\nat_ms = -5\nkind = \"heal\"\n", 2, "negative"),
            (
                "[[faults]]\nat_ms = 1\nkind = \"pause\"\nnode = \"bigload-1\"\nfor_ms = -3\n",
                5,
                "negative",
            ),
            (
                "[[faults]]\nat_ms = 1\nkind = \"crash\"\nnode = \"bigload-9\"\n",
                4,
                "bigload-9",
            ),
            (
                "\n[[faults]]\nat_ms = 1\nkind = \"partition\"\ngroups = [[\"nobody\"]]\n",
                5,
                "nobody",
            ),
            ("[nodes]\nname = \"x\"\n", 1, "nodes"),
        ] {
            let e = parse(text, &roster()).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.reason.contains(words), "{text}: {e}");
        }
    }
}
