//! Time in tests: the wall clock in milliseconds, and bounded polling.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds since the Unix epoch, as nodes stamp blocks and reports
/// (core's own system-clock reading).
pub use crapcoin_core::clock::now_ms;

/// Polls `check` every `every` until it answers true or `limit` passes;
/// returns whether it did. `check` runs at least once.
pub async fn poll<F, Fut>(limit: Duration, every: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls the async `check` every 50 ms until it is true or `limit` passes;
/// returns whether it became true.
pub async fn eventually<F, Fut>(limit: Duration, check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll(limit, Duration::from_millis(50), check).await
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns
/// whether it held.
pub async fn holds_within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(limit, Duration::from_millis(20), || {
        std::future::ready(cond())
    })
    .await
}
