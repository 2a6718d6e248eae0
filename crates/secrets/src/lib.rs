//! Secrets named by the configuration — passwords, passphrases, signing secrets, key strings,
//! private keys — loaded with one rule set, whichever sink asks:
//!
//! - A secret comes from an environment variable (`*_env`) or a file (`*_file`); when both are
//!   named, the environment wins (each sink's `validate` refuses both at once where that
//!   matters).
//! - An environment variable must be set and not empty.
//! - A file is resolved against the configuration file's folder, must not be readable or writable
//!   by group or others (as `ssh` refuses such key files: `chmod 600` fixes it), and must not be
//!   empty; one trailing line break (`\n` or `\r\n`) is dropped, since editors add one.
//! - Errors name the configuration key at fault and the file, never the secret.
//!
//! What is read is held in zeroizing buffers or `secrecy` types, so it is wiped when dropped and
//! never printed by `Debug`.

#![warn(missing_docs)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use secureform_contract::ConfigError;
use zeroize::Zeroizing;

/// The configuration keys a secret may come from, e.g. `("password_env", "password_file")`:
/// errors name the one at fault.
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    /// The key naming an environment variable.
    pub env: &'a str,
    /// The key naming a file.
    pub file: &'a str,
}

/// Where one secret comes from, as the configuration says.
#[derive(Clone, Copy, Debug)]
pub struct SecretSource<'a> {
    /// The environment variable's name, when `*_env` is set.
    pub env: Option<&'a str>,
    /// The file, when `*_file` is set (relative to the configuration's folder).
    pub file: Option<&'a Path>,
    /// The configuration keys, for errors.
    pub keys: Keys<'a>,
}

impl SecretSource<'_> {
    /// Whether the configuration names this secret at all.
    pub fn is_set(&self) -> bool {
        self.env.is_some() || self.file.is_some()
    }

    /// The secret's bytes, or `None` when neither key is set.
    pub fn load_bytes(&self, base_dir: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, ConfigError> {
        if let Some(name) = self.env {
            let value = std::env::var_os(name).ok_or_else(|| {
                ConfigError::new(
                    self.keys.env,
                    format!("the environment variable {name} is not set"),
                )
            })?;
            let value = Zeroizing::new(std::os::unix::ffi::OsStringExt::into_vec(value));
            if value.is_empty() {
                return Err(ConfigError::new(
                    self.keys.env,
                    format!("the environment variable {name} is empty"),
                ));
            }
            return Ok(Some(value));
        }
        let Some(file) = self.file else {
            return Ok(None);
        };
        let path = resolve(base_dir, file);
        let mut bytes = read_private_file(&path, self.keys.file)?;
        let len = bytes.len();
        if bytes.ends_with(b"\r\n") {
            bytes.truncate(len - 2);
        } else if bytes.ends_with(b"\n") {
            bytes.truncate(len - 1);
        }
        if bytes.is_empty() {
            return Err(ConfigError::new(
                self.keys.file,
                format!("{}: the file is empty", path.display()),
            ));
        }
        Ok(Some(bytes))
    }

    /// The secret as text (it must be UTF-8), or `None` when neither key is set.
    pub fn load_text(&self, base_dir: &Path) -> Result<Option<SecretString>, ConfigError> {
        let Some(bytes) = self.load_bytes(base_dir)? else {
            return Ok(None);
        };
        let key = if self.env.is_some() {
            self.keys.env
        } else {
            self.keys.file
        };
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ConfigError::new(key, "the secret is not UTF-8 text"))?;
        Ok(Some(SecretString::from(text)))
    }
}

/// Resolves a path from the configuration against the configuration file's folder.
pub fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// Refuses a file that group or others may read or write; `key` is the configuration key that
/// names it.
pub fn check_private(path: &Path, key: &str) -> Result<(), ConfigError> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| ConfigError::new(key, format!("{shown}: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::new(
            key,
            format!(
                "{shown}: readable or writable by group or others (mode {mode:o}); run \
                 `chmod 600 {shown}`"
            ),
        ));
    }
    Ok(())
}

/// A private file's bytes, verbatim (for key files whose format is checked by the caller);
/// refused when group or others may read or write it.
pub fn read_private_file(path: &Path, key: &str) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    check_private(path, key)?;
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const KEYS: Keys<'static> = Keys {
        env: "password_env",
        file: "password_file",
    };

    fn file_source(file: &Path) -> SecretSource<'_> {
        SecretSource {
            env: None,
            file: Some(file),
            keys: KEYS,
        }
    }

    fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_file_loses_one_line_break() {
        let dir = tempfile::tempdir().unwrap();
        for (bytes, want) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret", "s3cret"),
            (b"s3cret\n\n", "s3cret\n"),
        ] {
            write(dir.path(), "p", bytes, 0o600);
            let got = file_source(Path::new("p"))
                .load_text(dir.path())
                .unwrap()
                .unwrap();
            assert_eq!(got.expose_secret(), want);
        }
    }

    #[test]
    fn a_file_others_can_read_or_an_empty_one_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let open = write(dir.path(), "open", b"s3cret\n", 0o640);
        let err = file_source(&open).load_bytes(dir.path()).unwrap_err();
        assert_eq!(err.key, "password_file");
        assert!(err.message.contains("chmod 600"), "{err}");
        assert!(!err.message.contains("s3cret"), "{err}");
        let empty = write(dir.path(), "empty", b"\n", 0o600);
        let err = file_source(&empty).load_bytes(dir.path()).unwrap_err();
        assert!(err.message.contains("empty"), "{err}");
        let err = file_source(Path::new("missing"))
            .load_bytes(dir.path())
            .unwrap_err();
        assert_eq!(err.key, "password_file");
    }

    #[test]
    fn an_unset_or_empty_variable_is_refused_and_nothing_set_is_none() {
        // Names no other test uses; set once, never removed (tests share the environment).
        std::env::set_var("SECUREFORM_SECRETS_TEST_EMPTY", "");
        std::env::set_var("SECUREFORM_SECRETS_TEST_SET", "value");
        let source = |env| SecretSource {
            env: Some(env),
            file: None,
            keys: KEYS,
        };
        let base = Path::new("/");
        let err = source("SECUREFORM_SECRETS_TEST_UNSET")
            .load_bytes(base)
            .unwrap_err();
        assert_eq!(err.key, "password_env");
        let err = source("SECUREFORM_SECRETS_TEST_EMPTY")
            .load_bytes(base)
            .unwrap_err();
        assert!(err.message.contains("empty"), "{err}");
        let got = source("SECUREFORM_SECRETS_TEST_SET")
            .load_text(base)
            .unwrap()
            .unwrap();
        assert_eq!(got.expose_secret(), "value");
        let none = SecretSource {
            env: None,
            file: None,
            keys: KEYS,
        };
        assert!(!none.is_set());
        assert!(none.load_bytes(base).unwrap().is_none());
    }

    #[test]
    fn a_file_that_is_not_text_is_refused_as_text_but_read_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bin", &[0xff, 0xfe, 0x00], 0o600);
        assert!(file_source(&path).load_text(dir.path()).is_err());
        assert_eq!(
            file_source(&path)
                .load_bytes(dir.path())
                .unwrap()
                .unwrap()
                .as_slice(),
            &[0xff, 0xfe, 0x00]
        );
    }
}
