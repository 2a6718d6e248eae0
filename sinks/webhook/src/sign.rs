//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the `whsec_` secrets,
//! loaded from the environment or a private file, and the `webhook-signature` header.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::hmac;
use secureform_contract::ConfigError;
use zeroize::Zeroizing;

use crate::config::Config;

/// The shortest and longest secret accepted, in bytes, as the specification recommends.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// The signing keys, newest or oldest in any order: every one signs every request, so a receiver
/// holding any of them verifies it (rotation without a flag day). Debug shows only the count.
pub struct Keys(Vec<hmac::Key>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} secret(s))", self.0.len())
    }
}

impl Keys {
    /// Parses whitespace-separated `whsec_<base64>` secrets; `key` names the configuration key.
    pub fn parse(text: &str, key: &str) -> Result<Keys, ConfigError> {
        let mut keys = Vec::new();
        for (i, secret) in text.split_whitespace().enumerate() {
            let bad = |why: &str| ConfigError::new(key, format!("secret {}: {why}", i + 1));
            let b64 = secret
                .strip_prefix("whsec_")
                .ok_or_else(|| bad("does not start with `whsec_`"))?;
            let raw = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| bad("the part after `whsec_` is not base64"))?,
            );
            if !SECRET_BYTES.contains(&raw.len()) {
                return Err(bad(&format!(
                    "decodes to {} bytes; a secret has 24 to 64 (e.g. `whsec_` + `openssl rand -base64 32`)",
                    raw.len()
                )));
            }
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, &raw));
        }
        if keys.is_empty() {
            return Err(ConfigError::new(key, "holds no secret"));
        }
        Ok(Keys(keys))
    }

    /// Loads the secrets the (validated) configuration names.
    pub fn load(config: &Config, base_dir: &Path) -> Result<Keys, ConfigError> {
        if let Some(name) = &config.secret_env {
            let value = Zeroizing::new(std::env::var(name).map_err(|_| {
                ConfigError::new(
                    "secret_env",
                    format!("the environment variable {name} is not set (or not UTF-8)"),
                )
            })?);
            if value.trim().is_empty() {
                return Err(ConfigError::new(
                    "secret_env",
                    format!("the environment variable {name} is empty"),
                ));
            }
            return Keys::parse(&value, "secret_env");
        }
        let file = config
            .secret_file
            .as_deref()
            .ok_or_else(|| ConfigError::new("secret_env", "no signing secret configured"))?;
        let path = resolve(base_dir, file);
        let text = read_secret_file(&path, "secret_file")?;
        if text.trim().is_empty() {
            return Err(ConfigError::new(
                "secret_file",
                format!("{}: the file is empty", path.display()),
            ));
        }
        Keys::parse(&text, "secret_file")
    }

    /// The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
    /// for each secret, separated by spaces.
    pub fn signature(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let signed = |key: &hmac::Key| {
            let mut ctx = hmac::Context::with_key(key);
            ctx.update(id.as_bytes());
            ctx.update(b".");
            ctx.update(timestamp.to_string().as_bytes());
            ctx.update(b".");
            ctx.update(body);
            let tag = ctx.sign();
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
            )
        };
        self.0.iter().map(signed).collect::<Vec<_>>().join(" ")
    }
}

/// Resolves `path` against the configuration file's folder.
pub(crate) fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specification_example() {
        // The example of the Standard Webhooks reference libraries' tests.
        let keys = Keys::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret_env").unwrap();
        let sig = keys.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn several_secrets_sign_each() {
        let a = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let b = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        );
        let keys = Keys::parse(&format!("{a}\n{b}\n"), "secret_file").unwrap();
        let sig = keys.signature("id", 1, b"x");
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.split(' ').all(|s| s.starts_with("v1,")));
    }

    #[test]
    fn refuses_bad_secrets() {
        for text in [
            "",
            "  \n",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!",
            "whsec_AAAA",
        ] {
            let err = Keys::parse(text, "secret_env").unwrap_err();
            assert_eq!(err.key, "secret_env", "{text}");
        }
    }

    #[test]
    fn refuses_a_secret_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        fs::write(&path, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_file(&path, "secret_file").unwrap_err();
        assert!(err.message.contains("chmod 600"), "{err}");
    }
}
