//! Loading the login secrets named by the configuration: the private key (and its passphrase) or
//! the password. Secret files readable by group or others are refused, as `ssh` refuses them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use secrecy::SecretString;
use secureform_contract::ConfigError;
use zeroize::Zeroizing;

use crate::config::Config;

/// How the sink logs in. Debug output never shows the secrets (`secrecy` redacts them).
#[derive(Debug)]
pub(crate) enum Auth {
    /// A private key (OpenSSH or PEM text) and its passphrase, if it is encrypted.
    Key {
        private_key: SecretString,
        passphrase: Option<SecretString>,
    },
    /// A password.
    Password(SecretString),
}

/// Resolves `path` against the configuration file's folder.
pub(crate) fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// Loads the secrets the (validated) configuration names.
pub(crate) fn load(config: &Config, base_dir: &Path) -> Result<Auth, ConfigError> {
    if let Some(key_file) = &config.private_key_file {
        let path = resolve(base_dir, key_file);
        let text = read_secret_file(&path, "private_key_file")?;
        let encrypted = check_private_key(&text, &path)?;
        let passphrase = secret_from(
            config.passphrase_env.as_deref(),
            config.passphrase_file.as_deref(),
            ("passphrase_env", "passphrase_file"),
            base_dir,
        )?;
        if encrypted && passphrase.is_none() {
            return Err(ConfigError::new(
                "private_key_file",
                format!(
                    "{}: the key is encrypted; set passphrase_env or passphrase_file",
                    path.display()
                ),
            ));
        }
        return Ok(Auth::Key {
            private_key: SecretString::from(text.as_str()),
            passphrase,
        });
    }
    let password = secret_from(
        config.password_env.as_deref(),
        config.password_file.as_deref(),
        ("password_env", "password_file"),
        base_dir,
    )?;
    password
        .map(Auth::Password)
        .ok_or_else(|| ConfigError::new("password_env", "no authentication configured"))
}

/// A secret from an environment variable or a file, whichever is configured.
fn secret_from(
    env: Option<&str>,
    file: Option<&Path>,
    keys: (&str, &str),
    base_dir: &Path,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(name) = env {
        let value = Zeroizing::new(std::env::var(name).map_err(|_| {
            ConfigError::new(
                keys.0,
                format!("the environment variable {name} is not set (or not UTF-8)"),
            )
        })?);
        if value.is_empty() {
            return Err(ConfigError::new(
                keys.0,
                format!("the environment variable {name} is empty"),
            ));
        }
        return Ok(Some(SecretString::from(value.as_str())));
    }
    if let Some(file) = file {
        let path = resolve(base_dir, file);
        let text = read_secret_file(&path, keys.1)?;
        let value = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if value.is_empty() {
            return Err(ConfigError::new(
                keys.1,
                format!("{}: the file is empty", path.display()),
            ));
        }
        return Ok(Some(SecretString::from(value)));
    }
    Ok(None)
}

/// Reads a secret file, refusing one that group or others may read or write.
fn read_secret_file(path: &Path, key: &str) -> Result<Zeroizing<String>, ConfigError> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| ConfigError::new(key, format!("{shown}: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::new(
            key,
            format!("{shown}: readable or writable by group or others (mode {mode:o}); run `chmod 600 {shown}`"),
        ));
    }
    fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| ConfigError::new(key, format!("{shown}: {e}")))
}

/// Checks that `text` is a private key libssh2 can read, and tells whether it is encrypted.
fn check_private_key(text: &str, path: &Path) -> Result<bool, ConfigError> {
    let bad =
        |why: &str| ConfigError::new("private_key_file", format!("{}: {why}", path.display()));
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if !(first.starts_with("-----BEGIN ") && first.ends_with("PRIVATE KEY-----")) {
        return Err(bad(
            "not a private key (expected an OpenSSH or PEM private key, e.g. from ssh-keygen)",
        ));
    }
    if first == "-----BEGIN OPENSSH PRIVATE KEY-----" {
        let body: String = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| bad("the OpenSSH key is not valid base64"))?,
        );
        return openssh_cipher_is_set(&raw).ok_or_else(|| bad("not an OpenSSH key"));
    }
    // PEM: traditional keys say `Proc-Type: 4,ENCRYPTED`, PKCS#8 says `ENCRYPTED PRIVATE KEY`.
    Ok(first.contains("ENCRYPTED") || text.contains("Proc-Type: 4,ENCRYPTED"))
}

/// Reads the cipher name of an `openssh-key-v1` blob: anything but `none` means encrypted.
fn openssh_cipher_is_set(raw: &[u8]) -> Option<bool> {
    let rest = raw.strip_prefix(b"openssh-key-v1\0")?;
    let len_bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let cipher = rest.get(4..4usize.checked_add(len)?)?;
    Some(cipher != b"none")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssh_cipher_is_read() {
        let mut blob = b"openssh-key-v1\0".to_vec();
        blob.extend_from_slice(&4u32.to_be_bytes());
        blob.extend_from_slice(b"none");
        assert_eq!(openssh_cipher_is_set(&blob), Some(false));
        let mut blob = b"openssh-key-v1\0".to_vec();
        blob.extend_from_slice(&10u32.to_be_bytes());
        blob.extend_from_slice(b"aes256-ctr");
        assert_eq!(openssh_cipher_is_set(&blob), Some(true));
        assert_eq!(openssh_cipher_is_set(b"openssh-key-v1\0\0\0\0\x09ab"), None);
        assert_eq!(openssh_cipher_is_set(b"garbage"), None);
    }

    #[test]
    fn refuses_a_key_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        fs::write(&path, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_file(&path, "private_key_file").unwrap_err();
        assert_eq!(err.key, "private_key_file");
        assert!(err.message.contains("chmod 600"), "{err}");
    }

    #[test]
    fn rejects_what_is_not_a_private_key() {
        let err = check_private_key("ssh-ed25519 AAAA... me@host\n", Path::new("k")).unwrap_err();
        assert_eq!(err.key, "private_key_file");
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n";
        assert_eq!(check_private_key(pem, Path::new("k")), Ok(true));
    }
}
