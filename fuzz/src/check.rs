//! The properties the targets assert, beyond "does not panic".

use secureform_contract::{FieldValue, Fields};

use crate::adapt::{Caps, Refusal};

/// Bytes of names and values (as text) of a field set: what a parse produced.
pub fn output_bytes(fields: &Fields) -> usize {
    fields
        .iter()
        .map(|(name, value)| {
            name.len()
                + value
                    .values()
                    .iter()
                    .map(|v| v.to_text().len())
                    .sum::<usize>()
        })
        .sum()
}

/// Values of a field set, every element of a list counted.
pub fn value_count(fields: &Fields) -> usize {
    fields.iter().map(|(_, v)| v.values().len()).sum()
}

/// An accepted field set keeps the limits: at most `max_fields` names, no value longer than
/// `max_field_bytes`, no name longer than `max_name_bytes` (once there is such a limit), no
/// name twice.
pub fn within_limits(fields: &Fields, caps: &Caps) {
    within_limits_of(fields, caps, caps.max_field_bytes)
}

/// As [`within_limits`], with values allowed up to `max_value_bytes`.
pub fn within_limits_of(fields: &Fields, caps: &Caps, max_value_bytes: usize) {
    assert!(
        fields.len() <= caps.max_fields,
        "{} fields, limit {}",
        fields.len(),
        caps.max_fields
    );
    let mut names: Vec<&str> = Vec::with_capacity(fields.len());
    for (name, value) in fields.iter() {
        for v in value.values() {
            let n = v.to_text().len();
            assert!(
                n <= max_value_bytes,
                "value of {n} bytes, limit {max_value_bytes}"
            );
        }
        if let Some(max) = caps.max_name_bytes {
            assert!(
                name.len() <= max,
                "name of {} bytes, limit {max}",
                name.len()
            );
        }
        names.push(name);
    }
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a name appears twice in the field set");
}

/// What a parse produced is at most `factor` times what it read, plus `slack` bytes.
pub fn bounded_by_input(fields: &Fields, input: usize, factor: usize, slack: usize) {
    let out = output_bytes(fields);
    assert!(
        out <= input.saturating_mul(factor).saturating_add(slack),
        "{out} bytes of fields out of {input} bytes of input (bound {factor} x input + {slack})"
    );
}

/// A refusal is a 4xx with a stable, machine-readable code.
pub fn refusal(r: Refusal) {
    let (status, code) = r;
    assert!((400..500).contains(&status), "status {status} for {code}");
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "code {code:?}"
    );
}

/// The field set as JSON and back is the same field set (what the spool stores and the sinks
/// read).
pub fn json_round_trip(fields: &Fields) {
    let text = serde_json::to_vec(fields).expect("fields serialize");
    let back: Fields = serde_json::from_slice(&text).expect("serialized fields read back");
    assert_eq!(&back, fields, "fields changed through JSON");
}

/// Every value a list when it is one, for comparisons that ignore One-vs-Many of one value.
pub fn flat(fields: &Fields) -> Vec<(String, Vec<String>)> {
    fields
        .iter()
        .map(|(n, v)| {
            let values = match v {
                FieldValue::One(s) => vec![s.to_text()],
                FieldValue::Many(all) => all.iter().map(|s| s.to_text()).collect(),
            };
            (n.to_owned(), values)
        })
        .collect()
}

/// Bytes of the values alone (as text).
pub fn value_bytes(fields: &Fields) -> usize {
    output_bytes(fields) - fields.iter().map(|(n, _)| n.len()).sum::<usize>()
}

/// A PDF-family parse's raw output: values at most 3 bytes of UTF-8 per byte read or
/// decompressed (PDFDocEncoding's widest characters take 3), so that a string referenced by
/// many fields is not copied once per reference (issue 15 item 1); names at most
/// `max_name_bytes` each once there is such a limit (item 4; until then a long parent name is
/// repeated in every child's fully qualified name, without bound).
pub fn pdf_output_bounded(fields: &Fields, input: usize, caps: &Caps) {
    let values = value_bytes(fields);
    let decompressed = usize::try_from(caps.max_decompressed).unwrap_or(usize::MAX);
    let bound = input.saturating_add(decompressed).saturating_mul(3);
    assert!(
        values <= bound,
        "{values} bytes of values out of {input} bytes (bound {bound}): values are copied"
    );
    if let Some(max) = caps.max_name_bytes {
        for (name, _) in fields.iter() {
            assert!(
                name.len() <= max,
                "name of {} bytes, limit {max}",
                name.len()
            );
        }
    }
}

/// The common checks of a PDF-family parse: the raw output bounded, then, after the field
/// limits the HTTP layer applies, the limits kept; refusals well-formed.
pub fn pdf_family(result: Result<Fields, Refusal>, input: usize, caps: &Caps) {
    match result {
        Err(r) => refusal(r),
        Ok(fields) => {
            assert!(fields.len() <= caps.max_fields, "{} fields", fields.len());
            pdf_output_bounded(&fields, input, caps);
            match crate::adapt::field_limits(&fields, caps) {
                Err(r) => refusal(r),
                Ok(()) => {
                    within_limits(&fields, caps);
                    json_round_trip(&fields);
                }
            }
        }
    }
}
