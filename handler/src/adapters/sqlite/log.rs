//! The delivery log on the deliveries table (the same rows the local queue leases), with one row per attempt
//! in `attempts`. Recording an attempt and moving the delivery on (its status, its next attempt) is one write.

use super::queue::{delivery_columns, insert_delivery, insert_statement, row_of, version};
use super::schema::storage;
use super::SqliteStore;
use crate::ports::{Cursor, DeliveryLog, LogKey, Page, StoreError};
use async_trait::async_trait;
use dispatcher_core::model::{
    Attempt, Delivery, DeliveryCounts, DeliveryId, Job, LogEntry, LogVersion, Next, Status, Unsent, WebhookId,
};
use dispatcher_core::settle::Logged;
use rusqlite::{params, Connection, OptionalExtension};

const SELECT_ENTRY: &str = "SELECT seq, id, webhook_id, event, body, source_id, correlation_id, traceparent, callback,
    status, created_at, next_attempt_at, dead_reason FROM deliveries";

/// A row of [`SELECT_ENTRY`]: its `seq`, and the entry without its attempts.
fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Result<LogEntry, StoreError>)> {
    let delivery = delivery_columns(r, 1)?;
    let status: String = r.get(9)?;
    let (created_at_ms, next_attempt_at_ms, dead_reason) = (r.get(10)?, r.get(11)?, r.get(12)?);
    let entry = delivery.and_then(|delivery| {
        let status = Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?;
        Ok(LogEntry { delivery, status, created_at_ms, next_attempt_at_ms, dead_reason, attempts: Vec::new() })
    });
    Ok((r.get(0)?, entry))
}

fn with_attempts(c: &Connection, seq: i64, entry: Result<LogEntry, StoreError>) -> Result<LogEntry, StoreError> {
    let mut entry = entry?;
    let mut statement =
        c.prepare_cached("SELECT record FROM attempts WHERE delivery_seq = ?1 ORDER BY n").map_err(storage)?;
    let rows = statement.query_map([seq], |r| r.get::<_, String>(0)).map_err(storage)?;
    for row in rows {
        let text = row.map_err(storage)?;
        entry.attempts.push(serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    }
    Ok(entry)
}

/// The row of a delivery, logging it (due at once) when it was never logged.
fn row_or_insert(c: &Connection, delivery: &Delivery, now_ms: i64) -> Result<i64, StoreError> {
    let found = c
        .prepare_cached("SELECT seq FROM deliveries WHERE id = ?1")
        .and_then(|mut s| s.query_row([delivery.id.as_str()], |r| r.get::<_, i64>(0)).optional())
        .map_err(storage)?;
    match found {
        Some(seq) => Ok(seq),
        None => insert_delivery(&mut insert_statement(c)?, delivery, now_ms, false, now_ms)?
            .ok_or_else(|| StoreError::Storage(format!("delivery {} neither found nor inserted", delivery.id))),
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
    fn new(n: u32, attempt: &Attempt, next: Next) -> Result<AttemptRow, StoreError> {
        let record = serde_json::to_string(attempt).map_err(storage)?;
        let (status, next_at, dead_reason) = next.columns();
        Ok(AttemptRow { n, record, status, next_at, dead_reason })
    }

    /// Logs it as attempt `n` of the delivery in row `seq` (replacing an earlier entry for `n`), and moves the
    /// delivery on; the lease, if any, ends. (Leases keep a delivery's attempts in order: none is logged after `n`.)
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
pub(super) fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, StoreError> {
    cursor.map(|text| Cursor::parse(text).map(|c| c.position)).transpose()
}

/// Rows fetched as `limit + 1` (sequence number, item) → the page, and the cursor of the next one if there is one.
pub(super) fn cut_page<T>(mut rows: Vec<(i64, T)>, limit: usize) -> (Vec<T>, Option<String>) {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(seq, _)| Cursor { position: *seq, id: String::new() }.to_string())
    } else {
        None
    };
    (rows.into_iter().map(|(_, item)| item).collect(), next)
}

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn get_delivery(&self, id: DeliveryId) -> Result<Option<LogEntry>, StoreError> {
        self.read(move |c| {
            let mut statement = c.prepare_cached(&format!("{SELECT_ENTRY} WHERE id = ?1")).map_err(storage)?;
            let row = statement.query_row([id.as_str()], entry_row).optional().map_err(storage)?;
            row.map(|(seq, entry)| with_attempts(c, seq, entry)).transpose()
        })
        .await
    }

    async fn list_deliveries(
        &self,
        webhook_id: &WebhookId,
        status: Option<Status>,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Page<LogEntry>, StoreError> {
        let (webhook_id, before) = (webhook_id.to_owned(), parse_cursor(before)?);
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(&format!(
                    "{SELECT_ENTRY} WHERE webhook_id = ?1 AND seq < ?2 AND (?4 IS NULL OR status = ?4) \
                     ORDER BY seq DESC LIMIT ?3"
                ))
                .map_err(storage)?;
            let status = status.map(Status::as_str);
            let rows = statement
                .query_map(
                    params![webhook_id.as_str(), before.unwrap_or(i64::MAX), limit as i64 + 1, status],
                    entry_row,
                )
                .map_err(storage)?;
            let rows: Vec<(i64, (i64, Result<LogEntry, StoreError>))> = rows
                .map(|row| row.map(|(seq, entry)| (seq, (seq, entry))))
                .collect::<Result<_, _>>()
                .map_err(storage)?;
            let (page, next) = cut_page(rows, limit);
            let entries =
                page.into_iter().map(|(seq, entry)| with_attempts(c, seq, entry)).collect::<Result<_, _>>()?;
            Ok((entries, next))
        })
        .await
    }

    async fn count_deliveries(&self, webhook_id: &WebhookId, since_ms: i64) -> Result<DeliveryCounts, StoreError> {
        let webhook_id = webhook_id.to_owned();
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT status, COUNT(*) FROM deliveries WHERE webhook_id = ?1 AND created_at >= ?2 \
                     AND callback IS NULL GROUP BY status",
                )
                .map_err(storage)?;
            let rows = statement
                .query_map(params![webhook_id.as_str(), since_ms], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(storage)?;
            let mut counts = DeliveryCounts::default();
            for row in rows {
                let (status, n) = row.map_err(storage)?;
                let status = Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?;
                counts.add(status, n as u64);
            }
            Ok(counts)
        })
        .await
    }

    async fn last_failure(&self, webhook_id: &WebhookId) -> Result<Option<LogEntry>, StoreError> {
        let webhook_id = webhook_id.to_owned();
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(&format!(
                    "{SELECT_ENTRY} WHERE webhook_id = ?1 AND status IN (?2, ?3) AND callback IS NULL \
                     ORDER BY seq DESC LIMIT 1"
                ))
                .map_err(storage)?;
            let failed = params![webhook_id.as_str(), Status::Retrying.as_str(), Status::Dead.as_str()];
            let row = statement.query_row(failed, entry_row).optional().map_err(storage)?;
            row.map(|(seq, entry)| with_attempts(c, seq, entry)).transpose()
        })
        .await
    }

    async fn log_deliveries(
        &self,
        deliveries: &[Delivery],
        now_ms: i64,
    ) -> Result<Vec<Option<LogVersion>>, StoreError> {
        // Here the log is the queue: a delivery logged is due at once, or leased to this process's queue.
        let (due, leased) = if self.claim_ms > 0 { (now_ms + self.claim_ms, true) } else { (now_ms, false) };
        let (_, inserted) = self
            .write_with(deliveries.to_vec(), move |deliveries, c| {
                let mut insert = insert_statement(c)?;
                deliveries
                    .iter()
                    .map(|d| insert_delivery(&mut insert, d, due, leased, now_ms))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(inserted.into_iter().map(|seq| seq.map(version)).collect())
    }

    async fn logged(&self, key: LogKey<'_>) -> Result<Option<(Logged, LogVersion)>, StoreError> {
        let (id, webhook_id) = (key.id, key.webhook_id.to_owned());
        self.read(move |c| {
            let row = c
                .prepare_cached("SELECT seq, status, attempt_count FROM deliveries WHERE id = ?1 AND webhook_id = ?2")
                .and_then(|mut s| {
                    s.query_row(params![id.as_str(), webhook_id.as_str()], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?))
                    })
                    .optional()
                })
                .map_err(storage)?;
            row.map(|(seq, status, attempts)| {
                let status = Status::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?;
                Ok((Logged { status, attempts }, version(seq)))
            })
            .transpose()
        })
        .await
    }

    async fn log_attempt(&self, job: &Job, attempt: Attempt, next: Next) -> Result<LogVersion, StoreError> {
        let row = AttemptRow::new(job.attempt(), &attempt, next)?;
        let known = row_of(job.log_version.as_ref());
        let delivery = if known.is_none() { Some(job.delivery.clone()) } else { None };
        let now_ms = attempt.at_ms;
        // One write finds the delivery when the job does not name its row, and logs the attempt.
        self.write(move |c| {
            let seq = match (known, &delivery) {
                (Some(seq), _) => seq,
                (None, Some(delivery)) => row_or_insert(c, delivery, now_ms)?,
                (None, None) => return Err(StoreError::Storage("a job without its delivery".into())),
            };
            row.write(c, seq)?;
            Ok(version(seq))
        })
        .await
    }

    async fn log_unsent(&self, unsent: &[Unsent], now_ms: i64) -> Result<(), StoreError> {
        self.write_with(unsent.to_vec(), move |unsent, c| {
            let mut insert = insert_statement(c)?;
            for unsent in unsent.iter() {
                if let Some(seq) = insert_delivery(&mut insert, &unsent.delivery, now_ms, false, now_ms)? {
                    let settled = params![seq, unsent.status.as_str(), unsent.reason];
                    c.execute(
                        "UPDATE deliveries SET status = ?2, next_attempt_at = NULL, dead_reason = ?3 WHERE seq = ?1",
                        settled,
                    )
                    .map_err(storage)?;
                }
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn give_up(&self, delivery: &Delivery, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let (delivery, reason) = (delivery.clone(), reason.to_owned());
        self.write(move |c| {
            let seq = row_or_insert(c, &delivery, now_ms)?;
            c.execute(
                "UPDATE deliveries SET status = ?3, next_attempt_at = NULL, leased = 0, dead_reason = ?2 WHERE seq = ?1",
                params![seq, reason, Status::Dead.as_str()],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }

    async fn reopen(&self, id: DeliveryId, now_ms: i64) -> Result<Option<Job>, StoreError> {
        self.write(move |c| {
            let mut statement = c
                .prepare_cached(
                    "UPDATE deliveries SET status = CASE WHEN attempt_count = 0 THEN ?3 ELSE ?4 END,
                     next_attempt_at = ?2, dead_reason = NULL WHERE id = ?1 AND leased = 0
                     RETURNING seq, id, webhook_id, event, body, source_id, correlation_id, traceparent, callback,
                     attempt_count",
                )
                .map_err(storage)?;
            let row = statement
                .query_row(params![id.as_str(), now_ms, Status::Pending.as_str(), Status::Retrying.as_str()], |r| {
                    Ok((r.get::<_, i64>(0)?, delivery_columns(r, 1)?, r.get::<_, u32>(9)?))
                })
                .optional()
                .map_err(storage)?;
            row.map(|(seq, delivery, attempts_made)| {
                Ok(Job { delivery: delivery?, attempts_made, log_version: Some(version(seq)), rate_slot_ms: None })
            })
            .transpose()
        })
        .await
    }
}
