//! Erasure by data subject (GDPR Art. 17): a keyed blind index of the fields that identify a
//! person (`[forms.NAME] subject_fields = ["email"]`).
//!
//! At acceptance each such field's value is normalized (trimmed, lower-cased) and stored only as
//! HMAC-SHA-256 under a key derived from the key-encryption key (`KeyRing::digests`, with the
//! field name as label), beside the submission's id in the spool's database: no plaintext index
//! exists, and the digest tells nothing to whoever reads the database without the key. A lookup
//! computes the digest under every key of the ring, so it survives a rotation. Erasing a
//! submission removes its index rows.

use secureform_contract::{FieldValue, Submission};
use secureform_crypto::KeyRing;

fn label(field: &str) -> Vec<u8> {
    format!("subject/{field}").into_bytes()
}

/// How a value is compared: surrounding space ignored, case ignored.
pub fn normalize(value: &str) -> String {
    value.trim().to_lowercase()
}

/// The digests to store for a submission: one per value of each subject field, under the
/// current key.
pub fn index(keys: &KeyRing, submission: &Submission, fields: &[String]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for field in fields {
        let values = match submission.fields.get(field) {
            Some(FieldValue::One(v)) => vec![v.to_text()],
            Some(FieldValue::Many(vs)) => vs.iter().map(|v| v.to_text()).collect(),
            None => continue,
        };
        for value in values {
            let value = normalize(&value);
            if value.is_empty() {
                continue;
            }
            if let Some(d) = keys
                .digests(&label(field), value.as_bytes())
                .into_iter()
                .next()
            {
                out.push(d);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The digests that find `value` of `field`: one per key of the ring.
pub fn lookup(keys: &KeyRing, field: &str, value: &str) -> Vec<Vec<u8>> {
    keys.digests(&label(field), normalize(value).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_matches_whatever_the_case_and_spaces() {
        let keys = KeyRing::generate().unwrap();
        let mut fields = secureform_contract::Fields::new();
        fields.insert(
            "email",
            FieldValue::One(secureform_contract::Scalar::Text(" Ann@Example.com".into())),
        );
        let s = Submission {
            id: "01J00000000000000000000000".into(),
            form: "f".into(),
            received_at: "2026-01-01T00:00:00Z".into(),
            source: secureform_contract::Source::Json,
            fields,
            files: Vec::new(),
        };
        let stored = index(&keys, &s, &["email".to_owned(), "name".to_owned()]);
        assert_eq!(stored.len(), 1);
        assert!(lookup(&keys, "email", "ann@example.com ").contains(&stored[0]));
        assert!(!lookup(&keys, "name", "ann@example.com").contains(&stored[0]));
        let other = KeyRing::generate().unwrap();
        assert!(!lookup(&other, "email", "ann@example.com").contains(&stored[0]));
    }
}
