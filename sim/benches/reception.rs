//! CPU per block reception in simulation, against one ed25519
//! verification measured in the same run (BENCHMARKS.md, "Simulation in
//! virtual time").
//!
//! A node on a virtual clock (as `simulation` runs it) receives a fresh
//! block holding one transfer from a peer: checks it, adopts it as its
//! tip, stores it (in memory), tells its observers. Three figures:
//!
//! - `reception/first`: the process has not seen the block's signature
//!   (the first node of a simulation to receive it; what a real node
//!   pays): the signature cache is off;
//! - `reception/cached`: another node of the same process verified it
//!   already (every other node of a simulation): the cache holds it;
//! - `signature/verify_single`: one ed25519 verification, cache off.
//!
//! ```text
//! cargo bench -p crapcoin-sim --bench reception
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crapcoin_core::{Block, Clock, Config, Handle, Node, PeerUrl, Skew, memory, sigcache};
use criterion::Criterion;
use kit::chain::{addr, block_on, chain_id, params, pay, wallet};

/// Blocks in the fixture; a node is relaunched (untimed) when it has
/// taken them all.
const BLOCKS: usize = 4_000;

/// Block 1 pays wallet 1; block k > 1 carries its transfer number k − 2.
fn fixture() -> Vec<Block> {
    let mut blocks = Vec::with_capacity(BLOCKS);
    let mut parent = params().genesis().header.clone();
    for i in 0..BLOCKS {
        let tx = (i > 0).then(|| pay(1, addr(2), 1, 1, i as u64 - 1));
        let block = block_on(&parent, addr(1), tx);
        parent = block.header.clone();
        blocks.push(block);
    }
    blocks
}

struct Receiver {
    runtime: tokio::runtime::Runtime,
    node: Option<Handle>,
    next: usize,
    peer: PeerUrl,
}

impl Receiver {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        Self {
            runtime,
            node: None,
            next: 0,
            peer: "mem://peer".parse().expect("a url"),
        }
    }

    /// The node, fresh (on an empty store) when the fixture ran out.
    fn node(&mut self, blocks: &[Block]) -> Handle {
        if self.node.is_none() || self.next == blocks.len() {
            if let Some(old) = self.node.take() {
                self.runtime.block_on(old.shutdown());
            }
            let node = self.runtime.block_on(async {
                let mut config = Config::in_memory("receiver");
                config.seed = Some(1);
                config.maintenance_interval = Duration::from_secs(3600);
                Node::builder(params())
                    .config(config)
                    .wallet(wallet(9))
                    .network(memory::Network::seeded(1))
                    .clock(Clock::simulated(
                        crapcoin_sim::run::EPOCH_MS,
                        Skew::default(),
                    ))
                    .launch()
                    .await
                    .expect("the node launches")
            });
            self.node = Some(node);
            self.next = 0;
        }
        self.node.clone().expect("launched above")
    }

    /// Times `iters` receptions.
    fn receive(&mut self, blocks: &[Block], iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let node = self.node(blocks);
            let block = blocks[self.next].clone();
            self.next += 1;
            let peer = self.peer.clone();
            let started = Instant::now();
            let ack = self.runtime.block_on(node.receive_block(block, Some(peer)));
            total += started.elapsed();
            assert!(ack.is_ok(), "{ack:?}");
        }
        total
    }
}

fn main() {
    let blocks = Arc::new(fixture());
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let mut group = c.benchmark_group("reception");
    let mut receiver = Receiver::new();
    group.bench_function("first", |b| {
        sigcache::set_enabled(false);
        b.iter_custom(|iters| receiver.receive(&blocks, iters));
    });
    sigcache::set_enabled(true);
    for block in blocks.iter() {
        if let Some(tx) = &block.tx {
            assert!(tx.verify_signature(&chain_id()));
        }
    }
    let mut receiver = Receiver::new();
    group.bench_function("cached", |b| {
        b.iter_custom(|iters| receiver.receive(&blocks, iters));
    });
    group.finish();

    let mut group = c.benchmark_group("signature");
    sigcache::set_enabled(false);
    let tx = blocks[1].tx.clone().expect("a transfer");
    group.bench_function("verify_single", |b| {
        b.iter(|| assert!(black_box(&tx).verify_signature(&chain_id())));
    });
    group.finish();
    c.final_summary();
}
