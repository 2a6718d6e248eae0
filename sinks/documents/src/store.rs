//! The on-disk store: writing a submission's items, listing, and reading them back.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use rand::Rng;
use secureform_contract::{FileSource, Submission};
use secureform_crypto::files::{
    create_private_dir, open_file, seal_to_file_unsynced_with, sync_dir,
};
use secureform_crypto::pgp::{self, Recipients, Signer};
use secureform_crypto::{KeyRing, Opener, SealError};
use serde::{Deserialize, Serialize};

use crate::manifest;
use crate::sync::FlushGroup;

/// What the store says about a submission without opening it: `docs list` and the API's listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    /// The submission id (a ULID), also the document's folder name.
    pub id: String,
    /// The form the submission was posted to.
    pub form: String,
    /// When the submission was received: RFC 3339, UTC, whole seconds.
    pub received_at: String,
    /// How many files the submission has.
    pub files: usize,
    /// Whether the items are PGP-encrypted inside the seal (only a recipient can read them).
    pub pgp: bool,
}

/// Errors of the store. Messages carry ids and paths inside the store, never content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the store's folder failed (a full disk, permissions…); worth retrying.
    #[error("I/O in the Documents store: {0}")]
    Io(#[from] io::Error),
    /// An item could not be sealed or opened: altered, moved, or sealed under an unknown key.
    #[error("sealing: {0}")]
    Seal(#[from] SealError),
    /// A file of the submission could not be read from its source (the spool); permanent.
    #[error("reading a file of the submission: {0}")]
    Source(io::Error),
    /// OpenPGP encryption for the recipients, or decryption with the secret key, failed.
    #[error("OpenPGP: {0}")]
    Pgp(String),
    /// No document (or no such item of it) has this id in the store.
    #[error("no document {0}")]
    NotFound(String),
    /// The document is PGP-encrypted and was read without the recipient's secret key.
    #[error("document {0} is PGP-encrypted: pass the recipient's secret key (--pgp-key)")]
    NeedsPgpKey(String),
    /// A document's metadata or submission opened but is not the JSON expected.
    #[error("document metadata is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The id is not a well-formed submission id, so it names no place in the store.
    #[error("not a submission id: {0:?}")]
    BadId(String),
    /// A write was asked of a store opened only for reading.
    #[error("this Documents store was opened for reading only")]
    ReadOnly,
    /// A document is not whole or not consistent (the text says how), or a data key could not
    /// be made.
    #[error("damaged: {0}")]
    Damaged(&'static str),
}

/// The Documents store rooted at one folder.
pub struct DocumentStore {
    pub(crate) root: PathBuf,
    pub(crate) keys: Arc<KeyRing>,
    /// Present when this store is the one a sink writes to (see [`DocumentStore::open`]).
    manifest: Option<manifest::Writer>,
    /// Damaged documents the last listing skipped: a gauge for the metrics.
    pub(crate) damaged: AtomicU64,
    /// Makes staged items durable: one `syncfs` shared by every put waiting for it.
    items_flush: FlushGroup,
    /// Makes renames into the root durable: one `fsync` of the root shared likewise.
    names_flush: FlushGroup,
    /// Where each document's data key is kept, wrapped by the key-encryption key (see
    /// [`DocumentStore::with_data_keys`]); `None`: items are sealed under the key-encryption key
    /// itself, as before data keys existed.
    data_keys: Option<PathBuf>,
    /// The documents this store is erasing now: a read that fails meanwhile is of a document
    /// going away, not of a damaged one (see [`DocumentStore::is_being_erased`]).
    erasing: Mutex<HashSet<String>>,
}

/// One item held open (see [`DocumentStore::pin_item`]): each [`PinnedItem::reader`] reads it
/// from its start, authenticating as it goes.
pub struct PinnedItem {
    file: Arc<fs::File>,
    ring: Arc<KeyRing>,
    context: Vec<u8>,
}

impl PinnedItem {
    /// A new reader from the item's start. Readers do not share a position (each reads with
    /// positioned reads), so several may run one after the other or at once.
    pub fn reader(&self) -> Result<impl Read + Send + 'static, StoreError> {
        let at = AtReader {
            file: Arc::clone(&self.file),
            pos: 0,
        };
        Ok(Opener::new(
            &self.ring,
            &self.context,
            io::BufReader::with_capacity(256 * 1024, at),
        )?)
    }
}

/// Reads a shared file from its own position.
struct AtReader {
    file: Arc<fs::File>,
    pos: u64,
}

impl Read for AtReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The file beside each erased document's place: one id a line, so that `verify` does not report
/// an erased document as missing.
pub(crate) const ERASED: &str = "erased";

/// What an erasure removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// The erased document's id.
    pub id: String,
    /// SHA-256 (hex) over the sealed items as they were stored, in the order `meta`,
    /// `submission`, `files/0`, …: what a deletion report names.
    pub sealed_sha256: String,
    /// Whether the document had a data key that was destroyed (crypto-shredded); `false` for a
    /// document sealed before data keys existed, whose files were only removed.
    pub shredded: bool,
}

fn context(id: &str, item: &str) -> Vec<u8> {
    format!("documents/{id}/{item}").into_bytes()
}

/// Ids are ULIDs: 26 characters of Crockford base32. Checking keeps every path inside the store.
pub(crate) fn check_id(id: &str) -> Result<(), StoreError> {
    if id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(StoreError::BadId(id.chars().take(40).collect()))
    }
}

impl DocumentStore {
    /// Opens (creating when missing, mode 0700) the store at `root` for the sink that writes to
    /// it: also opens its manifest, creating it for a store written before manifests existed.
    /// One process writes a store: open it this way once, for its sink.
    pub fn open(root: &Path, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        create_private_dir(root)?;
        let mut store = Self::open_reader(root, keys);
        // A store from before manifests: its manifest starts with what it already holds.
        let existing: Vec<String> = if root.join(manifest::FILE).exists() {
            Vec::new()
        } else {
            let ids = store.list(None)?.documents.into_iter().map(|d| d.id);
            ids.collect()
        };
        if !existing.is_empty() {
            tracing::info!(
                documents = existing.len(),
                "writing the Documents store's manifest"
            );
        }
        let writer = manifest::Writer::open(root, Arc::clone(&store.keys), &existing)?;
        store.manifest = Some(writer);
        Ok(store)
    }

    /// Opens the store at `root` for reading (`docs`, the API): creates and changes nothing; a
    /// store that does not exist yet lists as empty.
    pub fn open_reader(root: &Path, keys: Arc<KeyRing>) -> Self {
        DocumentStore {
            root: root.to_path_buf(),
            keys,
            manifest: None,
            damaged: AtomicU64::new(0),
            items_flush: FlushGroup::default(),
            names_flush: FlushGroup::default(),
            data_keys: None,
            erasing: Mutex::default(),
        }
    }

    /// Seals each new document's items under a data key of its own, kept wrapped by the
    /// key-encryption key in `dir` as `<id>.key` (created 0700 when missing). Erasing a document
    /// destroys that file first, so that no copy of the store taken before opens the document
    /// again. Keep `dir` out of the backups of the store (by default it lies beside the key
    /// file). Documents sealed before keep opening under the key-encryption key.
    pub fn with_data_keys(mut self, dir: PathBuf) -> Self {
        self.data_keys = Some(dir);
        self
    }

    pub(crate) fn data_keys_dir(&self) -> Option<&Path> {
        self.data_keys.as_deref()
    }

    fn data_key_path(&self, id: &str) -> Option<PathBuf> {
        self.data_keys.as_ref().map(|d| d.join(format!("{id}.key")))
    }

    /// The ring a new document's items are sealed with: its data key (made and written durably
    /// when missing, reused when an earlier attempt left one), or the key-encryption key.
    fn sealing_ring(&self, id: &str) -> Result<Arc<KeyRing>, StoreError> {
        let (Some(dir), Some(path)) = (self.data_keys.as_ref(), self.data_key_path(id)) else {
            return Ok(Arc::clone(&self.keys));
        };
        let ctx = context(id, "key");
        match fs::read(&path) {
            Ok(wrapped) => return Ok(Arc::new(self.keys.open_data_key(&ctx, &wrapped)?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        create_private_dir(dir)?;
        let (ring, wrapped) = self
            .keys
            .new_data_key(&ctx)
            .map_err(|_| StoreError::Damaged("the system random generator failed"))?;
        let suffix: u64 = rand::thread_rng().gen();
        let tmp = dir.join(format!(".{id}-{suffix:016x}.tmp"));
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&wrapped)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(dir)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(Arc::new(ring))
    }

    /// The ring a stored document's items open with: its data key when it has one (a document
    /// whose data key was destroyed then fails as sealed under an unknown key), else the
    /// key-encryption key.
    fn opening_ring(&self, id: &str) -> Result<Arc<KeyRing>, StoreError> {
        if let Some(path) = self.data_key_path(id) {
            match fs::read(&path) {
                Ok(wrapped) => {
                    return Ok(Arc::new(
                        self.keys.open_data_key(&context(id, "key"), &wrapped)?,
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Arc::clone(&self.keys))
    }

    /// Erases a document by crypto-shredding: its data key is removed and the removal made
    /// durable (`fsync` of the key folder) first, then the sealed items, then the erasure is
    /// recorded (so `verify` does not call the document missing). The items' hash is taken
    /// before anything is removed, for the deletion report.
    pub fn erase(&self, id: &str) -> Result<Erased, StoreError> {
        check_id(id)?;
        self.erasing_set().insert(id.to_owned());
        let result = self.erase_now(id);
        self.erasing_set().remove(id);
        result
    }

    /// Whether this store is erasing `id` at this moment: a reader whose item failed to open
    /// or authenticate answers "not found" then, not "damaged". (An erasure by another process,
    /// `secureform docs delete`, is seen only once the document's folder is gone.)
    pub fn is_being_erased(&self, id: &str) -> bool {
        self.erasing_set().contains(id)
    }

    fn erasing_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set holds no invariant a panicking holder could break.
        self.erasing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn erase_now(&self, id: &str) -> Result<Erased, StoreError> {
        let folder = self.root.join(id);
        if !folder.join("meta.sf").exists() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let sealed_sha256 = self.sealed_hash(id)?;
        let mut shredded = false;
        if let (Some(dir), Some(path)) = (self.data_keys.as_ref(), self.data_key_path(id)) {
            match fs::remove_file(&path) {
                Ok(()) => {
                    sync_dir(dir)?;
                    shredded = true;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Out of the listing at once (a rename is atomic), then removed.
        let suffix: u64 = rand::thread_rng().gen();
        let doomed = self.root.join(format!(".erasing-{id}-{suffix:016x}"));
        fs::rename(&folder, &doomed)?;
        sync_dir(&self.root)?;
        fs::remove_dir_all(&doomed)?;
        let mut log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(self.root.join(ERASED))?;
        log.write_all(format!("{id}\n").as_bytes())?;
        log.sync_all()?;
        sync_dir(&self.root)?;
        Ok(Erased {
            id: id.to_owned(),
            sealed_sha256,
            shredded,
        })
    }

    /// SHA-256 over a document's sealed items as stored (nothing is opened).
    pub fn sealed_hash(&self, id: &str) -> Result<String, StoreError> {
        use sha2::{Digest, Sha256};
        check_id(id)?;
        let folder = self.root.join(id);
        let meta = self.meta(id)?;
        let mut items = vec![folder.join("meta.sf"), folder.join("submission.sf")];
        items.extend((0..meta.files).map(|n| folder.join("files").join(format!("{n}.sf"))));
        let mut h = Sha256::new();
        for item in items {
            match fs::File::open(&item) {
                Ok(mut f) => {
                    io::copy(&mut f, &mut h)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    /// The ids erased from this store (see [`DocumentStore::erase`]).
    pub fn erased_ids(&self) -> Result<Vec<String>, StoreError> {
        match fs::read_to_string(self.root.join(ERASED)) {
            Ok(text) => Ok(text
                .lines()
                .filter(|l| check_id(l).is_ok())
                .map(str::to_owned)
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a submission and its files, unless a document with its id is already complete.
    ///
    /// The items are sealed into a staging folder without syncing each; one flush of the
    /// filesystem (shared with the puts running at the same time) makes them all durable, the
    /// folder is renamed into place, and one `fsync` of the root (shared likewise) makes the
    /// name durable. Only then does `put` return.
    pub fn put(
        &self,
        submission: &Submission,
        files: &dyn FileSource,
        recipients: Option<&Recipients>,
        signer: Option<&Signer>,
    ) -> Result<(), StoreError> {
        let id = submission.id.as_str();
        check_id(id)?;
        let manifest = self.manifest.as_ref().ok_or(StoreError::ReadOnly)?;
        let target = self.root.join(id);
        if target.join("meta.sf").exists() {
            return Ok(());
        }
        let suffix: u64 = rand::thread_rng().gen();
        let staging = self.root.join(format!(".staging-{id}-{suffix:016x}"));
        let result = self
            .write_items(&staging, submission, files, recipients, signer)
            // Recorded before the rename, durable with the items: what is in place is listed.
            .and_then(|()| manifest.append(id).map_err(StoreError::from))
            .and_then(|()| {
                self.items_flush
                    .flush(|| sync_filesystem(&self.root))
                    .map_err(StoreError::from)
            });
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        match fs::rename(&staging, &target) {
            Ok(()) => {}
            // A concurrent delivery of the same id finished first: keep its copy.
            Err(_) if target.join("meta.sf").exists() => {
                let _ = fs::remove_dir_all(&staging);
                return Ok(());
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e.into());
            }
        }
        self.names_flush.flush(|| sync_dir(&self.root))?;
        Ok(())
    }

    fn write_items(
        &self,
        dir: &Path,
        submission: &Submission,
        files: &dyn FileSource,
        recipients: Option<&Recipients>,
        signer: Option<&Signer>,
    ) -> Result<(), StoreError> {
        let id = submission.id.as_str();
        // A folder costs an inode like an item: only submissions with files get `files/`.
        create_private_dir(dir)?;
        let ring = self.sealing_ring(id)?;
        let json = zeroize::Zeroizing::new(serde_json::to_vec(submission)?);
        self.write_item(
            &ring,
            dir,
            id,
            "submission",
            &mut &json[..],
            recipients,
            signer,
        )?;
        if !submission.files.is_empty() {
            create_private_dir(&dir.join("files"))?;
            for index in 0..submission.files.len() {
                let mut reader = files.open(index).map_err(StoreError::Source)?;
                let item = format!("files/{index}");
                self.write_item(&ring, dir, id, &item, &mut reader, recipients, signer)?;
            }
        }
        let meta = DocumentMeta {
            id: id.to_owned(),
            form: submission.form.clone(),
            received_at: submission.received_at.clone(),
            files: submission.files.len(),
            pgp: recipients.is_some(),
        };
        let meta = serde_json::to_vec(&meta)?;
        let path = dir.join("meta.sf");
        seal_to_file_unsynced_with(&self.keys, &context(id, "meta"), &path, |w| {
            io::copy(&mut &meta[..], w)
        })?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn write_item(
        &self,
        ring: &KeyRing,
        dir: &Path,
        id: &str,
        item: &str,
        input: &mut dyn Read,
        recipients: Option<&Recipients>,
        signer: Option<&Signer>,
    ) -> Result<(), StoreError> {
        let path = dir.join(format!("{item}.sf"));
        let ctx = context(id, item);
        match recipients {
            None => {
                seal_to_file_unsynced_with(ring, &ctx, &path, |w| {
                    io::copy(&mut SourceReader(input), w)
                })
                .map_err(unwrap_source)?;
            }
            Some(recipients) => {
                seal_to_file_unsynced_with(ring, &ctx, &path, |w| {
                    pgp::encrypt(recipients, signer, false, &mut SourceReader(input), w)
                        .map_err(|e| io::Error::other(StoreError::Pgp(e.to_string())))
                })
                .map_err(unwrap_source)?;
            }
        }
        Ok(())
    }

    /// One document's metadata.
    pub fn meta(&self, id: &str) -> Result<DocumentMeta, StoreError> {
        check_id(id)?;
        let path = self.root.join(id).join("meta.sf");
        if !path.exists() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let mut bytes = Vec::new();
        open_file(&self.keys, &context(id, "meta"), &path)?.read_to_end(&mut bytes)?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Streams one item's content as stored inside the seal: the submission JSON or a file's
    /// bytes, or, for a PGP document, the OpenPGP message.
    pub fn open_item(&self, id: &str, item: DocumentItem) -> Result<impl Read, StoreError> {
        self.pin_item(id, item)?.reader()
    }

    /// Holds one item open, its sealed file and its key, so that it can be read through more
    /// than once (checked, then served) even if the document is erased in between: the erasure
    /// removes the key file and the item's name, not what is already open.
    pub fn pin_item(&self, id: &str, item: DocumentItem) -> Result<PinnedItem, StoreError> {
        check_id(id)?;
        let name = match item {
            DocumentItem::Submission => "submission".to_owned(),
            DocumentItem::File(n) => format!("files/{n}"),
        };
        let path = self.root.join(id).join(format!("{name}.sf"));
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        let ring = self.opening_ring(id)?;
        Ok(PinnedItem {
            file: Arc::new(file),
            ring,
            context: context(id, &name),
        })
    }

    /// Reads one item through to its end, keeping nothing: fails unless every segment
    /// authenticates; returns the item's length as stored inside the seal.
    pub fn authenticate(&self, id: &str, item: DocumentItem) -> Result<u64, StoreError> {
        let mut sealed = self.open_item(id, item)?;
        Ok(io::copy(&mut sealed, &mut io::sink())?)
    }

    /// Writes one item's plaintext into `out`; PGP documents need the recipient's secret key.
    pub fn read_item(
        &self,
        id: &str,
        item: DocumentItem,
        pgp_key: Option<&Path>,
        out: &mut dyn Write,
    ) -> Result<(), StoreError> {
        let meta = self.meta(id)?;
        let mut sealed = self.open_item(id, item)?;
        if meta.pgp {
            let key = pgp_key.ok_or_else(|| StoreError::NeedsPgpKey(id.to_owned()))?;
            pgp::decrypt(key, None, &mut sealed, out)
                .map_err(|e| StoreError::Pgp(e.to_string()))?;
        } else {
            io::copy(&mut sealed, out)?;
        }
        Ok(())
    }
}

/// Flushes every file and folder of the filesystem holding `root` to stable storage:
/// `syncfs(2)`, which reports write-back errors since Linux 5.8.
fn sync_filesystem(root: &Path) -> io::Result<()> {
    let dir = fs::File::open(root)?;
    rustix::fs::syncfs(&dir)?;
    Ok(())
}

/// One item of a document.
#[derive(Clone, Copy, Debug)]
pub enum DocumentItem {
    /// The normalized submission, as JSON (`submission.sf`).
    Submission,
    /// File `n` of the submission's `files` array (`files/<n>.sf`).
    File(usize),
}

/// Reads the submission's files from the spool, marking its errors as the source's: only those
/// are permanent, while an error writing the store (a full disk) is worth retrying.
struct SourceReader<'a>(&'a mut dyn Read);

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::other(StoreError::Source(e)))
    }
}

/// Brings a `StoreError` carried through an `io::Error` back out.
fn unwrap_source(e: SealError) -> StoreError {
    match e {
        SealError::Io(io) => match io.downcast::<StoreError>() {
            Ok(inner) => inner,
            Err(io) => StoreError::Io(io),
        },
        other => StoreError::Seal(other),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use secureform_contract::{Fields, FileMeta, MemoryFiles, Source};

    /// A submission with one 200 KiB file (several segments); `seed` makes its id.
    pub(crate) fn submission(seed: u64) -> Submission {
        Submission {
            id: format!("01J{seed:023}"),
            form: "contact".into(),
            received_at: "2026-12-05T10:00:00Z".into(),
            source: Source::Multipart,
            fields: Fields::new(),
            files: vec![FileMeta {
                field: "f".into(),
                filename: "f.bin".into(),
                content_type: "application/octet-stream".into(),
                size: 200 * 1024,
                sha256: String::new(),
            }],
        }
    }

    pub(crate) fn file_bytes() -> Vec<u8> {
        (0..200 * 1024u32).map(|i| (i % 251) as u8).collect()
    }

    /// A store in a temporary folder holding `n` documents.
    pub(crate) fn store_with(n: u64) -> (tempfile::TempDir, DocumentStore) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::generate().unwrap());
        let store = DocumentStore::open(dir.path(), keys).unwrap();
        for seed in 0..n {
            let files = MemoryFiles(vec![file_bytes()]);
            store.put(&submission(seed), &files, None, None).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn a_reader_store_creates_nothing_and_cannot_put() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let keys = Arc::new(KeyRing::generate().unwrap());
        let reader = DocumentStore::open_reader(&root, keys);
        assert!(reader.list(None).unwrap().documents.is_empty());
        let files = MemoryFiles(vec![file_bytes()]);
        let err = reader.put(&submission(1), &files, None, None).unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly));
        assert!(!root.exists());
    }

    #[test]
    fn a_store_from_before_manifests_gets_one_listing_its_documents() {
        let (dir, store) = store_with(2);
        let keys = Arc::clone(&store.keys);
        drop(store);
        fs::remove_file(dir.path().join(manifest::FILE)).unwrap();
        let reader = DocumentStore::open_reader(dir.path(), Arc::clone(&keys));
        assert!(reader.verify().unwrap().no_manifest);
        let store = DocumentStore::open(dir.path(), keys).unwrap();
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.intact, 2);
    }

    #[test]
    fn an_erased_document_does_not_open_from_a_copy_taken_before() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let keys_dir = dir.path().join("data-keys");
        let keys = Arc::new(KeyRing::generate().unwrap());
        let store = DocumentStore::open(&root, Arc::clone(&keys))
            .unwrap()
            .with_data_keys(keys_dir.clone());
        for seed in 0..2 {
            let files = MemoryFiles(vec![file_bytes()]);
            store.put(&submission(seed), &files, None, None).unwrap();
        }
        let (gone, kept) = (submission(0).id, submission(1).id);
        assert!(keys_dir.join(format!("{gone}.key")).exists());
        // The backup: a copy of the store taken before the erasure.
        let copy = dir.path().join("copy");
        let status = std::process::Command::new("cp")
            .args(["-a", root.to_str().unwrap(), copy.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        let before = store.sealed_hash(&gone).unwrap();
        let erased = store.erase(&gone).unwrap();
        assert!(erased.shredded);
        assert_eq!(erased.sealed_sha256, before);
        assert!(!keys_dir.join(format!("{gone}.key")).exists());
        assert!(!root.join(&gone).exists());
        let ids: Vec<_> = store
            .list(None)
            .unwrap()
            .documents
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, vec![kept.clone()]);
        assert!(matches!(store.erase(&gone), Err(StoreError::NotFound(_))));
        let report = store.verify().unwrap();
        assert!(
            report.is_clean(),
            "an erased document is not missing: {report:?}"
        );

        // The copy, with the same key-encryption key and key folder: the erased document's
        // items no longer open; the other's do.
        let old = DocumentStore::open_reader(&copy, keys).with_data_keys(keys_dir);
        let mut out = Vec::new();
        let err = old
            .read_item(&gone, DocumentItem::Submission, None, &mut out)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Seal(SealError::UnknownKey(_))),
            "{err:?}"
        );
        assert!(old.authenticate(&gone, DocumentItem::File(0)).is_err());
        assert_eq!(
            old.authenticate(&kept, DocumentItem::File(0)).unwrap(),
            200 * 1024
        );
    }

    #[test]
    fn documents_sealed_before_data_keys_still_open_and_erase() {
        let (dir, store) = store_with(1);
        let keys = Arc::clone(&store.keys);
        drop(store);
        let id = submission(0).id;
        let store = DocumentStore::open(dir.path(), keys)
            .unwrap()
            .with_data_keys(dir.path().join("keys"));
        assert_eq!(
            store.authenticate(&id, DocumentItem::File(0)).unwrap(),
            200 * 1024
        );
        let erased = store.erase(&id).unwrap();
        assert!(!erased.shredded);
        assert!(store.list(None).unwrap().documents.is_empty());
    }
}
