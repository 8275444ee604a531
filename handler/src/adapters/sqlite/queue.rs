//! The deliveries table as the local queue. A delivery is due when its `next_attempt_at` has passed; leasing it
//! pushes `next_attempt_at` past the attempt's timeout and marks it leased, so a delivery whose attempt never
//! reports back is due again later, and a restart makes every leased delivery due at once. A job leased here
//! carries its row as its log version: the lease vouches that it is the delivery's next attempt, and recording
//! it needs no lookup by id.

use super::schema::storage;
use super::SqliteStore;
use crate::ports::StoreError;
use dispatcher_core::model::{CallbackType, Delivery, DeliveryId, Job, LogVersion, Status};
use rusqlite::{params, Connection, OptionalExtension};

/// A job's log version: its delivery's row.
pub(super) fn version(seq: i64) -> LogVersion {
    LogVersion::new(seq.to_string())
}

/// The row a log version names, when it is one of ours.
pub(super) fn row_of(version: Option<&LogVersion>) -> Option<i64> {
    version.and_then(|v| v.as_str().parse().ok())
}

/// Makes the deliveries a previous process leased due at `now_ms`: that process is gone (this one holds the
/// lock), and its attempts with it.
pub(super) fn release_leases(c: &Connection, now_ms: i64) -> Result<(), StoreError> {
    c.execute("UPDATE deliveries SET leased = 0, next_attempt_at = ?1 WHERE leased = 1", [now_ms]).map_err(storage)?;
    Ok(())
}

/// The statement [`insert_delivery`] runs, prepared once per transaction.
pub(super) fn insert_statement(c: &Connection) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
    c.prepare_cached(
        "INSERT INTO deliveries (id, webhook_id, event, body, source_id, correlation_id, traceparent, status,
         next_attempt_at, leased, created_at, callback) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?10, ?11, ?7, ?8, ?9, ?12)
         ON CONFLICT (id) DO NOTHING RETURNING seq",
    )
    .map_err(storage)
}

/// Inserts a pending delivery, due at `due`; its row, or `None` when a delivery with its id is there already
/// (accepting the same source message twice delivers once).
pub(super) fn insert_delivery(
    insert: &mut rusqlite::CachedStatement<'_>,
    d: &Delivery,
    due: i64,
    leased: bool,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    let row = params![
        d.id.as_str(),
        d.webhook_id.as_str(),
        d.event,
        d.body.as_bytes(),
        d.source_id,
        d.correlation_id,
        due,
        leased,
        now_ms,
        d.traceparent,
        Status::Pending.as_str(),
        d.callback.map(CallbackType::as_str)
    ];
    insert.query_row(row, |r| r.get(0)).optional().map_err(storage)
}

impl SqliteStore {
    /// Leases up to `limit` due deliveries (oldest due first) for `lease_ms`, skipping the webhooks in `skip`.
    /// First, in the same write, makes the deliveries of `release` due now: logged leased to this process
    /// ([`SqliteStore::claiming_new`]), they were not handed over in memory.
    pub async fn lease(
        &self,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
        skip: Vec<String>,
        release: &[LogVersion],
    ) -> Result<Vec<Job>, StoreError> {
        let skip = serde_json::to_string(&skip).map_err(storage)?;
        let release: Vec<i64> = release.iter().filter_map(|version| row_of(Some(version))).collect();
        let release = (!release.is_empty()).then(|| serde_json::to_string(&release)).transpose().map_err(storage)?;
        self.write(move |c| {
            if let Some(rows) = &release {
                c.prepare_cached(
                    "UPDATE deliveries SET leased = 0, next_attempt_at = ?2
                     WHERE seq IN (SELECT value FROM json_each(?1)) AND leased = 1",
                )
                .and_then(|mut s| s.execute(params![rows, now_ms]))
                .map_err(storage)?;
            }
            let mut statement = c
                .prepare_cached(
                    "UPDATE deliveries SET leased = 1, next_attempt_at = ?2
                     WHERE seq IN (SELECT seq FROM deliveries WHERE next_attempt_at <= ?1
                                   AND webhook_id NOT IN (SELECT value FROM json_each(?4))
                                   ORDER BY next_attempt_at LIMIT ?3)
                     RETURNING seq, id, webhook_id, event, body, source_id, correlation_id, traceparent, callback,
                     attempt_count",
                )
                .map_err(storage)?;
            let rows = statement
                .query_map(params![now_ms, now_ms + lease_ms, limit as i64, skip], |r| {
                    Ok((r.get::<_, i64>(0)?, delivery_columns(r, 1)?, r.get::<_, u32>(9)?))
                })
                .map_err(storage)?;
            rows.map(|row| {
                let (seq, delivery, attempts_made) = row.map_err(storage)?;
                Ok(Job { delivery: delivery?, attempts_made, log_version: Some(version(seq)), rate_slot_ms: None })
            })
            .collect()
        })
        .await
    }

    /// Makes a leased delivery due again at `at_ms`, as it was: it waits for its rate-limit slot.
    pub async fn defer(&self, job: &Job, at_ms: i64) -> Result<(), StoreError> {
        let seq = row_of(job.log_version.as_ref()).ok_or_else(|| {
            StoreError::Corrupt(format!("delivery {} was not leased from this store", job.delivery.id))
        })?;
        self.write(move |c| {
            c.prepare_cached("UPDATE deliveries SET next_attempt_at = ?2, leased = 0 WHERE seq = ?1 AND leased = 1")
                .and_then(|mut s| s.execute(params![seq, at_ms]))
                .map_err(storage)
        })
        .await
        .map(|_| ())
    }

    /// How many deliveries wait for an attempt (due, leased or later), and when the oldest was created: the
    /// rows of the partial index of due deliveries.
    pub async fn backlog(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE next_attempt_at IS NOT NULL")
                .and_then(|mut s| s.query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))))
                .map_err(storage)
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

/// The delivery in the eight columns from `first`: id, webhook_id, event, body, source_id, correlation_id,
/// traceparent, callback.
pub(super) fn delivery_columns(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Result<Delivery, StoreError>> {
    let id: String = r.get(first)?;
    let body = text(r.get_ref(first + 3)?);
    let (webhook_id, event): (String, String) = (r.get(first + 1)?, r.get(first + 2)?);
    let (source_id, correlation_id, traceparent) = (r.get(first + 4)?, r.get(first + 5)?, r.get(first + 6)?);
    let callback: Option<String> = r.get(first + 7)?;
    Ok((|| {
        let id = DeliveryId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("delivery id {id:?}")))?;
        let callback = match callback {
            None => None,
            Some(name) => {
                Some(CallbackType::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("callback {name:?}")))?)
            }
        };
        let webhook_id = webhook_id.into();
        Ok(Delivery { id, webhook_id, event, callback, body: body?, source_id, correlation_id, traceparent })
    })())
}

/// A body column: written as bytes, read as the UTF-8 text it always is.
fn text(value: rusqlite::types::ValueRef<'_>) -> Result<String, StoreError> {
    let bytes = match value {
        rusqlite::types::ValueRef::Blob(bytes) | rusqlite::types::ValueRef::Text(bytes) => bytes,
        other => return Err(StoreError::Corrupt(format!("a body of type {:?}", other.data_type()))),
    };
    String::from_utf8(bytes.to_vec()).map_err(|e| StoreError::Corrupt(format!("a body that is not UTF-8: {e}")))
}
