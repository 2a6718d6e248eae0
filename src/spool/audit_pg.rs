//! The audit log in the PostgreSQL spool: appending under a lock (several instances share the
//! chain), paging, and chaining the entries written before the chain, once.

use sqlx::{PgPool, Row};

use super::SpoolError;
use crate::audit::{hash_of, Entry, NewEntry, GENESIS};

/// The advisory lock that orders appends across instances.
const CHAIN_LOCK: i64 = 0x0053_4641_5544_4954; // "SFAUDIT"

const COLUMNS: &str = "seq, at_ms, token, action, document_id, reason, detail, prev_hash, hash";

fn row(r: &sqlx::postgres::PgRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        seq: r.try_get(0)?,
        at_ms: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        id: r.try_get(4)?,
        reason: r.try_get(5)?,
        detail: r.try_get(6)?,
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

/// Appends one entry, chained to the last, in a transaction holding the chain's lock.
pub(crate) async fn append(pool: &PgPool, entry: &NewEntry) -> Result<i64, SpoolError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    let last: Option<Option<String>> =
        sqlx::query_scalar("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let prev = last.flatten().unwrap_or_else(|| GENESIS.to_owned());
    let seq: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('audit', 'seq'))")
        .fetch_one(&mut *tx)
        .await?;
    let hash = hash_of(seq, entry, &prev);
    sqlx::query(
        "INSERT INTO audit (seq, at_ms, token, action, document_id, reason, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(entry.at_ms)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.id)
    .bind(&entry.reason)
    .bind(&entry.detail)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(seq)
}

/// Chains the entries written before the chain existed, once: only while no entry is chained.
pub(crate) async fn chain_legacy(pool: &PgPool) -> Result<(), SpoolError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    let chained: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM audit WHERE hash IS NOT NULL LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    if chained.is_some() {
        return Ok(());
    }
    let sql = format!("SELECT {COLUMNS} FROM audit ORDER BY seq");
    let legacy: Vec<Entry> = sqlx::query(&sql)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(row)
        .collect::<Result<_, _>>()?;
    let mut prev = GENESIS.to_owned();
    for e in &legacy {
        let new = NewEntry {
            at_ms: e.at_ms,
            actor: e.actor.clone(),
            action: e.action.clone(),
            id: e.id.clone(),
            reason: e.reason.clone(),
            detail: e.detail.clone(),
        };
        let hash = hash_of(e.seq, &new, &prev);
        sqlx::query("UPDATE audit SET prev_hash = $2, hash = $3 WHERE seq = $1")
            .bind(e.seq)
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        prev = hash;
    }
    tx.commit().await?;
    if !legacy.is_empty() {
        tracing::info!(
            entries = legacy.len(),
            "chained the audit entries written before the hash chain"
        );
    }
    Ok(())
}

/// Entries with `seq > after`, oldest first.
pub(crate) async fn entries_after(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<Entry>, SpoolError> {
    let sql = format!("SELECT {COLUMNS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

/// The newest entries, newest first.
pub(crate) async fn newest(pool: &PgPool, limit: i64) -> Result<Vec<Entry>, SpoolError> {
    let sql = format!("SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT $1");
    let rows = sqlx::query(&sql).bind(limit).fetch_all(pool).await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}
