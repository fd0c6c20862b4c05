//! Shared helpers of the crapcoin-node tests: an in-process node behind
//! `warp::test`, block forging, state snapshots, and `crapcoin-node`
//! processes that are killed by PID when dropped. Every wait is bounded.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub(crate) mod sauron;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crapcoin_core::{
    Address, Block, Config, Forge, Handle, Node, Params, PeerUrl, Transaction, Wallet,
};
use crapcoin_node::http::{self, App};
use crapcoin_node::metrics::Metrics;
use serde_json::Value;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// The admin token of test nodes.
pub(crate) const TOKEN: &str = "s3cret-token";

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

pub(crate) fn now_ms() -> u64 {
    crapcoin_core::node::now_ms()
}

/// Polls `check` every 50 ms until it is true or `limit` passes.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- processes

/// A `crapcoin-node` process, killed (SIGKILL, by PID) when dropped.
pub(crate) struct Proc {
    child: Option<Child>,
    pub(crate) url: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) args: Vec<String>,
}

/// Network arguments every test process shares.
pub(crate) fn net_args() -> Vec<String> {
    [
        "--difficulty",
        "4",
        "--maintenance-ms",
        "300",
        "--call-timeout-ms",
        "1000",
        "--admin-token",
        TOKEN,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Starts the binary `bin` with `args` and waits (at most 60 s) for its
/// first stdout line, `listening on http://127.0.0.1:PORT`; answers the
/// child and that URL. Stdout keeps being drained so the child never
/// blocks on a full pipe; if the line does not come, the child is killed
/// before the test fails.
pub(crate) fn spawn_listening(bin: &str, args: &[String]) -> (Child, String) {
    let mut child = Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawns {bin}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    let line = rx.recv_timeout(Duration::from_secs(60));
    let url = line
        .as_deref()
        .ok()
        .and_then(|line| line.strip_prefix("listening on "))
        .filter(|url| url.starts_with("http://127.0.0.1:"))
        .map(str::to_owned);
    match url {
        Some(url) => (child, url),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} did not print `listening on http://127.0.0.1:PORT` in time: {line:?}");
        }
    }
}

impl Proc {
    /// Starts `crapcoin-node` on `data_dir` with `extra` arguments after
    /// [`net_args`]; waits (at most 60 s) for its `listening on` line.
    pub(crate) fn start(data_dir: &Path, extra: &[String]) -> Self {
        let mut args = net_args();
        args.extend(["--data-dir".to_owned(), data_dir.display().to_string()]);
        args.extend(extra.iter().cloned());
        Self::spawn(data_dir, args)
    }

    /// Starts it again with the same arguments (same data directory).
    pub(crate) fn restart(&self) -> Self {
        Self::spawn(&self.data_dir, self.args.clone())
    }

    fn spawn(data_dir: &Path, args: Vec<String>) -> Self {
        let (child, url) = spawn_listening(env!("CARGO_BIN_EXE_crapcoin-node"), &args);
        Self {
            child: Some(child),
            url,
            data_dir: data_dir.to_path_buf(),
            args,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; waits (at most 20 s) for a clean exit and returns its
    /// status code.
    pub(crate) fn terminate(mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// An HTTP client for tests.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .expect("client")
}

/// GET `url` as JSON.
pub(crate) async fn get(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.expect("answers");
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

/// POST JSON to an admin route with the test token.
pub(crate) async fn admin(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
