//! The audit trail: who read or erased what, when, and why, in a hash chain.
//!
//! Every entry stores the SHA-256 of the previous entry's canonical form (`prev_hash`) and its
//! own (`hash`); the first entry chains from [`GENESIS`]. An entry edited in place no longer
//! matches its own hash; a removed entry breaks the link of the one after it. `secureform audit
//! verify` walks the chain and names the first entry that does not hold.
//!
//! The canonical form is the JSON object
//! `{"seq":…,"at_ms":…,"actor":…,"action":…,"id":…,"reason":…,"detail":…,"prev":…}` with the
//! keys in that order, no spaces, `null` for an absent reason or detail (serde_json's output of
//! [`Canonical`]). The chain is not keyed: someone who can rewrite the whole table can rebuild
//! it. Keep the head hash `audit verify` prints somewhere else (a ticket, a log shipper) to
//! detect that, and a truncated tail.
//!
//! Entries carry ids, names and reasons, never field values or file names.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the first entry's `prev_hash` is.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit entry records. The names ([`Action::as_str`]) are stored and answered by
/// `GET /api/v1/audit`; `openapi.yaml` lists exactly these (checked by a test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The API served a document's submission.
    ReadSubmission,
    /// The API served one of a document's files.
    ReadFile,
    /// The console showed a submission (or a summary of it in a list).
    ConsoleReadSubmission,
    /// The console served a file.
    ConsoleReadFile,
    /// The console exported a submission (CSV or JSON lines).
    ConsoleExport,
    /// `secureform docs get` decrypted a document.
    CliReadDocument,
    /// `secureform mysql read` decrypted rows.
    CliMysqlRead,
    /// `secureform mysql file` decrypted a file.
    CliMysqlFile,
    /// `secureform docs find` looked a data subject up.
    CliFindSubject,
    /// A document was erased from a Documents store.
    EraseDocument,
    /// A submission was erased from the spool.
    EraseSubmission,
    /// Dead deliveries were re-queued (API or console), recorded before they were.
    Retry,
    /// The service started (its version, configuration hash and key ids in the detail).
    ServiceStart,
}

impl Action {
    /// Every action, in the order `openapi.yaml` lists them.
    pub const ALL: [Action; 13] = [
        Action::ReadSubmission,
        Action::ReadFile,
        Action::ConsoleReadSubmission,
        Action::ConsoleReadFile,
        Action::ConsoleExport,
        Action::CliReadDocument,
        Action::CliMysqlRead,
        Action::CliMysqlFile,
        Action::CliFindSubject,
        Action::EraseDocument,
        Action::EraseSubmission,
        Action::Retry,
        Action::ServiceStart,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReadSubmission => "read_submission",
            Action::ReadFile => "read_file",
            Action::ConsoleReadSubmission => "console_read_submission",
            Action::ConsoleReadFile => "console_read_file",
            Action::ConsoleExport => "console_export",
            Action::CliReadDocument => "cli_read_document",
            Action::CliMysqlRead => "cli_mysql_read",
            Action::CliMysqlFile => "cli_mysql_file",
            Action::CliFindSubject => "cli_find_subject",
            Action::EraseDocument => "erase_document",
            Action::EraseSubmission => "erase_submission",
            Action::Retry => "retry",
            Action::ServiceStart => "service_start",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an erasure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Someone asked (API `DELETE`, `docs delete`).
    Request,
    /// The retention period ran out (the sweeper).
    Retention,
    /// An erasure by data subject.
    Subject,
    /// Someone pressed "Delete" in the web console.
    Console,
}

impl Reason {
    /// Every reason, in the order `openapi.yaml` lists them.
    pub const ALL: [Reason; 4] = [
        Reason::Request,
        Reason::Retention,
        Reason::Subject,
        Reason::Console,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Request => "request",
            Reason::Retention => "retention",
            Reason::Subject => "subject",
            Reason::Console => "console",
        }
    }
}

/// An entry to record: the chain fields and the sequence number are the store's.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub at_ms: i64,
    /// A token name (API and console), `cli:<OS user>`, or `service`.
    pub actor: String,
    pub action: String,
    /// The document or submission the entry is about (empty for service events).
    pub id: String,
    pub reason: Option<String>,
    /// Ids and counts only, e.g. `sink=docs sealed_sha256=…`.
    pub detail: Option<String>,
}

/// A recorded entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub id: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// `None` only for entries written before the chain existed and not yet chained.
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// The canonical form an entry's hash is taken over: the field order is the format.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at_ms: i64,
    actor: &'a str,
    action: &'a str,
    id: &'a str,
    reason: Option<&'a str>,
    detail: Option<&'a str>,
    prev: &'a str,
}

/// The hash (hex SHA-256 of the canonical form) of an entry with sequence number `seq`
/// following an entry whose hash is `prev`.
pub fn hash_of(seq: i64, e: &NewEntry, prev: &str) -> String {
    let canonical = Canonical {
        seq,
        at_ms: e.at_ms,
        actor: &e.actor,
        action: &e.action,
        id: &e.id,
        reason: e.reason.as_deref(),
        detail: e.detail.as_deref(),
        prev,
    };
    // Serializing a struct of strings and integers cannot fail; an empty string would only
    // break the chain, never forge it.
    let text = serde_json::to_vec(&canonical).unwrap_or_default();
    hex::encode(Sha256::digest(&text))
}

impl Entry {
    fn as_new(&self) -> NewEntry {
        NewEntry {
            at_ms: self.at_ms,
            actor: self.actor.clone(),
            action: self.action.clone(),
            id: self.id.clone(),
            reason: self.reason.clone(),
            detail: self.detail.clone(),
        }
    }

    /// The entry's hash recomputed from its content and its stored `prev_hash`.
    pub fn recomputed(&self) -> Option<String> {
        let prev = self.prev_hash.as_deref()?;
        Some(hash_of(self.seq, &self.as_new(), prev))
    }
}

/// What walking the chain found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub entries: u64,
    /// The last entry's sequence number and hash: keep them elsewhere to detect a cut tail.
    pub head_seq: Option<i64>,
    pub head_hash: Option<String>,
}

/// The first entry that does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq}: {why}")]
pub struct Broken {
    pub seq: i64,
    pub why: String,
}

/// Walks entries in sequence order, holding the chain from [`GENESIS`].
#[derive(Default)]
pub struct Walker {
    last: Option<(i64, String)>,
    count: u64,
}

impl Walker {
    /// Checks the next entry.
    pub fn check(&mut self, e: &Entry) -> Result<(), Broken> {
        let broken = |why: String| Broken { seq: e.seq, why };
        let (Some(prev), Some(hash)) = (e.prev_hash.as_deref(), e.hash.as_deref()) else {
            return Err(broken(
                "not chained (written before the chain existed and never chained, or inserted \
                 by hand)"
                    .to_owned(),
            ));
        };
        let expected = self.last.as_ref().map_or(GENESIS, |(_, h)| h.as_str());
        if prev != expected {
            let after = match &self.last {
                Some((seq, _)) => format!("entry {seq}"),
                None => "the start of the log".to_owned(),
            };
            return Err(broken(format!(
                "does not follow {after}: an entry between them was removed, or {after} was \
                 edited"
            )));
        }
        if e.recomputed().as_deref() != Some(hash) {
            return Err(broken(
                "its content does not match its hash: it was edited".to_owned(),
            ));
        }
        self.last = Some((e.seq, hash.to_owned()));
        self.count += 1;
        Ok(())
    }

    pub fn finish(self) -> Verified {
        Verified {
            entries: self.count,
            head_seq: self.last.as_ref().map(|(s, _)| *s),
            head_hash: self.last.map(|(_, h)| h),
        }
    }
}

/// `cli:<OS user>`: the actor of command-line reads and erasures.
pub fn cli_actor() -> String {
    let uid = rustix::process::getuid();
    let name = std::env::var("USER")
        .ok()
        .filter(|u| crate::config::valid_name(u))
        .unwrap_or_else(|| format!("uid{}", uid.as_raw()));
    format!("cli:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `enum: [...]` list following `key:` in `openapi.yaml`'s audit entry schema.
    fn openapi_enum(key: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
        let yaml = std::fs::read_to_string(path).unwrap_or_default();
        let entry = &yaml[yaml
            .find("next_after: {type: [integer, 'null']}")
            .unwrap_or(0)..];
        let at = &entry[entry
            .find(&format!("\n                        {key}:"))
            .unwrap_or(0)..];
        let list = &at[at.find("enum: [").map_or(0, |i| i + "enum: [".len())..];
        list[..list.find(']').unwrap_or(0)]
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    #[test]
    fn openapi_lists_exactly_the_actions_and_reasons() {
        let actions: Vec<String> = Action::ALL.iter().map(|a| a.as_str().to_owned()).collect();
        assert_eq!(openapi_enum("action"), actions);
        let mut reasons: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().to_owned()).collect();
        reasons.push("null".to_owned());
        assert_eq!(openapi_enum("reason"), reasons);
    }

    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let new = NewEntry {
                    at_ms: 1000 + seq,
                    actor: "cli:ann".into(),
                    action: "erase_document".into(),
                    id: format!("01J{seq:023}"),
                    reason: Some("request".into()),
                    detail: None,
                };
                let hash = hash_of(seq, &new, &prev);
                let e = Entry {
                    seq,
                    at_ms: new.at_ms,
                    actor: new.actor,
                    action: new.action,
                    id: new.id,
                    reason: new.reason,
                    detail: new.detail,
                    prev_hash: Some(prev.clone()),
                    hash: Some(hash.clone()),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn walk(entries: &[Entry]) -> Result<Verified, Broken> {
        let mut w = Walker::default();
        for e in entries {
            w.check(e)?;
        }
        Ok(w.finish())
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let entries = chain(5);
        let v = walk(&entries).unwrap();
        assert_eq!(v.entries, 5);
        assert_eq!(v.head_seq, Some(5));
        assert_eq!(v.head_hash, entries[4].hash);
    }

    #[test]
    fn a_removed_or_edited_entry_is_named() {
        let mut entries = chain(5);
        entries.remove(2);
        assert_eq!(walk(&entries).unwrap_err().seq, 4);
        let mut entries = chain(5);
        entries[1].actor = "cli:mallory".into();
        assert_eq!(walk(&entries).unwrap_err().seq, 2);
        let mut entries = chain(5);
        entries.remove(0);
        assert_eq!(walk(&entries).unwrap_err().seq, 2);
    }
}
