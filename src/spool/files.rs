//! Uploaded files in the spool: sealed as they stream in, opened as streams for the sinks.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ring::digest;
use secureform_contract::FileSource;
use secureform_crypto::files::{create_private_dir, open_file, sync_dir};
use secureform_crypto::{KeyRing, Sealer};

use super::direct::DirectWriter;
use super::pg_files::{PgFileStore, SegmentWriter};
use super::SpoolError;

pub(super) fn file_context(id: &str, index: usize) -> Vec<u8> {
    format!("spool/{id}/files/{index}").into_bytes()
}

fn file_path(root: &Path, id: &str, index: usize) -> PathBuf {
    root.join(id).join(format!("{index}.sf"))
}

/// Seals one uploaded file chunk by chunk, counting its size and hashing its plaintext.
pub struct SpoolFileWriter {
    target: Target,
    hash: digest::Context,
    size: u64,
}

/// Where the sealed bytes go.
enum Target {
    /// A file under `data_dir/spool/files/<id>/` (the SQLite spool).
    Local {
        /// Writes past the page cache where the filesystem allows (see `direct.rs`).
        sealer: Sealer<DirectWriter>,
        /// The same file, to start its write-back early when it goes through the page cache
        /// (see `seal_chunk`); `None` when it does not.
        handle: Option<File>,
        /// The plaintext offset from which write-back was last started.
        written_back: u64,
        dir: PathBuf,
    },
    /// Rows of `file_segments` (the PostgreSQL spool, see `pg_files.rs`).
    Postgres(Sealer<SegmentWriter>),
}

/// How much a spool file grows between two requests to start writing it back.
const WRITE_BACK_EVERY: u64 = 8 * 1024 * 1024;

impl SpoolFileWriter {
    pub(super) fn create(
        root: &Path,
        keys: &KeyRing,
        id: &str,
        index: usize,
    ) -> Result<Self, SpoolError> {
        let dir = root.join(id);
        create_private_dir(&dir)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file_path(root, id, index))?;
        let handle = file.try_clone()?;
        let writer = DirectWriter::new(file);
        let handle = (!writer.is_direct()).then_some(handle);
        let sealer = Sealer::new(keys, &file_context(id, index), writer)?;
        Ok(SpoolFileWriter {
            target: Target::Local {
                sealer,
                handle,
                written_back: 0,
                dir,
            },
            hash: digest::Context::new(&digest::SHA256),
            size: 0,
        })
    }

    /// Starts file `index` of submission `id` as rows in PostgreSQL. Does no I/O.
    pub(super) fn in_postgres(
        store: &Arc<PgFileStore>,
        keys: &KeyRing,
        id: &str,
        index: usize,
    ) -> Result<Self, SpoolError> {
        Ok(SpoolFileWriter {
            target: Target::Postgres(store.writer(keys, id, index)?),
            hash: digest::Context::new(&digest::SHA256),
            size: 0,
        })
    }

    /// Hashes and seals one chunk of plaintext.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.hash.update(chunk);
        self.seal_chunk(chunk)
    }

    /// Seals one chunk without hashing it (the caller hashes: see [`SpoolFileUpload`]).
    ///
    /// When the file goes through the page cache, every 8 MiB it asks the kernel to start
    /// writing back what was written so far (`POSIX_FADV_DONTNEED` starts write-back of the dirty
    /// pages and drops the clean ones), so the disk works while the upload streams in and the
    /// `fsync` at the end waits only for the tail; the sealed pages also leave the page cache
    /// instead of crowding it.
    ///
    /// In PostgreSQL, each full row of sealed bytes is inserted (see `pg_files.rs`): blocking.
    fn seal_chunk(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.size += chunk.len() as u64;
        match &mut self.target {
            Target::Postgres(sealer) => sealer.write_in_place(chunk)?,
            Target::Local {
                sealer,
                handle,
                written_back,
                ..
            } => {
                sealer.write_in_place(chunk)?;
                if let Some(handle) = handle {
                    if self.size - *written_back >= WRITE_BACK_EVERY {
                        // Sealed offsets are a little larger than plaintext ones: starting at
                        // the plaintext offset covers every page written since the last request.
                        let from = *written_back;
                        *written_back = self.size;
                        // Advice only: a failure changes nothing about durability (`close`
                        // syncs).
                        let _ =
                            rustix::fs::fadvise(&*handle, from, None, rustix::fs::Advice::DontNeed);
                    }
                }
            }
        }
        Ok(())
    }

    /// Seals the last segment and flushes the file and its folder to stable storage (in
    /// PostgreSQL: inserts the last row and waits until every row is committed). Returns
    /// the plaintext size and its SHA-256 (lowercase hex). Blocking: call it off the event loop.
    pub fn finish(self) -> Result<(u64, String), SpoolError> {
        let (size, hash) = self.close()?;
        Ok((size, hex::encode(hash.finish().as_ref())))
    }

    fn close(self) -> Result<(u64, digest::Context), SpoolError> {
        match self.target {
            Target::Local { sealer, dir, .. } => {
                let file = sealer.finish()?.finish()?;
                file.sync_all()?;
                sync_dir(&dir)?;
                if let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
            }
            Target::Postgres(sealer) => {
                sealer.finish()?.close()?;
            }
        }
        Ok((self.size, self.hash))
    }
}

/// How many bytes of an upload are handed to the blocking pool at a time.
const UPLOAD_BATCH_BYTES: usize = 512 * 1024;
/// How many batches may wait for a stage before the event loop stops reading the request.
const UPLOAD_QUEUE: usize = 4;
/// How many batches can be in use at once: queued for a stage, in a stage's hands, gathering.
const UPLOAD_BATCHES: usize = UPLOAD_QUEUE + 2;

type Batch = Arc<Vec<u8>>;

/// A file being sealed into the spool while its request is still being read.
///
/// The event loop copies the file's bytes into batches of 512 KiB and hands each batch to two
/// stages on Tokio's blocking pool: one hashes (SHA-256), the other seals and writes. Each stage
/// works through its queue in order and gives its thread back as soon as the queue is empty, so
/// no thread is held while a client is slow; with the cores for it, reading, hashing and sealing
/// run side by side, and the event loop never blocks on the disk. When a stage has
/// [`UPLOAD_QUEUE`] batches waiting, the event loop stops reading until it catches up.
///
/// The batches are copies, and are used again once both stages are done with them: holding on
/// to the connection's own buffers instead would make the HTTP layer allocate fresh ones for
/// every read, and fresh pages cost the kernel more than the copy does (measured: three to four
/// times the page faults, and no less CPU). Memory: at most [`UPLOAD_BATCHES`] batches per
/// upload, plus the writer's 64 KiB segment and its 2 MiB direct-write buffer (in PostgreSQL, its
/// two row buffers of a little over 1 MiB: see `pg_files.rs`).
pub struct SpoolFileUpload {
    gathering: Vec<u8>,
    /// Batches handed to the stages, oldest first, to be used again when both are done.
    handed_over: VecDeque<Batch>,
    sealing: Stage<SpoolFileWriter>,
    hashing: Stage<digest::Context>,
}

impl SpoolFileUpload {
    pub fn new(writer: SpoolFileWriter) -> Self {
        SpoolFileUpload {
            gathering: Vec::with_capacity(UPLOAD_BATCH_BYTES),
            handed_over: VecDeque::with_capacity(UPLOAD_BATCHES),
            sealing: Stage::new(writer, |w, batch| w.seal_chunk(batch)),
            hashing: Stage::new(digest::Context::new(&digest::SHA256), |h, batch| {
                h.update(batch);
                Ok(())
            }),
        }
    }

    /// Takes some of the file's bytes; every 512 KiB, hands a batch to both stages (waiting
    /// first while either has a full queue).
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), SpoolError> {
        while !bytes.is_empty() {
            let n = (UPLOAD_BATCH_BYTES - self.gathering.len()).min(bytes.len());
            self.gathering.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.gathering.len() == UPLOAD_BATCH_BYTES {
                self.sealing.wait_below(UPLOAD_QUEUE).await?;
                self.hashing.wait_below(UPLOAD_QUEUE).await?;
                let next = self.next_batch_buffer();
                self.hand_over(next)?;
            }
        }
        Ok(())
    }

    /// An empty buffer for the next batch: the oldest one handed over when both stages are done
    /// with it, else a new one.
    fn next_batch_buffer(&mut self) -> Vec<u8> {
        if let Some(oldest) = self.handed_over.pop_front() {
            match Arc::try_unwrap(oldest) {
                Ok(mut free) => {
                    free.clear();
                    return free;
                }
                Err(busy) if self.handed_over.len() + 1 < UPLOAD_BATCHES => {
                    self.handed_over.push_front(busy);
                }
                // More batches than can be in use: let this one go with its last user.
                Err(_) => {}
            }
        }
        Vec::with_capacity(UPLOAD_BATCH_BYTES)
    }

    /// Hands the gathered batch to both stages and starts gathering into `next`.
    fn hand_over(&mut self, next: Vec<u8>) -> Result<(), SpoolError> {
        let batch: Batch = Arc::new(std::mem::replace(&mut self.gathering, next));
        self.sealing.push(Arc::clone(&batch))?;
        self.hashing.push(Arc::clone(&batch))?;
        self.handed_over.push_back(batch);
        Ok(())
    }

    /// Hands over what is left, waits for both stages, seals the last segment and flushes the
    /// file to stable storage (see [`SpoolFileWriter::finish`]). Returns the size and the
    /// SHA-256.
    pub async fn finish(mut self) -> Result<(u64, String), SpoolError> {
        if !self.gathering.is_empty() {
            self.hand_over(Vec::new())?;
        }
        let hash = self.hashing.wait_done().await?;
        let writer = self.sealing.wait_done().await?;
        tokio::task::spawn_blocking(move || {
            let (size, _) = writer.close()?;
            Ok((size, hex::encode(hash.finish().as_ref())))
        })
        .await
        .map_err(|e| SpoolError::Io(io::Error::other(format!("the sealing task failed: {e}"))))?
    }
}

/// One stage of an upload: a state (the sealer, the hash) that takes batches in order on the
/// blocking pool, one thread at a time, only while there is work.
struct Stage<S> {
    shared: Arc<StageShared<S>>,
}

struct StageShared<S> {
    inner: Mutex<StageInner<S>>,
    /// Signalled each time the worker finishes a batch or stops.
    progress: tokio::sync::Notify,
    process: fn(&mut S, &[u8]) -> Result<(), SpoolError>,
}

struct StageInner<S> {
    queue: VecDeque<Batch>,
    /// The state, when no worker holds it.
    state: Option<S>,
    /// A worker is draining the queue.
    running: bool,
    /// Why the stage failed; it takes no more batches.
    failed: Option<String>,
}

impl<S: Send + 'static> Stage<S> {
    fn new(state: S, process: fn(&mut S, &[u8]) -> Result<(), SpoolError>) -> Self {
        Stage {
            shared: Arc::new(StageShared {
                inner: Mutex::new(StageInner {
                    queue: VecDeque::new(),
                    state: Some(state),
                    running: false,
                    failed: None,
                }),
                progress: tokio::sync::Notify::new(),
                process,
            }),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, StageInner<S>>, SpoolError> {
        self.shared
            .inner
            .lock()
            .map_err(|_| stage_failed("a stage panicked"))
    }

    /// Queues a batch, starting a worker when none is running.
    fn push(&self, batch: Batch) -> Result<(), SpoolError> {
        let mut inner = self.lock()?;
        if let Some(why) = &inner.failed {
            return Err(stage_failed(why));
        }
        inner.queue.push_back(batch);
        if !inner.running {
            inner.running = true;
            let shared = Arc::clone(&self.shared);
            drop(inner);
            tokio::task::spawn_blocking(move || drain(&shared));
        }
        Ok(())
    }

    /// Waits until fewer than `limit` batches are queued.
    async fn wait_below(&self, limit: usize) -> Result<(), SpoolError> {
        loop {
            let progressed = self.shared.progress.notified();
            {
                let inner = self.lock()?;
                if let Some(why) = &inner.failed {
                    return Err(stage_failed(why));
                }
                if inner.queue.len() < limit {
                    return Ok(());
                }
            }
            progressed.await;
        }
    }

    /// Waits until every batch is processed and takes the state back.
    async fn wait_done(&self) -> Result<S, SpoolError> {
        loop {
            let progressed = self.shared.progress.notified();
            {
                let mut inner = self.lock()?;
                if let Some(why) = &inner.failed {
                    return Err(stage_failed(why));
                }
                if !inner.running && inner.queue.is_empty() {
                    return inner
                        .state
                        .take()
                        .ok_or_else(|| stage_failed("the stage lost its state"));
                }
            }
            progressed.await;
        }
    }
}

/// A stage's worker: takes the state, processes batches until the queue is empty, gives the
/// state back.
fn drain<S>(shared: &StageShared<S>) {
    let _unwinding = FailOnUnwind(shared);
    let Ok(mut inner) = shared.inner.lock() else {
        return;
    };
    let Some(mut state) = inner.state.take() else {
        inner.running = false;
        inner.failed = Some("the stage lost its state".to_owned());
        shared.progress.notify_waiters();
        return;
    };
    while let Some(batch) = inner.queue.pop_front() {
        drop(inner);
        let result = (shared.process)(&mut state, &batch);
        let Ok(relocked) = shared.inner.lock() else {
            return;
        };
        inner = relocked;
        if let Err(e) = result {
            inner.failed = Some(e.to_string());
            inner.queue.clear();
        }
        shared.progress.notify_waiters();
    }
    inner.state = Some(state);
    inner.running = false;
    shared.progress.notify_waiters();
}

/// Should a stage's worker ever unwind (a bug: nothing in hashing or sealing panics on input),
/// marks the stage failed and wakes its waiters, so the request gets an answer instead of
/// waiting for ever. Declared first in `drain`, it is dropped after the lock guard.
struct FailOnUnwind<'a, S>(&'a StageShared<S>);

impl<S> Drop for FailOnUnwind<'_, S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut inner = self
                .0
                .inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            inner.running = false;
            inner.failed = Some("a stage's worker panicked".to_owned());
            inner.queue.clear();
            self.0.progress.notify_waiters();
        }
    }
}

fn stage_failed(why: &str) -> SpoolError {
    SpoolError::Io(io::Error::other(format!(
        "sealing the upload failed: {why}"
    )))
}

/// Removes spool files on a thread of its own. Deleting a large file can take long — on a
/// filesystem mounted with `discard`, unlinking waits for the device to trim every block — and
/// neither the writer's commits (which answer clients) nor the event loop should wait for it.
/// What a crash leaves behind is removed at the next start (`remove_orphan_files`).
#[derive(Clone)]
pub(crate) struct Janitor {
    root: PathBuf,
    tx: std::sync::mpsc::Sender<String>,
}

impl Janitor {
    pub(crate) fn start(root: PathBuf) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let thread_root = root.clone();
        std::thread::Builder::new()
            .name("spool-janitor".to_owned())
            .spawn(move || {
                for id in rx {
                    discard(&thread_root, &id);
                }
            })?;
        Ok(Janitor { root, tx })
    }

    /// Removes the files of submission `id`, soon.
    pub(crate) fn remove(&self, id: &str) {
        if let Err(unsent) = self.tx.send(id.to_owned()) {
            // The janitor is gone (it cannot stop before the spool): remove them here.
            discard(&self.root, &unsent.0);
        }
    }
}

/// Removes the spool files of one submission.
fn discard(root: &Path, id: &str) {
    if id.bytes().all(|b| b.is_ascii_alphanumeric()) && !id.is_empty() {
        let _ = fs::remove_dir_all(root.join(id));
    }
}

/// The files of one spooled submission, as a [`FileSource`] for the sinks.
pub struct SpoolFiles {
    root: PathBuf,
    keys: Arc<KeyRing>,
    id: String,
    /// The PostgreSQL spool's files; `None` on SQLite.
    postgres: Option<Arc<PgFileStore>>,
}

impl SpoolFiles {
    pub(super) fn new(root: PathBuf, keys: Arc<KeyRing>, id: &str) -> Self {
        SpoolFiles {
            root,
            keys,
            id: id.to_owned(),
            postgres: None,
        }
    }

    pub(super) fn in_postgres(mut self, store: &Arc<PgFileStore>) -> Self {
        self.postgres = Some(Arc::clone(store));
        self
    }
}

impl FileSource for SpoolFiles {
    /// Blocking (the sinks read files on blocking threads). On PostgreSQL, a file without rows
    /// is looked for under `data_dir/spool/files`, where a build from before spooled it.
    fn open(&self, index: usize) -> io::Result<Box<dyn Read + Send>> {
        if let Some(store) = &self.postgres {
            if let Some(opener) = store.open(&self.keys, &self.id, index)? {
                return Ok(Box::new(opener));
            }
        }
        let path = file_path(&self.root, &self.id, index);
        let opener = open_file(&self.keys, &file_context(&self.id, index), &path)?;
        Ok(Box::new(opener))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    const ID: &str = "01JQ0000000000000000000000";

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect()
    }

    fn read_back(root: &Path, keys: &Arc<KeyRing>) -> Vec<u8> {
        let files = SpoolFiles::new(root.to_path_buf(), Arc::clone(keys), ID);
        let mut back = Vec::new();
        files.open(0).unwrap().read_to_end(&mut back).unwrap();
        back
    }

    /// Chunks of odd sizes, smaller and larger than a batch, so batches end mid-chunk and
    /// mid-segment; more batches than can be in use at once, so the event loop has to wait for
    /// the stages and batch buffers are used again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_in_odd_chunks_is_sealed_whole_and_hashed() {
        for chunk_size in [7919, 1_300_001] {
            upload_in_chunks(chunk_size).await;
        }
    }

    async fn upload_in_chunks(chunk_size: usize) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::generate().unwrap());
        let root = dir.path().join("files");
        let data = sample(5 * 1024 * 1024 + 123);
        let writer = SpoolFileWriter::create(&root, &keys, ID, 0).unwrap();
        let mut upload = SpoolFileUpload::new(writer);
        for chunk in data.chunks(chunk_size) {
            upload.write(chunk).await.unwrap();
        }
        let (size, sha256) = upload.finish().await.unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(sha256, hex::encode(sha2::Sha256::digest(&data)));
        assert!(
            read_back(&root, &keys) == data,
            "the file reads back as sent"
        );
    }

    #[tokio::test]
    async fn a_small_upload_and_the_blocking_writer_agree() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::generate().unwrap());
        let data = sample(1000);
        let root = dir.path().join("a");
        let mut upload =
            SpoolFileUpload::new(SpoolFileWriter::create(&root, &keys, ID, 0).unwrap());
        upload.write(&data).await.unwrap();
        let via_upload = upload.finish().await.unwrap();
        let other = dir.path().join("b");
        let mut writer = SpoolFileWriter::create(&other, &keys, ID, 0).unwrap();
        writer.write_chunk(&data).unwrap();
        assert_eq!(via_upload, writer.finish().unwrap());
        assert_eq!(read_back(&root, &keys), data);
    }

    /// A worker that panics (a bug) fails the upload instead of leaving it waiting for ever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_stage_fails_the_upload_instead_of_hanging() {
        let stage: Stage<u32> = Stage::new(0, |_, _| panic!("a bug in a stage"));
        stage.push(Arc::new(b"x".to_vec())).unwrap();
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), stage.wait_done());
        let err = waited.await.expect("no hang").err().unwrap();
        assert!(err.to_string().contains("panicked"), "{err}");
    }

    /// A stage whose work fails makes the next hand-over and the finish fail, not hang.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_stage_fails_the_upload() {
        let stage: Stage<u32> =
            Stage::new(0, |_, _| Err(SpoolError::Io(io::Error::other("disk full"))));
        stage.push(Arc::new(b"x".to_vec())).unwrap();
        let err = stage.wait_done().await.err().unwrap();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(stage.push(Arc::new(Vec::new())).is_err());
        assert!(stage.wait_below(1).await.is_err());
    }
}
