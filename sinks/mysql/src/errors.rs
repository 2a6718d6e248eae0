//! Classifying database failures as retryable or permanent, with a reason that never carries a
//! value: the server's own message is kept only for errors whose text names identifiers alone
//! (a table, a column, a user), never for those that may quote data ("Duplicate entry '…'",
//! "Incorrect string value: '…'").

use secureform_contract::{DeliveryError, FailureReason};
use sqlx::mysql::MySqlDatabaseError;
use FailureReason::{Auth, BadConfig, Connection, PeerError, Quota, RejectedByPeer, Timeout};

/// Errors worth trying again: the server is down, busy, read-only for a moment, out of space
/// or memory, or the connection broke; with what to tell people, and why.
const RETRYABLE: &[(u16, &str, FailureReason)] = &[
    (1021, "the server's disk is full", Quota),
    (1037, "the server is out of memory", PeerError),
    (1038, "the server is out of sort memory", PeerError),
    (1040, "too many connections", Quota),
    (1041, "the server is out of memory", PeerError),
    (1053, "the server is shutting down", Connection),
    (1114, "the table is full", Quota),
    (1158, "network error reading from the server", Connection),
    (1159, "timeout reading from the server", Timeout),
    (1160, "network error writing to the server", Connection),
    (1161, "timeout writing to the server", Timeout),
    (1180, "the commit failed", PeerError),
    (1203, "the user has too many connections", Quota),
    (1205, "lock wait timeout", PeerError),
    (1213, "deadlock", PeerError),
    (1226, "a user resource limit was reached", Quota),
    (1290, "the server runs with --read-only", PeerError),
    (1317, "the query was interrupted", PeerError),
    (1792, "the transaction is read-only", PeerError),
    (1836, "the server is in read-only mode", PeerError),
    (1927, "the connection was killed", Connection),
    (
        1969,
        "the statement timed out (max_statement_time)",
        Timeout,
    ),
    (2006, "the server has gone away", Connection),
    (2013, "lost connection to the server", Connection),
    (
        3024,
        "the statement timed out (max_execution_time)",
        Timeout,
    ),
    (4031, "the server closed an inactive connection", Connection),
];

/// Permanent errors whose server message names only identifiers: kept in the message.
const SAFE_MESSAGE: &[(u16, FailureReason)] = &[
    (1044, Auth),           // access denied to the database
    (1045, Auth),           // access denied for the user
    (1046, BadConfig),      // no database selected
    (1048, RejectedByPeer), // a column cannot be null
    (1049, BadConfig),      // unknown database
    (1054, BadConfig),      // unknown column
    (1118, BadConfig),      // row size too large
    (1142, Auth),           // command denied on a table
    (1143, Auth),           // command denied on a column
    (1146, BadConfig),      // the table does not exist
    (1153, BadConfig),      // a packet larger than max_allowed_packet
    (1364, BadConfig),      // a column without a default value
    (1406, RejectedByPeer), // a value too long for its column
];

/// Permanent errors whose message may quote data: described by us instead. The table refused
/// the row: `rejected_by_peer`.
const DESCRIBED: &[(u16, &str)] = &[
    (1062, "duplicate key on a unique index"),
    (1264, "a value is out of range for its column"),
    (1265, "a value was truncated for its column"),
    (1292, "a value is not a valid date or time"),
    (
        1366,
        "a value does not fit its column's character set or type",
    ),
    (1451, "a foreign key constraint failed"),
    (1452, "a foreign key constraint failed"),
    (3819, "a CHECK constraint failed"),
    (4025, "a CHECK constraint failed"),
];

/// The MySQL error number of `e`, when the server sent one.
pub(crate) fn db_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number),
        _ => None,
    }
}

/// Whether the connection itself broke (worth one immediate reconnect).
pub(crate) fn connection_lost(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed)
        || matches!(db_number(e), Some(1053 | 1927 | 2006 | 2013 | 4031))
}

/// rustls reports a certificate it cannot trust as an `InvalidData` I/O error; that will fail
/// the same way every time.
fn tls_failure(io: &std::io::Error) -> Option<String> {
    let inner = io.get_ref()?.to_string();
    let certificate = io.kind() == std::io::ErrorKind::InvalidData
        && (inner.contains("certificate") || inner.contains("Certificate"));
    certificate.then_some(inner)
}

/// Classifies a database failure: retryable or permanent, and its [`FailureReason`].
pub(crate) fn classify(e: &sqlx::Error) -> DeliveryError {
    fn retry(reason: FailureReason, message: impl Into<String>) -> DeliveryError {
        DeliveryError::retryable(reason, message)
    }
    fn fail(reason: FailureReason, message: impl Into<String>) -> DeliveryError {
        DeliveryError::permanent(reason, message)
    }
    match e {
        sqlx::Error::Io(io) => match tls_failure(io) {
            Some(why) => fail(
                FailureReason::Tls,
                format!("TLS to the database failed: {why}"),
            ),
            None if io.kind() == std::io::ErrorKind::TimedOut => {
                retry(Timeout, format!("database connection: {}", io.kind()))
            }
            None => retry(Connection, format!("database connection: {}", io.kind())),
        },
        sqlx::Error::PoolTimedOut => retry(
            Connection,
            "no database connection in time (server down or unreachable)",
        ),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            retry(Connection, "the database connection closed")
        }
        sqlx::Error::Protocol(_) => retry(PeerError, "unexpected reply from the database"),
        sqlx::Error::Tls(t) => fail(
            FailureReason::Tls,
            format!("TLS to the database failed: {t}"),
        ),
        sqlx::Error::Configuration(_) => fail(BadConfig, "database connection settings"),
        sqlx::Error::Database(db) => {
            let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() else {
                return fail(FailureReason::Other, "database error");
            };
            let n = my.number();
            let state = my.code().unwrap_or("HY000");
            if let Some((_, what, reason)) = RETRYABLE.iter().find(|(c, _, _)| *c == n) {
                return retry(*reason, format!("MySQL error {n} ({state}): {what}"));
            }
            if let Some((_, reason)) = SAFE_MESSAGE.iter().find(|(c, _)| *c == n) {
                return fail(
                    *reason,
                    format!("MySQL error {n} ({state}): {}", my.message()),
                );
            }
            match DESCRIBED.iter().find(|(c, _)| *c == n) {
                Some((_, what)) => {
                    fail(RejectedByPeer, format!("MySQL error {n} ({state}): {what}"))
                }
                None => fail(FailureReason::Other, format!("MySQL error {n} ({state})")),
            }
        }
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Decode(_) => fail(BadConfig, "a column of the table does not fit"),
        _ => fail(FailureReason::Other, "database error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_is_retryable() {
        let e = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(classify(&e).is_retryable());
        assert_eq!(classify(&e).reason(), Connection);
        assert!(connection_lost(&e));
        let e = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(classify(&e).reason(), Timeout);
        assert!(classify(&sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!classify(&sqlx::Error::RowNotFound).is_retryable());
        assert_eq!(classify(&sqlx::Error::RowNotFound).reason(), BadConfig);
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        let e = classify(&sqlx::Error::Io(tls));
        assert!(!e.is_retryable());
        assert_eq!(e.reason(), FailureReason::Tls);
    }

    /// Every numbered server error has one classification, and the reasons fit the tables.
    #[test]
    fn server_error_tables_are_consistent() {
        let mut numbers: Vec<u16> = RETRYABLE.iter().map(|(n, _, _)| *n).collect();
        numbers.extend(SAFE_MESSAGE.iter().map(|(n, _)| *n));
        numbers.extend(DESCRIBED.iter().map(|(n, _)| *n));
        let all = numbers.len();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), all, "a number is in two tables");
        let reason = |n: u16| {
            RETRYABLE
                .iter()
                .find(|(c, _, _)| *c == n)
                .map(|(_, _, r)| *r)
                .or_else(|| SAFE_MESSAGE.iter().find(|(c, _)| *c == n).map(|(_, r)| *r))
        };
        assert_eq!(reason(1045), Some(Auth), "access denied");
        assert_eq!(reason(1146), Some(BadConfig), "no such table");
        assert_eq!(reason(1021), Some(Quota), "disk full");
        assert_eq!(reason(1040), Some(Quota), "too many connections");
        assert_eq!(reason(2013), Some(Connection), "lost connection");
        assert_eq!(reason(3024), Some(Timeout), "statement timed out");
        assert_eq!(reason(1213), Some(PeerError), "deadlock");
    }
}
