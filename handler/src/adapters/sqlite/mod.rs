//! The local store and delivery queue: one SQLite file in WAL mode, owned by one process (a lock file says so).
//!
//! - `schema.rs`: the tables, the pragmas, the schema version check.
//! - `writer.rs`: the one writer thread, which group-commits, and the checkpoint thread.
//! - `queue.rs`: the deliveries table as the local queue: accept (insert, and lease to the caller at once),
//!   lease what is due, when the next delivery is due.
//! - `log.rs`: the delivery log (`ports::DeliveryLog`) on the same table, with one row per attempt.
//! - `records.rs`: the webhooks and the rejected events.
//! - `tenants.rs`: the tenants and their tokens (hashes only).
//! - `retention.rs`: deleting what is older than the retention, in small batches.
//! - `waiting.rs`: events waiting for their next try after their enrichers failed.
//!
//! Writes go to the writer thread and are answered after their commit; reads use connections of their own.

mod log;
mod queue;
mod records;
mod retention;
mod schema;
mod sources;
mod tenants;
mod waiting;
mod writer;

pub use retention::{Pruned, BATCH as PRUNE_BATCH};
pub use waiting::WaitingEvent;

use crate::ports::StoreError;
use rusqlite::Connection;
use schema::storage;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use writer::{Op, WriteOp};

pub struct SqliteStore {
    writer: mpsc::UnboundedSender<Box<dyn WriteOp>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    /// Dropping it stops the checkpoint thread.
    _checkpointer: std::sync::mpsc::Sender<()>,
    _lock: File,
    /// How long a delivery logged here is leased to this process, for its queue to hand over (see
    /// [`SqliteStore::claiming_new`]); 0: logged due at once.
    claim_ms: i64,
}

impl SqliteStore {
    /// Opens (or creates) `dispatcher.db` in `data_dir`. Only one process may use a data dir at a time; the
    /// deliveries a previous process had leased are due again at once, at `now_ms`.
    pub fn open(data_dir: &Path, now_ms: i64) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| storage(format!("cannot create {}: {e}", data_dir.display())))?;
        let lock =
            File::create(data_dir.join("lock")).map_err(|e| storage(format!("cannot create the lock file: {e}")))?;
        lock.try_lock().map_err(|_| storage(format!("{} is in use by another handler process", data_dir.display())))?;
        let path = data_dir.join("dispatcher.db");
        let connection = schema::open_connection(&path).map_err(storage)?;
        schema::create_schema(&connection, &path)?;
        schema::tune_writer(&connection)?;
        queue::release_leases(&connection, now_ms)?;
        waiting::release_waiting(&connection, now_ms)?;
        let (writer, receiver) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::write_loop(connection, receiver))
            .map_err(storage)?;
        let (checkpointer, stop) = std::sync::mpsc::channel();
        let checkpoint_connection = schema::open_connection(&path).map_err(storage)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || writer::checkpoint_loop(checkpoint_connection, stop))
            .map_err(storage)?;
        Ok(SqliteStore { writer, readers: Arc::default(), path, _checkpointer: checkpointer, _lock: lock, claim_ms: 0 })
    }

    /// Logs new deliveries leased to this process for `lease_ms`: here the log is the queue, and the queue hands
    /// them to its workers in memory (`runtime::local::LocalQueue`), so logging them leases them in the same write.
    /// Those it does not hand over the next [`SqliteStore::lease`] makes due; a restart releases every lease.
    pub fn claiming_new(self, lease_ms: i64) -> SqliteStore {
        SqliteStore { claim_ms: lease_ms, ..self }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the writer's current transaction (more than once if the transaction is retried, see
    /// `writer.rs`); answers after the commit.
    async fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_with((), move |(), connection| f(connection)).await.map(|((), value)| value)
    }

    /// As [`SqliteStore::write`], for a write made from data it hands back: `state` goes to `f` by reference
    /// and comes back with the result.
    async fn write_with<S: Send + 'static, T: Send + 'static>(
        &self,
        state: S,
        run: impl FnMut(&mut S, &Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(S, T), StoreError> {
        let (caller, answered) = oneshot::channel();
        self.writer.send(Box::new(Op { state, run, result: None, caller })).map_err(|_| StoreError::Closed)?;
        answered.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (readers, path) = (self.readers.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().map_err(|_| StoreError::Closed)?.pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => schema::open_connection(&path).map_err(storage)?,
            };
            let result = f(&connection);
            if let Ok(mut pool) = readers.lock() {
                pool.push(connection);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}
