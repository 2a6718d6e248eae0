//! Sealed files on disk, written durably: the one way the spool and the Documents store put
//! bytes on disk, so that no plaintext ever does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::keys::KeyRing;
use crate::seal::{Opener, SealError, Sealer};

/// Seals everything `input` yields into a new file at `path` (mode 0600; an existing file is an
/// error), then flushes it to stable storage. Returns the plaintext length. On error the partial
/// file is removed. The caller syncs the folder (see [`sync_dir`]) once its files are written.
pub fn seal_to_file(
    ring: &KeyRing,
    context: &[u8],
    path: &Path,
    input: &mut dyn Read,
) -> Result<u64, SealError> {
    write_sealed(ring, context, path, true, |w| io::copy(input, w))
}

/// Like [`seal_to_file`], but `produce` writes the plaintext itself (for example an OpenPGP
/// encryptor streaming into the sealer), and the file is left in the page cache: the caller
/// makes it durable together with others (one `syncfs` for many files, as the Documents store does)
/// before relying on it.
pub fn seal_to_file_unsynced_with(
    ring: &KeyRing,
    context: &[u8],
    path: &Path,
    produce: impl FnOnce(&mut (dyn Write + Send + Sync)) -> io::Result<u64>,
) -> Result<u64, SealError> {
    write_sealed(ring, context, path, false, produce)
}

/// Creates `path` and seals into it; on error the partial file is removed (a file that was
/// already there is left alone: creating it is what fails then).
fn write_sealed(
    ring: &KeyRing,
    context: &[u8],
    path: &Path,
    sync: bool,
    produce: impl FnOnce(&mut (dyn Write + Send + Sync)) -> io::Result<u64>,
) -> Result<u64, SealError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let result = seal_into(ring, context, file, sync, produce);
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

fn seal_into(
    ring: &KeyRing,
    context: &[u8],
    file: File,
    sync: bool,
    produce: impl FnOnce(&mut (dyn Write + Send + Sync)) -> io::Result<u64>,
) -> Result<u64, SealError> {
    let mut sealer = Sealer::new(ring, context, BufWriter::with_capacity(256 * 1024, file))?;
    let produced = produce(&mut sealer)?;
    let file = sealer
        .finish()?
        .into_inner()
        .map_err(|e| SealError::Io(e.into_error()))?;
    if sync {
        file.sync_all()?;
    }
    Ok(produced)
}

/// Opens a sealed file as a plaintext stream.
pub fn open_file(
    ring: &KeyRing,
    context: &[u8],
    path: &Path,
) -> Result<Opener<io::BufReader<File>>, SealError> {
    let file = File::open(path)?;
    Opener::new(
        ring,
        context,
        io::BufReader::with_capacity(256 * 1024, file),
    )
}

/// Flushes a folder's entries (new names, renames) to stable storage.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates a folder (and its parents) with mode 0700.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Writes plaintext that is not secret (such as a lock or a marker) durably. Used only for data
/// that carries no submission content.
pub fn write_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_file_round_trips_and_holds_no_plaintext() {
        let ring = KeyRing::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("item.sf");
        let data = b"canary-7d1f9 ".repeat(20_000);
        let n = seal_to_file(&ring, b"ctx", &path, &mut &data[..]).unwrap();
        assert_eq!(n, data.len() as u64);
        let raw = fs::read(&path).unwrap();
        assert!(!raw.windows(12).any(|w| w == b"canary-7d1f9"));
        let mut back = Vec::new();
        open_file(&ring, b"ctx", &path)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // An existing file is refused, and left as it was.
        assert!(seal_to_file(&ring, b"ctx", &path, &mut &data[..]).is_err());
        assert_eq!(fs::read(&path).unwrap(), raw);
    }
}
