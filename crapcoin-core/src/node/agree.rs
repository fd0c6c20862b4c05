//! Waiting until nodes agree: [`wait_for_agreement`], for experiments and
//! tests that run several nodes in one process.

use std::time::Duration;

use super::Handle;
use crate::hash::BlockHash;

/// How often [`wait_for_agreement`] looks at the tips.
const POLL: Duration = Duration::from_millis(20);

/// One node's best tip, as [`AgreementError::Timeout`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTip {
    /// The node's name.
    pub node: String,
    /// Its best chain's height.
    pub height: u64,
    /// Its best tip.
    pub tip: BlockHash,
}

/// Why [`wait_for_agreement`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgreementError {
    /// No node was given: there is nothing to agree on.
    #[error("no nodes given")]
    NoNodes,
    /// The nodes still had different tips when the time ran out.
    #[error("nodes did not agree on a tip within {waited:?}")]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// Each node's tip when it gave up, in the order given.
        tips: Vec<NodeTip>,
    },
}

/// Waits until every node in `nodes` has the same best tip, looking every
/// 20 ms for at most `timeout` (on the first node's clock), and returns
/// that tip.
///
/// # Errors
///
/// [`AgreementError::Timeout`] with every node's tip when they still
/// disagree after `timeout`; [`AgreementError::NoNodes`] for an empty
/// slice.
pub async fn wait_for_agreement(
    nodes: &[&Handle],
    timeout: Duration,
) -> Result<BlockHash, AgreementError> {
    let Some(first) = nodes.first() else {
        return Err(AgreementError::NoNodes);
    };
    let clock = first.shared.clock.clone();
    let deadline = clock.now() + timeout;
    loop {
        let tip = first.tip();
        if nodes.iter().all(|n| n.tip() == tip) {
            return Ok(tip);
        }
        if clock.now() >= deadline {
            let tips = nodes
                .iter()
                .map(|n| NodeTip {
                    node: n.name().to_owned(),
                    height: n.height(),
                    tip: n.tip(),
                })
                .collect();
            return Err(AgreementError::Timeout {
                waited: timeout,
                tips,
            });
        }
        clock.sleep(POLL).await;
    }
}
