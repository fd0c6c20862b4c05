//! Sauron helpers: throwaway PostgreSQL databases, and `sauron` processes
//! killed by PID when dropped.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crapcoin_node::sauron::db::Db;
use sqlx::Connection as _;

/// The PostgreSQL server tests use.
pub(crate) fn pg_url() -> String {
    std::env::var("CRAPCOIN_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://crapcoin@127.0.0.1:55432/postgres".to_owned())
}

/// Drops a test database.
pub(crate) struct DropDb {
    name: String,
}

impl DropDb {
    /// Drops the database (after its pools are closed).
    pub(crate) async fn run(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_url()).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

/// A fresh PostgreSQL database.
pub(crate) struct TestDb {
    /// Sauron's store on it.
    pub(crate) db: Db,
    /// Drops it.
    pub(crate) drop: DropDb,
}

/// Creates a database with a random name and returns its URL and dropper.
/// Panics (failing the test) when PostgreSQL is unreachable.
pub(crate) async fn pg_database() -> (String, DropDb) {
    let base = pg_url();
    let mut conn =
        match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&base))
            .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => panic!("PostgreSQL at {base} is unreachable ({e}): run .ci/deps"),
            Err(_) => panic!("PostgreSQL at {base} did not answer in 10 s: run .ci/deps"),
        };
    let name = format!("sauron_test_{:016x}", rand::random::<u64>());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("creates the test database");
    let _ = conn.close().await;
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("no database in {base}"),
    };
    (url, DropDb { name })
}

/// A fresh PostgreSQL database with Sauron's schema.
pub(crate) async fn pg_db() -> TestDb {
    let (url, drop) = pg_database().await;
    let db = Db::open(&url).await.expect("opens the postgres store");
    TestDb { db, drop }
}

/// A `sauron` process, killed (SIGKILL, by PID) when dropped.
pub(crate) struct SauronProc {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// Its arguments (for a restart).
    pub(crate) args: Vec<String>,
}

impl SauronProc {
    /// Starts `sauron` with `--data-dir data_dir` and `extra`; waits (at
    /// most 60 s) for its `listening on` line.
    pub(crate) fn start(data_dir: &Path, extra: &[String]) -> Self {
        let mut args = vec!["--data-dir".to_owned(), data_dir.display().to_string()];
        args.extend(extra.iter().cloned());
        Self::spawn(args)
    }

    /// Its arguments without `--listen`, for a restart.
    pub(crate) fn restart_args(&self) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut skip = false;
        for arg in &self.args {
            if skip {
                skip = false;
            } else if arg == "--listen" {
                skip = true;
            } else {
                args.push(arg.clone());
            }
        }
        args
    }

    /// Starts `sauron` with `args` listening on `listen` (`HOST:PORT`).
    pub(crate) fn start_with(mut args: Vec<String>, listen: &str) -> Self {
        args.extend(["--listen".to_owned(), listen.to_owned()]);
        Self::spawn(args)
    }

    fn spawn(args: Vec<String>) -> Self {
        let (child, url) = super::spawn_listening(env!("CARGO_BIN_EXE_sauron"), &args);
        Self {
            child: Some(child),
            url,
            args,
        }
    }

    /// `HOST:PORT` it listens on.
    pub(crate) fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SauronProc {
    fn drop(&mut self) {
        self.kill_now();
    }
}
