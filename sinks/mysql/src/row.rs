//! The values of one row (and of one file), encrypted per the mode and laid out in the order of
//! the placeholders of [`crate::schema::Layout`]'s statements.

use ring::rand::{SecureRandom, SystemRandom};
use secureform_contract::{DeliveryError, FailureReason, FieldValue, Submission};
use sqlx::mysql::{MySql, MySqlArguments};
use sqlx::query::Query;

use crate::config::Encryption;
use crate::gcm;
use crate::schema::Layout;
use crate::secrets::ValueKey;

/// One bound parameter.
pub(crate) enum Param<'k> {
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    /// The `mysql_aes` key, borrowed from the sink.
    Key(&'k [u8]),
}

/// Binds `params` to `query`, in order.
pub(crate) fn bind_all<'q>(
    mut query: Query<'q, MySql, MySqlArguments>,
    params: Vec<Param<'q>>,
) -> Query<'q, MySql, MySqlArguments> {
    for p in params {
        query = match p {
            Param::Text(t) => query.bind(t),
            Param::Bytes(b) => query.bind(b),
            Param::Key(k) => query.bind(k),
        };
    }
    query
}

fn internal(what: &str) -> DeliveryError {
    DeliveryError::retryable(FailureReason::Internal, format!("could not {what}"))
}

/// The parameters of one encrypted cell: see `Layout::value_sql`.
pub(crate) fn cell<'k>(
    layout_encryption: Encryption,
    key: &'k ValueKey,
    cbc: bool,
    cell: (&str, &str, &str),
    plain: Option<Vec<u8>>,
    out: &mut Vec<Param<'k>>,
) -> Result<(), DeliveryError> {
    let (table, column, row_key) = cell;
    match (layout_encryption, key) {
        (Encryption::AesGcm, ValueKey::Gcm(k)) => {
            let sealed = plain
                .map(|p| gcm::seal_value(k, table, column, row_key, &p))
                .transpose()
                .map_err(|_| internal("seal a value"))?;
            out.push(Param::Bytes(sealed));
        }
        (Encryption::MysqlAes, ValueKey::Mysql(_)) => {
            let secret = key.mysql_key().ok_or_else(|| internal("find the key"))?;
            let iv = match (&plain, cbc) {
                (Some(_), true) => {
                    let mut iv = vec![0u8; 16];
                    SystemRandom::new()
                        .fill(&mut iv)
                        .map_err(|_| internal("draw an IV"))?;
                    Some(iv)
                }
                _ => None,
            };
            out.push(Param::Bytes(plain));
            out.push(Param::Key(secret));
            if cbc {
                out.push(Param::Bytes(iv.clone()));
            }
            out.push(Param::Bytes(iv));
        }
        (Encryption::None, _) => out.push(Param::Bytes(plain)),
        _ => return Err(internal("match the key to the encryption mode")),
    }
    Ok(())
}

/// A mapped field's value as stored: one value as its text, several as a JSON array.
pub(crate) fn field_text(value: &FieldValue) -> String {
    match value {
        FieldValue::One(v) => v.to_text(),
        FieldValue::Many(vs) => serde_json::to_string(vs).unwrap_or_default(),
    }
}

/// `2026-11-27T10:00:00Z` (fraction allowed) → `2026-11-27 10:00:00`, for a DATETIME column.
pub(crate) fn datetime(received_at: &str) -> Option<String> {
    let b = received_at.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    let tail = received_at.get(19..)?;
    let tail = tail
        .strip_prefix('.')
        .map_or(tail, |f| f.trim_start_matches(|c: char| c.is_ascii_digit()));
    let utc = matches!(tail, "Z" | "z" | "+00:00" | "-00:00");
    if !(shape && utc) {
        return None;
    }
    Some(format!(
        "{} {}",
        received_at.get(0..10)?,
        received_at.get(11..19)?
    ))
}

/// The parameters of the row insert of `submission`.
pub(crate) fn row_params<'k>(
    layout: &Layout,
    key: &'k ValueKey,
    cbc: bool,
    submission: &Submission,
) -> Result<Vec<Param<'k>>, DeliveryError> {
    let at = datetime(&submission.received_at).ok_or_else(|| {
        DeliveryError::permanent(
            FailureReason::Payload,
            "received_at is not an RFC 3339 UTC time",
        )
    })?;
    let json = serde_json::to_vec(submission).map_err(|_| internal("serialize the submission"))?;
    let id = submission.id.as_str();
    let mut out = vec![
        Param::Text(Some(submission.id.clone())),
        Param::Text(Some(submission.form.clone())),
        Param::Text(Some(at)),
    ];
    cell(
        layout.encryption,
        key,
        cbc,
        (&layout.table, "submission", id),
        Some(json),
        &mut out,
    )?;
    for (column, field) in &layout.columns {
        let plain = submission
            .fields
            .get(field)
            .map(|v| field_text(v).into_bytes());
        cell(
            layout.encryption,
            key,
            cbc,
            (&layout.table, column, id),
            plain,
            &mut out,
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_becomes_datetime() {
        assert_eq!(
            datetime("2026-11-27T10:00:00Z").as_deref(),
            Some("2026-11-27 10:00:00")
        );
        assert_eq!(
            datetime("2026-11-27T10:00:00.123Z").as_deref(),
            Some("2026-11-27 10:00:00")
        );
        assert_eq!(
            datetime("2026-11-27T10:00:00+00:00").as_deref(),
            Some("2026-11-27 10:00:00")
        );
        assert_eq!(datetime("2026-11-27T10:00:00+02:00"), None);
        assert_eq!(datetime("2026-11-27'; DROP"), None);
        assert_eq!(datetime("é"), None);
    }
}
