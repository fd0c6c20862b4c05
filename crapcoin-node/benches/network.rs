//! Scripted benchmark of real `crapcoin-node` processes on 127.0.0.1, for
//! the performance list of the crapcoin-node issue. Results go in
//! `BENCHMARKS.md`, section "crapcoin-node".
//!
//! ```text
//! cargo bench -p crapcoin-node --bench network
//! ```
//!
//! It measures, in one run:
//!
//! 1. a fresh node syncing 1,000 and 10,000 blocks (each with a signed
//!    transfer) from a peer, against validating the same blocks in-process
//!    the way a sync does (batched signature checks and block-tree
//!    insertion in pages of 500), in 9 and 3 rounds;
//! 2. start-up time to `listening`, fresh and on a data directory holding
//!    10,000 blocks (the restart path, which re-validates everything);
//! 3. requests/s of sequential `GET /status` and `GET /blockchain` (1,001
//!    blocks) on one keep-alive connection, on the current-thread runtime
//!    and on a 2-worker runtime;
//! 4. idle RSS of one node, without and with a data directory;
//! 5. the delay of a block along a line of 50 node processes (median and
//!    p99 over the runs), without data directories (`line`) and with each
//!    node storing in SQLite (`line-sqlite`);
//! 6. the floor under (5) on this machine (`line-floor`): the same line of
//!    50 processes (copies of this benchmark) relaying a 400-byte message
//!    and doing nothing else, over one TCP stream per hop and over HTTP
//!    (a hyper server, a reqwest client, a request and its answer per
//!    hop), timed from the head's write to the tail's read.
//!
//! `CRAPCOIN_NODE_BIN=target/dist/crapcoin-node` runs another build of the
//! node (the bench's own code is unaffected).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it does
//! nothing.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crapcoin_core::chain::Chain;
use crapcoin_core::{Block, CheckedBlock, Forge, Params, Store as _, Wallet, validate};
use serde_json::Value;

/// The node binary: `CRAPCOIN_NODE_BIN` when set (e.g. the `dist` build),
/// else the one cargo built for this benchmark.
fn bin() -> String {
    std::env::var("CRAPCOIN_NODE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_crapcoin-node").to_owned())
}
/// `--on-demand` when the node binary knows it: the bench asks for every
/// block itself, and a node on a proof-of-work schedule would mine on its
/// own meanwhile. Builds from before hash power mine on demand anyway.
fn mining_args() -> &'static [&'static str] {
    static ARGS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    ARGS.get_or_init(|| {
        let help = Command::new(bin())
            .arg("--help")
            .output()
            .expect("runs crapcoin-node --help");
        if String::from_utf8_lossy(&help.stdout).contains("--on-demand") {
            &["--on-demand"]
        } else {
            &[]
        }
    })
}

const TOKEN: &str = "bench";
const DIFFICULTY: u8 = 8;
const PAGE: usize = 500;

fn params() -> Params {
    Params::with_difficulty(DIFFICULTY)
}

/// A node process, killed by PID when dropped.
struct Proc {
    child: Child,
    url: String,
    started_in: Duration,
    /// When the node logged each `synced` line, and the line (only for a
    /// node started with [`Proc::start_logging`]).
    synced: Option<std::sync::mpsc::Receiver<(Instant, String)>>,
}

impl Proc {
    fn start(args: &[&str]) -> Self {
        Self::spawn(args, false)
    }

    /// Starts a node that logs at `info` to a pipe read here, so the bench
    /// sees the moment it logs `synced` without asking it anything.
    fn start_logging(args: &[&str]) -> Self {
        Self::spawn(args, true)
    }

    fn spawn(args: &[&str], logging: bool) -> Self {
        let difficulty = DIFFICULTY.to_string();
        let started = Instant::now();
        let mut command = Command::new(bin());
        command
            .args(["--difficulty", &difficulty])
            .env(crapcoin_node::cookie::TOKEN_ENV, TOKEN)
            .args(mining_args())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if logging {
            command
                .env("RUST_LOG", "crapcoin_core=info")
                .stderr(Stdio::piped());
        } else {
            command.stderr(Stdio::null());
        }
        let mut child = command.spawn().expect("spawns crapcoin-node");
        let synced = child.stderr.take().map(|stderr| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("synced") && tx.send((Instant::now(), line)).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("listening in time");
        let started_in = started.elapsed();
        let url = line
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        Self {
            child,
            url,
            started_in,
            synced,
        }
    }

    /// Waits for the node to log that a sync took it to `height`; returns
    /// when it did.
    fn synced_to(&self, height: u64, limit: Duration) -> Instant {
        let lines = self.synced.as_ref().expect("started with start_logging");
        let needle = format!("height={height} ");
        loop {
            let (at, line) = lines.recv_timeout(limit).expect("synced in time");
            if line.contains(&needle) {
                return at;
            }
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chain of `n` blocks after genesis, every block but the first carrying
/// a signed transfer.
fn make_chain(n: usize) -> Vec<Block> {
    let params = params();
    let alice = Wallet::from_seed(1);
    let bob = Wallet::from_seed(2).address();
    let chain_id = params.chain_id();
    let mut parent = params.genesis().header.clone();
    let mut out = Vec::with_capacity(n);
    let start = crapcoin_core::node::now_ms() - n as u64;
    for i in 0..n {
        let mut forge = Forge::new(&params, &parent)
            .miner(alice.address())
            .timestamp(start + i as u64);
        if i > 0 {
            forge = forge.tx(alice.transfer(&chain_id, bob, 1, 1, i as u64 - 1));
        }
        let block = forge.mine();
        parent = block.header.clone();
        out.push(block);
    }
    out
}

/// Validates `blocks` as a sync does: pages of 500, signatures batched,
/// inserted into a fresh block tree.
fn validate_in_process(blocks: &[Block]) -> Duration {
    let params = params();
    let started = Instant::now();
    let mut chain = Chain::new(params.clone());
    for page in blocks.chunks(PAGE) {
        let checked = validate::check_batch(page.to_vec(), &params).expect("valid");
        let _ = chain.insert_segment(checked, u64::MAX).expect("inserts");
    }
    assert_eq!(chain.height(), blocks.len() as u64);
    started.elapsed()
}

/// Serialises `blocks` in pages as a peer answers them, and parses them
/// back as the client does.
fn json_round_trip(blocks: &[Block]) -> Duration {
    let started = Instant::now();
    for page in blocks.chunks(PAGE) {
        let json = serde_json::to_vec(page).expect("serialises");
        let parsed = crapcoin_node::client::parse_blocks(&json, PAGE).expect("parses");
        assert_eq!(parsed.len(), page.len());
    }
    started.elapsed()
}

/// Stores `blocks` in a new database in `dir`, page by page; returns the
/// time spent saving.
async fn fill_data_dir(dir: &Path, blocks: &[Block]) -> Duration {
    let params = params();
    let store = crapcoin_node::Store::open(dir).await.expect("opens");
    let mut saving = Duration::ZERO;
    for page in blocks.chunks(PAGE) {
        let checked: Vec<Arc<CheckedBlock>> = validate::check_batch(page.to_vec(), &params)
            .expect("valid")
            .into_iter()
            .map(Arc::new)
            .collect();
        let started = Instant::now();
        store.save_blocks(&checked).await.expect("saves");
        saving += started.elapsed();
    }
    store.close().await;
    saving
}

async fn status(client: &reqwest::Client, url: &str) -> Value {
    let bytes = client
        .get(format!("{url}/status"))
        .send()
        .await
        .expect("answers")
        .bytes()
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A fresh node syncs `n` blocks from `seed`: the time from its
/// `listening` line to the moment it logs `synced` at height `n` (read off
/// its log pipe: polling its `/status` every few milliseconds would add
/// the polling interval and load the node it measures).
async fn sync_once(client: &reqwest::Client, seed: &Proc, n: usize, with_dir: bool) -> Duration {
    let fresh_dir = tempfile::tempdir().expect("dir");
    let fresh_path = fresh_dir.path().display().to_string();
    let mut args = vec!["--peer", seed.url.as_str()];
    if with_dir {
        args.extend(["--data-dir", fresh_path.as_str()]);
    }
    let fresh = Proc::start_logging(&args);
    let listening = Instant::now();
    let synced = fresh.synced_to(n as u64, Duration::from_secs(300));
    assert_eq!(
        status(client, &fresh.url).await["height"].as_u64(),
        Some(n as u64)
    );
    synced.saturating_duration_since(listening)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn median_ratio(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `rounds` rounds, each measuring the in-process bound (the median of
/// three runs) and then both syncs right after it, so a change in the
/// machine's load hits all three alike; medians of the rounds are reported.
async fn sync_bench(client: &reqwest::Client, n: usize, rounds: usize) {
    let blocks = make_chain(n);
    let json = json_round_trip(&blocks);
    let seed_dir = tempfile::tempdir().expect("dir");
    let saving = fill_data_dir(seed_dir.path(), &blocks).await;
    let seed_path = seed_dir.path().display().to_string();
    let seed = Proc::start(&["--data-dir", &seed_path]);
    assert_eq!(
        status(client, &seed.url).await["height"].as_u64(),
        Some(n as u64)
    );
    let (mut bounds, mut stored, mut memory) = (Vec::new(), Vec::new(), Vec::new());
    let (mut stored_ratio, mut memory_ratio) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let bound = median((0..3).map(|_| validate_in_process(&blocks)).collect());
        let with_dir = sync_once(client, &seed, n, true).await;
        let without = sync_once(client, &seed, n, false).await;
        stored_ratio.push(with_dir.as_secs_f64() / bound.as_secs_f64());
        memory_ratio.push(without.as_secs_f64() / bound.as_secs_f64());
        bounds.push(bound);
        stored.push(with_dir);
        memory.push(without);
    }
    println!(
        "| sync {n} blocks from listening (median of {rounds} rounds) | SQLite data dir {} / no data dir {} | in-process bound {} | ratio {:.2} / {:.2} |",
        ms(median(stored)),
        ms(median(memory)),
        ms(median(bounds)),
        median_ratio(stored_ratio),
        median_ratio(memory_ratio)
    );
    println!(
        "| parts of it, in-process | JSON pages out and back {} | SQLite saves {} | |",
        ms(json),
        ms(saving)
    );
    println!(
        "| start-up on a {n}-block data dir (restore, all re-validated) | {} | | |",
        ms(seed.started_in)
    );
}

async fn throughput(client: &reqwest::Client, url: &str, path: &str, runtime: &str) {
    let url = format!("{url}{path}");
    // Warm up (and fill the /blockchain cache).
    for _ in 0..20 {
        client
            .get(&url)
            .send()
            .await
            .expect("answers")
            .bytes()
            .await
            .expect("body");
    }
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let mut count = 0u64;
    let mut bytes = 0usize;
    while started.elapsed() < window {
        let body = client
            .get(&url)
            .send()
            .await
            .expect("answers")
            .bytes()
            .await
            .expect("body");
        bytes = body.len();
        count += 1;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    println!("| GET {path} ({bytes} bytes), {runtime} | {rate:.0} req/s sequential | | |");
}

async fn http_bench(client: &reqwest::Client) {
    let blocks = make_chain(1000);
    let dir = tempfile::tempdir().expect("dir");
    fill_data_dir(dir.path(), &blocks).await;
    let path = dir.path().display().to_string();
    for (threads, runtime) in [("1", "current_thread"), ("2", "multi_thread (2 workers)")] {
        let node = Proc::start(&["--data-dir", &path, "--threads", threads]);
        throughput(client, &node.url, "/status", runtime).await;
        throughput(client, &node.url, "/blockchain", runtime).await;
        drop(node);
    }
}

async fn idle_bench() {
    let fresh = Proc::start(&[]);
    println!(
        "| start-up to listening, fresh node | {} | | |",
        ms(fresh.started_in)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("| idle RSS, no data dir | {} KiB | | |", fresh.rss_kib());
    drop(fresh);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().display().to_string();
    let stored = Proc::start(&["--data-dir", &path]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "| idle RSS, SQLite data dir | {} KiB | | |",
        stored.rss_kib()
    );
}

/// The end of the line: a peer of the last node that answers `/status`
/// as a node of the network (so the node keeps it), refuses gossip
/// streams (so the node pushes it `POST /block`) and stamps each block's
/// arrival the moment its push is read. Returns its URL and the arrivals
/// (block hash, when).
async fn line_sink(
    last_status: Value,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut status = last_status;
    status["url"] = Value::String(url.clone());
    status["node_id"] = Value::String("sink".to_owned());
    status["height"] = Value::from(0);
    let status = bytes::Bytes::from(status.to_string());
    let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(serve_http(listener, true, move |req| {
        let (status, arrived) = (status.clone(), arrived.clone());
        async move {
            use http_body_util::BodyExt;
            let path = req.uri().path().to_owned();
            let post = req.method() == hyper::Method::POST;
            let body = req.into_body().collect().await?.to_bytes();
            let at = Instant::now();
            let (code, answer) = match (post, path.as_str()) {
                (false, "/status") => (200, status),
                (false, "/peers") => (200, bytes::Bytes::from_static(b"[]")),
                (true, "/peers") => (200, bytes::Bytes::from_static(b"{\"result\":\"added\"}")),
                (true, "/block") => {
                    if let Ok(block) = serde_json::from_slice::<Value>(&body)
                        && let Some(hash) = block["hash"].as_str()
                    {
                        let _ = arrived.send((hash.to_owned(), at));
                    }
                    (200, bytes::Bytes::from_static(b"{\"result\":\"accepted\"}"))
                }
                _ => (
                    404,
                    bytes::Bytes::from_static(b"{\"reason\":\"not_found\"}"),
                ),
            };
            let mut response = hyper::Response::new(http_body_util::Full::new(answer));
            *response.status_mut() = hyper::StatusCode::from_u16(code).expect("a status");
            Ok(response)
        }
    }));
    (url, arrivals)
}

/// A bench server's answer.
type Answer = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, hyper::Error>;

/// Serves HTTP/1.1 on `listener`, each request answered by `handle`, each
/// connection in a task of its own (with `TCP_NODELAY`, as a node's, when
/// `nodelay`), until accepting fails.
async fn serve_http<F, A>(listener: tokio::net::TcpListener, nodelay: bool, handle: F)
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> A + Clone + Send + 'static,
    A: Future<Output = Answer> + Send + 'static,
{
    while let Ok((stream, _)) = listener.accept().await {
        if nodelay {
            let _ = stream.set_nodelay(true);
        }
        let service = hyper::service::service_fn(handle.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A block along a line of `len` nodes, `runs` times; with `stored`, each
/// node keeps its chain in SQLite (as watercooler's nodes do), so every
/// hop also writes the block to disk.
///
/// Timed from the moment the bench asks the first node to mine to the
/// moment the block reaches [`line_sink`], a peer of the last node: `len`
/// hops of the line, the request to mine, and the last node's push to the
/// sink. (Until issue 13's fifth pass the bench polled the last node for
/// the block every 0.5 ms, which tokio's millisecond timer made 1 to 2
/// ms, and timed from the answer to the request to mine.)
async fn line_bench(client: &reqwest::Client, len: usize, runs: usize, stored: bool) {
    let dirs = tempfile::tempdir().expect("dir");
    let mut line: Vec<Proc> = Vec::with_capacity(len);
    for i in 0..len {
        let mut args = vec![
            "--target-peers".to_owned(),
            "1".to_owned(),
            "--max-peers".to_owned(),
            "2".to_owned(),
        ];
        if stored {
            let dir = dirs.path().join(format!("n{i}"));
            args.extend(["--data-dir".to_owned(), dir.display().to_string()]);
        }
        if let Some(prev) = line.last() {
            args.extend(["--peer".to_owned(), prev.url.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        line.push(Proc::start(&args));
    }
    // Let announcements settle: every inner node has two peers.
    let settle = Instant::now();
    for node in &line[1..len - 1] {
        while status(client, &node.url).await["peers"].as_u64() != Some(2) {
            assert!(
                settle.elapsed() < Duration::from_secs(60),
                "line did not form"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let first = &line[0].url;
    let last = &line[len - 1].url;
    let (sink, mut arrivals) = line_sink(status(client, last).await).await;
    let added = client
        .post(format!("{last}/admin/peers"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "url": sink }).to_string())
        .send()
        .await
        .expect("answers");
    assert!(
        added.status().is_success(),
        "the sink was not added: {added:?}"
    );
    let mut delays = Vec::with_capacity(runs);
    for _ in 0..runs {
        let asked = Instant::now();
        let answer = client
            .post(format!("{first}/mine"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("answers");
        let mined: Value =
            serde_json::from_slice(&answer.bytes().await.expect("body")).expect("json");
        let hash = mined["hash"].as_str().expect("hash").to_owned();
        let arrived = loop {
            let (got, at) = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
                .await
                .expect("block lost on the line")
                .expect("the sink runs");
            if got == hash {
                break at;
            }
        };
        delays.push(arrived - asked);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delays.sort();
    let median = delays[delays.len() / 2];
    let p99 = delays[(delays.len() * 99 / 100).min(delays.len() - 1)];
    let storage = if stored { "SQLite" } else { "no data dir" };
    println!(
        "| block along a line of {len} nodes, {storage} ({runs} blocks) | median {} | p99 {} | max {} |",
        ms(median),
        ms(p99),
        ms(delays[delays.len() - 1])
    );
}

/// The message a floor relay passes on: about a block's JSON.
const FLOOR_MESSAGE: usize = 400;

/// A relay process of `line-floor`, killed by PID when dropped.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One relay of `line-floor` (this benchmark started with `--relay MODE
/// PORT`): prints its port, then passes every message it gets on to
/// 127.0.0.1:PORT, over one TCP stream (`tcp`) or as an HTTP POST whose
/// answer it awaits in a task of its own (`http`), answering its own
/// caller at once.
fn relay_main(mode: &str, next: u16) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        println!("{}", listener.local_addr().expect("addr").port());
        use std::io::Write as _;
        std::io::stdout().flush().expect("flushed");
        if mode == "tcp" {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut down = tokio::net::TcpStream::connect(("127.0.0.1", next))
                .await
                .expect("connects");
            down.set_nodelay(true).expect("nodelay");
            let (mut up, _) = listener.accept().await.expect("accepts");
            up.set_nodelay(true).expect("nodelay");
            let mut message = [0u8; FLOOR_MESSAGE];
            while up.read_exact(&mut message).await.is_ok() {
                down.write_all(&message).await.expect("relayed");
            }
            return;
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let url: Arc<str> = format!("http://127.0.0.1:{next}/block").into();
        serve_http(listener, true, move |req| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                use http_body_util::BodyExt;
                let body = req.into_body().collect().await?.to_bytes();
                tokio::spawn(async move {
                    let _ = client.post(&*url).body(body).send().await;
                });
                Ok(hyper::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(b"{}"),
                )))
            }
        })
        .await;
    });
}

/// `line-floor`: a line of `len` relays (see [`relay_main`]), a message
/// along it `runs` times, per mode.
async fn floor_bench(len: usize, runs: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for mode in ["tcp", "http"] {
        let sink = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let mut port = sink.local_addr().expect("addr").port();
        let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let receiving = tokio::spawn(async move {
            if mode == "tcp" {
                let (mut last, _) = sink.accept().await.expect("accepts");
                let mut message = [0u8; FLOOR_MESSAGE];
                while last.read_exact(&mut message).await.is_ok() {
                    let _ = arrived.send(Instant::now());
                }
                return;
            }
            // Without TCP_NODELAY, as BENCHMARKS.md's floor was measured
            // (the arrival is stamped before the answer).
            serve_http(sink, false, move |req| {
                let arrived = arrived.clone();
                async move {
                    use http_body_util::BodyExt;
                    req.into_body().collect().await?;
                    let _ = arrived.send(Instant::now());
                    Ok(hyper::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"{}"),
                    )))
                }
            })
            .await;
        });
        let mut relays: Vec<Relay> = Vec::with_capacity(len - 1);
        for _ in 1..len {
            let mut child = Command::new(std::env::current_exe().expect("own path"))
                .args(["--relay", mode, &port.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("relay starts");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("port line");
            port = line.trim().parse().expect("a port");
            relays.push(Relay(child));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut head = if mode == "tcp" {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connects");
            stream.set_nodelay(true).expect("nodelay");
            Some(stream)
        } else {
            None
        };
        let message = [7u8; FLOOR_MESSAGE];
        let mut delays = Vec::with_capacity(runs);
        // Ten more first, to open every connection and warm every relay.
        for run in 0..runs + 10 {
            let sent = Instant::now();
            match head.as_mut() {
                Some(stream) => stream.write_all(&message).await.expect("sent"),
                None => {
                    client
                        .post(format!("http://127.0.0.1:{port}/block"))
                        .body(message.to_vec())
                        .send()
                        .await
                        .expect("answered");
                }
            }
            let at = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
                .await
                .expect("arrives in time")
                .expect("arrives");
            if run >= 10 {
                delays.push(at - sent);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        receiving.abort();
        drop(relays);
        delays.sort();
        let median = delays[delays.len() / 2];
        println!(
            "| a message along a line of {len} bare relays, {mode} ({runs} messages) | median {} | {:.3} ms a hop | p99 {} |",
            ms(median),
            median.as_secs_f64() * 1e3 / (len - 1) as f64,
            ms(delays[(delays.len() * 99 / 100).min(delays.len() - 1)])
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, mode, port] = &args[..]
        && flag == "--relay"
    {
        relay_main(mode, port.parse().expect("a port"));
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        println!("network benchmark: run it with `cargo bench -p crapcoin-node --bench network`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        // `cargo bench ... --bench network -- sync http` runs only those
        // parts (idle, sync, http, line, line-sqlite, line-floor); no names runs them
        // all.
        let parts: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let run = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
        println!("node binary: {}", bin());
        println!("| what | result | | |\n| --- | --- | --- | --- |");
        if run("idle") {
            idle_bench().await;
        }
        if run("sync") {
            // A 1,000-block sync takes tens of milliseconds, where one
            // slice of the machine's other load weighs more: more rounds.
            sync_bench(&client, 1_000, 9).await;
            sync_bench(&client, 10_000, 3).await;
        }
        if run("http") {
            http_bench(&client).await;
        }
        if run("line") {
            line_bench(&client, 50, 100, false).await;
        }
        if run("line-sqlite") {
            line_bench(&client, 50, 100, true).await;
        }
        if run("line-floor") {
            floor_bench(50, 100).await;
        }
    });
}
