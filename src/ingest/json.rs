//! `application/json`: an object whose values are strings, numbers, booleans, or arrays of them.
//! Key order is kept (the object is read as a stream of entries, never through a sorted map).

use secureform_contract::Fields;

use super::check_field_limits;
use crate::error::ClientError;
use crate::limits::Limits;

/// Parses a JSON object into fields.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Fields, ClientError> {
    let fields: Fields = serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ClientError::malformed(
                "invalid_json_value",
                format!(
                    "The JSON body must be one object whose values are strings, numbers, booleans or arrays of them (line {}, column {}).",
                    e.line(),
                    e.column()
                ),
            ),
            _ => ClientError::malformed(
                "malformed_json",
                format!("The body is not valid JSON (line {}, column {}).", e.line(), e.column()),
            ),
        }
    })?;
    check_field_limits(&fields, limits)?;
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_types() {
        let f = parse(
            br#"{"z": "a", "n": 3, "ok": true, "tags": ["x", 2]}"#,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"z":"a","n":3,"ok":true,"tags":["x",2]}"#
        );
    }

    #[test]
    fn refuses_what_is_not_a_flat_object() {
        assert_eq!(
            parse(b"{\"a\": ", &Limits::default()).unwrap_err().code,
            "malformed_json"
        );
        assert_eq!(
            parse(b"[1]", &Limits::default()).unwrap_err().code,
            "invalid_json_value"
        );
        assert_eq!(
            parse(br#"{"a": {"b": 1}}"#, &Limits::default())
                .unwrap_err()
                .code,
            "invalid_json_value"
        );
        assert_eq!(
            parse(br#"{"a": null}"#, &Limits::default())
                .unwrap_err()
                .code,
            "invalid_json_value"
        );
    }
}
