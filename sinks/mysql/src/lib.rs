//! SecureForm's MySQL/MariaDB sink: one row per submission, encrypted at rest.
//!
//! # Rows
//! Every row has `submission_id` (the primary key), `form`, `received_at` (DATETIME, UTC) and
//! `submission` (the normalized submission as JSON, encrypted per the mode). `columns` maps
//! chosen fields to columns of their own, encrypted the same way (one value as its text, several
//! as a JSON array, a missing field as NULL). The id, the form and the time stay readable, so
//! rows can be found and sorted without the key.
//!
//! A delivery is one transaction: the row, then the submission's stored files. A redelivery hits
//! the primary key (MySQL error 1062), inserts nothing, and counts as delivered; a duplicate on
//! some *other* unique index of a user's table is a permanent error instead. Every connection
//! runs with `STRICT_ALL_TABLES`, so a value that does not fit its column is an error, never a
//! silently truncated ciphertext.
//!
//! # Modes (`encryption`)
//! - `aes_gcm` (default): each value is sealed in the service with AES-256-GCM under the
//!   configured 32-byte key, with a fresh random 96-bit nonce; the key never reaches the
//!   database. Byte format, version 1 (also in `FORMAT.md` beside this crate):
//!
//!   ```text
//!   value = 0x01 ‖ nonce (12 bytes) ‖ ciphertext (as long as the plaintext) ‖ tag (16 bytes)
//!   aad   = "secureform/mysql/v1" ‖ 0x00 ‖ table ‖ 0x00 ‖ column ‖ 0x00 ‖ row_key
//!   ```
//!
//!   `table` and `column` are the names as configured (ASCII); `row_key` is the submission id,
//!   or `<submission id>:<file index>` in the files table (column `content`). A value moved to
//!   another cell does not open. [`open_value`] decrypts one value; [`read_rows`] and
//!   [`read_file`] read rows back (the `secureform mysql read` command).
//! - `mysql_aes`: the database's own `AES_ENCRYPT(value, key)` with the key as a bound
//!   parameter, so `AES_DECRYPT(submission, key)` works in SQL. **On MariaDB (before 11.2) that
//!   is AES-128-ECB**: deterministic (equal values give equal ciphertexts), no IV, and the key
//!   folded to 16 bytes by XOR; the sink reports it as [`AtRestLevel::Weak`] and says so in
//!   `check`, at start-up and in the form's warnings. Where the server has
//!   `block_encryption_mode` (MySQL; MariaDB 11.2+), every connection sets it to `aes-256-cbc`
//!   and each value gets a random 16-byte IV, stored in the column `<column>_iv`; decrypt with
//!   `SET block_encryption_mode = 'aes-256-cbc'; SELECT AES_DECRYPT(submission, key,
//!   submission_iv)`. Either way the key and the plaintext travel to the server with each insert:
//!   keep the general log off and the binary log in ROW format.
//! - `none`: plain columns, reported as not encrypted at rest.
//!
//! # Files
//! Files up to `files_max_bytes` (default 1 MiB, at most 64 MiB, 0 = none) are stored in the
//! companion table `<table>_files` (`submission_id`, `file_index`, `content` [, `content_iv`]),
//! encrypted like the row, in the same transaction. A larger file is not stored here: its
//! metadata (name, size, SHA-256) is in the submission, and its content belongs to a Documents
//! sink configured on the same form. The file is read through the spool's streaming reader,
//! never more than `files_max_bytes + 1` bytes, and never written to disk in plaintext.
//!
//! # Tables
//! Identifiers are checked against `^[A-Za-z_][A-Za-z0-9_]{0,63}$` and backquoted; values are
//! always bound parameters. With `create_table = true` the tables are created when missing;
//! in any case the tables are checked (columns present with fitting types, a unique key on the
//! submission id) with an error naming the table, the column and the key. Building the sink
//! does not connect, so a database that is down or slow never holds up the service's start:
//! the check runs in the service's start-up health report (in the background), in `secureform
//! check --online`, and before the first delivery; until it passes, deliveries stay retryable.
//!
//! # Failures
//! A lost connection, a server gone away or shutting down, a refused connection, lock timeouts
//! and deadlocks are retryable (one immediate reconnect is tried inside a delivery); constraint
//! and schema errors, bad credentials and TLS failures are permanent, with the MySQL error
//! number kept. The server's own message is kept only where it names identifiers alone, as
//! values must never reach a reason or a log.
//!
//! # Connection
//! TLS as the URL's `ssl-mode` says (`VERIFY_IDENTITY` recommended), with `ca_file` for a
//! private CA (which implies `VERIFY_IDENTITY` unless the URL names a mode). A pool of
//! `pool_size` connections, connecting lazily.
//!
//! [`AtRestLevel::Weak`]: secureform_contract::AtRestLevel::Weak

#![warn(missing_docs)]

mod config;
mod connect;
mod errors;
mod gcm;
mod read;
mod row;
mod schema;
mod secrets;
mod sink;

pub use config::{
    is_identifier, Config, Encryption, DEFAULT_CONNECT_TIMEOUT_SECS, DEFAULT_FILES_MAX_BYTES,
    DEFAULT_POOL_SIZE, MAX_FILES_MAX_BYTES,
};
pub use gcm::{aad, file_row_key, open_value, ValueError, AAD_LABEL, VERSION};
pub use read::{read_file, read_rows, ReadError};
pub use secrets::MIN_MYSQL_AES_KEY;
pub use sink::{MysqlSink, Spec};
