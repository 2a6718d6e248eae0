//! The content of a message — the MIME entity that gets encrypted (or, in `tls` mode, sent as
//! is) — produced as a stream.
//!
//! ```text
//! multipart/mixed
//! ├── multipart/alternative
//! │   ├── text/plain  (the fields, in received order)
//! │   └── text/html   (the same, HTML-escaped)
//! ├── application/json  submission.json  (optional: the normalized submission)
//! └── one attachment per file, with a safe name and its content type
//! ```
//!
//! Every part is base64, so the entity is 7-bit ASCII with CRLF lines whatever it carries, and no
//! content line can start with `--` and be mistaken for a boundary. Files are read only as the
//! stream reaches them; memory stays at one chunk per part.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read};
use std::sync::Arc;

use secureform_contract::{FileMeta, FileSource, Submission};

use crate::codec::Base64Reader;
use crate::render;

/// Longest attachment name, in bytes of UTF-8.
const MAX_NAME_BYTES: usize = 80;

enum Part {
    Bytes(Cursor<Vec<u8>>),
    /// File `index` of the submission, opened when the stream reaches it.
    File {
        index: usize,
        size: u64,
    },
    Base64(Base64Reader<Box<dyn Read + Send>>),
}

/// The content entity as a [`Read`] stream.
pub struct Body {
    parts: VecDeque<Part>,
    files: Arc<dyn FileSource>,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while let Some(part) = self.parts.front_mut() {
            let n = match part {
                Part::Bytes(c) => c.read(buf)?,
                Part::Base64(r) => r.read(buf)?,
                Part::File { index, size } => {
                    let (index, size) = (*index, *size);
                    let reader = self.files.open(index)?;
                    *part = Part::Base64(Base64Reader::new(reader, Some(size)));
                    continue;
                }
            };
            if n > 0 {
                return Ok(n);
            }
            self.parts.pop_front();
        }
        Ok(0)
    }
}

/// A MIME boundary unique to the submission and the nesting level. Base64 lines never start
/// with `-`, so no content line can collide with it.
pub fn boundary(kind: &str, s: &Submission) -> String {
    format!("=_secureform_{kind}_{}", token(&s.id))
}

/// Keeps ASCII letters, digits, `-` and `_` (for Message-IDs and boundaries).
pub fn token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Builds the content entity of `s`; its files are read from `files` one at a time.
pub fn body(s: &Submission, files: Arc<dyn FileSource>, attach_json: bool) -> Body {
    let mixed = boundary("mixed", s);
    let alt = boundary("alt", s);
    let mut head = format!(
        "Content-Type: multipart/mixed; boundary=\"{mixed}\"\r\n\r\n\
         --{mixed}\r\n\
         Content-Type: multipart/alternative; boundary=\"{alt}\"\r\n\r\n\
         --{alt}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    encode_into(&mut head, render::text(s).as_bytes());
    head.extend_from_slice(
        format!(
            "--{alt}\r\n\
             Content-Type: text/html; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        )
        .as_bytes(),
    );
    encode_into(&mut head, render::html(s).as_bytes());
    head.extend_from_slice(format!("--{alt}--\r\n").as_bytes());
    if attach_json {
        head.extend_from_slice(
            format!(
                "--{mixed}\r\n\
                 Content-Type: application/json; name=\"submission.json\"\r\n\
                 Content-Disposition: attachment; filename=\"submission.json\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            )
            .as_bytes(),
        );
        encode_into(&mut head, &render::json(s));
    }
    let mut parts = VecDeque::new();
    parts.push_back(Part::Bytes(Cursor::new(head)));
    for (index, meta) in s.files.iter().enumerate() {
        let header = format!("--{mixed}\r\n{}\r\n", attachment_headers(index, meta));
        parts.push_back(Part::Bytes(Cursor::new(header.into_bytes())));
        parts.push_back(Part::File {
            index,
            size: meta.size,
        });
    }
    parts.push_back(Part::Bytes(Cursor::new(
        format!("--{mixed}--\r\n").into_bytes(),
    )));
    Body { parts, files }
}

fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    // Reading from memory cannot fail.
    let _ = Base64Reader::new(bytes, None).read_to_end(out);
}

/// The header lines of attachment `index` (each ending in CRLF).
pub fn attachment_headers(index: usize, meta: &FileMeta) -> String {
    let name = safe_name(index, &meta.filename);
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    // The RFC 2231 form first: parsers that take the first `filename` get the real name, and
    // those that do not know it fall back to the ASCII one.
    let params = if name.is_ascii() {
        format!("filename=\"{ascii}\"")
    } else {
        format!(
            "filename*=UTF-8''{};\r\n filename=\"{ascii}\"",
            percent_encode(&name)
        )
    };
    format!(
        "Content-Type: {}; name=\"{ascii}\"\r\n\
         Content-Disposition: attachment;\r\n {params}\r\n\
         Content-Transfer-Encoding: base64\r\n",
        content_type(&meta.content_type)
    )
}

/// A file name safe to offer: the last path component, without control characters, quotes,
/// backslashes or characters that Windows refuses, no leading dots, capped at 80 bytes; an empty
/// result becomes `file-N`.
pub fn safe_name(index: usize, name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::new();
    for c in last.chars() {
        let c = if c.is_control()
            || matches!(
                c,
                '"' | '\\' | ':' | '*' | '?' | '<' | '>' | '|' | '\u{2028}' | '\u{2029}'
            ) {
            '_'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    let trimmed = out
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    if trimmed.is_empty() {
        format!("file-{index}")
    } else {
        trimmed.to_owned()
    }
}

/// RFC 2231 percent-encoding of a parameter value (attr-char kept).
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file's content type when it is a well-formed `type/subtype` (parameters dropped), else
/// `application/octet-stream`.
pub fn content_type(declared: &str) -> String {
    let bare = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match bare.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => bare,
        _ => "application/octet-stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_name(0, "cv.pdf"), "cv.pdf");
        assert_eq!(safe_name(1, "../../etc/passwd"), "passwd");
        assert_eq!(safe_name(2, "C:\\Users\\x\\a\"b.txt"), "a_b.txt");
        assert_eq!(safe_name(3, "a\r\nContent-Type: x"), "a__Content-Type_ x");
        assert_eq!(safe_name(4, "..."), "file-4");
        assert_eq!(safe_name(5, ""), "file-5");
        assert!(safe_name(6, &"é".repeat(100)).len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn content_types_are_checked() {
        assert_eq!(content_type("application/PDF"), "application/pdf");
        assert_eq!(content_type("text/plain; charset=utf-8"), "text/plain");
        assert_eq!(
            content_type("text/plain\r\nBcc: x"),
            "application/octet-stream"
        );
        assert_eq!(content_type("nonsense"), "application/octet-stream");
    }

    #[test]
    fn non_ascii_names_use_rfc_2231() {
        let meta = FileMeta {
            field: "f".into(),
            filename: "résumé.pdf".into(),
            content_type: "application/pdf".into(),
            size: 1,
            sha256: String::new(),
        };
        let h = attachment_headers(0, &meta);
        assert!(h.contains("filename=\"r_sum_.pdf\""));
        assert!(h.contains("filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"));
        assert!(h.is_ascii());
    }
}
