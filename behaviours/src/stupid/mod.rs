//! Broken nodes: no intent to harm, just bugs, bad clocks and bad links,
//! which an honest network must survive as well as attacks.
//!
//! | module | breaks | an honest node must |
//! | --- | --- | --- |
//! | [`forgetful`] | gossip: never relays others' blocks | not depend on any one relay: catch up by syncing from peers that are ahead |
//! | [`garbler`] | encoding: sends malformed, truncated, mislabelled and oversize bodies | refuse them with a reason before parsing too much, and drop the sender |
//! | [`laggard`] | latency: answers every request late | time out every call and drop a peer that keeps failing |
//! | [`time_traveller`] | clocks: stamps blocks in the future | accept up to the allowed lead, refuse beyond it without remembering the block as invalid |
//! | [`amnesiac`] | storage: wipes its chain now and then | never follow a shorter chain; let it resync |

pub mod amnesiac;
pub mod forgetful;
pub mod garbler;
pub mod laggard;
pub mod time_traveller;

pub use amnesiac::Behaviour as Amnesiac;
pub use forgetful::Behaviour as Forgetful;
pub use garbler::Behaviour as Garbler;
pub use laggard::Behaviour as Laggard;
pub use time_traveller::Behaviour as TimeTraveller;
