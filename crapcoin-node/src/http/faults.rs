//! `POST/GET/DELETE /admin/faults` (admin): the node's network faults
//! ([`crapcoin_core::faults`]) — what the Boss switches to partition,
//! slow, lose or skew a real node. Its request and answer bodies and its
//! handlers, kept together apart from the other routes.
//!
//! ```text
//! POST /admin/faults   (Authorization: Bearer TOKEN, JSON body ≤ 64 KiB)
//! {
//!   "unreachable": ["http://127.0.0.1:4001"],          // ≤ 1024 URLs; [] clears
//!   "latency": {"mean_ms": 200, "jitter_ms": 50, "to": [urls]},   // `to` optional
//!   "loss": {"rate": 0.2, "to": [urls]},               // rate in [0, 1]
//!   "skew_ms": -90000,                                  // |skew| ≤ a year
//!   "for_ms": 10000                                     // required, 1..=3_600_000
//! }
//! ```
//!
//! Each field present replaces that one fault, all for `for_ms`; fields
//! absent leave the others as they are. The answer (and `GET`'s) is
//! `{"faults": {...}}`, the faults in force in the same shape, each with
//! the Unix time in ms at which it ends (`until_ms` inside `latency` and
//! `loss`; `unreachable_until_ms` and `skew_until_ms` beside the list and
//! the number). `DELETE` ends every fault. A bad body or value is `400`
//! with a reason (`malformed`, `bad_for_ms`, `bad_latency`, `bad_loss`,
//! `bad_skew`, `too_many_peers`) and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crapcoin_core::faults::{
    Active, Current, FaultUpdate, Latency, Loss, MAX_FAULT_PEERS, MAX_LATENCY, MAX_SKEW_MS,
};
use crapcoin_core::network::PeerUrl;
use serde::{Deserialize, Serialize};
use warp::reply::Response;

use super::App;
use super::handlers::{answer, authorize};
use super::models::{ApiError, json, parse_json};

/// Largest body of `POST /admin/faults`.
pub const MAX_FAULTS_BODY: u64 = 64 * 1024;

/// Longest `for_ms`: an hour.
pub const MAX_FOR_MS: i64 = 3_600_000;

/// `POST /admin/faults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsRequest {
    /// Peers whose calls fail as unreachable ones' do; `[]` clears.
    pub unreachable: Option<Vec<PeerUrl>>,
    /// Latency before each call.
    pub latency: Option<LatencyRequest>,
    /// Calls lost at random.
    pub loss: Option<LossRequest>,
    /// How far the node's clock reads from the true time, in ms.
    pub skew_ms: Option<i64>,
    /// How long the faults set last (required).
    pub for_ms: Option<i64>,
}

/// `latency` of [`FaultsRequest`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRequest {
    /// Mean wait, in ms.
    pub mean_ms: i64,
    /// Jitter either way, in ms (default 0).
    #[serde(default)]
    pub jitter_ms: i64,
    /// Only calls to these peers wait (absent: every peer).
    pub to: Option<Vec<PeerUrl>>,
}

/// `loss` of [`FaultsRequest`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossRequest {
    /// Probability that a call is lost, in [0, 1].
    pub rate: f64,
    /// Only calls to these peers may be lost (absent: every peer).
    pub to: Option<Vec<PeerUrl>>,
}

/// The faults in force, as answered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FaultsView {
    /// Unreachable peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Vec<PeerUrl>>,
    /// When the unreachable peers become reachable (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_until_ms: Option<u64>,
    /// Latency before calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyView>,
    /// Calls lost at random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossView>,
    /// The clock's skew, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_ms: Option<i64>,
    /// When the clock is set right again (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_until_ms: Option<u64>,
}

/// `latency` of [`FaultsView`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencyView {
    /// Mean wait, in ms.
    pub mean_ms: u64,
    /// Jitter either way, in ms.
    pub jitter_ms: u64,
    /// The peers whose calls wait (absent: every peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<PeerUrl>>,
    /// When it ends (Unix ms).
    pub until_ms: u64,
}

/// `loss` of [`FaultsView`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LossView {
    /// Probability that a call is lost.
    pub rate: f64,
    /// The peers whose calls may be lost (absent: every peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<PeerUrl>>,
    /// When it ends (Unix ms).
    pub until_ms: u64,
}

/// `{"faults": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultsAnswer {
    /// The faults in force.
    pub faults: FaultsView,
}

impl FaultsView {
    /// The view of `current`, its ends counted from `now_ms` (Unix ms,
    /// true time: not the node's skewed clock).
    pub fn of(current: &Current, now_ms: u64) -> Self {
        let until = |left: Duration| {
            now_ms.saturating_add(u64::try_from(left.as_millis()).unwrap_or(u64::MAX))
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            unreachable: current.unreachable.as_ref().map(|a| a.fault.clone()),
            unreachable_until_ms: current.unreachable.as_ref().map(|a| until(a.left)),
            latency: current
                .latency
                .as_ref()
                .map(|Active { fault, left }| LatencyView {
                    mean_ms: ms(fault.mean),
                    jitter_ms: ms(fault.jitter),
                    to: fault.to.clone(),
                    until_ms: until(*left),
                }),
            loss: current
                .loss
                .as_ref()
                .map(|Active { fault, left }| LossView {
                    rate: fault.rate,
                    to: fault.to.clone(),
                    until_ms: until(*left),
                }),
            skew_ms: current.skew_ms.as_ref().map(|a| a.fault),
            skew_until_ms: current.skew_ms.as_ref().map(|a| until(a.left)),
        }
    }
}

fn too_many(field: &str, peers: Option<&Vec<PeerUrl>>) -> Result<(), ApiError> {
    match peers {
        Some(peers) if peers.len() > MAX_FAULT_PEERS => Err(ApiError::bad_request(
            "too_many_peers",
            format!(
                "`{field}` lists {} peers, more than {MAX_FAULT_PEERS}",
                peers.len()
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks every field of `request` and makes the engine's update of it.
///
/// # Errors
///
/// A `400` [`ApiError`] naming the first bad field.
pub fn update_of(request: FaultsRequest) -> Result<FaultUpdate, ApiError> {
    let for_ms = match request.for_ms {
        None => return Err(ApiError::bad_request("bad_for_ms", "`for_ms` is required")),
        Some(ms) if !(1..=MAX_FOR_MS).contains(&ms) => {
            return Err(ApiError::bad_request(
                "bad_for_ms",
                format!("`for_ms` = {ms} is not in 1..={MAX_FOR_MS}"),
            ));
        }
        Some(ms) => ms.unsigned_abs(),
    };
    too_many("unreachable", request.unreachable.as_ref())?;
    let max_latency_ms = i64::try_from(MAX_LATENCY.as_millis()).unwrap_or(i64::MAX);
    let latency = match request.latency {
        None => None,
        Some(l) => {
            for (field, value) in [("mean_ms", l.mean_ms), ("jitter_ms", l.jitter_ms)] {
                if !(0..=max_latency_ms).contains(&value) {
                    return Err(ApiError::bad_request(
                        "bad_latency",
                        format!("`latency.{field}` = {value} is not in 0..={max_latency_ms}"),
                    ));
                }
            }
            too_many("latency.to", l.to.as_ref())?;
            Some(Latency {
                mean: Duration::from_millis(l.mean_ms.unsigned_abs()),
                jitter: Duration::from_millis(l.jitter_ms.unsigned_abs()),
                to: l.to,
            })
        }
    };
    let loss = match request.loss {
        None => None,
        Some(l) => {
            if !(0.0..=1.0).contains(&l.rate) {
                return Err(ApiError::bad_request(
                    "bad_loss",
                    format!("`loss.rate` = {} is not in [0, 1]", l.rate),
                ));
            }
            too_many("loss.to", l.to.as_ref())?;
            Some(Loss {
                rate: l.rate,
                to: l.to,
            })
        }
    };
    if let Some(skew) = request.skew_ms
        && skew.unsigned_abs() > MAX_SKEW_MS.unsigned_abs()
    {
        return Err(ApiError::bad_request(
            "bad_skew",
            format!("`skew_ms` = {skew} is beyond ±{MAX_SKEW_MS} (a year)"),
        ));
    }
    Ok(FaultUpdate {
        unreachable: request.unreachable,
        latency,
        loss,
        skew_ms: request.skew_ms,
        duration: Duration::from_millis(for_ms),
    })
}

fn current(app: &App) -> Response {
    let view = FaultsView::of(
        &app.handle.faults().current(),
        crapcoin_core::clock::now_ms(),
    );
    json(&FaultsAnswer { faults: view })
}

/// `POST /admin/faults` (admin): sets faults; answers the faults in force.
pub async fn post(auth: Option<String>, body: Bytes, app: Arc<App>) -> Response {
    answer(
        async {
            authorize(&app, auth.as_deref())?;
            let request: FaultsRequest = parse_json(&body)?;
            let update = update_of(request)?;
            app.handle
                .faults()
                .apply(update)
                .map_err(|e| ApiError::bad_request("bad_fault", e))?;
            tracing::info!(node = app.handle.name(), "faults set");
            Ok(current(&app))
        }
        .await,
    )
}

/// `GET /admin/faults` (admin): the faults in force.
pub async fn get(auth: Option<String>, app: Arc<App>) -> Response {
    answer(
        async {
            authorize(&app, auth.as_deref())?;
            Ok(current(&app))
        }
        .await,
    )
}

/// `DELETE /admin/faults` (admin): ends every fault (the skew back to 0).
pub async fn delete(auth: Option<String>, app: Arc<App>) -> Response {
    answer(
        async {
            authorize(&app, auth.as_deref())?;
            app.handle.faults().clear();
            tracing::info!(node = app.handle.name(), "faults cleared");
            Ok(current(&app))
        }
        .await,
    )
}
