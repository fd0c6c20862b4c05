//! Validating a stored chain the way a syncing node does, against the bound
//! set by its signatures, in the same run.
//!
//! ```text
//! cargo bench -p crapcoin-core --bench chain_validation
//! ```
//!
//! Issue 2 asks that validating a chain of 10,000 one-transfer blocks runs at
//! no less than 0.8× the single-core ed25519 batch-verification rate. Both
//! sides are measured in one process:
//!
//! - `chain_validation/verify_batch/…`: the bound, [`tx::verify_batch`] over
//!   the segment's signatures and nothing else;
//! - `chain_validation/check_batch+insert_segment/…`: what a syncing node does
//!   with a segment: [`validate::check_batch`] (proof of work, tx roots,
//!   amounts, signatures in one batch) then [`Chain::insert_segment`] (links,
//!   state) on a chain that holds only the funding blocks.
//!
//! Each is run for the whole 10,000-block chain at once and in pages of 500
//! blocks, the node's default sync page. Times are the bench thread's
//! on-CPU time (see `support::CpuTime`), so other jobs on a shared machine
//! do not count. On top of that, the validation benches time one run of the
//! bound next to each of their iterations (in alternating order) and print
//! the median of the per-pair ratios, from which slow drift cancels out.
//!
//! `signature/verify_single` is one signature checked on its own, for
//! reference.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crapcoin_core::chain::Outcome;
use crapcoin_core::{Block, Chain, Transaction, tx, validate};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

#[allow(dead_code, reason = "this bench starts from unchecked blocks only")]
mod support;

use support::{CpuTime, Fixture};

/// One-transfer blocks in the validated chain (issue 2).
const BLOCKS: usize = 10_000;

/// The node's default sync page (`Config::page_limit`).
const PAGE: usize = 500;

/// The target of issue 2: chain validation at this fraction of the bound.
const TARGET_RATIO: f64 = 0.8;

fn signatures(blocks: &[Block]) -> Vec<&Transaction> {
    blocks.iter().filter_map(|b| b.tx.as_ref()).collect()
}

/// The bound: batch-verifies the signatures of `blocks`, `page` at a time.
fn verify_signatures(fixture: &Fixture, blocks: &[Block], page: usize) {
    let chain_id = fixture.params.chain_id();
    for page in blocks.chunks(page) {
        tx::verify_batch(&chain_id, &signatures(page)).expect("fixture signatures verify");
    }
}

/// What a syncing node does with `blocks`, `page` at a time; returns the
/// chain so dropping it is not timed.
fn validate_chain(fixture: &Fixture, blocks: Vec<Block>, mut chain: Chain, page: usize) -> Chain {
    let mut blocks = blocks.into_iter();
    loop {
        let page: Vec<Block> = blocks.by_ref().take(page).collect();
        if page.is_empty() {
            return chain;
        }
        let checked =
            validate::check_batch(page, &fixture.params).expect("fixture blocks are valid");
        let outcome = chain
            .insert_segment(checked, fixture.now_ms)
            .expect("fixture blocks connect");
        assert!(matches!(outcome, Outcome::TipChanged(_)));
    }
}

/// How long one run took, on the CPU and on the wall.
#[derive(Clone, Copy)]
struct Timing {
    cpu: Duration,
    wall: Duration,
}

fn measure<T>(clock: &CpuTime, f: impl FnOnce() -> T) -> (Timing, T) {
    let (cpu, wall) = (clock.now(), Instant::now());
    let out = f();
    let timing = Timing {
        cpu: clock.now().saturating_sub(cpu),
        wall: wall.elapsed(),
    };
    (timing, out)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Timings of a validation bench's iterations, each with a run of the bound
/// next to it. Warm-up iterations count too: they are real runs.
#[derive(Default)]
struct Pairs {
    /// `(bound, validation)` of the same segment.
    runs: Vec<(Timing, Timing)>,
}

impl Pairs {
    fn median_of(&self, f: impl Fn(&(Timing, Timing)) -> f64) -> f64 {
        median(self.runs.iter().map(f).collect())
    }

    fn report(&self, label: &str) {
        if self.runs.is_empty() {
            return; // filtered out or only listed
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let bound = self.median_of(|(b, _)| ms(b.cpu));
        let validation = self.median_of(|(_, v)| ms(v.cpu));
        let ratio = self.median_of(|(b, v)| b.cpu.as_secs_f64() / v.cpu.as_secs_f64());
        let wall_ratio = self.median_of(|(b, v)| b.wall.as_secs_f64() / v.wall.as_secs_f64());
        let blocks_per_s = BLOCKS as f64 / (validation / 1e3);
        let sigs_per_s = BLOCKS as f64 / (bound / 1e3);
        let verdict = if ratio >= TARGET_RATIO {
            "meets"
        } else {
            "MISSES"
        };
        println!(
            "chain_validation/ratio/{label}: {n} pairs; CPU-time medians: bound {bound:.1} ms \
             ({sigs_per_s:.0} sigs/s), validation {validation:.1} ms ({blocks_per_s:.0} blocks/s); \
             median ratio {ratio:.3} ({verdict} the {TARGET_RATIO}x target), \
             wall-clock {wall_ratio:.3}",
            n = self.runs.len(),
        );
    }
}

fn chain_validation(c: &mut Criterion<CpuTime>, fixture: &Fixture) {
    let clock = CpuTime::new();
    let mut group = c.benchmark_group("chain_validation");
    // One iteration takes a few hundred milliseconds: ten flat samples of one
    // iteration each are enough for a median, and keep the run short.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BLOCKS as u64));

    for (label, page) in [("10000_blocks", BLOCKS), ("pages_of_500", PAGE)] {
        group.bench_function(BenchmarkId::new("verify_batch", label), |b| {
            b.iter(|| verify_signatures(fixture, &fixture.transfers, page));
        });

        let mut pairs = Pairs::default();
        group.bench_function(BenchmarkId::new("check_batch+insert_segment", label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    // Input as a node has it: owned blocks, a fresh chain.
                    let blocks = fixture.transfers.clone();
                    let chain = fixture.funded.clone();
                    let validate =
                        || measure(&clock, || validate_chain(fixture, blocks, chain, page));
                    let bound = || {
                        measure(&clock, || {
                            verify_signatures(fixture, &fixture.transfers, page);
                        })
                        .0
                    };
                    let ((validation, chain), bound) = if i % 2 == 0 {
                        let v = validate();
                        (v, bound())
                    } else {
                        let b = bound();
                        (validate(), b)
                    };
                    drop(chain);
                    pairs.runs.push((bound, validation));
                    total += validation.cpu;
                }
                total
            });
        });
        pairs.report(label);
    }
    group.finish();

    let mut group = c.benchmark_group("signature");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    let chain_id = fixture.params.chain_id();
    let tx = fixture.transfers[0].tx.as_ref().expect("a transfer block");
    group.bench_function("verify_single", |b| {
        b.iter(|| assert!(black_box(tx).verify_signature(&chain_id)));
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
    chain_validation(&mut c, &fixture);
    c.final_summary();
}
