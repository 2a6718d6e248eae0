//! JSON bodies (src/ingest/json.rs). Properties: limits kept (fields, value bytes, values once
//! arrays are counted); output at most 8 bytes per byte read (`1e9` reads as `1000000000.0`);
//! the accepted fields, written as JSON and read again, are the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secureform_fuzz::adapt::{self, Caps};
use secureform_fuzz::{check, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let caps = Caps::from_input(&mut input);
    let body = input.rest();
    let fields = match adapt::json(body, &caps) {
        Err(r) => return check::refusal(r),
        Ok(fields) => fields,
    };
    check::within_limits(&fields, &caps);
    if let Some(max) = adapt::max_values_json(&caps) {
        assert!(
            check::value_count(&fields) <= max,
            "more values than allowed"
        );
    }
    check::bounded_by_input(&fields, body.len(), 8, 0);
    check::json_round_trip(&fields);
    let text = serde_json::to_vec(&fields).expect("fields serialize");
    let again = adapt::json(&text, &caps).expect("accepted fields, as JSON, are accepted again");
    assert_eq!(again, fields, "JSON round trip changed the fields");
});
