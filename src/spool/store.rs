//! The SQLite side of the spool: schema, the group-commit writer, and the queries.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use secureform_contract::FailureReason;
use serde::Serialize;

use super::idempotency::{self, Acceptance, Idempotency};
use super::{Command, WriteError};

/// Most commands applied in one transaction.
const MAX_BATCH: usize = 4096;
/// Most waiting commands a transaction leaves for the next one (see [`batch_size`]).
const KEEP_BACK: usize = 16;
/// Fewest commands a transaction takes when that many are waiting.
const MIN_BATCH: usize = 16;
/// A transaction takes at least one commit time's worth of commands at this rate (see
/// [`batch_size`]). The writer's own work per command (25–40 µs on the machines measured) keeps
/// it below this rate anyway.
const BATCH_FLOOR_RATE: f64 = 25_000.0;
/// The writer checkpoints (copies the WAL back into the database file and syncs it) after this
/// many commits, once their clients are answered (see [`writer_loop`]).
const CHECKPOINT_COMMITS: u32 = 256;

pub(crate) struct NewSubmission {
    pub id: String,
    pub form: String,
    pub received_at: String,
    pub file_count: usize,
    pub sealed: Vec<u8>,
    pub sinks: Vec<String>,
    pub now_ms: i64,
    /// The API's Idempotency-Key, checked per (token, form) (see `idempotency.rs`).
    pub idempotency: Option<Idempotency>,
    /// Keyed digests of the fields that identify its data subject (`crate::subjects`).
    pub subjects: Vec<Vec<u8>>,
}

/// What a command did.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Rows changed.
    Done(usize),
    /// What became of a submission.
    Accepted(Acceptance),
}

/// The state of one (submission, sink) delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Retrying,
    Delivered,
    Dead,
}

impl DeliveryState {
    pub(crate) fn parse(s: &str) -> DeliveryState {
        match s {
            "retrying" => DeliveryState::Retrying,
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            _ => DeliveryState::Pending,
        }
    }
}

/// What happened to one delivery attempt.
#[derive(Clone, Debug)]
pub enum Outcome {
    Delivered {
        kind: String,
        value: String,
    },
    Retry {
        error: String,
        failure: FailureReason,
        next_attempt_ms: i64,
    },
    Dead {
        reason: String,
        failure: FailureReason,
    },
}

/// One row of the deliveries table.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRow {
    pub submission_id: String,
    pub form: String,
    pub sink: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    /// Why the last attempt failed, machine-readable (see [`failure_of`]).
    pub failure_reason: Option<FailureReason>,
    pub receipt_kind: Option<String>,
    pub receipt_value: Option<String>,
    pub received_at: String,
    /// When the submission was accepted (unix ms): the age limit counts from here.
    pub accepted_ms: i64,
}

pub(crate) fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on stable storage when it returns. This is what makes a 2xx durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The writer's connection: [`open_connection`] without SQLite's automatic checkpoint, which
/// would run inside the commit that crosses 1,000 WAL pages, before that batch's clients are
/// answered; [`writer_loop`] checkpoints after answering instead.
pub(crate) fn open_writer_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_connection(path)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS submissions (
             id TEXT PRIMARY KEY,
             form TEXT NOT NULL,
             received_at TEXT NOT NULL,
             accepted_ms INTEGER NOT NULL,
             file_count INTEGER NOT NULL,
             sealed BLOB
         );
         CREATE TABLE IF NOT EXISTS deliveries (
{DELIVERIES_COLUMNS}
         ) WITHOUT ROWID;
         -- What `due` reads, in its order: without it every call sorts the whole backlog
         -- (35 ms at 80,000 pending rows; 0.03 ms with it). It also serves `next_due`, `depth`
         -- and the sinks with open deliveries; the older index on (sink, state,
         -- next_attempt_ms) served nothing else and cost every insert and update: dropped.
         DROP INDEX IF EXISTS deliveries_due;
         {DELIVERIES_OPEN};
         CREATE TABLE IF NOT EXISTS audit (
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             at_ms INTEGER NOT NULL,
             token TEXT NOT NULL,
             action TEXT NOT NULL,
             document_id TEXT NOT NULL
         );"
    ))?;
    super::audit_sqlite::migrate(conn)?;
    // Why the last attempt failed (`FailureReason::as_str`), beside `last_error`; NULL when
    // delivered, and in rows written before the column (see `failure_of`).
    super::audit_sqlite::add_column(conn, "deliveries", "failure_reason", "TEXT")?;
    deliveries_without_rowid(conn)?;
    idempotency::migrate(conn)
}

/// The deliveries table's columns and key. Its rows are small and always found by their key
/// (`submission_id`, `sink`), or through `deliveries_open`: a `WITHOUT ROWID` table is that
/// key's b-tree itself, where a rowid table kept a second b-tree (its key's unique index) that
/// every accepted submission's insert and every delivery's update also wrote.
const DELIVERIES_COLUMNS: &str = "submission_id TEXT NOT NULL REFERENCES submissions(id),
             sink TEXT NOT NULL,
             state TEXT NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             next_attempt_ms INTEGER NOT NULL,
             last_error TEXT,
             receipt_kind TEXT,
             receipt_value TEXT,
             updated_ms INTEGER NOT NULL,
             failure_reason TEXT,
             PRIMARY KEY (submission_id, sink)";

/// The index `due` reads (see `migrate`).
const DELIVERIES_OPEN: &str = "CREATE INDEX IF NOT EXISTS deliveries_open
             ON deliveries (sink, next_attempt_ms, submission_id)
             WHERE state IN ('pending', 'retrying')";

/// Rebuilds, in place and in one transaction, a deliveries table made as a rowid table (every
/// spool before `WITHOUT ROWID`) with the same rows and index; nothing when it is one already.
fn deliveries_without_rowid(conn: &Connection) -> rusqlite::Result<()> {
    // Checked under the write lock, so that two processes opening an old spool at once
    // rebuild it once.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let rebuilt = (|| {
        let sql: String = conn.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
            [],
            |r| r.get(0),
        )?;
        if sql.contains("WITHOUT ROWID") {
            return Ok(());
        }
        let columns = "submission_id, sink, state, attempts, next_attempt_ms, last_error, \
                       receipt_kind, receipt_value, updated_ms, failure_reason";
        conn.execute_batch(&format!(
            "CREATE TABLE deliveries_upgraded ({DELIVERIES_COLUMNS}) WITHOUT ROWID;
             INSERT INTO deliveries_upgraded ({columns}) SELECT {columns} FROM deliveries;
             DROP TABLE deliveries;
             ALTER TABLE deliveries_upgraded RENAME TO deliveries;
             {DELIVERIES_OPEN};"
        ))
    })();
    match rebuilt {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The failure reason of a delivery row: the stored one, or, in a row written before reasons
/// were stored, one derived from the stable texts the service itself writes (`erased`, a sink no
/// longer configured), else `other`. `None` when there was no failure.
pub(crate) fn failure_of(stored: Option<&str>, last_error: Option<&str>) -> Option<FailureReason> {
    match (stored, last_error) {
        (Some(name), _) => Some(FailureReason::parse(name).unwrap_or(FailureReason::Other)),
        (None, None) => None,
        (None, Some("erased")) => Some(FailureReason::Erased),
        (None, Some(e))
            if e.starts_with("the sink `") && e.ends_with("` is no longer configured") =>
        {
            Some(FailureReason::BadConfig)
        }
        (None, Some(_)) => Some(FailureReason::Other),
    }
}

/// Removes spool files left by uploads that never became an accepted submission (a crash or a
/// failed request between the file and the commit).
pub(crate) fn remove_orphan_files(conn: &Connection, files_root: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(files_root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(id) = name.to_str() else { continue };
        let kept: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM submissions WHERE id = ?1 AND sealed IS NOT NULL",
                [id],
                |r| r.get(0),
            )
            .optional()
            .unwrap_or(Some(1));
        if kept.is_none() {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// How many of the `waiting` commands the next transaction takes, given the time a commit
/// takes (the WAL write and its `fdatasync`; a moving average).
///
/// Taking all of them is best while the disk is the bound. When the CPU is (one core for the
/// event loop and this writer), it leaves the core idle during the flush: every client waits in
/// the same commit, so the event loop has nothing to parse. So up to [`KEEP_BACK`] commands
/// (never more than half of those waiting) are left for the next transaction: the clients
/// answered first send their next requests, and the event loop parses them while the commands
/// kept back are flushed. Keeping commands back must not cost a slow disk its batching, so a
/// transaction always takes what would arrive during one commit at [`BATCH_FLOOR_RATE`] (with
/// 5 ms commits: 125 commands), and at least [`MIN_BATCH`]. Measured in BENCHMARKS.md.
fn batch_size(waiting: usize, commit_secs: f64) -> usize {
    // `as` saturates, and takes NaN to 0.
    let floor = ((commit_secs * BATCH_FLOOR_RATE).ceil() as usize).max(MIN_BATCH);
    let keep_back = (waiting / 2).min(KEEP_BACK);
    (waiting - keep_back).max(floor).min(waiting).min(MAX_BATCH)
}

/// A moving average of the time a commit takes.
struct CommitTime {
    secs: f64,
}

impl CommitTime {
    fn record(&mut self, commit: Duration) {
        self.secs = 0.9 * self.secs + 0.1 * commit.as_secs_f64();
    }
}

/// The writer thread: applies waiting commands in one transaction (group commit), as many as
/// [`batch_size`] says.
///
/// Every [`CHECKPOINT_COMMITS`] commits, once the batch's clients are answered, it checkpoints
/// (`PASSIVE`: what no reader still needs): the WAL's pages are written to the database file and
/// that is synced. Done inside a commit (SQLite's automatic checkpoint), this held that batch's
/// answers for the copy and the sync; here the event loop reads and parses the answered clients'
/// next requests meanwhile, and they wait in the channel for the next commit. A commit is durable
/// once its WAL frames are synced, whenever the checkpoint runs.
pub(crate) fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Command>,
    janitor: super::files::Janitor,
) {
    let mut commit_time = CommitTime { secs: 0.0 };
    let mut commits_since_checkpoint: u32 = 0;
    // Commands taken off the channel and not yet applied (the channel cannot say how many wait).
    let mut waiting: VecDeque<Command> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv() {
                Ok(cmd) => waiting.push_back(cmd),
                Err(_) => return,
            }
        }
        while waiting.len() < 2 * MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => waiting.push_back(cmd),
                Err(_) => break,
            }
        }
        let take = batch_size(waiting.len(), commit_time.secs);
        let batch: Vec<Command> = waiting.drain(..take).collect();
        let (results, purged) = apply_batch(&mut conn, &batch, &mut commit_time);
        commits_since_checkpoint += 1;
        for id in purged {
            janitor.remove(&id);
        }
        for (cmd, result) in batch.into_iter().zip(results) {
            match cmd {
                Command::Accept { done, .. } => {
                    let _ = done.send(result.map(|r| match r {
                        Reply::Accepted(a) => a,
                        Reply::Done(_) => Acceptance::Stored,
                    }));
                }
                Command::Outcome { done, .. } | Command::Audit { done, .. } => {
                    let _ = done.send(result.map(|_| ()));
                }
                Command::Requeue { done, .. }
                | Command::Erase { done, .. }
                | Command::PurgeKeys { done, .. } => {
                    let _ = done.send(result.map(|r| match r {
                        Reply::Done(n) => n,
                        Reply::Accepted(_) => 0,
                    }));
                }
                Command::Discard { .. } => {}
            }
        }
        if commits_since_checkpoint >= CHECKPOINT_COMMITS {
            commits_since_checkpoint = 0;
            checkpoint(&conn);
        }
    }
}

/// A passive checkpoint: copies what no reader still needs from the WAL into the database file.
/// A failure is logged and retried at the next one (the WAL keeps everything meanwhile).
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "spool checkpoint failed; retried later");
    }
}

type BatchResult = (Vec<Result<Reply, WriteError>>, Vec<String>);

/// Applies a batch in one transaction. Commands almost never fail, so the batch is first applied
/// as it is; if any command fails, that transaction is rolled back and the batch is applied
/// again with a savepoint around each command, so that the failing command fails alone. The
/// first pass saves two statements per command (`SAVEPOINT` and `RELEASE`, which SQLite parses
/// anew each time) on the path every submission takes.
fn apply_batch(
    conn: &mut Connection,
    batch: &[Command],
    commit_time: &mut CommitTime,
) -> BatchResult {
    match apply_batch_whole(conn, batch, commit_time) {
        Some(done) => done,
        None => apply_batch_one_by_one(conn, batch),
    }
}

/// The first pass: `None` when a command failed (nothing of the batch is then kept).
fn apply_batch_whole(
    conn: &mut Connection,
    batch: &[Command],
    commit_time: &mut CommitTime,
) -> Option<BatchResult> {
    // Immediate: the write lock first, since the command line may append to the audit log.
    // `BEGIN` and `COMMIT` are cached statements: rusqlite's `Transaction` parses both anew
    // for every batch (about 2,300 instructions each).
    conn.prepare_cached("BEGIN IMMEDIATE")
        .ok()?
        .execute([])
        .ok()?;
    let applied = (|| {
        let mut results = Vec::with_capacity(batch.len());
        let mut purged = Vec::new();
        for cmd in batch {
            results.push(Ok(apply(conn, cmd, &mut purged).ok()?));
        }
        let started = Instant::now();
        conn.prepare_cached("COMMIT").ok()?.execute([]).ok()?;
        commit_time.record(started.elapsed());
        Some((results, purged))
    })();
    if applied.is_none() && !conn.is_autocommit() {
        // Nothing of the batch is kept; the second pass applies it again.
        let _ = conn.execute_batch("ROLLBACK");
    }
    applied
}

fn apply_batch_one_by_one(conn: &mut Connection, batch: &[Command]) -> BatchResult {
    let fail_all = |e: rusqlite::Error| {
        let e = WriteError::from(e);
        (batch.iter().map(|_| Err(e.clone())).collect(), Vec::new())
    };
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut results = Vec::with_capacity(batch.len());
    let mut purged = Vec::new();
    for cmd in batch {
        // Each command runs in a savepoint, so one failing command fails alone.
        let result = (|| -> rusqlite::Result<Reply> {
            let sp = tx.savepoint()?;
            let n = apply(&sp, cmd, &mut purged)?;
            sp.commit()?;
            Ok(n)
        })();
        results.push(result.map_err(WriteError::from));
    }
    match tx.commit() {
        Ok(()) => (results, purged),
        Err(e) => fail_all(e),
    }
}

fn apply(conn: &Connection, cmd: &Command, purged: &mut Vec<String>) -> rusqlite::Result<Reply> {
    match cmd {
        Command::Accept { record, .. } => {
            if let Some(key) = &record.idempotency {
                let checked = idempotency::check_and_remember(
                    conn,
                    key,
                    &record.form,
                    &record.id,
                    record.now_ms,
                )?;
                if checked != Acceptance::Stored {
                    return Ok(Reply::Accepted(checked));
                }
            }
            conn.prepare_cached(
                "INSERT INTO submissions (id, form, received_at, accepted_ms, file_count, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                record.id,
                record.form,
                record.received_at,
                record.now_ms,
                record.file_count as i64,
                record.sealed
            ])?;
            let mut stmt = conn.prepare_cached(
                "INSERT INTO deliveries (submission_id, sink, state, next_attempt_ms, updated_ms)
                 VALUES (?1, ?2, 'pending', ?3, ?3)",
            )?;
            for sink in &record.sinks {
                stmt.execute(params![record.id, sink, record.now_ms])?;
            }
            let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO subject_index (digest, submission_id) VALUES (?1, ?2)",
            )?;
            for digest in &record.subjects {
                stmt.execute(params![digest, record.id])?;
            }
            Ok(Reply::Accepted(Acceptance::Stored))
        }
        Command::Audit { entry, .. } => {
            super::audit_sqlite::append(conn, entry)?;
            Ok(Reply::Done(1))
        }
        Command::Erase { id, now_ms, .. } => {
            let n = conn
                .prepare_cached(
                    "UPDATE deliveries SET state = 'dead', last_error = 'erased',
                         failure_reason = 'erased', updated_ms = ?2
                     WHERE submission_id = ?1 AND state != 'delivered'",
                )?
                .execute(params![id, now_ms])?;
            conn.prepare_cached(
                "UPDATE submissions SET sealed = NULL, erased_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id, now_ms])?;
            conn.prepare_cached("DELETE FROM subject_index WHERE submission_id = ?1")?
                .execute([id])?;
            purged.push(id.clone());
            Ok(Reply::Done(n))
        }
        Command::Outcome {
            id,
            sink,
            outcome,
            now_ms: now,
            ..
        } => {
            let n = match outcome {
                Outcome::Delivered { kind, value } => conn
                    .prepare_cached(
                        "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                         last_error = NULL, failure_reason = NULL, receipt_kind = ?3,
                         receipt_value = ?4, updated_ms = ?5
                     WHERE submission_id = ?1 AND sink = ?2 AND last_error IS NOT 'erased'",
                    )?
                    .execute(params![id, sink, kind, value, now])?,
                Outcome::Retry {
                    error,
                    failure,
                    next_attempt_ms,
                } => conn
                    .prepare_cached(
                        "UPDATE deliveries SET state = 'retrying', attempts = attempts + 1,
                         last_error = ?3, failure_reason = ?6, next_attempt_ms = ?4,
                         updated_ms = ?5
                     WHERE submission_id = ?1 AND sink = ?2 AND last_error IS NOT 'erased'",
                    )?
                    .execute(params![
                        id,
                        sink,
                        error,
                        next_attempt_ms,
                        now,
                        failure.as_str()
                    ])?,
                Outcome::Dead { reason, failure } => conn
                    .prepare_cached(
                        "UPDATE deliveries SET state = 'dead', attempts = attempts + 1,
                         last_error = ?3, failure_reason = ?5, updated_ms = ?4
                     WHERE submission_id = ?1 AND sink = ?2 AND last_error IS NOT 'erased'",
                    )?
                    .execute(params![id, sink, reason, now, failure.as_str()])?,
            };
            let open: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM deliveries WHERE submission_id = ?1 AND state != 'delivered'",
                )?
                .query_row([id], |r| r.get(0))?;
            if open == 0 {
                conn.prepare_cached("UPDATE submissions SET sealed = NULL WHERE id = ?1")?
                    .execute([id])?;
                purged.push(id.clone());
            }
            Ok(Reply::Done(n))
        }
        Command::Discard { id } => {
            let stored: Option<i64> = conn
                .prepare_cached("SELECT 1 FROM submissions WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if stored.is_none() {
                purged.push(id.clone());
            }
            Ok(Reply::Done(0))
        }
        Command::PurgeKeys { before_ms, .. } => conn
            .prepare_cached("DELETE FROM idempotency_keys WHERE created_ms <= ?1")?
            .execute([before_ms])
            .map(Reply::Done),
        Command::Requeue { id, now_ms, .. } => conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?2,
                     updated_ms = ?2
                 WHERE submission_id = ?1 AND state = 'dead' AND last_error IS NOT 'erased'",
            )?
            .execute(params![id, now_ms])
            .map(Reply::Done),
    }
}

const ROW_COLUMNS: &str = "d.submission_id, s.form, d.sink, d.state, d.attempts, d.next_attempt_ms,
     d.last_error, d.receipt_kind, d.receipt_value, s.received_at, s.accepted_ms,
     d.failure_reason";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let state: String = r.get(3)?;
    let last_error: Option<String> = r.get(6)?;
    let stored: Option<String> = r.get(11)?;
    Ok(DeliveryRow {
        failure_reason: failure_of(stored.as_deref(), last_error.as_deref()),
        submission_id: r.get(0)?,
        form: r.get(1)?,
        sink: r.get(2)?,
        state: DeliveryState::parse(&state),
        attempts: r.get(4)?,
        next_attempt_ms: r.get(5)?,
        last_error,
        receipt_kind: r.get(7)?,
        receipt_value: r.get(8)?,
        received_at: r.get(9)?,
        accepted_ms: r.get(10)?,
    })
}

pub(crate) fn due(
    conn: &Connection,
    sink: &str,
    now_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM deliveries d JOIN submissions s ON s.id = d.submission_id
         WHERE d.sink = ?1 AND d.state IN ('pending', 'retrying') AND d.next_attempt_ms <= ?2
         ORDER BY d.next_attempt_ms, d.submission_id LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![sink, now_ms, limit as i64], row)?;
    rows.collect()
}

pub(crate) fn next_due(conn: &Connection, sink: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT MIN(next_attempt_ms) FROM deliveries
         WHERE sink = ?1 AND state IN ('pending', 'retrying')",
    )?
    .query_row([sink], |r| r.get(0))
}

pub(crate) fn deliveries_of(conn: &Connection, id: &str) -> rusqlite::Result<Vec<DeliveryRow>> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM deliveries d JOIN submissions s ON s.id = d.submission_id
         WHERE d.submission_id = ?1 ORDER BY d.sink"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([id], row)?;
    rows.collect()
}

pub(crate) fn depth(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'retrying')",
        [],
        |r| r.get(0),
    )
}

/// A cached statement: it runs once per delivery (parsing it took about 13,000 instructions).
pub(crate) fn sealed_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT sealed FROM submissions WHERE id = ?1")?
        .query_row([id], |r| r.get::<_, Option<Vec<u8>>>(0))
        .optional()
        .map(Option::flatten)
}

/// The submissions (not erased) whose subject index holds one of `digests`.
pub(crate) fn subject_ids(conn: &Connection, digests: &[Vec<u8>]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.submission_id FROM subject_index i JOIN submissions s ON s.id = i.submission_id
         WHERE i.digest = ?1 AND s.erased_ms IS NULL",
    )?;
    let mut ids = Vec::new();
    for d in digests {
        let rows = stmt.query_map([d], |r| r.get::<_, String>(0))?;
        for id in rows {
            ids.push(id?);
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Submissions whose payload is still in the spool and whose deliveries are all done
/// (delivered or dead), with their form and acceptance time: what retention may erase.
pub(crate) fn erasable(conn: &Connection) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.form, s.accepted_ms FROM submissions s
         WHERE s.sealed IS NOT NULL AND s.erased_ms IS NULL AND NOT EXISTS (
             SELECT 1 FROM deliveries d
             WHERE d.submission_id = s.id AND d.state IN ('pending', 'retrying'))",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

pub(crate) fn form_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<(String, String)>> {
    conn.query_row(
        "SELECT form, received_at FROM submissions WHERE id = ?1 AND erased_ms IS NULL",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Marks open deliveries to sinks not in `configured` as dead; returns how many.
pub(crate) fn kill_unconfigured(
    conn: &Connection,
    configured: &[String],
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let mut stmt = conn
        .prepare("SELECT DISTINCT sink FROM deliveries WHERE state IN ('pending', 'retrying')")?;
    let open: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for sink in open.iter().filter(|s| !configured.contains(s)) {
        n += conn.execute(
            "UPDATE deliveries SET state = 'dead', updated_ms = ?2,
                 last_error = 'the sink `' || ?1 || '` is no longer configured',
                 failure_reason = 'bad_config'
             WHERE sink = ?1 AND state IN ('pending', 'retrying')",
            params![sink, now_ms],
        )?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(id: &str) -> Command {
        let (done, _) = tokio::sync::oneshot::channel();
        Command::Accept {
            record: NewSubmission {
                id: id.to_owned(),
                form: "contact".to_owned(),
                received_at: "2026-01-01T00:00:00Z".to_owned(),
                file_count: 0,
                sealed: vec![1, 2, 3],
                sinks: vec!["documents".to_owned()],
                now_ms: 1,
                idempotency: None,
                subjects: Vec::new(),
            },
            done,
        }
    }

    fn no_commit_yet() -> CommitTime {
        CommitTime { secs: 0.0 }
    }

    #[test]
    fn a_batch_keeps_commands_back_only_while_commits_are_quick() {
        let fast = 0.000_3; // 0.3 ms
        assert_eq!(batch_size(1, fast), 1);
        assert_eq!(batch_size(10, fast), 10, "a few are never split");
        assert_eq!(
            batch_size(20, fast),
            16,
            "at least MIN_BATCH when that many wait"
        );
        assert_eq!(batch_size(32, fast), 16, "half stay for the next commit");
        assert_eq!(batch_size(256, fast), 240, "at most KEEP_BACK stay");
        assert_eq!(batch_size(10_000, fast), MAX_BATCH);
        // A slow disk: what arrives during one 5 ms commit at BATCH_FLOOR_RATE goes in one.
        assert_eq!(batch_size(32, 0.005), 32);
        assert_eq!(batch_size(200, 0.005), 184);
        assert_eq!(batch_size(130, 0.005), 125);
        // Whatever the average says, the size stays in range.
        assert_eq!(batch_size(32, f64::NAN), 16);
        assert_eq!(batch_size(32, f64::INFINITY), 32);
        assert_eq!(batch_size(9_000, f64::INFINITY), MAX_BATCH);
    }

    #[test]
    fn a_row_from_before_stored_reasons_gets_one_from_its_text() {
        use FailureReason::*;
        assert_eq!(failure_of(None, None), None);
        assert_eq!(failure_of(Some("quota"), Some("HTTP 429")), Some(Quota));
        assert_eq!(failure_of(Some("from-the-future"), Some("x")), Some(Other));
        assert_eq!(failure_of(None, Some("erased")), Some(Erased));
        assert_eq!(
            failure_of(None, Some("the sink `hook` is no longer configured")),
            Some(BadConfig)
        );
        assert_eq!(failure_of(None, Some("HTTP 500")), Some(Other));
    }

    #[test]
    fn the_commit_time_is_a_moving_average() {
        let mut t = no_commit_yet();
        for _ in 0..100 {
            t.record(Duration::from_millis(5));
        }
        assert!((t.secs - 0.005).abs() < 0.000_1, "{}", t.secs);
        t.record(Duration::from_millis(15));
        assert!(
            (t.secs - 0.006).abs() < 0.000_1,
            "one slow commit moves it a tenth"
        );
    }

    fn stored_ids(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT id FROM submissions ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_batch_without_failures_is_committed_whole() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let (results, _) =
            apply_batch(&mut conn, &[accept("a"), accept("b")], &mut no_commit_yet());
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(Reply::Accepted(Acceptance::Stored)))));
        assert_eq!(stored_ids(&conn), ["a", "b"]);
    }

    #[test]
    fn a_failing_command_fails_alone_and_the_rest_of_its_batch_is_kept() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        // The second command repeats the first's id: the primary key refuses it.
        let batch = [accept("a"), accept("a"), accept("c")];
        let (results, _) = apply_batch(&mut conn, &batch, &mut no_commit_yet());
        assert!(
            matches!(results[0], Ok(Reply::Accepted(Acceptance::Stored))),
            "{results:?}"
        );
        assert!(
            matches!(&results[1], Err(e) if e.to_string().contains("UNIQUE")),
            "{results:?}"
        );
        assert!(
            matches!(results[2], Ok(Reply::Accepted(Acceptance::Stored))),
            "{results:?}"
        );
        assert_eq!(stored_ids(&conn), ["a", "c"]);
        let deliveries: i64 = conn
            .query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(deliveries, 2, "the failed command left no delivery behind");
    }
}
