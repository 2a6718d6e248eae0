//! urlencoded bodies (src/ingest/urlencoded.rs), under every charset a form may name.
//! Properties: limits kept (fields, value bytes, values); output at most 3 bytes of UTF-8 per
//! byte read; written back as UTF-8 urlencoded and read again, the same fields; JSON round trip.
#![no_main]

use encoding_rs::Encoding;
use libfuzzer_sys::fuzz_target;
use secureform_fuzz::adapt::{self, Caps};
use secureform_fuzz::{check, Input};

const CHARSETS: [Option<&str>; 6] = [
    None,
    Some("utf-8"),
    Some("windows-1252"),
    Some("shift_jis"),
    Some("gbk"),
    Some("iso-8859-2"),
];

/// Percent-encodes everything but ASCII letters and digits.
fn encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn write_back(fields: &secureform_contract::Fields) -> String {
    let mut out = String::new();
    for (name, value) in fields.iter() {
        for v in value.values() {
            if !out.is_empty() {
                out.push('&');
            }
            encode(&mut out, name);
            out.push('=');
            encode(&mut out, &v.to_text());
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let caps = Caps::from_input(&mut input);
    let label = CHARSETS[usize::from(input.byte()) % CHARSETS.len()];
    let charset = label.and_then(|l| Encoding::for_label(l.as_bytes()));
    let body = input.rest();
    let fields = match adapt::urlencoded(body, charset, &caps) {
        Err(r) => return check::refusal(r),
        Ok(fields) => fields,
    };
    check::within_limits_of(&fields, &caps, adapt::max_value_bytes_urlencoded(&caps));
    if let Some(max) = adapt::max_values_urlencoded(&caps) {
        assert!(
            check::value_count(&fields) <= max,
            "more values than allowed"
        );
    }
    check::bounded_by_input(&fields, body.len(), 3, 0);
    check::json_round_trip(&fields);
    // UTF-8 may take up to 3 bytes for a byte of a legacy charset: room for that.
    let roomy = Caps {
        max_field_bytes: caps.max_field_bytes * 3,
        ..caps.clone()
    };
    let again = adapt::urlencoded(write_back(&fields).as_bytes(), None, &roomy)
        .expect("what was accepted, written back, is accepted again");
    assert_eq!(again, fields, "urlencoded round trip changed the fields");
});
