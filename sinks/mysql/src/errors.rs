//! Classifying database failures as retryable or permanent, with a reason that never carries a
//! value: the server's own message is kept only for errors whose text names identifiers alone
//! (a table, a column, a user), never for those that may quote data ("Duplicate entry '…'",
//! "Incorrect string value: '…'").

use secureform_contract::DeliveryError;
use sqlx::mysql::MySqlDatabaseError;

/// Errors worth trying again: the server is down, busy, read-only for a moment, out of space
/// or memory, or the connection broke.
const RETRYABLE: &[(u16, &str)] = &[
    (1021, "the server's disk is full"),
    (1037, "the server is out of memory"),
    (1038, "the server is out of sort memory"),
    (1040, "too many connections"),
    (1041, "the server is out of memory"),
    (1053, "the server is shutting down"),
    (1114, "the table is full"),
    (1158, "network error reading from the server"),
    (1159, "timeout reading from the server"),
    (1160, "network error writing to the server"),
    (1161, "timeout writing to the server"),
    (1180, "the commit failed"),
    (1203, "the user has too many connections"),
    (1205, "lock wait timeout"),
    (1213, "deadlock"),
    (1226, "a user resource limit was reached"),
    (1290, "the server runs with --read-only"),
    (1317, "the query was interrupted"),
    (1792, "the transaction is read-only"),
    (1836, "the server is in read-only mode"),
    (1927, "the connection was killed"),
    (1969, "the statement timed out (max_statement_time)"),
    (2006, "the server has gone away"),
    (2013, "lost connection to the server"),
    (3024, "the statement timed out (max_execution_time)"),
    (4031, "the server closed an inactive connection"),
];

/// Permanent errors whose server message names only identifiers: kept as the reason.
const SAFE_MESSAGE: &[u16] = &[
    1044, 1045, 1046, 1048, 1049, 1054, 1118, 1142, 1143, 1146, 1153, 1364, 1406,
];

/// Permanent errors whose message may quote data: described by us instead.
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

/// Classifies a database failure.
pub(crate) fn classify(e: &sqlx::Error) -> DeliveryError {
    use DeliveryError::{Permanent, Retryable};
    match e {
        sqlx::Error::Io(io) => match tls_failure(io) {
            Some(why) => Permanent(format!("TLS to the database failed: {why}")),
            None => Retryable(format!("database connection: {}", io.kind())),
        },
        sqlx::Error::PoolTimedOut => {
            Retryable("no database connection in time (server down or unreachable)".into())
        }
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            Retryable("the database connection closed".into())
        }
        sqlx::Error::Protocol(_) => Retryable("unexpected reply from the database".into()),
        sqlx::Error::Tls(t) => Permanent(format!("TLS to the database failed: {t}")),
        sqlx::Error::Configuration(_) => Permanent("database connection settings".into()),
        sqlx::Error::Database(db) => {
            let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() else {
                return Permanent("database error".into());
            };
            let n = my.number();
            let state = my.code().unwrap_or("HY000");
            if let Some((_, what)) = RETRYABLE.iter().find(|(c, _)| *c == n) {
                return Retryable(format!("MySQL error {n} ({state}): {what}"));
            }
            if SAFE_MESSAGE.contains(&n) {
                return Permanent(format!("MySQL error {n} ({state}): {}", my.message()));
            }
            match DESCRIBED.iter().find(|(c, _)| *c == n) {
                Some((_, what)) => Permanent(format!("MySQL error {n} ({state}): {what}")),
                None => Permanent(format!("MySQL error {n} ({state})")),
            }
        }
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Decode(_) => Permanent("a column of the table does not fit".into()),
        _ => Permanent("database error".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_is_retryable() {
        let e = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(classify(&e).is_retryable());
        assert!(connection_lost(&e));
        assert!(classify(&sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!classify(&sqlx::Error::RowNotFound).is_retryable());
    }
}
