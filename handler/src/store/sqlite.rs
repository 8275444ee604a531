//! The local store and delivery queue: one SQLite file in WAL mode.
//!
//! Writes go to one writer thread, which applies every write waiting for it in one transaction (group commit)
//! and answers each caller only after the commit: an answer means the data is on disk, in the sense that a
//! killed process does not lose it (WAL with `synchronous=NORMAL`). Reads use their own connections.
//! The deliveries table is also the queue: a delivery is due when `next_attempt_at` has passed; leasing it
//! pushes `next_attempt_at` past the attempt's timeout, so a delivery whose attempt never reports back is due
//! again later, and a restart makes every leased delivery due at once.

use super::{
    DeliveryLog, DeliveryRecord, Job, LogKey, NewDelivery, Next, PageResult, Rejected, RejectedEvents, Status,
    StoreError, StoredWebhook, Webhooks,
};
use crate::delivery::sender::AttemptRecord;
use crate::dispatch::DeliveryId;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// One caller's write, as the writer thread runs it (see [`write_loop`]).
trait WriteOp: Send {
    /// Makes the write in the current transaction. Called again if the transaction is rolled back and retried,
    /// so it keeps its result for [`WriteOp::answer`] instead of handing it over.
    fn apply(&mut self, connection: &Connection) -> Result<(), StoreError>;
    /// Answers the caller once the outcome is final: its last `apply`, and whether that was committed.
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

/// A write made by `run` on its own `state`, which goes back to the caller with the result.
struct Op<S, T, F> {
    state: S,
    run: F,
    result: Option<T>,
    caller: oneshot::Sender<Result<(S, T), StoreError>>,
}

impl<S: Send, T: Send, F: FnMut(&mut S, &Connection) -> Result<T, StoreError> + Send> WriteOp for Op<S, T, F> {
    fn apply(&mut self, connection: &Connection) -> Result<(), StoreError> {
        self.result = Some((self.run)(&mut self.state, connection)?);
        Ok(())
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Op { state, result, caller, .. } = *self;
        // An Ok outcome follows an apply that succeeded and set `result`; the error cannot happen.
        let unmade = || storage("the write was committed without being made");
        let answer = outcome.and_then(|()| result.map(|value| (state, value)).ok_or_else(unmade));
        let _ = caller.send(answer);
    }
}

/// The most writes one transaction takes.
const MAX_BATCH: usize = 1024;

/// The schema this code reads and writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 2;

// Deliveries are rows in insertion order (`seq`), so that new ones append to the table instead of landing on
// random pages by their hashed ids; attempts hang off `seq` for the same reason.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body BLOB NOT NULL,
    source_id TEXT NOT NULL,
    correlation_id TEXT,
    status TEXT NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    leased INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    dead_reason TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_at, webhook_id) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_by_webhook ON deliveries(webhook_id);
CREATE TABLE IF NOT EXISTS attempts (
    delivery_seq INTEGER NOT NULL,
    n INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (delivery_seq, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    problems TEXT NOT NULL,
    body TEXT NOT NULL
);
";

pub struct SqliteStore {
    writer: mpsc::UnboundedSender<Box<dyn WriteOp>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
    /// Dropping it stops the checkpoint thread.
    _checkpointer: std::sync::mpsc::Sender<()>,
    _lock: File,
}

fn storage(error: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(error.to_string())
}

/// The page size of a new database file. Each message's deliveries, inserted into the unique index of their
/// hashed ids, dirty a page at random, which each commit writes whole to the WAL: smaller pages write less. 2 KiB
/// against SQLite's 4 KiB gave more deliveries/s in 10 of 11 alternating fan-out runs (README, "Performance").
const PAGE_SIZE: u32 = 2048;

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // The page size must come first: it takes effect only on a file that WAL mode has not initialised yet.
    connection.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;"
    ))?;
    Ok(connection)
}

impl SqliteStore {
    /// Opens (or creates) `dispatcher.db` in `data_dir`. Only one process may use a data dir at a time.
    pub fn open(data_dir: &Path, now_ms: i64) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| storage(format!("cannot create {}: {e}", data_dir.display())))?;
        let lock =
            File::create(data_dir.join("lock")).map_err(|e| storage(format!("cannot create the lock file: {e}")))?;
        lock.try_lock().map_err(|_| storage(format!("{} is in use by another handler process", data_dir.display())))?;
        let path = data_dir.join("dispatcher.db");
        let connection = open_connection(&path).map_err(storage)?;
        create_schema(&connection, &path)?;
        // Measured with `cargo bench --bench queue` and `testagent load` (see the README): the writer keeps the
        // hot pages of the queue's indexes in a cache that grows only as the data does, and statement journals
        // stay in memory. Checkpoints run on their own thread (below); the writer checkpoints only if that
        // thread falls far behind.
        connection
            .execute_batch(
                "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 65536;
                 PRAGMA journal_size_limit = 67108864;",
            )
            .map_err(storage)?;
        // This process holds the lock, so whatever is leased was leased by a process that is gone.
        connection
            .execute("UPDATE deliveries SET leased = 0, next_attempt_at = ?1 WHERE leased = 1", [now_ms])
            .map_err(storage)?;
        let (writer, receiver) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(connection, receiver))
            .map_err(storage)?;
        let (checkpointer, stop) = std::sync::mpsc::channel();
        let checkpoint_connection = open_connection(&path).map_err(storage)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_connection, stop))
            .map_err(storage)?;
        Ok(SqliteStore { writer, readers: Arc::default(), path, _checkpointer: checkpointer, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in the writer's current transaction (more than once if the transaction is retried, see
    /// [`write_loop`]); answers after the commit.
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
                None => open_connection(&path).map_err(storage)?,
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

    // Deliveries and the queue.

    /// Stores new deliveries, due now, and returns nothing; or, with `lease_until`, leased by the caller until
    /// then, and returns them as jobs to attempt. A delivery id seen before is left as it is (and not returned),
    /// so accepting the same source message twice delivers once.
    pub async fn accept(
        &self,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
        lease_until: Option<i64>,
    ) -> Result<Vec<Job>, StoreError> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let (due, leased) = (lease_until.unwrap_or(now_ms), lease_until.is_some());
        let (deliveries, inserted) = self
            .write_with(deliveries, move |deliveries, c| {
                let mut insert = insert_statement(c)?;
                let insert_one = |delivery| insert_delivery(&mut insert, delivery, Some(due), leased, now_ms);
                deliveries.iter().map(insert_one).collect::<Result<Vec<_>, _>>()
            })
            .await?;
        if !leased {
            return Ok(Vec::new());
        }
        let jobs = deliveries.into_iter().zip(inserted);
        Ok(jobs.filter_map(|(delivery, seq)| Some(Job { seq: seq?, delivery, attempts_made: 0 })).collect())
    }

    /// Leases up to `limit` due deliveries (oldest due first) for `lease_ms`, skipping the webhooks in `skip`.
    pub async fn lease(
        &self,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
        skip: Vec<String>,
    ) -> Result<Vec<Job>, StoreError> {
        let skip = serde_json::to_string(&skip).map_err(storage)?;
        self.write(move |c| {
            let mut statement = c
                .prepare_cached(
                    "UPDATE deliveries SET leased = 1, next_attempt_at = ?2
                     WHERE seq IN (SELECT seq FROM deliveries WHERE next_attempt_at <= ?1
                                   AND webhook_id NOT IN (SELECT value FROM json_each(?4))
                                   ORDER BY next_attempt_at LIMIT ?3)
                     RETURNING seq, id, webhook_id, event, body, source_id, correlation_id, attempt_count",
                )
                .map_err(storage)?;
            let rows = statement
                .query_map(params![now_ms, now_ms + lease_ms, limit as i64, skip], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, u32>(7)?,
                    ))
                })
                .map_err(storage)?;
            rows.map(|row| {
                let (seq, id, webhook_id, event, body, source_id, correlation_id, attempts_made) =
                    row.map_err(storage)?;
                let id = DeliveryId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("delivery id {id:?}")))?;
                let delivery =
                    NewDelivery { id, webhook_id: webhook_id.into(), event, body, source_id, correlation_id };
                Ok(Job { seq, delivery, attempts_made })
            })
            .collect()
        })
        .await
    }

    /// Logs attempt number `n` (1-based) of the delivery of a job (by its `seq`) and moves it on.
    pub async fn record_attempt(&self, seq: i64, n: u32, attempt: AttemptRecord, next: Next) -> Result<(), StoreError> {
        let row = AttemptRow::new(n, &attempt, next)?;
        self.write(move |c| row.write(c, seq)).await
    }

    /// Gives the delivery of a leased job (by its `seq`) back without an attempt: due again, or dead.
    pub async fn release(&self, seq: i64, next: Next) -> Result<(), StoreError> {
        let (status, next_at, reason) = next.columns();
        self.write(move |c| {
            c.execute(
                "UPDATE deliveries SET status = ?2, next_attempt_at = ?3, leased = 0, dead_reason = ?4 WHERE seq = ?1",
                params![seq, status.as_str(), next_at, reason],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }

    /// Makes a delivery due now again, whatever its status, keeping its id and attempt log.
    pub async fn retry_now(&self, id: DeliveryId, now_ms: i64) -> Result<bool, StoreError> {
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN 'pending' ELSE 'retrying' END,
                     next_attempt_at = ?2, dead_reason = NULL WHERE id = ?1 AND leased = 0",
                    params![id.as_str(), now_ms],
                )
                .map_err(storage)?;
            Ok(changed > 0)
        })
        .await
    }

    /// When the next delivery (or lease expiry) is due, if any.
    pub async fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT MIN(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(storage)
        })
        .await
    }
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn put_webhook(&self, webhook: &StoredWebhook) -> Result<(), StoreError> {
        let (id, doc) = (webhook.id.to_string(), serde_json::to_string(webhook).map_err(storage)?);
        self.write(move |c| {
            c.execute(
                "INSERT INTO webhooks (id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc = ?2",
                params![id, doc],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }

    async fn get_webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM webhooks WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(storage)?;
            doc.map(|doc| parse_webhook(&doc)).transpose()
        })
        .await
    }

    async fn list_webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        self.read(|c| {
            let mut statement = c.prepare_cached("SELECT doc FROM webhooks ORDER BY rowid").map_err(storage)?;
            let docs = statement.query_map([], |r| r.get::<_, String>(0)).map_err(storage)?;
            docs.map(|doc| parse_webhook(&doc.map_err(storage)?)).collect()
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            // Its pending deliveries go with it: nobody is left to receive them.
            c.execute(
                "UPDATE deliveries SET status = 'dead', next_attempt_at = NULL, dead_reason = 'webhook deleted'
                 WHERE webhook_id = ?1 AND next_attempt_at IS NOT NULL",
                [&id],
            )
            .map_err(storage)?;
            Ok(c.execute("DELETE FROM webhooks WHERE id = ?1", [&id]).map_err(storage)? > 0)
        })
        .await
    }
}

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn get_delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        self.read(move |c| {
            let mut statement = c.prepare_cached(&format!("{SELECT_DELIVERY} WHERE id = ?1")).map_err(storage)?;
            let record = statement.query_row([id.as_str()], delivery_row).optional().map_err(storage)?;
            record.map(|row| with_attempts(c, row)).transpose()
        })
        .await
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> PageResult<DeliveryRecord> {
        let (webhook_id, before) = (webhook_id.to_owned(), parse_cursor(before)?);
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(&format!(
                    "{SELECT_DELIVERY} WHERE webhook_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                ))
                .map_err(storage)?;
            let rows = statement
                .query_map(params![webhook_id, before.unwrap_or(i64::MAX), limit as i64 + 1], delivery_row)
                .map_err(storage)?;
            let rows = rows.map(|row| row.map(|(seq, record)| (seq, (seq, record))));
            let (page, next) = cut_page(rows.collect::<Result<Vec<_>, _>>().map_err(storage)?, limit);
            let records = page.into_iter().map(|r| with_attempts(c, r)).collect::<Result<_, _>>()?;
            Ok((records, next.map(|seq| seq.to_string())))
        })
        .await
    }

    async fn log_delivery(&self, delivery: &NewDelivery, now_ms: i64) -> Result<(), StoreError> {
        let delivery = delivery.clone();
        // Logged, not queued (no next attempt): whoever calls this sends it through its own queue.
        self.write(move |c| insert_delivery(&mut insert_statement(c)?, &delivery, None, false, now_ms).map(|_| ()))
            .await
    }

    async fn log_attempt(
        &self,
        key: LogKey<'_>,
        n: u32,
        attempt: AttemptRecord,
        next: Next,
    ) -> Result<bool, StoreError> {
        let (id, webhook_id) = (key.id, key.webhook_id.to_owned());
        let row = AttemptRow::new(n, &attempt, next)?;
        // One write finds the delivery and logs the attempt: no read on another connection first.
        self.write(move |c| {
            let seq = c
                .prepare_cached("SELECT seq FROM deliveries WHERE id = ?1 AND webhook_id = ?2")
                .and_then(|mut s| s.query_row(params![id.as_str(), webhook_id], |r| r.get::<_, i64>(0)).optional())
                .map_err(storage)?;
            seq.map(|seq| row.write(c, seq)).transpose().map(|written| written.is_some())
        })
        .await
    }

    async fn give_up(&self, key: LogKey<'_>, reason: &str) -> Result<bool, StoreError> {
        let (id, webhook_id, reason) = (key.id, key.webhook_id.to_owned(), reason.to_owned());
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE deliveries SET status = 'dead', next_attempt_at = NULL, dead_reason = ?3
                     WHERE id = ?1 AND webhook_id = ?2",
                    params![id.as_str(), webhook_id, reason],
                )
                .map_err(storage)?;
            Ok(changed > 0)
        })
        .await
    }
}

#[async_trait]
impl RejectedEvents for SqliteStore {
    async fn reject(&self, rejected: Rejected) -> Result<(), StoreError> {
        let problems = serde_json::to_string(&rejected.problems).map_err(storage)?;
        self.write(move |c| {
            c.execute(
                "INSERT INTO rejected_events (id, received_at, problems, body) VALUES (?1, ?2, ?3, ?4)",
                params![rejected.id, rejected.received_at_ms, problems, rejected.body],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }

    async fn list_rejected(&self, limit: usize, before: Option<&str>) -> PageResult<Rejected> {
        let before = parse_cursor(before)?;
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT seq, id, received_at, problems, body FROM rejected_events WHERE seq < ?1
                     ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(storage)?;
            let rows = statement
                .query_map(params![before.unwrap_or(i64::MAX), limit as i64 + 1], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get(4)?))
                })
                .map_err(storage)?;
            let mut page = Vec::new();
            for row in rows {
                let (seq, id, received_at_ms, problems, body) = row.map_err(storage)?;
                let problems = serde_json::from_str(&problems).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                page.push((seq, Rejected { id, received_at_ms, problems, body }));
            }
            let (items, next) = cut_page(page, limit);
            Ok((items, next.map(|seq| seq.to_string())))
        })
        .await
    }
}

/// An attempt as the store writes it: its entry in the log, and what it makes of its delivery.
struct AttemptRow {
    n: u32,
    record: String,
    status: Status,
    next_at: Option<i64>,
    dead_reason: Option<String>,
}

impl AttemptRow {
    fn new(n: u32, attempt: &AttemptRecord, next: Next) -> Result<AttemptRow, StoreError> {
        let record = serde_json::to_string(attempt).map_err(storage)?;
        let (status, next_at, dead_reason) = next.columns();
        Ok(AttemptRow { n, record, status, next_at, dead_reason })
    }

    /// Logs it as attempt `n` of the delivery in row `seq` (replacing an earlier entry for `n`), and moves the
    /// delivery on.
    fn write(&self, c: &Connection, seq: i64) -> Result<(), StoreError> {
        c.prepare_cached("INSERT OR REPLACE INTO attempts (delivery_seq, n, record) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![seq, self.n, self.record]))
            .map_err(storage)?;
        c.prepare_cached(
            "UPDATE deliveries SET status = ?2, attempt_count = ?3, next_attempt_at = ?4, leased = 0, dead_reason = ?5
             WHERE seq = ?1",
        )
        .and_then(|mut s| s.execute(params![seq, self.status.as_str(), self.n, self.next_at, self.dead_reason]))
        .map_err(storage)?;
        Ok(())
    }
}

/// Our cursors are row sequence numbers.
fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, StoreError> {
    cursor.map(|text| text.parse::<i64>().map_err(|_| StoreError::BadCursor(text.to_owned()))).transpose()
}

/// The statement [`insert_delivery`] runs, prepared once per transaction.
fn insert_statement(c: &Connection) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
    c.prepare_cached(
        "INSERT INTO deliveries (id, webhook_id, event, body, source_id, correlation_id, status,
         next_attempt_at, leased, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9)
         ON CONFLICT (id) DO NOTHING RETURNING seq",
    )
    .map_err(storage)
}

/// Inserts a pending delivery, due at `due` (never, without one); its row number, or `None` when a delivery
/// with its id is there already (accepting the same source message twice delivers once).
fn insert_delivery(
    insert: &mut rusqlite::CachedStatement<'_>,
    d: &NewDelivery,
    due: Option<i64>,
    leased: bool,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let row =
        params![d.id.as_str(), &*d.webhook_id, d.event, d.body, d.source_id, d.correlation_id, due, leased, now_ms];
    insert.query_row(row, |r| r.get(0)).optional().map_err(storage)
}

/// Rows fetched as `limit + 1` (sequence number, item) → the page, and the cursor of the next one if there is one.
fn cut_page<T>(mut rows: Vec<(i64, T)>, limit: usize) -> (Vec<T>, Option<i64>) {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    (rows.into_iter().map(|(_, item)| item).collect(), next)
}

const SELECT_DELIVERY: &str = "SELECT seq, id, webhook_id, event, status, body, source_id, correlation_id, created_at,
    next_attempt_at, dead_reason FROM deliveries";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, DeliveryRecord)> {
    let id: String = r.get(1)?;
    let status: String = r.get(4)?;
    let body: Vec<u8> = r.get(5)?;
    let conversion = |e: String| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into());
    let payload = String::from_utf8(body)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::value::RawValue::from_string(text).map_err(|e| e.to_string()))
        .map_err(conversion)?;
    Ok((
        r.get(0)?,
        DeliveryRecord {
            id: DeliveryId::parse(&id).ok_or_else(|| conversion(format!("delivery id {id:?}")))?,
            webhook_id: r.get(2)?,
            event: r.get(3)?,
            status: Status::parse(&status).ok_or_else(|| conversion(format!("status {status:?}")))?,
            payload,
            source_id: r.get(6)?,
            correlation_id: r.get(7)?,
            created_at_ms: r.get(8)?,
            next_attempt_at_ms: r.get(9)?,
            dead_reason: r.get(10)?,
            attempts: Vec::new(),
        },
    ))
}

fn with_attempts(c: &Connection, (seq, mut record): (i64, DeliveryRecord)) -> Result<DeliveryRecord, StoreError> {
    let mut statement =
        c.prepare_cached("SELECT record FROM attempts WHERE delivery_seq = ?1 ORDER BY n").map_err(storage)?;
    let rows = statement.query_map([seq], |r| r.get::<_, String>(0)).map_err(storage)?;
    for row in rows {
        let text = row.map_err(storage)?;
        record.attempts.push(serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(record)
}

fn parse_webhook(doc: &str) -> Result<StoredWebhook, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("webhook document: {e}")))
}

/// Creates the tables of an empty database, and refuses one written with another schema.
fn create_schema(c: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(storage)?;
    let tables: i64 =
        c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0)).map_err(storage)?;
    if tables > 0 && version != SCHEMA_VERSION {
        return Err(storage(format!(
            "{} has schema version {version}, this handler reads version {SCHEMA_VERSION}: \
             move the data dir away (or finish its deliveries with the handler that wrote it)",
            path.display()
        )));
    }
    c.execute_batch(SCHEMA).map_err(storage)?;
    c.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(storage)
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Copies committed pages from the WAL into the database file, away from the writer: a checkpoint (and its
/// fsync) inside a commit would hold up every caller waiting for that commit. Passive: it never blocks writes.
fn checkpoint_loop(connection: Connection, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "WAL checkpoint failed; the next one tries again");
        }
    }
}

/// How long the writer waits for more writes before a commit, when callers write concurrently and few writes
/// are waiting. Pages that several writes touch (the tails of the table and its indexes) go to the WAL once per
/// commit, so fewer, fuller commits write fewer of them: under the fan-out load, waiting cut the writer's WAL
/// writes by a sixth and its CPU time by 5–10% in alternating runs (README, "Performance"; 500 µs did better
/// than 100 or 200, and as well as 1 ms). A lone caller never waits for it.
const GATHER: std::time::Duration = std::time::Duration::from_micros(500);

/// A batch this full is committed at once.
const FULL_ENOUGH: usize = 64;

/// Whether the writer waits for more writes (see [`GATHER`]) before committing `waiting` of them, after a
/// last batch of `last` writes.
fn gathers(last: usize, waiting: usize) -> bool {
    last > 1 && waiting < FULL_ENOUGH
}

/// Applies the writes waiting for it in one transaction (group commit), then answers each caller.
fn write_loop(connection: Connection, mut receiver: mpsc::UnboundedReceiver<Box<dyn WriteOp>>) {
    let mut last = 0;
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        take_waiting(&mut receiver, &mut batch);
        if gathers(last, batch.len()) {
            std::thread::sleep(GATHER);
            take_waiting(&mut receiver, &mut batch);
        }
        last = batch.len();
        commit_batch(&connection, batch);
    }
}

fn take_waiting(receiver: &mut mpsc::UnboundedReceiver<Box<dyn WriteOp>>, batch: &mut Vec<Box<dyn WriteOp>>) {
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
}

/// Commits a batch of writes in one transaction. When one of them fails, the transaction is rolled back and
/// every write is made again in a transaction of its own, so that a failing write fails alone. Failures are
/// rare (a full disk, a corrupt row), so this costs less than isolating each write in a savepoint, which
/// copies every page it touches.
fn commit_batch(connection: &Connection, mut batch: Vec<Box<dyn WriteOp>>) {
    let together = transaction(connection, |c| batch.iter_mut().try_for_each(|op| op.apply(c)));
    match together {
        Ok(()) => batch.into_iter().for_each(|op| op.answer(Ok(()))),
        Err(error) if batch.len() == 1 => {
            if let Some(op) = batch.pop() {
                op.answer(Err(error));
            }
        }
        Err(_) => {
            for mut op in batch {
                let alone = transaction(connection, |c| op.apply(c));
                op.answer(alone);
            }
        }
    }
}

/// Runs `f` in a transaction: committed when it succeeds, rolled back when it fails.
fn transaction(c: &Connection, f: impl FnOnce(&Connection) -> Result<(), StoreError>) -> Result<(), StoreError> {
    c.execute_batch("BEGIN IMMEDIATE").map_err(storage)?;
    let outcome = f(c).and_then(|()| c.execute_batch("COMMIT").map_err(storage));
    if outcome.is_err() {
        // SQLite has rolled back already after some errors (a full disk, say); this then fails, harmlessly.
        let _ = c.execute_batch("ROLLBACK");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the caller of a test write is told: how often the write was made.
    type Answer = oneshot::Receiver<Result<(u32, ()), StoreError>>;

    /// A write that inserts a webhook row named `id`, then fails if `fails`; counts how often it was made.
    fn insert_webhook(id: &'static str, fails: bool) -> (Box<dyn WriteOp>, Answer) {
        let (caller, answered) = oneshot::channel();
        let run = move |applied: &mut u32, c: &Connection| {
            *applied += 1;
            c.execute("INSERT INTO webhooks (id, doc) VALUES (?1, '{}')", [id]).map_err(storage)?;
            match fails {
                true => Err(StoreError::Corrupt(format!("{id} fails"))),
                false => Ok(()),
            }
        };
        (Box::new(Op { state: 0u32, run, result: None, caller }), answered)
    }

    fn webhook_ids(c: &Connection) -> Vec<String> {
        let mut statement = c.prepare("SELECT id FROM webhooks ORDER BY id").unwrap();
        statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    /// A new database with our schema, in a directory of its own.
    fn database(test: &str) -> Connection {
        let dir = std::env::temp_dir().join(format!("dispatcher-sqlite-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dispatcher.db");
        let connection = open_connection(&path).unwrap();
        create_schema(&connection, &path).unwrap();
        connection
    }

    #[test]
    fn a_new_database_has_small_pages_and_a_write_ahead_log() {
        let c = database("pages");
        let page_size: u32 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!((page_size, journal.as_str()), (PAGE_SIZE, "wal"));
    }

    #[test]
    fn the_writer_waits_for_company_only_after_concurrent_writes_and_not_when_full() {
        assert!(!gathers(0, 1), "the first write");
        assert!(!gathers(1, 1), "a lone caller, one write after another");
        assert!(gathers(2, 1) && gathers(40, FULL_ENOUGH - 1), "concurrent callers, few writes waiting");
        assert!(!gathers(40, FULL_ENOUGH), "enough for one commit");
    }

    #[test]
    fn a_batch_commits_every_write_once() {
        let c = database("batch");
        let (ops, mut answers): (Vec<_>, Vec<_>) =
            ["a", "b", "c"].map(|id| insert_webhook(id, false)).into_iter().unzip();
        commit_batch(&c, ops);
        for answered in &mut answers {
            assert_eq!(answered.try_recv().unwrap().unwrap(), (1, ()));
        }
        assert_eq!(webhook_ids(&c), ["a", "b", "c"]);
    }

    #[test]
    fn a_failing_write_fails_alone_and_leaves_nothing() {
        let c = database("failing");
        let (ops, mut answers): (Vec<_>, Vec<_>) = [("a", false), ("bad", true), ("c", false)]
            .map(|(id, fails)| insert_webhook(id, fails))
            .into_iter()
            .unzip();
        commit_batch(&c, ops);
        // The batch was rolled back and each write made again on its own: twice for those before the failure,
        // once for those after it, since the batch stopped at the failing one.
        assert_eq!(answers[0].try_recv().unwrap().unwrap(), (2, ()));
        let error = answers[1].try_recv().unwrap().unwrap_err().to_string();
        assert_eq!(error, "stored data is unreadable: bad fails");
        assert_eq!(answers[2].try_recv().unwrap().unwrap(), (1, ()));
        assert_eq!(webhook_ids(&c), ["a", "c"]);
    }

    #[test]
    fn a_write_that_fails_on_its_own_is_rolled_back() {
        let c = database("write");
        let (op, mut answered) = insert_webhook("bad", true);
        commit_batch(&c, vec![op]);
        assert!(answered.try_recv().unwrap().is_err());
        assert!(webhook_ids(&c).is_empty());
        // The connection is out of the failed transaction and takes the next write.
        let (op, mut answered) = insert_webhook("next", false);
        commit_batch(&c, vec![op]);
        assert!(answered.try_recv().unwrap().is_ok());
        assert_eq!(webhook_ids(&c), ["next"]);
    }
}
