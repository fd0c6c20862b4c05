//! The node's HTTP API (DESIGN.md §4), split by role as in warp's `todos`
//! example:
//!
//! | module | role |
//! | --- | --- |
//! | [`filters`] | the routes: paths, methods, body limits, what each extracts |
//! | [`handlers`] | what each route does with the node |
//! | [`models`] | request and answer bodies, [`models::ApiError`], rejection recovery |
//! | [`faults`] | `/admin/faults`: its bodies and handlers (the node's network faults) |
//! | [`frames`] | gossip frames handed to their routes' handlers past the router |
//! | [`server`] | the accept loop: bounded connections, idle timeout, shutdown |
//!
//! Every handler answers; errors are answers too (`{"error", "reason"}`
//! with a 4xx status), so only path and method mismatches go through warp's
//! rejections, which [`models::recover`] turns into the same shape.

pub mod faults;
pub mod filters;
pub mod frames;
pub mod handlers;
pub mod models;
pub mod server;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use crapcoin_core::{Block, Handle};

use crate::metrics::Metrics;

pub use filters::routes;

/// What every handler needs: the node, the admin token, the counters and
/// the cached full chain.
#[derive(Debug)]
pub struct App {
    /// The node.
    pub handle: Handle,
    /// The token admin routes require (`None`: admin routes are disabled).
    pub admin_token: Option<String>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// `GET /blockchain` as last served, and its JSON: served again as
    /// long as the node would serve the same blocks (that is, until the tip
    /// moves or the behaviour answers otherwise).
    chain_cache: Mutex<Option<ChainCache>>,
}

#[derive(Debug)]
struct ChainCache {
    blocks: Vec<Block>,
    json: Bytes,
}

impl App {
    /// The state of the API of the node `handle`.
    pub fn new(handle: Handle, admin_token: Option<String>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            handle,
            admin_token,
            metrics,
            chain_cache: Mutex::new(None),
        })
    }

    /// The JSON of `blocks` (the whole chain as served now), from the cache
    /// when the same blocks were serialised last time.
    ///
    /// Comparing the blocks costs a memory compare; serialising them (hex,
    /// JSON, hashing each header for its `hash` field) costs about ten
    /// times more. Comparing, rather than keying on the tip alone, keeps a
    /// lying behaviour's answers exactly as it gives them.
    pub(crate) fn chain_json(&self, blocks: Vec<Block>) -> Result<Bytes, serde_json::Error> {
        {
            let cache = self.chain_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cache) = cache.as_ref()
                && cache.blocks == blocks
            {
                return Ok(cache.json.clone());
            }
        }
        let json = Bytes::from(serde_json::to_vec(&blocks)?);
        let mut cache = self.chain_cache.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Some(ChainCache {
            blocks,
            json: json.clone(),
        });
        Ok(json)
    }
}

/// The route template of a path, for metrics and reports: a fixed, small
/// set of labels whatever paths callers send.
pub fn route_template(path: &str) -> &'static str {
    match path {
        "/status" => "/status",
        "/blockchain" => "/blockchain",
        "/blocks" => "/blocks",
        "/block" => "/block",
        "/gossip" => "/gossip",
        "/peers" => "/peers",
        "/transactions" => "/transactions",
        "/metrics" => "/metrics",
        "/transfer" => "/transfer",
        "/mine" => "/mine",
        "/admin/peers" => "/admin/peers",
        "/admin/auto" => "/admin/auto",
        "/admin/faults" => "/admin/faults",
        p if p.starts_with("/block/") => "/block/{hash}",
        p if p.starts_with("/balance/") => "/balance/{address}",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::{App, Arc, Metrics, route_template};
    use crapcoin_core::{Node, Params};

    #[tokio::test]
    async fn the_chain_json_is_reused_until_the_blocks_change() {
        let handle = Node::builder(Params::with_difficulty(4))
            .launch()
            .await
            .expect("launches");
        handle.mine().await.expect("mines");
        let app = App::new(handle.clone(), None, Arc::new(Metrics::default()));
        let first = app.chain_json(handle.chain().await).expect("serialises");
        let again = app.chain_json(handle.chain().await).expect("serialises");
        // The very same buffer: served from the cache, not serialised again.
        assert_eq!(first.as_ptr(), again.as_ptr());
        let blocks: Vec<serde_json::Value> = serde_json::from_slice(&again).expect("json");
        assert_eq!(blocks.len(), 2);
        handle.mine().await.expect("mines");
        let moved = app.chain_json(handle.chain().await).expect("serialises");
        assert_ne!(first.as_ptr(), moved.as_ptr());
        let blocks: Vec<serde_json::Value> = serde_json::from_slice(&moved).expect("json");
        assert_eq!(blocks.len(), 3);
        handle.shutdown().await;
    }

    #[test]
    fn route_templates_stay_few() {
        assert_eq!(route_template("/block/abc"), "/block/{hash}");
        assert_eq!(route_template("/balance/00"), "/balance/{address}");
        assert_eq!(route_template("/status"), "/status");
        assert_eq!(route_template("/anything/else"), "other");
    }
}
