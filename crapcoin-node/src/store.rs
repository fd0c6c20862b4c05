//! [`Store`]: SQLite persistence of blocks and peers through sqlx.
//!
//! One database per node (`crapcoin.db` in its data directory), opened in
//! WAL mode with `synchronous = NORMAL`: a committed transaction survives the
//! process being killed (SIGKILL), which is the crash the sandbox's Boss
//! causes; only a power loss could cost the last transactions (never the
//! database's consistency). Blocks are appended in the order they are
//! stored (parents first) and read back in that order. The schema
//! comes from the embedded migrations in `crapcoin-node/migrations`.
//!
//! Blocks are stored in their canonical binary encoding, keyed by hash, with
//! `INSERT OR IGNORE` so saving the same block twice is harmless. A batch of
//! blocks (a sync page) is written with multi-row inserts in one
//! transaction. The engine calls [`Store::save_blocks`] before it
//! acknowledges a block, so an acknowledged block is on disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crapcoin_core::encode::{Decode, Encode};
use crapcoin_core::network::{Snapshot, StoreError};
use crapcoin_core::{Block, CheckedBlock, PeerUrl};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

/// The database file's name inside a node's data directory.
pub const DB_FILE: &str = "crapcoin.db";

/// Rows per multi-row `INSERT` (3 bound values each, well under SQLite's
/// limit of bound parameters per statement).
const ROWS_PER_INSERT: usize = 256;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite refused to open or configure the database.
    #[error("opening the database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// The schema migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A node's SQLite store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError(Box::new(e))
}

impl Store {
    /// Opens (creating if needed) the database in `dir`, in WAL mode, and
    /// applies the migrations.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when SQLite or a migration fails.
    pub async fn open(dir: &Path) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::new()
            .filename(dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // Checkpoint (copy the WAL into the database and fsync) every
            // 16 MiB of WAL instead of every 4 MiB: a sync writes in
            // bursts, and each checkpoint's fsync cost about as much as
            // writing 5,000 blocks on the machines measured.
            .pragma("wal_autocheckpoint", "4096");
        Self::with_options(options).await
    }

    /// A private in-memory database (`sqlite::memory:`), for tests.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when SQLite or a migration fails.
    pub async fn memory() -> Result<Self, OpenError> {
        let options: SqliteConnectOptions = "sqlite::memory:".parse()?;
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, OpenError> {
        // One connection: the engine already serialises writes, a single
        // connection keeps an in-memory database alive and costs the least
        // memory. It never expires, for the same reasons.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Number of stored blocks.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the query fails.
    pub async fn block_count(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM blocks")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let n: i64 = row.try_get(0).map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Closes the pool, waiting for the connection to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A stored block that does not decode: the database was altered.
#[derive(Debug, thiserror::Error)]
#[error("stored block does not decode: {0}")]
struct CorruptBlock(String);

#[async_trait]
impl crapcoin_core::Store for Store {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let rows = sqlx::query("SELECT body FROM blocks ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        let mut blocks = Vec::with_capacity(rows.len());
        for row in rows {
            let body: &[u8] = row.try_get(0).map_err(store_error)?;
            let block =
                Block::decode(body).map_err(|e| store_error(CorruptBlock(e.to_string())))?;
            blocks.push(block);
        }
        let rows = sqlx::query("SELECT url FROM peers")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        let mut peers = Vec::with_capacity(rows.len());
        for row in rows {
            let url: &str = row.try_get(0).map_err(store_error)?;
            // A row that is not a valid URL is skipped, not fatal: peers
            // are hints, blocks are the truth.
            if let Ok(url) = url.parse::<PeerUrl>() {
                peers.push(url);
            }
        }
        Ok(Snapshot { blocks, peers })
    }

    async fn save_blocks(&self, blocks: &[Arc<CheckedBlock>]) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        for chunk in blocks.chunks(ROWS_PER_INSERT) {
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT OR IGNORE INTO blocks (hash, height, body) ");
            insert.push_values(chunk, |mut row, block| {
                row.push_bind(block.hash().0.to_vec())
                    .push_bind(i64::try_from(block.header.height).unwrap_or(i64::MAX))
                    .push_bind(block.block().encode());
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn save_peer(&self, peer: &PeerUrl) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO peers (url) VALUES (?)")
            .bind(peer.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn remove_peer(&self, peer: &PeerUrl) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM peers WHERE url = ?")
            .bind(peer.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn clear_blocks(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM blocks")
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Arc, CheckedBlock, PeerUrl, Store};
    use crapcoin_core::Store as _;
    use crapcoin_core::{Forge, Params, validate};

    fn chain(params: &Params, n: usize) -> Vec<Arc<CheckedBlock>> {
        let mut parent = params.genesis().header.clone();
        let mut out = Vec::new();
        for _ in 0..n {
            let block = Forge::new(params, &parent).mine();
            parent = block.header.clone();
            out.push(Arc::new(validate::check(block, params).expect("valid")));
        }
        out
    }

    #[tokio::test]
    async fn saves_idempotently_and_loads_in_height_order() {
        let params = Params::with_difficulty(4);
        let store = Store::memory().await.expect("opens");
        let blocks = chain(&params, 600);
        store.save_blocks(&blocks).await.expect("saves");
        store.save_blocks(&blocks[..10]).await.expect("saves again");
        assert_eq!(store.block_count().await.expect("counts"), 600);
        let peer: PeerUrl = "http://127.0.0.1:9".parse().expect("url");
        store.save_peer(&peer).await.expect("saves peer");
        store.save_peer(&peer).await.expect("saves peer again");
        let snapshot = store.load().await.expect("loads");
        let heights: Vec<u64> = snapshot.blocks.iter().map(|b| b.header.height).collect();
        assert_eq!(heights, (1..=600).collect::<Vec<u64>>());
        assert_eq!(snapshot.blocks[0], *blocks[0].block());
        assert_eq!(snapshot.peers, vec![peer.clone()]);
        store.remove_peer(&peer).await.expect("removes");
        store.clear_blocks().await.expect("clears");
        let snapshot = store.load().await.expect("loads");
        assert!(snapshot.blocks.is_empty() && snapshot.peers.is_empty());
    }

    #[tokio::test]
    async fn a_file_database_survives_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let params = Params::with_difficulty(4);
        let blocks = chain(&params, 5);
        {
            let store = Store::open(dir.path()).await.expect("opens");
            store.save_blocks(&blocks).await.expect("saves");
            store.close().await;
        }
        let store = Store::open(dir.path()).await.expect("reopens");
        let snapshot = store.load().await.expect("loads");
        assert_eq!(snapshot.blocks.len(), 5);
    }
}
