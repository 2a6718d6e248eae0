//! The spool's storage backend: what the spool asks of its database, whichever it is.
//!
//! [`super::Spool`] seals, keeps the clock and writes the files (locally, or into PostgreSQL's
//! `file_segments`: see `pg_files.rs`); a [`SpoolBackend`] stores the sealed records and the
//! delivery states, and removes the files with the records. The HTTP layer and the dispatcher
//! only see the `Spool`, never the backend. Adding an operation means one method here and one in
//! each implementation (`sqlite.rs`, `postgres.rs`).

use async_trait::async_trait;

use super::idempotency::Acceptance;
use super::store::{DeliveryRow, NewSubmission, Outcome};
use super::SpoolError;
use crate::audit::{Entry as AuditEntry, NewEntry};

/// The spool's operations on its database.
#[async_trait]
pub(crate) trait SpoolBackend: Send + Sync {
    /// Which backend this is (`sqlite`), for logs.
    fn name(&self) -> &'static str;

    /// Stores a sealed submission with one pending delivery per sink (or, with an idempotency
    /// key seen before, nothing). Returns once the commit is durable; concurrent calls share
    /// commits.
    async fn accept(&self, record: NewSubmission) -> Result<Acceptance, SpoolError>;

    /// Durably records one audit entry, chained to the last (see `crate::audit`).
    async fn audit(&self, entry: NewEntry) -> Result<(), SpoolError>;

    /// Ends a submission's open deliveries as dead with reason `erased` and removes its sealed
    /// payload and files; returns how many deliveries it ended.
    async fn erase(&self, id: &str, now_ms: i64) -> Result<usize, SpoolError>;

    /// Submissions (not erased) whose subject index holds one of `digests`.
    async fn subject_ids(&self, digests: Vec<Vec<u8>>) -> Result<Vec<String>, SpoolError>;

    /// Submissions with a payload and no open delivery: `(id, form, accepted_ms)`.
    async fn erasable(&self) -> Result<Vec<(String, String, i64)>, SpoolError>;

    /// Records the outcome of one delivery attempt. Once every delivery of the submission is
    /// done, its sealed payload goes, and its files with it.
    async fn record(
        &self,
        id: &str,
        sink: &str,
        outcome: Outcome,
        now_ms: i64,
    ) -> Result<(), SpoolError>;

    /// Puts a submission's dead deliveries back in the queue; returns how many.
    async fn requeue_dead(&self, id: &str, now_ms: i64) -> Result<usize, SpoolError>;

    /// Removes the idempotency keys remembered at or before `before_ms`; returns how many.
    async fn purge_keys(&self, before_ms: i64) -> Result<usize, SpoolError>;

    /// Removes the files of `id` unless a submission `id` is stored. Does not wait.
    fn discard(&self, id: String);

    /// Deliveries of `sink` due at `now_ms`, oldest first.
    async fn due(
        &self,
        sink: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, SpoolError>;

    /// When the next not-yet-due delivery of `sink` becomes due (unix ms), if any.
    async fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, SpoolError>;

    /// Every delivery state of a submission; empty when the id is unknown.
    async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryRow>, SpoolError>;

    /// How many deliveries are open.
    async fn depth(&self) -> Result<i64, SpoolError>;

    /// The sealed payload of a submission still in the spool.
    async fn sealed_of(&self, id: &str) -> Result<Option<Vec<u8>>, SpoolError>;

    /// The newest audit entries, newest first.
    async fn audit_newest(&self, limit: usize) -> Result<Vec<AuditEntry>, SpoolError>;

    /// Audit entries with a sequence number above `after`, oldest first.
    async fn audit_after(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, SpoolError>;

    /// The form and received_at of a known submission.
    async fn form_of(&self, id: &str) -> Result<Option<(String, String)>, SpoolError>;

    /// Whether the backend can take writes now (for `/readyz`).
    async fn ready(&self) -> bool;

    /// Names of sinks with new work accepted by other instances (an empty name: any sink), for
    /// backends shared between instances.
    fn wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
}
