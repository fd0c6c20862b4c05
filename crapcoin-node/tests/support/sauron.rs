//! Sauron helpers: throwaway PostgreSQL databases.

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
