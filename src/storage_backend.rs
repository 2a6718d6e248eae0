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
                {
                    return Err((
                        "backend",
                        "postgres_url_*, pool_size and lease_secs need backend = \"postgres\""
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
                Ok(SpoolBackendConfig::Postgres {
                    url,
                    pool_size,
                    lease_secs,
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
        Ok(Some(PostgresOptions {
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
