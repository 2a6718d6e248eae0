//! The PostgreSQL backend of the spool: several instances on one database.
//!
//! - **Acceptance** is one transaction per request on a pooled connection; concurrent requests
//!   share WAL flushes through PostgreSQL's own group commit. The answer goes out after
//!   `COMMIT` returns.
//! - **Idempotency** holds across instances: the key is inserted `ON CONFLICT DO NOTHING`
//!   first, so a second request with the key waits for the first's transaction and then sees
//!   its row.
//! - **Delivery claims**: [`SpoolBackend::due`] claims the due rows with `FOR UPDATE SKIP
//!   LOCKED` and stamps them with this instance's id (`claimed_by`) and a lease
//!   (`lease_until`). A claimed row is nobody else's until its lease runs out; recording an
//!   outcome clears it. An instance that dies mid-delivery leaves leases that expire, and
//!   another instance takes the rows over (at-least-once).
//! - **Wake-ups**: each acceptance sends `NOTIFY secureform_spool, '<sink>'` on commit; every
//!   instance listens and wakes its idle worker of that sink.
//!
//! - **Files**: uploads are sealed into rows of `file_segments` as they stream in (see
//!   `pg_files.rs`); an acceptance with files checks, under the submission id's advisory lock,
//!   that every file is whole before it commits.
//!
//! Only sealed bytes go in: the payload and segment columns hold sealed items, the others ids,
//! names of forms and sinks, numbers and times.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions, PgSslMode};
use sqlx::{PgPool, Row};
use tokio::sync::broadcast;

use super::audit_pg;
use super::backend::SpoolBackend;
use super::idempotency::{Acceptance, IDEMPOTENCY_MS};
use super::pg_files::{self, PgFileStore};
use super::store::{failure_of, DeliveryRow, DeliveryState, NewSubmission, Outcome};
use super::SpoolError;
use crate::audit::{Entry as AuditEntry, NewEntry};

/// The channel acceptances are announced on.
const CHANNEL: &str = "secureform_spool";

/// The schema's migrations, checked at every start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How the PostgreSQL spool is reached.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// A `postgres://` URL (it may hold a password: never logged).
    pub url: String,
    pub pool_size: u32,
    /// How long a claim on a delivery holds before another instance may take it over.
    pub lease_ms: i64,
    /// Whether to apply missing migrations (`false`: refuse to start on an older schema).
    pub migrate: bool,
    /// How long the rows of an upload no submission has are kept after the last one was
    /// written, before the janitor removes them: longer than any upload may take.
    pub orphan_upload_ms: i64,
    /// TLS to the server (`[storage] postgres_ssl_mode`, `postgres_ssl_root_cert`).
    pub tls: crate::storage_backend::PgTls,
}

pub(crate) struct PostgresBackend {
    pool: PgPool,
    /// This instance's id, stamped on its claims.
    instance: String,
    lease_ms: i64,
    /// Where a build from before kept uploaded files (still read and removed).
    files_root: std::path::PathBuf,
    files: Arc<PgFileStore>,
    wakeups: broadcast::Sender<String>,
}

/// Opens a pool to `options.url` without connecting.
pub(crate) fn pool(options: &PostgresOptions) -> Result<PgPool, SpoolError> {
    let mut connect: PgConnectOptions = options.url.parse().map_err(SpoolError::from)?;
    if let Some(mode) = options.tls.mode {
        use crate::storage_backend::SslMode;
        connect = connect.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        });
    }
    if let Some(cert) = &options.tls.root_cert {
        connect = connect.ssl_root_cert(cert);
    }
    Ok(PgPoolOptions::new()
        .max_connections(options.pool_size.max(1))
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(connect))
}

/// Applies the migrations this build knows, or, with `apply` false, checks that the database
/// has exactly them. Refuses a database migrated by a newer build (a version it does not know).
pub(crate) async fn migrate(pool: &PgPool, apply: bool) -> Result<(), SpoolError> {
    if apply {
        MIGRATOR.run(pool).await?;
        return Ok(());
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    if applied != known {
        return Err(SpoolError::Schema(format!(
            "the database has migrations {applied:?}, this build has {known:?}; run `secureform migrate`"
        )));
    }
    Ok(())
}

impl PostgresBackend {
    /// Connects, checks (or applies) the schema and starts listening for wake-ups.
    pub(crate) async fn open(
        options: &PostgresOptions,
        files_root: std::path::PathBuf,
    ) -> Result<Self, SpoolError> {
        let pool = pool(options)?;
        migrate(&pool, options.migrate).await?;
        audit_pg::chain_legacy(&pool).await?;
        let (wakeups, _) = broadcast::channel(1024);
        let backend = PostgresBackend {
            pool: pool.clone(),
            instance: ulid::Ulid::new().to_string(),
            lease_ms: options.lease_ms.max(1),
            files_root,
            files: Arc::new(PgFileStore::new(
                pool.clone(),
                tokio::runtime::Handle::current(),
            )),
            wakeups: wakeups.clone(),
        };
        tokio::spawn(pg_files::janitor(
            pool.clone(),
            options.orphan_upload_ms.max(0),
        ));
        tokio::spawn(listen(pool, wakeups));
        tracing::info!(instance = %backend.instance, "spool on PostgreSQL");
        Ok(backend)
    }

    /// The uploaded files' rows (shared with the spool's writers and readers).
    pub(crate) fn file_store(&self) -> Arc<PgFileStore> {
        Arc::clone(&self.files)
    }

    async fn accept_tx(&self, record: &NewSubmission) -> Result<Acceptance, SpoolError> {
        let mut tx = self.pool.begin().await?;
        if record.file_count > 0 {
            // Held to the commit: the removal of an upload's rows waits for it (see pg_files).
            pg_files::lock_upload(&mut tx, &record.id).await?;
        }
        if let Some(key) = &record.idempotency {
            sqlx::query(
                "DELETE FROM idempotency_keys
                 WHERE token = $1 AND form = $2 AND key = $3 AND created_ms <= $4",
            )
            .bind(&key.token)
            .bind(&record.form)
            .bind(&key.key)
            .bind(record.now_ms - IDEMPOTENCY_MS)
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys
                     (token, form, key, request_digest, submission_id, created_ms)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&key.token)
            .bind(&record.form)
            .bind(&key.key)
            .bind(key.digests.first())
            .bind(&record.id)
            .bind(record.now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let (first, digest): (String, Option<Vec<u8>>) = sqlx::query_as(
                    "SELECT submission_id, request_digest FROM idempotency_keys
                     WHERE token = $1 AND form = $2 AND key = $3",
                )
                .bind(&key.token)
                .bind(&record.form)
                .bind(&key.key)
                .fetch_one(&mut *tx)
                .await?;
                tx.rollback().await?;
                return Ok(match digest {
                    Some(d) if !key.digests.contains(&d) => Acceptance::KeyReused,
                    _ => Acceptance::Repeat(first),
                });
            }
        }
        if record.file_count > 0 {
            let whole = pg_files::complete_files(&mut tx, &record.id).await?;
            if usize::try_from(whole).ok() != Some(record.file_count) {
                tracing::error!(submission = %record.id, files = record.file_count, whole,
                    "the files of a submission are not all in the spool");
                return Err(SpoolError::FilesIncomplete(record.id.clone()));
            }
        }
        sqlx::query(
            "INSERT INTO submissions (id, form, received_at, accepted_ms, file_count, sealed)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(&record.form)
        .bind(&record.received_at)
        .bind(record.now_ms)
        .bind(i32::try_from(record.file_count).unwrap_or(i32::MAX))
        .bind(&record.sealed)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (submission_id, sink, state, next_attempt_ms, updated_ms)
             SELECT $1, sink, 'pending', $2, $2 FROM unnest($3::text[]) AS sink",
        )
        .bind(&record.id)
        .bind(record.now_ms)
        .bind(&record.sinks)
        .execute(&mut *tx)
        .await?;
        if !record.subjects.is_empty() {
            sqlx::query(
                "INSERT INTO subject_index (digest, submission_id)
                 SELECT d, $2 FROM unnest($1::bytea[]) AS d ON CONFLICT DO NOTHING",
            )
            .bind(&record.subjects)
            .bind(&record.id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("SELECT pg_notify($1, sink) FROM unnest($2::text[]) AS sink")
            .bind(CHANNEL)
            .bind(&record.sinks)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Acceptance::Stored)
    }

    /// Removes the local files of `id` off the event loop.
    fn remove_files(&self, id: &str) {
        let dir = self.files_root.join(id);
        tokio::task::spawn_blocking(move || {
            if dir.exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
        });
    }
}

/// Listens for acceptances announced by any instance and passes the sink names on. After a lost
/// connection it wakes every worker (what was announced meanwhile is missed) and connects again,
/// waiting longer after each failure (1 s doubling to 30 s, back to 1 s once listening).
async fn listen(pool: PgPool, wakeups: broadcast::Sender<String>) {
    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);
    let mut backoff = MIN;
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "listening for spool wake-ups failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX);
                continue;
            }
        };
        backoff = MIN;
        // sqlx's listener connects again by itself on the next receive; `None` says it did.
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    // No receiver yet (no dispatcher) is not an error.
                    let _ = wakeups.send(n.payload().to_owned());
                }
                Ok(None) => {
                    let _ = wakeups.send(String::new());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "spool wake-ups interrupted");
                    let _ = wakeups.send(String::new());
                    break;
                }
            }
        }
    }
}

const ROW_COLUMNS: &str = "d.submission_id, s.form, d.sink, d.state, d.attempts, d.next_attempt_ms,
     d.last_error, d.receipt_kind, d.receipt_value, s.received_at, s.accepted_ms,
     d.failure_reason";

fn row(r: &sqlx::postgres::PgRow) -> Result<DeliveryRow, sqlx::Error> {
    let state: String = r.try_get(3)?;
    let attempts: i32 = r.try_get(4)?;
    let last_error: Option<String> = r.try_get(6)?;
    let stored: Option<String> = r.try_get(11)?;
    Ok(DeliveryRow {
        failure_reason: failure_of(stored.as_deref(), last_error.as_deref()),
        submission_id: r.try_get(0)?,
        form: r.try_get(1)?,
        sink: r.try_get(2)?,
        state: DeliveryState::parse(&state),
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_ms: r.try_get(5)?,
        last_error,
        receipt_kind: r.try_get(7)?,
        receipt_value: r.try_get(8)?,
        received_at: r.try_get(9)?,
        accepted_ms: r.try_get(10)?,
    })
}

#[async_trait]
impl SpoolBackend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn accept(&self, record: NewSubmission) -> Result<Acceptance, SpoolError> {
        self.accept_tx(&record).await
    }

    async fn audit(&self, entry: NewEntry) -> Result<(), SpoolError> {
        audit_pg::append(&self.pool, &entry).await.map(|_| ())
    }

    async fn erase(&self, id: &str, now_ms: i64) -> Result<usize, SpoolError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'dead', last_error = 'erased',
                 failure_reason = 'erased', updated_ms = $2, claimed_by = NULL, lease_until = NULL
             WHERE submission_id = $1 AND state != 'delivered'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE submissions SET sealed = NULL, erased_ms = $2 WHERE id = $1")
            .bind(id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM subject_index WHERE submission_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        // In the erasure's transaction: once it answers, the files are gone too.
        let rows = pg_files::delete_segments(&mut tx, id).await?;
        tx.commit().await?;
        if rows > 0 {
            tracing::info!(submission = %id, rows, "erased: spool files removed");
        }
        self.remove_files(id);
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn subject_ids(&self, digests: Vec<Vec<u8>>) -> Result<Vec<String>, SpoolError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT i.submission_id FROM subject_index i
             JOIN submissions s ON s.id = i.submission_id
             WHERE i.digest = ANY($1) AND s.erased_ms IS NULL ORDER BY 1",
        )
        .bind(&digests)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn erasable(&self) -> Result<Vec<(String, String, i64)>, SpoolError> {
        Ok(sqlx::query_as(
            "SELECT s.id, s.form, s.accepted_ms FROM submissions s
             WHERE s.sealed IS NOT NULL AND s.erased_ms IS NULL AND NOT EXISTS (
                 SELECT 1 FROM deliveries d
                 WHERE d.submission_id = s.id AND d.state IN ('pending', 'retrying'))",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn record(
        &self,
        id: &str,
        sink: &str,
        outcome: Outcome,
        now_ms: i64,
    ) -> Result<(), SpoolError> {
        let mut tx = self.pool.begin().await?;
        let q = match &outcome {
            Outcome::Delivered { kind, value } => sqlx::query(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                     last_error = NULL, failure_reason = NULL, receipt_kind = $3,
                     receipt_value = $4, updated_ms = $5,
                     claimed_by = NULL, lease_until = NULL
                 WHERE submission_id = $1 AND sink = $2
                   AND last_error IS DISTINCT FROM 'erased'",
            )
            .bind(id)
            .bind(sink)
            .bind(kind)
            .bind(value)
            .bind(now_ms),
            Outcome::Retry {
                error,
                failure,
                next_attempt_ms,
            } => sqlx::query(
                "UPDATE deliveries SET state = 'retrying', attempts = attempts + 1,
                     last_error = $3, failure_reason = $6, next_attempt_ms = $4,
                     updated_ms = $5, claimed_by = NULL, lease_until = NULL
                 WHERE submission_id = $1 AND sink = $2 AND state != 'delivered'
                   AND last_error IS DISTINCT FROM 'erased'",
            )
            .bind(id)
            .bind(sink)
            .bind(error)
            .bind(*next_attempt_ms)
            .bind(now_ms)
            .bind(failure.as_str()),
            Outcome::Dead { reason, failure } => sqlx::query(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1,
                     last_error = $3, failure_reason = $5, updated_ms = $4,
                     claimed_by = NULL, lease_until = NULL
                 WHERE submission_id = $1 AND sink = $2 AND state != 'delivered'
                   AND last_error IS DISTINCT FROM 'erased'",
            )
            .bind(id)
            .bind(sink)
            .bind(reason)
            .bind(now_ms)
            .bind(failure.as_str()),
        };
        q.execute(&mut *tx).await?;
        let purged = sqlx::query(
            "UPDATE submissions SET sealed = NULL WHERE id = $1 AND sealed IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM deliveries
                             WHERE submission_id = $1 AND state != 'delivered')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if purged > 0 {
            // Off the outcome's path (a large file is many rows); the janitor removes what a
            // failure here leaves.
            pg_files::remove_soon(&self.pool, id);
            self.remove_files(id);
        }
        Ok(())
    }

    async fn purge_keys(&self, before_ms: i64) -> Result<usize, SpoolError> {
        let n = sqlx::query("DELETE FROM idempotency_keys WHERE created_ms <= $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn requeue_dead(&self, id: &str, now_ms: i64) -> Result<usize, SpoolError> {
        let n = sqlx::query(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = $2,
                 updated_ms = $2, claimed_by = NULL, lease_until = NULL
             WHERE submission_id = $1 AND state = 'dead'
                   AND last_error IS DISTINCT FROM 'erased'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn discard(&self, id: String) {
        if !self.files.end_upload(&id) {
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            match pg_files::remove_unstored(&pool, &id).await {
                Ok(0) => {}
                Ok(rows) => {
                    tracing::debug!(submission = %id, rows, "files of a request that stored nothing removed");
                }
                // The janitor removes them later.
                Err(e) => {
                    tracing::warn!(submission = %id, error = %e, "removing the files of a request failed");
                }
            }
        });
    }

    async fn due(
        &self,
        sink: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, SpoolError> {
        let sql = format!(
            "WITH claimed AS (
                 UPDATE deliveries d SET claimed_by = $1, lease_until = $2 + $5
                 FROM (SELECT submission_id, sink FROM deliveries
                       WHERE sink = $3 AND state IN ('pending', 'retrying')
                         AND next_attempt_ms <= $2
                         AND (lease_until IS NULL OR lease_until <= $2)
                       ORDER BY next_attempt_ms, submission_id
                       LIMIT $4
                       FOR UPDATE SKIP LOCKED) c
                 WHERE d.submission_id = c.submission_id AND d.sink = c.sink
                 RETURNING d.*
             )
             SELECT {ROW_COLUMNS} FROM claimed d JOIN submissions s ON s.id = d.submission_id
             ORDER BY d.next_attempt_ms, d.submission_id"
        );
        let rows = sqlx::query(&sql)
            .bind(&self.instance)
            .bind(now_ms)
            .bind(sink)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(self.lease_ms)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, SpoolError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_ms, COALESCE(lease_until, 0))) FROM deliveries
             WHERE sink = $1 AND state IN ('pending', 'retrying')",
        )
        .bind(sink)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, SpoolError> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM deliveries d JOIN submissions s ON s.id = d.submission_id
             WHERE d.submission_id = $1 ORDER BY d.sink"
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn depth(&self) -> Result<i64, SpoolError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'retrying')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn sealed_of(&self, id: &str) -> Result<Option<Vec<u8>>, SpoolError> {
        let found: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT sealed FROM submissions WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.flatten())
    }

    async fn audit_newest(&self, limit: usize) -> Result<Vec<AuditEntry>, SpoolError> {
        audit_pg::newest(&self.pool, i64::try_from(limit).unwrap_or(i64::MAX)).await
    }

    async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, SpoolError> {
        audit_pg::entries_after(&self.pool, after, i64::try_from(limit).unwrap_or(i64::MAX)).await
    }

    async fn form_of(&self, id: &str) -> Result<Option<(String, String)>, SpoolError> {
        Ok(sqlx::query_as(
            "SELECT form, received_at FROM submissions WHERE id = $1 AND erased_ms IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    fn wakeups(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.wakeups.subscribe())
    }
}
