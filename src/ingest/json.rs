//! `application/json`: an object whose values are strings, numbers, booleans, or arrays of them.
//! Key order is kept (the object is read as a stream of entries, never through a sorted map).

use std::fmt;

use secureform_contract::{FieldValue, Fields, Scalar};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::bounded::{FieldsBuilder, OutputError, OutputLimits};
use super::IngestError;
use crate::limits::Limits;

/// Parses a JSON object into fields, counting names and values into a [`FieldsBuilder`] as the
/// stream is read: a body with more values than allowed (distinct keys or array items) is
/// refused at the first value over the limit, never after being held whole.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Fields, IngestError> {
    let mut builder = FieldsBuilder::new(OutputLimits::from_limits(limits));
    let mut refused = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let read = de
        .deserialize_map(ObjectVisitor {
            out: &mut builder,
            refused: &mut refused,
        })
        .and_then(|()| de.end());
    if let Some(limit) = refused {
        return Err(limit.into());
    }
    read.map_err(json_error)?;
    Ok(builder.finish().fields)
}

fn json_error(e: serde_json::Error) -> IngestError {
    use serde_json::error::Category;
    let (line, column) = (e.line(), e.column());
    match e.classify() {
        Category::Data => IngestError::InvalidJsonValue { line, column },
        _ => IngestError::MalformedJson { line, column },
    }
}

/// Where the visitors put what they read, and the limit that stopped them (serde's error type
/// cannot carry it, so it is kept beside).
struct ObjectVisitor<'a> {
    out: &'a mut FieldsBuilder,
    refused: &'a mut Option<OutputError>,
}

impl ObjectVisitor<'_> {
    fn stop<E: de::Error>(&mut self, limit: OutputError) -> E {
        *self.refused = Some(limit);
        E::custom(limit)
    }
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of fields")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key_seed(NameSeed(self.out.limits().max_name_bytes))? {
            let name = match name {
                Ok(name) => name,
                Err(limit) => return Err(self.stop(limit)),
            };
            map.next_value_seed(ValueSeed {
                out: &mut *self.out,
                name: &name,
                refused: &mut *self.refused,
            })?;
        }
        Ok(())
    }
}

/// Reads a key, refusing one longer than the name limit before copying it.
struct NameSeed(usize);

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Result<String, OutputError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Result<String, OutputError>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.len() > self.0 {
            return Ok(Err(OutputError::NameTooLarge(self.0)));
        }
        Ok(Ok(v.to_owned()))
    }
}

/// Reads one field's value (a scalar, or an array whose items are added one by one). A limit
/// reached is recorded in `refused` before the error is raised: serde_json replaces the error
/// of a visitor that stops inside an array with its own.
struct ValueSeed<'a> {
    out: &'a mut FieldsBuilder,
    name: &'a str,
    refused: &'a mut Option<OutputError>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn stop<E: de::Error>(self, limit: OutputError) -> E {
        *self.refused = Some(limit);
        E::custom(limit)
    }

    fn one<E: de::Error>(self, value: Scalar) -> Result<(), E> {
        match self.out.push(self.name.to_owned(), value) {
            Ok(()) => Ok(()),
            Err(limit) => Err(self.stop(limit)),
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number, a boolean or an array of them")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.one(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.one(Scalar::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.one(Scalar::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match serde_json::Number::from_f64(v) {
            Some(n) => self.one(Scalar::Number(n)),
            None => Err(E::invalid_value(de::Unexpected::Float(v), &self)),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.out.check_value(v.len()) {
            Ok(()) => self.one(Scalar::Text(v.to_owned())),
            Err(limit) => Err(self.stop(limit)),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = 0usize;
        // Each item is counted as it is read: two million items stop at the limit.
        while let Some(item) = seq.next_element::<Scalar>()? {
            if let Err(limit) = self.out.push_item(self.name, item) {
                return Err(self.stop(limit));
            }
            items += 1;
        }
        if items == 0 {
            if let Err(limit) = self
                .out
                .insert(self.name.to_owned(), FieldValue::Many(Vec::new()))
            {
                return Err(self.stop(limit));
            }
        }
        Ok(())
    }
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
            parse(b"{\"a\": ", &Limits::default()).unwrap_err().code(),
            "malformed_json"
        );
        assert_eq!(
            parse(b"[1]", &Limits::default()).unwrap_err().code(),
            "invalid_json_value"
        );
        assert_eq!(
            parse(br#"{"a": {"b": 1}}"#, &Limits::default())
                .unwrap_err()
                .code(),
            "invalid_json_value"
        );
        assert_eq!(
            parse(br#"{"a": null}"#, &Limits::default())
                .unwrap_err()
                .code(),
            "invalid_json_value"
        );
    }

    fn small() -> Limits {
        Limits {
            max_fields: 3,
            max_field_bytes: 4,
            max_name_bytes: 5,
            ..Limits::default()
        }
    }

    #[test]
    fn every_value_counts_arrays_included() {
        assert!(parse(br#"{"a": [1, 2], "b": "x"}"#, &small()).is_ok());
        let code = |body: &[u8]| parse(body, &small()).unwrap_err().code();
        assert_eq!(code(br#"{"a": [1, 2, 3, 4]}"#), "too_many_fields");
        assert_eq!(
            code(br#"{"a": 1, "b": 2, "c": 3, "d": 4}"#),
            "too_many_fields"
        );
        assert_eq!(
            code(br#"{"a": 1, "a": 2, "a": 3, "a": 4}"#),
            "too_many_fields"
        );
        assert_eq!(
            code(br#"{"a": [], "b": [], "c": [], "d": []}"#),
            "too_many_fields"
        );
        // The limit wins over what follows it, even malformed.
        assert_eq!(code(br#"{"a": [1, 2, 3, 4, 5"#), "too_many_fields");
        assert_eq!(code(br#"{"toolong": 1}"#), "field_name_too_large");
        assert_eq!(code(br#"{"a": "12345"}"#), "field_too_large");
        assert_eq!(code(br#"{"a": ["12345"]}"#), "field_too_large");
        assert_eq!(code(br#"{"a": 123456}"#), "field_too_large");
    }

    #[test]
    fn repeated_keys_and_arrays_merge_in_first_position() {
        let f = parse(
            br#"{"a": "x", "b": [], "a": ["y"], "b": [true]}"#,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"a":["x","y"],"b":[true]}"#
        );
        assert_eq!(
            parse(br#"{} x"#, &Limits::default()).unwrap_err().code(),
            "malformed_json"
        );
    }

    /// 100,000 distinct keys (1.1 MB) are refused at the limit, and with the limit raised they
    /// are read in linear time (the old linear search per key made this quadratic: 13 s).
    #[test]
    fn many_distinct_keys_are_linear() {
        let mut body = String::from("{");
        for i in 0..100_000 {
            body.push_str(&format!("\"k{i}\":1,"));
        }
        body.push_str("\"end\":1}");
        let e = parse(body.as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(e.code(), "too_many_fields");
        let roomy = Limits {
            max_fields: 200_000,
            ..Limits::default()
        };
        let start = std::time::Instant::now();
        assert_eq!(parse(body.as_bytes(), &roomy).unwrap().len(), 100_001);
        // A bound for a hang, not a benchmark: the quadratic version took seconds in release.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }
}
