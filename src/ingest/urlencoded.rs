//! `application/x-www-form-urlencoded`: HTML forms, and Acrobat's "HTML" submit format.
//!
//! Parsed as the WHATWG URL standard says (`application/x-www-form-urlencoded parser`): pairs
//! split on `&`, empty pairs skipped, a pair without `=` is a name with an empty value, `+` is a
//! space, and an invalid escape such as `%ZZ` is kept literally. Names and values are
//! percent-decoded to **bytes** first, then decoded to text with the form's charset (see
//! [`super::text`]), so a body in windows-1252 or GBK is read exactly.
//!
//! Acrobat's SubmitCoordinates option adds `NAME.x` and `NAME.y` for the click position on the
//! button: a pair of both with numeric values is dropped (it is not something the user typed).

use encoding_rs::Encoding;
use secureform_contract::Fields;

use std::collections::HashSet;

use super::bounded::{FieldsBuilder, OutputError, OutputLimits};
use super::{text, IngestError};
use crate::limits::Limits;

/// Percent-decodes one name or value, with `+` as a space; an invalid escape stays as it is. The
/// runs between escapes are copied whole (on every accepted form post, this is a measurable
/// part of the CPU: byte-by-byte decoding was about 5 % of it).
fn decode_component(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = memchr::memchr2(b'%', b'+', rest) {
        out.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            out.push(b' ');
            rest = &rest[at + 1..];
            continue;
        }
        match (hex_digit(rest.get(at + 1)), hex_digit(rest.get(at + 2))) {
            (Some(high), Some(low)) => {
                out.push(high << 4 | low);
                rest = &rest[at + 3..];
            }
            _ => {
                out.push(b'%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.extend_from_slice(rest);
    out
}

fn hex_digit(byte: Option<&u8>) -> Option<u8> {
    byte.and_then(|&b| char::from(b).to_digit(16))
        .map(|d| d as u8)
}

/// Parses a urlencoded body into fields in received order. Every pair counts as a value (a
/// multi-select sends one pair per chosen option).
pub fn parse(
    body: &[u8],
    charset: Option<&'static Encoding>,
    limits: &Limits,
) -> Result<Fields, IngestError> {
    let output = OutputLimits::from_limits(limits);
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for piece in body.split(|&b| b == b'&') {
        if piece.is_empty() {
            continue;
        }
        // The builder counts the values exactly below; here only the clicked image button's
        // two coordinates (dropped later) may come on top.
        if pairs.len() >= output.max_values.saturating_add(2) {
            return Err(OutputError::TooManyValues(output.max_values).into());
        }
        let (name, value) = match memchr::memchr(b'=', piece) {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &piece[piece.len()..]),
        };
        let value = decode_component(value);
        if value.len() > limits.max_field_bytes {
            return Err(OutputError::ValueTooLarge(limits.max_field_bytes).into());
        }
        let name = decode_component(name);
        // A UTF-8 name is never shorter than its bytes in any charset but a double-byte one:
        // refuse what cannot fit before decoding it.
        if name.len() > output.max_name_bytes.saturating_mul(2) {
            return Err(OutputError::NameTooLarge(output.max_name_bytes).into());
        }
        pairs.push((name, value));
    }
    let encoding = text::choose(
        charset,
        pairs.iter().flat_map(|(n, v)| [n.as_slice(), v.as_slice()]),
    );
    let coordinates = submit_coordinates(&pairs);
    let dropped: Vec<bool> = pairs
        .iter()
        .map(|(name, _)| coordinates.contains(name.as_slice()))
        .collect();
    drop(coordinates);
    let mut fields = FieldsBuilder::new(output);
    // The decoded bytes become the strings (no copy for UTF-8).
    for ((name, value), dropped) in pairs.into_iter().zip(dropped) {
        if dropped {
            continue;
        }
        fields.push(
            text::decode_owned(encoding, name)?,
            text::decode_owned(encoding, value)?.into(),
        )?;
    }
    Ok(fields.finish().fields)
}

/// The names of `X.x` / `X.y` pairs that both exist with integer values. Linear: the `.y`
/// names with numeric values are looked up in a hash set (a search per pair took 2.9 s on a
/// 20 MB body).
fn submit_coordinates(pairs: &[(Vec<u8>, Vec<u8>)]) -> HashSet<&[u8]> {
    let numeric = |v: &[u8]| !v.is_empty() && v.iter().all(|b| b.is_ascii_digit() || *b == b'-');
    let numeric_y: HashSet<&[u8]> = pairs
        .iter()
        .filter(|(name, value)| name.ends_with(b".y") && numeric(value))
        .map(|(name, _)| name.as_slice())
        .collect();
    let mut drop = HashSet::new();
    let mut y = Vec::new();
    for (name, value) in pairs {
        let Some(base) = name.strip_suffix(b".x") else {
            continue;
        };
        if numeric_y.is_empty() || !numeric(value) {
            continue;
        }
        y.clear();
        y.extend_from_slice(base);
        y.extend_from_slice(b".y");
        if let Some(&y) = numeric_y.get(y.as_slice()) {
            drop.insert(name.as_slice());
            drop.insert(y);
        }
    }
    drop
}

#[cfg(test)]
mod tests {
    use super::*;
    use secureform_contract::{FieldValue, Scalar};

    fn text_of(f: &Fields, name: &str) -> String {
        f.get(name).map(|v| v.to_text()).unwrap_or_default()
    }

    /// The same bytes as the `percent-encoding` crate's decoder (after `+` → space), for
    /// random strings dense in escapes, broken escapes and non-ASCII bytes.
    #[test]
    fn decodes_as_percent_encoding_does() {
        use rand::{Rng, SeedableRng};
        let alphabet: &[u8] = b"%%%++a2BfFzZ0\xc3\xa9=";
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..12);
            let raw: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let plus_as_space: Vec<u8> = raw
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            let expected: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
            assert_eq!(decode_component(&raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn follows_whatwg_rules() {
        let f = parse(b"a=1&&b&c=%ZZ&d=x+y%2B&a=2", None, &Limits::default()).unwrap();
        assert_eq!(
            f.get("a"),
            Some(&FieldValue::Many(vec![
                Scalar::from("1"),
                Scalar::from("2")
            ]))
        );
        assert_eq!(text_of(&f, "b"), "");
        assert_eq!(text_of(&f, "c"), "%ZZ");
        assert_eq!(text_of(&f, "d"), "x y+");
        let names: Vec<&str> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn windows_1252_without_charset_and_gbk_with_it() {
        // "Müller €" in windows-1252: ü = 0xFC, € = 0x80.
        let f = parse(b"name=M%FCller+%80", None, &Limits::default()).unwrap();
        assert_eq!(text_of(&f, "name"), "Müller €");
        // "中文" in GBK is D6 D0 CE C4.
        let gbk = encoding_rs::Encoding::for_label(b"gbk");
        let f = parse(b"city=%D6%D0%CE%C4", gbk, &Limits::default()).unwrap();
        assert_eq!(text_of(&f, "city"), "中文");
        // UTF-8 stays UTF-8.
        let f = parse("v=%C3%BC".as_bytes(), None, &Limits::default()).unwrap();
        assert_eq!(text_of(&f, "v"), "ü");
    }

    #[test]
    fn invalid_bytes_for_a_declared_charset_are_refused() {
        let utf8 = encoding_rs::Encoding::for_label(b"utf-8");
        let e = parse(b"v=%FF", utf8, &Limits::default()).unwrap_err();
        assert_eq!(e.code(), "invalid_charset");
    }

    #[test]
    fn submit_coordinates_are_dropped() {
        let f = parse(
            b"name=a&Submit.x=12&Submit.y=7&n.x=zz",
            None,
            &Limits::default(),
        )
        .unwrap();
        let names: Vec<&str> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["name", "n.x"]);
    }

    #[test]
    fn limits_hold() {
        let limits = Limits {
            max_fields: 3,
            max_field_bytes: 4,
            ..Limits::default()
        };
        assert_eq!(
            parse(b"a=1&b=2&c=3&d=4", None, &limits).unwrap_err().code(),
            "too_many_fields"
        );
        assert_eq!(
            parse(b"a=12345", None, &limits).unwrap_err().code(),
            "field_too_large"
        );
        // Every value counts, repeated names included; a clicked image button's coordinates
        // do not.
        assert_eq!(
            parse(b"a=1&a=2&a=3&a=4", None, &limits).unwrap_err().code(),
            "too_many_fields"
        );
        assert!(parse(b"a=1&a=2&a=3", None, &limits).is_ok());
        assert!(parse(b"a=1&a=2&a=3&go.x=1&go.y=2", None, &limits).is_ok());
    }

    #[test]
    fn names_are_bounded() {
        let limits = Limits {
            max_name_bytes: 4,
            ..Limits::default()
        };
        assert!(parse(b"abcd=1", None, &limits).is_ok());
        assert_eq!(
            parse(b"abcde=1", None, &limits).unwrap_err().code(),
            "field_name_too_large"
        );
        // Measured as stored: "\u{e9}" is two bytes of UTF-8 from one of windows-1252.
        assert_eq!(
            parse(b"abc%E9=1", None, &limits).unwrap_err().code(),
            "field_name_too_large"
        );
        let huge = format!("{}=1", "n".repeat(10 << 20));
        assert_eq!(
            parse(huge.as_bytes(), None, &Limits::default())
                .unwrap_err()
                .code(),
            "field_name_too_large"
        );
    }

    /// 20 MB of coordinate pairs: the check is linear (it was a search per pair, 2.9 s in
    /// release on this body and far more in a debug build).
    #[test]
    fn many_coordinates_are_linear() {
        let mut body = Vec::new();
        for i in 0..800_000 {
            body.extend_from_slice(format!("b{i}.x=1&").as_bytes());
        }
        body.truncate(20 << 20);
        let roomy = Limits {
            max_fields: 10_000_000,
            max_body_bytes: 64 << 20,
            ..Limits::default()
        };
        let start = std::time::Instant::now();
        let f = parse(&body, None, &roomy).unwrap();
        assert!(f.len() > 100_000);
        let f = parse(b"i.x=1&i.y=2&j.y=3&k.x=a&k.y=1", None, &roomy).unwrap();
        let names: Vec<&str> = f.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["j.y", "k.x", "k.y"]);
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
    }
}
