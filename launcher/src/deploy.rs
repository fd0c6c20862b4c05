//! `watercooler deploy k8s`: the same network as a local run, rendered as
//! Kubernetes manifests ([`render`]) for `kubectl apply -f -`.
//!
//! What is rendered (docs/kubernetes.md walks through it):
//!
//! - a Namespace and a Secret (the nodes' admin token, PostgreSQL's
//!   password and Sauron's database URL);
//! - Sauron as a Deployment and a Service (`sauron:8080`: tracker, API,
//!   dashboard), storing on PostgreSQL: a StatefulSet with a volume and a
//!   Service in the namespace, or `--postgres-url`; or no Sauron at all
//!   with `--sauron-url` (one that runs elsewhere);
//! - one StatefulSet and one headless Service per group of nodes
//!   (`bigload` honest, `shit` misbehaving, one per plugin), a volume
//!   claim template each (a deleted pod comes back on its data, as a
//!   rehired node does), each node advertising its pod DNS name
//!   (`--public-url http://$(POD_NAME).SET.NS.svc.cluster.local:8080`);
//! - with `--boss`, the Boss: a Deployment running `watercooler boss
//!   --kubernetes` ([`crate::kube`]) with a `kubectl proxy` sidecar, and
//!   a ServiceAccount whose Role allows `delete` on the node pods by name
//!   and nothing else ([`boss_rules`]);
//! - the verdict: a Job running `watercooler verdict` ([`crate::remote`])
//!   after `--duration`, which exits 0 (converged) or 1.
//!
//! Everything a user can get wrong is refused before anything is
//! written ([`K8sArgs::check`], exit 2). The output is a pure function of
//! the arguments, except the Secret's values, drawn from the OS unless
//! `--deterministic-secrets` draws them from `--seed`.

use clap::Parser;
use crapcoin_core::PeerUrl;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use crate::cmdline::{behaviour_arg, derive_seed, maintenance_ms};
use crate::docker::{DATA, PLUGIN_DIR, check_image_name as image};
use crate::faults::{Kind, Menu};

/// Plugins the image ships in [`PLUGIN_DIR`] (the workspace's example
/// attacker, `examples/attacker-plugin`).
pub const IMAGE_PLUGINS: &[&str] = &["libattacker_plugin.so"];
/// The port every node and Sauron listen on in their pods.
pub const PORT: u16 = 8080;
/// The Secret's name.
pub const SECRET: &str = "crapcoin";
/// The honest nodes' StatefulSet (pods `bigload-0`, `bigload-1`, ...).
pub const HONEST_SET: &str = "bigload";
/// The `-y` nodes' StatefulSet.
pub const MISBEHAVING_SET: &str = "shit";
/// Where the Boss reaches the API server: its `kubectl proxy` sidecar.
pub const PROXY_URL: &str = "http://127.0.0.1:8001";
/// The Boss's seed is derived from the run's with this salt (as
/// watercooler's own Boss).
pub const BOSS_SALT: u64 = 0xB055;

/// `watercooler deploy TARGET`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Target {
    /// Renders the network as Kubernetes manifests on stdout:
    /// `watercooler deploy k8s -x 50 -y 5 --boss --auto | kubectl apply -f -`.
    K8s(Box<K8sArgs>),
}

/// `watercooler deploy k8s`'s options: the run's that make sense in a
/// cluster, and the cluster's own.
#[derive(Debug, Clone, Parser)]
#[command(
    after_help = "See docs/kubernetes.md. Exit status 2: the request cannot work, nothing written."
)]
pub struct K8sArgs {
    /// Honest nodes (StatefulSet `bigload`).
    #[arg(short = 'x', long = "honest", default_value_t = 3, value_name = "N")]
    pub honest: u32,
    /// Misbehaving nodes (StatefulSet `shit`), each with `--behaviour`.
    #[arg(
        short = 'y',
        long = "misbehaving",
        default_value_t = 0,
        value_name = "N"
    )]
    pub misbehaving: u32,
    /// Behaviour of the `-y` nodes: a catalogue name or group; `random`
    /// and groups choose per pod (each pod draws its own seed).
    #[arg(long, default_value = "random", value_parser = behaviour_arg)]
    pub behaviour: String,
    /// An attacker plugin the image ships (a file name in
    /// /usr/local/lib/crapcoin/plugins, e.g. `libattacker_plugin.so`):
    /// one more misbehaving node runs it. Repeatable.
    #[arg(long = "plugin", value_name = "NAME", value_parser = image_plugin)]
    pub plugins: Vec<String>,
    /// Namespace of everything rendered.
    #[arg(long, default_value = "crapcoin", value_parser = dns_label)]
    pub namespace: String,
    /// Image holding crapcoin-node, sauron and watercooler.
    #[arg(long, default_value = concat!("crapcoin:", env!("CARGO_PKG_VERSION")), value_parser = image)]
    pub image: String,
    /// Image of the PostgreSQL StatefulSet (without `--postgres-url`).
    #[arg(long, default_value = "postgres:16", value_parser = image)]
    pub postgres_image: String,
    /// Image of the Boss's `kubectl proxy` sidecar.
    #[arg(long, default_value = "registry.k8s.io/kubectl:v1.33.0", value_parser = image)]
    pub kubectl_image: String,
    /// Sauron's database: an existing PostgreSQL (`postgres://...`)
    /// instead of the one rendered in the namespace.
    #[arg(long, value_name = "URL", value_parser = postgres_url)]
    pub postgres_url: Option<String>,
    /// A Sauron that runs elsewhere (tracker and reports): none is
    /// rendered.
    #[arg(long, value_name = "URL", value_parser = peer_url)]
    pub sauron_url: Option<String>,
    /// Start the Boss (kills drawn from `--faults`, default `kill`).
    #[arg(long)]
    pub boss: bool,
    /// The Boss's menu (implies `--boss`): `kill`, `partition`,
    /// `isolate`, `bridge`, `latency`, `loss`, `skew` with weights
    /// (`pause` and `rollback` are not offered in a cluster: see
    /// docs/kubernetes.md).
    #[arg(long, value_name = "MENU", value_parser = cluster_menu)]
    pub faults: Option<Menu>,
    /// Mean seconds between two faults.
    #[arg(long, default_value_t = 30.0, value_name = "SECS", value_parser = positive_secs)]
    pub boss_interval: f64,
    /// Seconds a network or clock fault lasts.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = positive_secs)]
    pub fault_duration: f64,
    /// Seconds the Boss's plan counts a killed pod out (the StatefulSet
    /// brings it back by itself).
    #[arg(long, default_value_t = 20.0, value_name = "SECS", value_parser = positive_secs)]
    pub rehire_after: f64,
    /// Nodes make transfers on their own.
    #[arg(long)]
    pub auto: bool,
    /// Auto-mode transfers per second across the fleet.
    #[arg(long, default_value_t = 0.5, value_name = "PER_SEC", value_parser = positive_secs)]
    pub auto_rate: f64,
    /// Target block interval in seconds.
    #[arg(long, default_value_t = 1.0, value_name = "SECS", value_parser = positive_secs)]
    pub block_interval: f64,
    /// The misbehaving nodes' share of the hash power in total.
    #[arg(long, value_name = "SHARE", value_parser = unit_share)]
    pub attacker_share: Option<f64>,
    /// Leading zero bits of proof of work per block.
    #[arg(long, default_value_t = 12, value_name = "BITS")]
    pub difficulty: u8,
    /// Seed of the Boss's plan (and of the Secret's values with
    /// `--deterministic-secrets`). Default: random, printed on stderr.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Draw the admin token and database password from `--seed` instead
    /// of the OS (reproducible output, for tests; anyone who knows the
    /// seed knows the token).
    #[arg(long)]
    pub deterministic_secrets: bool,
    /// Seconds the Boss and the load run before the verdict Job judges.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub duration: u64,
    /// The verdict's settle time, seconds.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub settle: u64,
    /// The verdict's liveness bound, seconds.
    #[arg(long, default_value_t = 45, value_name = "SECS")]
    pub liveness_secs: u64,
    /// Volume size of each node.
    #[arg(long, default_value = "1Gi", value_parser = quantity)]
    pub node_storage: String,
    /// Volume size of PostgreSQL.
    #[arg(long, default_value = "5Gi", value_parser = quantity)]
    pub postgres_storage: String,
    /// Storage class of every volume claim (default: the cluster's).
    #[arg(long, value_parser = dns_label)]
    pub storage_class: Option<String>,
    /// CPU request of a node (its limit is `--node-cpu-limit`).
    #[arg(long, default_value = "50m", value_parser = quantity)]
    pub node_cpu: String,
    /// CPU limit of a node.
    #[arg(long, default_value = "500m", value_parser = quantity)]
    pub node_cpu_limit: String,
    /// Memory request of a node.
    #[arg(long, default_value = "32Mi", value_parser = quantity)]
    pub node_memory: String,
    /// Memory limit of a node.
    #[arg(long, default_value = "256Mi", value_parser = quantity)]
    pub node_memory_limit: String,
}

fn image_plugin(name: &str) -> Result<String, String> {
    if IMAGE_PLUGINS.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not a plugin the image ships in {PLUGIN_DIR} (it has: {})",
            IMAGE_PLUGINS.join(", ")
        ))
    }
}

/// A DNS-1123 label (namespaces, storage classes).
fn dns_label(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a DNS label (lower-case letters, digits, '-', at most 63)"
        ))
    }
}

fn quantity(s: &str) -> Result<String, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &s[digits.len()..];
    let known = ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"];
    if !digits.is_empty() && digits.parse::<f64>().is_ok_and(|v| v > 0.0) && known.contains(&suffix)
    {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a resource quantity (e.g. 500m, 256Mi, 1Gi)"
        ))
    }
}

fn postgres_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?}: {e}"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql")
        || url.host_str().is_none_or(str::is_empty)
    {
        return Err(format!("{s:?}: not a postgres://USER@HOST/DB URL"));
    }
    Ok(s.to_owned())
}

fn peer_url(s: &str) -> Result<String, String> {
    s.parse::<PeerUrl>()
        .map(|u| u.to_string())
        .map_err(|e| format!("{s:?}: {e}"))
}

/// The fault menu, without what a cluster cannot do.
pub fn cluster_menu(s: &str) -> Result<Menu, String> {
    let menu: Menu = s.parse()?;
    for (kind, _) in menu.entries() {
        if matches!(kind, Kind::Pause | Kind::Rollback) {
            return Err(format!(
                "{}: not offered in a cluster (docs/kubernetes.md says why)",
                kind.name()
            ));
        }
    }
    Ok(menu)
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

fn unit_share(s: &str) -> Result<f64, String> {
    let share: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a share between 0 and 1"))?;
    crapcoin_core::HashPower::check_share(share).map_err(|e| e.to_string())
}

/// One group of nodes: a StatefulSet.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The StatefulSet's (and headless Service's) name.
    pub set: String,
    /// Its pods.
    pub replicas: u32,
    /// Whether its nodes are honest.
    pub honest: bool,
    /// `--behaviour NAME` or `--plugin PATH`.
    pub runs: Vec<String>,
    /// Each node's hash power share.
    pub hash_share: f64,
}

impl K8sArgs {
    /// Misbehaving nodes: `-y` plus one per plugin.
    pub fn misbehaving_count(&self) -> u32 {
        self.misbehaving
            .saturating_add(u32::try_from(self.plugins.len()).unwrap_or(u32::MAX))
    }

    /// Whether the Boss is rendered.
    pub fn boss_enabled(&self) -> bool {
        self.boss || self.faults.is_some()
    }

    /// The Boss's menu (`kill` by default).
    pub fn menu(&self) -> Menu {
        self.faults
            .clone()
            .unwrap_or_else(|| Menu::only(Kind::Kill))
    }

    /// Checks what clap cannot check field by field.
    ///
    /// # Errors
    ///
    /// What is wrong, for a usage error (exit 2).
    pub fn check(&self) -> Result<(), String> {
        let misbehaving = self.misbehaving_count();
        if self.honest == 0 && misbehaving == 0 {
            return Err("no nodes to deploy: give -x, -y or --plugin".to_owned());
        }
        if self.honest == 0 {
            return Err(
                "-x 0: the verdict judges the honest nodes; deploy at least one".to_owned(),
            );
        }
        if misbehaving == 0 && self.attacker_share.is_some_and(|s| s > 0.0) {
            return Err("--attacker-share needs misbehaving nodes (-y or --plugin)".to_owned());
        }
        if self.postgres_url.is_some() && self.sauron_url.is_some() {
            return Err("--postgres-url is Sauron's database: not with --sauron-url (no Sauron is rendered)".to_owned());
        }
        if self.boss_enabled() {
            self.menu()
                .check(self.honest as usize, misbehaving as usize)?;
        }
        if self.duration == 0 {
            return Err("--duration 0: the verdict needs a run".to_owned());
        }
        Ok(())
    }

    /// The node groups, honest first.
    pub fn groups(&self) -> Vec<Group> {
        let honest = f64::from(self.honest);
        let misbehaving = f64::from(self.misbehaving_count());
        let attackers = match self.attacker_share {
            Some(share) if misbehaving > 0.0 => share,
            _ => misbehaving / (honest + misbehaving),
        };
        let honest_share = (1.0 - attackers) / honest.max(1.0);
        let other_share = if misbehaving > 0.0 {
            attackers / misbehaving
        } else {
            0.0
        };
        let mut groups = vec![Group {
            set: HONEST_SET.to_owned(),
            replicas: self.honest,
            honest: true,
            runs: vec!["--behaviour".into(), "honest".into()],
            hash_share: honest_share,
        }];
        if self.misbehaving > 0 {
            groups.push(Group {
                set: MISBEHAVING_SET.to_owned(),
                replicas: self.misbehaving,
                honest: false,
                runs: vec!["--behaviour".into(), self.behaviour.clone()],
                hash_share: other_share,
            });
        }
        for (i, plugin) in self.plugins.iter().enumerate() {
            groups.push(Group {
                set: format!("plugin-{}", i + 1),
                replicas: 1,
                honest: false,
                runs: vec!["--plugin".into(), format!("{PLUGIN_DIR}/{plugin}")],
                hash_share: other_share,
            });
        }
        groups
    }

    /// Every node pod's name, in StatefulSet order.
    pub fn pod_names(&self) -> Vec<String> {
        self.groups()
            .iter()
            .flat_map(|g| (0..g.replicas).map(move |i| format!("{}-{i}", g.set)))
            .collect()
    }

    fn service_domain(&self, service: &str) -> String {
        format!("{service}.{}.svc.cluster.local", self.namespace)
    }

    /// The URL nodes and the verdict reach Sauron at.
    pub fn sauron(&self) -> String {
        self.sauron_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{PORT}", self.service_domain("sauron")))
    }

    /// Mean ms between two auto transfers of one honest node.
    fn auto_interval_ms(&self) -> u64 {
        let per_node = f64::from(self.honest.max(1)) / self.auto_rate;
        (per_node * 1000.0).round().clamp(1.0, 1e12) as u64
    }
}

/// The Secret's values.
struct Secrets {
    token: String,
    postgres_password: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn secrets(args: &K8sArgs, seed: u64) -> Secrets {
    let draw = |salt: u64| -> String {
        let mut bytes = [0u8; 32];
        if args.deterministic_secrets {
            rand::rngs::StdRng::seed_from_u64(derive_seed(seed, salt)).fill(&mut bytes);
        } else {
            rand::rng().fill(&mut bytes);
        }
        hex(&bytes)
    };
    Secrets {
        token: draw(0x70CE),
        postgres_password: draw(0x96DB),
    }
}

fn labels(component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "crapcoin",
        "app.kubernetes.io/component": component,
    })
}

fn meta(args: &K8sArgs, name: &str, component: &str) -> Value {
    json!({"name": name, "namespace": args.namespace, "labels": labels(component)})
}

fn secret_env(name: &str, key: &str) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}})
}

fn http_probe(period: u64, failures: u64, delay: u64) -> Value {
    json!({
        "httpGet": {"path": "/status", "port": PORT},
        "periodSeconds": period,
        "failureThreshold": failures,
        "initialDelaySeconds": delay,
        "timeoutSeconds": 3,
    })
}

/// A container that runs as nobody, reads only its image and gains no
/// privilege.
fn hardened(mut container: Value) -> Value {
    container["securityContext"] = json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    });
    container
}

fn pod_security() -> Value {
    json!({"runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534})
}

fn claim(name: &str, size: &str, class: Option<&str>) -> Value {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    });
    if let Some(class) = class {
        spec["storageClassName"] = json!(class);
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

fn headless(args: &K8sArgs, name: &str, component: &str, port: u16, selector: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(args, name, component),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": port}],
        },
    })
}

/// The `crapcoin-node` arguments of a pod of `group`.
pub fn node_args(args: &K8sArgs, group: &Group) -> Vec<String> {
    let public = format!(
        "http://$(POD_NAME).{}:{PORT}",
        args.service_domain(&group.set)
    );
    let mut out: Vec<String> = vec![
        "--listen".into(),
        format!("0.0.0.0:{PORT}"),
        "--name".into(),
        "$(POD_NAME)".into(),
        "--public-url".into(),
        public,
        "--data-dir".into(),
        DATA.into(),
        "--tracker".into(),
        args.sauron(),
        "--difficulty".into(),
        args.difficulty.to_string(),
        "--maintenance-ms".into(),
        maintenance_ms(u64::from(args.honest) + u64::from(args.misbehaving_count())).to_string(),
        "--hash-share".into(),
        group.hash_share.to_string(),
        "--block-interval".into(),
        args.block_interval.to_string(),
    ];
    out.extend(group.runs.iter().cloned());
    if args.auto {
        out.extend([
            "--auto".into(),
            "--auto-interval-ms".into(),
            args.auto_interval_ms().to_string(),
        ]);
    }
    out
}

fn node_set(args: &K8sArgs, group: &Group) -> Vec<Value> {
    let component = if group.honest {
        "honest-node"
    } else {
        "misbehaving-node"
    };
    let selector = json!({"app.kubernetes.io/name": "crapcoin", "crapcoin/set": group.set});
    let mut pod_labels = labels(component);
    pod_labels["crapcoin/set"] = json!(group.set);
    let container = hardened(json!({
        "name": "node",
        "image": args.image,
        "command": ["/usr/local/bin/crapcoin-node"],
        "args": node_args(args, group),
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            secret_env("CRAPCOIN_ADMIN_TOKEN", "admin-token"),
            {"name": "RUST_LOG", "value": "info"},
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": http_probe(5, 3, 2),
        "livenessProbe": http_probe(10, 6, 20),
        "resources": {
            "requests": {"cpu": args.node_cpu, "memory": args.node_memory},
            "limits": {"cpu": args.node_cpu_limit, "memory": args.node_memory_limit},
        },
        "volumeMounts": [{"name": "data", "mountPath": DATA}],
    }));
    let set = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(args, &group.set, component),
        "spec": {
            "serviceName": group.set,
            "replicas": group.replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": 10,
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [claim("data", &args.node_storage, args.storage_class.as_deref())],
        },
    });
    vec![headless(args, &group.set, component, PORT, selector), set]
}

fn postgres(args: &K8sArgs) -> Vec<Value> {
    let selector =
        json!({"app.kubernetes.io/name": "crapcoin", "app.kubernetes.io/component": "postgres"});
    let set = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(args, "postgres", "postgres"),
        "spec": {
            "serviceName": "postgres",
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels("postgres")},
                "spec": {
                    "automountServiceAccountToken": false,
                    "containers": [{
                        "name": "postgres",
                        "image": args.postgres_image,
                        "env": [
                            {"name": "POSTGRES_USER", "value": "crapcoin"},
                            {"name": "POSTGRES_DB", "value": "sauron"},
                            secret_env("POSTGRES_PASSWORD", "postgres-password"),
                            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        ],
                        "ports": [{"name": "postgres", "containerPort": 5432}],
                        "readinessProbe": {
                            "exec": {"command": ["pg_isready", "-U", "crapcoin", "-d", "sauron"]},
                            "periodSeconds": 5,
                        },
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"cpu": "2", "memory": "1Gi"},
                        },
                        "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}],
                    }],
                },
            },
            "volumeClaimTemplates": [claim("pgdata", &args.postgres_storage, args.storage_class.as_deref())],
        },
    });
    vec![headless(args, "postgres", "postgres", 5432, selector), set]
}

fn sauron(args: &K8sArgs) -> Vec<Value> {
    let selector =
        json!({"app.kubernetes.io/name": "crapcoin", "app.kubernetes.io/component": "sauron"});
    let container = hardened(json!({
        "name": "sauron",
        "image": args.image,
        "command": ["/usr/local/bin/sauron"],
        "args": ["--listen", format!("0.0.0.0:{PORT}"), "--difficulty", args.difficulty.to_string()],
        "env": [secret_env("SAURON_DB", "sauron-db"), {"name": "RUST_LOG", "value": "info"}],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/api/config", "port": PORT}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/api/config", "port": PORT}, "periodSeconds": 10, "failureThreshold": 6, "initialDelaySeconds": 20},
        "resources": {
            "requests": {"cpu": "250m", "memory": "128Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
    }));
    vec![
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(args, "sauron", "sauron"),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels("sauron")},
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": pod_security(),
                        "containers": [container],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(args, "sauron", "sauron"),
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": PORT, "targetPort": PORT}],
            },
        }),
    ]
}

/// The Boss's Role rules: `delete` on the node pods, by name, in the
/// namespace; nothing else. `kube::Api` makes no other call.
pub fn boss_rules(args: &K8sArgs) -> Value {
    json!([{
        "apiGroups": [""],
        "resources": ["pods"],
        "resourceNames": args.pod_names(),
        "verbs": ["delete"],
    }])
}

/// The `watercooler boss --kubernetes` arguments.
pub fn boss_args(args: &K8sArgs, seed: u64) -> Vec<String> {
    let mut out: Vec<String> = vec![
        "boss".into(),
        "--kubernetes".into(),
        "--namespace".into(),
        args.namespace.clone(),
        "--api-server".into(),
        PROXY_URL.into(),
        "--sauron".into(),
        args.sauron(),
        "--seed".into(),
        derive_seed(seed, BOSS_SALT).to_string(),
        "--faults".into(),
        args.menu().to_string(),
        "--boss-interval".into(),
        args.boss_interval.to_string(),
        "--fault-duration".into(),
        args.fault_duration.to_string(),
        "--rehire-after".into(),
        args.rehire_after.to_string(),
        "--duration".into(),
        args.duration.to_string(),
        "--node-url".into(),
        format!(
            "http://{{pod}}.{{set}}.{}.svc.cluster.local:{PORT}",
            args.namespace
        ),
    ];
    for group in args.groups() {
        out.push(
            if group.honest {
                "--honest-set"
            } else {
                "--misbehaving-set"
            }
            .into(),
        );
        out.push(format!("{}={}", group.set, group.replicas));
    }
    out
}

fn boss(args: &K8sArgs, seed: u64) -> Vec<Value> {
    let selector =
        json!({"app.kubernetes.io/name": "crapcoin", "app.kubernetes.io/component": "boss"});
    let boss = hardened(json!({
        "name": "boss",
        "image": args.image,
        "command": ["/usr/local/bin/watercooler"],
        "args": boss_args(args, seed),
        "env": [secret_env("CRAPCOIN_ADMIN_TOKEN", "admin-token"), {"name": "RUST_LOG", "value": "info"}],
        "resources": {
            "requests": {"cpu": "50m", "memory": "32Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
    }));
    let proxy = hardened(json!({
        "name": "kubectl-proxy",
        "image": args.kubectl_image,
        "args": ["proxy", "--address=127.0.0.1", "--port=8001"],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "200m", "memory": "128Mi"},
        },
    }));
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(args, "boss", "boss"),
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(args, "boss", "boss"),
            "rules": boss_rules(args),
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(args, "boss", "boss"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "boss"},
            "subjects": [{"kind": "ServiceAccount", "name": "boss", "namespace": args.namespace}],
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(args, "boss", "boss"),
            "spec": {
                "replicas": 1,
                // Never two Bosses, not even during a rollout.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels("boss")},
                    "spec": {
                        "serviceAccountName": "boss",
                        "securityContext": pod_security(),
                        "containers": [boss, proxy],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        }),
    ]
}

/// The verdict Job's `watercooler` arguments.
pub fn verdict_args(args: &K8sArgs) -> Vec<String> {
    vec![
        "verdict".into(),
        "--sauron".into(),
        args.sauron(),
        "--after".into(),
        args.duration.to_string(),
        "--settle".into(),
        args.settle.to_string(),
        "--liveness-secs".into(),
        args.liveness_secs.to_string(),
    ]
}

fn verdict(args: &K8sArgs) -> Value {
    let container = hardened(json!({
        "name": "verdict",
        "image": args.image,
        "command": ["/usr/local/bin/watercooler"],
        "args": verdict_args(args),
        "env": [secret_env("CRAPCOIN_ADMIN_TOKEN", "admin-token"), {"name": "RUST_LOG", "value": "info"}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
    }));
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(args, "verdict", "verdict"),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": args.duration + args.settle + 600,
            "template": {
                "metadata": {"labels": labels("verdict")},
                "spec": {
                    "automountServiceAccountToken": false,
                    "restartPolicy": "Never",
                    "securityContext": pod_security(),
                    "containers": [container],
                },
            },
        },
    })
}

/// Every manifest, in apply order, as JSON documents.
pub fn documents(args: &K8sArgs, seed: u64) -> Vec<Value> {
    let secrets = secrets(args, seed);
    let db = match &args.postgres_url {
        Some(url) => url.clone(),
        None => format!(
            "postgres://crapcoin:{}@{}:5432/sauron",
            secrets.postgres_password,
            args.service_domain("postgres")
        ),
    };
    let mut data = json!({"admin-token": secrets.token});
    if args.sauron_url.is_none() {
        data["sauron-db"] = json!(db);
        if args.postgres_url.is_none() {
            data["postgres-password"] = json!(secrets.postgres_password);
        }
    }
    let mut docs = vec![
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": args.namespace, "labels": labels("namespace")},
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(args, SECRET, "secret"),
            "type": "Opaque",
            "stringData": data,
        }),
    ];
    if args.sauron_url.is_none() {
        if args.postgres_url.is_none() {
            docs.extend(postgres(args));
        }
        docs.extend(sauron(args));
    }
    for group in args.groups() {
        docs.extend(node_set(args, &group));
    }
    if args.boss_enabled() {
        docs.extend(boss(args, seed));
    }
    docs.push(verdict(args));
    docs
}

/// The manifests as one YAML stream.
pub fn render(args: &K8sArgs, seed: u64) -> String {
    let header = format!(
        "# watercooler deploy k8s: {} honest, {} misbehaving nodes in namespace {}, seed {seed}\n# kubectl apply -f THIS; the verdict: kubectl -n {} logs job/verdict -f\n",
        args.honest,
        args.misbehaving_count(),
        args.namespace,
        args.namespace,
    );
    header + &crate::yaml::stream(&documents(args, seed))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{K8sArgs, documents};

    fn parse(line: &[&str]) -> Result<K8sArgs, String> {
        let args = K8sArgs::try_parse_from(std::iter::once("k8s").chain(line.iter().copied()))
            .map_err(|e| e.to_string())?;
        args.check()?;
        Ok(args)
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in [
            &["-x", "0"][..],
            &["-x", "0", "-y", "3"],
            &["--behaviour", "saint"],
            &["--plugin", "libnothere.so"],
            &["--postgres-url", "mysql://x"],
            &["--postgres-url", "postgres://"],
            &["--sauron-url", "not a url"],
            &["--faults", "pause"],
            &["--faults", "kill,rollback"],
            &["--namespace", "Bad_Name"],
            &["-x", "1", "--faults", "partition"],
            &["--node-storage", "lots"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse(&["-x", "3", "-y", "1", "--plugin", "libattacker_plugin.so"]).is_ok());
    }

    #[test]
    fn the_verdict_jobs_line_is_watercoolers() {
        let args = parse(&["-x", "3", "--duration", "120", "--namespace", "n1"]).expect("ok");
        let line = std::iter::once("watercooler".to_owned()).chain(super::verdict_args(&args));
        match crate::tools::Tool::try_parse_from(line).expect("parses") {
            crate::tools::Tool::Verdict(v) => {
                assert_eq!(v.sauron, "http://sauron.n1.svc.cluster.local:8080");
                assert_eq!((v.after, v.settle, v.liveness_secs), (120, 60, 45));
            }
            other => panic!("not the verdict: {other:?}"),
        }
    }

    #[test]
    fn the_same_seed_renders_the_same_manifests() {
        let args = parse(&["-x", "4", "-y", "2", "--boss", "--deterministic-secrets"]).expect("ok");
        assert_eq!(documents(&args, 7), documents(&args, 7));
        assert_ne!(
            documents(&args, 7),
            documents(&args, 8),
            "the seed reaches the secrets and the Boss"
        );
        let random = parse(&["-x", "4"]).expect("ok");
        assert_ne!(
            documents(&random, 7)[1]["stringData"]["admin-token"],
            documents(&random, 7)[1]["stringData"]["admin-token"],
            "the token comes from the OS by default"
        );
    }
}
