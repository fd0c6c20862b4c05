//! `watercooler boss --kubernetes`: the Boss inside a cluster, the pod
//! `watercooler deploy k8s --boss` renders ([`crate::deploy`]).
//!
//! It draws the same seeded fault plan as watercooler's own Boss
//! ([`crate::faults::Planner`], over the node pods' names) and runs it:
//!
//! - kill: `DELETE /api/v1/namespaces/NS/pods/POD` on the API server;
//!   the StatefulSet starts the pod again on its volume (a rehire);
//! - partition, isolate, bridge, latency, loss, skew: each node's
//!   `POST /admin/faults` (the bodies watercooler's Boss sends, `boss::bodies`, with the
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
//! sent when one is given. Every call has a timeout.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use crapcoin_node::sauron::faults::FaultRecord;
use crapcoin_node::sauron::replay::Fault;
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::deploy::cluster_menu;
use crate::faults::{MAX_FOR_MS, Member, Menu, Planned, Planner, Timing, describe};

/// The service account's token in a pod.
pub const SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Calls to nodes in flight at once.
const CONCURRENCY: usize = 16;
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
    /// A file holding a bearer token for the API server (for example
    /// the service account's, `SA_TOKEN`, when `--api-server` is not the
    /// proxy sidecar, which authenticates by itself). Read once.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
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
pub async fn run(
    args: &BossArgs,
    api: &Api,
    token: &str,
    cancel: &CancellationToken,
) -> Vec<Outcome> {
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
    let mut outcomes = Vec::new();
    let mut ends = tokio::task::JoinSet::new();
    let over = CancellationToken::new();
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
                let calls: Vec<(String, String, serde_json::Value)> = calls
                    .into_iter()
                    .filter_map(|(node, body)| Some((url(&node)?, node, body)))
                    .collect();
                let results: Vec<Result<(), String>> = futures_util::stream::iter(calls)
                    .map(|(node_url, node, body)| {
                        let client = &client;
                        async move {
                            client
                                .set_faults(&node_url, token, &body)
                                .await
                                .map_err(|e| format!("{node}: {e}"))
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                let done = results.iter().filter(|r| r.is_ok()).count();
                let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
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
                let record = planned.record(now_ms());
                if let Some(sauron) = &args.sauron {
                    // Start now, end after its length (or when the run is
                    // over); never holding up the plan.
                    let sauron = sauron.clone();
                    let client = client.clone();
                    let length = planned.for_ms.map(Duration::from_millis);
                    let over = over.clone();
                    ends.spawn(async move {
                        report(&client, &sauron, &record).await;
                        match length {
                            Some(length) => tokio::select! {
                                _ = over.cancelled() => {}
                                _ = tokio::time::sleep(length) => {}
                            },
                            None => over.cancelled().await,
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
        outcomes.push(Outcome { planned, outcome });
        while ends.try_join_next().is_some() {}
    }
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep_until(end.into()) => {}
    }
    // The faults still on end with the run: their ends are reported
    // (bounded: each report has the client's timeout).
    over.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while ends.join_next().await.is_some() {}
    })
    .await;
    ends.abort_all();
    // The run is over: no fault stays on.
    let targets: Vec<String> = names.iter().filter_map(|n| url(n)).collect();
    let uncleared = futures_util::stream::iter(targets)
        .map(|node_url| {
            let client = &client;
            async move { client.clear_faults(&node_url, token).await.is_err() }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    tracing::info!(uncleared, "the Boss's run is over; faults cleared");
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
    let bearer = match &args.token_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(token) => Some(token.trim().to_owned()),
            Err(e) => {
                eprintln!("watercooler boss: {}: {e}", path.display());
                return 2;
            }
        },
        None => None,
    };
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
        &args
            .members()
            .into_iter()
            .map(|(m, _)| m)
            .collect::<Vec<_>>(),
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
    tracing::info!(
        done,
        planned = outcomes.len(),
        "the Boss is done; waiting to be stopped"
    );
    cancel.cancelled().await;
    0
}

/// Resolves on SIGTERM or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use clap::Parser as _;
    use crapcoin_node::sauron::replay::Fault;
    use serde_json::Value;
    use tokio_util::sync::CancellationToken;
    use warp::Filter as _;

    use super::{Api, run};
    use crate::deploy::{K8sArgs, boss_args, boss_rules};
    use crate::tools::Tool;

    /// One request the stand-in API server saw: method, path, bearer.
    type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

    /// A loopback HTTP server standing in for the API server (and for the
    /// nodes' `/admin/faults`): records every request, answers 200.
    async fn stand_in() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let routes = warp::method()
            .and(warp::path::full())
            .and(warp::header::optional::<String>("authorization"))
            .map(
                move |method: warp::http::Method,
                      path: warp::path::FullPath,
                      auth: Option<String>| {
                    log.lock().expect("log").push((
                        method.to_string(),
                        path.as_str().to_owned(),
                        auth,
                    ));
                    warp::reply::json(&serde_json::json!({"kind": "Status", "status": "Success"}))
                },
            );
        let (listener, url) = kit::http::loopback().await;
        tokio::spawn(warp::serve(routes).incoming(listener).run());
        (url, seen)
    }

    /// Whether `rules` (a rendered Role's) allow `method path` in
    /// `namespace`: the API group, resource, name and verb of the path.
    fn allowed(rules: &Value, namespace: &str, method: &str, path: &str) -> bool {
        let path = path.split('?').next().unwrap_or(path);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return false,
        };
        let (ns, resource, name) = match rest {
            ["namespaces", ns, resource] => (*ns, *resource, None),
            ["namespaces", ns, resource, name] => (*ns, *resource, Some(*name)),
            _ => return false,
        };
        let verb = match (method, name) {
            ("GET", Some(_)) => "get",
            ("GET", None) => "list",
            ("DELETE", Some(_)) => "delete",
            ("DELETE", None) => "deletecollection",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            _ => return false,
        };
        let has = |list: &Value, item: &str| {
            list.as_array()
                .is_some_and(|l| l.iter().any(|v| v == item || v == "*"))
        };
        ns == namespace
            && rules.as_array().expect("rules").iter().any(|rule| {
                has(&rule["apiGroups"], group)
                    && has(&rule["resources"], resource)
                    && has(&rule["verbs"], verb)
                    && (rule.get("resourceNames").is_none()
                        || name.is_some_and(|n| has(&rule["resourceNames"], n)))
            })
    }

    /// `line` with the value after `flag` set to `value`.
    fn set(line: &mut [String], flag: &str, value: &str) {
        let i = line.iter().position(|a| a == flag).expect("flag rendered");
        line[i + 1] = value.to_owned();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_boss_only_does_what_its_role_allows_and_kills_the_planned_pods() {
        let (base, seen) = stand_in().await;
        let deploy = K8sArgs::try_parse_from([
            "k8s",
            "-x",
            "4",
            "-y",
            "2",
            "--faults",
            "kill=3,isolate",
            "--namespace",
            "chaos",
        ])
        .expect("parses");
        deploy.check().expect("valid");
        let rules = boss_rules(&deploy);
        // The rendered Boss, its timing shortened and its URLs on loopback.
        let mut line = boss_args(&deploy, 11);
        set(&mut line, "--api-server", &base);
        set(&mut line, "--boss-interval", "0.15");
        set(&mut line, "--fault-duration", "0.2");
        set(&mut line, "--rehire-after", "0.3");
        set(&mut line, "--duration", "3");
        set(&mut line, "--node-url", &format!("{base}/node/{{pod}}"));
        set(&mut line, "--sauron", &base);
        // Through the real command line: `watercooler boss ...`.
        let tool = Tool::try_parse_from(std::iter::once("watercooler".to_owned()).chain(line))
            .expect("the rendered Boss line parses");
        let Tool::Boss(args) = tool else {
            panic!("not the Boss: {tool:?}")
        };
        args.check().expect("valid");
        let api =
            Api::new(&args.api_server, &args.namespace, Some("sa-token".into())).expect("api");
        let outcomes = run(&args, &api, "admin-token", &CancellationToken::new()).await;

        let kills: Vec<String> = outcomes
            .iter()
            .filter_map(|o| match &o.planned.fault {
                Fault::Crash { node } => Some(node.clone()),
                _ => None,
            })
            .collect();
        assert!(kills.len() >= 3, "a few kills in 3 s: {outcomes:#?}");
        assert!(
            outcomes.iter().all(|o| o.outcome == "done"),
            "{outcomes:#?}"
        );
        let seen = seen.lock().expect("log").clone();
        let to_api: Vec<&(String, String, Option<String>)> = seen
            .iter()
            .filter(|(_, p, _)| !p.starts_with("/node/") && p != "/api/faults")
            .collect();
        for (method, path, auth) in &to_api {
            assert!(
                allowed(&rules, "chaos", method, path),
                "{method} {path} is not allowed by the rendered Role {rules:#}"
            );
            assert_eq!(auth.as_deref(), Some("Bearer sa-token"), "{method} {path}");
        }
        // Each planned kill deleted its pod, in the plan's order.
        let deleted: Vec<String> = to_api
            .iter()
            .map(|(_, p, _)| {
                p.split('?')
                    .next()
                    .unwrap_or(p)
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(deleted, kills);
        assert_eq!(api.calls().len(), kills.len());
        // The isolations went to the nodes, with their admin token, and
        // every node's faults were cleared at the end.
        let isolations = outcomes.len() - kills.len();
        let posted = seen
            .iter()
            .filter(|(m, p, a)| {
                m == "POST"
                    && p.ends_with("/admin/faults")
                    && a.as_deref() == Some("Bearer admin-token")
            })
            .count();
        assert_eq!(posted, isolations * 6, "an isolation touches every node");
        let cleared: std::collections::BTreeSet<&str> = seen
            .iter()
            .filter(|(m, p, _)| m == "DELETE" && p.ends_with("/admin/faults"))
            .map(|(_, p, _)| p.as_str())
            .collect();
        assert_eq!(cleared.len(), 6, "{cleared:?}");
        // Each fault was reported to Sauron, as it started and as it ended.
        let reports = seen
            .iter()
            .filter(|(m, p, _)| m == "POST" && p == "/api/faults")
            .count();
        assert_eq!(reports, 2 * outcomes.len(), "{outcomes:#?}");
    }

    #[test]
    fn the_role_check_refuses_what_the_role_does_not_grant() {
        let deploy = K8sArgs::try_parse_from(["k8s", "-x", "2", "--boss"]).expect("parses");
        let rules = boss_rules(&deploy);
        let pods = "/api/v1/namespaces/crapcoin/pods";
        assert!(allowed(
            &rules,
            "crapcoin",
            "DELETE",
            &format!("{pods}/bigload-1")
        ));
        for (method, path) in [
            ("DELETE", format!("{pods}/sauron-abc")),
            ("DELETE", format!("{pods}/postgres-0")),
            ("DELETE", pods.to_owned()),
            ("GET", format!("{pods}/bigload-1")),
            ("GET", pods.to_owned()),
            ("POST", format!("{pods}/bigload-1/exec")),
            (
                "DELETE",
                "/api/v1/namespaces/other/pods/bigload-1".to_owned(),
            ),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/crapcoin/statefulsets/bigload".to_owned(),
            ),
        ] {
            assert!(
                !allowed(&rules, "crapcoin", method, &path),
                "{method} {path}"
            );
        }
    }
}
