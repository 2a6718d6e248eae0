//! Property tests of the ingest limits and the normalizer (issue 15, "Fuzzing, as a habit"):
//! random field sets, sent as JSON and as urlencoded bodies under random limits. What is
//! accepted keeps the limits and is exactly what was sent; what keeps the limits is accepted;
//! the normalized submission round-trips through JSON (what the spool stores and sinks read).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use secureform::clock::SystemClock;
use secureform::config::FormConfig;
use secureform::ingest::{json, urlencoded};
use secureform::limits::Limits;
use secureform::normalize::{normalize, Verdict};
use secureform_contract::{FieldValue, Fields, Scalar, Source, Submission};

/// Names unique within a set (a repeated name is one field), values of one or several strings.
fn field_sets() -> impl Strategy<Value = Vec<(String, Vec<String>)>> {
    prop::collection::vec(
        ("\\PC{0,12}", prop::collection::vec("\\PC{0,24}", 1..4)),
        0..12,
    )
    .prop_map(|mut set| {
        let mut seen = std::collections::HashSet::new();
        // `NAME.x`/`NAME.y` may be a submit button's click position, dropped by design.
        set.retain(|(name, _)| !name.ends_with(".x") && !name.ends_with(".y"));
        set.retain(|(name, _)| seen.insert(name.clone()));
        set
    })
}

fn limits() -> impl Strategy<Value = Limits> {
    (1usize..16, 1usize..64).prop_map(|(max_fields, max_field_bytes)| Limits {
        max_fields,
        max_field_bytes,
        ..Limits::default()
    })
}

fn expected(set: &[(String, Vec<String>)], lists: bool) -> Fields {
    let mut fields = Fields::new();
    for (name, values) in set {
        if lists && values.len() > 1 {
            let all = values.iter().map(|v| Scalar::Text(v.clone())).collect();
            fields.insert(name.clone(), FieldValue::Many(all));
        } else {
            for v in values {
                fields.push(name.clone(), v.clone());
            }
        }
    }
    fields
}

/// A JSON object in the set's order (serde_json's own map would sort the keys).
fn json_body(set: &[(String, Vec<String>)]) -> Vec<u8> {
    let entries: Vec<String> = set
        .iter()
        .map(|(n, vs)| {
            let value = match vs.as_slice() {
                [one] => serde_json::to_string(one),
                many => serde_json::to_string(many),
            };
            format!("{}:{}", serde_json::to_string(n).unwrap(), value.unwrap())
        })
        .collect();
    format!("{{{}}}", entries.join(",")).into_bytes()
}

fn urlencoded_body(set: &[(String, Vec<String>)]) -> Vec<u8> {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let pairs: Vec<String> = set
        .iter()
        .flat_map(|(n, vs)| vs.iter().map(move |v| format!("{}={}", enc(n), enc(v))))
        .collect();
    pairs.join("&").into_bytes()
}

/// Within `limits` even if every value counted as a field (issue 15 item 5's stricter rule).
fn fits(set: &[(String, Vec<String>)], limits: &Limits) -> bool {
    let values: usize = set.iter().map(|(_, vs)| vs.len()).sum();
    values <= limits.max_fields
        && set
            .iter()
            .all(|(_, vs)| vs.iter().all(|v| v.len() <= limits.max_field_bytes))
}

fn keeps_limits(fields: &Fields, limits: &Limits) {
    assert!(fields.len() <= limits.max_fields);
    for (_, value) in fields.iter() {
        for v in value.values() {
            assert!(v.to_text().len() <= limits.max_field_bytes);
        }
    }
}

fn form() -> FormConfig {
    FormConfig {
        sinks: vec!["docs".into()],
        redirect: None,
        required: vec![],
        honeypot: Some("\u{0}trap".into()),
        allowed_origins: vec![],
        charset: None,
        thanks_title: None,
        thanks_message: None,
        rate_per_minute: None,
        captcha: None,
        min_submit_secs: None,
        retain_days: None,
        subject_fields: Vec::new(),
    }
}

/// Normalizes `fields` and checks the submission against JSON.
fn normalized_round_trip(fields: Fields, source: Source) {
    let verdict = normalize(
        "01JD5Z8F3QK7N2V4X6Y8A0B1C2".into(),
        "contact",
        &form(),
        source,
        fields.clone(),
        vec![],
        &SystemClock,
    )
    .unwrap();
    let Verdict::Accept(submission) = verdict else {
        panic!("dropped without a honeypot value")
    };
    assert_eq!(submission.fields, fields);
    let text = serde_json::to_string(&submission).unwrap();
    let back: Submission = serde_json::from_str(&text).unwrap();
    assert_eq!(back, submission);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_bodies_keep_the_limits_and_round_trip(set in field_sets(), limits in limits()) {
        match json::parse(&json_body(&set), &limits) {
            Ok(fields) => {
                keeps_limits(&fields, &limits);
                prop_assert_eq!(&fields, &expected(&set, true));
                normalized_round_trip(fields, Source::Json);
            }
            Err(e) => prop_assert!(!fits(&set, &limits), "refused ({}) within the limits", e.code()),
        }
    }

    #[test]
    fn urlencoded_bodies_keep_the_limits_and_round_trip(set in field_sets(), limits in limits()) {
        match urlencoded::parse(&urlencoded_body(&set), None, &limits) {
            Ok(fields) => {
                keeps_limits(&fields, &limits);
                prop_assert_eq!(&fields, &expected(&set, false));
                normalized_round_trip(fields, Source::Urlencoded);
            }
            Err(e) => prop_assert!(!fits(&set, &limits), "refused ({}) within the limits", e.code()),
        }
    }
}
