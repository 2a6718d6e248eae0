-- The audit trail becomes a hash chain (issue 17): each entry holds the SHA-256 of the previous
-- entry's canonical form and its own (see src/audit.rs). The `token` column holds the actor (a
-- token name, `cli:<OS user>`, `service`); `document_id` the document or submission id.
-- Entries written before this migration are chained once, by the service, at its next start.
ALTER TABLE audit ADD COLUMN reason TEXT;
ALTER TABLE audit ADD COLUMN detail TEXT;
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;

-- When a submission was erased (issue 17): its sealed payload is gone, its open deliveries are
-- dead with reason `erased`, and the API no longer shows it.
ALTER TABLE submissions ADD COLUMN erased_ms BIGINT;

-- The keyed blind index of data subjects (src/subjects.rs): HMAC-SHA-256 digests of the
-- normalized values of each form's `subject_fields`, never the values.
CREATE TABLE subject_index (
    digest BYTEA NOT NULL,
    submission_id TEXT NOT NULL,
    PRIMARY KEY (digest, submission_id)
);
CREATE INDEX subject_index_submission ON subject_index (submission_id);
