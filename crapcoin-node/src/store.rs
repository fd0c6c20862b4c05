//! [`Store`]: SQLite persistence of blocks, peers and acknowledged
//! transfers through sqlx.
//!
//! One database per node (`crapcoin.db` in its data directory), opened in
//! WAL mode with `synchronous = NORMAL`: a committed transaction survives the
//! process being killed (SIGKILL), which is the crash the sandbox's Boss
//! causes; only a power loss could cost the last transactions (never the
//! database's consistency). Blocks are appended in the order they are
//! stored (parents first) and read back in that order. The schema
//! comes from the embedded migrations in `crapcoin-node/migrations`.
//!
//! Blocks are stored in batches, one row per
//! [`save_blocks`](crapcoin_core::Store::save_blocks) call: the blocks'
//! canonical binary encodings back to back (a sync page, or the one block a
//! gossip or the miner brought), written in one transaction. Nothing reads
//! a block back by hash or height (the node keeps its chain in memory), so
//! there is no per-block row and no index to maintain; a block saved twice
//! is stored twice and read back once. The engine saves blocks before it
//! acknowledges them, so an acknowledged block is on disk.
//!
//! Acknowledged transfers are one row each in `acked_transfers` (their
//! sequence number, id, time and canonical encoding), written one
//! transaction per transfer before the node answers the caller: a transfer
//! arrives alone, and with `synchronous = NORMAL` a commit costs no fsync.
//! The table keeps at most [`MAX_ACKED_TRANSFERS`] rows: once past it,
//! each insert deletes the oldest row in the same transaction.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crapcoin_core::block::MAX_BLOCK_ENCODED_LEN;
use crapcoin_core::encode::{Decode, DecodeError, Encode, Reader};
use crapcoin_core::network::{
    AckedTransfer, MAX_ACKED_PAGE, MAX_ACKED_TRANSFERS, MAX_RESTORED_TRANSFERS, Snapshot,
    StoreError,
};
use crapcoin_core::{Block, CheckedBlock, PeerUrl, Transaction, TxId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// The database file's name inside a node's data directory.
pub const DB_FILE: &str = "crapcoin.db";

/// Most blocks in one row (a sync page is at most 500), so one row stays
/// a few hundred KiB whatever a caller saves at once.
const BLOCKS_PER_ROW: usize = 512;

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
    /// Most acknowledged transfers kept ([`MAX_ACKED_TRANSFERS`]; tests
    /// lower it).
    transfer_cap: i64,
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
        Ok(Self {
            pool,
            transfer_cap: i64::try_from(MAX_ACKED_TRANSFERS).unwrap_or(i64::MAX),
        })
    }

    /// Number of distinct stored blocks (reads them all).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the query fails or a stored block does not
    /// decode.
    pub async fn block_count(&self) -> Result<u64, StoreError> {
        let blocks = self.load_blocks().await?;
        Ok(u64::try_from(blocks.len()).unwrap_or(u64::MAX))
    }

    /// Every stored block once, in the order they were saved.
    async fn load_blocks(&self) -> Result<Vec<Block>, StoreError> {
        let rows = sqlx::query("SELECT count, body FROM block_batches ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        let mut blocks = Vec::new();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for row in &rows {
            let count: i64 = row.try_get(0).map_err(store_error)?;
            let body: &[u8] = row.try_get(1).map_err(store_error)?;
            let mut reader = Reader::new(body);
            for _ in 0..count {
                let before = body.len() - reader.remaining();
                let block = Block::decode_from(&mut reader)
                    .map_err(|e| store_error(CorruptBlock::Decode(e)))?;
                let bytes = &body[before..body.len() - reader.remaining()];
                if seen.insert(bytes) {
                    blocks.push(block);
                }
            }
            if reader.remaining() != 0 {
                return Err(store_error(CorruptBlock::Trailing {
                    bytes: reader.remaining(),
                    count,
                }));
            }
        }
        Ok(blocks)
    }

    /// Acknowledged transfers `sql` selects (`seq, txid, acknowledged_ms,
    /// body`, binding `bind` then `limit`), decoded.
    async fn load_transfers(
        &self,
        sql: &'static str,
        bind: i64,
        limit: usize,
    ) -> Result<Vec<AckedTransfer>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(bind)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get(0).map_err(store_error)?;
            let txid: &[u8] = row.try_get(1).map_err(store_error)?;
            let acknowledged_ms: i64 = row.try_get(2).map_err(store_error)?;
            let body: &[u8] = row.try_get(3).map_err(store_error)?;
            let id = <[u8; 32]>::try_from(txid)
                .map(TxId)
                .map_err(|_| store_error(CorruptTransfer::Id { seq }))?;
            let mut reader = Reader::new(body);
            let tx = Transaction::decode_from(&mut reader)
                .map_err(|e| store_error(CorruptTransfer::Decode { seq, error: e }))?;
            if reader.remaining() != 0 {
                return Err(store_error(CorruptTransfer::Trailing { seq }));
            }
            out.push(AckedTransfer {
                seq: u64::try_from(seq).unwrap_or(0),
                id,
                acknowledged_ms: u64::try_from(acknowledged_ms).unwrap_or(0),
                tx,
            });
        }
        Ok(out)
    }

    /// Closes the pool, waiting for the connection to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A stored block that does not decode: the database was altered.
#[derive(Debug, thiserror::Error)]
enum CorruptBlock {
    /// A block of a batch does not decode.
    #[error("stored block does not decode: {0}")]
    Decode(DecodeError),
    /// A batch holds bytes after its `count` blocks.
    #[error("stored block does not decode: {bytes} bytes after the {count} blocks of a batch")]
    Trailing {
        /// How many.
        bytes: usize,
        /// The batch's block count.
        count: i64,
    },
}

/// A stored acknowledged transfer that does not decode: the database was
/// altered.
#[derive(Debug, thiserror::Error)]
enum CorruptTransfer {
    /// Its id is not 32 bytes.
    #[error("stored transfer {seq}: its id is not 32 bytes")]
    Id {
        /// Its sequence number.
        seq: i64,
    },
    /// Its body does not decode.
    #[error("stored transfer {seq} does not decode: {error}")]
    Decode {
        /// Its sequence number.
        seq: i64,
        /// Why.
        error: DecodeError,
    },
    /// Its body holds bytes after the transaction.
    #[error("stored transfer {seq} does not decode: bytes after the transaction")]
    Trailing {
        /// Its sequence number.
        seq: i64,
    },
}

#[async_trait]
impl crapcoin_core::Store for Store {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let blocks = self.load_blocks().await?;
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
        let mut transfers = self
            .load_transfers(
                "SELECT seq, txid, acknowledged_ms, body FROM acked_transfers \
                 WHERE seq > ? ORDER BY seq DESC LIMIT ?",
                0,
                MAX_RESTORED_TRANSFERS,
            )
            .await?;
        transfers.reverse();
        Ok(Snapshot {
            blocks,
            peers,
            transfers,
        })
    }

    async fn save_blocks(&self, blocks: &[Arc<CheckedBlock>]) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        for chunk in blocks.chunks(BLOCKS_PER_ROW) {
            let mut body = Vec::with_capacity(chunk.len() * MAX_BLOCK_ENCODED_LEN);
            for block in chunk {
                block.block().encode_to(&mut body);
            }
            sqlx::query("INSERT INTO block_batches (count, body) VALUES (?, ?)")
                .bind(i64::try_from(chunk.len()).unwrap_or(i64::MAX))
                .bind(body)
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
        sqlx::query("DELETE FROM block_batches")
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn save_transfer(
        &self,
        id: TxId,
        acknowledged_ms: u64,
        tx: &Transaction,
    ) -> Result<u64, StoreError> {
        let mut db = self.pool.begin().await.map_err(store_error)?;
        let seq = sqlx::query(
            "INSERT INTO acked_transfers (txid, acknowledged_ms, body) VALUES (?, ?, ?)",
        )
        .bind(id.0.to_vec())
        .bind(i64::try_from(acknowledged_ms).unwrap_or(i64::MAX))
        .bind(tx.encode())
        .execute(&mut *db)
        .await
        .map_err(store_error)?
        .last_insert_rowid();
        let cap = self.transfer_cap;
        if seq > cap {
            sqlx::query("DELETE FROM acked_transfers WHERE seq <= ?")
                .bind(seq - cap)
                .execute(&mut *db)
                .await
                .map_err(store_error)?;
        }
        db.commit().await.map_err(store_error)?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    async fn acknowledged(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AckedTransfer>, StoreError> {
        self.load_transfers(
            "SELECT seq, txid, acknowledged_ms, body FROM acked_transfers \
             WHERE seq > ? ORDER BY seq LIMIT ?",
            i64::try_from(after).unwrap_or(i64::MAX),
            limit.min(MAX_ACKED_PAGE),
        )
        .await
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

    /// A database in `dir` migrated by the first `migrations` only (file
    /// names under `migrations/`): the schema an older node left.
    async fn at_schema(dir: &std::path::Path, migrations: &[&str]) -> sqlx::SqlitePool {
        let first = tempfile::tempdir().expect("temp dir");
        for file in migrations {
            std::fs::copy(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(file),
                first.path().join(file),
            )
            .expect("copies a migration");
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join(super::DB_FILE))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options)
            .await
            .expect("opens");
        sqlx::migrate::Migrator::new(first.path())
            .await
            .expect("reads")
            .run(&pool)
            .await
            .expect("migrates to the older schema");
        pool
    }

    /// A data directory written before blocks were stored in batches (one
    /// row per block in `blocks`) opens with its blocks, in their order.
    #[tokio::test]
    async fn a_database_with_a_row_per_block_is_migrated() {
        use crapcoin_core::encode::Encode;
        let dir = tempfile::tempdir().expect("temp dir");
        let params = Params::with_difficulty(4);
        let blocks = chain(&params, 7);
        {
            let pool = at_schema(dir.path(), &["0001_init.sql"]).await;
            for block in &blocks[..5] {
                sqlx::query("INSERT INTO blocks (hash, height, body) VALUES (?, ?, ?)")
                    .bind(block.hash().0.to_vec())
                    .bind(i64::try_from(block.header.height).expect("small"))
                    .bind(block.block().encode())
                    .execute(&pool)
                    .await
                    .expect("inserts");
            }
            pool.close().await;
        }
        let store = Store::open(dir.path()).await.expect("opens and migrates");
        store.save_blocks(&blocks[5..]).await.expect("saves");
        let snapshot = store.load().await.expect("loads");
        let want: Vec<_> = blocks.iter().map(|b| b.block().clone()).collect();
        assert_eq!(snapshot.blocks, want);
    }

    fn transfers(n: u64) -> Vec<crapcoin_core::Transaction> {
        (0..n)
            .map(|nonce| kit::chain::pay(1, kit::chain::addr(7), 5, 1, nonce))
            .collect()
    }

    /// Acknowledged transfers come back in order with their id and time,
    /// page by page; the snapshot carries them; past the cap the oldest go
    /// and sequence numbers are never given twice.
    #[tokio::test]
    async fn acknowledged_transfers_are_stored_paged_and_capped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let txs = transfers(7);
        {
            let store = Store::open(dir.path()).await.expect("opens");
            for (i, tx) in txs.iter().enumerate() {
                let seq = store
                    .save_transfer(tx.id(), 1_000 + i as u64, tx)
                    .await
                    .expect("saves");
                assert_eq!(seq, i as u64 + 1);
            }
            store.close().await;
        }
        let mut store = Store::open(dir.path()).await.expect("reopens");
        let snapshot = store.load().await.expect("loads");
        assert_eq!(snapshot.transfers.len(), 7);
        for (i, (got, tx)) in snapshot.transfers.iter().zip(&txs).enumerate() {
            assert_eq!(got.seq, i as u64 + 1);
            assert_eq!(got.id, tx.id());
            assert_eq!(got.acknowledged_ms, 1_000 + i as u64);
            assert_eq!(&got.tx, tx);
        }
        let page = store.acknowledged(2, 3).await.expect("pages");
        assert_eq!(page.iter().map(|t| t.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(store.acknowledged(7, 10).await.expect("pages").is_empty());
        store.clear_blocks().await.expect("clears blocks");
        assert_eq!(
            store.load().await.expect("loads").transfers.len(),
            7,
            "an amnesiac's wipe keeps promises"
        );
        store.transfer_cap = 4;
        let more = transfers(9);
        let seq = store
            .save_transfer(more[8].id(), 2_000, &more[8])
            .await
            .expect("saves");
        assert_eq!(seq, 8);
        let left: Vec<u64> = store
            .acknowledged(0, 100)
            .await
            .expect("pages")
            .iter()
            .map(|t| t.seq)
            .collect();
        assert_eq!(left, [5, 6, 7, 8], "the oldest went past the cap");
        sqlx::query("UPDATE acked_transfers SET body = substr(body, 1, 10) WHERE seq = 6")
            .execute(&store.pool)
            .await
            .expect("damages");
        assert!(store.load().await.is_err(), "a damaged transfer is refused");
    }

    /// A data directory from before acknowledged transfers were stored
    /// opens with its blocks and an empty record, then records.
    #[tokio::test]
    async fn a_database_without_the_transfer_record_is_migrated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let params = Params::with_difficulty(4);
        let blocks = chain(&params, 3);
        {
            let pool = at_schema(dir.path(), &["0001_init.sql", "0002_block_batches.sql"]).await;
            let old = Store {
                pool: pool.clone(),
                transfer_cap: 10,
            };
            old.save_blocks(&blocks).await.expect("saves");
            pool.close().await;
        }
        let store = Store::open(dir.path()).await.expect("opens and migrates");
        let snapshot = store.load().await.expect("loads");
        assert_eq!(snapshot.blocks.len(), 3);
        assert!(snapshot.transfers.is_empty());
        let tx = &transfers(1)[0];
        assert_eq!(store.save_transfer(tx.id(), 5, tx).await.expect("saves"), 1);
        assert_eq!(store.load().await.expect("loads").transfers.len(), 1);
    }

    /// A batch whose bytes or count were altered is an error, not a
    /// shorter chain.
    #[tokio::test]
    async fn a_damaged_batch_fails_to_load() {
        let params = Params::with_difficulty(4);
        let blocks = chain(&params, 3);
        for damage in [
            "UPDATE block_batches SET body = substr(body, 1, length(body) - 1)",
            "UPDATE block_batches SET count = count + 1",
            "UPDATE block_batches SET count = count - 1",
        ] {
            let store = Store::memory().await.expect("opens");
            store.save_blocks(&blocks).await.expect("saves");
            assert_eq!(store.load().await.expect("loads").blocks.len(), 3);
            sqlx::query(damage)
                .execute(&store.pool)
                .await
                .expect("damages");
            assert!(store.load().await.is_err(), "{damage}: refused");
        }
    }
}
