//! Gossip posted to the in-memory network: blocks and transactions whose
//! sender does not wait for the answer ([`crate::Network::post_block`],
//! [`crate::Network::post_tx`]).
//!
//! A call the sender waits for costs a task of the sender's, a timer for
//! its latency and one for its timeout. Gossip needs none of them: its
//! answers are thrown away. Posted messages ("letters") wait in one queue
//! ordered by arrival time, then by order of posting, and one task, the
//! postman, sleeps until the first is due and hands each due letter to
//! its node. The node's answer is polled once where the postman stands;
//! only one that has to wait (a lock held, a sync running) gets a task of
//! its own. In a simulation of thousands of nodes this is most of the
//! cost of a message (BENCHMARKS.md, issue 14).
//!
//! The order is the queue's alone (time, then posting), so a simulation
//! replays it exactly. The queue is bounded ([`MAX_LETTERS`]): past it a
//! letter is handed back and the sender pushes it the usual way.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Waker};
use std::time::Instant;

use tokio::sync::Notify;

use super::Hub;
use crate::clock::Clock;
use crate::tx::Transaction;
use crate::wire::{Payload, PeerUrl};

/// Most letters waiting at once, unless set otherwise
/// ([`super::Network::set_max_letters`]). Past it a post is handed back
/// (and the sender pushes the message itself, under its own bound of
/// sends in flight). A letter is under a hundred bytes, plus its block
/// (a few hundred bytes, boxed) when it carries one: a million letters
/// are at most a few hundred MiB.
pub const MAX_LETTERS: usize = 1 << 20;

/// Letters delivered between two yields of the postman, so a network
/// without latency (every letter due at once) lets other tasks run.
const BATCH: usize = 256;

/// What a letter carries. A block is boxed: the queue moves letters as
/// it sorts them, and a block is many times the size of the rest.
pub(super) enum Mail {
    Block(Box<Payload>),
    Tx(Arc<Transaction>),
}

/// One message on its way.
pub(super) struct Letter {
    /// When it arrives.
    pub(super) due: Instant,
    /// Order of posting: ties in `due` are delivered in it.
    seq: u64,
    pub(super) to: PeerUrl,
    pub(super) from: PeerUrl,
    /// Lost on the way (counted when due, as a lost call is).
    pub(super) lost: bool,
    pub(super) mail: Mail,
}

impl Letter {
    pub(super) fn new(due: Instant, to: PeerUrl, from: PeerUrl, lost: bool, mail: Mail) -> Self {
        Self {
            due,
            seq: 0,
            to,
            from,
            lost,
            mail,
        }
    }

    fn key(&self) -> (Instant, u64) {
        (self.due, self.seq)
    }
}

/// Letters in order of arrival, then of posting, in buckets of one
/// millisecond of arrival time. A bucket is sorted when a letter is first
/// taken from it, and kept sorted by later additions. Letters are due
/// tens of milliseconds out, so a run keeps a hundred buckets or so: a
/// letter costs a push and a pop from a short vector where a binary heap
/// of every letter in flight (hundreds of thousands with 10,000 nodes)
/// cost a walk down and up the heap, a cache miss a level.
#[derive(Default)]
struct Timeline {
    /// Arrival times are counted in milliseconds from here (the first
    /// letter's; an earlier one goes to bucket 0, still in order).
    origin: Option<Instant>,
    buckets: BTreeMap<u64, Bucket>,
    len: usize,
    /// Emptied buckets' vectors, kept for the next buckets: a bucket of a
    /// 10,000-node run grows to a thousand letters, and growing each anew
    /// cost a reallocation and copy every doubling (BENCHMARKS.md, issue
    /// 14). At most [`SPARE_BUCKETS`].
    spare: Vec<Vec<Letter>>,
}

/// Emptied buckets' vectors kept at most: about as many buckets empty as
/// are started, a millisecond of arrival time each, so a few suffice.
const SPARE_BUCKETS: usize = 8;

#[derive(Default)]
struct Bucket {
    /// Latest first once sorted: the next letter is popped off the end.
    letters: Vec<Letter>,
    sorted: bool,
}

impl Bucket {
    fn sort(&mut self) {
        if !self.sorted {
            // Keys are unique (`seq`): the order is the same every run.
            self.letters.sort_unstable_by_key(|l| Reverse(l.key()));
            self.sorted = true;
        }
    }
}

impl Timeline {
    fn push(&mut self, letter: Letter) {
        let origin = *self.origin.get_or_insert(letter.due);
        let ms = letter.due.saturating_duration_since(origin).as_millis();
        let bucket = self
            .buckets
            .entry(u64::try_from(ms).unwrap_or(u64::MAX))
            .or_insert_with(|| Bucket {
                letters: self.spare.pop().unwrap_or_default(),
                sorted: false,
            });
        if bucket.sorted {
            let at = bucket.letters.partition_point(|l| l.key() > letter.key());
            bucket.letters.insert(at, letter);
        } else {
            bucket.letters.push(letter);
        }
        self.len += 1;
    }

    /// Takes the first letter if it is due at `now`; otherwise says when
    /// the first one is due (`None`: no letter waits).
    fn pop_due(&mut self, now: Instant) -> Result<Letter, Option<Instant>> {
        let Some(mut first) = self.buckets.first_entry() else {
            return Err(None);
        };
        let bucket = first.get_mut();
        bucket.sort();
        let due = bucket.letters.last().map(|l| l.due);
        if due.is_none_or(|due| due > now) {
            return Err(due);
        }
        let letter = bucket.letters.pop().expect("a due letter");
        if bucket.letters.is_empty() {
            let emptied = first.remove().letters;
            if self.spare.len() < SPARE_BUCKETS {
                self.spare.push(emptied);
            }
        }
        self.len -= 1;
        Ok(letter)
    }
}

struct Queue {
    letters: Timeline,
    /// Most letters waiting at once.
    capacity: usize,
    /// Letters posted so far (the next one's `seq`).
    posted: u64,
    /// Whether the postman was started.
    started: bool,
    /// When the postman will next look (`None`: when rung): a letter due
    /// earlier rings the bell.
    wake_at: Option<Instant>,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            letters: Timeline::default(),
            capacity: MAX_LETTERS,
            posted: 0,
            started: false,
            wake_at: None,
        }
    }
}

/// The queue of letters and the postman's doorbell.
#[derive(Default)]
pub(super) struct PostOffice {
    queue: Mutex<Queue>,
    /// Rung when a letter becomes the first due, and when the hub goes.
    bell: Arc<Notify>,
}

impl std::fmt::Debug for PostOffice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostOffice")
            .field("waiting", &self.queue().letters.len)
            .finish_non_exhaustive()
    }
}

impl PostOffice {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `letter` for `hub`'s postman (started on the first letter,
    /// in the runtime of the caller). Hands it back when the queue is
    /// full or no runtime runs here.
    pub(super) fn post(&self, hub: &Arc<Hub>, mut letter: Letter) -> Result<(), Letter> {
        let mut queue = self.queue();
        if queue.letters.len >= queue.capacity {
            return Err(letter);
        }
        if !queue.started {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return Err(letter);
            };
            queue.started = true;
            runtime.spawn(postman(
                Arc::downgrade(hub),
                self.bell.clone(),
                hub.clock.clone(),
            ));
        }
        letter.seq = queue.posted;
        queue.posted += 1;
        let earlier = queue.wake_at.is_none_or(|at| letter.due < at);
        if earlier {
            queue.wake_at = Some(letter.due);
        }
        queue.letters.push(letter);
        drop(queue);
        if earlier {
            self.bell.notify_one();
        }
        Ok(())
    }

    /// Sets the most letters waiting at once.
    pub(super) fn set_capacity(&self, letters: usize) {
        self.queue().capacity = letters;
    }

    /// Wakes the postman to find its hub gone.
    pub(super) fn close(&self) {
        self.bell.notify_one();
    }

    /// Takes the first letter if it is due at `now`; otherwise says when
    /// the first one is due (`None`: no letter waits), which is when the
    /// postman looks next.
    fn take_due(&self, now: Instant) -> Result<Letter, Option<Instant>> {
        let mut queue = self.queue();
        let taken = queue.letters.pop_due(now);
        if let Err(next) = taken {
            queue.wake_at = next;
        }
        taken
    }
}

/// Delivers letters as they fall due, until the hub is dropped.
async fn postman(hub: Weak<Hub>, bell: Arc<Notify>, clock: Clock) {
    loop {
        let next = {
            let Some(hub) = hub.upgrade() else { return };
            deliver_due(&hub, clock.now())
        };
        match next {
            Some(due) if due <= clock.now() => tokio::task::yield_now().await,
            Some(due) => {
                tokio::select! {
                    biased;
                    () = bell.notified() => {}
                    () = clock.sleep_until(due) => {}
                }
            }
            None => bell.notified().await,
        }
    }
}

/// Delivers up to [`BATCH`] letters due at `now`; says when the next
/// letter is due.
fn deliver_due(hub: &Hub, now: Instant) -> Option<Instant> {
    for _ in 0..BATCH {
        match hub.post.take_due(now) {
            Ok(letter) => deliver(hub, letter),
            Err(next) => return next,
        }
    }
    Some(now)
}

/// Hands one letter to its node: polls the node's answer once here, and
/// gives it a task only if it has to wait.
fn deliver(hub: &Hub, letter: Letter) {
    // A lost letter, or one for a node that no longer answers, is gone
    // (the sender never reads the answer).
    let Ok(node) = hub.arrive(&letter.to, letter.lost) else {
        return;
    };
    let Letter { from, mail, .. } = letter;
    let mut answer: Pin<Box<dyn Future<Output = ()> + Send>> = match mail {
        Mail::Block(payload) => Box::pin(async move {
            let _ = node.push_block(&from, &payload).await;
        }),
        Mail::Tx(tx) => Box::pin(async move {
            let _ = node.push_tx(&from, &tx).await;
        }),
    };
    // Nothing is woken through this waker: an answer that is not ready
    // goes to a task, whose first poll registers the task's own waker
    // (a future must check its state again on every poll).
    let mut cx = Context::from_waker(Waker::noop());
    if answer.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(answer);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn letter(due: Instant, seq: u64) -> Letter {
        let url: PeerUrl = "mem://a".parse().expect("a url");
        let mut letter = Letter::new(
            due,
            url.clone(),
            url,
            false,
            Mail::Block(Box::new(Payload::Raw(Vec::new()))),
        );
        letter.seq = seq;
        letter
    }

    /// Letters come out by arrival time, then order of posting, across
    /// buckets and within one, also when added to a bucket already taken
    /// from; none comes out before it is due.
    #[test]
    fn the_timeline_gives_letters_in_arrival_then_posting_order() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        let mut line = Timeline::default();
        // Microseconds: two buckets before the first letter's, ties, and
        // letters in the same millisecond posted out of order.
        let dues = [5_000, 900, 5_300, 5_000, 12_000, 200, 5_999, 900];
        for (seq, us) in dues.iter().enumerate() {
            line.push(letter(at(*us), seq as u64));
        }
        assert_eq!(line.pop_due(at(100)).err(), Some(Some(at(200))));
        let mut out = Vec::new();
        while let Ok(l) = line.pop_due(at(5_100)) {
            out.push(l.seq);
        }
        // Then, into the bucket now being taken from: one due between
        // two waiting there, one due at once.
        line.push(letter(at(5_050), 8));
        line.push(letter(at(5_200), 9));
        while let Ok(l) = line.pop_due(at(20_000)) {
            out.push(l.seq);
        }
        assert_eq!(out, [5, 1, 7, 0, 3, 8, 9, 2, 6, 4]);
        assert_eq!(line.len, 0);
        assert_eq!(line.pop_due(at(20_000)).err(), Some(None));
    }

    /// An emptied bucket's vector is kept (a bounded number of them) and
    /// serves a later bucket, which still gives its letters in order.
    #[test]
    fn emptied_buckets_are_reused_in_order_and_bounded() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut line = Timeline::default();
        for ms in 0..2 * SPARE_BUCKETS as u64 {
            line.push(letter(at(ms), ms));
        }
        while line.pop_due(at(1_000)).is_ok() {}
        assert_eq!(line.spare.len(), SPARE_BUCKETS, "kept, up to the bound");
        // Two new buckets take two spares, posted out of order.
        for (seq, ms) in [(0, 2_001), (1, 2_000), (2, 2_001), (3, 2_000)] {
            line.push(letter(at(ms), seq));
        }
        assert_eq!(line.spare.len(), SPARE_BUCKETS - 2);
        let mut out = Vec::new();
        while let Ok(l) = line.pop_due(at(3_000)) {
            out.push(l.seq);
        }
        assert_eq!(out, [1, 3, 0, 2]);
    }
}
