//! `[storage] backend`: where the spool keeps its records — the embedded SQLite file (the
//! default) or a PostgreSQL database shared by several instances (docs/scale-out.md).

use std::path::{Path, PathBuf};

use crate::spool::PostgresOptions;

/// The default pool size of the PostgreSQL backend.
pub const DEFAULT_POOL_SIZE: u32 = 16;
/// The default lease on a claimed delivery: another instance takes it over after this.
pub const DEFAULT_LEASE_SECS: u64 = 120;

/// Where the PostgreSQL URL (a secret: it may hold a password) comes from.
#[derive(Clone, Debug)]
pub enum UrlSource {
    Env(String),
    File(PathBuf),
}

/// `[storage] postgres_ssl_mode`: TLS to PostgreSQL, as libpq's `sslmode` (without `allow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, else plain (libpq's default); the certificate is not
    /// verified.
    Prefer,
    /// TLS or no connection; the certificate is not verified.
    Require,
    /// TLS, with a certificate chained to a trusted root (any host name).
    VerifyCa,
    /// TLS, with a certificate chained to a trusted root and naming the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode named `text` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`).
    pub fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// Whether the server's certificate is verified.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// TLS to PostgreSQL as configured: `mode` `None` leaves the URL's `sslmode` (or libpq's
/// default, `prefer`) in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgTls {
    pub mode: Option<SslMode>,
    /// The CA certificate(s) (PEM) the server's certificate must chain to; `None` with a
    /// `verify-*` mode: the Mozilla roots built in (webpki-roots).
    pub root_cert: Option<PathBuf>,
}

/// The spool's backend, as configured.
#[derive(Clone, Debug, Default)]
pub enum SpoolBackendConfig {
    /// `data_dir/spool/spool.db`.
    #[default]
    Sqlite,
    Postgres {
        url: UrlSource,
        pool_size: u32,
        lease_secs: u64,
        tls: PgTls,
    },
}

/// The `[storage]` keys of the backend, as written.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct RawBackend {
    pub backend: Option<String>,
    pub postgres_url_env: Option<String>,
    pub postgres_url_file: Option<PathBuf>,
    pub pool_size: Option<u32>,
    pub lease_secs: Option<u64>,
    pub postgres_ssl_mode: Option<String>,
    pub postgres_ssl_root_cert: Option<PathBuf>,
}

impl SpoolBackendConfig {
    /// Checks the keys; an error names the key and what is wrong.
    pub fn parse(raw: RawBackend, base_dir: &Path) -> Result<Self, (&'static str, String)> {
        match raw.backend.as_deref().unwrap_or("sqlite") {
            "sqlite" => {
                if raw.postgres_url_env.is_some()
                    || raw.postgres_url_file.is_some()
                    || raw.pool_size.is_some()
                    || raw.lease_secs.is_some()
                    || raw.postgres_ssl_mode.is_some()
                    || raw.postgres_ssl_root_cert.is_some()
                {
                    return Err((
                        "backend",
                        "postgres_url_*, postgres_ssl_*, pool_size and lease_secs need \
                         backend = \"postgres\""
                            .to_owned(),
                    ));
                }
                Ok(SpoolBackendConfig::Sqlite)
            }
            "postgres" => {
                let url = match (raw.postgres_url_env, raw.postgres_url_file) {
                    (Some(env), None) => UrlSource::Env(env),
                    (None, Some(file)) => UrlSource::File(base_dir.join(file)),
                    _ => return Err((
                        "postgres_url_env",
                        "backend = \"postgres\" needs one of postgres_url_env or postgres_url_file"
                            .to_owned(),
                    )),
                };
                let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
                if !(1..=1000).contains(&pool_size) {
                    return Err(("pool_size", "must be 1 to 1000".to_owned()));
                }
                let lease_secs = raw.lease_secs.unwrap_or(DEFAULT_LEASE_SECS);
                if !(1..=86_400).contains(&lease_secs) {
                    return Err(("lease_secs", "must be 1 to 86400".to_owned()));
                }
                let mode = match raw.postgres_ssl_mode.as_deref() {
                    None => None,
                    Some(text) => Some(SslMode::parse(text).ok_or_else(|| {
                        (
                            "postgres_ssl_mode",
                            format!(
                                "unknown mode `{text}`: use \"disable\", \"prefer\", \
                                 \"require\", \"verify-ca\" or \"verify-full\""
                            ),
                        )
                    })?),
                };
                let root_cert = raw.postgres_ssl_root_cert.map(|f| base_dir.join(f));
                if root_cert.is_some() && !mode.is_some_and(SslMode::verifies) {
                    return Err((
                        "postgres_ssl_root_cert",
                        "is used only with postgres_ssl_mode = \"verify-ca\" or \"verify-full\""
                            .to_owned(),
                    ));
                }
                Ok(SpoolBackendConfig::Postgres {
                    url,
                    pool_size,
                    lease_secs,
                    tls: PgTls { mode, root_cert },
                })
            }
            other => Err((
                "backend",
                format!("unknown backend `{other}`: use \"sqlite\" or \"postgres\""),
            )),
        }
    }

    /// The PostgreSQL options, reading the URL from its environment variable or file. `None`
    /// for SQLite.
    pub fn postgres_options(&self, migrate: bool) -> anyhow::Result<Option<PostgresOptions>> {
        let SpoolBackendConfig::Postgres {
            url,
            pool_size,
            lease_secs,
            tls,
        } = self
        else {
            return Ok(None);
        };
        let url = match url {
            UrlSource::Env(name) => std::env::var(name).map_err(|_| {
                anyhow::anyhow!("[storage] postgres_url_env: the variable {name} is not set")
            })?,
            UrlSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| {
                    anyhow::anyhow!("[storage] postgres_url_file {}: {e}", path.display())
                })?
                .trim()
                .to_owned(),
        };
        if let Some(cert) = &tls.root_cert {
            std::fs::metadata(cert).map_err(|e| {
                anyhow::anyhow!("[storage] postgres_ssl_root_cert {}: {e}", cert.display())
            })?;
        }
        Ok(Some(PostgresOptions {
            tls: tls.clone(),
            url,
            pool_size: *pool_size,
            lease_ms: i64::try_from(lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            migrate,
            orphan_upload_ms: orphan_upload_ms(&crate::limits::Limits::default()),
        }))
    }
}

/// How long the janitor keeps the rows of an upload no submission has, after the last one was
/// written: an hour past the longest a body may take to arrive under `limits`.
pub fn orphan_upload_ms(limits: &crate::limits::Limits) -> i64 {
    let secs = limits
        .upload_read_secs
        .max(limits.body_read_secs)
        .saturating_add(3600);
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(mode: Option<&str>, root: Option<&str>) -> Result<PgTls, (&'static str, String)> {
        let raw = RawBackend {
            backend: Some("postgres".to_owned()),
            postgres_url_env: Some("PG_URL".to_owned()),
            postgres_ssl_mode: mode.map(str::to_owned),
            postgres_ssl_root_cert: root.map(PathBuf::from),
            ..RawBackend::default()
        };
        match SpoolBackendConfig::parse(raw, Path::new("/etc/secureform"))? {
            SpoolBackendConfig::Postgres { tls, .. } => Ok(tls),
            SpoolBackendConfig::Sqlite => unreachable!(),
        }
    }

    #[test]
    fn ssl_modes_are_parsed_and_checked() {
        assert_eq!(parse(None, None).unwrap(), PgTls::default());
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(parse(Some(text), None).unwrap().mode, Some(mode));
        }
        for bad in ["allow", "REQUIRE", "verify_full", ""] {
            let (key, msg) = parse(Some(bad), None).unwrap_err();
            assert_eq!(key, "postgres_ssl_mode");
            assert!(msg.contains(&format!("`{bad}`")), "{msg}");
        }
        // A root certificate, relative to the configuration's folder, with a verify-* mode only.
        let tls = parse(Some("verify-full"), Some("ca.pem")).unwrap();
        assert_eq!(
            tls.root_cert.as_deref(),
            Some(Path::new("/etc/secureform/ca.pem"))
        );
        for mode in [None, Some("disable"), Some("prefer"), Some("require")] {
            assert_eq!(
                parse(mode, Some("ca.pem")).unwrap_err().0,
                "postgres_ssl_root_cert"
            );
        }
        // The keys need the PostgreSQL backend.
        let raw = RawBackend {
            postgres_ssl_mode: Some("require".to_owned()),
            ..RawBackend::default()
        };
        assert_eq!(
            SpoolBackendConfig::parse(raw, Path::new("/"))
                .unwrap_err()
                .0,
            "backend"
        );
    }
}
