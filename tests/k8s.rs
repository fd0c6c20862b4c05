//! `watercooler deploy k8s`, `watercooler boss --kubernetes` and
//! `watercooler verdict`, as far as they can be tested without a cluster:
//!
//! - the rendered manifests pass the Kubernetes API schema, offline and
//!   strict (`kubernetes-validate` from PyPI, installed by `.ci/deps`
//!   into `${TMPDIR:-/tmp}/crapcoin-venv`, or `CRAPCOIN_K8S_VALIDATE`),
//!   RBAC objects included, and have the structure that matters;
//! - a request that cannot work is refused with exit 2 and nothing on
//!   stdout;
//! - `watercooler verdict` judges a real network of processes on
//!   127.0.0.1 through Sauron: 1 while it is partitioned, 0 once healed.
//!
//! The in-cluster Boss against a stand-in API server is tested in
//! `launcher/src/kube.rs`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use kit::http::{TOKEN, blocking};
use kit::process::{NodeProc, SauronProc, bin, ensure_built, run_bounded};

/// The validator: `CRAPCOIN_K8S_VALIDATE`, or the venv `.ci/deps` makes.
fn validator() -> PathBuf {
    if let Some(path) = std::env::var_os("CRAPCOIN_K8S_VALIDATE") {
        return PathBuf::from(path);
    }
    let tmp = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let path = tmp.join("crapcoin-venv/bin/kubernetes-validate");
    assert!(
        path.is_file(),
        "kubernetes-validate is missing at {}: run .ci/deps (it installs it from PyPI into that venv) or set CRAPCOIN_K8S_VALIDATE",
        path.display()
    );
    path
}

/// The YAML in `file` read back as JSON documents, by the validator's own
/// Python (PyYAML): what a cluster would read.
fn read_back(file: &std::path::Path) -> Vec<Value> {
    let python = validator().with_file_name("python3");
    let mut command = Command::new(python);
    command.args([
        "-c",
        "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
    ]);
    command.arg(file);
    let out = run_bounded(command, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Runs the validator in strict mode on `file`: (passed, its output).
fn validate(file: &std::path::Path) -> (bool, String) {
    let mut command = Command::new(validator());
    command.args(["--strict", "--no-warn"]).arg(file);
    let out = run_bounded(command, Duration::from_secs(120));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn watercooler(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(bin("watercooler"));
    command.args(args);
    run_bounded(command, Duration::from_secs(60))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The value after `flag` in `args`.
fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
    &args[i + 1]
}

#[test]
fn rendered_manifests_pass_the_schema_and_say_what_matters() {
    ensure_built();
    let dir = tempfile::tempdir().expect("dir");
    let line = [
        "deploy",
        "k8s",
        "-x",
        "50",
        "-y",
        "5",
        "--boss",
        "--auto",
        "--seed",
        "7",
        "--deterministic-secrets",
        "--namespace",
        "chaos",
        "--plugin",
        "libattacker_plugin.so",
        "--faults",
        "kill=2,partition,skew",
        "--duration",
        "900",
    ];
    let out = watercooler(&line);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        watercooler(&line).stdout,
        out.stdout,
        "the same seed renders the same manifests"
    );
    let file = dir.path().join("network.yaml");
    std::fs::write(&file, &out.stdout).expect("write");
    let (passed, report) = validate(&file);
    assert!(passed, "the schema refuses the manifests:\n{report}");

    let docs = read_back(&file);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "Namespace",
        "Secret",
        "StatefulSet",
        "Service",
        "Deployment",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Job",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in {kinds:?}");
    }
    assert!(
        docs.iter()
            .all(|d| d["kind"] == "Namespace" || d["metadata"]["namespace"] == "chaos")
    );

    // Nodes: StatefulSets of -x and -y replicas (and one per plugin),
    // a volume each, advertising their pod DNS name.
    for (set, replicas) in [("bigload", 50), ("shit", 5), ("plugin-1", 1)] {
        let sts = find(&docs, "StatefulSet", set);
        assert_eq!(sts["spec"]["replicas"], replicas, "{set}");
        assert_eq!(sts["spec"]["serviceName"], set);
        let claims = sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .expect("claims");
        assert_eq!(claims.len(), 1, "{set}");
        let container = &sts["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["volumeMounts"][0]["name"],
            claims[0]["metadata"]["name"]
        );
        assert_eq!(container["volumeMounts"][0]["mountPath"], "/data");
        assert_eq!(
            container["command"],
            json!(["/usr/local/bin/crapcoin-node"])
        );
        let args = strings(&container["args"]);
        assert_eq!(
            after(&args, "--public-url"),
            format!("http://$(POD_NAME).{set}.chaos.svc.cluster.local:8080")
        );
        assert_eq!(after(&args, "--name"), "$(POD_NAME)");
        assert_eq!(after(&args, "--data-dir"), "/data");
        assert_eq!(
            after(&args, "--tracker"),
            "http://sauron.chaos.svc.cluster.local:8080"
        );
        assert!(args.contains(&"--auto".to_owned()), "{args:?}");
        let env = container["env"].as_array().expect("env");
        assert!(env.iter().any(|e| e["name"] == "POD_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"));
        assert!(env.iter().any(|e| e["name"] == "CRAPCOIN_ADMIN_TOKEN"
            && e["valueFrom"]["secretKeyRef"]["key"] == "admin-token"));
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/status");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/status");
        assert!(container["resources"]["limits"]["memory"].is_string());
        assert_eq!(find(&docs, "Service", set)["spec"]["clusterIP"], "None");
    }
    let plugin_args = strings(
        &find(&docs, "StatefulSet", "plugin-1")["spec"]["template"]["spec"]["containers"][0]["args"],
    );
    assert_eq!(
        after(&plugin_args, "--plugin"),
        "/usr/local/lib/crapcoin/plugins/libattacker_plugin.so"
    );

    // The Boss: exactly `delete` on the node pods, by name.
    let role = find(&docs, "Role", "boss");
    let rules = role["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1, "{role:#}");
    assert_eq!(rules[0]["apiGroups"], json!([""]));
    assert_eq!(rules[0]["resources"], json!(["pods"]));
    assert_eq!(rules[0]["verbs"], json!(["delete"]));
    let names = strings(&rules[0]["resourceNames"]);
    assert_eq!(names.len(), 56);
    assert!(
        names.contains(&"bigload-49".to_owned())
            && names.contains(&"shit-4".to_owned())
            && names.contains(&"plugin-1-0".to_owned())
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("sauron") || n.starts_with("postgres"))
    );
    let binding = find(&docs, "RoleBinding", "boss");
    assert_eq!(binding["roleRef"]["name"], "boss");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "boss", "namespace": "chaos"}])
    );
    let boss = &find(&docs, "Deployment", "boss")["spec"]["template"]["spec"];
    assert_eq!(boss["serviceAccountName"], "boss");
    let boss_args = strings(&boss["containers"][0]["args"]);
    assert_eq!(&boss_args[..2], ["boss", "--kubernetes"]);
    assert_eq!(after(&boss_args, "--faults"), "kill=2,partition=1,skew=1");
    // No other pod gets an API token.
    for d in docs.iter().filter(|d| {
        d["kind"] == "StatefulSet"
            || d["kind"] == "Job"
            || (d["kind"] == "Deployment" && d["metadata"]["name"] != "boss")
    }) {
        assert_eq!(
            d["spec"]["template"]["spec"]["automountServiceAccountToken"], false,
            "{}",
            d["metadata"]["name"]
        );
    }

    // Sauron on the in-cluster PostgreSQL, and the verdict Job.
    let sauron = &find(&docs, "Deployment", "sauron")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        sauron["env"][0]["valueFrom"]["secretKeyRef"]["key"],
        "sauron-db"
    );
    let secret = find(&docs, "Secret", "crapcoin");
    assert!(
        secret["stringData"]["sauron-db"]
            .as_str()
            .expect("url")
            .starts_with("postgres://crapcoin:")
    );
    assert!(
        secret["stringData"]["sauron-db"]
            .as_str()
            .expect("url")
            .contains("@postgres.chaos.svc.cluster.local:5432/")
    );
    assert!(find(&docs, "StatefulSet", "postgres")["spec"]["volumeClaimTemplates"].is_array());
    assert_eq!(
        find(&docs, "Service", "sauron")["spec"]["ports"][0]["port"],
        8080
    );
    let job = &find(&docs, "Job", "verdict")["spec"];
    assert_eq!(job["backoffLimit"], 0);
    let container = &job["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], json!(["/usr/local/bin/watercooler"]));
    assert_eq!(
        strings(&container["args"]),
        [
            "verdict",
            "--sauron",
            "http://sauron.chaos.svc.cluster.local:8080",
            "--after",
            "900",
            "--settle",
            "60",
            "--liveness-secs",
            "45"
        ]
    );

    // With --postgres-url: no PostgreSQL rendered, Sauron uses the URL.
    let external = watercooler(&[
        "deploy",
        "k8s",
        "-x",
        "3",
        "--postgres-url",
        "postgres://u:p@db.example:5432/s",
        "--seed",
        "1",
    ]);
    assert!(external.status.success());
    let file = dir.path().join("external.yaml");
    std::fs::write(&file, &external.stdout).expect("write");
    let (passed, report) = validate(&file);
    assert!(passed, "{report}");
    let docs = read_back(&file);
    assert!(!docs.iter().any(|d| d["metadata"]["name"] == "postgres"));
    assert_eq!(
        find(&docs, "Secret", "crapcoin")["stringData"]["sauron-db"],
        "postgres://u:p@db.example:5432/s"
    );
    assert!(
        !docs.iter().any(|d| d["kind"] == "Role"),
        "no Boss without --boss"
    );

    // With --sauron-url: no Sauron, no PostgreSQL; nodes, Boss and verdict
    // use the URL given.
    let elsewhere = watercooler(&[
        "deploy",
        "k8s",
        "-x",
        "2",
        "--boss",
        "--sauron-url",
        "http://sauron.example:8080",
        "--storage-class",
        "fast",
        "--seed",
        "1",
    ]);
    assert!(elsewhere.status.success());
    let file = dir.path().join("elsewhere.yaml");
    std::fs::write(&file, &elsewhere.stdout).expect("write");
    let (passed, report) = validate(&file);
    assert!(passed, "{report}");
    let docs = read_back(&file);
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "sauron" || d["metadata"]["name"] == "postgres")
    );
    let sts = find(&docs, "StatefulSet", "bigload");
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
        "fast"
    );
    let args = strings(&sts["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert_eq!(after(&args, "--tracker"), "http://sauron.example:8080");
    let boss = strings(
        &find(&docs, "Deployment", "boss")["spec"]["template"]["spec"]["containers"][0]["args"],
    );
    assert_eq!(after(&boss, "--sauron"), "http://sauron.example:8080");

    // The validator is strict: a misspelt field fails it.
    let mut broken = String::from_utf8(out.stdout).expect("utf-8");
    broken = broken.replacen("volumeClaimTemplates:", "volumeClaimTemplate:", 1);
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).expect("write");
    assert!(
        !validate(&file).0,
        "strict validation takes a misspelt field"
    );
}

#[test]
fn a_deployment_that_cannot_work_is_refused_before_anything_is_rendered() {
    ensure_built();
    for bad in [
        &["-x", "0"][..],
        &["-x", "0", "-y", "0"],
        &["--behaviour", "saint"],
        &["--plugin", "libnot_in_the_image.so"],
        &["--plugin", "/tmp/libattacker_plugin.so"],
        &["--sauron-url", "http//sauron"],
        &["--postgres-url", "postgres:not a url"],
        &["--postgres-url", "http://db:5432/x"],
        &["--faults", "pause"],
        &["--faults", "rollback"],
        &["--namespace", "UPPER"],
    ] {
        let mut line = vec!["deploy", "k8s"];
        line.extend_from_slice(bad);
        let out = watercooler(&line);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{bad:?} rendered something");
        assert!(!out.stderr.is_empty(), "{bad:?}: no reason given");
    }
    for bad in [
        &["verdict", "--sauron", "not a url"][..],
        &["verdict"],
        &["boss", "--kubernetes"],
    ] {
        let out = watercooler(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

/// Polls (at most `limit`) until `ok` holds for each node's status.
fn until(urls: &[&str], limit: Duration, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let end = Instant::now() + limit;
    loop {
        let statuses: Vec<Value> = urls
            .iter()
            .map(|u| blocking("GET", &format!("{u}/status"), None).1)
            .collect();
        if ok(&statuses) || Instant::now() >= end {
            return statuses;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn admin_faults(method: reqwest::Method, url: &str, body: Option<Value>) -> u16 {
    admin_faults_with(method, url, TOKEN, body)
}

fn admin_faults_with(method: reqwest::Method, url: &str, token: &str, body: Option<Value>) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut request = kit::http::client()
            .request(method, format!("{url}/admin/faults"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        request.send().await.expect("answers").status().as_u16()
    })
}

#[test]
fn the_verdict_reads_a_real_network_through_sauron() {
    ensure_built();
    let dir = tempfile::tempdir().expect("dir");
    let sauron = SauronProc::start(
        &dir.path().join("sauron"),
        &["--difficulty".into(), "4".into()],
    );
    let nodes: Vec<NodeProc> = ["a", "b"]
        .iter()
        .map(|name| {
            NodeProc::start_scheduled(
                &dir.path().join(name),
                &[
                    "--name".into(),
                    (*name).into(),
                    "--tracker".into(),
                    sauron.url.clone(),
                    "--hash-share".into(),
                    "0.5".into(),
                    "--block-interval".into(),
                    "0.4".into(),
                    "--auto".into(),
                    "--auto-interval-ms".into(),
                    "500".into(),
                ],
            )
        })
        .collect();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    kit::process::await_sauron_nodes(&sauron.url, 2);
    let statuses = until(&urls, Duration::from_secs(60), |s| {
        s.iter().all(|s| s["height"].as_u64().unwrap_or(0) >= 3)
    });
    assert!(
        statuses
            .iter()
            .all(|s| s["height"].as_u64().unwrap_or(0) >= 3),
        "{statuses:?}"
    );

    // Cut the two apart: each mines its own branch.
    for (i, url) in urls.iter().enumerate() {
        let other = urls[1 - i];
        let code = admin_faults(
            reqwest::Method::POST,
            url,
            Some(json!({"unreachable": [other], "for_ms": 120_000})),
        );
        assert_eq!(code, 200);
    }
    let start: Vec<u64> = until(&urls, Duration::ZERO, |_| true)
        .iter()
        .map(|s| s["height"].as_u64().unwrap_or(0))
        .collect();
    let split = until(&urls, Duration::from_secs(60), |s| {
        s.iter()
            .zip(&start)
            .all(|(s, h)| s["height"].as_u64().unwrap_or(0) >= h + 5)
    });
    assert_ne!(split[0]["tip"], split[1]["tip"], "{split:?}");
    let out = watercooler(&[
        "verdict",
        "--sauron",
        &sauron.url,
        "--settle",
        "2",
        "--liveness-secs",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("NOT CONVERGED: the honest nodes disagree"),
        "{text}"
    );

    // Healed, they converge, and every check holds.
    for url in &urls {
        assert_eq!(admin_faults(reqwest::Method::DELETE, url, None), 200);
    }
    // With the admin token, as the Job has it: auto mode paused first.
    let mut command = Command::new(bin("watercooler"));
    command
        .args([
            "verdict",
            "--sauron",
            &sauron.url,
            "--settle",
            "40",
            "--liveness-secs",
            "40",
            "--json",
        ])
        .env("CRAPCOIN_ADMIN_TOKEN", TOKEN);
    let out = run_bounded(command, Duration::from_secs(120));
    let verdict: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{verdict:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(verdict["converged"], true);
    assert_eq!(verdict["honest_nodes"], 2);
    assert!(
        verdict["common_height"].as_u64().unwrap_or(0) >= 5,
        "{verdict:#}"
    );
    assert!(
        verdict["checks"]["blocks_checked"].as_u64().unwrap_or(0) >= 5,
        "{verdict:#}"
    );
    assert_eq!(verdict["checks"]["violation_count"], 0);
    assert_eq!(verdict["auto_paused"], 2, "{verdict:#}");
    // Auto mode made transfers: each is found (none lost).
    let transfers = &verdict["checks"]["transfers"];
    assert!(
        transfers["acknowledged"].as_u64().unwrap_or(0) > 0,
        "{verdict:#}"
    );
    assert_eq!(transfers["lost"], 0, "{verdict:#}");
}

/// A child killed (SIGKILL, by its handle) and reaped when dropped.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rendered containers' command lines run with the real binaries:
/// Sauron's and every node group's (pod 0), with what only a cluster has
/// replaced by loopback equivalents (listen address, volume, Sauron's
/// URL, the plugin's path); each node takes its admin token from the
/// Secret, as the Boss's calls do.
#[test]
fn the_rendered_command_lines_run_with_the_real_binaries() {
    ensure_built();
    let dir = tempfile::tempdir().expect("dir");
    let out = watercooler(&[
        "deploy",
        "k8s",
        "-x",
        "2",
        "-y",
        "1",
        "--behaviour",
        "forger",
        "--plugin",
        "libattacker_plugin.so",
        "--auto",
        "--difficulty",
        "4",
        "--seed",
        "3",
        "--deterministic-secrets",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.path().join("network.yaml");
    std::fs::write(&file, &out.stdout).expect("write");
    let docs = read_back(&file);
    let token = find(&docs, "Secret", "crapcoin")["stringData"]["admin-token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_eq!(token.len(), 64);
    let local = |args: Vec<String>, pod: &str| -> Vec<String> {
        args.into_iter()
            .map(|a| {
                if a == "0.0.0.0:8080" {
                    "127.0.0.1:0".to_owned()
                } else {
                    a.replace("$(POD_NAME)", pod)
                }
            })
            .collect()
    };
    let sauron_container =
        &find(&docs, "Deployment", "sauron")["spec"]["template"]["spec"]["containers"][0];
    let mut sauron_args = local(strings(&sauron_container["args"]), "sauron");
    sauron_args.extend([
        "--data-dir".to_owned(),
        dir.path().join("sauron").display().to_string(),
    ]);
    let (child, sauron) = kit::process::spawn_listening(&bin("sauron"), &sauron_args);
    let _sauron = Guard(child);
    for (set, behaviour) in [("bigload", "honest"), ("shit", "forger"), ("plugin-1", "")] {
        let pod = format!("{set}-0");
        let container =
            &find(&docs, "StatefulSet", set)["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<String> = local(strings(&container["args"]), &pod)
            .into_iter()
            .map(|a| {
                if a == "/data" {
                    dir.path().join(&pod).display().to_string()
                } else if a.starts_with("http://sauron.") {
                    sauron.clone()
                } else if a.ends_with("/libattacker_plugin.so") {
                    kit::plugin::example_plugin().display().to_string()
                } else {
                    a
                }
            })
            .collect();
        let (child, url) = kit::process::spawn_listening_env(
            &bin("crapcoin-node"),
            &args,
            &[("CRAPCOIN_ADMIN_TOKEN", &token)],
        );
        let _node = Guard(child);
        let (code, status) = blocking("GET", &format!("{url}/status"), None);
        assert_eq!(code, 200, "{set}: {status}");
        assert_eq!(status["node_id"], pod.as_str(), "{status}");
        // It advertises its pod DNS name, not the address it is bound to.
        assert_eq!(
            status["url"],
            format!("http://{pod}.{set}.crapcoin.svc.cluster.local:8080"),
            "{status}"
        );
        if !behaviour.is_empty() {
            assert_eq!(status["behaviour"], behaviour, "{status}");
        }
        // The Secret's token is the node's admin token (the Boss's faults).
        let code = admin_faults_with(
            reqwest::Method::POST,
            &url,
            &token,
            Some(json!({"skew_ms": 1000, "for_ms": 1000})),
        );
        assert_eq!(code, 200, "{set}");
        let code = admin_faults_with(
            reqwest::Method::POST,
            &url,
            "not-the-token",
            Some(json!({"skew_ms": 1000, "for_ms": 1000})),
        );
        assert_eq!(code, 401, "{set}");
    }
}
