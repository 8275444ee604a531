//! Events waiting for their next try (`ports::EventQueue` locally): an event whose enrichers failed is kept
//! here, by its source id, until it is due; the local runtime takes what is due (leased, so that an event whose
//! try never reports back is due again, and a restart makes every one due at once) and routes it again.

use super::schema::storage;
use super::SqliteStore;
use crate::ports::{EventQueue, QueueError, StoreError};
use async_trait::async_trait;
use dispatcher_core::dispatch::Source;
use rusqlite::{params, Connection};

/// An event whose try has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingEvent {
    pub body: Vec<u8>,
    pub source: Source,
    /// Which try this is (2: the first retry).
    pub attempt: u32,
}

/// Makes the events a previous process had taken due at `now_ms`: their tries went with it.
pub(super) fn release_waiting(c: &Connection, now_ms: i64) -> Result<(), StoreError> {
    c.execute("UPDATE waiting_events SET leased = 0, due_at = ?1 WHERE leased = 1", [now_ms]).map_err(storage)?;
    Ok(())
}

impl SqliteStore {
    /// Keeps `body` to be tried for the `attempt`-th time at `at_ms`; replaces what waited under the same id,
    /// keeping the higher try (publishing it again under its key does not start its schedule over).
    pub async fn wait_event(&self, body: &[u8], source: &Source, attempt: u32, at_ms: i64) -> Result<(), StoreError> {
        let (body, source) = (body.to_vec(), source.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO waiting_events (id, body, correlation_id, traceparent, attempt, due_at, leased)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (id) DO UPDATE SET body = excluded.body, correlation_id = excluded.correlation_id,
                 traceparent = excluded.traceparent, attempt = MAX(attempt, excluded.attempt), due_at = excluded.due_at,
                 leased = 0",
            )
            .and_then(|mut s| {
                s.execute(params![source.id, body, source.correlation_id, source.traceparent, attempt, at_ms])
            })
            .map_err(storage)
        })
        .await
        .map(|_| ())
    }

    /// Takes up to `limit` events due at `now_ms`, oldest due first, for `lease_ms`.
    pub async fn take_due_events(
        &self,
        now_ms: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<WaitingEvent>, StoreError> {
        self.write(move |c| {
            let mut statement = c
                .prepare_cached(
                    "UPDATE waiting_events SET leased = 1, due_at = ?2
                     WHERE id IN (SELECT id FROM waiting_events WHERE due_at <= ?1 ORDER BY due_at LIMIT ?3)
                     RETURNING id, body, correlation_id, traceparent, attempt",
                )
                .map_err(storage)?;
            let rows = statement
                .query_map(params![now_ms, now_ms + lease_ms, limit as i64], |r| {
                    let source = Source { id: r.get(0)?, correlation_id: r.get(2)?, traceparent: r.get(3)? };
                    Ok(WaitingEvent { body: r.get(1)?, source, attempt: r.get(4)? })
                })
                .map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)
        })
        .await
    }

    /// Forgets the event taken for try `attempt`: it was routed or rejected. One sent again meanwhile for a
    /// later try stays.
    pub async fn event_done(&self, id: &str, attempt: u32) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM waiting_events WHERE id = ?1 AND attempt = ?2 AND leased = 1")
                .and_then(|mut s| s.execute(params![id, attempt]))
                .map_err(storage)
        })
        .await
        .map(|_| ())
    }

    /// When the next waiting event is due, if any.
    pub async fn next_event_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT MIN(due_at) FROM waiting_events")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(storage)
        })
        .await
    }
}

#[async_trait]
impl EventQueue for SqliteStore {
    async fn send_event(&self, body: &[u8], source: &Source) -> Result<(), QueueError> {
        self.wait_event(body, source, 1, 0).await.map_err(QueueError::from)
    }

    async fn send_event_later(&self, body: &[u8], source: &Source, attempt: u32, at_ms: i64) -> Result<(), QueueError> {
        self.wait_event(body, source, attempt, at_ms).await.map_err(QueueError::from)
    }
}
