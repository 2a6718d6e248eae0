//! Uploaded files on PostgreSQL: the sealed stream of each file, in rows of `file_segments`.
//!
//! - **Writing**: [`SegmentWriter`] is the sink of the file's [`Sealer`] (the same sealing and
//!   the same context, `spool/<id>/files/<index>`, as a local spool file). It gathers sealed bytes
//!   into a buffer of [`ROW_BYTES`] and inserts it as one row, committed on its own, while the
//!   next row is being sealed: at most two row buffers per upload, whatever the file's size, and
//!   no transaction or pooled connection held while a client is slow. The acceptance's
//!   transaction then checks that every file is complete and commits the submission: the client
//!   hears 2xx only after both.
//! - **Reading**: [`SegmentReader`] fetches the rows one by one (the next while the current one
//!   is read) and an [`Opener`] turns them back into plaintext for the sinks.
//! - **Removing**: with the submission's payload (every sink has it, or it was erased); by the
//!   request when it ends without storing a submission, and by a writer dropped before its file
//!   was whole (a client gone mid-upload); and by the janitor ([`sweep`]), which
//!   removes what those missed: rows of submissions whose payload is gone, and rows no
//!   submission has whose newest row is older than the longest an upload may take plus an hour
//!   (what an instance killed mid-upload, or a database away at the wrong moment, left behind).
//!   Removing rows nobody accepted and accepting a submission take the same advisory lock on its
//!   id, so neither undoes the other.
//!
//! The readers and writers are blocking (`io::Read`, `io::Write`), for the sealing stage and
//! the sinks' blocking threads: each query runs on the spool's runtime and the calling thread
//! waits for its answer on a channel, so a call from anywhere else would block, not panic.

use std::collections::HashSet;
use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use secureform_crypto::{KeyRing, Opener, Sealer, SegmentSpace};
use sqlx::{PgConnection, PgPool};
use tokio::runtime::Handle;

use super::files::file_context;
use super::SpoolError;

/// Sealed bytes per row (a row may end up to one sealed segment longer).
pub(crate) const ROW_BYTES: usize = 1024 * 1024;
/// Room past a full row for the sealed segment lent last (a sealed segment is 64 KiB + 16).
const SPARE: usize = 128 * 1024;
/// The first key of the advisory lock taken on a submission id (its `hashtext` the second) by
/// an acceptance with files and by the removal of rows no submission has.
const UPLOAD_LOCK: i32 = 0x5346_0016;
/// How often the janitor looks for rows to remove.
const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);

/// The files of the spool in PostgreSQL, shared by the writers, the readers and the backend.
pub(crate) struct PgFileStore {
    pool: PgPool,
    /// The runtime the queries of the blocking readers and writers run on.
    runtime: Handle,
    /// Submissions this instance is writing files for whose request has not ended: what an
    /// ended request has to remove (see `UploadGuard`).
    open_uploads: Mutex<HashSet<String>>,
}

impl PgFileStore {
    pub(crate) fn new(pool: PgPool, runtime: Handle) -> Self {
        PgFileStore {
            pool,
            runtime,
            open_uploads: Mutex::new(HashSet::new()),
        }
    }

    fn uploads(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set is never left half-changed: a poisoned lock still holds a good set.
        self.open_uploads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the sealed file `index` of submission `id`. Does no I/O.
    pub(crate) fn writer(
        self: &Arc<Self>,
        keys: &KeyRing,
        id: &str,
        index: usize,
    ) -> Result<Sealer<SegmentWriter>, SpoolError> {
        let index = i32::try_from(index)
            .map_err(|_| SpoolError::Io(io::Error::other("too many files in one submission")))?;
        self.uploads().insert(id.to_owned());
        let writer = SegmentWriter {
            store: Arc::clone(self),
            id: id.to_owned(),
            index,
            next: 0,
            buf: Vec::with_capacity(ROW_BYTES + SPARE),
            lent_at: 0,
            in_flight: None,
            closed: false,
        };
        Ok(Sealer::new(
            keys,
            &file_context(id, index as usize),
            writer,
        )?)
    }

    /// Whether this instance wrote files for `id` whose request has not ended.
    pub(crate) fn has_upload(&self, id: &str) -> bool {
        self.uploads().contains(id)
    }

    /// The request of `id` ended; returns whether it had written files.
    pub(crate) fn end_upload(&self, id: &str) -> bool {
        self.uploads().remove(id)
    }

    /// Opens file `index` of submission `id` as plaintext; `None` when it has no rows (a file
    /// spooled locally by a build from before). Blocking.
    pub(crate) fn open(
        self: &Arc<Self>,
        keys: &KeyRing,
        id: &str,
        index: usize,
    ) -> io::Result<Option<Opener<SegmentReader>>> {
        let file_index = i32::try_from(index).map_err(|_| io::ErrorKind::NotFound)?;
        let mut reader = SegmentReader {
            store: Arc::clone(self),
            id: id.to_owned(),
            index: file_index,
            next: 0,
            buf: Vec::new(),
            pos: 0,
            ahead: None,
            done: false,
        };
        if !reader.next_row()? {
            return Ok(None);
        }
        Ok(Some(Opener::new(keys, &file_context(id, index), reader)?))
    }

    /// Runs `query` on the spool's runtime and waits for it on this (blocking) thread.
    fn run<T: Send + 'static>(
        &self,
        query: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
    ) -> mpsc::Receiver<Result<T, sqlx::Error>> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            // The waiter may be gone (a reader dropped with a row fetched ahead).
            let _ = tx.send(query.await);
        });
        rx
    }
}

fn wait<T>(rx: mpsc::Receiver<Result<T, sqlx::Error>>) -> io::Result<T> {
    match rx.recv() {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(io::Error::other(format!("spool files (PostgreSQL): {e}"))),
        Err(_) => Err(io::Error::other("the spool's runtime stopped")),
    }
}

/// The sink of a file's [`Sealer`]: sealed bytes go into rows of [`ROW_BYTES`], inserted one
/// at a time while the next is filled. Call [`SegmentWriter::close`] after the sealer's
/// `finish`: the last row goes in then.
pub(crate) struct SegmentWriter {
    store: Arc<PgFileStore>,
    id: String,
    index: i32,
    /// The number of the next row.
    next: i32,
    buf: Vec<u8>,
    /// Where the space last lent to the sealer starts.
    lent_at: usize,
    /// The insert under way; it hands its buffer back, to be filled again.
    in_flight: Option<mpsc::Receiver<Result<Vec<u8>, sqlx::Error>>>,
    /// Every row is in: [`SegmentWriter::close`] returned.
    closed: bool,
}

impl SegmentWriter {
    /// Waits for the insert under way; returns its buffer.
    fn wait_in_flight(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self.in_flight.take() {
            Some(rx) => wait(rx).map(Some),
            None => Ok(None),
        }
    }

    /// Inserts the gathered bytes as the next row (after the insert under way is done).
    fn push_row(&mut self) -> io::Result<()> {
        let recycled = self.wait_in_flight()?;
        let fresh = recycled.unwrap_or_else(|| Vec::with_capacity(ROW_BYTES + SPARE));
        let mut row = std::mem::replace(&mut self.buf, fresh);
        let segment = self.next;
        self.next = self
            .next
            .checked_add(1)
            .ok_or_else(|| io::Error::other("a file of too many rows"))?;
        let pool = self.store.pool.clone();
        let id = self.id.clone();
        let index = self.index;
        self.in_flight = Some(self.store.run(async move {
            sqlx::query(
                "INSERT INTO file_segments (submission_id, file_index, segment, sealed)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(index)
            .bind(segment)
            .bind(row.as_slice())
            .execute(&pool)
            .await?;
            row.clear();
            Ok(row)
        }));
        Ok(())
    }

    /// Inserts the last row and waits until every row is committed. Returns how many rows
    /// the file took.
    pub(crate) fn close(mut self) -> io::Result<i32> {
        if !self.buf.is_empty() {
            self.push_row()?;
        }
        self.wait_in_flight()?;
        self.closed = true;
        Ok(self.next)
    }
}

impl Drop for SegmentWriter {
    /// An upload that did not finish (the client went mid-file, sealing failed): once the
    /// insert under way is done, its rows go, unless a submission has the id. A request that
    /// ends after its files were whole removes them through its `UploadGuard` instead.
    fn drop(&mut self) {
        if self.closed || self.next == 0 {
            return;
        }
        let in_flight = self.in_flight.take();
        let pool = self.store.pool.clone();
        let id = std::mem::take(&mut self.id);
        self.store.runtime.spawn(async move {
            if let Some(rx) = in_flight {
                let _ = tokio::task::spawn_blocking(move || rx.recv()).await;
            }
            match remove_unstored(&pool, &id).await {
                Ok(rows) => {
                    tracing::debug!(submission = %id, rows, "rows of an unfinished upload removed");
                }
                // The janitor removes them later.
                Err(e) => {
                    tracing::warn!(submission = %id, error = %e, "removing an unfinished upload failed");
                }
            }
        });
    }
}

impl Write for SegmentWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() >= ROW_BYTES {
            self.push_row()?;
        }
        let n = (ROW_BYTES - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Nothing: rows go in as they fill, and the last one at [`SegmentWriter::close`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SegmentSpace for SegmentWriter {
    fn segment_space(&mut self, len: usize) -> io::Result<&mut [u8]> {
        if self.buf.len() >= ROW_BYTES {
            self.push_row()?;
        }
        if len > SPARE {
            return Err(io::Error::other("a segment larger than a row's spare room"));
        }
        self.lent_at = self.buf.len();
        self.buf.resize(self.lent_at + len, 0);
        Ok(&mut self.buf[self.lent_at..])
    }

    fn segment_written(&mut self, len: usize) -> io::Result<()> {
        self.buf.truncate(self.lent_at + len);
        Ok(())
    }
}

/// The sealed bytes of one file, row after row; the next row is fetched while the current one
/// is read.
pub(crate) struct SegmentReader {
    store: Arc<PgFileStore>,
    id: String,
    index: i32,
    /// The number of the next row to fetch.
    next: i32,
    buf: Vec<u8>,
    pos: usize,
    ahead: Option<mpsc::Receiver<Result<Option<Vec<u8>>, sqlx::Error>>>,
    done: bool,
}

impl SegmentReader {
    fn fetch(&self, segment: i32) -> mpsc::Receiver<Result<Option<Vec<u8>>, sqlx::Error>> {
        let pool = self.store.pool.clone();
        let id = self.id.clone();
        let index = self.index;
        self.store.run(async move {
            sqlx::query_scalar(
                "SELECT sealed FROM file_segments
                 WHERE submission_id = $1 AND file_index = $2 AND segment = $3",
            )
            .bind(&id)
            .bind(index)
            .bind(segment)
            .fetch_optional(&pool)
            .await
        })
    }

    /// Moves to the next row; `false` at the end.
    fn next_row(&mut self) -> io::Result<bool> {
        let rx = match self.ahead.take() {
            Some(rx) => rx,
            None => self.fetch(self.next),
        };
        match wait(rx)? {
            None => {
                self.done = true;
                self.buf = Vec::new();
                self.pos = 0;
                Ok(false)
            }
            Some(row) => {
                self.buf = row;
                self.pos = 0;
                self.next = self
                    .next
                    .checked_add(1)
                    .ok_or_else(|| io::Error::other("a file of too many rows"))?;
                self.ahead = Some(self.fetch(self.next));
                Ok(true)
            }
        }
    }
}

impl Read for SegmentReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done || out.is_empty() || !self.next_row()? {
                return Ok(0);
            }
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Takes the advisory lock of submission `id` until the end of the transaction.
pub(crate) async fn lock_upload(conn: &mut PgConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(UPLOAD_LOCK)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many files of submission `id` are whole: rows numbered from 0 without a gap.
pub(crate) async fn complete_files(conn: &mut PgConnection, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM (
             SELECT file_index FROM file_segments WHERE submission_id = $1
             GROUP BY file_index HAVING MIN(segment) = 0 AND MAX(segment) = COUNT(*) - 1
         ) f",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Removes every row of submission `id`; returns how many.
pub(crate) async fn delete_segments(conn: &mut PgConnection, id: &str) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM file_segments WHERE submission_id = $1")
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Removes the rows of `id` unless a submission `id` is stored (under the upload lock, so an
/// acceptance under way either commits first and keeps them, or finds them gone and fails).
pub(crate) async fn remove_unstored(pool: &PgPool, id: &str) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock_upload(&mut tx, id).await?;
    let stored: Option<i32> = sqlx::query_scalar("SELECT 1 FROM submissions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let removed = match stored {
        Some(_) => 0,
        None => delete_segments(&mut tx, id).await?,
    };
    tx.commit().await?;
    Ok(removed)
}

/// Removes the rows of submission `id`, whose payload is gone, off the caller's path.
pub(crate) fn remove_soon(pool: &PgPool, id: &str) {
    let pool = pool.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let removed = async {
            let mut conn = pool.acquire().await?;
            delete_segments(&mut conn, &id).await
        }
        .await;
        match removed {
            Ok(0) => {}
            Ok(rows) => tracing::debug!(submission = %id, rows, "spool files removed"),
            // The janitor removes them later.
            Err(e) => tracing::warn!(submission = %id, error = %e, "removing spool files failed"),
        }
    });
}

/// One pass of the janitor: removes the rows of submissions whose payload is gone, and the rows
/// no submission has whose newest row is older than `orphan_after_ms` (by the database's
/// clock). Returns how many submissions' rows of each kind it removed.
pub(crate) async fn sweep(
    pool: &PgPool,
    orphan_after_ms: i64,
) -> Result<(usize, usize), sqlx::Error> {
    let done: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT f.submission_id FROM file_segments f
         JOIN submissions s ON s.id = f.submission_id WHERE s.sealed IS NULL",
    )
    .fetch_all(pool)
    .await?;
    for id in &done {
        let mut conn = pool.acquire().await?;
        delete_segments(&mut conn, id).await?;
    }
    let orphaned: Vec<String> = sqlx::query_scalar(
        "SELECT f.submission_id FROM file_segments f
         WHERE NOT EXISTS (SELECT 1 FROM submissions s WHERE s.id = f.submission_id)
         GROUP BY f.submission_id
         HAVING MAX(f.created_ms)
             < (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT - $1",
    )
    .bind(orphan_after_ms)
    .fetch_all(pool)
    .await?;
    let mut removed = 0;
    for id in &orphaned {
        if remove_unstored(pool, id).await? > 0 {
            removed += 1;
        }
    }
    Ok((done.len(), removed))
}

/// Runs the janitor at start and every [`SWEEP_EVERY`] after.
pub(crate) async fn janitor(pool: PgPool, orphan_after_ms: i64) {
    loop {
        match sweep(&pool, orphan_after_ms).await {
            Ok((0, 0)) => {}
            Ok((done, orphaned)) => tracing::info!(
                delivered_or_erased = done,
                never_accepted = orphaned,
                "spool janitor removed the files of submissions"
            ),
            Err(e) => tracing::warn!(error = %e, "spool janitor failed"),
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}
