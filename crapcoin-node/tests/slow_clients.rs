//! Slow and silent clients cannot lock honest callers out of a node
//! (issue 15, "Hostile peers"): more connections than the node's limit
//! each send a `POST /block` head announcing a 4000-byte body, one byte of
//! it, and then nothing; meanwhile gossip from a peer, fresh calls and a
//! connection that already completed a request still get through. And the
//! two deadlines on a stalled body: `408` when its time is up, a closed
//! connection when it moves no bytes for the idle timeout.

use std::time::Duration;

use clap::Parser;
use crapcoin_node::cli::Args;
use crapcoin_node::run::Running;
use kit::http::{TOKEN, client_with_timeout};
use kit::time::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The attacker's request: a block announced at 4000 bytes, one sent.
const SLOW_HEAD: &[u8] = b"POST /block HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n{";

/// Connection limit of the attacked node.
const MAX: usize = 16;
/// Slow connections the attacker opens: well past the limit.
const SLOW: usize = 40;

async fn start(extra: &[&str]) -> Running {
    let mut args = vec!["crapcoin-node", "--on-demand", "--difficulty", "4"];
    args.extend_from_slice(extra);
    let mut config = Args::try_parse_from(args).expect("args").node_config();
    config.admin_token = Some(TOKEN.to_owned());
    crapcoin_node::run::start(config).await.expect("starts")
}

/// Opens a connection to `running` and sends the slow request's head and
/// one byte of its body.
async fn slow_connection(running: &Running) -> TcpStream {
    let mut stream = TcpStream::connect(running.addr()).await.expect("connects");
    stream.write_all(SLOW_HEAD).await.expect("writes");
    stream
}

/// Whether the server closed `stream` (or answered on it) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(wait, stream.read(&mut buf))
        .await
        .is_ok()
}

/// Reads what the server sends on `stream` until it closes it (at most
/// 64 KiB and `wait`).
async fn read_to_close(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        while all.len() < 64 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&all).into_owned())
}

/// One `GET /status` on a kept-alive raw connection; whether it was
/// answered 200 within 5 s.
async fn status_on(stream: &mut TcpStream) -> bool {
    if stream
        .write_all(b"GET /status HTTP/1.1\r\nhost: node\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = vec![0u8; 8192];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 200")
    )
}

#[tokio::test]
async fn slow_clients_past_the_limit_do_not_lock_out_gossip_or_fresh_callers() {
    let max = MAX.to_string();
    // Deadlines far beyond the test: only the choice of whom to evict can
    // let honest callers in while the slow connections are held.
    let a = start(&[
        "--name",
        "attacked",
        "--max-connections",
        &max,
        "--idle-timeout-ms",
        "120000",
        "--body-timeout-ms",
        "120000",
        "--maintenance-ms",
        "3600000",
    ])
    .await;
    let a_url = a.listen_url();
    let b = start(&[
        "--name",
        "peer",
        "--peer",
        &a_url,
        "--maintenance-ms",
        "3600000",
    ])
    .await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            b.handle()
                .known_peers()
                .iter()
                .any(|p| p.to_string().trim_end_matches('/') == a_url)
        })
        .await,
        "the peer never added the attacked node"
    );

    // A connection that completes a request before the attack and is kept
    // alive: an honest caller the node already knows.
    let mut known = TcpStream::connect(a.addr()).await.expect("connects");
    assert!(status_on(&mut known).await, "served before the attack");

    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        slow.push(slow_connection(&a).await);
    }
    // The slow connections fill the node: either each one past the slots
    // it may hold evicted another, or (were slow ones never evicted) every
    // slot is taken.
    let unproven_cap = MAX - MAX / 4;
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.metrics().connections_evicted() >= (SLOW - unproven_cap) as u64
                || a.metrics().connections_open() >= MAX as u64
        })
        .await,
        "the slow connections were not accepted"
    );
    assert!(a.metrics().connections_open() <= MAX as u64);

    // A fresh caller gets in and is answered.
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        client_with_timeout(Duration::from_secs(5))
            .get(format!("{a_url}/status"))
            .send()
            .await
    })
    .await
    .expect("in time")
    .expect("a fresh connection is served while slow ones are held");
    assert_eq!(status.status(), 200);

    // Gossip: the peer mines a block and pushes it; the attacked node
    // takes it.
    b.handle().mine().await.expect("mines");
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.handle().height() == 1
        })
        .await,
        "the peer's block never reached the attacked node"
    );

    // An admin call on a fresh connection.
    let mined = client_with_timeout(Duration::from_secs(5))
        .post(format!("{a_url}/mine"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("{}")
        .send()
        .await
        .expect("an admin call is served while slow ones are held");
    assert_eq!(mined.status(), 200);
    assert_eq!(a.handle().height(), 2);

    // The caller the node knew kept its connection.
    assert!(
        status_on(&mut known).await,
        "a proven connection was evicted by slow ones"
    );

    // The attacker still holds slots: the honest calls got in beside it,
    // not because the slow connections were let go.
    let mut held = 0;
    for stream in &mut slow {
        if !closed_within(stream, Duration::from_millis(20)).await {
            held += 1;
        }
    }
    assert!(held >= 4, "only {held} slow connections still held");
    assert!(a.metrics().connections_open() <= MAX as u64);

    drop(slow);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn a_body_late_past_its_deadline_is_answered_408() {
    let a = start(&["--idle-timeout-ms", "120000", "--body-timeout-ms", "300"]).await;
    let mut stream = slow_connection(&a).await;
    let answer = read_to_close(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered and closed in time");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    let json: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(json["reason"], "body_timeout", "{answer}");
    assert!(json["error"].is_string(), "{answer}");
    // The node still serves, and took nothing from the half body.
    let client = client_with_timeout(Duration::from_secs(5));
    let status = kit::http::get(&client, &format!("{}/status", a.listen_url())).await;
    assert_eq!(status["height"], 0);
    a.shutdown().await;
}

#[tokio::test]
async fn a_body_that_stops_moving_is_closed_after_the_idle_timeout() {
    let a = start(&["--idle-timeout-ms", "300", "--body-timeout-ms", "120000"]).await;
    let mut stream = slow_connection(&a).await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(5)).await,
        "a stalled body kept its connection"
    );
    assert!(
        eventually(Duration::from_secs(2), || async {
            a.metrics().connections_open() == 0
        })
        .await
    );
    a.shutdown().await;
}
