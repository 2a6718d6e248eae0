//! A JSON number in a submission reads back as the same number: the spool stores the fields as
//! JSON and every sink reads them from there. Found by the `json_fields` fuzz target: without
//! serde_json's `float_roundtrip`, a long decimal was read 1 ULP off the nearest double, and its
//! shortest form (what is written) then read back as another number.

use secureform_contract::Fields;

#[test]
fn json_numbers_survive_a_round_trip() {
    let bodies = [
        // The fuzzer's input.
        r#"{"d": -9223320736854775744073709551615}"#,
        r#"{"a": 0.30000000000000004, "b": 1.7976931348623157e308, "c": 5e-324}"#,
        r#"{"e": 2.2250738585072011e-308, "f": 9007199254740993.0000000001}"#,
    ];
    for body in bodies {
        let fields: Fields = serde_json::from_str(body).unwrap();
        let text = serde_json::to_string(&fields).unwrap();
        let again: Fields = serde_json::from_str(&text).unwrap();
        assert_eq!(again, fields, "{body} was written as {text}");
    }
}
