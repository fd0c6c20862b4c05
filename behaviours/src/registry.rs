//! Names to constructors: what `crapcoin-node --behaviour NAME` and the
//! launcher build, and what `--list-behaviours` prints.
//!
//! Names are the module names (`double_spender`); hyphens are accepted for
//! underscores (`double-spender`). Besides one name per behaviour there
//! are three mixes:
//!
//! - `random`: every misbehaviour at once, one picked at random per
//!   decision ([`crate::random`]);
//! - `malicious`, `stupid`: one member of the group, picked with the seed
//!   (two nodes with different seeds may get different members).

use std::sync::Arc;
use std::time::Duration;

use crapcoin_core::Behaviour;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

use crate::util::derive_seed;
use crate::{honest, malicious, random, stupid};

/// Every name with its one-line description, in display order.
const CATALOGUE: &[(&str, &str)] = &[
    ("honest", "follows the protocol: the control group"),
    (
        "double_spender",
        "pays a victim, then replaces the confirmed payment with a private branch",
    ),
    (
        "forger",
        "pushes blocks with bad proof of work, bad signatures or overspends under valid work",
    ),
    (
        "chain_liar",
        "claims a longer chain than it has and serves a fake one",
    ),
    (
        "peer_poisoner",
        "answers peer lists with unreachable ghosts and itself",
    ),
    (
        "selfish",
        "selfish mining (Eyal and Sirer): withholds its blocks, races and releases them",
    ),
    (
        "equivocator",
        "sends different blocks of the same height to different peers",
    ),
    (
        "replayer",
        "re-sends transfers already on the chain in new blocks",
    ),
    (
        "flooder",
        "bursts of junk, orphan and duplicate blocks at every peer",
    ),
    ("forgetful", "never relays other nodes' blocks"),
    (
        "garbler",
        "sends truncated, mislabelled, random and oversize block bodies",
    ),
    (
        "laggard",
        "answers promptly at first, then every request late",
    ),
    (
        "time_traveller",
        "stamps blocks ahead of time, some beyond the allowed lead",
    ),
    ("amnesiac", "wipes its chain now and then and resyncs"),
    (
        "random",
        "a seeded mix: every decision made by a misbehaviour picked at random",
    ),
    (
        "malicious",
        "one attacker of the malicious group, picked with the seed",
    ),
    (
        "stupid",
        "one broken node of the stupid group, picked with the seed",
    ),
];

/// The members of the `malicious` group.
pub const MALICIOUS: &[&str] = &[
    "double_spender",
    "forger",
    "chain_liar",
    "peer_poisoner",
    "selfish",
    "equivocator",
    "replayer",
    "flooder",
];

/// The members of the `stupid` group.
pub const STUPID: &[&str] = &[
    "forgetful",
    "garbler",
    "laggard",
    "time_traveller",
    "amnesiac",
];

/// Every name with its one-line description, in display order.
pub fn list() -> &'static [(&'static str, &'static str)] {
    CATALOGUE
}

/// A name the registry does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown behaviour {name:?} (known: {})", known())]
pub struct UnknownBehaviour {
    /// The name asked for.
    pub name: String,
}

fn known() -> String {
    CATALOGUE
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How to build a behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Seeds every random choice of the behaviour (and a group's pick).
    pub seed: u64,
    /// The period of what behaviours do on their own (forging, flooding,
    /// releasing, wiping): tests run it fast, real nodes at a pace a
    /// dashboard can show. Time-outs and delays are not scaled by it.
    pub interval: Duration,
}

impl Options {
    /// Options with `seed` and the default one-second interval.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            interval: Duration::from_secs(1),
        }
    }
}

/// The behaviour called `name`, seeded with `seed`, at the default pace.
///
/// # Errors
///
/// [`UnknownBehaviour`] when `name` is not in [`list`].
pub fn build(name: &str, seed: u64) -> Result<Arc<dyn Behaviour>, UnknownBehaviour> {
    build_with(name, &Options::seeded(seed))
}

/// The behaviour called `name`, built with `options`.
///
/// # Errors
///
/// [`UnknownBehaviour`] when `name` is not in [`list`].
pub fn build_with(name: &str, options: &Options) -> Result<Arc<dyn Behaviour>, UnknownBehaviour> {
    let key = name.trim().replace('-', "_");
    let seed = options.seed;
    let every = options.interval;
    let behaviour: Arc<dyn Behaviour> = match key.as_str() {
        "honest" => Arc::new(honest::Behaviour),
        "double_spender" => Arc::new(malicious::DoubleSpender::new(seed, every)),
        "forger" => Arc::new(malicious::Forger::new(seed, every)),
        "chain_liar" => Arc::new(malicious::ChainLiar::default()),
        "peer_poisoner" => Arc::new(malicious::PeerPoisoner::new(seed, 16)),
        "selfish" => Arc::new(malicious::Selfish::new()),
        "equivocator" => Arc::new(malicious::Equivocator::new(seed)),
        "replayer" => Arc::new(malicious::Replayer::new(seed, every)),
        "flooder" => Arc::new(malicious::Flooder::new(seed, every, 30)),
        "forgetful" => Arc::new(stupid::Forgetful),
        "garbler" => Arc::new(stupid::Garbler::new(seed)),
        "laggard" => Arc::new(stupid::Laggard::default()),
        "time_traveller" => Arc::new(stupid::TimeTraveller::new(Duration::from_secs(90), every)),
        // Wiping every tick would leave it no time to resync.
        "amnesiac" => Arc::new(stupid::Amnesiac::new(every.saturating_mul(10))),
        "random" => Arc::new(random(options)),
        "malicious" => return build_with(pick(MALICIOUS, seed), options),
        "stupid" => return build_with(pick(STUPID, seed), options),
        _ => {
            return Err(UnknownBehaviour {
                name: name.to_owned(),
            });
        }
    };
    Ok(behaviour)
}

/// The `random` mix: every misbehaviour of both groups, each seeded from
/// `options.seed`, one picked per decision.
pub fn random(options: &Options) -> random::Behaviour {
    let inner = MALICIOUS
        .iter()
        .chain(STUPID)
        .enumerate()
        .filter_map(|(i, member)| {
            let options = Options {
                seed: derive_seed(options.seed, i as u64 + 1),
                interval: options.interval,
            };
            build_with(member, &options).ok()
        })
        .collect();
    random::Behaviour::new(options.seed, inner)
}

/// The member of `group` that `seed` picks.
pub fn pick<'a>(group: &[&'a str], seed: u64) -> &'a str {
    let mut rng = StdRng::seed_from_u64(derive_seed(seed, 0x6_0000));
    group[rng.random_range(0..group.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_builds_and_reports_its_name() {
        for (name, description) in list() {
            assert!(!description.is_empty(), "{name} has no description");
            let behaviour = build(name, 1).expect("listed names build");
            let reported = behaviour.name();
            match *name {
                "malicious" => assert!(MALICIOUS.contains(&reported.as_str()), "{reported}"),
                "stupid" => assert!(STUPID.contains(&reported.as_str()), "{reported}"),
                _ => assert_eq!(reported, *name),
            }
        }
    }

    #[test]
    fn groups_are_listed_and_hyphens_work() {
        for member in MALICIOUS.iter().chain(STUPID) {
            assert!(list().iter().any(|(n, _)| n == member), "{member}");
        }
        assert_eq!(
            build("double-spender", 3).expect("alias").name(),
            "double_spender"
        );
    }

    #[test]
    fn unknown_names_are_a_typed_error_naming_the_known_ones() {
        let e = build("saint", 0).err().expect("unknown");
        assert_eq!(e.name, "saint");
        assert!(e.to_string().contains("double_spender"), "{e}");
    }

    #[test]
    fn group_picks_follow_the_seed_and_cover_the_group() {
        assert_eq!(pick(MALICIOUS, 42), pick(MALICIOUS, 42));
        let seen: std::collections::HashSet<&str> = (0..200).map(|s| pick(STUPID, s)).collect();
        assert_eq!(seen.len(), STUPID.len());
    }
}
