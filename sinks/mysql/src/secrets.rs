//! Loading the encryption key and the database password from the environment or from files.
//! Secrets are held in zeroizing or `secrecy` types and never appear in errors or Debug output.

use std::path::Path;

use base64::Engine;
use ring::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use secureform_contract::ConfigError;
use zeroize::Zeroizing;

use crate::config::{Config, Encryption};

/// The shortest key string accepted for `mysql_aes`.
pub const MIN_MYSQL_AES_KEY: usize = 16;

/// The key a sink encrypts with, by mode.
pub(crate) enum ValueKey {
    /// AES-256-GCM, in the service.
    Gcm(Box<LessSafeKey>),
    /// The key string handed to the database's `AES_ENCRYPT`.
    Mysql(SecretBox<Vec<u8>>),
    /// `encryption = "none"`.
    None,
}

impl std::fmt::Debug for ValueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueKey::Gcm(_) => "ValueKey::Gcm(<redacted>)",
            ValueKey::Mysql(_) => "ValueKey::Mysql(<redacted>)",
            ValueKey::None => "ValueKey::None",
        })
    }
}

impl ValueKey {
    /// The key string for `AES_ENCRYPT`, when the mode is `mysql_aes`.
    pub(crate) fn mysql_key(&self) -> Option<&[u8]> {
        match self {
            ValueKey::Mysql(k) => Some(k.expose_secret().as_slice()),
            _ => None,
        }
    }
}

pub(crate) use secureform_secrets::resolve;

/// Reads a secret from an environment variable or a file, by the rules every secret follows
/// (see `secureform_secrets`).
fn read_secret(
    env: Option<&str>,
    file: Option<&Path>,
    base_dir: &Path,
    keys: (&str, &str),
) -> Result<Option<Zeroizing<Vec<u8>>>, ConfigError> {
    secureform_secrets::SecretSource {
        env,
        file,
        keys: secureform_secrets::Keys {
            env: keys.0,
            file: keys.1,
        },
    }
    .load_bytes(base_dir)
}

/// Loads the encryption key the configuration names, checked for its mode.
pub(crate) fn load_key(config: &Config, base_dir: &Path) -> Result<ValueKey, ConfigError> {
    let which = if config.key_env.is_some() {
        "key_env"
    } else {
        "key_file"
    };
    let secret = read_secret(
        config.key_env.as_deref(),
        config.key_file.as_deref(),
        base_dir,
        ("key_env", "key_file"),
    )?;
    match (config.encryption, secret) {
        (Encryption::None, _) => Ok(ValueKey::None),
        (mode, None) => Err(ConfigError::new(
            "key_env",
            format!(
                "encryption = \"{}\" needs key_env or key_file",
                mode.as_str()
            ),
        )),
        (Encryption::AesGcm, Some(bytes)) => {
            let text = std::str::from_utf8(&bytes).map_err(|_| gcm_key_error(which))?;
            let raw = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|_| gcm_key_error(which))?,
            );
            let unbound = UnboundKey::new(&AES_256_GCM, &raw)
                .ok()
                .filter(|_| raw.len() == 32)
                .ok_or_else(|| gcm_key_error(which))?;
            Ok(ValueKey::Gcm(Box::new(LessSafeKey::new(unbound))))
        }
        (Encryption::MysqlAes, Some(bytes)) => {
            if bytes.len() < MIN_MYSQL_AES_KEY {
                return Err(ConfigError::new(
                    which,
                    format!("the mysql_aes key must be at least {MIN_MYSQL_AES_KEY} bytes"),
                ));
            }
            Ok(ValueKey::Mysql(SecretBox::new(Box::new(bytes.to_vec()))))
        }
    }
}

fn gcm_key_error(which: &str) -> ConfigError {
    ConfigError::new(
        which,
        "the aes_gcm key must be 32 bytes in standard base64 (e.g. `openssl rand -base64 32`)",
    )
}

/// Loads the database password from `password_env` / `password_file`, when one is set.
pub(crate) fn load_password(
    config: &Config,
    base_dir: &Path,
) -> Result<Option<SecretString>, ConfigError> {
    let secret = read_secret(
        config.password_env.as_deref(),
        config.password_file.as_deref(),
        base_dir,
        ("password_env", "password_file"),
    )?;
    match secret {
        None => Ok(None),
        Some(bytes) => {
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ConfigError::new(
                    if config.password_env.is_some() {
                        "password_env"
                    } else {
                        "password_file"
                    },
                    "the password is not UTF-8",
                )
            })?;
            Ok(Some(SecretString::from(text)))
        }
    }
}
