//! The one writer of the SQLite file: a thread that applies every write waiting for it in one transaction
//! (group commit) and answers each caller only after the commit, so that an answer means the data survives a
//! killed process (WAL with `synchronous = NORMAL`). A failing write fails alone. Beside it, a thread copies
//! the WAL back into the file (checkpoints), away from the commits.

use super::schema::storage;
use crate::ports::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// One caller's write, as the writer thread runs it (see [`write_loop`]).
pub(super) trait WriteOp: Send {
    /// Makes the write in the current transaction. Called again if the transaction is rolled back and retried,
    /// so it keeps its result for [`WriteOp::answer`] instead of handing it over.
    fn apply(&mut self, connection: &Connection) -> Result<(), StoreError>;
    /// Answers the caller once the outcome is final: its last `apply`, and whether that was committed.
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

/// A write made by `run` on its own `state`, which goes back to the caller with the result.
pub(super) struct Op<S, T, F> {
    pub(super) state: S,
    pub(super) run: F,
    pub(super) result: Option<T>,
    pub(super) caller: oneshot::Sender<Result<(S, T), StoreError>>,
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

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Copies committed pages from the WAL into the database file, away from the writer: a checkpoint (and its
/// fsync) inside a commit would hold up every caller waiting for that commit. Passive: it never blocks writes.
/// While checkpoints fail (a full disk), one line says so, and another when they work again.
pub(super) fn checkpoint_loop(connection: Connection, stop: std::sync::mpsc::Receiver<()>) {
    let mut failing = false;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Err(error) if !failing => {
                tracing::warn!(%error, "WAL checkpoints fail; trying again every {CHECKPOINT_EVERY:?}");
                failing = true;
            }
            Ok(()) if failing => {
                tracing::info!("WAL checkpoints work again");
                failing = false;
            }
            _ => {}
        }
    }
}

/// How long the writer waits for more writes before a commit, when callers write concurrently and few writes
/// are waiting: pages that several writes touch (the tails of the table and its indexes) then go to the WAL once
/// per commit (measurements in docs/performance.md). A lone caller never waits for it.
const GATHER: std::time::Duration = std::time::Duration::from_micros(500);

/// A batch this full is committed at once.
const FULL_ENOUGH: usize = 64;

/// Whether the writer waits for more writes (see [`GATHER`]) before committing `waiting` of them, after a
/// last batch of `last` writes.
fn gathers(last: usize, waiting: usize) -> bool {
    last > 1 && waiting < FULL_ENOUGH
}

/// Applies the writes waiting for it in one transaction (group commit), then answers each caller.
pub(super) fn write_loop(connection: Connection, mut receiver: mpsc::UnboundedReceiver<Box<dyn WriteOp>>) {
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
        let connection = super::super::schema::open_connection(&path).unwrap();
        super::super::schema::create_schema(&connection, &path).unwrap();
        connection
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
