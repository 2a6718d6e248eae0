//! Loading the login secrets named by the configuration: the private key (and its passphrase) or
//! the password. Secret files readable by group or others are refused, as `ssh` refuses them.

use std::path::Path;

use base64::Engine;
use secrecy::SecretString;
use secureform_contract::ConfigError;
use secureform_secrets::{Keys, SecretSource};
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

pub(crate) use secureform_secrets::resolve;

/// Loads the secrets the (validated) configuration names.
pub(crate) fn load(config: &Config, base_dir: &Path) -> Result<Auth, ConfigError> {
    if let Some(key_file) = &config.private_key_file {
        let path = resolve(base_dir, key_file);
        let text = read_key_file(&path)?;
        let encrypted = check_private_key(&text, &path)?;
        let passphrase = SecretSource {
            env: config.passphrase_env.as_deref(),
            file: config.passphrase_file.as_deref(),
            keys: Keys {
                env: "passphrase_env",
                file: "passphrase_file",
            },
        }
        .load_text(base_dir)?;
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
    let password = SecretSource {
        env: config.password_env.as_deref(),
        file: config.password_file.as_deref(),
        keys: Keys {
            env: "password_env",
            file: "password_file",
        },
    }
    .load_text(base_dir)?;
    password
        .map(Auth::Password)
        .ok_or_else(|| ConfigError::new("password_env", "no authentication configured"))
}

/// Reads the private key file verbatim (a private file, see `secureform_secrets`), as text.
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    let bytes = secureform_secrets::read_private_file(path, "private_key_file")?;
    std::str::from_utf8(&bytes)
        .map(|t| Zeroizing::new(t.to_owned()))
        .map_err(|_| {
            ConfigError::new(
                "private_key_file",
                format!("{}: not a text key file", path.display()),
            )
        })
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
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

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
        let err = read_key_file(&path).unwrap_err();
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
