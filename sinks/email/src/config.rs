//! The sink's table in the configuration file, and its pure checks.

use std::path::PathBuf;
use std::str::FromStr;

use lettre::Address;
use secureform_contract::{AtRest, ConfigError};
use serde::Deserialize;

use crate::subject::Template;

/// How a message is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// PGP/MIME (RFC 3156), encrypted to every certificate in `recipient_keys`.
    Pgp,
    /// S/MIME (RFC 8551) enveloped data to every X.509 certificate in `recipient_keys`.
    Smime,
    /// A plain message, sent only over TLS: not encrypted in the mailbox, and warned about.
    Tls,
    /// A content-free notification, sent only over TLS: it says that a submission arrived
    /// (form, time, id, a link) and holds no field value, file name or file.
    Notify,
}

/// The S/MIME content cipher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum SmimeCipher {
    /// `EnvelopedData`, AES-256-CBC: read by every S/MIME client.
    #[default]
    #[serde(rename = "aes256-cbc")]
    Aes256Cbc,
    /// `AuthEnvelopedData` (RFC 5083), AES-256-GCM: authenticated; newer clients only.
    #[serde(rename = "aes256-gcm")]
    Aes256Gcm,
}

/// The default Subject template.
pub const DEFAULT_SUBJECT: &str = "Submission {id} to form {form}";
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The `[sinks.NAME]` table of an email sink (without its `type`). Secrets are never stored
/// here: only the name of the variable or file that holds them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `pgp`, `smime` or `tls`.
    pub mode: Mode,
    /// `smtp://host[:port]` (STARTTLS required, port 587 by default) or `smtps://host[:port]`
    /// (implicit TLS, port 465 by default). There is no plaintext option.
    pub smtp_url: String,
    /// The envelope sender and `From:` address.
    pub from: String,
    /// The recipients' addresses (envelope and `To:`).
    pub to: Vec<String>,
    /// PGP certificates (`pgp`) or X.509 certificates in PEM or DER (`smime`); relative paths
    /// are resolved against the configuration file's folder. Not allowed in `tls` mode.
    #[serde(default)]
    pub recipient_keys: Vec<PathBuf>,
    /// A private CA (PEM) for the SMTP server's certificate; when set, only this CA is trusted.
    /// Otherwise the system's trust store is used.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user name; needs exactly one of `password_env`, `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding the SMTP password (a trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The Subject template: `{id}`, `{form}`, `{received_at}`, and `{NAME}` for a field listed
    /// in `subject_fields`; `{{` and `}}` are literal braces. Default [`DEFAULT_SUBJECT`].
    #[serde(default)]
    pub subject: Option<String>,
    /// The fields the owner marks as safe to show in the (never encrypted) Subject.
    #[serde(default)]
    pub subject_fields: Vec<String>,
    /// `smime` only: `aes256-cbc` (default) or `aes256-gcm`.
    #[serde(default)]
    pub smime_cipher: Option<SmimeCipher>,
    /// The name this client gives in EHLO (default `[127.0.0.1]`); some servers want the
    /// host's real name.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Seconds allowed for each SMTP step (connect, each command). Default 30, at most 600.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Attach the normalized submission as `submission.json` (inside the encryption) so that
    /// software can read the fields exactly. Default true.
    #[serde(default)]
    pub attach_json: Option<bool>,
    /// `notify` only: where the submission can be seen, `{id}` and `{form}` filled in (for
    /// example `https://forms.example.com/api/v1/submissions/{id}`). Without it, the message
    /// names the API path.
    #[serde(default)]
    pub link: Option<String>,
}

/// Where and how to connect, parsed from `smtp_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The server's host name or address.
    pub host: String,
    /// The server's port (587 for `smtp://`, 465 for `smtps://` when not given).
    pub port: u16,
    /// True for `smtps://` (TLS from the first byte), false for `smtp://` (STARTTLS required).
    pub implicit_tls: bool,
}

impl Config {
    /// From the configuration alone, no I/O: how what this sink writes is protected at rest.
    pub fn at_rest(&self) -> secureform_contract::AtRest {
        let n = self.recipient_keys.len();
        match self.mode {
            Mode::Pgp => AtRest::encrypted(format!(
                "PGP/MIME: each message is encrypted to {n} recipient certificate(s); only their \
                 secret keys open it in the mailbox"
            )),
            Mode::Smime => {
                let cipher = match self.cipher() {
                    SmimeCipher::Aes256Cbc => "AES-256-CBC",
                    SmimeCipher::Aes256Gcm => "AES-256-GCM",
                };
                AtRest::encrypted(format!(
                    "S/MIME: each message is enveloped ({cipher}, RSA key transport) to {n} \
                     recipient certificate(s); only their private keys open it in the mailbox"
                ))
            }
            Mode::Tls => AtRest::plaintext(
                "delivered over TLS but stored in plaintext in the recipient's mailbox",
            ),
            // Nothing of the submission is in the mailbox, so nothing there needs protecting.
            Mode::Notify => AtRest::encrypted(
                "content-free notification: the message holds only the form name, the time, \
                 the submission id and a link; no field value, file name or file",
            ),
        }
    }

    /// Pure checks (no I/O): values in range, required combinations. Errors name the key.
    pub fn validate(&self) -> Result<(), secureform_contract::ConfigError> {
        self.endpoint()?;
        self.from_address()?;
        self.to_addresses()?;
        match (self.mode, self.recipient_keys.is_empty()) {
            (Mode::Pgp | Mode::Smime, true) => {
                return Err(ConfigError::new(
                    "recipient_keys",
                    "at least one recipient certificate is needed in modes pgp and smime",
                ))
            }
            (Mode::Tls, false) => {
                return Err(ConfigError::new(
                    "recipient_keys",
                    "not used in mode tls (messages are not encrypted); remove it, or choose \
                     mode pgp or smime",
                ))
            }
            (Mode::Notify, false) => {
                return Err(ConfigError::new(
                    "recipient_keys",
                    "not used in mode notify (the message holds no content)",
                ))
            }
            _ => {}
        }
        if self.mode == Mode::Notify {
            if !self.subject_fields.is_empty() {
                return Err(ConfigError::new(
                    "subject_fields",
                    "not allowed in mode notify: a notification holds no field value",
                ));
            }
            if self.attach_json == Some(true) {
                return Err(ConfigError::new(
                    "attach_json",
                    "not allowed in mode notify: a notification holds no content",
                ));
            }
        } else if self.link.is_some() {
            return Err(ConfigError::new("link", "only used in mode notify"));
        }
        if let Some(link) = &self.link {
            if !link.is_ascii() || link.chars().any(|c| c.is_ascii_control()) || link.len() > 2000 {
                return Err(ConfigError::new(
                    "link",
                    "must be one line of at most 2000 ASCII characters",
                ));
            }
        }
        if self.smime_cipher.is_some() && self.mode != Mode::Smime {
            return Err(ConfigError::new("smime_cipher", "only used in mode smime"));
        }
        self.check_auth()?;
        if let Some(name) = &self.hello_name {
            let ok = !name.is_empty()
                && name.len() <= 255
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(ConfigError::new(
                    "hello_name",
                    "must be a host name (letters, digits, '.', '-')",
                ));
            }
        }
        self.subject_template()?;
        if !(1..=600).contains(&self.timeout()) {
            return Err(ConfigError::new(
                "timeout_secs",
                "must be between 1 and 600 seconds",
            ));
        }
        Ok(())
    }

    fn check_auth(&self) -> Result<(), ConfigError> {
        let sources =
            usize::from(self.password_env.is_some()) + usize::from(self.password_file.is_some());
        match (&self.username, sources) {
            (Some(user), 1) if !user.is_empty() && !user.chars().any(char::is_control) => Ok(()),
            (Some(_), 1) => Err(ConfigError::new(
                "username",
                "must be non-empty, without control characters",
            )),
            (Some(_), 0) => Err(ConfigError::new(
                "username",
                "needs password_env or password_file",
            )),
            (_, 2) => Err(ConfigError::new(
                "password_env",
                "give password_env or password_file, not both",
            )),
            (None, _) if sources > 0 => Err(ConfigError::new(
                "username",
                "password_env/password_file given without username",
            )),
            _ => Ok(()),
        }
    }

    /// The S/MIME cipher in force.
    pub fn cipher(&self) -> SmimeCipher {
        self.smime_cipher.unwrap_or_default()
    }

    /// The SMTP timeout in force.
    pub fn timeout(&self) -> u64 {
        self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)
    }

    /// Whether `submission.json` is attached.
    pub fn attach_json(&self) -> bool {
        self.attach_json.unwrap_or(true)
    }

    /// The parsed Subject template.
    pub fn subject_template(&self) -> Result<Template, ConfigError> {
        let text = self.subject.as_deref().unwrap_or(DEFAULT_SUBJECT);
        Template::parse(text, &self.subject_fields)
    }

    /// The sender, parsed.
    pub fn from_address(&self) -> Result<Address, ConfigError> {
        parse_address(&self.from).map_err(|m| ConfigError::new("from", m))
    }

    /// The recipients, parsed.
    pub fn to_addresses(&self) -> Result<Vec<Address>, ConfigError> {
        if self.to.is_empty() {
            return Err(ConfigError::new("to", "at least one address is needed"));
        }
        self.to
            .iter()
            .map(|a| parse_address(a).map_err(|m| ConfigError::new("to", m)))
            .collect()
    }

    /// Host, port and TLS style from `smtp_url`.
    pub fn endpoint(&self) -> Result<Endpoint, ConfigError> {
        let err = |m: &str| ConfigError::new("smtp_url", m);
        let url = url::Url::parse(&self.smtp_url).map_err(|_| err("not a valid URL"))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => {
                return Err(err(
                    "must start with smtp:// (STARTTLS, required) or smtps:// (implicit TLS); \
                     plaintext SMTP is not offered",
                ))
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(
                "must not carry credentials; use username with password_env or password_file",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !matches!(url.path(), "" | "/") {
            return Err(err(
                "must be smtp[s]://host[:port] with nothing after the port",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(err("has no host")),
        };
        let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
        Ok(Endpoint {
            host,
            port,
            implicit_tls,
        })
    }
}

fn parse_address(text: &str) -> Result<Address, String> {
    if !text.is_ascii() {
        return Err("internationalized (non-ASCII) addresses are not supported".to_owned());
    }
    Address::from_str(text).map_err(|_| format!("not an email address: {text:?}"))
}
