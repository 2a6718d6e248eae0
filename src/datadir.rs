//! The data folder at start-up: one `serve` at a time, safe permissions, what a `kill -9` left
//! behind, and whether the folder is new (the only case in which a missing key file may be
//! created: anywhere else a new key would open none of the data, and every old document would
//! fail).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

/// The lock file `serve` holds (an advisory `flock`) for as long as it runs.
pub const LOCK_FILE: &str = "secureform.lock";

/// How deep [`remove_staging`] and [`needed_key_ids`] look below the data folder.
const MAX_DEPTH: usize = 4;
/// Most files [`needed_key_ids`] reads before it gives up (it runs only to word an error).
const MAX_FILES_READ: usize = 1_000_000;

/// Why the data folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("{path}: another `secureform serve` is using this data folder (it holds {lock}); stop it first, or give this one another [storage] data_dir")]
    Locked { path: String, lock: String },
    #[error("{path}: the data folder is writable by group or others (mode {mode:o}), who could replace the spool or the documents; run `chmod 700 {path}`")]
    Writable { path: String, mode: u32 },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{}", missing_key_message(key_file, data_dir, ids.as_deref()))]
    MissingKey {
        key_file: String,
        data_dir: String,
        /// The key ids the data was sealed under; `None` when the data folder is new.
        ids: Option<Vec<String>>,
    },
}

fn missing_key_message(key_file: &str, data_dir: &str, ids: Option<&[String]>) -> String {
    let Some(ids) = ids else {
        return format!(
            "{key_file}: the key file does not exist; create it with `secureform keygen --out \
             {key_file}` (`secureform serve` creates only the default key file, \
             data_dir/master.key, and only in a new data folder)"
        );
    };
    let needs = if ids.is_empty() {
        "it holds data (no sealed item was found to name its key)".to_owned()
    } else {
        format!("its data was sealed under key id(s) {}", ids.join(", "))
    };
    format!(
        "{key_file}: the key file is missing, and the data folder {data_dir} is not new: {needs}. \
         Restore that key file (a new key would open none of it). A key is created only for a \
         new, empty data folder."
    )
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Held for the life of `serve`: the open, `flock`ed lock file. The kernel drops the lock when
/// the process ends, however it ends, so a `kill -9` leaves no stale lock behind.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Gets the data folder ready for `serve`: refuses a folder that group or others may write,
/// creates it (mode 0700) when missing, takes its lock, and removes the staging folders a crash
/// left. Returns the lock, to be kept until the process ends.
pub fn prepare(data_dir: &Path) -> Result<DataDirLock, DataDirError> {
    check_permissions(data_dir)?;
    secureform_crypto::files::create_private_dir(data_dir).map_err(io_error(data_dir))?;
    let lock = lock(data_dir)?;
    let removed = remove_staging(data_dir);
    if removed > 0 {
        tracing::info!(
            folders = removed,
            "removed staging folders left by an interrupted run"
        );
    }
    Ok(lock)
}

/// Refuses an existing data folder that group or others may write (a missing one is created
/// private).
pub fn check_permissions(data_dir: &Path) -> Result<(), DataDirError> {
    match fs::metadata(data_dir) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(DataDirError::Writable {
                    path: data_dir.display().to_string(),
                    mode,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(data_dir)(e)),
    }
}

/// Takes the data folder's lock without waiting: a second `serve` fails at once.
pub fn lock(data_dir: &Path) -> Result<DataDirLock, DataDirError> {
    let path = data_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_error(&path))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(DataDirError::Locked {
            path: data_dir.display().to_string(),
            lock: path.display().to_string(),
        }),
        Err(e) => Err(io_error(&path)(e.into())),
    }
}

/// Whether the data folder is new: missing, or holding nothing but its lock file.
pub fn is_new(data_dir: &Path) -> Result<bool, DataDirError> {
    let entries = match fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io_error(data_dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(data_dir))?;
        if entry.file_name() != LOCK_FILE {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The error for a key file that is missing and may not be created: where the data folder is
/// not new, it names the key ids the data was sealed under.
pub fn missing_key(key_file: &Path, data_dir: &Path) -> DataDirError {
    let ids = match is_new(data_dir) {
        Ok(true) => None,
        _ => Some(needed_key_ids(data_dir).into_iter().collect()),
    };
    DataDirError::MissingKey {
        key_file: key_file.display().to_string(),
        data_dir: data_dir.display().to_string(),
        ids,
    }
}

/// Subfolders worth looking into: not hidden, and not one submission's own folder (an id) —
/// staging folders sit beside those, in a store's root, never inside them.
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && !is_id(&name)
        })
        .map(|e| e.path())
        .collect()
}

fn is_id(name: &str) -> bool {
    name.len() == 26 && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Removes the `.staging-*` folders a Documents store writes a submission into before renaming
/// it into place: one left behind was never acknowledged by its sink, so its submission is still
/// in the spool and will be stored again. Call only while holding the lock. Returns how many.
pub fn remove_staging(data_dir: &Path) -> usize {
    let mut removed = 0;
    let mut dirs = vec![(data_dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && entry.file_name().to_string_lossy().starts_with(".staging-") {
                match fs::remove_dir_all(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => tracing::warn!(error = %e, "cannot remove a staging folder"),
                }
            }
        }
        if depth < MAX_DEPTH {
            dirs.extend(subfolders(&dir).into_iter().map(|d| (d, depth + 1)));
        }
    }
    removed
}

/// The ids (hex) of the keys the data folder's sealed items were sealed under: the spool's
/// submissions and files, and the Documents stores' items. Reads only headers.
pub fn needed_key_ids(data_dir: &Path) -> BTreeSet<String> {
    let mut ids = spool_db_key_ids(&data_dir.join("spool").join("spool.db"));
    let mut read = 0;
    let mut dirs = vec![(data_dir.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth < MAX_DEPTH {
                dirs.push((entry.path(), depth + 1));
            } else if kind.is_file() && read < MAX_FILES_READ {
                read += 1;
                if let Some(id) = file_key_id(&entry.path()) {
                    ids.insert(id);
                }
            }
        }
    }
    ids
}

fn file_key_id(path: &Path) -> Option<String> {
    let mut head = [0u8; 12];
    File::open(path).ok()?.read_exact(&mut head).ok()?;
    secureform_crypto::seal::sealed_key_id(&head).map(|id| id.to_string())
}

/// The key ids of the spool's sealed submissions (an unreadable spool names none).
fn spool_db_key_ids(db: &Path) -> BTreeSet<String> {
    use rusqlite::OpenFlags;
    let mut ids = BTreeSet::new();
    if !db.exists() {
        return ids;
    }
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
    else {
        return ids;
    };
    let Ok(mut stmt) = conn
        .prepare("SELECT DISTINCT substr(sealed, 1, 12) FROM submissions WHERE sealed IS NOT NULL")
    else {
        return ids;
    };
    let Ok(rows) = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)) else {
        return ids;
    };
    for head in rows.flatten() {
        if let Some(id) = secureform_crypto::seal::sealed_key_id(&head) {
            ids.insert(id.to_string());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        let second = lock(dir.path()).unwrap_err();
        assert!(matches!(second, DataDirError::Locked { .. }), "{second}");
        drop(first);
        assert!(
            lock(dir.path()).is_ok(),
            "free again once the holder is gone"
        );
    }

    #[test]
    fn a_folder_holding_only_its_lock_is_new() {
        let dir = tempfile::tempdir().unwrap();
        assert!(is_new(&dir.path().join("missing")).unwrap());
        let _lock = lock(dir.path()).unwrap();
        assert!(is_new(dir.path()).unwrap());
        fs::create_dir(dir.path().join("documents")).unwrap();
        assert!(!is_new(dir.path()).unwrap());
    }

    #[test]
    fn a_group_writable_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o770)).unwrap();
        let err = check_permissions(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o750)).unwrap();
        assert!(check_permissions(dir.path()).is_ok());
    }

    #[test]
    fn a_missing_key_names_the_keys_the_data_was_sealed_under() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        let data = dir.path().join("data");
        let fresh = missing_key(&key, &data).to_string();
        assert!(fresh.contains("secureform keygen --out"), "{fresh}");

        let ring = secureform_crypto::KeyRing::generate().unwrap();
        let document = data.join("documents").join("01JQ0000000000000000000000");
        fs::create_dir_all(&document).unwrap();
        let sealed = secureform_crypto::seal(&ring, b"ctx", b"secret").unwrap();
        fs::write(document.join("meta.sf"), sealed).unwrap();
        let msg = missing_key(&key, &data).to_string();
        assert!(msg.contains(&ring.current_id().to_string()), "{msg}");
        assert!(msg.contains("Restore that key file"), "{msg}");
    }

    #[test]
    fn staging_folders_go_and_documents_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("documents");
        let staging = store.join(".staging-01JQ0000000000000000000000-00ff");
        let nested = dir.path().join("documents").join("docs").join(".staging-x");
        let document = store.join("01JQ0000000000000000000000");
        for d in [&staging, &nested, &document] {
            fs::create_dir_all(d).unwrap();
        }
        assert_eq!(remove_staging(dir.path()), 2);
        assert!(!staging.exists() && !nested.exists());
        assert!(document.exists());
    }
}
