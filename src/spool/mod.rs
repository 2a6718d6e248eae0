//! The spool: where an accepted submission waits, sealed, until every sink has it.
//!
//! See `docs/spool.md` for why this is SQLite. In short: one file, crash-safe transactions in WAL
//! mode with `synchronous = FULL`, and queries for the delivery state that the dispatcher and the
//! API need, with no server to run.
//!
//! - A submission is stored as one sealed blob (AES-256-GCM, see `secureform_crypto::seal`);
//!   its files are sealed files under `spool/files/<id>/<n>.sf`, written and fsynced while the
//!   upload streams in, before the submission's row is committed. On PostgreSQL the same sealed
//!   streams go into rows of `file_segments` instead (`pg_files.rs`).
//! - **Group commit**: one writer thread owns the write connection. It takes the commands
//!   waiting in its queue (all of them, or all but a few while commits are quick: see
//!   `store::batch_size`), applies them in one transaction, commits (one fsync of the WAL), and
//!   only then answers each request. Concurrent requests share an fsync; while one batch is being
//!   synced, the next one gathers in the queue.
//! - Each (submission, sink) pair has a delivery row with its state: `pending`, `retrying`,
//!   `delivered` or `dead`. When every sink has a submission, its sealed payload and files are
//!   removed from the spool (the row and its delivery states stay, for the status API).

mod audit_access;
mod audit_pg;
mod audit_sqlite;
mod backend;
mod direct;
mod files;
mod guard;
mod idempotency;
mod pg_files;
mod postgres;
mod sqlite;
mod store;

pub use audit_access::AuditLog;
pub use files::{SpoolFileUpload, SpoolFileWriter, SpoolFiles};
pub use guard::UploadGuard;
pub use idempotency::Acceptance;
pub use postgres::PostgresOptions;
pub use store::{DeliveryRow, DeliveryState, Outcome};

use crate::audit::{Entry as AuditEntry, NewEntry as NewAuditEntry};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use secureform_contract::Submission;
use secureform_crypto::KeyRing;

use crate::clock::Clock;
use backend::SpoolBackend;
use tokio::sync::oneshot;

/// Why the spool could not do what was asked. Maps to 503 for a submitting client.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("spool database (PostgreSQL): {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("spool schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("spool schema: {0}")]
    Schema(String),
    #[error("spool I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("spool sealing: {0}")]
    Seal(#[from] secureform_crypto::SealError),
    #[error("spool record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the spool writer has stopped")]
    Stopped,
    #[error("no submission {0} in the spool")]
    NotFound(String),
    #[error("submission {0}: not all its files are in the spool")]
    FilesIncomplete(String),
}

/// Why the spool writer could not apply a command. One failed commit fails every command of
/// its batch, so the error is shared.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    #[error("spool database: {0}")]
    Db(Arc<rusqlite::Error>),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Db(Arc::new(e))
    }
}

pub(crate) enum Command {
    Accept {
        record: store::NewSubmission,
        done: oneshot::Sender<Result<Acceptance, WriteError>>,
    },
    Audit {
        entry: NewAuditEntry,
        done: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Erases a submission's payload: open deliveries dead (`erased`), payload and files gone.
    Erase {
        id: String,
        now_ms: i64,
        done: oneshot::Sender<Result<usize, WriteError>>,
    },
    Outcome {
        id: String,
        sink: String,
        outcome: Outcome,
        now_ms: i64,
        done: oneshot::Sender<Result<(), WriteError>>,
    },
    Requeue {
        id: String,
        now_ms: i64,
        done: oneshot::Sender<Result<usize, WriteError>>,
    },
    /// Removes the files of `id` unless a submission `id` is stored (see [`UploadGuard`]).
    Discard { id: String },
    /// Removes the idempotency keys remembered at or before `before_ms` (expired).
    PurgeKeys {
        before_ms: i64,
        done: oneshot::Sender<Result<usize, WriteError>>,
    },
}

/// The spool. Cheap to share behind an `Arc`. Seals and opens; stores through its backend
/// (`backend.rs`), which the callers never see.
pub struct Spool {
    backend: Arc<dyn SpoolBackend>,
    root: PathBuf,
    /// Where uploaded files go on PostgreSQL; `None`: under `root/files`.
    pg_files: Option<Arc<pg_files::PgFileStore>>,
    keys: Arc<KeyRing>,
    /// Submissions that came in to be spooled since start: delivery gives way to ingestion.
    arrivals: AtomicU64,
    /// The time every record of the spool is stamped with (see `crate::clock`).
    clock: Arc<dyn Clock>,
}

fn submission_context(id: &str) -> Vec<u8> {
    format!("spool/{id}/submission").into_bytes()
}

impl Spool {
    /// Opens (creating when missing) the SQLite spool under `data_dir/spool`, removes what a
    /// crash left half-written, and starts the writer thread.
    ///
    /// Open deliveries to a sink that is no longer in `sinks` (the configured sink names) become
    /// dead, with that reason: no worker would ever take them. Re-adding the sink and retrying
    /// them (the API's retry) delivers them, since their payload stays in the spool.
    pub fn open(
        data_dir: &Path,
        keys: Arc<KeyRing>,
        sinks: &[String],
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Spool>, SpoolError> {
        let root = data_dir.join("spool");
        secureform_crypto::files::create_private_dir(&root.join("files"))?;
        let backend = sqlite::SqliteBackend::open(&root, sinks, clock.now_ms())?;
        Ok(Self::with_backend(
            Arc::new(backend),
            root,
            None,
            keys,
            clock,
        ))
    }

    /// Opens the spool on PostgreSQL (several instances may share the database); the files of
    /// uploads are sealed into the database too (`file_segments`). Files a build from before
    /// left under `data_dir/spool/files` are still read from there.
    pub async fn open_postgres(
        data_dir: &Path,
        options: &PostgresOptions,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Spool>, SpoolError> {
        let root = data_dir.join("spool");
        secureform_crypto::files::create_private_dir(&root.join("files"))?;
        let backend = postgres::PostgresBackend::open(options, root.join("files")).await?;
        let files = backend.file_store();
        Ok(Self::with_backend(
            Arc::new(backend),
            root,
            Some(files),
            keys,
            clock,
        ))
    }

    /// Applies the PostgreSQL spool's migrations (`secureform migrate`).
    pub async fn migrate_postgres(options: &PostgresOptions) -> Result<(), SpoolError> {
        let pool = postgres::pool(options)?;
        postgres::migrate(&pool, true).await
    }

    /// Connects to the PostgreSQL spool and checks its schema, changing nothing (`check
    /// --online`).
    pub async fn check_postgres(options: &PostgresOptions) -> Result<(), SpoolError> {
        let pool = postgres::pool(options)?;
        sqlx::query("SELECT 1").execute(&pool).await?;
        postgres::migrate(&pool, false).await
    }

    /// Sink names with work accepted by other instances (shared backends only).
    pub fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        self.backend.wakeups()
    }

    fn with_backend(
        backend: Arc<dyn SpoolBackend>,
        root: PathBuf,
        pg_files: Option<Arc<pg_files::PgFileStore>>,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Spool> {
        tracing::info!(backend = backend.name(), "spool");
        Arc::new(Spool {
            backend,
            root,
            pg_files,
            keys,
            arrivals: AtomicU64::new(0),
            clock,
        })
    }

    /// Starts a sealed file for file `index` of submission `id`. Its writes are blocking:
    /// call them off the event loop.
    pub fn file_writer(&self, id: &str, index: usize) -> Result<SpoolFileWriter, SpoolError> {
        match &self.pg_files {
            Some(store) => SpoolFileWriter::in_postgres(store, &self.keys, id, index),
            None => SpoolFileWriter::create(&self.root.join("files"), &self.keys, id, index),
        }
    }

    /// Whether a request for submission `id` may have left files to remove (see
    /// [`UploadGuard`]).
    fn may_have_files(&self, id: &str) -> bool {
        match &self.pg_files {
            Some(store) => store.has_upload(id),
            None => self.root.join("files").join(id).exists(),
        }
    }

    /// Seals the submission and commits it with one pending delivery per sink. Returns once the
    /// commit is on stable storage: only then may the client be answered. With an idempotency
    /// key (token name, key) seen before for this form, nothing is stored: the answer is the
    /// first submission's id when the request is the same, and [`Acceptance::KeyReused`] when
    /// it is not.
    pub async fn accept(
        &self,
        submission: &Submission,
        sinks: &[String],
        idempotency: Option<(String, String)>,
    ) -> Result<Acceptance, SpoolError> {
        self.accept_indexed(submission, sinks, idempotency, &[])
            .await
    }

    /// [`Spool::accept`], also indexing the values of `subject_fields` (see `crate::subjects`).
    pub async fn accept_indexed(
        &self,
        submission: &Submission,
        sinks: &[String],
        idempotency: Option<(String, String)>,
        subject_fields: &[String],
    ) -> Result<Acceptance, SpoolError> {
        self.arrivals.fetch_add(1, Ordering::Relaxed);
        let json = zeroize::Zeroizing::new(serde_json::to_vec(submission)?);
        let sealed =
            secureform_crypto::seal(&self.keys, &submission_context(&submission.id), &json)?;
        let record = store::NewSubmission {
            id: submission.id.clone(),
            form: submission.form.clone(),
            received_at: submission.received_at.clone(),
            file_count: submission.files.len(),
            sealed,
            sinks: sinks.to_vec(),
            now_ms: self.clock.now_ms(),
            idempotency: idempotency
                .map(|(token, key)| {
                    idempotency::Idempotency::new(&self.keys, token, key, submission)
                })
                .transpose()?,
            subjects: crate::subjects::index(&self.keys, submission, subject_fields),
        };
        self.backend.accept(record).await
    }

    /// Records, durably, that `actor` read a document (before the document is served).
    pub async fn audit(
        &self,
        actor: &str,
        action: crate::audit::Action,
        document_id: &str,
    ) -> Result<(), SpoolError> {
        self.audit_entry(actor, action, document_id, None, None)
            .await
    }

    /// Records, durably, one entry of the audit trail (see `crate::audit`).
    pub async fn audit_entry(
        &self,
        actor: &str,
        action: crate::audit::Action,
        id: &str,
        reason: Option<&str>,
        detail: Option<String>,
    ) -> Result<(), SpoolError> {
        self.backend
            .audit(NewAuditEntry {
                at_ms: self.clock.now_ms(),
                actor: actor.to_owned(),
                action: action.as_str().to_owned(),
                id: id.to_owned(),
                reason: reason.map(str::to_owned),
                detail,
            })
            .await
    }

    /// The newest audit entries, newest first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, SpoolError> {
        self.backend.audit_newest(limit).await
    }

    /// Audit entries after sequence number `after`, oldest first.
    pub async fn audit_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, SpoolError> {
        self.backend.audit_after(after, limit).await
    }

    /// Erases a submission from the spool: its open deliveries become dead with reason
    /// `erased`, its sealed payload and files are removed (the row with its delivery states
    /// stays, for the status API). Returns how many deliveries it ended; `NotFound` when the
    /// id is unknown.
    pub async fn erase(&self, id: &str) -> Result<usize, SpoolError> {
        if self.backend.form_of(id).await?.is_none() {
            return Err(SpoolError::NotFound(id.to_owned()));
        }
        self.backend.erase(id, self.clock.now_ms()).await
    }

    /// The submissions (not erased) whose subject field `field` holds `value`.
    pub async fn find_subject(&self, field: &str, value: &str) -> Result<Vec<String>, SpoolError> {
        let digests = crate::subjects::lookup(&self.keys, field, value);
        self.backend.subject_ids(digests).await
    }

    /// Submissions whose payload is still here and whose deliveries are all done: `(id, form,
    /// accepted_ms)`, what retention may erase.
    pub async fn erasable(&self) -> Result<Vec<(String, String, i64)>, SpoolError> {
        self.backend.erasable().await
    }

    /// Removes the idempotency keys whose window ([`idempotency::IDEMPOTENCY_MS`], by the
    /// spool's clock) has passed; returns how many.
    pub async fn purge_expired_keys(&self) -> Result<usize, SpoolError> {
        let before_ms = self
            .clock
            .now_ms()
            .saturating_sub(idempotency::IDEMPOTENCY_MS);
        self.backend.purge_keys(before_ms).await
    }

    /// The form and received_at of a known submission.
    pub async fn form_of(&self, id: &str) -> Result<Option<(String, String)>, SpoolError> {
        self.backend.form_of(id).await
    }

    /// How many submissions have come in to be spooled since start.
    pub fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }

    /// Records the outcome of one delivery attempt.
    pub async fn record(&self, id: &str, sink: &str, outcome: Outcome) -> Result<(), SpoolError> {
        self.backend
            .record(id, sink, outcome, self.clock.now_ms())
            .await
    }

    /// Puts a submission's dead deliveries back in the queue; returns how many.
    pub async fn requeue_dead(&self, id: &str) -> Result<usize, SpoolError> {
        self.backend.requeue_dead(id, self.clock.now_ms()).await
    }

    /// Now, in milliseconds since the Unix epoch, by the spool's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The spool's clock.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Deliveries of `sink` that are due now, oldest first.
    pub async fn due(&self, sink: &str, limit: usize) -> Result<Vec<DeliveryRow>, SpoolError> {
        self.backend.due(sink, self.clock.now_ms(), limit).await
    }

    /// When the next not-yet-due delivery of `sink` becomes due (unix ms), if any.
    pub async fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, SpoolError> {
        self.backend.next_due_ms(sink).await
    }

    /// Every delivery state of a submission; empty when the id is unknown.
    pub async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, SpoolError> {
        self.backend.deliveries(id).await
    }

    /// How many (submission, sink) deliveries are not yet delivered or dead.
    pub async fn depth(&self) -> Result<i64, SpoolError> {
        self.backend.depth().await
    }

    /// Opens a spooled submission.
    pub async fn load(&self, id: &str) -> Result<Submission, SpoolError> {
        let sealed = self
            .backend
            .sealed_of(id)
            .await?
            .ok_or_else(|| SpoolError::NotFound(id.to_owned()))?;
        let json = secureform_crypto::open(&self.keys, &submission_context(id), &sealed)?;
        Ok(serde_json::from_slice(&json)?)
    }

    /// The files of a spooled submission, for a sink to stream.
    pub fn files(&self, id: &str) -> SpoolFiles {
        let files = SpoolFiles::new(self.root.join("files"), Arc::clone(&self.keys), id);
        match &self.pg_files {
            Some(store) => files.in_postgres(store),
            None => files,
        }
    }

    /// Whether the spool can take writes (for `/readyz`).
    pub async fn writable(&self) -> bool {
        self.backend.ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::normalize::new_id;
    use secureform_contract::{Fields, Source};
    use std::time::{Duration, UNIX_EPOCH};

    pub(super) fn sinks() -> Vec<String> {
        vec!["docs".to_owned()]
    }

    pub(super) fn open(dir: &Path, clock: &Arc<ManualClock>) -> Arc<Spool> {
        let keys = Arc::new(KeyRing::generate().unwrap());
        let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
        Spool::open(dir, keys, &sinks(), clock).unwrap()
    }

    pub(super) fn submission(clock: &ManualClock) -> Submission {
        Submission {
            id: new_id(clock),
            form: "contact".to_owned(),
            received_at: clock.now_rfc3339(),
            source: Source::Json,
            fields: Fields::new(),
            files: Vec::new(),
        }
    }

    pub(super) fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::at(
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ))
    }

    #[tokio::test]
    async fn an_idempotency_key_is_kept_48_hours_by_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let spool = open(dir.path(), &clock);
        let key = || Some(("integrator".to_owned(), "order-1".to_owned()));
        let first = submission(&clock);
        assert_eq!(
            spool.accept(&first, &sinks(), key()).await.unwrap(),
            Acceptance::Stored
        );

        clock.advance(Duration::from_secs(47 * 3600));
        let repeat = submission(&clock);
        assert_eq!(
            spool.accept(&repeat, &sinks(), key()).await.unwrap(),
            Acceptance::Repeat(first.id.clone()),
            "a repeat within 48 h answers with the first id"
        );

        clock.advance(Duration::from_secs(3600 + 1));
        let later = submission(&clock);
        assert_eq!(
            spool.accept(&later, &sinks(), key()).await.unwrap(),
            Acceptance::Stored,
            "after 48 h the key is forgotten and the submission stored"
        );
        assert!(spool.load(&later.id).await.is_ok());
        assert!(
            spool.load(&repeat.id).await.is_err(),
            "the repeat was not stored"
        );
    }

    /// Once every sink has a submission, its sealed files go (on the janitor's thread).
    #[tokio::test]
    async fn delivered_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let spool = open(dir.path(), &clock);
        let s = submission(&clock);
        let mut writer = spool.file_writer(&s.id, 0).unwrap();
        writer.write_chunk(b"some bytes").unwrap();
        writer.finish().unwrap();
        let folder = dir.path().join("spool").join("files").join(&s.id);
        assert!(folder.join("0.sf").exists());
        spool.accept(&s, &sinks(), None).await.unwrap();
        let delivered = Outcome::Delivered {
            kind: "document".to_owned(),
            value: s.id.clone(),
        };
        spool.record(&s.id, "docs", delivered).await.unwrap();
        for _ in 0..100 {
            if !folder.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !folder.exists(),
            "the files of a delivered submission are removed"
        );
        assert!(
            spool.load(&s.id).await.is_err(),
            "and so is its sealed payload"
        );
    }

    #[tokio::test]
    async fn the_database_files_are_private_also_in_an_older_spool() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        std::fs::create_dir_all(&root).unwrap();
        // A spool made before: SQLite's own 0644.
        drop(rusqlite::Connection::open(root.join("spool.db")).unwrap());
        std::fs::set_permissions(
            root.join("spool.db"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let clock = clock();
        let spool = open(dir.path(), &clock);
        spool
            .accept(&submission(&clock), &sinks(), None)
            .await
            .unwrap();
        for name in ["spool.db", "spool.db-wal", "spool.db-shm"] {
            let mode = std::fs::metadata(root.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[tokio::test]
    async fn a_retry_becomes_due_when_the_clock_reaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let spool = open(dir.path(), &clock);
        let s = submission(&clock);
        spool.accept(&s, &sinks(), None).await.unwrap();
        let due = spool.due("docs", 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].accepted_ms, clock.now_ms());

        let retry_at = clock.now_ms() + 10_000;
        let outcome = Outcome::Retry {
            error: "the server said 451".to_owned(),
            failure: secureform_contract::FailureReason::PeerError,
            next_attempt_ms: retry_at,
        };
        spool.record(&s.id, "docs", outcome).await.unwrap();
        assert!(spool.due("docs", 10).await.unwrap().is_empty());
        assert_eq!(spool.next_due_ms("docs").await.unwrap(), Some(retry_at));

        clock.advance(Duration::from_secs(10));
        let due = spool.due("docs", 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].state, DeliveryState::Retrying);
        assert_eq!(due[0].attempts, 1);
        assert_eq!(
            due[0].failure_reason,
            Some(secureform_contract::FailureReason::PeerError)
        );
    }

    /// The failure reason is stored with each failed attempt, cleared on delivery, and set by
    /// an erasure; a spool made before the column gets it in place.
    #[tokio::test]
    async fn the_failure_reason_is_kept_beside_the_error() {
        use secureform_contract::FailureReason;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        std::fs::create_dir_all(&root).unwrap();
        // A spool made before the column: its deliveries table lacks it.
        {
            let conn = rusqlite::Connection::open(root.join("spool.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE submissions (id TEXT PRIMARY KEY, form TEXT NOT NULL,
                     received_at TEXT NOT NULL, accepted_ms INTEGER NOT NULL,
                     file_count INTEGER NOT NULL, sealed BLOB);
                 CREATE TABLE deliveries (submission_id TEXT NOT NULL REFERENCES submissions(id),
                     sink TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                     next_attempt_ms INTEGER NOT NULL, last_error TEXT, receipt_kind TEXT,
                     receipt_value TEXT, updated_ms INTEGER NOT NULL,
                     PRIMARY KEY (submission_id, sink));
                 INSERT INTO submissions VALUES ('01OLD', 'contact', '2026-01-01T00:00:00Z', 1, 0, NULL);
                 INSERT INTO deliveries VALUES ('01OLD', 'docs', 'dead', 3, 1, 'HTTP 500', NULL, NULL, 1);",
            )
            .unwrap();
        }
        let clock = clock();
        let spool = open(dir.path(), &clock);
        let old = spool.deliveries("01OLD").await.unwrap();
        assert_eq!(old[0].failure_reason, Some(FailureReason::Other), "{old:?}");

        let s = submission(&clock);
        spool.accept(&s, &sinks(), None).await.unwrap();
        assert_eq!(
            spool.deliveries(&s.id).await.unwrap()[0].failure_reason,
            None
        );
        let dead = Outcome::Dead {
            reason: "the receiver answered HTTP 410 Gone".to_owned(),
            failure: FailureReason::RejectedByPeer,
        };
        spool.record(&s.id, "docs", dead).await.unwrap();
        let row = &spool.deliveries(&s.id).await.unwrap()[0];
        assert_eq!(row.failure_reason, Some(FailureReason::RejectedByPeer));
        assert_eq!(
            row.last_error.as_deref(),
            Some("the receiver answered HTTP 410 Gone")
        );
        spool.requeue_dead(&s.id).await.unwrap();
        let delivered = Outcome::Delivered {
            kind: "http_status".to_owned(),
            value: "HTTP 200 OK".to_owned(),
        };
        spool.record(&s.id, "docs", delivered).await.unwrap();
        assert_eq!(
            spool.deliveries(&s.id).await.unwrap()[0].failure_reason,
            None
        );

        let erased = submission(&clock);
        spool.accept(&erased, &sinks(), None).await.unwrap();
        spool.erase(&erased.id).await.unwrap();
        let row = &spool.deliveries(&erased.id).await.unwrap()[0];
        assert_eq!(row.failure_reason, Some(FailureReason::Erased));
    }

    /// A spool made by the version before deliveries became a `WITHOUT ROWID` table (its
    /// schema as that version's `migrate` left it) is rebuilt in place at start, its rows and
    /// their open index kept, and works on.
    #[tokio::test]
    async fn a_spool_with_a_rowid_deliveries_table_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        std::fs::create_dir_all(&root).unwrap();
        {
            let conn = rusqlite::Connection::open(root.join("spool.db")).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE submissions (id TEXT PRIMARY KEY, form TEXT NOT NULL,
                     received_at TEXT NOT NULL, accepted_ms INTEGER NOT NULL,
                     file_count INTEGER NOT NULL, sealed BLOB, erased_ms INTEGER);
                 CREATE TABLE deliveries (submission_id TEXT NOT NULL REFERENCES submissions(id),
                     sink TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                     next_attempt_ms INTEGER NOT NULL, last_error TEXT, receipt_kind TEXT,
                     receipt_value TEXT, updated_ms INTEGER NOT NULL,
                     PRIMARY KEY (submission_id, sink));
                 ALTER TABLE deliveries ADD COLUMN failure_reason TEXT;
                 CREATE INDEX deliveries_open ON deliveries (sink, next_attempt_ms, submission_id)
                     WHERE state IN ('pending', 'retrying');
                 INSERT INTO submissions VALUES ('01PENDING', 'contact', '2026-01-01T00:00:00Z', 1, 0, NULL, NULL);
                 INSERT INTO submissions VALUES ('01DONE', 'contact', '2026-01-01T00:00:00Z', 1, 0, NULL, NULL);
                 INSERT INTO deliveries VALUES ('01PENDING', 'docs', 'retrying', 2, 5, 'HTTP 503', NULL, NULL, 1, 'peer_error');
                 INSERT INTO deliveries VALUES ('01DONE', 'docs', 'delivered', 1, 1, NULL, 'document', '01DONE', 1, NULL);",
            )
            .unwrap();
        }
        let clock = clock();
        let spool = open(dir.path(), &clock);
        {
            let conn = rusqlite::Connection::open(root.join("spool.db")).unwrap();
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'deliveries'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(sql.contains("WITHOUT ROWID"), "{sql}");
            let indexes: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'deliveries_open'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(indexes, 1, "the open deliveries' index is made again");
        }
        let pending = spool.deliveries("01PENDING").await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].state, DeliveryState::Retrying);
        assert_eq!(pending[0].attempts, 2);
        assert_eq!(pending[0].next_attempt_ms, 5);
        assert_eq!(pending[0].last_error.as_deref(), Some("HTTP 503"));
        assert_eq!(
            pending[0].failure_reason,
            Some(secureform_contract::FailureReason::PeerError)
        );
        let done = spool.deliveries("01DONE").await.unwrap();
        assert_eq!(done[0].state, DeliveryState::Delivered);
        assert_eq!(done[0].receipt_value.as_deref(), Some("01DONE"));
        let due: Vec<String> = spool
            .due("docs", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.submission_id)
            .collect();
        assert_eq!(due, ["01PENDING"]);

        // And it works on: a new submission, its delivery, and a second start.
        let s = submission(&clock);
        spool.accept(&s, &sinks(), None).await.unwrap();
        assert_eq!(spool.due("docs", 10).await.unwrap().len(), 2);
        let delivered = Outcome::Delivered {
            kind: "document".to_owned(),
            value: s.id.clone(),
        };
        spool.record(&s.id, "docs", delivered).await.unwrap();
        assert_eq!(
            spool.deliveries(&s.id).await.unwrap()[0].state,
            DeliveryState::Delivered
        );
        drop(spool);
        let again = open(dir.path(), &clock);
        assert_eq!(again.deliveries(&s.id).await.unwrap().len(), 1);
        assert_eq!(again.due("docs", 10).await.unwrap().len(), 1);
    }
}
