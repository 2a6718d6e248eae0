//! Key-encryption keys (KEKs): loading, creating and rotating them.
//!
//! A key file holds one KEK per line, each 32 random bytes in standard base64; `#` starts a
//! comment. The **last** key is the current one, used for new items; the others stay to open what
//! was sealed under them, so rotating is appending a line ([`append_new_key`]). Each key's id is
//! derived from the key itself (the first 8 bytes of SHA-256 over a label and the key), so an id
//! stored with a sealed item names its key without revealing anything about it.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The id of a key-encryption key, stored in every sealed item's header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Problems with key material. None of them ever carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read (missing, a folder, no permission…).
    #[error("{path}: cannot read the key file: {source}")]
    Read {
        /// The key file.
        path: String,
        /// The I/O error reading it.
        source: std::io::Error,
    },
    /// The key file is readable or writable by group or others, so it is refused.
    #[error("{path}: the key file is readable or writable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The key file.
        path: String,
        /// Its permission bits (shown in octal).
        mode: u32,
    },
    /// A line is not a key: not base64, or not 32 bytes once decoded.
    #[error("{origin}: line {line}: not a key (expected 32 bytes in base64)")]
    Malformed {
        /// Where the text came from: a file name or another label.
        origin: String,
        /// The line at fault, counting from 1.
        line: usize,
    },
    /// The text holds no key at all (only blank lines and `#` comments).
    #[error("{origin}: holds no key")]
    Empty {
        /// Where the text came from: a file name or another label.
        origin: String,
    },
    /// The key file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The key file.
        path: String,
        /// The I/O error writing it.
        source: std::io::Error,
    },
    /// Generating a key file that already exists without asking to rotate.
    #[error("{path}: already exists; pass --rotate to add a new current key to it")]
    Exists {
        /// The existing key file.
        path: String,
    },
    /// The operating system's random generator failed while making a key.
    #[error("the system random generator failed")]
    Random,
}

pub(crate) struct Kek {
    pub(crate) id: KeyId,
    pub(crate) key: LessSafeKey,
    /// HMAC-SHA256 key derived from the KEK, for [`KeyRing::digests`].
    mac: hmac::Key,
}

/// The set of key-encryption keys the service can open items with; the last one seals.
pub struct KeyRing {
    keys: Vec<Kek>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.keys.iter().map(|k| k.id).collect::<Vec<_>>())
            .finish()
    }
}

fn key_id(key: &[u8; 32]) -> KeyId {
    let mut h = Sha256::new();
    h.update(b"secureform/kek-id/v1");
    h.update(key);
    let digest = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    KeyId(id)
}

impl KeyRing {
    /// Parses key text (the content of a key file or of an environment variable). `origin` names
    /// where it came from, for error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = || KeyError::Malformed {
                origin: origin.to_owned(),
                line: n + 1,
            };
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(line)
                    .map_err(|_| malformed())?,
            );
            let raw: Zeroizing<[u8; 32]> =
                Zeroizing::new(bytes.as_slice().try_into().map_err(|_| malformed())?);
            keys.push(Kek::from_bytes(&raw).ok_or_else(malformed)?);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(KeyRing { keys })
    }

    /// Loads a key file, refusing one that group or others may read or write.
    pub fn load_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let meta = fs::metadata(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions { path: shown, mode });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?);
        Self::parse(&text, &shown)
    }

    /// A ring of one fresh random key (tests, and the first run of the embedded default).
    pub fn generate() -> Result<Self, KeyError> {
        let raw = random_key()?;
        let kek = Kek::from_bytes(&raw).ok_or(KeyError::Random)?;
        Ok(KeyRing { keys: vec![kek] })
    }

    /// Adds a key as the new current key (the others keep opening what they sealed).
    pub fn push_text(&mut self, text: &str, origin: &str) -> Result<(), KeyError> {
        let more = Self::parse(text, origin)?;
        self.keys.extend(more.keys);
        Ok(())
    }

    pub(crate) fn current(&self) -> &Kek {
        // `parse` and `generate` never build an empty ring.
        &self.keys[self.keys.len() - 1]
    }

    pub(crate) fn find(&self, id: &KeyId) -> Option<&Kek> {
        self.keys.iter().find(|k| k.id == *id)
    }

    /// The id of the key that seals new items.
    pub fn current_id(&self) -> KeyId {
        self.current().id
    }

    /// All key ids, oldest first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// A new per-submission data key: a ring holding only that key (seal the submission's items
    /// with it), and the key sealed under this ring's current key with `context`. Whoever holds
    /// the wrapped bytes and this ring reopens it ([`KeyRing::open_data_key`]); once the wrapped
    /// bytes are destroyed, nothing sealed under the data key opens again, whatever copies of
    /// the items remain (crypto-shredding).
    pub fn new_data_key(&self, context: &[u8]) -> Result<(KeyRing, Vec<u8>), KeyError> {
        let raw = random_key()?;
        let kek = Kek::from_bytes(&raw).ok_or(KeyError::Random)?;
        let wrapped =
            crate::seal::seal(self, context, raw.as_ref()).map_err(|_| KeyError::Random)?;
        Ok((KeyRing { keys: vec![kek] }, wrapped))
    }

    /// Opens a data key made by [`KeyRing::new_data_key`] with the same `context`.
    pub fn open_data_key(
        &self,
        context: &[u8],
        wrapped: &[u8],
    ) -> Result<KeyRing, crate::seal::SealError> {
        let raw = crate::seal::open(self, context, wrapped)?;
        let raw: Zeroizing<[u8; 32]> = Zeroizing::new(
            raw.as_slice()
                .try_into()
                .map_err(|_| crate::seal::SealError::Format)?,
        );
        let kek = Kek::from_bytes(&raw).ok_or(crate::seal::SealError::Format)?;
        Ok(KeyRing { keys: vec![kek] })
    }

    /// Keyed digests of `data` for `label`, one per key of the ring, current key first: each is
    /// the key's id followed by HMAC-SHA256 under a key derived from that KEK. A digest of
    /// submitted data can then be kept unencrypted (to compare two requests) without letting
    /// anyone who reads it guess the data; one made under an older key still matches one of
    /// these after a rotation.
    pub fn digests(&self, label: &[u8], data: &[u8]) -> Vec<Vec<u8>> {
        self.keys
            .iter()
            .rev()
            .map(|k| {
                let mut ctx = hmac::Context::with_key(&k.mac);
                ctx.update(&(label.len() as u64).to_be_bytes());
                ctx.update(label);
                ctx.update(data);
                let mut out = k.id.0.to_vec();
                out.extend_from_slice(ctx.sign().as_ref());
                out
            })
            .collect()
    }
}

impl Kek {
    fn from_bytes(raw: &[u8; 32]) -> Option<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, raw).ok()?;
        let mut derive = Sha256::new();
        derive.update(b"secureform/kek-mac/v1");
        derive.update(raw);
        let mac_key: Zeroizing<[u8; 32]> = Zeroizing::new(derive.finalize().into());
        Some(Kek {
            id: key_id(raw),
            key: LessSafeKey::new(unbound),
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac_key.as_slice()),
        })
    }
}

fn random_key() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| KeyError::Random)?;
    Ok(raw)
}

/// One new key as a key-file line.
pub fn new_key_line() -> Result<Zeroizing<String>, KeyError> {
    let raw = random_key()?;
    Ok(Zeroizing::new(format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(raw.as_ref())
    )))
}

/// Creates a key file holding one new key, mode 0600 from the first byte. Refuses to overwrite.
pub fn create_key_file(path: &Path) -> Result<KeyId, KeyError> {
    let shown = path.display().to_string();
    let line = new_key_line()?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: shown.clone(),
                }
            } else {
                KeyError::Write {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
    let header =
        "# SecureForm key-encryption keys: one base64 key a line, the last one is current.\n";
    file.write_all(header.as_bytes())
        .and_then(|_| file.write_all(line.as_bytes()))
        .and_then(|_| file.sync_all())
        .map_err(|source| KeyError::Write {
            path: shown.clone(),
            source,
        })?;
    Ok(KeyRing::parse(&line, &shown)?.current_id())
}

/// Appends a new current key to an existing key file (key rotation).
pub fn append_new_key(path: &Path) -> Result<KeyId, KeyError> {
    let shown = path.display().to_string();
    // Loading first checks the permissions and that the file is a key file at all.
    KeyRing::load_file(path)?;
    let line = new_key_line()?;
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|source| KeyError::Write {
            path: shown.clone(),
            source,
        })?;
    file.write_all(line.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|source| KeyError::Write {
            path: shown.clone(),
            source,
        })?;
    Ok(KeyRing::parse(&line, &shown)?.current_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_group_readable_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        create_key_file(&path).unwrap();
        assert!(KeyRing::load_file(&path).is_ok());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = KeyRing::load_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::Permissions { mode: 0o640, .. }),
            "{err}"
        );
    }

    #[test]
    fn created_file_is_0600_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        create_key_file(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            create_key_file(&path),
            Err(KeyError::Exists { .. })
        ));
    }

    #[test]
    fn rotation_makes_the_new_key_current_and_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = create_key_file(&path).unwrap();
        let second = append_new_key(&path).unwrap();
        let ring = KeyRing::load_file(&path).unwrap();
        assert_eq!(ring.ids(), vec![first, second]);
        assert_eq!(ring.current_id(), second);
    }

    #[test]
    fn digests_are_keyed_and_survive_a_rotation() {
        let mut ring = KeyRing::generate().unwrap();
        let before = ring.digests(b"label", b"data");
        assert_eq!(before.len(), 1);
        assert_eq!(&before[0][..8], &ring.current_id().0);
        assert_ne!(before, ring.digests(b"other", b"data"), "the label counts");
        assert_ne!(before, ring.digests(b"label", b"dat"), "the data counts");
        let other = KeyRing::generate().unwrap();
        assert_ne!(before, other.digests(b"label", b"data"), "the key counts");
        ring.push_text(&new_key_line().unwrap(), "test").unwrap();
        let after = ring.digests(b"label", b"data");
        assert_eq!(after.len(), 2);
        assert!(
            after.contains(&before[0]),
            "the old key's digest is still made"
        );
    }

    #[test]
    fn malformed_line_is_named() {
        let err = KeyRing::parse("# c\nnot-base64!\n", "env SECUREFORM_MASTER_KEY").unwrap_err();
        assert_eq!(
            err.to_string(),
            "env SECUREFORM_MASTER_KEY: line 2: not a key (expected 32 bytes in base64)"
        );
    }

    #[test]
    fn a_data_key_opens_with_its_wrapping_and_nothing_else() {
        let ring = KeyRing::generate().unwrap();
        let (data, wrapped) = ring.new_data_key(b"documents/X/key").unwrap();
        let sealed = crate::seal::seal(&data, b"item", b"secret").unwrap();
        let again = ring.open_data_key(b"documents/X/key", &wrapped).unwrap();
        assert_eq!(
            &crate::seal::open(&again, b"item", &sealed).unwrap()[..],
            b"secret"
        );
        assert!(
            ring.open_data_key(b"documents/Y/key", &wrapped).is_err(),
            "bound to its context"
        );
        assert!(
            crate::seal::open(&ring, b"item", &sealed).is_err(),
            "the KEK alone does not open it"
        );
        assert_ne!(data.current_id(), ring.current_id());
    }
}
