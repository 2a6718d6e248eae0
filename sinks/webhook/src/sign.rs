//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the `whsec_` secrets,
//! loaded from the environment or a private file, and the `webhook-signature` header.

use std::path::Path;

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
        let source = secureform_secrets::SecretSource {
            env: config.secret_env.as_deref(),
            file: config.secret_file.as_deref(),
            keys: secureform_secrets::Keys {
                env: "secret_env",
                file: "secret_file",
            },
        };
        let key = if config.secret_env.is_some() {
            "secret_env"
        } else {
            "secret_file"
        };
        let text = source
            .load_text(base_dir)?
            .ok_or_else(|| ConfigError::new("secret_env", "no signing secret configured"))?;
        Keys::parse(secrecy::ExposeSecret::expose_secret(&text), key)
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

pub(crate) use secureform_secrets::resolve;

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
}
