//! The SQLite file's layout: its tables and indexes, the pragmas of every connection, and the check that a file
//! was written with the schema this code reads.

use crate::ports::StoreError;
use dispatcher_core::model::CallbackType;
use rusqlite::Connection;
use std::path::Path;

/// The schema this code reads and writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 8;

// Deliveries are rows in insertion order (`seq`), so that new ones append to the table instead of landing on
// random pages by their hashed ids; attempts hang off `seq` for the same reason. The deliveries table is also
// the local queue: a delivery is due when `next_attempt_at` has passed (see `queue.rs`).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body BLOB NOT NULL,
    source_id TEXT NOT NULL,
    correlation_id TEXT,
    traceparent TEXT,
    callback TEXT,
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
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_tenant ON tokens(tenant_id);
CREATE TABLE IF NOT EXISTS rejected_events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    problems TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS waiting_events (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    correlation_id TEXT,
    traceparent TEXT,
    attempt INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS waiting_events_due ON waiting_events(due_at);
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    source_id TEXT NOT NULL,
    key TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (source_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receipts_by_age ON receipts(received_at);
";

/// The page size of a new database file. Each message's deliveries, inserted into the unique index of their
/// hashed ids, dirty a page each, which each commit writes whole to the WAL: smaller pages write less
/// (docs/performance.md).
pub(super) const PAGE_SIZE: u32 = 2048;

pub(super) fn storage(error: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(error.to_string())
}

/// A connection to the file, in WAL mode; durable against a killed process with `synchronous = NORMAL`.
pub(super) fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // The page size must come first: it takes effect only on a file that WAL mode has not initialised yet.
    connection.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;"
    ))?;
    Ok(connection)
}

/// The writer's connection: the hot pages of the queue's indexes in a cache that grows only as the data does,
/// statement journals in memory, checkpoints left to their own thread unless it falls far behind.
pub(super) fn tune_writer(connection: &Connection) -> Result<(), StoreError> {
    connection
        .execute_batch(
            "PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 65536;
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(storage)
}

/// Creates the tables of an empty database, brings one of an older schema up to date, and refuses one of
/// another schema. One transaction: a process killed midway leaves the file as it was.
pub(super) fn create_schema(c: &Connection, path: &Path) -> Result<(), StoreError> {
    c.execute_batch("BEGIN IMMEDIATE").map_err(storage)?;
    let created = migrate(c, path).and_then(|()| c.execute_batch("COMMIT").map_err(storage));
    if created.is_err() {
        let _ = c.execute_batch("ROLLBACK");
    }
    created
}

/// What brings a database of each older version to the next one.
fn steps() -> [(i64, String); 6] {
    let callbacks: Vec<String> = CallbackType::ALL.iter().map(|kind| format!("'{}'", kind.as_str())).collect();
    [
        // The deliveries' trace context (empty in older rows).
        (2, "ALTER TABLE deliveries ADD COLUMN traceparent TEXT".to_owned()),
        (3, "ALTER TABLE webhooks ADD COLUMN version INTEGER NOT NULL DEFAULT 1".to_owned()),
        // Which callback a delivery is; older rows only said so by their event's name.
        (
            4,
            format!(
                "ALTER TABLE deliveries ADD COLUMN callback TEXT;
                 UPDATE deliveries SET callback = event WHERE event IN ({})",
                callbacks.join(", ")
            ),
        ),
        // Tenants and their tokens: new tables, which the schema creates.
        (5, String::new()),
        // Events waiting for their enrichers' next try: a new table, which the schema creates.
        (6, String::new()),
        // Inbound sources and the receipts of what they received: new tables, which the schema creates.
        (7, String::new()),
    ]
}

fn migrate(c: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(storage)?;
    let tables: i64 =
        c.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0)).map_err(storage)?;
    if tables > 0 && version != SCHEMA_VERSION {
        let steps = steps();
        if !steps.iter().any(|(from, _)| *from == version) {
            return Err(storage(format!(
                "{} has schema version {version}, this handler reads version {SCHEMA_VERSION}: \
                 move the data dir away (or finish its deliveries with the handler that wrote it)",
                path.display()
            )));
        }
        for (_, step) in steps.iter().filter(|(from, _)| *from >= version) {
            c.execute_batch(step).map_err(storage)?;
        }
    }
    c.execute_batch(SCHEMA).map_err(storage)?;
    c.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(storage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A connection to a new, empty file of a test's own.
    fn empty_database(name: &str) -> (Connection, PathBuf) {
        let dir = std::env::temp_dir().join(format!("dispatcher-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dispatcher.db");
        (open_connection(&path).unwrap(), path)
    }

    #[test]
    fn a_new_database_has_small_pages_and_a_write_ahead_log() {
        let (c, path) = empty_database("schema");
        create_schema(&c, &path).unwrap();
        let page_size: u32 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!((page_size, journal.as_str()), (PAGE_SIZE, "wal"));
        c.execute_batch("PRAGMA user_version = 1").unwrap();
        let error = create_schema(&c, &path).unwrap_err().to_string();
        assert!(error.contains("has schema version 1, this handler reads version 8"), "{error}");
    }

    #[test]
    fn a_database_of_version_2_gains_the_trace_context_and_webhook_version_columns() {
        let (c, path) = empty_database("schema-v2");
        let version_2 =
            version_4().replace("    traceparent TEXT,\n", "").replace(",\n    version INTEGER NOT NULL DEFAULT 1", "");
        assert!(!version_2.contains("version INTEGER") && !version_2.contains("traceparent"));
        c.execute_batch(&format!("{version_2} PRAGMA user_version = 2;")).unwrap();
        c.execute("INSERT INTO webhooks (id, doc) VALUES ('wh1', '{}')", []).unwrap();
        create_schema(&c, &path).unwrap();
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        let columns: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('deliveries') WHERE name IN ('traceparent', 'callback')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let kept: i64 = c.query_row("SELECT COUNT(*) FROM webhooks WHERE version = 1", [], |r| r.get(0)).unwrap();
        assert_eq!((version, columns, kept), (SCHEMA_VERSION, 2, 1), "every step since version 2, in order");
    }

    #[test]
    fn a_database_of_version_3_gains_the_webhook_version_column_in_one_transaction() {
        let (c, path) = empty_database("schema-v3");
        let version_3 = version_4().replace(",\n    version INTEGER NOT NULL DEFAULT 1", "");
        c.execute_batch(&format!("{version_3} PRAGMA user_version = 3;")).unwrap();
        c.execute("INSERT INTO webhooks (id, doc) VALUES ('wh1', '{}')", []).unwrap();
        // A migration that fails midway changes nothing: here the column is there already, as if a
        // previous run had added it without committing the version.
        c.execute_batch("ALTER TABLE webhooks ADD COLUMN version INTEGER NOT NULL DEFAULT 7").unwrap();
        assert!(create_schema(&c, &path).is_err());
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 3, "not committed");
        c.execute_batch("ALTER TABLE webhooks DROP COLUMN version").unwrap();
        create_schema(&c, &path).unwrap();
        let (version, kept): (i64, i64) = (
            c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap(),
            c.query_row("SELECT COUNT(*) FROM webhooks WHERE version = 1", [], |r| r.get(0)).unwrap(),
        );
        assert_eq!((version, kept), (SCHEMA_VERSION, 1));
    }

    /// The schema before the tenants: without their tables, nor those that came after (waiting events,
    /// sources, receipts).
    fn version_5() -> String {
        let (start, end) = (
            SCHEMA.find("CREATE TABLE IF NOT EXISTS tenants").unwrap(),
            SCHEMA.find("CREATE TABLE IF NOT EXISTS rejected_events").unwrap(),
        );
        let later = SCHEMA.find("CREATE TABLE IF NOT EXISTS waiting_events").unwrap();
        format!("{}{}", &SCHEMA[..start], &SCHEMA[end..later])
    }

    fn version_4() -> String {
        version_5().replace("    callback TEXT,\n", "")
    }

    #[test]
    fn a_database_of_version_5_gains_the_tenants_tables() {
        let (c, path) = empty_database("schema-v5");
        c.execute_batch(&format!("{} PRAGMA user_version = 5;", version_5())).unwrap();
        c.execute("INSERT INTO webhooks (id, doc) VALUES ('wh1', '{}')", []).unwrap();
        create_schema(&c, &path).unwrap();
        let tables: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('tenants', 'tokens')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!((version, tables), (SCHEMA_VERSION, 2));
    }

    #[test]
    fn a_database_of_version_7_gains_the_sources_and_their_receipts() {
        let (c, path) = empty_database("schema-v7");
        let version_7 = &SCHEMA[..SCHEMA.find("CREATE TABLE IF NOT EXISTS sources").unwrap()];
        c.execute_batch(&format!("{version_7} PRAGMA user_version = 7;")).unwrap();
        c.execute("INSERT INTO webhooks (id, doc) VALUES ('wh1', '{}')", []).unwrap();
        create_schema(&c, &path).unwrap();
        let count = |query: &str| c.query_row(query, [], |r| r.get::<_, i64>(0)).unwrap();
        let tables =
            count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('sources', 'receipts')");
        let version = count("PRAGMA user_version");
        assert_eq!((version, tables, count("SELECT COUNT(*) FROM webhooks")), (SCHEMA_VERSION, 2, 1));
    }

    #[test]
    fn a_database_of_version_4_learns_which_deliveries_are_callbacks() {
        let (c, path) = empty_database("schema-v4");
        c.execute_batch(&format!("{} PRAGMA user_version = 4;", version_4())).unwrap();
        for (n, event) in ["ping", "DeliveryFailure", "Callback", "WebhookDisabled"].iter().enumerate() {
            c.execute(
                "INSERT INTO deliveries (id, webhook_id, event, body, source_id, status, created_at)
                 VALUES (?1, 'wh1', ?2, '{}', 'm', 'pending', 0)",
                rusqlite::params![format!("d{n}"), event],
            )
            .unwrap();
        }
        create_schema(&c, &path).unwrap();
        let kinds: Vec<(String, Option<String>)> = c
            .prepare("SELECT event, callback FROM deliveries ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let callback = |name: &str| (name.to_owned(), Some(name.to_owned()));
        assert_eq!(
            kinds,
            [("ping".to_owned(), None), callback("DeliveryFailure"), callback("Callback"), callback("WebhookDisabled")]
        );
    }
}
