//! The sink's configuration: parsing (serde), pure validation and the at-rest classification.

use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use secureform_contract::{AtRest, ConfigError};
use serde::Deserialize;

/// How long one blocking SSH or SFTP operation may stall before the delivery fails (retryable).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// The longest `timeout_secs` accepted.
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// The `[sinks.<name>]` table of a `type = "sftp"` sink, without its `type` key.
///
/// Secrets are never stored here, only where to find them (`*_env`, `*_file`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server's host name or address.
    pub host: String,
    /// The server's port (default 22).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// An OpenSSH or PEM private key (ed25519 or RSA). The file must not be readable by group or
    /// others. Exactly one of `private_key_file`, `password_env`, `password_file` is required.
    pub private_key_file: Option<PathBuf>,
    /// Added: the environment variable holding the private key's passphrase.
    pub passphrase_env: Option<String>,
    /// Added: a file holding the private key's passphrase (one trailing newline is ignored).
    pub passphrase_file: Option<PathBuf>,
    /// Added: the environment variable holding the user's password.
    pub password_env: Option<String>,
    /// Added: a file holding the user's password (one trailing newline is ignored).
    pub password_file: Option<PathBuf>,
    /// The pinned host key, exactly as `ssh-keygen -lf` prints it: `SHA256:` and unpadded base64.
    pub host_key_sha256: String,
    /// The remote folder the files go to; missing folders are created.
    pub path: String,
    /// The format of the submission's own file (default `json`).
    #[serde(default)]
    pub format: Format,
    /// OpenPGP certificates: when set, every uploaded file is an OpenPGP message to them.
    pub pgp_recipients: Option<Vec<PathBuf>>,
    /// Added: how long, in seconds, one SSH operation may stall (default 30, at most 3600).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_port() -> u16 {
    22
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// The format of `<path>/<submission id>.<format>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The normalized submission as JSON.
    #[default]
    Json,
    /// A header row and one data row (RFC 4180).
    Csv,
    /// A well-formed XML document.
    Xml,
}

impl Format {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Xml => "xml",
        }
    }
}

/// A SHA-256 host key fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Parses `SHA256:<unpadded base64>`, as `ssh-keygen -lf` prints it.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(
                "host_key_sha256",
                format!("{why}; expected `SHA256:` and 43 base64 characters, as `ssh-keygen -lf` prints them"),
            )
        };
        let b64 = text
            .trim()
            .strip_prefix("SHA256:")
            .ok_or_else(|| bad("does not start with `SHA256:`"))?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| bad("not base64"))?;
        let digest: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| bad("not a SHA-256 digest"))?;
        Ok(Fingerprint(digest))
    }

    /// The fingerprint of a digest the server offered.
    pub fn from_digest(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.0)
        )
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl Config {
    /// From the configuration alone, no I/O: how what this sink writes is protected at rest.
    pub fn at_rest(&self) -> AtRest {
        match &self.pgp_recipients {
            Some(recipients) if !recipients.is_empty() => AtRest::encrypted(format!(
                "each file is an OpenPGP message to {} recipient{}",
                recipients.len(),
                if recipients.len() == 1 { "" } else { "s" }
            )),
            _ => AtRest::plaintext(
                "SFTP protects the transfer only; files land in plaintext on the server",
            ),
        }
    }

    /// Pure checks (no I/O): values in range, required combinations. Errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError::new("host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(ConfigError::new("port", "must be between 1 and 65535"));
        }
        if self.user.is_empty() || self.user.contains('\0') {
            return Err(ConfigError::new("user", "must be a non-empty user name"));
        }
        self.validate_auth()?;
        Fingerprint::parse(&self.host_key_sha256)?;
        if self.path.is_empty() || self.path.contains('\0') {
            return Err(ConfigError::new(
                "path",
                "must be a non-empty remote folder, e.g. \"/incoming\"",
            ));
        }
        if let Some(recipients) = &self.pgp_recipients {
            if recipients.is_empty() {
                return Err(ConfigError::new(
                    "pgp_recipients",
                    "lists no certificate; remove the key to upload plaintext, or name at least one",
                ));
            }
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(ConfigError::new(
                "timeout_secs",
                format!("must be between 1 and {MAX_TIMEOUT_SECS}"),
            ));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let methods = [
            self.private_key_file.is_some(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ];
        match methods.iter().filter(|m| **m).count() {
            0 => {
                return Err(ConfigError::new(
                    "private_key_file",
                    "no authentication: set private_key_file, password_env or password_file",
                ))
            }
            1 => {}
            _ => {
                let key = if self.password_env.is_some() {
                    "password_env"
                } else {
                    "password_file"
                };
                return Err(ConfigError::new(
                    key,
                    "set only one of private_key_file, password_env, password_file",
                ));
            }
        }
        if self.passphrase_env.is_some() && self.passphrase_file.is_some() {
            return Err(ConfigError::new(
                "passphrase_file",
                "set only one of passphrase_env, passphrase_file",
            ));
        }
        if self.private_key_file.is_none() {
            if self.passphrase_env.is_some() {
                return Err(ConfigError::new(
                    "passphrase_env",
                    "only applies with private_key_file",
                ));
            }
            if self.passphrase_file.is_some() {
                return Err(ConfigError::new(
                    "passphrase_file",
                    "only applies with private_key_file",
                ));
            }
        }
        for (key, name) in [
            ("passphrase_env", &self.passphrase_env),
            ("password_env", &self.password_env),
        ] {
            if let Some(name) = name {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    return Err(ConfigError::new(key, "must name an environment variable"));
                }
            }
        }
        Ok(())
    }

    /// The configured timeout as a duration.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

    fn parse(extra: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(&format!(
            "host = \"127.0.0.1\"\nuser = \"forms\"\nhost_key_sha256 = \"{PIN}\"\npath = \"/in\"\n{extra}"
        ))
    }

    #[test]
    fn fingerprint_round_trips_as_ssh_keygen_prints_it() {
        let fp = Fingerprint::parse(PIN).unwrap();
        assert_eq!(fp.to_string(), PIN);
        assert_eq!(
            Fingerprint::parse("47DEQpj8HBSa").unwrap_err().key,
            "host_key_sha256"
        );
        assert!(Fingerprint::parse("SHA256:AAAA").is_err());
        assert!(Fingerprint::parse("SHA256:!!!").is_err());
    }

    #[test]
    fn defaults_and_at_rest() {
        let c = parse("private_key_file = \"k\"").unwrap();
        c.validate().unwrap();
        assert_eq!((c.port, c.format, c.timeout_secs), (22, Format::Json, 30));
        assert!(c.at_rest().needs_warning());
        let c = parse("private_key_file = \"k\"\npgp_recipients = [\"a.asc\", \"b.asc\"]").unwrap();
        assert!(!c.at_rest().needs_warning());
        assert!(
            c.at_rest().detail.contains("2 recipients"),
            "{}",
            c.at_rest().detail
        );
    }

    #[test]
    fn errors_name_the_key() {
        let key = |extra: &str| parse(extra).unwrap().validate().unwrap_err().key;
        assert_eq!(key(""), "private_key_file");
        assert_eq!(
            key("private_key_file = \"k\"\npassword_env = \"P\""),
            "password_env"
        );
        assert_eq!(
            key("password_env = \"P\"\npassphrase_env = \"X\""),
            "passphrase_env"
        );
        assert_eq!(
            key("password_env = \"P\"\ntimeout_secs = 0"),
            "timeout_secs"
        );
        assert_eq!(
            key("password_env = \"P\"\npgp_recipients = []"),
            "pgp_recipients"
        );
        assert_eq!(key("password_env = \"P\"\nport = 0"), "port");
        assert!(parse("password_env = \"P\"\nformat = \"yaml\"").is_err());
        assert!(parse("password_env = \"P\"\nhost_key = \"x\"").is_err());
    }
}
