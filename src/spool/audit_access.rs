//! The audit log from the command line (`docs get`, `docs delete`, `mysql`, `audit verify|
//! export`): the spool's database opened directly, without starting the spool (no writer
//! thread, no clean-up), so it works beside a running `serve`.

use std::path::Path;

use rusqlite::Connection;
use sqlx::PgPool;

use super::{audit_pg, audit_sqlite, postgres, sqlite, store, SpoolError};
use crate::audit::{Entry, NewEntry};
use crate::config::Config;

/// The spool's audit log, opened for the command line.
pub enum AuditLog {
    Sqlite(Connection),
    Postgres(PgPool),
}

impl AuditLog {
    /// Opens the configured spool's audit log; a SQLite spool that does not exist yet is
    /// created (mode 0600 in a 0700 folder), an older one upgraded in place.
    pub async fn open(config: &Config) -> anyhow::Result<AuditLog> {
        match config.spool_backend.postgres_options(false)? {
            Some(options) => {
                let pool = postgres::pool(&options)?;
                postgres::migrate(&pool, false).await?;
                Ok(AuditLog::Postgres(pool))
            }
            None => Ok(AuditLog::Sqlite(open_sqlite(&config.data_dir)?)),
        }
    }

    /// Records one entry durably, chained to the last.
    pub async fn append(&self, entry: &NewEntry) -> Result<i64, SpoolError> {
        match self {
            AuditLog::Postgres(pool) => audit_pg::append(pool, entry).await,
            AuditLog::Sqlite(conn) => {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                match audit_sqlite::append(conn, entry) {
                    Ok(seq) => {
                        conn.execute_batch("COMMIT")?;
                        Ok(seq)
                    }
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// The submissions (not erased) whose subject index holds one of `digests`.
    pub async fn subject_ids(&self, digests: Vec<Vec<u8>>) -> Result<Vec<String>, SpoolError> {
        match self {
            AuditLog::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT DISTINCT i.submission_id FROM subject_index i
                 JOIN submissions s ON s.id = i.submission_id
                 WHERE i.digest = ANY($1) AND s.erased_ms IS NULL ORDER BY 1",
            )
            .bind(&digests)
            .fetch_all(pool)
            .await?),
            AuditLog::Sqlite(conn) => Ok(store::subject_ids(conn, &digests)?),
        }
    }

    /// Entries after sequence number `after`, oldest first.
    pub async fn page(&self, after: i64, limit: i64) -> Result<Vec<Entry>, SpoolError> {
        match self {
            AuditLog::Postgres(pool) => audit_pg::entries_after(pool, after, limit).await,
            AuditLog::Sqlite(conn) => Ok(audit_sqlite::entries_after(conn, after, limit)?),
        }
    }
}

fn open_sqlite(data_dir: &Path) -> Result<Connection, SpoolError> {
    let root = data_dir.join("spool");
    secureform_crypto::files::create_private_dir(&root.join("files"))?;
    let db = root.join("spool.db");
    sqlite::make_db_private(&db)?;
    let conn = store::open_connection(&db)?;
    store::migrate(&conn)?;
    Ok(conn)
}
