//! The audit log in the SQLite spool: the hash chain's columns, appending, paging.
//!
//! Appends run inside a write transaction (the spool writer's, or `BEGIN IMMEDIATE` from the
//! command line), so reading the last entry and inserting the next cannot interleave with
//! another writer, in this process or another.

use rusqlite::{params, Connection, OptionalExtension};

use crate::audit::{hash_of, Entry, NewEntry, GENESIS};

/// Adds the chain's columns to an `audit` table made before them (in place), then chains the
/// entries written before, once: only while no entry is chained yet, so that a row inserted
/// later by hand is never legitimized.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for column in ["reason", "detail", "prev_hash", "hash"] {
        add_column(conn, "audit", column, "TEXT")?;
    }
    // When a submission was erased (its status is then gone from the API).
    add_column(conn, "submissions", "erased_ms", "INTEGER")?;
    // The keyed blind index of data subjects (`crate::subjects`).
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS subject_index (
             digest BLOB NOT NULL,
             submission_id TEXT NOT NULL,
             PRIMARY KEY (digest, submission_id)
         );
         CREATE INDEX IF NOT EXISTS subject_index_submission ON subject_index (submission_id);",
    )?;
    chain_legacy(conn)
}

/// Adds a column to a table made before it (names are constants of this file, never input).
pub(crate) fn add_column(
    conn: &Connection,
    table: &str,
    column: &str,
    kind: &str,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let columns: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if !columns.iter().any(|c| c == column) {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
    }
    Ok(())
}

fn chain_legacy(conn: &Connection) -> rusqlite::Result<()> {
    let chained: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM audit WHERE hash IS NOT NULL LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if chained.is_some() {
        return Ok(());
    }
    let legacy = entries_after(conn, 0, i64::MAX)?;
    if legacy.is_empty() {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
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
            conn.execute(
                "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
                params![e.seq, prev, hash],
            )?;
            prev = hash;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }?;
    tracing::info!(
        entries = legacy.len(),
        "chained the audit entries written before the hash chain"
    );
    Ok(())
}

/// Appends one entry, chained to the last; the caller holds the write transaction.
pub(crate) fn append(conn: &Connection, entry: &NewEntry) -> rusqlite::Result<i64> {
    let last: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let used: Option<i64> = conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let seq = used
        .unwrap_or(0)
        .max(last.as_ref().map_or(0, |(s, _)| *s))
        .saturating_add(1);
    let prev = last
        .and_then(|(_, h)| h)
        .unwrap_or_else(|| GENESIS.to_owned());
    let hash = hash_of(seq, entry, &prev);
    conn.prepare_cached(
        "INSERT INTO audit (seq, at_ms, token, action, document_id, reason, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        seq,
        entry.at_ms,
        entry.actor,
        entry.action,
        entry.id,
        entry.reason,
        entry.detail,
        prev,
        hash
    ])?;
    Ok(seq)
}

const COLUMNS: &str = "seq, at_ms, token, action, document_id, reason, detail, prev_hash, hash";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        id: r.get(4)?,
        reason: r.get(5)?,
        detail: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

/// Entries with `seq > after`, oldest first.
pub(crate) fn entries_after(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Entry>> {
    let sql = format!("SELECT {COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![after, limit], row)?;
    rows.collect()
}

/// The newest entries, newest first.
pub(crate) fn newest(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<Entry>> {
    let sql = format!("SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit], row)?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Walker;

    /// A spool from before the chain: its `audit` table gains the columns in place, its entries
    /// are chained once, and new entries follow them.
    #[test]
    fn an_older_audit_table_is_upgraded_and_chained_in_place() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE submissions (id TEXT PRIMARY KEY, form TEXT NOT NULL,
                 received_at TEXT NOT NULL, accepted_ms INTEGER NOT NULL,
                 file_count INTEGER NOT NULL, sealed BLOB);
             CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,
                 token TEXT NOT NULL, action TEXT NOT NULL, document_id TEXT NOT NULL);
             INSERT INTO audit (at_ms, token, action, document_id)
                 VALUES (1, 'ops', 'read_submission', '01J00000000000000000000001'),
                        (2, 'ops', 'read_file', '01J00000000000000000000001');",
        )
        .unwrap();
        crate::spool::store::migrate(&conn).unwrap();
        append(
            &conn,
            &NewEntry {
                at_ms: 3,
                actor: "cli:ann".into(),
                action: "erase_document".into(),
                id: "01J00000000000000000000001".into(),
                reason: Some("request".into()),
                detail: None,
            },
        )
        .unwrap();
        // Migrating again changes nothing.
        crate::spool::store::migrate(&conn).unwrap();
        let entries = entries_after(&conn, 0, 100).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].prev_hash.as_deref(), Some(GENESIS));
        let mut walker = Walker::default();
        for e in &entries {
            walker.check(e).unwrap();
        }
        assert_eq!(walker.finish().head_seq, Some(3));
        let erased: Option<i64> = conn
            .query_row("SELECT erased_ms FROM submissions LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .unwrap()
            .flatten();
        assert_eq!(erased, None, "the column exists");
    }
}
