-- The spool on PostgreSQL: the tables of the SQLite spool (docs/spool.md), plus a lease per
-- delivery so that several instances share the work (docs/scale-out.md).
CREATE TABLE submissions (
    id TEXT PRIMARY KEY,
    form TEXT NOT NULL,
    received_at TEXT NOT NULL,
    accepted_ms BIGINT NOT NULL,
    file_count INTEGER NOT NULL,
    -- The sealed normalized submission; NULL once every sink has it.
    sealed BYTEA
);

CREATE TABLE deliveries (
    submission_id TEXT NOT NULL REFERENCES submissions (id),
    sink TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_error TEXT,
    receipt_kind TEXT,
    receipt_value TEXT,
    updated_ms BIGINT NOT NULL,
    -- The instance delivering it now, and until when (unix ms) its claim holds.
    claimed_by TEXT,
    lease_until BIGINT,
    PRIMARY KEY (submission_id, sink)
);

CREATE INDEX deliveries_open ON deliveries (sink, next_attempt_ms, submission_id)
    WHERE state IN ('pending', 'retrying');

CREATE TABLE idempotency_keys (
    token TEXT NOT NULL,
    form TEXT NOT NULL,
    key TEXT NOT NULL,
    request_digest BYTEA,
    submission_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (token, form, key)
);

CREATE INDEX idempotency_keys_age ON idempotency_keys (created_ms);

CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    token TEXT NOT NULL,
    action TEXT NOT NULL,
    document_id TEXT NOT NULL
);
