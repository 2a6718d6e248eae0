//! Idempotency keys of the submission API, as Stripe keeps them: a key is remembered per (token,
//! form) for [`IDEMPOTENCY_MS`], with a keyed digest of the normalized request it came with. The
//! same key with the same request answers with the first submission's id and stores nothing;
//! the same key with another request is refused (`idempotency_key_reused`), since answering
//! with the first id would acknowledge a submission that was never stored.
//!
//! The digest covers the form, the fields (names, values, order) and each file's SHA-256 — not
//! the id or the time, which differ on every request. It is an HMAC under a key derived from a
//! key-encryption key ([`secureform_crypto::KeyRing::digests`]): it sits unencrypted in the
//! spool, and a plain hash of a short field would let its reader guess the value.

use rusqlite::{params, Connection, OptionalExtension};
use secureform_contract::Submission;
use secureform_crypto::KeyRing;

/// How long an Idempotency-Key is remembered: 48 hours (the API promises at least 24).
pub const IDEMPOTENCY_MS: i64 = 48 * 3600 * 1000;

/// What the digest of a request is made for (keeps it apart from any other use of the keys).
const LABEL: &[u8] = b"secureform/idempotency/request/v1";

/// An Idempotency-Key as the writer checks it.
pub(crate) struct Idempotency {
    pub token: String,
    pub key: String,
    /// The request's digest under each key of the ring, the current key's first (a key
    /// remembered before a rotation still matches).
    pub digests: Vec<Vec<u8>>,
}

impl Idempotency {
    /// The key `key` of token `token`, for `submission` as normalized.
    pub(crate) fn new(
        keys: &KeyRing,
        token: String,
        key: String,
        submission: &Submission,
    ) -> Result<Self, serde_json::Error> {
        let files: Vec<&str> = submission.files.iter().map(|f| f.sha256.as_str()).collect();
        let request = zeroize::Zeroizing::new(serde_json::to_vec(&(
            &submission.form,
            &submission.fields,
            files,
        ))?);
        Ok(Idempotency {
            token,
            key,
            digests: keys.digests(LABEL, &request),
        })
    }
}

/// What the spool did with a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// Stored, under its own id.
    Stored,
    /// The same request came with this Idempotency-Key before: nothing was stored, and this is
    /// the first submission's id.
    Repeat(String),
    /// This Idempotency-Key came before with another request: nothing was stored.
    KeyReused,
}

/// Creates the table, and carries over the keys of a spool made when keys were kept per token
/// only: each goes to its submission's form, with no digest (such a key matches any request,
/// as it did; it expires within 48 hours anyway).
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS idempotency_keys (
             token TEXT NOT NULL,
             form TEXT NOT NULL,
             key TEXT NOT NULL,
             request_digest BLOB,
             submission_id TEXT NOT NULL,
             created_ms INTEGER NOT NULL,
             PRIMARY KEY (token, form, key)
         );
         CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys (created_ms);
         COMMIT;",
    )?;
    let old: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if old.is_some() {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             INSERT OR IGNORE INTO idempotency_keys
                 (token, form, key, request_digest, submission_id, created_ms)
                 SELECT i.token, s.form, i.key, NULL, i.submission_id, i.created_ms
                 FROM idempotency i JOIN submissions s ON s.id = i.submission_id;
             DROP TABLE idempotency;
             COMMIT;",
        )?;
    }
    Ok(())
}

/// Looks the key up for `form`; when it is new, remembers it for submission `id`.
pub(crate) fn check_and_remember(
    conn: &Connection,
    key: &Idempotency,
    form: &str,
    id: &str,
    now_ms: i64,
) -> rusqlite::Result<Acceptance> {
    let seen: Option<(String, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT submission_id, request_digest FROM idempotency_keys
             WHERE token = ?1 AND form = ?2 AND key = ?3 AND created_ms > ?4",
        )?
        .query_row(
            params![key.token, form, key.key, now_ms - IDEMPOTENCY_MS],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((first, digest)) = seen {
        return Ok(match digest {
            Some(d) if !key.digests.contains(&d) => Acceptance::KeyReused,
            _ => Acceptance::Repeat(first),
        });
    }
    conn.prepare_cached(
        "DELETE FROM idempotency_keys
         WHERE created_ms <= ?1 OR (token = ?2 AND form = ?3 AND key = ?4)",
    )?
    .execute(params![now_ms - IDEMPOTENCY_MS, key.token, form, key.key])?;
    conn.prepare_cached(
        "INSERT INTO idempotency_keys
             (token, form, key, request_digest, submission_id, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        key.token,
        form,
        key.key,
        key.digests.first(),
        id,
        now_ms
    ])?;
    Ok(Acceptance::Stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema of the spool's tables as they were before keys were scoped by form.
    const SCHEMA_BEFORE: &str = "
        CREATE TABLE submissions (
            id TEXT PRIMARY KEY, form TEXT NOT NULL, received_at TEXT NOT NULL,
            accepted_ms INTEGER NOT NULL, file_count INTEGER NOT NULL, sealed BLOB);
        CREATE TABLE idempotency (
            token TEXT NOT NULL, key TEXT NOT NULL, submission_id TEXT NOT NULL,
            created_ms INTEGER NOT NULL, PRIMARY KEY (token, key));
        CREATE INDEX idempotency_age ON idempotency (created_ms);
        INSERT INTO submissions VALUES ('S1', 'a', '2026-01-01T00:00:00Z', 1000, 0, x'00');
        INSERT INTO idempotency VALUES ('integrator', 'order-1', 'S1', 1000);";

    fn key(keys: &KeyRing, fields: &str) -> Idempotency {
        let submission: Submission = serde_json::from_str(&format!(
            r#"{{"id":"X","form":"a","received_at":"t","source":"json","fields":{fields},"files":[]}}"#
        ))
        .unwrap();
        Idempotency::new(keys, "integrator".into(), "order-1".into(), &submission).unwrap()
    }

    #[test]
    fn a_spool_with_keys_per_token_is_upgraded_and_its_keys_kept() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_BEFORE).unwrap();
        // The whole start-up migration, twice (as at every start: the second changes nothing).
        super::super::store::migrate(&conn).unwrap();
        super::super::store::migrate(&conn).unwrap();
        let keys = KeyRing::generate().unwrap();
        let k = key(&keys, r#"{"x":"1"}"#);
        assert_eq!(
            check_and_remember(&conn, &k, "a", "S2", 2000).unwrap(),
            Acceptance::Repeat("S1".into()),
            "the old key is kept, for its submission's form"
        );
        assert_eq!(
            check_and_remember(&conn, &k, "b", "S3", 2000).unwrap(),
            Acceptance::Stored,
            "and only for that form"
        );
        let old: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'idempotency_age'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0, "the old table and its index are gone");
    }

    #[test]
    fn the_same_key_with_another_request_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let keys = KeyRing::generate().unwrap();
        let first = key(&keys, r#"{"x":"1"}"#);
        assert_eq!(
            check_and_remember(&conn, &first, "a", "S1", 0).unwrap(),
            Acceptance::Stored
        );
        assert_eq!(
            check_and_remember(&conn, &key(&keys, r#"{"x":"1"}"#), "a", "S2", 1).unwrap(),
            Acceptance::Repeat("S1".into())
        );
        assert_eq!(
            check_and_remember(&conn, &key(&keys, r#"{"x":"2"}"#), "a", "S3", 1).unwrap(),
            Acceptance::KeyReused
        );
        let stored: Vec<u8> = conn
            .query_row("SELECT request_digest FROM idempotency_keys", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            stored.len(),
            8 + 32,
            "a key id and an HMAC, nothing of the fields"
        );
    }
}
