//! The SQLite backend of the spool: one file under `data_dir/spool`, one writer thread with
//! group commit (`store.rs`), one reader connection.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::audit_sqlite;
use super::backend::SpoolBackend;
use super::idempotency::Acceptance;
use super::store::{self, DeliveryRow, NewSubmission, Outcome};
use super::{files, Command, SpoolError, WriteError};
use crate::audit::{Entry as AuditEntry, NewEntry};

pub(crate) struct SqliteBackend {
    writer: Mutex<mpsc::Sender<Command>>,
    reader: Arc<Mutex<Connection>>,
    root: PathBuf,
}

/// Creates the database file mode 0600 before SQLite does (SQLite would make it 0644, and gives
/// its `-wal` and `-shm` files the database file's mode), and takes group and others' access
/// away from the files of a spool made before.
pub(crate) fn make_db_private(db: &Path) -> std::io::Result<()> {
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

impl SqliteBackend {
    /// Opens (creating when missing) `root/spool.db`, removes what a crash left half-written,
    /// marks open deliveries to unconfigured sinks dead, and starts the writer thread.
    pub(crate) fn open(root: &Path, sinks: &[String], now_ms: i64) -> Result<Self, SpoolError> {
        let db = root.join("spool.db");
        make_db_private(&db)?;
        let write_conn = store::open_writer_connection(&db)?;
        store::migrate(&write_conn)?;
        let orphaned = store::kill_unconfigured(&write_conn, sinks, now_ms)?;
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
        Ok(SqliteBackend {
            writer: Mutex::new(tx),
            reader: Arc::new(Mutex::new(reader)),
            root: root.to_owned(),
        })
    }

    fn send(&self, cmd: Command) -> Result<(), SpoolError> {
        let tx = self.writer.lock().map_err(|_| SpoolError::Stopped)?;
        tx.send(cmd).map_err(|_| SpoolError::Stopped)
    }

    /// Sends a command to the writer and waits for its commit.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, WriteError>>) -> Command,
    ) -> Result<T, SpoolError> {
        let (done, wait) = oneshot::channel();
        self.send(make(done))?;
        Ok(wait.await.map_err(|_| SpoolError::Stopped)??)
    }

    /// Runs a query on the reader connection, on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().map_err(|_| SpoolError::Stopped)?;
            Ok(f(&conn)?)
        })
        .await
        .map_err(|_| SpoolError::Stopped)?
    }
}

#[async_trait]
impl SpoolBackend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn accept(&self, record: NewSubmission) -> Result<Acceptance, SpoolError> {
        self.call(|done| Command::Accept { record, done }).await
    }

    async fn audit(&self, entry: NewEntry) -> Result<(), SpoolError> {
        self.call(|done| Command::Audit { entry, done }).await
    }

    async fn erase(&self, id: &str, now_ms: i64) -> Result<usize, SpoolError> {
        self.call(|done| Command::Erase {
            id: id.to_owned(),
            now_ms,
            done,
        })
        .await
    }

    async fn subject_ids(&self, digests: Vec<Vec<u8>>) -> Result<Vec<String>, SpoolError> {
        self.read(move |c| store::subject_ids(c, &digests)).await
    }

    async fn erasable(&self) -> Result<Vec<(String, String, i64)>, SpoolError> {
        self.read(store::erasable).await
    }

    async fn record(
        &self,
        id: &str,
        sink: &str,
        outcome: Outcome,
        now_ms: i64,
    ) -> Result<(), SpoolError> {
        self.call(|done| Command::Outcome {
            id: id.to_owned(),
            sink: sink.to_owned(),
            outcome,
            now_ms,
            done,
        })
        .await
    }

    async fn requeue_dead(&self, id: &str, now_ms: i64) -> Result<usize, SpoolError> {
        self.call(|done| Command::Requeue {
            id: id.to_owned(),
            now_ms,
            done,
        })
        .await
    }

    async fn purge_keys(&self, before_ms: i64) -> Result<usize, SpoolError> {
        self.call(|done| Command::PurgeKeys { before_ms, done })
            .await
    }

    fn discard(&self, id: String) {
        // A stopped writer is a stopping service: the next start removes the files.
        let _ = self.send(Command::Discard { id });
    }

    async fn due(
        &self,
        sink: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, SpoolError> {
        let sink = sink.to_owned();
        self.read(move |c| store::due(c, &sink, now_ms, limit))
            .await
    }

    async fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, SpoolError> {
        let sink = sink.to_owned();
        self.read(move |c| store::next_due(c, &sink)).await
    }

    async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, SpoolError> {
        let id = id.to_owned();
        self.read(move |c| store::deliveries_of(c, &id)).await
    }

    async fn depth(&self) -> Result<i64, SpoolError> {
        self.read(store::depth).await
    }

    async fn sealed_of(&self, id: &str) -> Result<Option<Vec<u8>>, SpoolError> {
        let id = id.to_owned();
        self.read(move |c| store::sealed_of(c, &id)).await
    }

    async fn audit_newest(&self, limit: usize) -> Result<Vec<AuditEntry>, SpoolError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| audit_sqlite::newest(c, limit)).await
    }

    async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, SpoolError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| audit_sqlite::entries_after(c, after, limit))
            .await
    }

    async fn form_of(&self, id: &str) -> Result<Option<(String, String)>, SpoolError> {
        let id = id.to_owned();
        self.read(move |c| store::form_of(c, &id)).await
    }

    async fn ready(&self) -> bool {
        let root = self.root.clone();
        let probed = tokio::task::spawn_blocking(move || {
            let probe = root.join(".ready-probe");
            let ok = secureform_crypto::files::write_durable(&probe, b"ok").is_ok();
            let _ = std::fs::remove_file(&probe);
            ok
        })
        .await
        .unwrap_or(false);
        probed && self.writer.lock().is_ok()
    }
}
