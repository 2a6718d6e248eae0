//! Connecting: options from the URL plus the password and CA files, a pool whose every
//! connection runs in strict SQL mode (a value that does not fit is an error, never silently
//! truncated ciphertext), and the probe for `block_encryption_mode`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use secrecy::ExposeSecret;
use secureform_contract::ConfigError;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, Executor, MySqlConnection};

use crate::config::{Config, Encryption};
use crate::errors::db_number;
use crate::secrets::{load_password, resolve};

/// MySQL's "unknown system variable": the server has no `block_encryption_mode`.
const UNKNOWN_VARIABLE: u16 = 1193;

/// Connection options: the URL, the password from `password_env`/`password_file`, and the CA
/// from `ca_file` (read and checked now, so a bad path fails at start-up).
pub(crate) fn options(
    sink: &str,
    config: &Config,
    base_dir: &Path,
) -> Result<MySqlConnectOptions, ConfigError> {
    let mut options = config.parsed_url()?;
    if options.get_database().is_none() {
        return Err(ConfigError::new(
            "url",
            "names no database (mysql://host/DATABASE)",
        ));
    }
    if let Some(password) = load_password(config, base_dir)? {
        options = options.password(password.expose_secret());
    }
    if let Some(ca) = &config.ca_file {
        let path = resolve(base_dir, ca);
        let pem = fs::read(&path).map_err(|e| {
            ConfigError::new("ca_file", format!("{}: cannot read: {e}", path.display()))
        })?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(ConfigError::new(
                "ca_file",
                format!("{}: holds no PEM certificate", path.display()),
            ));
        }
        options = options.ssl_ca_from_pem(pem);
        if matches!(options.get_ssl_mode(), MySqlSslMode::Preferred) {
            options = options.ssl_mode(MySqlSslMode::VerifyIdentity);
        }
    }
    let verified = matches!(
        options.get_ssl_mode(),
        MySqlSslMode::Required | MySqlSslMode::VerifyCa | MySqlSslMode::VerifyIdentity
    );
    let local = options.get_socket().is_some()
        || matches!(
            options.get_host(),
            "localhost" | "127.0.0.1" | "::1" | "[::1]"
        );
    if !verified && !local {
        tracing::warn!(
            sink,
            "the connection to the database may be unencrypted: set ssl-mode=VERIFY_IDENTITY \
             in the url (with ca_file for a private CA)"
        );
    }
    Ok(options.disable_statement_logging())
}

/// Per-connection set-up: strict mode, and AES-256-CBC where the server has
/// `block_encryption_mode` (ignored where it has not: MariaDB before 11.2).
pub(crate) async fn session_setup(
    conn: &mut MySqlConnection,
    encryption: Encryption,
) -> Result<(), sqlx::Error> {
    conn.execute(
        "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')",
    )
    .await?;
    if encryption == Encryption::MysqlAes {
        match conn
            .execute("SET SESSION block_encryption_mode = 'aes-256-cbc'")
            .await
        {
            Err(e) if db_number(&e) == Some(UNKNOWN_VARIABLE) => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// A lazily connecting pool; nothing is connected until first use.
pub(crate) fn pool(config: &Config, options: MySqlConnectOptions) -> MySqlPool {
    let encryption = config.encryption;
    MySqlPoolOptions::new()
        .max_connections(config.pool_size)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(config.connect_timeout_secs))
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_before_acquire(true)
        .after_connect(move |conn, _meta| Box::pin(session_setup(conn, encryption)))
        .connect_lazy_with(options)
}

/// One connection, set up like the pool's (for the read-back commands).
pub(crate) async fn single(
    options: &MySqlConnectOptions,
    encryption: Encryption,
    timeout: Duration,
) -> Result<MySqlConnection, sqlx::Error> {
    let mut conn = tokio::time::timeout(timeout, MySqlConnection::connect_with(options))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    session_setup(&mut conn, encryption).await?;
    Ok(conn)
}

/// What the server is, found once per sink.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    /// `VERSION()`, e.g. `10.11.6-MariaDB`.
    pub(crate) version: String,
    /// Whether `AES_ENCRYPT` runs as AES-256-CBC with an IV (the session's
    /// `block_encryption_mode` is `aes-256-cbc`).
    pub(crate) cbc: bool,
    /// `@@max_allowed_packet`: the largest statement the server takes.
    pub(crate) max_packet: u64,
}

/// Asks the server what it is. The session must have run [`session_setup`].
pub(crate) async fn probe(conn: &mut MySqlConnection) -> Result<Server, sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR(255))")
        .fetch_one(&mut *conn)
        .await?;
    let mode: Result<Option<String>, _> =
        sqlx::query_scalar("SELECT CAST(@@SESSION.block_encryption_mode AS CHAR(64))")
            .fetch_one(&mut *conn)
            .await;
    let cbc = match mode {
        Ok(m) => m.as_deref() == Some("aes-256-cbc"),
        Err(e) if db_number(&e) == Some(UNKNOWN_VARIABLE) => false,
        Err(e) => return Err(e),
    };
    let max_packet: u64 = sqlx::query_scalar("SELECT CAST(@@max_allowed_packet AS UNSIGNED)")
        .fetch_one(&mut *conn)
        .await?;
    Ok(Server {
        version,
        cbc,
        max_packet,
    })
}
