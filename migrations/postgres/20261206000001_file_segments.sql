-- Uploaded files on PostgreSQL (issue 16): each file of a submission is stored as the bytes of
-- its sealed stream (secureform_crypto's `Sealer`, context `spool/<id>/files/<index>`) cut into
-- rows of at most about 1 MiB, in order by `segment`. Only sealed bytes go in: the other columns
-- hold the submission id, the file's index in the submission and numbers.
--
-- The rows of an upload are written as it streams in, each committed on its own, before the
-- submission's row exists: there is no foreign key. They are removed with the submission's
-- payload (every sink has it, or it was erased), by the request when it ends without storing a
-- submission, and otherwise by the janitor of any instance (docs/scale-out.md).
CREATE TABLE file_segments (
    submission_id TEXT NOT NULL,
    file_index INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    sealed BYTEA NOT NULL,
    -- When the row was written, by the database's clock (unix ms): the janitor's measure of an
    -- upload nobody finished.
    created_ms BIGINT NOT NULL DEFAULT ((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT),
    PRIMARY KEY (submission_id, file_index, segment)
);

-- Sealed bytes do not compress: store them out of line without trying.
ALTER TABLE file_segments ALTER COLUMN sealed SET STORAGE EXTERNAL;
