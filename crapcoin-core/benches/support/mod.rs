//! What both bench binaries share: a deterministic chain of one-transfer
//! blocks, built once per process, and the clock they measure with.
//!
//! Difficulty is 4 bits (about 16 hashes a block) so that building 10,000
//! blocks takes a fraction of a second: the benches measure validation, not
//! the proof-of-work search that produced the blocks. Blocks are built by
//! hand rather than by a `Node` so the fixture depends only on the protocol
//! types the benches exercise.

use std::time::{Duration, Instant};

use crapcoin_core::block::tx_root;
use crapcoin_core::chain::Outcome;
use crapcoin_core::{
    Block, BlockHeader, Chain, CheckedBlock, Params, Transaction, Wallet, mining, validate,
};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Proof-of-work bits of the fixture network.
const DIFFICULTY: u8 = 4;

/// Wallets that mine and trade; a handful, as in a small test network.
const WALLETS: u64 = 4;

/// Milliseconds between consecutive block timestamps.
const BLOCK_INTERVAL_MS: u64 = 1_000;

/// A stored chain: genesis, `WALLETS` coinbase-only blocks that fund the
/// wallets, then one-transfer blocks.
pub(crate) struct Fixture {
    /// The fixture network.
    pub(crate) params: Params,
    /// Genesis plus the funding blocks: where a node syncing `transfers`
    /// starts, so every block of the measured segment carries a transfer.
    pub(crate) funded: Chain,
    /// The one-transfer blocks, unchecked, as a syncing node receives them.
    pub(crate) transfers: Vec<Block>,
    /// `transfers` after [`validate::check_batch`], for benches that start
    /// from checked blocks (`Chain::insert`).
    pub(crate) checked: Vec<CheckedBlock>,
    /// A clock reading at which every block's timestamp is acceptable.
    pub(crate) now_ms: u64,
}

impl Fixture {
    /// Builds and validates a chain carrying `transfers` one-transfer blocks.
    ///
    /// # Panics
    ///
    /// If the built chain does not validate: the benches would otherwise
    /// measure an error path.
    pub(crate) fn build(transfers: usize) -> Self {
        let params = Params::with_difficulty(DIFFICULTY);
        let chain_id = params.chain_id();
        let wallets: Vec<Wallet> = (1..=WALLETS).map(Wallet::from_seed).collect();
        let mut nonces = vec![0u64; wallets.len()];

        let genesis = params.genesis();
        let mut prev = genesis.header.clone();
        let mut next_block = |miner: &Wallet, tx: Option<Transaction>| {
            let header = BlockHeader {
                height: prev.height + 1,
                prev_hash: prev.hash(),
                timestamp: prev.timestamp + BLOCK_INTERVAL_MS,
                difficulty: DIFFICULTY,
                nonce: 0,
                miner: miner.address(),
                tx_root: tx_root(tx.as_ref()),
            };
            let header = mining::mine_blocking(header);
            prev = header.clone();
            Block { header, tx }
        };

        let funding: Vec<Block> = wallets.iter().map(|w| next_block(w, None)).collect();
        // Each block's sender mines it, so it earns `block_reward + fee` for
        // every 2 coins it spends and can never run dry.
        let transfers: Vec<Block> = (0..transfers)
            .map(|i| {
                let from = i % wallets.len();
                let to = (i + 1) % wallets.len();
                let tx =
                    wallets[from].transfer(&chain_id, wallets[to].address(), 1, 1, nonces[from]);
                nonces[from] += 1;
                next_block(&wallets[from], Some(tx))
            })
            .collect();
        let now_ms = prev.timestamp;

        let mut funded = Chain::new(params.clone());
        let funding = validate::check_batch(funding, &params).expect("funding blocks are valid");
        let outcome = funded
            .insert_segment(funding, now_ms)
            .expect("funding blocks connect");
        assert!(matches!(outcome, Outcome::TipChanged(_)));

        let checked =
            validate::check_batch(transfers.clone(), &params).expect("transfer blocks are valid");
        let mut synced = funded.clone();
        let outcome = synced
            .insert_segment(checked.clone(), now_ms)
            .expect("transfer blocks connect");
        assert!(matches!(outcome, Outcome::TipChanged(_)));
        assert_eq!(synced.height(), WALLETS + transfers.len() as u64);

        Self {
            params,
            funded,
            transfers,
            checked,
            now_ms,
        }
    }
}

/// A criterion measurement of the bench thread's on-CPU time.
///
/// The benches run on shared machines where other jobs take the cores for
/// whole time slices: wall-clock samples of the same work then differ by
/// 2× from one second to the next. Time actually spent on a CPU by this
/// thread does not count those waits, so two benches measured a few seconds
/// apart stay comparable. (Cache and memory-bandwidth contention from the
/// other jobs still show.) Where the thread CPU clock is missing this falls
/// back to wall time and says so.
pub(crate) struct CpuTime {
    /// Set when the thread CPU clock is unavailable: wall time since then.
    fallback: Option<Instant>,
    /// Formats like criterion's default measurement (both count nanoseconds).
    wall: WallTime,
}

impl CpuTime {
    pub(crate) fn new() -> Self {
        let fallback = if thread_cpu_time().is_some() {
            None
        } else {
            eprintln!("no per-thread CPU clock: measuring wall time instead");
            Some(Instant::now())
        };
        Self {
            fallback,
            wall: WallTime,
        }
    }

    /// The clock reading: CPU time this thread has used so far.
    pub(crate) fn now(&self) -> Duration {
        match self.fallback {
            Some(origin) => origin.elapsed(),
            None => thread_cpu_time().expect("the CPU clock was readable at start"),
        }
    }
}

/// The calling thread's CPU time, to the nanosecond. (Linux's
/// `/proc/thread-self/schedstat` is only brought up to date at scheduler
/// ticks, too coarse for microsecond benches.)
#[cfg(unix)]
#[allow(unsafe_code, reason = "std has no thread CPU clock")]
fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec` for the whole call, and
    // `clock_gettime` writes nothing else.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return None;
    }
    let secs = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(not(unix))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        self.now()
    }

    fn end(&self, start: Duration) -> Duration {
        self.now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}
