//! The manifest: a sealed, append-only record of every document the store has taken, so that a
//! document deleted from the disk is noticed (`secureform docs verify`) instead of silently gone.
//!
//! One line per document, appended before the document's folder is renamed into place and made
//! durable by the same flush as its items: whatever is in place is in the manifest. A line is
//! the base64 of an item sealed (see `secureform_crypto::seal`) with the context
//! `documents/manifest` over `<offset> <id>`, where `offset` is where the line starts in the
//! file: a line removed or moved from the middle no longer sits at its offset and is reported.
//! A line torn by a crash (no final newline) belongs to a document that was never renamed into
//! place (the rename waits for the flush); the writer cuts it off when it opens the store, and
//! the redelivery appends a new line. A put that fails after its line was written (the flush
//! failed) leaves a line whose document is not there yet: the delivery is retried and writes
//! it; should it never be, `verify` reports it missing, which it is.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use secureform_crypto::seal::{open, seal};
use secureform_crypto::KeyRing;

/// The manifest's file name in the store's root (not id-shaped, so listings skip it).
pub(crate) const FILE: &str = "manifest";
const CONTEXT: &[u8] = b"documents/manifest";
/// A line is about 190 bytes; anything far longer is not a line of ours.
const MAX_LINE: usize = 4096;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What reading the manifest found.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    /// The ids recorded, in order (an id appears again when a delivery was retried).
    pub ids: Vec<String>,
    /// Offsets of lines that do not open or do not sit where they were written.
    pub bad_lines: Vec<u64>,
}

/// The writing side, held by the store a sink writes to.
pub(crate) struct Writer {
    keys: Arc<KeyRing>,
    file: Mutex<File>,
}

impl Writer {
    /// Opens the manifest for appending: creates it (listing `existing`, the documents already
    /// in place, for a store written before manifests existed) or cuts off a torn last line.
    pub(crate) fn open(root: &Path, keys: Arc<KeyRing>, existing: &[String]) -> io::Result<Self> {
        let path = root.join(FILE);
        if !path.exists() {
            create(&path, &keys, existing)?;
        }
        let mut file = OpenOptions::new().read(true).append(true).open(&path)?;
        cut_torn_tail(&mut file)?;
        Ok(Writer {
            keys,
            file: Mutex::new(file),
        })
    }

    /// Appends a line for `id`, not synced: the caller's flush of the filesystem covers it.
    pub(crate) fn append(&self, id: &str) -> io::Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("a manifest writer panicked"))?;
        let offset = file.metadata()?.len();
        let line = record(&self.keys, offset, id)?;
        file.write_all(line.as_bytes())
    }
}

fn record(keys: &KeyRing, offset: u64, id: &str) -> io::Result<String> {
    let sealed = seal(keys, CONTEXT, format!("{offset} {id}").as_bytes())?;
    Ok(format!("{}\n", B64.encode(sealed)))
}

/// Writes a new manifest listing `ids` under a temporary name, then renames it into place.
fn create(path: &Path, keys: &KeyRing, ids: &[String]) -> io::Result<()> {
    let tmp = path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut text = String::new();
    for id in ids {
        text.push_str(&record(keys, text.len() as u64, id)?);
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A crash can leave the last line without its newline: drop it (see the module docs).
fn cut_torn_tail(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let start = len.saturating_sub(MAX_LINE as u64);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => start + i as u64 + 1,
        None => start,
    };
    tracing::warn!(
        bytes = len - keep,
        "cutting a torn last line off the Documents manifest"
    );
    file.set_len(keep)?;
    file.sync_all()
}

/// Reads every line of the manifest at `root`; `None` when there is no manifest.
pub(crate) fn read(root: &Path, keys: &KeyRing) -> io::Result<Option<Entries>> {
    let path: PathBuf = root.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut entries = Entries::default();
    let mut offset = 0u64;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        // A last line without its newline is being written right now, or was torn by a crash
        // (then the writer cuts it off): neither is damage.
        if !line.ends_with(b"\n") {
            break;
        }
        match parse(keys, line, offset) {
            Some(id) => entries.ids.push(id),
            None => entries.bad_lines.push(offset),
        }
        offset += line.len() as u64;
    }
    Ok(Some(entries))
}

/// The id of one line, when it opens and was written at `offset`.
fn parse(keys: &KeyRing, line: &[u8], offset: u64) -> Option<String> {
    let text = line.strip_suffix(b"\n")?;
    if text.len() > MAX_LINE {
        return None;
    }
    let sealed = B64.decode(text).ok()?;
    let plain = open(keys, CONTEXT, &sealed).ok()?;
    let plain = std::str::from_utf8(&plain).ok()?;
    let (at, id) = plain.split_once(' ')?;
    (at.parse::<u64>().ok()? == offset).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_a_removed_or_torn_line_is_noticed() {
        let keys = Arc::new(KeyRing::generate().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::open(dir.path(), Arc::clone(&keys), &["A".repeat(26)]).unwrap();
        writer.append(&"B".repeat(26)).unwrap();
        writer.append(&"C".repeat(26)).unwrap();
        let got = read(dir.path(), &keys).unwrap().unwrap();
        assert_eq!(got.ids, ["A", "B", "C"].map(|c| c.repeat(26)));
        assert!(got.bad_lines.is_empty());

        // Removing the middle line shifts the last one off its offset.
        let path = dir.path().join(FILE);
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let got = read(dir.path(), &keys).unwrap().unwrap();
        assert_eq!(got.ids, ["A".repeat(26)]);
        assert_eq!(got.bad_lines.len(), 1);

        // A torn last line is cut off when the writer opens the manifest again.
        fs::write(&path, format!("{}\n{}", lines[0], &lines[1][..20])).unwrap();
        drop(Writer::open(dir.path(), Arc::clone(&keys), &[]).unwrap());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", lines[0])
        );
    }
}
