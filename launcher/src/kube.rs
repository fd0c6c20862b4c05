//! `watercooler boss --kubernetes`: the Boss inside a cluster, the pod
//! `watercooler deploy k8s --boss` renders ([`crate::deploy`]).
//!
//! It draws the same seeded fault plan as watercooler's own Boss
//! ([`crate::faults::Planner`], over the node pods' names) and runs it:
//!
//! - kill: `DELETE /api/v1/namespaces/NS/pods/POD` on the API server;
//!   the StatefulSet starts the pod again on its volume (a rehire);
//! - partition, isolate, bridge, latency, loss, skew: each node's
//!   `POST /admin/faults` (the bodies of [`crate::boss::bodies`], with the
//!   admin token from the Secret), which the node ends by itself after
//!   the fault's length;
//! - every fault is reported to Sauron (`POST /api/faults`, start and
//!   end).
//!
//! When `--duration` is over it clears the faults on every node
//! (`DELETE /admin/faults`) and waits to be stopped (a Deployment would
//! restart a Boss that exits, and with it the plan).
//!
//! The API server is reached at `--api-server`: in the rendered pod a
//! `kubectl proxy` sidecar on 127.0.0.1:8001, which authenticates with
//! the pod's service account (its token and CA files,
//! `KUBERNETES_SERVICE_HOST`/`PORT`); the workspace's HTTP client is built
//! without TLS (docs/decisions.md). The bearer token of `--token-file` is
//! sent when the file is there. Every call has a timeout.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use crapcoin_node::sauron::faults::FaultRecord;
use crapcoin_node::sauron::replay::Fault;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::deploy::cluster_menu;
use crate::faults::{MAX_FOR_MS, Member, Menu, Planned, Planner, Timing, describe};

/// The service account's token in a pod.
pub const SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Timeout of one call to the API server.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// `watercooler boss --kubernetes`.
#[derive(Debug, Clone, Parser)]
pub struct BossArgs {
    /// Run against a Kubernetes API server (the only mode).
    #[arg(long, required = true)]
    pub kubernetes: bool,
    /// The node pods' namespace.
    #[arg(long)]
    pub namespace: String,
    /// The API server's base URL, plain HTTP (the rendered pod's
    /// `kubectl proxy` sidecar).
    #[arg(long, default_value = crate::deploy::PROXY_URL, value_parser = http_url)]
    pub api_server: String,
    /// A bearer token for the API server, sent when the file exists.
    #[arg(long, default_value = SA_TOKEN)]
    pub token_file: PathBuf,
    /// Sauron, to report faults to.
    #[arg(long, value_parser = http_url)]
    pub sauron: Option<String>,
    /// Seed of the plan.
    #[arg(long)]
    pub seed: u64,
    /// The menu.
    #[arg(long, default_value = "kill", value_parser = cluster_menu)]
    pub faults: Menu,
    /// Mean seconds between two faults.
    #[arg(long, default_value_t = 30.0)]
    pub boss_interval: f64,
    /// Seconds a network or clock fault lasts.
    #[arg(long, default_value_t = 10.0)]
    pub fault_duration: f64,
    /// Seconds the plan counts a killed pod out.
    #[arg(long, default_value_t = 20.0)]
    pub rehire_after: f64,
    /// Seconds to run the plan.
    #[arg(long)]
    pub duration: u64,
    /// A node's URL: `{pod}` and `{set}` are replaced.
    #[arg(long)]
    pub node_url: String,
    /// An honest StatefulSet and its replicas (`NAME=N`), repeatable.
    #[arg(long, value_parser = set_count)]
    pub honest_set: Vec<(String, u32)>,
    /// A misbehaving StatefulSet and its replicas, repeatable.
    #[arg(long, value_parser = set_count)]
    pub misbehaving_set: Vec<(String, u32)>,
}

fn http_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "{s:?}: plain http:// only (this build has no TLS; reach the API server through `kubectl proxy`)"
        ));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

fn set_count(s: &str) -> Result<(String, u32), String> {
    let (name, n) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: NAME=REPLICAS"))?;
    let n: u32 = n.parse().map_err(|_| format!("{s:?}: NAME=REPLICAS"))?;
    Ok((name.to_owned(), n))
}

impl BossArgs {
    /// The node pods, honest first, with their StatefulSets.
    pub fn members(&self) -> Vec<(Member, String)> {
        let pods = |sets: &[(String, u32)], honest: bool| -> Vec<(Member, String)> {
            sets.iter()
                .flat_map(|(set, n)| {
                    (0..*n).map(move |i| {
                        (
                            Member {
                                name: format!("{set}-{i}"),
                                honest,
                            },
                            set.clone(),
                        )
                    })
                })
                .collect()
        };
        let mut out = pods(&self.honest_set, true);
        out.extend(pods(&self.misbehaving_set, false));
        out
    }

    /// The plan's timing.
    pub fn timing(&self) -> Timing {
        let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.001, 1e9));
        Timing {
            interval: secs(self.boss_interval),
            duration: secs(self.fault_duration),
            rehire_after: Some(secs(self.rehire_after)),
        }
    }

    /// Checks the menu against the nodes.
    ///
    /// # Errors
    ///
    /// Why the plan cannot run.
    pub fn check(&self) -> Result<(), String> {
        let members = self.members();
        let honest = members.iter().filter(|(m, _)| m.honest).count();
        if honest == 0 {
            return Err("no honest node (--honest-set)".to_owned());
        }
        self.faults.check(honest, members.len() - honest)
    }
}

/// One request the Boss made to the API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiCall {
    /// The HTTP method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The status it got (`None`: no answer).
    pub status: Option<u16>,
}

/// The API server, as the Boss uses it: pods deleted in one namespace.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    namespace: String,
    token: Option<String>,
    calls: Mutex<Vec<ApiCall>>,
}

impl Api {
    /// A client of the API server at `base` (plain HTTP) for
    /// `namespace`, sending `token` as bearer when given; every call
    /// within [`API_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// reqwest could not build a client.
    pub fn new(base: &str, namespace: &str, token: Option<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(API_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .no_proxy()
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            namespace: namespace.to_owned(),
            token,
            calls: Mutex::default(),
        })
    }

    /// Every call made so far.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Deletes pod `name` (its StatefulSet starts it again). `Ok(false)`
    /// when it was not there.
    ///
    /// # Errors
    ///
    /// No answer, or another refusal (with its status).
    pub async fn delete_pod(&self, name: &str) -> Result<bool, String> {
        let path = format!("/api/v1/namespaces/{}/pods/{name}", self.namespace);
        let mut request = self
            .http
            .delete(format!("{}{path}?gracePeriodSeconds=0", self.base))
            .header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let result = request.send().await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ApiCall {
                method: "DELETE".to_owned(),
                path: path.clone(),
                status,
            });
        match status {
            Some(200 | 202) => Ok(true),
            Some(404) => Ok(false),
            Some(other) => Err(format!("DELETE {path}: status {other}")),
            None => Err(format!(
                "DELETE {path}: {}",
                result.err().map(|e| e.to_string()).unwrap_or_default()
            )),
        }
    }
}

/// What one planned fault came to (logged, and kept for tests).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The planned fault.
    pub planned: Planned,
    /// `done`, `skipped: WHY` or `failed: WHY`.
    pub outcome: String,
}

fn now_ms() -> u64 {
    crapcoin_core::clock::now_ms()
}

/// Runs the plan of `args` until `--duration` or `cancel`, then clears
/// every node's faults; returns what each fault came to.
pub async fn run(args: &BossArgs, api: &Api, token: &str, cancel: &CancellationToken) -> Vec<Outcome> {
    let members = args.members();
    let sets: Vec<(String, String)> = members
        .iter()
        .map(|(m, set)| (m.name.clone(), set.clone()))
        .collect();
    let url = |pod: &str| -> Option<String> {
        sets.iter()
            .find(|(name, _)| name == pod)
            .map(|(_, set)| args.node_url.replace("{pod}", pod).replace("{set}", set))
    };
    let names: Vec<String> = sets.iter().map(|(n, _)| n.clone()).collect();
    let client = match Client::new() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "the Boss cannot build its HTTP client");
            return Vec::new();
        }
    };
    let planner = Planner::new(
        args.seed,
        members.into_iter().map(|(m, _)| m).collect(),
        args.faults.clone(),
        args.timing(),
    );
    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let mut ends = tokio::task::JoinSet::new();
    for planned in planner {
        let due = start + Duration::from_millis(planned.at_ms);
        if due >= end {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(due.into()) => {}
        }
        let what = describe(&planned.fault);
        let result = match &planned.fault {
            Fault::Crash { node } => match api.delete_pod(node).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("skipped: no such pod".to_owned()),
                Err(e) => Err(format!("failed: {e}")),
            },
            fault => {
                let for_ms = planned.for_ms.unwrap_or(MAX_FOR_MS).clamp(1, MAX_FOR_MS);
                let calls = crate::boss::bodies(|n| url(n), &names, fault, for_ms);
                let mut done = 0;
                let mut failed = Vec::new();
                for (node, body) in calls {
                    let Some(node_url) = url(&node) else { continue };
                    match client.set_faults(&node_url, token, &body).await {
                        Ok(()) => done += 1,
                        Err(e) => failed.push(format!("{node}: {e}")),
                    }
                }
                if done == 0 {
                    Err(format!("failed: {}", failed.join("; ")))
                } else {
                    Ok(())
                }
            }
        };
        let outcome = match result {
            Ok(()) => {
                tracing::info!(id = planned.id, "the Boss: {what}");
                let start_ms = now_ms();
                let record = FaultRecord {
                    id: planned.id,
                    fault: planned.fault.clone(),
                    start_ms,
                    end_ms: planned.for_ms.map(|d| start_ms.saturating_add(d)),
                };
                if let Some(sauron) = &args.sauron {
                    report(&client, sauron, &record).await;
                    let sauron = sauron.clone();
                    let client = client.clone();
                    let length = Duration::from_millis(planned.for_ms.unwrap_or(0));
                    let cancel = cancel.clone();
                    ends.spawn(async move {
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            _ = tokio::time::sleep(length) => {}
                        }
                        let mut record = record;
                        record.end_ms = Some(now_ms().max(record.start_ms));
                        report(&client, &sauron, &record).await;
                    });
                }
                "done".to_owned()
            }
            Err(outcome) => {
                tracing::info!(id = planned.id, %outcome, "the Boss did not: {what}");
                outcome
            }
        };
        outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Outcome { planned, outcome });
        while ends.try_join_next().is_some() {}
    }
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep_until(end.into()) => {}
    }
    ends.abort_all();
    // The run is over: no fault stays on.
    let mut uncleared = 0;
    for name in &names {
        if let Some(node_url) = url(name)
            && client.clear_faults(&node_url, token).await.is_err()
        {
            uncleared += 1;
        }
    }
    tracing::info!(uncleared, "the Boss's run is over; faults cleared");
    let outcomes = outcomes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    outcomes
}

async fn report(client: &Client, sauron: &str, record: &FaultRecord) {
    if let Err(e) = client.report_fault(sauron, record).await {
        tracing::warn!(error = %e, "Sauron did not take a fault report");
    }
}

/// `watercooler boss --kubernetes`: runs the plan, then waits for
/// SIGTERM. Exit 0 (stopped), 2 (usage).
pub async fn main(args: BossArgs) -> i32 {
    if let Err(e) = args.check() {
        eprintln!("watercooler boss: {e}");
        return 2;
    }
    let Ok(token) = std::env::var(crapcoin_node::cookie::TOKEN_ENV) else {
        eprintln!(
            "watercooler boss: {} is not set (the nodes' admin token)",
            crapcoin_node::cookie::TOKEN_ENV
        );
        return 2;
    };
    let bearer = std::fs::read_to_string(&args.token_file)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let api = match Api::new(&args.api_server, &args.namespace, bearer) {
        Ok(api) => api,
        Err(e) => {
            eprintln!("watercooler boss: {e}");
            return 1;
        }
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        terminated().await;
        stop.cancel();
    });
    let plan: Vec<String> = crate::faults::plan(
        args.seed,
        &args.members().into_iter().map(|(m, _)| m).collect::<Vec<_>>(),
        &args.faults,
        args.timing(),
        Some(args.duration.saturating_mul(1000)),
    )
    .iter()
    .map(Planned::line)
    .collect();
    tracing::info!("the Boss's plan (seed {}):\n{}", args.seed, plan.join("\n"));
    let outcomes = run(&args, &api, &token, &cancel).await;
    let done = outcomes.iter().filter(|o| o.outcome == "done").count();
    tracing::info!(done, planned = outcomes.len(), "the Boss is done; waiting to be stopped");
    cancel.cancelled().await;
    0
}

/// Resolves on SIGTERM or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
