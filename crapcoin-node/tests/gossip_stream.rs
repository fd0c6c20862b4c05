//! Gossip streams ([`crapcoin_node::gossip`]) on real sockets on
//! 127.0.0.1: the handshake, frames served as the requests they stand
//! for, refusals answered with their reason and nothing written, frames
//! that break the wire's rules answered and the stream closed, and two
//! nodes gossiping over a stream rather than `POST /block`.

use std::time::Duration;

use clap::Parser;
use crapcoin_core::Block;
use crapcoin_node::cli::Args;
use crapcoin_node::gossip::{self, Kind, MAX_FRAME, frame, read_reply};
use crapcoin_node::run::{self, Running};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long anything a test waits for may take.
const LIMIT: Duration = Duration::from_secs(10);

/// A node on 127.0.0.1 that mines only on demand, with `extra` options.
async fn start(extra: &[&str]) -> Running {
    let mut args = vec!["crapcoin-node", "--on-demand", "--difficulty", "4"];
    args.extend_from_slice(extra);
    let args = Args::try_parse_from(args).expect("args");
    run::start(args.node_config()).await.expect("starts")
}

/// Opens a gossip stream to `node`, naming `from` as the sender; returns
/// the stream and the answer's status line.
async fn open(node: &Running, from: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(node.addr()).await.expect("connects");
    let request = format!(
        "POST /gossip HTTP/1.1\r\nhost: {}\r\nupgrade: {}\r\nconnection: upgrade\r\n\
         x-crapcoin-peer: {from}\r\ncontent-length: 0\r\n\r\n",
        node.addr(),
        gossip::PROTOCOL
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("handshake sent");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(LIMIT, stream.read_u8())
            .await
            .expect("answered in time")
            .expect("answered");
        head.push(byte);
        assert!(head.len() < 4096, "answer head too long");
    }
    let head = String::from_utf8(head).expect("utf-8");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (stream, status)
}

/// The next reply on `stream`: its status and JSON.
async fn next_reply(stream: &mut TcpStream) -> (u16, Value) {
    let (status, body) = tokio::time::timeout(LIMIT, read_reply(stream))
        .await
        .expect("a reply in time")
        .expect("a reply");
    (status, serde_json::from_slice(&body).expect("json reply"))
}

/// Writes `bytes` (a frame, or bytes that break the wire) on `stream`: the
/// reply's status and reason.
async fn refused(stream: &mut TcpStream, bytes: &[u8]) -> (u16, String) {
    stream.write_all(bytes).await.expect("sent");
    let (status, answer) = next_reply(stream).await;
    (
        status,
        answer["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Whether `stream` is closed by the node (end of stream) within the limit.
async fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(LIMIT, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Waits until `node` is at `height`.
async fn reaches(node: &Running, height: u64) {
    let started = std::time::Instant::now();
    while node.handle().height() != height {
        assert!(
            started.elapsed() < LIMIT,
            "height {} is not {height}",
            node.handle().height()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The count of `crapcoin_requests_total` for `route`, `method`, `status`.
fn served(node: &Running, route: &str, method: &str, status: u16) -> u64 {
    let text = node.metrics().render(node.handle());
    let key = format!(
        "crapcoin_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
    );
    text.lines()
        .find_map(|line| line.strip_prefix(key.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A block of `miner`'s chain, mined there (same network as every node
/// [`start`]ed: same genesis).
async fn a_block(miner: &Running) -> Block {
    miner.handle().mine().await.expect("mines");
    miner.handle().with_chain(|c| c.tip_block().block().clone())
}

#[tokio::test]
async fn a_stream_serves_frames_as_requests_and_answers_only_refusals() {
    let miner = start(&[]).await;
    let node = start(&[]).await;
    let block = a_block(&miner).await;
    // The sender's URL must name the caller's host (127.0.0.1) to count.
    let (mut stream, status) = open(&node, "http://127.0.0.1:9").await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");

    // Junk: refused with the reason `POST /block` gives, nothing written.
    assert_eq!(
        refused(&mut stream, &frame(Kind::Block, b"{not json")).await,
        (400, "malformed".to_owned())
    );
    assert_eq!(node.handle().height(), 0);
    assert_eq!(
        refused(&mut stream, &frame(Kind::Tx, b"{\"amount\": 1}")).await,
        (400, "malformed".to_owned())
    );
    assert_eq!(node.handle().mempool_len(), 0);
    // A transfer's frame is held to the transfer route's body limit, not
    // the frame's (a block's).
    assert_eq!(
        refused(&mut stream, &frame(Kind::Tx, &[b' '; 3000])).await,
        (413, "too_large".to_owned())
    );

    // A good block, then the same again: taken, and nothing answered
    // (the next reply is the refusal after them, not an answer to them).
    let json = serde_json::to_vec(&block).expect("json");
    stream
        .write_all(&frame(Kind::Block, &json))
        .await
        .expect("sent");
    stream
        .write_all(&frame(Kind::Block, &json))
        .await
        .expect("sent");
    reaches(&node, 1).await;
    assert_eq!(node.handle().with_chain(|c| c.tip()), block.hash());

    // A frame of unknown kind breaks the wire: answered, then closed.
    let mut unknown = 3u32.to_be_bytes().to_vec();
    unknown.extend_from_slice(b"X{}");
    assert_eq!(
        refused(&mut stream, &unknown).await,
        (400, "bad_frame".to_owned())
    );
    assert!(closed(&mut stream).await, "the stream stays open");

    // Every frame was served as its request: counted like one.
    assert_eq!(served(&node, "/block", "POST", 400), 1);
    assert_eq!(served(&node, "/block", "POST", 200), 2);
    assert_eq!(served(&node, "/transactions", "POST", 400), 1);
    assert_eq!(served(&node, "/transactions", "POST", 413), 1);
    assert_eq!(served(&node, "/gossip", "POST", 101), 1);
    // And the node serves on.
    let client = kit::http::client();
    let status = kit::http::get(&client, &format!("{}/status", node.listen_url())).await;
    assert_eq!(status["height"], 1);
    node.shutdown().await;
    miner.shutdown().await;
}

#[tokio::test]
async fn a_long_or_late_frame_is_refused_and_its_stream_closed() {
    let node = start(&["--body-timeout-ms", "300"]).await;
    // Longer than any block: refused on its length, before its body.
    let (mut stream, status) = open(&node, "http://127.0.0.1:9").await;
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let long = u32::try_from(MAX_FRAME + 1).expect("fits").to_be_bytes();
    assert_eq!(
        refused(&mut stream, &long).await,
        (413, "too_large".to_owned())
    );
    assert!(closed(&mut stream).await, "the stream stays open");

    // A frame that stops midway: refused when its time is up.
    let (mut stream, _) = open(&node, "http://127.0.0.1:9").await;
    let whole = frame(Kind::Block, &[b' '; 100]);
    assert_eq!(
        refused(&mut stream, &whole[..20]).await,
        (408, "body_timeout".to_owned())
    );
    assert!(closed(&mut stream).await, "the stream stays open");
    assert_eq!(node.handle().height(), 0);
    node.shutdown().await;
}

#[tokio::test]
async fn gossip_without_the_upgrade_is_refused_with_a_reason() {
    let node = start(&[]).await;
    let client = kit::http::client();
    let answer = client
        .post(format!("{}/gossip", node.listen_url()))
        .body("")
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status(), 426);
    let body: Value = serde_json::from_slice(&answer.bytes().await.expect("body")).expect("json");
    assert_eq!(body["reason"], "upgrade_required");
    // Another protocol is not this one.
    let (_, status) = {
        let mut stream = TcpStream::connect(node.addr()).await.expect("connects");
        let request = format!(
            "POST /gossip HTTP/1.1\r\nhost: {}\r\nupgrade: websocket\r\n\
             connection: upgrade\r\ncontent-length: 0\r\n\r\n",
            node.addr()
        );
        stream.write_all(request.as_bytes()).await.expect("sent");
        let mut head = vec![0u8; 64];
        let n = tokio::time::timeout(LIMIT, stream.read(&mut head))
            .await
            .expect("answered in time")
            .expect("answered");
        ((), String::from_utf8_lossy(&head[..n]).into_owned())
    };
    assert!(status.starts_with("HTTP/1.1 426"), "{status}");
    node.shutdown().await;
}

#[tokio::test]
async fn nodes_gossip_blocks_over_one_stream() {
    let receiver = start(&[]).await;
    let sender = start(&["--peer", &receiver.listen_url()]).await;
    let started = std::time::Instant::now();
    while receiver.handle().known_peers().is_empty() {
        assert!(
            started.elapsed() < LIMIT,
            "the sender never announced itself"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for height in 1..=3 {
        sender.handle().mine().await.expect("mines");
        reaches(&receiver, height).await;
    }
    // One handshake, and every block served as a `POST /block` from it
    // (a push over plain HTTP would be a request and a connection each).
    assert_eq!(served(&receiver, "/gossip", "POST", 101), 1);
    assert_eq!(served(&receiver, "/block", "POST", 200), 3);
    sender.shutdown().await;
    receiver.shutdown().await;
}
