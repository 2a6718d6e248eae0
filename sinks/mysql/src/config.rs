//! The sink's configuration: parsed by serde, checked without I/O, and classified at rest.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use secureform_contract::{AtRest, ConfigError};
use serde::Deserialize;
use sqlx::mysql::MySqlConnectOptions;

/// The largest `files_max_bytes` accepted: a file is sealed in one piece and sent in one packet.
pub const MAX_FILES_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// `files_max_bytes` when the key is absent.
pub const DEFAULT_FILES_MAX_BYTES: u64 = 1024 * 1024;
/// `pool_size` when the key is absent.
pub const DEFAULT_POOL_SIZE: u32 = 4;
/// `connect_timeout_secs` when the key is absent.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;

/// Columns every row has; mapped columns may not take these names.
pub(crate) const FIXED_COLUMNS: [&str; 4] = ["submission_id", "form", "received_at", "submission"];

/// How values are encrypted before they are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// AES-256-GCM in the service; the key never reaches the database (see `FORMAT.md`).
    #[default]
    AesGcm,
    /// The database's own `AES_ENCRYPT(value, key)`, so `AES_DECRYPT` works in SQL.
    MysqlAes,
    /// No encryption: plain columns.
    None,
}

impl Encryption {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::AesGcm => "aes_gcm",
            Encryption::MysqlAes => "mysql_aes",
            Encryption::None => "none",
        }
    }
}

/// The `[sinks.NAME]` table of a `type = "mysql"` sink, without its `type` key.
///
/// Keys (docs/contract.md "Configuration", plus the ones marked *added*):
/// - `url`: `mysql://user@host:port/database`, with optional `ssl-mode=` (`DISABLED`,
///   `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`) and other sqlx parameters. A
///   password in the URL is allowed, but prefer `password_env` / `password_file`.
/// - `password_env` / `password_file` (*added*): where the database password is read from.
/// - `ca_file` (*added*): a PEM file of the CA that signed the server's certificate (a private
///   CA); relative to the configuration file's folder. Implies `ssl-mode=VERIFY_IDENTITY` unless
///   the URL names a mode.
/// - `table`: the table rows go to.
/// - `encryption`: `"aes_gcm"` (default), `"mysql_aes"` or `"none"`.
/// - `key_env` / `key_file` (`key_file` *added*): the encryption key. `aes_gcm`: 32 bytes in
///   base64; `mysql_aes`: the key string handed to `AES_ENCRYPT` (at least 16 bytes). A key file
///   must not be readable by group or others.
/// - `create_table`: create the table (and the files table) when missing. Default `false`: the
///   table must exist with the expected columns, checked by the health check (at start-up, in the background) and before the first delivery.
/// - `columns` (*added*): a map of column name to field name; the field's value is stored,
///   encrypted the same way as the submission, in a column of its own. A field with one value is
///   stored as its text; a field with several values as a JSON array of them; a missing field as
///   NULL. Column names follow the identifier rule below and may not reuse the fixed columns.
/// - `files_max_bytes` (*added*): files up to this size (default 1 MiB, at most 64 MiB; 0 turns
///   it off) are stored, sealed like the rest, in the companion table `<table>_files`; larger
///   ones are not stored here and belong to a Documents sink on the same form.
/// - `pool_size` (*added*): connections in the pool (default 4, 1..=64).
/// - `connect_timeout_secs` (*added*): how long to wait for a connection before a delivery is
///   reported retryable (default 10, 1..=300).
///
/// Identifiers (table and column names) must match `^[A-Za-z_][A-Za-z0-9_]{0,63}$`; they are
/// backquoted in SQL and never come from a submission. Values are always bound parameters.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `url`: the server, as `mysql://user@host:port/database` (or `mariadb://`), with optional
    /// `ssl-mode=` and other sqlx parameters. Never shown by `Debug` (it may hold a password).
    pub url: String,
    /// `password_env`: the environment variable holding the database password (not with a
    /// password in `url` or `password_file`).
    pub password_env: Option<String>,
    /// `password_file`: a file holding the database password, relative to the configuration
    /// file's folder, not readable by group or others (not with a password in `url` or
    /// `password_env`).
    pub password_file: Option<PathBuf>,
    /// `ca_file`: a PEM file of the CA that signed the server's certificate, relative to the
    /// configuration file's folder; implies `ssl-mode=VERIFY_IDENTITY` unless `url` names a mode.
    pub ca_file: Option<PathBuf>,
    /// `table`: the table rows go to (an identifier: `[A-Za-z_][A-Za-z0-9_]{0,63}`).
    pub table: String,
    /// `encryption`: how values are encrypted; default `aes_gcm`.
    #[serde(default)]
    pub encryption: Encryption,
    /// `key_env`: the environment variable holding the encryption key (`aes_gcm`: 32 bytes in
    /// base64; `mysql_aes`: at least 16 bytes). Exactly one of `key_env` and `key_file` unless
    /// `encryption = "none"`, which takes neither.
    pub key_env: Option<String>,
    /// `key_file`: a file holding the encryption key, as for `key_env`; relative to the
    /// configuration file's folder, not readable by group or others.
    pub key_file: Option<PathBuf>,
    /// `create_table`: create the table and the files table when missing. Default `false`: the
    /// table must exist with the expected columns.
    #[serde(default)]
    pub create_table: bool,
    /// `columns`: column name → field name; each field's value is stored, encrypted like the
    /// submission, in a column of its own. Default: none.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// `files_max_bytes`: files up to this many bytes are stored, sealed, in `<table>_files`;
    /// larger ones are not. Default 1 MiB, at most 64 MiB; 0 stores no files.
    #[serde(default = "default_files_max_bytes")]
    pub files_max_bytes: u64,
    /// `pool_size`: connections in the pool. Default 4, 1 to 64.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// `connect_timeout_secs`: seconds to wait for a connection before a delivery is reported
    /// retryable. Default 10, 1 to 300.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
}

fn default_files_max_bytes() -> u64 {
    DEFAULT_FILES_MAX_BYTES
}

fn default_pool_size() -> u32 {
    DEFAULT_POOL_SIZE
}

fn default_connect_timeout_secs() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_SECS
}

/// Debug output never shows the URL (it may hold a password).
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &"<redacted>")
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("table", &self.table)
            .field("encryption", &self.encryption)
            .field("key_env", &self.key_env)
            .field("key_file", &self.key_file)
            .field("create_table", &self.create_table)
            .field("columns", &self.columns)
            .field("files_max_bytes", &self.files_max_bytes)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
    }
}

/// Whether `name` is an identifier this sink will put into SQL (backquoted).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && name.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The name of the column holding the IV of `column` (mysql_aes with aes-256-cbc).
pub(crate) fn iv_column(column: &str) -> String {
    format!("{column}_iv")
}

/// The companion table holding a submission's files.
pub(crate) fn files_table(table: &str) -> String {
    format!("{table}_files")
}

fn ident_error(key: &str, what: &str) -> ConfigError {
    ConfigError::new(
        key,
        format!("{what} must match ^[A-Za-z_][A-Za-z0-9_]{{0,63}}$ (letters, digits, underscore; at most 64)"),
    )
}

impl Config {
    /// From the configuration alone, no I/O: how what this sink writes is protected at rest.
    pub fn at_rest(&self) -> AtRest {
        match self.encryption {
            Encryption::AesGcm => AtRest::encrypted(format!(
                "rows of table `{}` are sealed in the service with AES-256-GCM (random nonce per \
                 value); the key never reaches the database; submission id, form and time stay \
                 readable",
                self.table
            )),
            Encryption::MysqlAes => AtRest::weak(format!(
                "rows of table `{}` use the database's AES_ENCRYPT: on MariaDB that is \
                 AES-128-ECB, deterministic (equal values give equal ciphertexts), with no IV \
                 and the key folded to 16 bytes by XOR; on a server with block_encryption_mode \
                 (MySQL) AES-256-CBC with a random IV per value is used instead; the key and \
                 the values travel to the server with every insert",
                self.table
            )),
            Encryption::None => AtRest::plaintext(format!(
                "encryption = \"none\": rows of table `{}` are stored in plaintext",
                self.table
            )),
        }
    }

    /// Pure checks (no I/O): values in range, required combinations. Errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_url()?;
        if !is_identifier(&self.table) {
            return Err(ident_error("table", "the table name"));
        }
        if self.files_max_bytes > 0 && !is_identifier(&files_table(&self.table)) {
            return Err(ConfigError::new(
                "table",
                "with files_max_bytes > 0 the table name must leave room for the `_files` \
                 suffix of the files table (at most 58 characters)",
            ));
        }
        self.validate_key()?;
        self.validate_columns()?;
        if self.files_max_bytes > MAX_FILES_MAX_BYTES {
            return Err(ConfigError::new(
                "files_max_bytes",
                format!("at most {MAX_FILES_MAX_BYTES} (64 MiB); larger files belong to a Documents sink"),
            ));
        }
        if !(1..=64).contains(&self.pool_size) {
            return Err(ConfigError::new("pool_size", "must be between 1 and 64"));
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            return Err(ConfigError::new(
                "connect_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        Ok(())
    }

    /// The URL parsed by sqlx, without resolving anything. Errors never echo the URL.
    pub(crate) fn parsed_url(&self) -> Result<MySqlConnectOptions, ConfigError> {
        if !(self.url.starts_with("mysql://") || self.url.starts_with("mariadb://")) {
            return Err(ConfigError::new(
                "url",
                "must start with mysql:// (or mariadb://)",
            ));
        }
        MySqlConnectOptions::from_str(&self.url)
            .map_err(|_| ConfigError::new("url", "not a valid mysql:// URL (or a bad ssl-mode)"))
    }

    /// Whether the URL carries a password (`user:password@host`).
    pub(crate) fn url_has_password(&self) -> bool {
        let rest = self.url.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    }

    fn validate_url(&self) -> Result<(), ConfigError> {
        self.parsed_url()?;
        let sources = [
            self.url_has_password(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(ConfigError::new(
                "password_env",
                "give the password in only one place: the url, password_env or password_file",
            ));
        }
        Ok(())
    }

    fn validate_key(&self) -> Result<(), ConfigError> {
        let given = usize::from(self.key_env.is_some()) + usize::from(self.key_file.is_some());
        match (self.encryption, given) {
            (Encryption::None, 0) => Ok(()),
            (Encryption::None, _) => Err(ConfigError::new(
                if self.key_env.is_some() {
                    "key_env"
                } else {
                    "key_file"
                },
                "not used with encryption = \"none\"; remove it or choose an encryption",
            )),
            (_, 1) => Ok(()),
            (mode, 0) => Err(ConfigError::new(
                "key_env",
                format!(
                    "encryption = \"{}\" needs a key: set key_env or key_file",
                    mode.as_str()
                ),
            )),
            (_, _) => Err(ConfigError::new(
                "key_env",
                "give the key in only one place: key_env or key_file",
            )),
        }
    }

    fn validate_columns(&self) -> Result<(), ConfigError> {
        let mut taken: Vec<String> = FIXED_COLUMNS.iter().map(|c| c.to_lowercase()).collect();
        if self.encryption == Encryption::MysqlAes {
            taken.push(iv_column("submission"));
        }
        for (column, field) in &self.columns {
            if !is_identifier(column) {
                return Err(ident_error("columns", "every column name"));
            }
            if field.is_empty() {
                return Err(ConfigError::new(
                    "columns",
                    format!("column `{column}`: the field name is empty"),
                ));
            }
            let mut names = vec![column.to_lowercase()];
            if self.encryption == Encryption::MysqlAes {
                let iv = iv_column(column);
                if !is_identifier(&iv) {
                    return Err(ConfigError::new(
                        "columns",
                        format!("column `{column}`: at most 61 characters with mysql_aes (its IV column adds `_iv`)"),
                    ));
                }
                names.push(iv.to_lowercase());
            }
            for name in names {
                if taken.contains(&name) {
                    return Err(ConfigError::new(
                        "columns",
                        format!("column `{name}` is used twice (column names are case-insensitive and the fixed columns are submission_id, form, received_at, submission)"),
                    ));
                }
                taken.push(name);
            }
        }
        Ok(())
    }
}
