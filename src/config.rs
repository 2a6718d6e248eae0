//! Configuration: the TOML file of SPEC.md, parsed into types that are valid by construction.
//!
//! Parsing rejects unknown keys everywhere (`deny_unknown_fields`), and every error names the
//! file, the table and the key. Relative paths are resolved against the folder of the
//! configuration file (the current folder for the embedded default). Secrets never live in the
//! file: only the names of the files or environment variables that hold them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secureform_contract::AtRest;
use serde::Deserialize;

use crate::limits::Limits;

mod captcha;
mod values;
pub use captcha::{
    AltchaConfig, CaptchaConfig, CaptchaProvider, CaptchaSetupError, SiteverifyConfig,
};
pub use values::{Charset, ListenAddr, Origin, RedirectUrl, TokenHash};

/// The file looked for when `--config` is not given.
pub const DEFAULT_FILE: &str = "secureform.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    storage: StorageConfig,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    dispatch: DispatchConfig,
    #[serde(default)]
    forms: BTreeMap<String, FormConfig>,
    #[serde(default)]
    sinks: BTreeMap<String, SinkConfig>,
    #[serde(default)]
    tokens: BTreeMap<String, TokenConfig>,
    #[serde(default)]
    console: crate::console::ConsoleConfig,
    #[serde(default)]
    retention: RetentionConfig,
}

/// `[retention]`: how long documents and spooled submissions are kept (docs/retention.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days a submission is kept when its form says nothing; 0 keeps it.
    #[serde(default)]
    pub default_days: u32,
    /// Seconds between sweeps (the first runs at start).
    #[serde(default = "default_sweep_secs")]
    pub sweep_secs: u64,
}

fn default_sweep_secs() -> u64 {
    3600
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            default_days: 0,
            sweep_secs: default_sweep_secs(),
        }
    }
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Submit to its forms.
    Submit,
    /// Read its forms' delivery states and documents.
    Read,
    /// Re-queue dead deliveries, read the audit log.
    Admin,
}

/// `[tokens.NAME]`: an integrator's bearer token, stored as the SHA-256 of the token (hex).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub sha256: TokenHash,
    pub scopes: Vec<Scope>,
    /// The forms it may touch; `["*"]` for all.
    pub forms: Vec<String>,
}

impl TokenConfig {
    /// Whether the token may touch `form`.
    pub fn allows_form(&self, form: &str) -> bool {
        self.forms.iter().any(|f| f == "*" || f == form)
    }
}

/// `[server]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: ListenAddr,
}

fn default_listen() -> ListenAddr {
    ListenAddr::Socket(std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
        }
    }
}

/// `[storage]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: Option<PathBuf>,
    pub master_key_file: Option<PathBuf>,
    pub master_key_env: Option<String>,
    pub pgp_signing_key: Option<PathBuf>,
    // The spool's backend (`crate::storage_backend`).
    pub backend: Option<String>,
    pub postgres_url_env: Option<String>,
    pub postgres_url_file: Option<PathBuf>,
    pub pool_size: Option<u32>,
    pub lease_secs: Option<u64>,
    pub postgres_ssl_mode: Option<String>,
    pub postgres_ssl_root_cert: Option<PathBuf>,
}

/// `[dispatch]`: how deliveries are retried.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Attempts before a delivery is dead.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Age (seconds since the submission was received) after which a failing delivery is dead.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// First retry delay; doubles each attempt, with jitter.
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Deliveries in flight at once, per sink.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_max_attempts() -> u32 {
    15
}
fn default_max_age_secs() -> u64 {
    3 * 24 * 3600
}
fn default_backoff_base_ms() -> u64 {
    1_000
}
fn default_backoff_max_ms() -> u64 {
    30 * 60 * 1000
}
fn default_concurrency() -> usize {
    8
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_attempts: default_max_attempts(),
            max_age_secs: default_max_age_secs(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            concurrency: default_concurrency(),
        }
    }
}

/// `[forms.NAME]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormConfig {
    pub sinks: Vec<String>,
    /// Where browsers are sent after a submission (303), instead of the built-in thank-you page.
    pub redirect: Option<RedirectUrl>,
    #[serde(default)]
    pub required: Vec<String>,
    /// A field that people leave empty and bots fill: a filled one is accepted and dropped.
    pub honeypot: Option<String>,
    /// Origins allowed to post (checked against the Origin header when a browser sends one).
    #[serde(default)]
    pub allowed_origins: Vec<Origin>,
    /// How to decode urlencoded bodies (Acrobat's HTML format sends the host code page).
    pub charset: Option<Charset>,
    /// Title of the built-in thank-you page.
    pub thanks_title: Option<String>,
    /// Message of the built-in thank-you page.
    pub thanks_message: Option<String>,
    /// Submissions per minute from one client address to this form (overrides
    /// `[limits] rate_per_minute`; 0 turns the limit off for this form).
    pub rate_per_minute: Option<u32>,
    /// Spam protection checked on this server before anything is kept: `provider = "altcha"`
    /// (proof of work), or `"turnstile"`, `"hcaptcha"`, `"recaptcha"` (the provider's
    /// siteverify API).
    pub captcha: Option<CaptchaConfig>,
    /// A post sooner than this after its challenge was issued is refused (needs the `altcha`
    /// captcha).
    pub min_submit_secs: Option<u64>,
    /// Days its submissions are kept, then erased (overrides `[retention] default_days`; 0
    /// keeps them).
    pub retain_days: Option<u32>,
    /// Fields that identify the person who submitted (e.g. `["email"]`): kept in a keyed blind
    /// index so that their submissions can be found and erased on request (`crate::subjects`).
    #[serde(default)]
    pub subject_fields: Vec<String>,
}

pub use crate::registry::SinkConfig;

/// Where the key-encryption keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    File(PathBuf),
    Env(String),
}

/// A valid configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from, or "embedded default".
    pub origin: String,
    pub base_dir: PathBuf,
    pub listen: ListenAddr,
    pub data_dir: PathBuf,
    pub keys: KeySource,
    pub pgp_signing_key: Option<PathBuf>,
    pub limits: Limits,
    pub dispatch: DispatchConfig,
    pub forms: BTreeMap<String, FormConfig>,
    pub sinks: BTreeMap<String, SinkConfig>,
    pub tokens: BTreeMap<String, TokenConfig>,
    /// `[console]`: the web console (off by default).
    pub console: crate::console::ConsoleConfig,
    /// The key file is the default one under `data_dir`: `serve` creates it on first run.
    pub create_key: bool,
    /// Where the spool keeps its records (`[storage] backend`).
    pub spool_backend: crate::storage_backend::SpoolBackendConfig,
    /// `[retention]`: how long submissions are kept.
    pub retention: RetentionConfig,
}

/// A configuration error, naming the file, the table and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A form, sink or token name: 1-64 letters, digits, `_` or `-` (a bare TOML key). Names are
/// used in URLs, file names and SQL identifiers: keep them plain.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Config {
    /// Loads `--config FILE`, else `./secureform.toml` when present, else the embedded default.
    pub fn load(explicit: Option<&Path>) -> Result<Config, Invalid> {
        match explicit {
            Some(path) => Self::from_file(path),
            None if Path::new(DEFAULT_FILE).exists() => Self::from_file(Path::new(DEFAULT_FILE)),
            None => Ok(Self::embedded_default()),
        }
    }

    /// The embedded default: one form `contact` delivering to the local Documents store.
    pub fn embedded_default() -> Config {
        let data_dir = PathBuf::from("secureform-data");
        let mut forms = BTreeMap::new();
        forms.insert(
            "contact".to_owned(),
            FormConfig {
                sinks: vec!["docs".to_owned()],
                redirect: None,
                required: Vec::new(),
                honeypot: Some("_gotcha".to_owned()),
                allowed_origins: Vec::new(),
                charset: None,
                thanks_title: None,
                thanks_message: None,
                rate_per_minute: None,
                captcha: None,
                min_submit_secs: None,
                retain_days: None,
                subject_fields: Vec::new(),
            },
        );
        let mut sinks = BTreeMap::new();
        sinks.insert(
            "docs".to_owned(),
            SinkConfig::Documents(secureform_documents::Config::default()),
        );
        let base_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Config {
            spool_backend: Default::default(),
            origin: "embedded default".to_owned(),
            keys: KeySource::File(base_dir.join(&data_dir).join("master.key")),
            data_dir: base_dir.join(&data_dir),
            base_dir,
            listen: default_listen(),
            pgp_signing_key: None,
            limits: Limits::default(),
            dispatch: DispatchConfig::default(),
            forms,
            sinks,
            tokens: BTreeMap::new(),
            console: crate::console::ConsoleConfig::default(),
            create_key: true,
            retention: RetentionConfig::default(),
        }
    }

    /// Parses and checks a configuration file.
    pub fn from_file(path: &Path) -> Result<Config, Invalid> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Invalid(format!("{shown}: cannot read: {e}")))?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let base_dir = std::fs::canonicalize(&base_dir).unwrap_or(base_dir);
        Self::from_str(&text, &shown, &base_dir)
    }

    /// Parses and checks configuration text; `origin` names the file in errors.
    pub fn from_str(text: &str, origin: &str, base_dir: &Path) -> Result<Config, Invalid> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.message().trim();
            let offset = e.span().map(|s| s.start);
            let offset = unknown_key(message)
                .and_then(|key| offset.and_then(|at| key_offset(text, at, key)))
                .or(offset);
            let (line, table) = locate(text, offset);
            // A typed value's refusal names its key (`values::KEYS`): said as the loader's own
            // checks say it, `[TABLE] KEY: ...`.
            match message
                .split_once(": ")
                .filter(|(key, _)| values::KEYS.contains(key))
            {
                Some((key, refusal)) => {
                    Invalid(format!("{origin}: line {line}, {table} {key}: {refusal}"))
                }
                None => Invalid(format!(
                    "{origin}: line {line}, in {table}: {}",
                    plain_words(message)
                )),
            }
        })?;
        let err = |table: &str, key: &str, msg: &str| {
            Invalid(format!("{origin}: [{table}] {key}: {msg}"))
        };

        for (name, sink) in &raw.sinks {
            if !valid_name(name) {
                return Err(err(
                    "sinks",
                    name,
                    "a sink name is 1-64 letters, digits, '_' or '-'",
                ));
            }
            sink.validate()
                .map_err(|e| err(&format!("sinks.{name}"), &e.key, &e.message))?;
        }
        if raw.forms.is_empty() {
            return Err(err("forms", "", "no form is configured"));
        }
        for (name, form) in &raw.forms {
            let table = format!("forms.{name}");
            if !valid_name(name) {
                return Err(err(
                    "forms",
                    name,
                    "a form name is 1-64 letters, digits, '_' or '-'",
                ));
            }
            if form.sinks.is_empty() {
                return Err(err(&table, "sinks", "a form needs at least one sink"));
            }
            for sink in &form.sinks {
                if !raw.sinks.contains_key(sink) {
                    return Err(err(
                        &table,
                        "sinks",
                        &format!("no sink named `{sink}` in [sinks]"),
                    ));
                }
            }
            if let Some(captcha) = &form.captcha {
                captcha
                    .validate()
                    .map_err(|(key, msg)| err(&table, "captcha", &format!("{key}: {msg}")))?;
            }
            if let Some(secs) = form.min_submit_secs {
                match form.captcha.as_ref().map(|c| c.altcha()) {
                    None => {
                        return Err(err(
                            &table,
                            "min_submit_secs",
                            "min_submit_secs is measured from the form's challenge: set captcha = { provider = \"altcha\", … } too",
                        ))
                    }
                    Some(None) => {
                        return Err(err(
                            &table,
                            "min_submit_secs",
                            "min_submit_secs is measured from an ALTCHA challenge issued here; it does not apply to a third-party captcha",
                        ))
                    }
                    Some(Some(c)) if secs >= c.expires_secs => {
                        return Err(err(
                            &table,
                            "min_submit_secs",
                            "min_submit_secs must be less than the challenge's expires_secs",
                        ))
                    }
                    Some(Some(_)) => {}
                }
            }
            if form
                .subject_fields
                .iter()
                .any(|f| f.is_empty() || f.len() > 256)
            {
                return Err(err(
                    &table,
                    "subject_fields",
                    "field names must be 1 to 256 bytes",
                ));
            }
        }
        for (name, token) in &raw.tokens {
            let table = format!("tokens.{name}");
            if !valid_name(name) {
                return Err(err(
                    "tokens",
                    name,
                    "a token name is 1-64 letters, digits, '_' or '-'",
                ));
            }
            if token.scopes.is_empty() {
                return Err(err(
                    &table,
                    "scopes",
                    "give at least one of submit, read, admin",
                ));
            }
            for form in &token.forms {
                if form != "*" && !raw.forms.contains_key(form) {
                    return Err(err(
                        &table,
                        "forms",
                        &format!("no form named `{form}` in [forms]"),
                    ));
                }
            }
        }
        raw.limits
            .validate()
            .map_err(|(key, msg)| err("limits", key, msg))?;
        if !(1..=7 * 86_400).contains(&raw.retention.sweep_secs) {
            return Err(err("retention", "sweep_secs", "must be 1 to 604800"));
        }
        if raw.dispatch.max_attempts == 0 || raw.dispatch.concurrency == 0 {
            return Err(err(
                "dispatch",
                "max_attempts",
                "max_attempts and concurrency must be at least 1",
            ));
        }

        let storage = raw.storage;
        let spool_backend = crate::storage_backend::SpoolBackendConfig::parse(
            crate::storage_backend::RawBackend {
                backend: storage.backend,
                postgres_url_env: storage.postgres_url_env,
                postgres_url_file: storage.postgres_url_file,
                pool_size: storage.pool_size,
                lease_secs: storage.lease_secs,
                postgres_ssl_mode: storage.postgres_ssl_mode,
                postgres_ssl_root_cert: storage.postgres_ssl_root_cert,
            },
            base_dir,
        )
        .map_err(|(key, msg)| err("storage", key, &msg))?;
        let data_dir = base_dir.join(
            storage
                .data_dir
                .unwrap_or_else(|| PathBuf::from("secureform-data")),
        );
        let create_key = storage.master_key_file.is_none() && storage.master_key_env.is_none();
        let keys = match (storage.master_key_file, storage.master_key_env) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "storage",
                    "master_key_env",
                    "give master_key_file or master_key_env, not both",
                ))
            }
            (Some(file), None) => KeySource::File(base_dir.join(file)),
            (None, Some(env)) => KeySource::Env(env),
            (None, None) => KeySource::File(data_dir.join("master.key")),
        };
        Ok(Config {
            origin: origin.to_owned(),
            base_dir: base_dir.to_path_buf(),
            listen: raw.server.listen,
            data_dir,
            keys,
            pgp_signing_key: storage.pgp_signing_key.map(|p| base_dir.join(p)),
            limits: raw.limits,
            dispatch: raw.dispatch,
            forms: raw.forms,
            sinks: raw.sinks,
            tokens: raw.tokens,
            console: raw.console,
            create_key,
            spool_backend,
            retention: raw.retention,
        })
    }

    /// How many days `form`'s submissions are kept; `None`: kept until erased by request.
    pub fn retain_days(&self, form: &str) -> Option<u32> {
        let days = match self.forms.get(form).and_then(|f| f.retain_days) {
            Some(days) => days,
            None => self.retention.default_days,
        };
        (days > 0).then_some(days)
    }

    /// The at-rest status of each of a form's sinks, in the form's order.
    pub fn form_at_rest(&self, form: &FormConfig) -> Vec<(String, AtRest)> {
        form.sinks
            .iter()
            .filter_map(|s| self.sinks.get(s).map(|c| (s.clone(), c.at_rest())))
            .collect()
    }

    /// The warnings a form's owner must see: one per sink that does not encrypt at rest.
    pub fn form_warnings(&self, form: &FormConfig) -> Vec<String> {
        self.form_at_rest(form)
            .into_iter()
            .filter(|(_, a)| a.needs_warning())
            .map(|(name, a)| format!("sink `{name}` is not encrypted at rest: {}", a.detail))
            .collect()
    }
}

/// The key an "unknown field" error names.
fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.get(..rest.find('`')?)
}

/// Where `key` is written in the table whose span starts at `table_at`: the error of a table
/// deserialized as a whole (a sink, whose `type` picks its keys) points at the table's header,
/// but a person wants the line of the misspelt key.
fn key_offset(text: &str, table_at: usize, key: &str) -> Option<usize> {
    let mut at = text.get(..table_at)?.rfind('\n').map_or(0, |i| i + 1);
    let mut first = true;
    for line in text.get(at..)?.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') && !first {
            return None;
        }
        first = false;
        let quoted = format!("\"{key}\"");
        let rest = trimmed
            .strip_prefix(key)
            .or_else(|| trimmed.strip_prefix(quoted.as_str()));
        if rest.is_some_and(|r| r.trim_start().starts_with(['=', '.'])) {
            return Some(at + (line.len() - trimmed.len()));
        }
        at += line.len();
    }
    None
}

/// serde's words for what a person wrote, in the words of the configuration file.
fn plain_words(message: &str) -> String {
    let mut text = message.to_owned();
    for (serde, plain) in [
        ("unknown field", "unknown key"),
        ("missing field", "missing key"),
        ("unknown variant", "unknown value"),
        ("invalid type: ", "wrong kind of value: "),
        ("expected one of", "expected one of these:"),
        ("a sequence", "a list"),
        ("sequence", "a list"),
        ("a map", "a table"),
        ("map", "a table"),
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected u8", "expected a whole number (0 or more)"),
        ("expected i64", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        ("integer", "the number"),
    ] {
        text = text.replace(serde, plain);
    }
    text
}

/// The 1-based line of a byte offset, and the `[table]` it falls in.
fn locate(text: &str, offset: Option<usize>) -> (usize, String) {
    let Some(offset) = offset else {
        return (1, "the top level".to_owned());
    };
    let offset = offset.min(text.len());
    let line = text.get(..offset).unwrap_or(text).matches('\n').count() + 1;
    // The table header may be on the error's own line (the span of a whole table starts there).
    let line_end = text
        .get(offset..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |i| offset + i);
    let before = text.get(..line_end).unwrap_or(text);
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_owned())
        .unwrap_or_else(|| "the top level".to_owned());
    (line, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Invalid> {
        Config::from_str(text, "test.toml", Path::new("/srv"))
    }

    const GOOD: &str = r#"
[forms.contact]
sinks = ["docs"]
required = ["email"]

[sinks.docs]
type = "documents"
"#;

    #[test]
    fn the_commented_example_is_valid() {
        let text = include_str!("../examples/secureform.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.sinks.len(), 4);
        let warnings = c.form_warnings(&c.forms["contact"]);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn parses_a_minimal_file() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.forms["contact"].required, vec!["email"]);
        assert_eq!(c.data_dir, Path::new("/srv/secureform-data"));
    }

    #[test]
    fn unknown_key_names_file_line_table_and_key() {
        let text = GOOD.replace(
            "type = \"documents\"",
            "type = \"documents\"\npgp_recipient = []",
        );
        let e = parse(&text).unwrap_err().0;
        assert!(e.starts_with("test.toml: line "), "{e}");
        assert!(
            e.contains("[sinks.docs]") && e.contains("pgp_recipient"),
            "{e}"
        );
        let text = GOOD.replace("required", "requird");
        let e = parse(&text).unwrap_err().0;
        assert!(
            e.contains("[forms.contact]") && e.contains("requird"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_is_shown_at_its_own_line_in_plain_words() {
        // The sink's table starts on line 6; the misspelt key is on line 8.
        let text = GOOD.replace(
            "type = \"documents\"",
            "type = \"documents\"\npgp_recipient = []",
        );
        let e = parse(&text).unwrap_err().0;
        assert!(
            e.starts_with("test.toml: line 8, in [sinks.docs]: unknown key `pgp_recipient`"),
            "{e}"
        );
        let e = parse(&GOOD.replace("required", "requird")).unwrap_err().0;
        assert!(
            e.starts_with("test.toml: line 4, in [forms.contact]: unknown key `requird`"),
            "{e}"
        );
        let e = parse(&format!("{GOOD}\n[limits]\nmax_fields = \"many\"\n"))
            .unwrap_err()
            .0;
        assert!(e.contains("expected a whole number"), "{e}");
        assert!(!e.contains("usize"), "{e}");
        let e = parse(&GOOD.replace("[\"docs\"]", "\"docs\""))
            .unwrap_err()
            .0;
        assert!(e.contains("a list"), "{e}");
        assert!(!e.contains("sequence"), "{e}");
    }

    #[test]
    fn unknown_sink_and_charset_are_named() {
        let e = parse(&GOOD.replace("[\"docs\"]", "[\"nope\"]"))
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "test.toml: [forms.contact] sinks: no sink named `nope` in [sinks]"
        );
        let e = parse(&GOOD.replace("required", "charset = \"klingon\"\nrequired"))
            .unwrap_err()
            .0;
        assert!(e.contains("[forms.contact] charset"), "{e}");
    }

    #[test]
    fn typed_values_are_parsed_at_load() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let text = format!(
            "[server]\nlisten = \"localhost:9000\"\n{}\n[tokens.shop]\nsha256 = \" {hash} \"\n\
             scopes = [\"submit\"]\nforms = [\"*\"]\n",
            GOOD.replace(
                "required",
                "redirect = \"/thanks\"\ncharset = \"latin1\"\n\
                 allowed_origins = [\"https://example.com\"]\nrequired",
            )
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.listen.to_string(), "localhost:9000");
        let form = &c.forms["contact"];
        assert_eq!(form.redirect.as_ref().map(|r| r.as_str()), Some("/thanks"));
        assert_eq!(form.charset, Some(Charset(encoding_rs::WINDOWS_1252)));
        assert!(form.allowed_origins[0].matches("https://example.com"));
        assert_eq!(c.tokens["shop"].sha256, TokenHash::parse(hash).unwrap());
        assert_eq!(parse(GOOD).unwrap().listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn a_refused_value_names_line_table_and_key() {
        let form = |line: &str| parse(&GOOD.replace("required", &format!("{line}\nrequired")));
        let e = form("charset = \"klingon\"").unwrap_err().0;
        assert_eq!(
            e,
            "test.toml: line 4, [forms.contact] charset: unknown charset `klingon`: \
             expected an encoding label such as utf-8, windows-1252 or gbk"
        );
        let e = form("redirect = \"example.com/thanks\"").unwrap_err().0;
        assert_eq!(
            e,
            "test.toml: line 4, [forms.contact] redirect: \
             must be an http(s) URL or a path starting with /"
        );
        let e = form("allowed_origins = [\"https://a.example\", \"https://b.example/\"]")
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "test.toml: line 4, [forms.contact] allowed_origins: `https://b.example/` is not \
             an origin like https://example.com (scheme and host, no path)"
        );
        let e = parse(&format!("[server]\nlisten = \"8080\"\n{GOOD}"))
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("test.toml: line 2, [server] listen: `8080` is not an address"),
            "{e}"
        );
        let e = parse(&format!(
            "{GOOD}\n[tokens.shop]\nsha256 = \"abc\"\nscopes = [\"read\"]\nforms = [\"*\"]\n"
        ))
        .unwrap_err()
        .0;
        assert!(
            e.contains("[tokens.shop] sha256: must be the SHA-256 of the token, 64 hex digits"),
            "{e}"
        );
        // Any other wrong value is still said in the loader's words.
        let e = form("charset = 5").unwrap_err().0;
        assert!(e.contains("in [forms.contact]: wrong kind of value"), "{e}");
    }
}
