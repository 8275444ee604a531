//! Retention: settled deliveries (with their attempts) and rejected events older than the retention are
//! deleted in small batches, each one write among the others, so that pruning never holds up deliveries.
//! SQLite keeps the freed pages in the file and reuses them for new rows: under a steady load the file stops
//! growing at about the size of the retention window's data; it does not shrink (no VACUUM, which would
//! rewrite the whole file under the writer).

use super::schema::storage;
use super::SqliteStore;
use crate::ports::StoreError;
use dispatcher_core::model::Status;
use rusqlite::params;

/// Rows one batch deletes at most, per table.
pub const BATCH: usize = 500;

/// What one pass of [`SqliteStore::prune`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: usize,
    pub rejected_events: usize,
}

impl SqliteStore {
    /// Deletes what was created before `cutoff_ms`: settled deliveries and their attempts, and rejected events,
    /// `batch` rows of each at a time, until none is left or `stop` answers true after a batch (shutting down:
    /// each batch is a transaction of its own, and the next pass deletes the rest).
    pub async fn prune(
        &self,
        cutoff_ms: i64,
        batch: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        loop {
            let (deliveries, rejected) = self
                .write(move |c| {
                    // Rows are appended in time order: when the oldest is recent, there is nothing to scan for.
                    let oldest = |table: &str, time: &str| {
                        c.query_row(
                            &format!("SELECT MIN({time}) FROM (SELECT {time} FROM {table} ORDER BY seq LIMIT 1)"),
                            [],
                            |r| r.get::<_, Option<i64>>(0),
                        )
                        .map_err(storage)
                    };
                    let deliveries = if oldest("deliveries", "created_at")?.is_none_or(|t| t >= cutoff_ms) {
                        0
                    } else {
                        prune_deliveries(c, cutoff_ms, batch)?
                    };
                    let rejected = if oldest("rejected_events", "received_at")?.is_none_or(|t| t >= cutoff_ms) {
                        0
                    } else {
                        c.execute(
                            "DELETE FROM rejected_events WHERE seq IN (SELECT seq FROM rejected_events
                               WHERE received_at < ?1 ORDER BY seq LIMIT ?2)",
                            params![cutoff_ms, batch as i64],
                        )
                        .map_err(storage)?
                    };
                    Ok((deliveries, rejected))
                })
                .await?;
            pruned.deliveries += deliveries;
            pruned.rejected_events += rejected;
            if (deliveries < batch && rejected < batch) || stop() {
                return Ok(pruned);
            }
            // Let the deliveries' writes in between batches.
            tokio::task::yield_now().await;
        }
    }
}

/// Deletes up to `batch` settled deliveries created before `cutoff_ms`, oldest first, with their attempts.
fn prune_deliveries(c: &rusqlite::Connection, cutoff_ms: i64, batch: usize) -> Result<usize, StoreError> {
    let old = "SELECT seq FROM deliveries WHERE created_at < ?1 AND next_attempt_at IS NULL
               AND status IN (?3, ?4, ?5, ?6) ORDER BY seq LIMIT ?2";
    let settled = [Status::Succeeded, Status::Dead, Status::Skipped, Status::Filtered].map(Status::as_str);
    let old_rows = params![cutoff_ms, batch as i64, settled[0], settled[1], settled[2], settled[3]];
    c.execute(&format!("DELETE FROM attempts WHERE delivery_seq IN ({old})"), old_rows)
        .and_then(|_| c.execute(&format!("DELETE FROM deliveries WHERE seq IN ({old})"), old_rows))
        .map_err(storage)
}
