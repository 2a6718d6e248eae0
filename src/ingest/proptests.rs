//! Properties of the bounded builder, the JSON reader and the normalizer over random field
//! sets: what comes out never exceeds the limits, an accepted set is kept whole and in order,
//! and the normalized submission round-trips through JSON.

use proptest::prelude::*;
use secureform_contract::{FieldValue, Fields, Scalar, Source, Submission};

use super::bounded::{FieldsBuilder, OutputError, OutputLimits};
use crate::clock::ManualClock;
use crate::config::FormConfig;
use crate::limits::Limits;
use crate::normalize::{new_id, normalize, Verdict};

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        "[a-c\u{e9}\u{4e2d}\"\\\\ ]{0,12}".prop_map(Scalar::Text),
        any::<bool>().prop_map(Scalar::Bool),
        any::<i64>().prop_map(|n| Scalar::Number(n.into())),
    ]
}

fn value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        3 => scalar().prop_map(FieldValue::One),
        1 => prop::collection::vec(scalar(), 0..5).prop_map(FieldValue::Many),
    ]
}

/// Names from a small alphabet, so that repeats are frequent.
fn entries() -> impl Strategy<Value = Vec<(String, FieldValue)>> {
    prop::collection::vec(("[ab\u{e9}.]{0,6}", value()), 0..40)
}

fn limits() -> impl Strategy<Value = OutputLimits> {
    (1usize..60, 1usize..12, 1usize..30, 1usize..400).prop_map(|(v, n, b, t)| OutputLimits {
        max_values: v,
        max_name_bytes: n,
        max_value_bytes: b,
        max_total_bytes: t,
    })
}

fn text_len(v: &Scalar) -> usize {
    v.to_text().len()
}

/// Every limit holds on `fields`.
fn within(fields: &Fields, l: &OutputLimits) -> Result<(), TestCaseError> {
    let mut values = 0;
    let mut total = 0;
    for (name, value) in fields.iter() {
        prop_assert!(name.len() <= l.max_name_bytes);
        values += value.values().len().max(1);
        total += name.len();
        for v in value.values() {
            prop_assert!(text_len(v) <= l.max_value_bytes);
            total += text_len(v);
        }
    }
    prop_assert!(values <= l.max_values, "{values} values");
    prop_assert!(total <= l.max_total_bytes, "{total} bytes");
    Ok(())
}

/// The entries as a JSON object, repeated keys included.
fn json_object(entries: &[(String, FieldValue)]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|(n, v)| {
            let value = serde_json::to_string(v).unwrap_or_default();
            format!("{}:{value}", serde_json::to_string(n).unwrap_or_default())
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn form() -> FormConfig {
    FormConfig {
        sinks: vec!["docs".into()],
        redirect: None,
        required: vec![],
        honeypot: None,
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_builder_keeps_within_the_limits(entries in entries(), l in limits()) {
        let mut builder = FieldsBuilder::new(l);
        let mut expected = Fields::new();
        let mut refused = None;
        for (name, value) in &entries {
            match builder.insert(name.clone(), value.clone()) {
                Ok(()) => expected.insert(name.clone(), value.clone()),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let out = builder.finish();
        within(&out.fields, &l)?;
        // Up to the first refusal, everything is kept, in order.
        prop_assert_eq!(&out.fields, &expected);
        if refused.is_none() {
            prop_assert_eq!(out.fields.len(), {
                let mut names: Vec<&String> = entries.iter().map(|(n, _)| n).collect();
                names.sort();
                names.dedup();
                names.len()
            });
        }
    }

    #[test]
    fn json_is_read_within_the_limits_or_refused_with_a_code(
        entries in entries(),
        l in limits(),
    ) {
        let body = json_object(&entries);
        let config = Limits {
            max_fields: l.max_values,
            max_name_bytes: l.max_name_bytes,
            max_field_bytes: l.max_value_bytes,
            max_body_bytes: l.max_total_bytes,
            ..Limits::default()
        };
        let mut builder = FieldsBuilder::new(l);
        let expected = entries
            .iter()
            .try_for_each(|(n, v)| builder.insert(n.clone(), v.clone()));
        match (super::json::parse(body.as_bytes(), &config), expected) {
            (Ok(fields), Ok(())) => {
                within(&fields, &l)?;
                prop_assert_eq!(fields, builder.finish().fields);
            }
            (Err(e), Err(limit)) => {
                let e = crate::error::ClientError::from(e);
                prop_assert_eq!(e.status.as_u16(), 413);
                let codes = [
                    OutputError::TooManyValues(0).code(),
                    OutputError::NameTooLarge(0).code(),
                    OutputError::ValueTooLarge(0).code(),
                    OutputError::TotalTooLarge(0).code(),
                ];
                prop_assert!(codes.contains(&e.code), "{} for {limit:?}", e.code);
            }
            (got, want) => prop_assert!(false, "{got:?} but the builder said {want:?}"),
        }
    }

    #[test]
    fn normalized_submissions_round_trip_through_json(entries in entries()) {
        let mut builder = FieldsBuilder::new(OutputLimits::default());
        for (name, value) in entries {
            builder.insert(name, value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let fields = builder.finish().fields;
        let clock = ManualClock::at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000));
        let verdict = normalize(new_id(&clock), "f", &form(), Source::Json, fields.clone(), vec![], &clock)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Verdict::Accept(submission) = verdict else {
            return Err(TestCaseError::fail("dropped"));
        };
        prop_assert_eq!(&submission.fields, &fields);
        let json = serde_json::to_string(&submission).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: Submission = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, submission);
    }
}
