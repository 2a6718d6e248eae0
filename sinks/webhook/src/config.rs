//! The sink's configuration: parsing (serde), pure validation and the at-rest classification.

use std::path::PathBuf;

use reqwest::Url;
use secureform_contract::{AtRest, ConfigError};
use serde::Deserialize;

use crate::guard;

/// How long one delivery (connect, TLS, request, response) may take (default).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// The longest `timeout_secs` accepted.
pub const MAX_TIMEOUT_SECS: u64 = 600;
/// Files up to this size ride inline as base64 by default (1 MiB).
pub const DEFAULT_INLINE_FILE_BYTES: u64 = 1024 * 1024;
/// The largest `inline_file_bytes` accepted (16 MiB): a body is held in memory while sent.
pub const MAX_INLINE_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The `[sinks.<name>]` table of a `type = "webhook"` sink, without its `type` key.
///
/// Secrets are never stored here, only where to find them (`secret_env`, `secret_file`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where each submission is POSTed: `https://` (plain `http://` only to a loopback address,
    /// and only with `allow_private = true`).
    pub url: String,
    /// The environment variable holding the signing secret(s): one or more `whsec_…` values
    /// separated by whitespace. Exactly one of `secret_env`, `secret_file` is required.
    pub secret_env: Option<String>,
    /// A file holding the signing secret(s), one `whsec_…` per line (or whitespace-separated).
    /// It must not be readable by group or others.
    pub secret_file: Option<PathBuf>,
    /// A PEM file of CA certificates: when set, the receiver's certificate must chain to one of
    /// them, and the system's roots are not used.
    pub ca_file: Option<PathBuf>,
    /// How long, in seconds, one delivery may take (default 30, at most 600).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Files up to this many bytes are sent inline as base64; larger ones as a link
    /// (`api_file_url`). 0 sends none inline. Default 1 MiB, at most 16 MiB.
    #[serde(default = "default_inline")]
    pub inline_file_bytes: u64,
    /// The link to a file too large to inline, with `{id}` (submission id) and `{n}` (the file's
    /// index), e.g. `https://forms.example.com/api/v1/documents/{id}/files/{n}?sink=docs`.
    /// Unset: such a file is described by its metadata only.
    pub api_file_url: Option<String>,
    /// OpenPGP certificates: when set, the body is an OpenPGP message to them.
    pub pgp_recipients: Option<Vec<PathBuf>>,
    /// Permits loopback, private and link-local receivers (tests, a receiver on the same host).
    #[serde(default)]
    pub allow_private: bool,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_inline() -> u64 {
    DEFAULT_INLINE_FILE_BYTES
}

impl Config {
    /// From the configuration alone, no I/O: how what this sink sends is protected at rest.
    pub fn at_rest(&self) -> AtRest {
        match &self.pgp_recipients {
            Some(recipients) if !recipients.is_empty() => AtRest::encrypted(format!(
                "each webhook body is an OpenPGP message to {} recipient{}",
                recipients.len(),
                if recipients.len() == 1 { "" } else { "s" }
            )),
            _ => AtRest::plaintext(
                "TLS protects the request only; the receiver's logs and queues hold the submission in plaintext",
            ),
        }
    }

    /// Pure checks (no I/O): the URL's scheme and literal address, values in range, required
    /// combinations. Errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.parsed_url()?;
        match (&self.secret_env, &self.secret_file) {
            (None, None) => {
                return Err(ConfigError::new(
                    "secret_env",
                    "no signing secret: set secret_env or secret_file",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "secret_file",
                    "set only one of secret_env, secret_file",
                ))
            }
            (Some(name), None) if name.is_empty() || name.contains(['=', '\0']) => {
                return Err(ConfigError::new(
                    "secret_env",
                    "must name an environment variable",
                ))
            }
            _ => {}
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(ConfigError::new(
                "timeout_secs",
                format!("must be between 1 and {MAX_TIMEOUT_SECS}"),
            ));
        }
        if self.inline_file_bytes > MAX_INLINE_FILE_BYTES {
            return Err(ConfigError::new(
                "inline_file_bytes",
                format!("must be at most {MAX_INLINE_FILE_BYTES}"),
            ));
        }
        if let Some(pattern) = &self.api_file_url {
            let example = pattern.replace("{id}", "01J").replace("{n}", "0");
            let ok = pattern.contains("{id}")
                && pattern.contains("{n}")
                && Url::parse(&example)
                    .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host());
            if !ok {
                return Err(ConfigError::new(
                    "api_file_url",
                    "must be an http(s) URL holding `{id}` and `{n}`, e.g. \"https://forms.example.com/api/v1/documents/{id}/files/{n}\"",
                ));
            }
        }
        if let Some(recipients) = &self.pgp_recipients {
            if recipients.is_empty() {
                return Err(ConfigError::new(
                    "pgp_recipients",
                    "lists no certificate; remove the key to send plaintext, or name at least one",
                ));
            }
        }
        Ok(())
    }

    /// The URL, checked: https (or http to loopback with `allow_private`), a host, no user
    /// info, and an address literal the SSRF guard permits.
    pub fn parsed_url(&self) -> Result<Url, ConfigError> {
        let bad = |why: &str| ConfigError::new("url", why.to_owned());
        let url = Url::parse(&self.url).map_err(|e| bad(&format!("not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry a user name or password"));
        }
        let host = url.host().ok_or_else(|| bad("has no host"))?;
        let literal = guard::literal_ip(&host);
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private && is_loopback_host(&host, literal) => {}
            "http" => {
                return Err(bad(
                    "must be https:// (plain http:// only to a loopback address, with allow_private = true)",
                ))
            }
            _ => return Err(bad("must be an https:// URL")),
        }
        if let Some(ip) = literal {
            if !self.allow_private {
                if let Some(class) = guard::refused_class(ip) {
                    return Err(bad(&format!(
                        "{ip} is a {class} address; refused unless allow_private = true"
                    )));
                }
            }
        }
        Ok(url)
    }

    /// The configured timeout as a duration.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }
}

fn is_loopback_host(host: &url::Host<&str>, literal: Option<std::net::IpAddr>) -> bool {
    match literal {
        Some(ip) => guard::canonical(ip).is_loopback(),
        None => matches!(host, url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(&format!(
            "url = \"https://hooks.example.com/in\"\nsecret_env = \"S\"\n{extra}"
        ))
    }

    fn key(toml: &str) -> String {
        let c: Config = toml::from_str(toml).unwrap();
        c.validate().unwrap_err().key
    }

    #[test]
    fn defaults_and_at_rest() {
        let c = parse("").unwrap();
        c.validate().unwrap();
        assert_eq!((c.timeout_secs, c.inline_file_bytes), (30, 1024 * 1024));
        assert!(!c.allow_private);
        assert!(c.at_rest().needs_warning());
        let c = parse("pgp_recipients = [\"a.asc\", \"b.asc\"]").unwrap();
        assert!(!c.at_rest().needs_warning());
        assert!(c.at_rest().detail.contains("2 recipients"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse("secrets_env = [\"A\"]").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(parse("allow_private = \"yes\"").is_err());
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(key("url = \"https://h.example/\""), "secret_env");
        assert_eq!(
            key("url = \"https://h.example/\"\nsecret_env = \"A\"\nsecret_file = \"f\""),
            "secret_file"
        );
        assert_eq!(
            key("url = \"https://h.example/\"\nsecret_env = \"\""),
            "secret_env"
        );
        let with = |extra: &str| parse(extra).unwrap().validate().unwrap_err().key;
        assert_eq!(with("timeout_secs = 0"), "timeout_secs");
        assert_eq!(with("inline_file_bytes = 999999999"), "inline_file_bytes");
        assert_eq!(with("pgp_recipients = []"), "pgp_recipients");
        assert_eq!(
            with("api_file_url = \"https://x.example/{id}\""),
            "api_file_url"
        );
        with_url("ftp://h.example/");
        with_url("http://hooks.example.com/");
        with_url("https://user:pw@hooks.example.com/");
        with_url("not a url");
    }

    fn with_url(url: &str) {
        let c = toml::from_str::<Config>(&format!("url = \"{url}\"\nsecret_env = \"S\""));
        assert_eq!(c.unwrap().validate().unwrap_err().key, "url", "{url}");
    }

    #[test]
    fn private_literals_need_allow_private() {
        for url in [
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest",
            "https://[::ffff:10.0.0.1]/hook",
            "https://100.64.0.1/hook",
            "http://127.0.0.1:8080/hook",
        ] {
            with_url(url);
        }
        let allowed = |url: &str| {
            let c: Config = toml::from_str(&format!(
                "url = \"{url}\"\nsecret_env = \"S\"\nallow_private = true"
            ))
            .unwrap();
            c.validate()
        };
        allowed("https://127.0.0.1:8443/hook").unwrap();
        allowed("http://127.0.0.1:8080/hook").unwrap();
        allowed("http://localhost:8080/hook").unwrap();
        // Plain http stays for loopback only, even with allow_private.
        assert_eq!(allowed("http://10.0.0.1/hook").unwrap_err().key, "url");
    }
}
