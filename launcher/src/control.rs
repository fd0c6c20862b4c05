//! Steering a running network: the [`Controller`] behind both the stdin
//! commands and the HTTP control API (what Sauron's dashboard calls).
//!
//! HTTP, on 127.0.0.1 only, CORS open to any origin (the dashboard is
//! served by Sauron on another port):
//!
//! - `POST /hire {"count": N, "behaviour": NAME | null}` → `{"hired": [NAME...]}`
//! - `POST /fire {"node": NAME}` → the node's row
//! - `GET /status` → every node, the tallies, Sauron's URL
//!
//! Errors are `{"error": "...", "reason": "..."}` with a 4xx status, as on
//! the nodes.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use crapcoin_node::sauron::model::BossAction;
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warp::Filter as _;
use warp::http::StatusCode;

use crate::cmdline::{self, Kind};
use crate::fleet::{self, Fleet};
use crate::sauron;
use crate::watch::{NodeView, Watch};

/// Most nodes one `hire` may ask for.
pub const MAX_HIRE: u32 = 64;
/// Largest control request body.
const MAX_BODY: u64 = 4096;

/// A refused command: a reason (snake case) and a message.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Machine-readable reason.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

impl Refusal {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Executes commands against the fleet.
#[derive(Debug, Clone)]
pub struct Controller {
    fleet: Arc<Fleet>,
    watch: Arc<Watch>,
    quit: CancellationToken,
    control_url: Arc<std::sync::OnceLock<String>>,
}

impl Controller {
    /// A controller of `watch`'s fleet; `quit` is cancelled by the `quit`
    /// command.
    pub fn new(watch: Arc<Watch>, quit: CancellationToken) -> Self {
        Self {
            fleet: watch.fleet().clone(),
            watch,
            quit,
            control_url: Arc::default(),
        }
    }

    /// Hires `count` nodes running `behaviour` (a catalogue name or group,
    /// `honest` when `None`, or a plugin as `plugin:PATH`); returns their
    /// names.
    ///
    /// # Errors
    ///
    /// A count of 0 or above [`MAX_HIRE`], an unknown behaviour, or nodes
    /// that did not start (the ones that did keep running).
    pub async fn hire(&self, count: u32, behaviour: Option<&str>) -> Result<Vec<String>, Refusal> {
        if count == 0 || count > MAX_HIRE {
            return Err(Refusal::new(
                "bad_count",
                format!("count must be 1..={MAX_HIRE}, not {count}"),
            ));
        }
        let kind = match behaviour.map(str::trim) {
            None | Some("") => Kind::Honest,
            Some(b) => match b.strip_prefix("plugin:") {
                Some(path) => {
                    let path = PathBuf::from(path);
                    if !path.is_file() {
                        return Err(Refusal::new(
                            "unknown_plugin",
                            format!("no plugin file at {}", path.display()),
                        ));
                    }
                    Kind::Plugin(path)
                }
                None => {
                    cmdline::check_behaviour(b)
                        .map_err(|e| Refusal::new("unknown_behaviour", e))?;
                    Kind::named(b)
                }
            },
        };
        let results: Vec<_> = futures_util::stream::iter(0..count)
            .map(|_| self.fleet.hire(kind.clone()))
            .buffer_unordered(8)
            .collect()
            .await;
        let mut hired = Vec::new();
        let mut failures = Vec::new();
        for result in results {
            match result {
                Ok(name) => {
                    if let Some(view) = self.fleet.view(&name) {
                        sauron::report(&self.fleet, BossAction::Hired, &view);
                    }
                    hired.push(name);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(hired)
        } else {
            Err(Refusal::new(
                "start_failed",
                format!("hired {hired:?}; failed: {}", failures.join("; ")),
            ))
        }
    }

    /// Fires `name` (SIGKILL; not rehired).
    ///
    /// # Errors
    ///
    /// An unknown node, or one not running.
    pub async fn fire(&self, name: &str) -> Result<NodeView, Refusal> {
        // Its counters up to (almost) the kill: SIGKILL loses the rest.
        self.watch.last_poll(name.trim()).await;
        let view = self.fleet.fire(name.trim()).map_err(|e| match e {
            fleet::Error::Unknown(_) => Refusal::new("unknown_node", e.to_string()),
            _ => Refusal::new("not_running", e.to_string()),
        })?;
        tracing::info!(node = %view.name, "fired by hand");
        sauron::report(&self.fleet, BossAction::Fired, &view);
        Ok(self.watch.view(view))
    }

    /// Pauses (`on = false`) or resumes auto mode on every running node
    /// and on every node started later; returns how many running nodes
    /// confirmed, of how many asked.
    ///
    /// # Errors
    ///
    /// Watercooler was started without `--auto`.
    pub async fn set_auto(&self, on: bool) -> Result<(usize, usize), Refusal> {
        if !self.fleet.settings().auto {
            return Err(Refusal::new(
                "auto_not_configured",
                "watercooler was started without --auto",
            ));
        }
        let (confirmed, asked) = self.fleet.set_auto(on).await;
        tracing::info!(on, confirmed, asked, "auto mode switched by hand");
        Ok((confirmed, asked))
    }

    /// `"on"`, `"paused"` or `"off"` (started without `--auto`).
    fn auto_state(&self) -> &'static str {
        match (self.fleet.settings().auto, self.fleet.auto_paused()) {
            (false, _) => "off",
            (true, false) => "on",
            (true, true) => "paused",
        }
    }

    /// Every node, the tallies and the URLs.
    pub fn status(&self) -> Value {
        json!({
            "auto": self.auto_state(),
            "nodes": self.watch.views(),
            "tally": self.fleet.tally(),
            "sauron": self.fleet.sauron_url(),
            "control_url": self.control_url.get(),
            "seed": self.fleet.settings().seed,
            "data_dir": self.fleet.settings().data_dir,
        })
    }

    /// Asks watercooler to stop.
    pub fn quit(&self) {
        self.quit.cancel();
    }

    /// Runs one stdin command line; returns what to print.
    pub async fn command(&self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => String::new(),
            ["hire", rest @ ..] => {
                let (count, behaviour) = match rest {
                    [] => (Ok(1), None),
                    [n] if n.parse::<u32>().is_ok() => (n.parse::<u32>(), None),
                    [b] => (Ok(1), Some(*b)),
                    [n, b] => (n.parse::<u32>(), Some(*b)),
                    _ => return "usage: hire [N] [BEHAVIOUR]".to_owned(),
                };
                let Ok(count) = count else {
                    return "usage: hire [N] [BEHAVIOUR] (N a number)".to_owned();
                };
                match self.hire(count, behaviour).await {
                    Ok(names) => format!("hired {}", names.join(", ")),
                    Err(r) => format!("hire refused: {}", r.message),
                }
            }
            ["fire", name] => match self.fire(name).await {
                Ok(view) => format!("fired {}", view.member.name),
                Err(r) => format!("fire refused: {}", r.message),
            },
            ["fire", ..] => "usage: fire NAME".to_owned(),
            ["auto", switch @ ("on" | "off")] => match self.set_auto(*switch == "on").await {
                Ok((confirmed, asked)) => format!(
                    "auto mode {} on {confirmed} of {asked} nodes",
                    if *switch == "on" { "resumed" } else { "paused" }
                ),
                Err(r) => format!("auto refused: {}", r.message),
            },
            ["auto", ..] => "usage: auto on|off".to_owned(),
            ["status"] => status_table(&self.watch),
            ["quit" | "exit"] => {
                self.quit();
                "quitting".to_owned()
            }
            ["help"] => HELP.to_owned(),
            _ => format!("unknown command {line:?}\n{HELP}"),
        }
    }

    /// Binds the control API on 127.0.0.1 (any free port) and serves it
    /// until `stop`; returns its URL.
    ///
    /// # Errors
    ///
    /// The port could not be bound.
    pub async fn serve(&self, stop: CancellationToken) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let _ = self.control_url.set(url.clone());
        let server = warp::serve(routes(self.clone()))
            .incoming(listener)
            .graceful(async move { stop.cancelled().await });
        self.fleet.tasks().spawn(server.run());
        Ok(url)
    }
}

const HELP: &str = "commands: hire [N] [BEHAVIOUR] | fire NAME | auto on|off | status | quit";

/// A table of every node.
pub fn status_table(watch: &Watch) -> String {
    let mut out = format!(
        "{:<14} {:<28} {:<9} {:>6} {:<12} {:>7}  url\n",
        "node", "behaviour", "state", "height", "tip", "pid"
    );
    for NodeView {
        member: v,
        height,
        tip,
    } in watch.views()
    {
        let tip = tip.map_or("-".to_owned(), |t| t.to_string());
        out.push_str(&format!(
            "{:<14} {:<28} {:<9} {:>6} {:<12} {:>7}  {}\n",
            v.name,
            v.behaviour,
            format!("{:?}", v.state).to_lowercase(),
            height.map_or("-".to_owned(), |h| h.to_string()),
            &tip[..tip.len().min(12)],
            v.pid.map_or("-".to_owned(), |p| p.to_string()),
            v.url.as_deref().unwrap_or("-"),
        ));
    }
    if let Some(url) = watch.fleet().sauron_url() {
        out.push_str(&format!("sauron         dashboard at {url}/\n"));
    }
    out
}

#[derive(Debug, Deserialize)]
struct HireBody {
    count: Option<u32>,
    behaviour: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FireBody {
    node: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoBody {
    on: bool,
}

fn reply(status: StatusCode, body: &Value) -> warp::reply::Response {
    warp::Reply::into_response(warp::reply::with_status(warp::reply::json(body), status))
}

fn refused(r: &Refusal) -> warp::reply::Response {
    let status = match r.reason {
        "unknown_node" => StatusCode::NOT_FOUND,
        "not_running" | "auto_not_configured" => StatusCode::CONFLICT,
        "start_failed" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    reply(status, &json!({"error": r.message, "reason": r.reason}))
}

/// The control API's routes.
pub fn routes(
    controller: Controller,
) -> impl warp::Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let with = {
        let controller = controller.clone();
        warp::any().map(move || controller.clone())
    };
    let hire = warp::path!("hire")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, c: Controller| async move {
            let body: HireBody = match serde_json::from_slice(&body) {
                Ok(b) => b,
                Err(e) => return refused(&Refusal::new("bad_body", e.to_string())),
            };
            match c
                .hire(body.count.unwrap_or(1), body.behaviour.as_deref())
                .await
            {
                Ok(names) => reply(StatusCode::OK, &json!({"hired": names})),
                Err(r) => refused(&r),
            }
        });
    let fire = warp::path!("fire")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, c: Controller| async move {
            let body: FireBody = match serde_json::from_slice(&body) {
                Ok(b) => b,
                Err(e) => return refused(&Refusal::new("bad_body", e.to_string())),
            };
            match c.fire(&body.node).await {
                Ok(view) => reply(StatusCode::OK, &json!(view)),
                Err(r) => refused(&r),
            }
        });
    let auto = warp::path!("auto")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, c: Controller| async move {
            let body: AutoBody = match serde_json::from_slice(&body) {
                Ok(b) => b,
                Err(e) => return refused(&Refusal::new("bad_body", e.to_string())),
            };
            match c.set_auto(body.on).await {
                Ok((confirmed, asked)) => reply(
                    StatusCode::OK,
                    &json!({"auto": c.auto_state(), "confirmed": confirmed, "asked": asked}),
                ),
                Err(r) => refused(&r),
            }
        });
    let status = warp::path!("status")
        .and(warp::get())
        .and(with)
        .map(|c: Controller| reply(StatusCode::OK, &c.status()));
    let cors = warp::cors()
        .allow_any_origin()
        .allow_methods(["GET", "POST", "OPTIONS"])
        .allow_headers(["content-type"]);
    hire.or(fire)
        .unify()
        .or(auto)
        .unify()
        .or(status)
        .unify()
        .with(cors)
        .map(warp::Reply::into_response)
        .recover(|rejection: warp::Rejection| async move {
            let (status, reason) = if rejection.is_not_found() {
                (StatusCode::NOT_FOUND, "not_found")
            } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
            } else if rejection.find::<warp::cors::CorsForbidden>().is_some() {
                (StatusCode::FORBIDDEN, "cors_forbidden")
            } else {
                (StatusCode::BAD_REQUEST, "bad_request")
            };
            Ok::<_, Infallible>(reply(
                status,
                &json!({"error": format!("{rejection:?}"), "reason": reason}),
            ))
        })
        .unify()
}
