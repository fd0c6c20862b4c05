//! [`Db`]: Sauron's storage, one type over SQLite and PostgreSQL.
//!
//! - **Two backends, one code path.** [`Db`] is an enum over an SQLite pair
//!   of pools and a PostgreSQL pool; every method is written once and
//!   expanded for each backend by the private `with_pool!` macro, using
//!   sqlx's runtime [`QueryBuilder`] (placeholders are the backend's own),
//!   never the compile-time `query!` macros. Each backend has its own
//!   embedded migrations (`crapcoin-node/migrations-sauron/{sqlite,postgres}`).
//!   PostgreSQL is the default-on cargo feature `postgres`; without it the
//!   driver is not compiled and a `postgres://` URL is
//!   [`DbError::NoPostgres`].
//! - **Batched writes.** [`Db::insert`] writes a whole batch of requests and
//!   events with multi-row `INSERT`s in one transaction: all or nothing,
//!   and one commit (one fsync) per batch rather than per row.
//! - **Ids are Sauron's.** Rows carry ids assigned by Sauron's single
//!   writer (see [`super::tasks`]), so "newest first" is "id descending",
//!   paging is `id < before`, and retention by count is one range delete.
//! - SQLite runs in WAL mode (`synchronous = NORMAL`) with one writing
//!   connection and two reading ones, so reads never wait for ingest.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sauron/sqlite");
#[cfg(feature = "postgres")]
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-sauron/postgres");

/// Request rows per multi-row `INSERT` (13 bound values each: 13,000 per
/// statement, under both SQLite's 32,766 and PostgreSQL's 65,535).
const REQUEST_ROWS_PER_INSERT: usize = 1000;
/// Event rows per multi-row `INSERT` (5 bound values each).
const EVENT_ROWS_PER_INSERT: usize = 2000;
/// Node rows per multi-row upsert (9 bound values each).
const NODE_ROWS_PER_INSERT: usize = 500;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database refused a connection or a statement.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The schema migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no supported backend.
    #[error("unsupported database url {url:?} (sqlite:// or postgres://)")]
    UnsupportedUrl {
        /// The URL as given.
        url: String,
        /// Its scheme (before `:`), when it has one.
        scheme: Option<String>,
    },
    /// A PostgreSQL URL, but this build has no PostgreSQL support (the
    /// `postgres` cargo feature is off).
    #[error("this build has no PostgreSQL support (cargo feature `postgres`)")]
    NoPostgres,
}

/// One request a node served, as stored (`GET /api/requests` items).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRow {
    /// Sauron's id: larger is newer.
    pub id: i64,
    /// The reporting node's name.
    pub node: String,
    /// When the node answered, ms since the epoch.
    pub at_ms: i64,
    /// E.g. `GET`.
    pub method: String,
    /// The full path as asked.
    pub path: String,
    /// The route template, e.g. `/block/{hash}`.
    pub route: String,
    /// Response status.
    pub status: i64,
    /// Time to serve, µs.
    pub latency_us: i64,
    /// The caller's socket address.
    pub caller: Option<String>,
    /// The peer URL the caller claimed.
    pub peer: Option<String>,
    /// Request body bytes.
    pub request_bytes: i64,
    /// Response body bytes, when known.
    pub response_bytes: Option<i64>,
    /// The start of the request body.
    pub excerpt: String,
}

/// One engine or boss event, as stored (`GET /api/events` items).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// Sauron's id: larger is newer.
    pub id: i64,
    /// The node it happened on.
    pub node: String,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The event's `kind`.
    pub kind: String,
    /// The event as JSON text (kept as text: stored and served verbatim).
    #[serde(serialize_with = "raw_json", deserialize_with = "json_text")]
    pub event: String,
}

/// Reads an event served as JSON back into its text.
fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(value.to_string())
}

fn raw_json<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    value.serialize(s)
}

/// A node as persisted (the node table Sauron reloads on restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Its name (the key).
    pub name: String,
    /// Where it is reached.
    pub url: String,
    /// Its wallet address ("" until known).
    pub address: String,
    /// Its behaviour's name ("" until known).
    pub behaviour: String,
    /// Whether its URL was verified by a registration.
    pub registered: bool,
    /// Whether the Boss fired it (until rehired).
    pub fired: bool,
    /// When it was last heard from, ms since the epoch.
    pub last_seen_ms: i64,
    /// Its last known height.
    pub height: i64,
    /// Its last known tip.
    pub tip: Option<String>,
}

/// Filters of `GET /api/requests`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only this node's.
    pub node: Option<String>,
    /// Only this route template.
    pub route: Option<String>,
    /// Only this status.
    pub status: Option<i64>,
    /// Only ids below this (the paging cursor).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Filters of `GET /api/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this node's.
    pub node: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only events at or after this time, ms since the epoch.
    pub since: Option<i64>,
    /// Only ids below this (the paging cursor).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// How much the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Newest request rows kept at most.
    pub requests: u64,
    /// Newest event rows kept at most.
    pub events: u64,
    /// Rows older than this are deleted (`None`: no age limit).
    pub max_age: Option<Duration>,
}

/// Row counts, for tests and `/api/config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Request rows.
    pub requests: u64,
    /// Event rows.
    pub events: u64,
    /// Node rows.
    pub nodes: u64,
}

/// The SQLite pools: one writer, readers beside it (WAL).
#[derive(Debug, Clone)]
pub struct SqliteDb {
    write: SqlitePool,
    read: SqlitePool,
}

/// Sauron's store. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Db {
    /// SQLite (a file in the data directory, or memory).
    Sqlite(SqliteDb),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool (`$side`: `write`
/// or `read`, which is the same pool for PostgreSQL) and `$DB` to its
/// sqlx database type.
macro_rules! with_pool {
    ($db:expr, $side:ident, |$pool:ident, $DB:ident| $body:expr) => {
        match $db {
            Db::Sqlite(s) => {
                #[allow(dead_code, reason = "not every body names the type")]
                type $DB = sqlx::Sqlite;
                let $pool = &s.$side;
                $body
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(p) => {
                #[allow(dead_code, reason = "not every body names the type")]
                type $DB = sqlx::Postgres;
                let $pool = p;
                $body
            }
        }
    };
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Db {
    /// Opens the store at `url` (`sqlite://PATH`, `sqlite::memory:` or
    /// `postgres://…`), creating an SQLite file if needed, and applies the
    /// backend's migrations.
    ///
    /// # Errors
    ///
    /// [`DbError`] for an unsupported URL, a refused connection or a failed
    /// migration.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        #[cfg(not(feature = "postgres"))]
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(DbError::NoPostgres);
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            POSTGRES_MIGRATOR.run(&pool).await?;
            return Ok(Self::Postgres(pool));
        }
        if !url.starts_with("sqlite:") {
            return Err(DbError::UnsupportedUrl {
                url: url.to_owned(),
                scheme: url.split_once(':').map(|(scheme, _)| scheme.to_owned()),
            });
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        SQLITE_MIGRATOR.run(&write).await?;
        // A private in-memory database lives in its one connection.
        let read = if memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(Self::Sqlite(SqliteDb { write, read }))
    }

    /// Which backend: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
        }
    }

    /// The largest stored request and event ids (0 when empty).
    ///
    /// # Errors
    ///
    /// [`DbError`] when the query fails.
    pub async fn max_ids(&self) -> Result<(i64, i64), DbError> {
        with_pool!(self, write, |pool, DB| {
            let r = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM requests")
                .fetch_one(pool)
                .await?;
            let e = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
                .fetch_one(pool)
                .await?;
            Ok((r.try_get(0)?, e.try_get(0)?))
        })
    }

    /// Stores `requests` and `events` in one transaction, with multi-row
    /// inserts: all of them or none.
    ///
    /// # Errors
    ///
    /// [`DbError`] when a statement fails; nothing is stored then.
    pub async fn insert(
        &self,
        requests: &[RequestRow],
        events: &[EventRow],
    ) -> Result<(), DbError> {
        if requests.is_empty() && events.is_empty() {
            return Ok(());
        }
        with_pool!(self, write, |pool, DB| {
            let mut tx = pool.begin().await?;
            for chunk in requests.chunks(REQUEST_ROWS_PER_INSERT) {
                let mut insert = QueryBuilder::<DB>::new(
                    "INSERT INTO requests (id, node, at_ms, method, path, route, status, \
                     latency_us, caller, peer, request_bytes, response_bytes, excerpt) ",
                );
                insert.push_values(chunk, |mut row, r| {
                    row.push_bind(r.id)
                        .push_bind(r.node.as_str())
                        .push_bind(r.at_ms)
                        .push_bind(r.method.as_str())
                        .push_bind(r.path.as_str())
                        .push_bind(r.route.as_str())
                        .push_bind(r.status)
                        .push_bind(r.latency_us)
                        .push_bind(r.caller.as_deref())
                        .push_bind(r.peer.as_deref())
                        .push_bind(r.request_bytes)
                        .push_bind(r.response_bytes)
                        .push_bind(r.excerpt.as_str());
                });
                insert.build().execute(&mut *tx).await?;
            }
            for chunk in events.chunks(EVENT_ROWS_PER_INSERT) {
                let mut insert =
                    QueryBuilder::<DB>::new("INSERT INTO events (id, node, at_ms, kind, event) ");
                insert.push_values(chunk, |mut row, e| {
                    row.push_bind(e.id)
                        .push_bind(e.node.as_str())
                        .push_bind(e.at_ms)
                        .push_bind(e.kind.as_str())
                        .push_bind(e.event.as_str());
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Inserts or replaces the rows of `nodes`.
    ///
    /// # Errors
    ///
    /// [`DbError`] when a statement fails.
    pub async fn upsert_nodes(&self, nodes: &[NodeRecord]) -> Result<(), DbError> {
        if nodes.is_empty() {
            return Ok(());
        }
        with_pool!(self, write, |pool, DB| {
            let mut tx = pool.begin().await?;
            for chunk in nodes.chunks(NODE_ROWS_PER_INSERT) {
                let mut insert = QueryBuilder::<DB>::new(
                    "INSERT INTO nodes (name, url, address, behaviour, registered, fired, \
                     last_seen_ms, height, tip) ",
                );
                insert.push_values(chunk, |mut row, n| {
                    row.push_bind(n.name.as_str())
                        .push_bind(n.url.as_str())
                        .push_bind(n.address.as_str())
                        .push_bind(n.behaviour.as_str())
                        .push_bind(i64::from(n.registered))
                        .push_bind(i64::from(n.fired))
                        .push_bind(n.last_seen_ms)
                        .push_bind(n.height)
                        .push_bind(n.tip.as_deref());
                });
                insert.push(
                    " ON CONFLICT (name) DO UPDATE SET url = excluded.url, \
                     address = excluded.address, behaviour = excluded.behaviour, \
                     registered = excluded.registered, fired = excluded.fired, \
                     last_seen_ms = excluded.last_seen_ms, height = excluded.height, \
                     tip = excluded.tip",
                );
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes the rows of the nodes named `names`.
    ///
    /// # Errors
    ///
    /// [`DbError`] when the statement fails.
    pub async fn delete_nodes(&self, names: &[String]) -> Result<(), DbError> {
        if names.is_empty() {
            return Ok(());
        }
        with_pool!(self, write, |pool, DB| {
            let mut delete = QueryBuilder::<DB>::new("DELETE FROM nodes WHERE name IN (");
            let mut list = delete.separated(", ");
            for name in names {
                list.push_bind(name.as_str());
            }
            delete.push(")");
            delete.build().execute(pool).await?;
            Ok(())
        })
    }

    /// Every stored node, most recently seen first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`DbError`] when the query fails.
    pub async fn load_nodes(&self, limit: i64) -> Result<Vec<NodeRecord>, DbError> {
        with_pool!(self, read, |pool, DB| {
            let mut query = QueryBuilder::<DB>::new(
                "SELECT name, url, address, behaviour, registered, fired, last_seen_ms, \
                 height, tip FROM nodes ORDER BY last_seen_ms DESC LIMIT ",
            );
            query.push_bind(limit);
            let rows = query.build().fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(NodeRecord {
                        name: row.try_get(0)?,
                        url: row.try_get(1)?,
                        address: row.try_get(2)?,
                        behaviour: row.try_get(3)?,
                        registered: row.try_get::<i64, _>(4)? != 0,
                        fired: row.try_get::<i64, _>(5)? != 0,
                        last_seen_ms: row.try_get(6)?,
                        height: row.try_get(7)?,
                        tip: row.try_get(8)?,
                    })
                })
                .collect()
        })
    }

    /// A page of the request log, newest first.
    ///
    /// # Errors
    ///
    /// [`DbError`] when the query fails.
    pub async fn requests(&self, filter: &RequestFilter) -> Result<Vec<RequestRow>, DbError> {
        with_pool!(self, read, |pool, DB| {
            let mut query = QueryBuilder::<DB>::new(
                "SELECT id, node, at_ms, method, path, route, status, latency_us, caller, \
                 peer, request_bytes, response_bytes, excerpt FROM requests WHERE 1 = 1",
            );
            if let Some(node) = &filter.node {
                query.push(" AND node = ").push_bind(node.as_str());
            }
            if let Some(route) = &filter.route {
                query.push(" AND route = ").push_bind(route.as_str());
            }
            if let Some(status) = filter.status {
                query.push(" AND status = ").push_bind(status);
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(before);
            }
            query
                .push(" ORDER BY id DESC LIMIT ")
                .push_bind(filter.limit);
            let rows = query.build().fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(RequestRow {
                        id: row.try_get(0)?,
                        node: row.try_get(1)?,
                        at_ms: row.try_get(2)?,
                        method: row.try_get(3)?,
                        path: row.try_get(4)?,
                        route: row.try_get(5)?,
                        status: row.try_get(6)?,
                        latency_us: row.try_get(7)?,
                        caller: row.try_get(8)?,
                        peer: row.try_get(9)?,
                        request_bytes: row.try_get(10)?,
                        response_bytes: row.try_get(11)?,
                        excerpt: row.try_get(12)?,
                    })
                })
                .collect()
        })
    }

    /// A page of events, newest first.
    ///
    /// # Errors
    ///
    /// [`DbError`] when the query fails.
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, DbError> {
        with_pool!(self, read, |pool, DB| {
            let mut query = QueryBuilder::<DB>::new(
                "SELECT id, node, at_ms, kind, event FROM events WHERE 1 = 1",
            );
            if let Some(node) = &filter.node {
                query.push(" AND node = ").push_bind(node.as_str());
            }
            if let Some(kind) = &filter.kind {
                query.push(" AND kind = ").push_bind(kind.as_str());
            }
            if let Some(since) = filter.since {
                query.push(" AND at_ms >= ").push_bind(since);
            }
            if let Some(before) = filter.before {
                query.push(" AND id < ").push_bind(before);
            }
            query
                .push(" ORDER BY id DESC LIMIT ")
                .push_bind(filter.limit);
            let rows = query.build().fetch_all(pool).await?;
            rows.iter().map(event_row).collect()
        })
    }

    /// The newest `limit` events whose kind is one of `kinds`, oldest
    /// first: what Sauron replays into its in-memory state on restart.
    ///
    /// # Errors
    ///
    /// [`DbError`] when the query fails.
    pub async fn recent_events(
        &self,
        kinds: &[&str],
        limit: i64,
    ) -> Result<Vec<EventRow>, DbError> {
        with_pool!(self, read, |pool, DB| {
            let mut query = QueryBuilder::<DB>::new(
                "SELECT id, node, at_ms, kind, event FROM events WHERE kind IN (",
            );
            let mut list = query.separated(", ");
            for kind in kinds {
                list.push_bind(*kind);
            }
            query.push(") ORDER BY id DESC LIMIT ").push_bind(limit);
            let rows = query.build().fetch_all(pool).await?;
            let mut events = rows.iter().map(event_row).collect::<Result<Vec<_>, _>>()?;
            events.reverse();
            Ok(events)
        })
    }

    /// Deletes what `retention` does not keep: request and event rows past
    /// the newest N, and rows older than the age limit. Returns the rows
    /// deleted.
    ///
    /// # Errors
    ///
    /// [`DbError`] when a statement fails.
    pub async fn retain(&self, retention: &Retention, now_ms: u64) -> Result<u64, DbError> {
        let keep = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let cutoff = retention.max_age.map(|age| {
            let age = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
            keep(now_ms.saturating_sub(age))
        });
        let mut deleted = 0;
        with_pool!(self, write, |pool, DB| {
            for (table, n) in [
                ("requests", retention.requests),
                ("events", retention.events),
            ] {
                // `table` is one of two constants, never input.
                let mut delete = QueryBuilder::<DB>::new(format!(
                    "DELETE FROM {table} WHERE id <= (SELECT COALESCE(MAX(id), 0) FROM {table}) - "
                ));
                delete.push_bind(keep(n));
                deleted += delete.build().execute(pool).await?.rows_affected();
                if let Some(cutoff) = cutoff {
                    let mut delete =
                        QueryBuilder::<DB>::new(format!("DELETE FROM {table} WHERE at_ms < "));
                    delete.push_bind(cutoff);
                    deleted += delete.build().execute(pool).await?.rows_affected();
                }
            }
            Ok(deleted)
        })
    }

    /// How many rows each table holds.
    ///
    /// # Errors
    ///
    /// [`DbError`] when a query fails.
    pub async fn counts(&self) -> Result<Counts, DbError> {
        with_pool!(self, read, |pool, DB| {
            let mut counts = [0u64; 3];
            for (i, sql) in [
                "SELECT COUNT(*) FROM requests",
                "SELECT COUNT(*) FROM events",
                "SELECT COUNT(*) FROM nodes",
            ]
            .into_iter()
            .enumerate()
            {
                let row = sqlx::query(sql).fetch_one(pool).await?;
                counts[i] = to_u64(row.try_get(0)?);
            }
            Ok(Counts {
                requests: counts[0],
                events: counts[1],
                nodes: counts[2],
            })
        })
    }

    /// Closes the pools, waiting for connections to finish.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => {
                s.read.close().await;
                s.write.close().await;
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => p.close().await,
        }
    }
}

fn event_row<R: Row>(row: &R) -> Result<EventRow, DbError>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(EventRow {
        id: row.try_get(0)?,
        node: row.try_get(1)?,
        at_ms: row.try_get(2)?,
        kind: row.try_get(3)?,
        event: row.try_get(4)?,
    })
}
