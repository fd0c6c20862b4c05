//! Admin tokens never on the command line (issue 15, "Hostile peers"):
//! real `crapcoin-node` processes take their token from the environment,
//! a private token file, or make one in their data directory's cookie
//! file; `/proc/PID/cmdline` never shows it, and a token file others may
//! read stops the node before it starts. Every process is killed by PID
//! when its guard drops; every wait is bounded.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use kit::http::{TOKEN, client_with_timeout};
use kit::process::{TOKEN_ENV, net_args, run_bounded, spawn_listening_env};

fn node_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_crapcoin-node"))
}

/// A started node, killed (SIGKILL, by PID) when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(data_dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut args = net_args();
        args.extend(["--data-dir".to_owned(), data_dir.display().to_string()]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let (child, url) = spawn_listening_env(node_bin(), &args, envs);
        Self { child, url }
    }

    /// Its command line as the kernel shows it to every user.
    fn cmdline(&self) -> String {
        let raw = fs::read(format!("/proc/{}/cmdline", self.child.id())).expect("cmdline");
        String::from_utf8_lossy(&raw).replace('\0', " ")
    }

    /// `POST /mine` with `token` as bearer (none: no header); the status.
    async fn mine(&self, token: Option<&str>) -> u16 {
        let mut request = client_with_timeout(Duration::from_secs(10))
            .post(format!("{}/mine", self.url))
            .body("{}");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("answers").status().as_u16()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_node_without_a_token_writes_a_private_cookie_that_opens_its_admin_routes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(dir.path(), &[], &[]);
    let cookie = dir.path().join("admin.cookie");
    let mode = fs::metadata(&cookie)
        .expect("cookie written")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "cookie mode {mode:o}");
    let token = crapcoin_node::cookie::read_cookie(dir.path()).expect("reads");
    assert!(token.len() >= 32, "a short token: {token:?}");
    assert!(!node.cmdline().contains(&token), "{}", node.cmdline());

    assert_eq!(node.mine(Some(&token)).await, 200);
    assert_eq!(node.mine(None).await, 401);
    assert_eq!(node.mine(Some("guess")).await, 401);
    assert_eq!(node.mine(Some(TOKEN)).await, 401);

    // A restart makes a new token: the old one no longer opens the node.
    drop(node);
    let node = Node::start(dir.path(), &[], &[]);
    let fresh = crapcoin_node::cookie::read_cookie(dir.path()).expect("reads");
    assert_ne!(fresh, token);
    assert_eq!(node.mine(Some(&token)).await, 401);
    assert_eq!(node.mine(Some(&fresh)).await, 200);
}

#[tokio::test]
async fn a_token_from_the_environment_or_a_private_file_is_never_on_the_command_line() {
    // As the test kit starts its nodes: the token in the environment.
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(dir.path(), &[], &[(TOKEN_ENV, TOKEN)]);
    assert!(!node.cmdline().contains(TOKEN), "{}", node.cmdline());
    assert!(
        !dir.path().join("admin.cookie").exists(),
        "a cookie beside a given token"
    );
    assert_eq!(node.mine(Some(TOKEN)).await, 200);
    assert_eq!(node.mine(None).await, 401);
    drop(node);

    // From a file only its owner may read.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("token");
    fs::write(&file, "from-a-file\n").expect("writes");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
    let path = file.display().to_string();
    let node = Node::start(
        &dir.path().join("data"),
        &["--admin-token-file", &path],
        &[],
    );
    assert!(
        !node.cmdline().contains("from-a-file"),
        "{}",
        node.cmdline()
    );
    assert_eq!(node.mine(Some("from-a-file")).await, 200);
    assert_eq!(node.mine(Some(TOKEN)).await, 401);
}

#[test]
fn a_token_file_others_may_read_stops_the_node_before_it_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("token");
    fs::write(&file, "s3cret\n").expect("writes");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    let data = dir.path().join("data");
    let mut command = Command::new(node_bin());
    command
        .args(net_args())
        .arg("--data-dir")
        .arg(&data)
        .arg("--admin-token-file")
        .arg(&file)
        .env_remove(TOKEN_ENV);
    let output = run_bounded(command, Duration::from_secs(60));
    assert!(!output.status.success(), "started with a shared token file");
    assert_ne!(output.status.code(), Some(0));
    assert!(
        output.stdout.is_empty(),
        "it served: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("accessible to group or others") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    // Refused before anything started: no data directory, no cookie.
    assert!(!data.exists(), "the node made its data directory");
}
