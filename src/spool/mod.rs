//! The spool: where an accepted submission waits, sealed, until every sink has it.
//!
//! See `docs/spool.md` for why this is SQLite. In short: one file, crash-safe transactions in WAL
//! mode with `synchronous = FULL`, and queries for the delivery state that the dispatcher and the
//! API need, with no server to run.
//!
//! - A submission is stored as one sealed blob (AES-256-GCM, see `secureform_crypto::seal`);
//!   its files are sealed files under `spool/files/<id>/<n>.sf`, written and fsynced while the
//!   upload streams in, before the submission's row is committed.
//! - **Group commit**: one writer thread owns the write connection. It takes the commands
//!   waiting in its queue (all of them, or all but a few while commits are quick: see
//!   `store::batch_size`), applies them in one transaction, commits (one fsync of the WAL), and
//!   only then answers each request. Concurrent requests share an fsync; while one batch is being
//!   synced, the next one gathers in the queue.
//! - Each (submission, sink) pair has a delivery row with its state: `pending`, `retrying`,
//!   `delivered` or `dead`. When every sink has a submission, its sealed payload and files are
//!   removed from the spool (the row and its delivery states stay, for the status API).

mod direct;
mod files;
mod guard;
mod idempotency;
mod store;

pub use files::{SpoolFileUpload, SpoolFileWriter, SpoolFiles};
pub use guard::UploadGuard;
pub use idempotency::Acceptance;
pub use store::{AuditEntry, DeliveryRow, DeliveryState, Outcome};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::Connection;
use secureform_contract::Submission;
use secureform_crypto::KeyRing;

use crate::clock::Clock;
use tokio::sync::oneshot;

/// Why the spool could not do what was asked. Maps to 503 for a submitting client.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool database: {0}")]
    Db(#[from] rusqlite::Error),
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
}

pub(crate) enum Command {
    Accept {
        record: store::NewSubmission,
        done: oneshot::Sender<Result<Acceptance, String>>,
    },
    Audit {
        entry: AuditEntry,
        done: oneshot::Sender<Result<(), String>>,
    },
    Outcome {
        id: String,
        sink: String,
        outcome: Outcome,
        now_ms: i64,
        done: oneshot::Sender<Result<(), String>>,
    },
    Requeue {
        id: String,
        now_ms: i64,
        done: oneshot::Sender<Result<usize, String>>,
    },
    /// Removes the files of `id` unless a submission `id` is stored (see [`UploadGuard`]).
    Discard { id: String },
}

/// The spool. Cheap to share behind an `Arc`.
pub struct Spool {
    writer: Mutex<mpsc::Sender<Command>>,
    reader: Mutex<Connection>,
    root: PathBuf,
    keys: Arc<KeyRing>,
    /// Submissions that came in to be spooled since start: delivery gives way to ingestion.
    arrivals: AtomicU64,
    /// The time every record of the spool is stamped with (see `crate::clock`).
    clock: Arc<dyn Clock>,
}

/// Creates the database file mode 0600 before SQLite does (SQLite would make it 0644, and gives
/// its `-wal` and `-shm` files the database file's mode), and takes group and others' access
/// away from the files of a spool made before.
fn make_db_private(db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn submission_context(id: &str) -> Vec<u8> {
    format!("spool/{id}/submission").into_bytes()
}

impl Spool {
    /// Opens (creating when missing) the spool under `data_dir/spool`, removes what a crash left
    /// half-written, and starts the writer thread.
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
        let db = root.join("spool.db");
        make_db_private(&db)?;
        let write_conn = store::open_connection(&db)?;
        store::migrate(&write_conn)?;
        let orphaned = store::kill_unconfigured(&write_conn, sinks, clock.now_ms())?;
        if orphaned > 0 {
            tracing::warn!(
                deliveries = orphaned,
                "open deliveries to sinks no longer configured are now dead"
            );
        }
        let reader = store::open_connection(&db)?;
        store::remove_orphan_files(&reader, &root.join("files"))?;
        let (tx, rx) = mpsc::channel();
        // Removes spool files off the commit path and off the event loop, for the writer.
        let janitor = files::Janitor::start(root.join("files"))?;
        std::thread::Builder::new()
            .name("spool-writer".to_owned())
            .spawn(move || store::writer_loop(write_conn, rx, janitor))?;
        Ok(Arc::new(Spool {
            writer: Mutex::new(tx),
            reader: Mutex::new(reader),
            root,
            keys,
            arrivals: AtomicU64::new(0),
            clock,
        }))
    }

    fn send(&self, cmd: Command) -> Result<(), SpoolError> {
        let tx = self.writer.lock().map_err(|_| SpoolError::Stopped)?;
        tx.send(cmd).map_err(|_| SpoolError::Stopped)
    }

    /// Starts a sealed file for file `index` of submission `id`.
    pub fn file_writer(&self, id: &str, index: usize) -> Result<SpoolFileWriter, SpoolError> {
        SpoolFileWriter::create(&self.root.join("files"), &self.keys, id, index)
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
        };
        let (done, wait) = oneshot::channel();
        self.send(Command::Accept { record, done })?;
        wait.await
            .map_err(|_| SpoolError::Stopped)?
            .map_err(|e| SpoolError::Io(std::io::Error::other(e)))
    }

    /// Records, durably, that a token read a document (before the document is served).
    pub async fn audit(
        &self,
        token: &str,
        action: &str,
        document_id: &str,
    ) -> Result<(), SpoolError> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Audit {
            entry: AuditEntry {
                at_ms: self.clock.now_ms(),
                token: token.to_owned(),
                action: action.to_owned(),
                document_id: document_id.to_owned(),
            },
            done,
        })?;
        wait.await
            .map_err(|_| SpoolError::Stopped)?
            .map_err(|e| SpoolError::Io(std::io::Error::other(e)))
    }

    /// The newest audit entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, SpoolError> {
        self.read(|c| store::audit_log(c, limit))
    }

    /// The form and received_at of a known submission.
    pub fn form_of(&self, id: &str) -> Result<Option<(String, String)>, SpoolError> {
        self.read(|c| store::form_of(c, id))
    }

    /// How many submissions have come in to be spooled since start.
    pub fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }

    /// Records the outcome of one delivery attempt.
    pub async fn record(&self, id: &str, sink: &str, outcome: Outcome) -> Result<(), SpoolError> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Outcome {
            id: id.to_owned(),
            sink: sink.to_owned(),
            outcome,
            now_ms: self.clock.now_ms(),
            done,
        })?;
        wait.await
            .map_err(|_| SpoolError::Stopped)?
            .map_err(|e| SpoolError::Io(std::io::Error::other(e)))
    }

    /// Puts a submission's dead deliveries back in the queue; returns how many.
    pub async fn requeue_dead(&self, id: &str) -> Result<usize, SpoolError> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Requeue {
            id: id.to_owned(),
            now_ms: self.clock.now_ms(),
            done,
        })?;
        wait.await
            .map_err(|_| SpoolError::Stopped)?
            .map_err(|e| SpoolError::Io(std::io::Error::other(e)))
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, SpoolError> {
        let conn = self.reader.lock().map_err(|_| SpoolError::Stopped)?;
        Ok(f(&conn)?)
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
    pub fn due(&self, sink: &str, limit: usize) -> Result<Vec<DeliveryRow>, SpoolError> {
        let now = self.clock.now_ms();
        self.read(|c| store::due(c, sink, now, limit))
    }

    /// When the next not-yet-due delivery of `sink` becomes due (unix ms), if any.
    pub fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, SpoolError> {
        self.read(|c| store::next_due(c, sink))
    }

    /// Every delivery state of a submission; empty when the id is unknown.
    pub fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, SpoolError> {
        self.read(|c| store::deliveries_of(c, id))
    }

    /// How many (submission, sink) deliveries are not yet delivered or dead.
    pub fn depth(&self) -> Result<i64, SpoolError> {
        self.read(store::depth)
    }

    /// Opens a spooled submission.
    pub fn load(&self, id: &str) -> Result<Submission, SpoolError> {
        let sealed = self
            .read(|c| store::sealed_of(c, id))?
            .ok_or_else(|| SpoolError::NotFound(id.to_owned()))?;
        let json = secureform_crypto::open(&self.keys, &submission_context(id), &sealed)?;
        Ok(serde_json::from_slice(&json)?)
    }

    /// The files of a spooled submission, for a sink to stream.
    pub fn files(&self, id: &str) -> SpoolFiles {
        SpoolFiles::new(self.root.join("files"), Arc::clone(&self.keys), id)
    }

    /// Whether the spool can take writes (for `/readyz`).
    pub fn writable(&self) -> bool {
        let probe = self.root.join(".ready-probe");
        let ok = secureform_crypto::files::write_durable(&probe, b"ok").is_ok();
        let _ = std::fs::remove_file(&probe);
        ok && self.writer.lock().is_ok()
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
        assert!(spool.load(&later.id).is_ok());
        assert!(spool.load(&repeat.id).is_err(), "the repeat was not stored");
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
        assert!(spool.load(&s.id).is_err(), "and so is its sealed payload");
    }

    #[tokio::test]
    async fn the_database_files_are_private_also_in_an_older_spool() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        std::fs::create_dir_all(&root).unwrap();
        // A spool made before: SQLite's own 0644.
        drop(Connection::open(root.join("spool.db")).unwrap());
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
        let due = spool.due("docs", 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].accepted_ms, clock.now_ms());

        let retry_at = clock.now_ms() + 10_000;
        let outcome = Outcome::Retry {
            error: "the server said 451".to_owned(),
            next_attempt_ms: retry_at,
        };
        spool.record(&s.id, "docs", outcome).await.unwrap();
        assert!(spool.due("docs", 10).unwrap().is_empty());
        assert_eq!(spool.next_due_ms("docs").unwrap(), Some(retry_at));

        clock.advance(Duration::from_secs(10));
        let due = spool.due("docs", 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].state, DeliveryState::Retrying);
        assert_eq!(due[0].attempts, 1);
    }
}
