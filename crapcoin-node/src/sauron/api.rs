//! Sauron's routes and handlers (`docs/sauron.md`). Errors use the node's
//! shape and helpers ([`crate::http::models`]): `{"error", "reason"}` with
//! a 4xx status; every POST has a body limit (`413 too_large`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use crapcoin_core::network::Network as _;
use crapcoin_core::node::now_ms;
use serde_json::json;
use tokio::sync::oneshot;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::db::{EventFilter, EventRow, RequestFilter, RequestRow};
use super::model::{
    self, AtQuery, Boss, EngineEvent, EventsQuery, MAX_BATCH_BODY, MAX_SMALL_BODY, Register,
    RequestsQuery, SampleQuery,
};
use super::replay::EventQuery;
use super::state::{Admit, Polled, State};
use super::tasks::{Insert, Job};
use super::{Shared, StreamItem};
use crate::http::models::{ApiError, json as ok_json, parse_json, recover};

/// The dashboard page and its assets, compiled in.
const INDEX_HTML: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// Most peers one `GET /api/peers` answers.
pub const MAX_SAMPLE: usize = 64;
/// Peers answered when `count` is not given.
const DEFAULT_SAMPLE: usize = 8;

fn with_shared(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (Arc<Shared>,), Error = Infallible> + Clone {
    warp::any().map(move || shared.clone())
}

fn body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(limit).and(warp::body::bytes())
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

fn unavailable(error: impl ToString) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static(content_type),
    );
    response
}

/// 409 `replaying`: a replay takes no registrations or reports.
fn replaying(shared: &Shared) -> Result<(), ApiError> {
    if shared.replay.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "replaying",
            "this Sauron replays a simulation log: it takes no nodes or reports",
        ));
    }
    Ok(())
}

fn not_replaying() -> ApiError {
    ApiError::bad_request(
        "not_replaying",
        "at_ms is a replay's position: only `sauron --replay` takes it",
    )
}

/// Answers from the in-memory state: live, now; in a replay, as of
/// `?at_ms=` (the log's end without it), with the position as `now`.
fn read(shared: &Shared, at: AtQuery, f: impl FnOnce(&State, u64) -> Response) -> Response {
    match (&shared.replay, at.at_ms) {
        (Some(replay), at_ms) => replay.view(at_ms, |v| f(v.state, v.at_ms)),
        (None, Some(_)) => not_replaying().into_response(),
        (None, None) => f(&shared.state(), now_ms()),
    }
}

/// A read route of the in-memory state at `path` (`/api/NAME`).
fn state_route(
    name: &'static str,
    shared: Arc<Shared>,
    f: fn(&State, u64) -> Response,
) -> BoxedFilter<(Response,)> {
    warp::path("api")
        .and(warp::path(name))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<AtQuery>())
        .and(with_shared(shared))
        .map(move |at: AtQuery, shared: Arc<Shared>| read(&shared, at, f))
        .boxed()
}

/// `GET /api/replay`: the replayed log's header and extent, and the
/// faults in effect at `?at_ms=`; 404 `not_replaying` when live.
fn replay(at: AtQuery, shared: Arc<Shared>) -> Response {
    match &shared.replay {
        Some(replay) => ok_json(&replay.describe(at.at_ms)),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_replaying",
            "this Sauron watches live nodes (start it with --replay FILE)",
        )
        .into_response(),
    }
}

/// Every route, with rejections recovered into JSON errors.
pub fn routes(shared: Arc<Shared>) -> BoxedFilter<(Response,)> {
    let s = || with_shared(shared.clone());
    let index = warp::path::end()
        .and(warp::get())
        .map(|| asset(INDEX_HTML, "text/html; charset=utf-8"))
        .boxed();
    let app_js = warp::path!("assets" / "app.js")
        .and(warp::get())
        .map(|| asset(APP_JS, "text/javascript; charset=utf-8"))
        .boxed();
    let style = warp::path!("assets" / "style.css")
        .and(warp::get())
        .map(|| asset(STYLE_CSS, "text/css; charset=utf-8"))
        .boxed();
    let register = warp::path!("api" / "peers")
        .and(warp::post())
        .and(body(MAX_SMALL_BODY))
        .and(s())
        .then(register)
        .boxed();
    let sample = warp::path!("api" / "peers")
        .and(warp::get())
        .and(warp::query::<SampleQuery>())
        .and(s())
        .map(sample)
        .boxed();
    let ingest = warp::path!("api" / "events")
        .and(warp::post())
        .and(body(MAX_BATCH_BODY))
        .and(s())
        .then(ingest)
        .boxed();
    let boss = warp::path!("api" / "boss")
        .and(warp::post())
        .and(body(MAX_SMALL_BODY))
        .and(s())
        .then(boss)
        .boxed();
    let nodes = state_route("nodes", shared.clone(), |state, now| {
        ok_json(&state.nodes(now))
    });
    let requests = warp::path!("api" / "requests")
        .and(warp::get())
        .and(warp::query::<RequestsQuery>())
        .and(s())
        .then(requests)
        .boxed();
    let events = warp::path!("api" / "events")
        .and(warp::get())
        .and(warp::query::<EventsQuery>())
        .and(s())
        .then(events)
        .boxed();
    let blocks = state_route("blocks", shared.clone(), |state, now| {
        ok_json(&state.blocks(now))
    });
    let propagation = state_route("propagation", shared.clone(), |state, now| {
        ok_json(&state.propagation(now))
    });
    let forks = state_route("forks", shared.clone(), |state, now| {
        ok_json(&state.forks(now))
    });
    let rejections = state_route("rejections", shared.clone(), |state, _| {
        ok_json(&state.rejections())
    });
    let consensus = state_route("consensus", shared.clone(), |state, now| {
        ok_json(&state.consensus(now))
    });
    let replay = warp::path!("api" / "replay")
        .and(warp::get())
        .and(warp::query::<AtQuery>())
        .and(s())
        .map(replay)
        .boxed();
    let report_fault = warp::path!("api" / "faults")
        .and(warp::post())
        .and(body(super::faults::MAX_FAULT_BODY))
        .and(s())
        .map(report_fault)
        .boxed();
    let faults = warp::path!("api" / "faults")
        .and(warp::get())
        .and(warp::query::<AtQuery>())
        .and(s())
        .map(faults)
        .boxed();
    let config = warp::path!("api" / "config")
        .and(warp::get())
        .and(s())
        .map(|shared: Arc<Shared>| {
            let c = &shared.config;
            ok_json(&json!({
                "control_url": c.control_url,
                "k": c.k,
                "difficulty": c.difficulty,
                "backend": shared.db.backend(),
                "replay": shared.replay.is_some(),
                "retention": {
                    "requests": c.retention.requests,
                    "events": c.retention.events,
                    "max_age_secs": c.retention.max_age.map(|a| a.as_secs()),
                },
            }))
        })
        .boxed();
    let stream = warp::path!("api" / "stream")
        .and(warp::get())
        .and(s())
        .map(stream)
        .boxed();
    index
        .or(app_js)
        .unify()
        .or(style)
        .unify()
        .or(register)
        .unify()
        .or(sample)
        .unify()
        .or(ingest)
        .unify()
        .or(boss)
        .unify()
        .or(nodes)
        .unify()
        .or(requests)
        .unify()
        .or(events)
        .unify()
        .or(blocks)
        .unify()
        .or(propagation)
        .unify()
        .or(forks)
        .unify()
        .or(rejections)
        .unify()
        .or(consensus)
        .unify()
        .or(config)
        .unify()
        .or(replay)
        .unify()
        .or(report_fault)
        .unify()
        .or(faults)
        .unify()
        .or(stream)
        .unify()
        .recover(recover)
        .unify()
        .map(Reply::into_response)
        .boxed()
}

/// `POST /api/peers`: checks that the URL answers `GET /status` with the
/// same address, then registers (or refreshes) the node.
async fn register(bytes: Bytes, shared: Arc<Shared>) -> Response {
    answer(
        async {
            replaying(&shared)?;
            let reg: Register = parse_json(&bytes)?;
            reg.check()?;
            let status = shared.verify_client.status(&reg.url).await.map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unreachable",
                    format!("{} does not answer GET /status: {e}", reg.url),
                )
            })?;
            if status.address.to_string() != reg.address {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "address_mismatch",
                    format!("{} answers with another address", reg.url),
                ));
            }
            let now = now_ms();
            let (admit, node) = {
                let mut state = shared.state();
                let (admit, node) = state.register(
                    &reg.name,
                    reg.url.as_str(),
                    status.address,
                    &reg.behaviour,
                    now,
                );
                if let Some(node) = &node {
                    if let Some(share) = reg.hash_share {
                        state.announced_share(&node.name, share);
                    }
                    let poll = Polled {
                        height: status.height,
                        tip: status.tip,
                        peers: u64::try_from(status.peers).unwrap_or(u64::MAX),
                        hash_share: status.hash_share.or(reg.hash_share),
                    };
                    state.polled(&node.name, poll, now);
                }
                (admit, node.and_then(|n| state.record(&n.name)))
            };
            let forget = match admit {
                Admit::Full => {
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_nodes",
                        "the node table is full of live nodes",
                    ));
                }
                Admit::Evicted(victim) => vec![victim],
                Admit::In => Vec::new(),
            };
            if let Some(record) = node {
                shared.publish(StreamItem::json(
                    "node",
                    &shared
                        .state()
                        .nodes(now)
                        .into_iter()
                        .find(|n| n.name == record.name),
                ));
                // Best effort: the table is saved again at the next refresh.
                let _ = shared.writer.try_send(Job::Nodes {
                    save: vec![record],
                    forget,
                });
            }
            Ok(ok_json(&json!({ "ok": true })))
        }
        .await,
    )
}

/// `GET /api/peers?count=K&exclude=URL`.
fn sample(query: SampleQuery, shared: Arc<Shared>) -> Response {
    let count = query
        .count
        .map_or(DEFAULT_SAMPLE, |c| usize::try_from(c).unwrap_or(MAX_SAMPLE))
        .min(MAX_SAMPLE);
    let exclude = query.exclude.as_deref().map(|e| e.trim_end_matches('/'));
    let nodes = shared.state().sample(count, exclude, now_ms());
    let answer: Vec<_> = nodes
        .iter()
        .map(|n| json!({"url": n.url, "address": n.address_text(), "name": n.name, "behaviour": n.behaviour}))
        .collect();
    ok_json(&answer)
}

/// Hands rows to the writer and waits for their ids.
async fn store(
    shared: &Shared,
    requests: Vec<RequestRow>,
    events: Vec<EventRow>,
) -> Result<(Vec<RequestRow>, Vec<EventRow>), ApiError> {
    let (reply, answer) = oneshot::channel();
    shared
        .writer
        .send(Job::Insert(Insert {
            requests,
            events,
            reply,
        }))
        .await
        .map_err(|_| unavailable("shutting down"))?;
    answer
        .await
        .map_err(|_| unavailable("shutting down"))?
        .map_err(unavailable)
}

/// `POST /api/events`: one AllSeeingEye batch, all or nothing.
async fn ingest(bytes: Bytes, shared: Arc<Shared>) -> Response {
    answer(
        async {
            replaying(&shared)?;
            let checked = model::check_batch(&bytes)?;
            let (rows, typed): (Vec<_>, Vec<EngineEvent>) =
                checked.events.into_iter().map(|e| (e.row, e.event)).unzip();
            let (requests, events) = store(&shared, checked.requests, rows).await?;
            let stored = requests.len() + events.len();
            let now = now_ms();
            let new_node = {
                let mut state = shared.state();
                let known = state.record(&checked.node).is_some();
                let (admit, _) = state.heard(&checked.node, &checked.url, now);
                for (row, event) in events.iter().zip(&typed) {
                    let at = u64::try_from(row.at_ms).unwrap_or(0);
                    state.event(&row.node, at, event);
                }
                match admit {
                    Admit::Full => None,
                    Admit::In if known => None,
                    Admit::In => state.record(&checked.node).map(|r| (r, Vec::new())),
                    Admit::Evicted(victim) => {
                        state.record(&checked.node).map(|r| (r, vec![victim]))
                    }
                }
            };
            if let Some((record, forget)) = new_node {
                let _ = shared.writer.try_send(Job::Nodes {
                    save: vec![record],
                    forget,
                });
            }
            if shared.streaming() {
                for row in &requests {
                    shared.publish(StreamItem::json("request", row));
                }
                for row in &events {
                    shared.publish(StreamItem::json("event", row));
                }
            }
            Ok(ok_json(&json!({ "stored": stored })))
        }
        .await,
    )
}

/// `POST /api/faults`: a fault the Boss started or ended
/// ([`super::faults::FaultRecord`]; the same `id` again replaces it).
/// Published on the stream as `fault`.
fn report_fault(bytes: Bytes, shared: Arc<Shared>) -> Response {
    answer((|| {
        replaying(&shared)?;
        let record: super::faults::FaultRecord = parse_json(&bytes)?;
        record.check()?;
        let stored = shared.faults().upsert(record).clone();
        shared.publish(StreamItem::json("fault", &stored));
        Ok(ok_json(&json!({ "ok": true })))
    })())
}

/// `GET /api/faults`: the fault timeline, oldest first, and the faults in
/// effect (live: now; replay: at `?at_ms=`).
fn faults(at: AtQuery, shared: Arc<Shared>) -> Response {
    match (&shared.replay, at.at_ms) {
        (Some(replay), at_ms) => ok_json(&replay.faults(at_ms)),
        (None, Some(_)) => not_replaying().into_response(),
        (None, None) => {
            let now = now_ms();
            let records = shared.faults().records();
            let active = super::faults::in_effect(&records, now);
            ok_json(&json!({"now_ms": now, "records": records, "active": active}))
        }
    }
}

/// `POST /api/boss`: what watercooler's Boss (or a person) did.
async fn boss(bytes: Bytes, shared: Arc<Shared>) -> Response {
    answer(
        async {
            replaying(&shared)?;
            let boss: Boss = parse_json(&bytes)?;
            model::check_name(&boss.node)?;
            if let Some(url) = &boss.url
                && url.len() > model::MAX_TEXT_LEN
            {
                return Err(ApiError::bad_request("malformed", "url too long"));
            }
            let at_ms = i64::try_from(boss.at_ms)
                .map_err(|_| ApiError::bad_request("malformed", "at_ms out of range"))?;
            let event = json!({
                "kind": "boss",
                "action": boss.action,
                "node": boss.node,
                "url": boss.url,
                "at_ms": boss.at_ms,
            });
            let row = EventRow {
                id: 0,
                node: boss.node.clone(),
                at_ms,
                kind: "boss".to_owned(),
                event: event.to_string(),
            };
            let (_, rows) = store(&shared, Vec::new(), vec![row]).await?;
            let node = shared
                .state()
                .boss(&boss.node, boss.url.as_deref(), boss.action);
            if let Some(node) = node {
                let _ = shared.writer.try_send(Job::Nodes {
                    save: vec![node.record()],
                    forget: Vec::new(),
                });
                shared.publish(StreamItem::json("node", &node));
            }
            for row in &rows {
                shared.publish(StreamItem::json("boss", row));
            }
            Ok(ok_json(&json!({ "ok": true })))
        }
        .await,
    )
}

fn page<T: serde::Serialize>(items: &[T], limit: i64, id: impl Fn(&T) -> i64) -> Response {
    let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
    let next = if full { items.last().map(id) } else { None };
    ok_json(&model::Page {
        items: items.iter().collect(),
        next,
    })
}

/// `GET /api/requests`.
async fn requests(query: RequestsQuery, shared: Arc<Shared>) -> Response {
    match (&shared.replay, query.at_ms) {
        // A simulation logs no requests.
        (Some(_), _) => return page::<RequestRow>(&[], 1, |r| r.id),
        (None, Some(_)) => return not_replaying().into_response(),
        (None, None) => {}
    }
    let filter = RequestFilter {
        node: query.node,
        route: query.route,
        status: query.status,
        before: query.before,
        limit: model::page_limit(query.limit),
    };
    answer(
        shared
            .db
            .requests(&filter)
            .await
            .map(|rows| page(&rows, filter.limit, |r| r.id))
            .map_err(unavailable),
    )
}

/// `GET /api/events`.
async fn events(query: EventsQuery, shared: Arc<Shared>) -> Response {
    if let Some(replay) = &shared.replay {
        let filter = EventQuery {
            node: query.node.as_deref(),
            kind: query.kind.as_deref(),
            since: query.since,
            before: query.before,
            limit: model::page_limit(query.limit),
        };
        let rows = replay.events(&filter, query.at_ms);
        return page(&rows, filter.limit, |r| r.id);
    }
    if query.at_ms.is_some() {
        return not_replaying().into_response();
    }
    let filter = EventFilter {
        node: query.node,
        kind: query.kind,
        since: query.since,
        before: query.before,
        limit: model::page_limit(query.limit),
    };
    answer(
        shared
            .db
            .events(&filter)
            .await
            .map(|rows| page(&rows, filter.limit, |r| r.id))
            .map_err(unavailable),
    )
}

/// `GET /api/stream`: server-sent events. Each client reads from a
/// fixed-size ring; one that falls behind by more than the ring is
/// disconnected (it may reconnect and reload), so ingest never waits.
fn stream(shared: Arc<Shared>) -> Response {
    let rx = shared.subscribe();
    let cancel = shared.cancel.clone();
    let events = futures_util::stream::unfold((rx, cancel), |(mut rx, cancel)| async move {
        let item = tokio::select! {
            _ = cancel.cancelled() => return None,
            item = rx.recv() => item.ok()?,
        };
        let event = warp::sse::Event::default()
            .event(item.kind)
            .data(item.data.clone());
        Some((Ok::<_, Infallible>(event), (rx, cancel)))
    });
    warp::sse::reply(warp::sse::keep_alive().stream(events)).into_response()
}
