//! The per-block hot paths of a node, one at a time.
//!
//! ```text
//! cargo bench -p crapcoin-core --bench hot_paths
//! ```
//!
//! Every input comes from the shared fixture chain (difficulty 4, one
//! transfer per block), so the numbers are for realistic blocks. Times are
//! the bench thread's on-CPU time (see `support::CpuTime`).

use std::hint::black_box;
use std::time::Duration;

use crapcoin_core::block::BlockJson;
use crapcoin_core::chain::Outcome;
use crapcoin_core::{mining, validate};
use criterion::{BatchSize, Criterion, Throughput};

mod support;

use support::{CpuTime, Fixture};

/// Blocks in the fixture: enough for `Chain::insert` to extend a tip many
/// times before the chain is reset.
const BLOCKS: usize = 2_000;

fn hot_paths(c: &mut Criterion<CpuTime>, fixture: &Fixture) {
    let clock = CpuTime::new();
    let mut group = c.benchmark_group("hot_paths");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let block = &fixture.transfers[0];

    group.throughput(Throughput::Elements(1));
    group.bench_function("header_hash", |b| {
        b.iter(|| black_box(&block.header).hash());
    });

    // A difficulty no nonce meets, so every call tries all `CHUNK` nonces.
    let mut header = block.header.clone();
    header.difficulty = u8::MAX;
    group.throughput(Throughput::Elements(mining::CHUNK));
    group.bench_function("mining_search", |b| {
        b.iter(|| assert!(!mining::search(black_box(&mut header), mining::CHUNK)));
    });

    group.throughput(Throughput::Elements(1));
    group.bench_function("validate_check", |b| {
        b.iter_batched(
            || block.clone(),
            |block| validate::check(block, &fixture.params).expect("fixture block is valid"),
            BatchSize::SmallInput,
        );
    });

    // The first transfer block applies to the funded chain's state.
    let mut state = fixture.funded.state().clone();
    let reward = fixture.params.block_reward;
    group.bench_function("state_apply_undo", |b| {
        b.iter(|| {
            let undo = state
                .apply(black_box(block), reward)
                .expect("applies on the funded state");
            state.undo(undo);
        });
    });

    let json = serde_json::to_vec(block).expect("a block serialises");
    group.bench_function("block_json_parse", |b| {
        b.iter(|| BlockJson::parse(black_box(&json)).expect("parses"));
    });

    // Extends the tip block after block; when the fixture runs out the chain
    // is reset (untimed) to the funded one.
    let mut chain = fixture.funded.clone();
    let mut next = 0;
    group.bench_function("chain_insert_tip", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                if next == fixture.checked.len() {
                    chain = fixture.funded.clone();
                    next = 0;
                }
                let run = left.min((fixture.checked.len() - next) as u64) as usize;
                let blocks: Vec<_> = fixture.checked[next..next + run].to_vec();
                let start = clock.now();
                for block in blocks {
                    let outcome = chain
                        .insert(block, fixture.now_ms)
                        .expect("extends the tip");
                    assert!(matches!(outcome, Outcome::TipChanged(_)));
                }
                total += clock.now().saturating_sub(start);
                next += run;
                left -= run as u64;
            }
            total
        });
    });
    group.finish();
}

fn main() {
    // Every signature is verified each time, as before the process-wide
    // cache: these figures are the checks' own cost.
    crapcoin_core::sigcache::set_enabled(false);
    let fixture = Fixture::build(BLOCKS);
    let mut c = Criterion::default()
        .with_measurement(CpuTime::new())
        .configure_from_args();
    hot_paths(&mut c, &fixture);
    c.final_summary();
}
