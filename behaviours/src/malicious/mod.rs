//! Attackers: nodes that break the rules on purpose, to gain coins or to
//! split, mislead or exhaust the honest network.
//!
//! | module | attacks | an honest node must |
//! | --- | --- | --- |
//! | [`double_spender`] | the ledger: pays a victim in public, mines the conflicting spend in private with its hash power and releases it once the payment is k deep | follow the most work, keep exactly one spend (the nonce rule drops the other for good) |
//! | [`forger`] | block validation: bad proof of work, bad signatures, overspends under valid work | check every block, whoever sent it; strike and drop the sender |
//! | [`chain_liar`] | sync: claims a longer chain and serves a fake one | validate synced blocks like pushed ones, all or nothing; drop the liar |
//! | [`peer_poisoner`] | discovery: answers peer lists with unreachable ghosts and itself | only add a peer that answers with our genesis |
//! | [`selfish`] | fairness: Eyal and Sirer's selfish mining with its hash power, withholding and racing | follow the most work, reorg, put orphaned transfers back in the mempool |
//! | [`equivocator`] | agreement: sends different blocks of the same height to different peers | converge anyway: first seen on a tie, most work after |
//! | [`replayer`] | transactions: re-sends transfers already on the chain | reject a used nonce |
//! | [`flooder`] | resources: bursts of junk, orphans and duplicates | reject cheaply, bound every pool, drop the flooder |

pub mod chain_liar;
pub mod double_spender;
pub mod equivocator;
pub mod flooder;
pub mod forger;
pub mod peer_poisoner;
pub mod replayer;
pub mod selfish;

pub use chain_liar::Behaviour as ChainLiar;
pub use double_spender::Behaviour as DoubleSpender;
pub use equivocator::Behaviour as Equivocator;
pub use flooder::Behaviour as Flooder;
pub use forger::Behaviour as Forger;
pub use peer_poisoner::Behaviour as PeerPoisoner;
pub use replayer::Behaviour as Replayer;
pub use selfish::Behaviour as Selfish;
