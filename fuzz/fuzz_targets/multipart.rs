//! The streaming multipart reader (src/http/multipart.rs), fed in chunks split where the fuzzer
//! chooses. Two modes, by the first byte:
//! - raw bytes as the body: the outcome (parts and contents, or the error) is the same however
//!   the body is split; pieces are never empty; no content holds the delimiter; the contents
//!   together are no larger than the body; a body over the limit is refused;
//! - parts the fuzzer chooses, written by a correct writer: read back exactly.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use secureform_fuzz::adapt::{self, Part};
use secureform_fuzz::Input;

const BOUNDARIES: [&str; 4] = ["b", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "x y", "--"];

/// Splits `body` at the offsets the bytes of `cuts` choose.
fn split(body: &[u8], cuts: &[u8]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut rest = body;
    for &c in cuts {
        let n = usize::from(c).min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(Bytes::copy_from_slice(a));
        rest = b;
    }
    chunks.push(Bytes::copy_from_slice(rest));
    chunks
}

fn contents(parts: &[Part]) -> Vec<(String, Option<String>, Option<String>, Vec<u8>)> {
    parts
        .iter()
        .map(|p| {
            let content = p.pieces.iter().flat_map(|c| c.iter().copied()).collect();
            let h = &p.head;
            (
                h.name.clone(),
                h.filename.clone(),
                h.content_type.clone(),
                content,
            )
        })
        .collect()
}

fn raw(mut input: Input<'_>, boundary: &str) {
    let max = input.in_range(1 << 16) as u64;
    let cuts = input.bytes(64);
    let body = input.rest();
    let split_result = adapt::multipart(split(body, cuts), boundary, max);
    if body.len() as u64 > max {
        // Refused: as too large, or for what it got wrong before the limit was reached.
        assert!(split_result.is_err(), "a body over the limit was accepted");
        return;
    }
    let whole = adapt::multipart(vec![Bytes::copy_from_slice(body)], boundary, max);
    let delimiter = format!("\r\n--{boundary}");
    match (&split_result, &whole) {
        (Ok(a), Ok(b)) => {
            assert_eq!(contents(a), contents(b), "the split changed the parts");
            let mut total = 0;
            for part in a {
                assert!(part.pieces.iter().all(|p| !p.is_empty()), "an empty piece");
                let content: Vec<u8> = part.pieces.iter().flat_map(|c| c.to_vec()).collect();
                let found = content
                    .windows(delimiter.len())
                    .any(|w| w == delimiter.as_bytes());
                assert!(!found, "a part's content holds the delimiter");
                total += content.len();
            }
            assert!(total <= body.len(), "more content than body");
        }
        (a, b) => assert_eq!(
            a.as_ref().err(),
            b.as_ref().err(),
            "the split changed the error"
        ),
    }
}

/// Letters and digits from fuzzer bytes (what a name can round-trip as).
fn token(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    let name: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    if name.is_empty() {
        "f".to_owned()
    } else {
        name
    }
}

fn written(mut input: Input<'_>, boundary: &str) {
    let delimiter = format!("\r\n--{boundary}");
    let mut body = b"preamble".to_vec();
    let mut expected = Vec::new();
    let count = usize::from(input.byte() % 8);
    for _ in 0..count {
        let name = token(input.bytes(40));
        let flags = input.byte();
        let filename = (flags & 1 == 1).then(|| token(input.bytes(40)));
        let content_type = (flags & 2 == 2).then(|| "text/plain".to_owned());
        let content = input.bytes(255).to_vec();
        let mut probe = b"\r\n".to_vec();
        probe.extend_from_slice(&content);
        probe.extend_from_slice(b"\r\n");
        if probe
            .windows(delimiter.len())
            .any(|w| w == delimiter.as_bytes())
        {
            return; // not a body a correct writer could make with this boundary
        }
        body.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(f) = &filename {
            disposition.push_str(&format!("; filename=\"{f}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        if let Some(t) = &content_type {
            body.extend_from_slice(format!("\r\nContent-Type: {t}").as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(&content);
        expected.push((name, filename, content_type, content));
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\nepilogue").as_bytes());
    let cuts = input.rest();
    let parts = adapt::multipart(split(&body, cuts), boundary, body.len() as u64)
        .expect("a correctly written body is read");
    assert_eq!(contents(&parts), expected, "parts read back differ");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.byte();
    let boundary = BOUNDARIES[usize::from(mode >> 1) % BOUNDARIES.len()];
    if mode & 1 == 0 {
        raw(input, boundary);
    } else {
        written(input, boundary);
    }
});
