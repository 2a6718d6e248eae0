//! The on-disk store: writing a submission's items, listing, and reading them back.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;
use secureform_contract::{FileSource, Submission};
use secureform_crypto::files::{
    create_private_dir, open_file, seal_to_file_unsynced_with, sync_dir,
};
use secureform_crypto::pgp::{self, Recipients, Signer};
use secureform_crypto::{KeyRing, SealError};
use serde::{Deserialize, Serialize};

use crate::sync::FlushGroup;

/// What the store says about a submission without opening it: `docs list` and the API's listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    pub id: String,
    pub form: String,
    pub received_at: String,
    /// How many files the submission has.
    pub files: usize,
    /// Whether the items are PGP-encrypted inside the seal (only a recipient can read them).
    pub pgp: bool,
}

/// Errors of the store. Messages carry ids and paths inside the store, never content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O in the Documents store: {0}")]
    Io(#[from] io::Error),
    #[error("sealing: {0}")]
    Seal(#[from] SealError),
    #[error("reading a file of the submission: {0}")]
    Source(io::Error),
    #[error("OpenPGP: {0}")]
    Pgp(String),
    #[error("no document {0}")]
    NotFound(String),
    #[error("document {0} is PGP-encrypted: pass the recipient's secret key (--pgp-key)")]
    NeedsPgpKey(String),
    #[error("document metadata is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a submission id: {0:?}")]
    BadId(String),
}

/// The Documents store rooted at one folder.
pub struct DocumentStore {
    root: PathBuf,
    keys: Arc<KeyRing>,
    /// Makes staged items durable: one `syncfs` shared by every put waiting for it.
    items_flush: FlushGroup,
    /// Makes renames into the root durable: one `fsync` of the root shared likewise.
    names_flush: FlushGroup,
}

fn context(id: &str, item: &str) -> Vec<u8> {
    format!("documents/{id}/{item}").into_bytes()
}

/// Ids are ULIDs: 26 characters of Crockford base32. Checking keeps every path inside the store.
fn check_id(id: &str) -> Result<(), StoreError> {
    if id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(StoreError::BadId(id.chars().take(40).collect()))
    }
}

impl DocumentStore {
    /// Opens (creating when missing, mode 0700) the store at `root`.
    pub fn open(root: &Path, keys: Arc<KeyRing>) -> Result<Self, StoreError> {
        create_private_dir(root)?;
        Ok(DocumentStore {
            root: root.to_path_buf(),
            keys,
            items_flush: FlushGroup::default(),
            names_flush: FlushGroup::default(),
        })
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
        let target = self.root.join(id);
        if target.join("meta.sf").exists() {
            return Ok(());
        }
        let suffix: u64 = rand::thread_rng().gen();
        let staging = self.root.join(format!(".staging-{id}-{suffix:016x}"));
        let result = self
            .write_items(&staging, submission, files, recipients, signer)
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
        let json = zeroize::Zeroizing::new(serde_json::to_vec(submission)?);
        self.write_item(dir, id, "submission", &mut &json[..], recipients, signer)?;
        if !submission.files.is_empty() {
            create_private_dir(&dir.join("files"))?;
            for index in 0..submission.files.len() {
                let mut reader = files.open(index).map_err(StoreError::Source)?;
                let item = format!("files/{index}");
                self.write_item(dir, id, &item, &mut reader, recipients, signer)?;
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

    fn write_item(
        &self,
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
                seal_to_file_unsynced_with(&self.keys, &ctx, &path, |w| {
                    io::copy(input, w).map_err(|e| io::Error::other(StoreError::Source(e)))
                })
                .map_err(unwrap_source)?;
            }
            Some(recipients) => {
                seal_to_file_unsynced_with(&self.keys, &ctx, &path, |w| {
                    pgp::encrypt(recipients, signer, false, input, w)
                        .map_err(|e| io::Error::other(StoreError::Pgp(e.to_string())))
                })
                .map_err(unwrap_source)?;
            }
        }
        Ok(())
    }

    /// Every document's metadata, oldest first, optionally of one form only.
    pub fn list(&self, form: Option<&str>) -> Result<Vec<DocumentMeta>, StoreError> {
        let mut all = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str() else { continue };
            if check_id(id).is_err() {
                continue;
            }
            let meta = self.meta(id)?;
            if form.is_none_or(|f| f == meta.form) {
                all.push(meta);
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
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
        check_id(id)?;
        let name = match item {
            DocumentItem::Submission => "submission".to_owned(),
            DocumentItem::File(n) => format!("files/{n}"),
        };
        let path = self.root.join(id).join(format!("{name}.sf"));
        if !path.exists() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        Ok(open_file(&self.keys, &context(id, &name), &path)?)
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
    Submission,
    File(usize),
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
