//! Uploaded files in the spool: sealed as they stream in, opened as streams for the sinks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;
use secureform_contract::FileSource;
use secureform_crypto::files::{create_private_dir, open_file, sync_dir};
use secureform_crypto::{KeyRing, Sealer};

use super::SpoolError;

fn file_context(id: &str, index: usize) -> Vec<u8> {
    format!("spool/{id}/files/{index}").into_bytes()
}

fn file_path(root: &Path, id: &str, index: usize) -> PathBuf {
    root.join(id).join(format!("{index}.sf"))
}

/// Seals one uploaded file chunk by chunk, counting its size and hashing its plaintext.
pub struct SpoolFileWriter {
    sealer: Sealer<BufWriter<File>>,
    hash: digest::Context,
    size: u64,
    dir: PathBuf,
}

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
        let sealer = Sealer::new(
            keys,
            &file_context(id, index),
            BufWriter::with_capacity(256 * 1024, file),
        )?;
        Ok(SpoolFileWriter {
            sealer,
            hash: digest::Context::new(&digest::SHA256),
            size: 0,
            dir,
        })
    }

    /// Seals one chunk of plaintext.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.hash.update(chunk);
        self.size += chunk.len() as u64;
        self.sealer.write_all(chunk)?;
        Ok(())
    }

    /// Seals the last segment and flushes the file and its folder to stable storage. Returns
    /// the plaintext size and its SHA-256 (lowercase hex). Blocking: call it off the event loop.
    pub fn finish(self) -> Result<(u64, String), SpoolError> {
        let file = self
            .sealer
            .finish()?
            .into_inner()
            .map_err(|e| SpoolError::Io(e.into_error()))?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        if let Some(parent) = self.dir.parent() {
            sync_dir(parent)?;
        }
        Ok((self.size, hex::encode(self.hash.finish().as_ref())))
    }
}

/// Removes the spool files of one submission.
pub(crate) fn discard(root: &Path, id: &str) {
    if id.bytes().all(|b| b.is_ascii_alphanumeric()) && !id.is_empty() {
        let _ = fs::remove_dir_all(root.join(id));
    }
}

/// The files of one spooled submission, as a [`FileSource`] for the sinks.
pub struct SpoolFiles {
    root: PathBuf,
    keys: Arc<KeyRing>,
    id: String,
}

impl SpoolFiles {
    pub(super) fn new(root: PathBuf, keys: Arc<KeyRing>, id: &str) -> Self {
        SpoolFiles {
            root,
            keys,
            id: id.to_owned(),
        }
    }
}

impl FileSource for SpoolFiles {
    fn open(&self, index: usize) -> io::Result<Box<dyn Read + Send>> {
        let path = file_path(&self.root, &self.id, index);
        let opener = open_file(&self.keys, &file_context(&self.id, index), &path)?;
        Ok(Box::new(opener))
    }
}
