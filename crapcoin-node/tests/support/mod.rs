//! Helpers only the crapcoin-node tests need: an in-process node behind
//! `warp::test`, block forging, state snapshots, refusals; and (in
//! [`sauron`]) throwaway PostgreSQL databases. What other test trees share
//! too (polling, HTTP helpers, processes) comes from the test kit.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub(crate) mod sauron;

use std::sync::Arc;
use std::time::Duration;

use crapcoin_core::{
    Address, Block, Config, Forge, Handle, Node, Params, PeerUrl, Transaction, Wallet,
};
use crapcoin_node::http::{self, App};
use crapcoin_node::metrics::Metrics;
use serde_json::Value;
use warp::filters::BoxedFilter;
use warp::reply::Response;

pub(crate) use kit::http::TOKEN;
use kit::time::now_ms;

/// Test network: cheap work and a one-second future limit so "too new"
/// blocks become valid quickly.
pub(crate) fn params() -> Params {
    Params {
        difficulty: 4,
        max_future_ms: 1_000,
        ..Params::with_difficulty(4)
    }
}

/// An in-process node with an SQLite in-memory store, served through
/// `warp::test` (no socket).
pub(crate) struct TestNode {
    pub(crate) handle: Handle,
    pub(crate) app: Arc<App>,
    pub(crate) routes: BoxedFilter<(Response,)>,
    pub(crate) params: Params,
}

impl TestNode {
    /// A node whose config `tweak` may adjust, mining `blocks` blocks first.
    pub(crate) async fn start(blocks: u64, tweak: impl FnOnce(&mut Config)) -> Self {
        let params = params();
        let url: PeerUrl = "http://127.0.0.1:9".parse().expect("url");
        let mut config = Config::new("test", url);
        config.call_timeout = Duration::from_millis(500);
        config.maintenance_interval = Duration::from_secs(3600);
        tweak(&mut config);
        let store = crapcoin_node::Store::memory().await.expect("memory store");
        let client = crapcoin_node::Client::new(Duration::from_millis(500)).expect("client");
        let metrics = Arc::new(Metrics::default());
        let handle = Node::builder(params.clone())
            .config(config)
            .wallet(Wallet::from_seed(1))
            .observer(metrics.clone())
            .network(client)
            .store(store)
            .launch()
            .await
            .expect("launches");
        for _ in 0..blocks {
            handle.mine().await.expect("mines");
        }
        let app = App::new(handle.clone(), Some(TOKEN.to_owned()), metrics);
        let routes = http::routes(app.clone());
        Self {
            handle,
            app,
            routes,
            params,
        }
    }

    /// A forge on the current tip, stamped now, mined by `miner`.
    pub(crate) fn forge(&self, miner: Address) -> Forge {
        let tip = self.handle.with_chain(|c| c.tip_block().header.clone());
        Forge::new(&self.params, &tip)
            .miner(miner)
            .timestamp(now_ms().max(tip.timestamp))
    }

    /// A transfer signed by `wallet` on this network.
    pub(crate) fn sign(
        &self,
        wallet: &Wallet,
        to: Address,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> Transaction {
        wallet.transfer(&self.params.chain_id(), to, amount, fee, nonce)
    }

    /// Sends a request through the routes; returns status and JSON body
    /// (`Value::Null` when the body is not JSON).
    pub(crate) async fn call(&self, request: warp::test::RequestBuilder) -> (u16, Value) {
        let response = request.reply(&self.routes).await;
        let status = response.status().as_u16();
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (status, body)
    }

    /// `POST /block` with raw bytes.
    pub(crate) async fn post_block_bytes(&self, bytes: &[u8]) -> (u16, Value) {
        self.call(
            warp::test::request()
                .method("POST")
                .path("/block")
                .body(bytes),
        )
        .await
    }

    /// `POST /block` with a block's JSON.
    pub(crate) async fn post_block(&self, block: &Block) -> (u16, Value) {
        let bytes = serde_json::to_vec(block).expect("serialises");
        self.post_block_bytes(&bytes).await
    }

    /// `POST /transactions` with raw bytes.
    pub(crate) async fn post_tx_bytes(&self, bytes: &[u8]) -> (u16, Value) {
        self.call(
            warp::test::request()
                .method("POST")
                .path("/transactions")
                .body(bytes),
        )
        .await
    }

    /// `POST /transactions` with a transaction's JSON.
    pub(crate) async fn post_tx(&self, tx: &Transaction) -> (u16, Value) {
        self.post_tx_bytes(&serde_json::to_vec(tx).expect("serialises"))
            .await
    }

    /// Height, tip, mempool size and the balances of `addresses`.
    pub(crate) fn snapshot(&self, addresses: &[Address]) -> Snapshot {
        Snapshot {
            height: self.handle.height(),
            tip: self.handle.tip().to_string(),
            mempool: self.handle.mempool_len(),
            balances: addresses
                .iter()
                .map(|a| {
                    let account = self.handle.balance(a);
                    (account.balance, account.nonce)
                })
                .collect(),
        }
    }

    pub(crate) async fn stop(self) {
        self.handle.shutdown().await;
    }
}

/// What must not change when bad input is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) height: u64,
    pub(crate) tip: String,
    pub(crate) mempool: usize,
    pub(crate) balances: Vec<(u64, u64)>,
}

/// Asserts a 4xx answer with `reason`.
#[track_caller]
pub(crate) fn assert_refused(answer: &(u16, Value), status: u16, reason: &str) {
    assert_eq!(answer.0, status, "status of {:?}", answer.1);
    assert!((400..500).contains(&answer.0), "not a 4xx: {answer:?}");
    assert_eq!(answer.1["reason"], reason, "reason of {:?}", answer.1);
    assert!(
        answer.1["error"].is_string(),
        "error message of {:?}",
        answer.1
    );
}
