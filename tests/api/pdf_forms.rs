//! PDF form posts over HTTP (issue 3): FDF, XFDF, the whole PDF and Acrobat's HTML format, each
//! posted to the real binary and read back with `docs get`.
//!
//! - `build` and `acrobat`: fixtures of our own making, a filled form with every field type
//!   (built with lopdf) and the same form as Acrobat submits it in FDF, XFDF and HTML format.
//! - `formats`: that form in all four formats, and mislabeled bodies.
//! - `html`: Acrobat's HTML format in windows-1252 and GBK, and the charset rules.
//! - `hostile`: bombs, loops, DTDs, deep nesting, cut-short files: a 4xx FDF answer each, the
//!   server alive and its memory bounded.
//! - `corpus`: the real-world corpus in `../shared/corpus/`, when that folder exists.
//!
//! Acrobat shows the `/Status` of the FDF it gets back; [`fdf_status`] reads it the way a PDF
//! reader would (a literal or hex string, PDFDocEncoding or UTF-16BE with BOM).

mod acrobat;
mod build;
mod corpus;
mod formats;
mod hostile;
mod html;
mod parallel;
mod xfa;

use std::time::{Duration, Instant};

use secureform_contract::Submission;

use crate::support::*;

/// A configuration with one form per `(name, extra lines)`, each delivering to the Documents
/// store, and `limits` as the `[limits]` table's lines.
pub fn config(limits: &str, forms: &[(&str, &str)]) -> String {
    let mut out = format!("[limits]\n{limits}\n\n");
    for (name, extra) in forms {
        out.push_str(&format!("[forms.{name}]\nsinks = [\"docs\"]\n{extra}\n\n"));
    }
    out.push_str("[sinks.docs]\ntype = \"documents\"\n");
    out
}

/// One answer, read whole.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub location: String,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// POSTs `body` to `/f/{form}` with the given Content-Type and (optionally) Accept.
pub fn post(server: &Server, form: &str, ct: &str, accept: Option<&str>, body: Vec<u8>) -> Answer {
    let mut req = client()
        .post(server.url(&format!("/f/{form}")))
        .header("content-type", ct);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let start = Instant::now();
    let resp = req.body(body).send().unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, content_type, location) = (
        resp.status().as_u16(),
        header("content-type"),
        header("location"),
    );
    let body = resp.bytes().unwrap().to_vec();
    Answer {
        status,
        content_type,
        location,
        body,
        elapsed: start.elapsed(),
    }
}

/// The `/Status` text of an FDF answer, checking that it is a complete FDF first.
pub fn fdf_status(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    assert!(body.starts_with(b"%FDF-1."), "not an FDF: {text}");
    assert!(contains(body, b"/FDF"), "no /FDF dictionary: {text}");
    assert!(contains(body, b"%%EOF"), "no %%EOF: {text}");
    let at = body
        .windows(7)
        .position(|w| w == b"/Status")
        .unwrap_or_else(|| panic!("no /Status: {text}"));
    let rest = body[at + 7..].trim_ascii_start();
    let raw = match rest.first() {
        Some(b'(') => literal_string(&rest[1..]),
        Some(b'<') => {
            let end = rest.iter().position(|&b| b == b'>').unwrap();
            let digits: Vec<u8> = rest[1..end]
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            hex::decode(digits).unwrap()
        }
        _ => panic!("/Status is not a string: {text}"),
    };
    match raw.strip_prefix(&[0xFE, 0xFF]) {
        Some(utf16) => {
            let units: Vec<u16> = utf16
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).unwrap()
        }
        None => {
            assert!(raw.is_ascii(), "a non-ASCII status must be UTF-16BE");
            String::from_utf8(raw).unwrap()
        }
    }
}

/// The bytes of a PDF literal string, from just after its `(` (ISO 32000-1, 7.3.4.2).
fn literal_string(s: &[u8]) -> Vec<u8> {
    let (mut out, mut depth, mut i) = (Vec::new(), 0usize, 0usize);
    while let Some(&b) = s.get(i) {
        i += 1;
        match b {
            b'\\' => {
                let e = s[i];
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match s.get(i) {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    b'\r' | b'\n' => {}
                    other => out.push(other),
                }
            }
            b'(' => {
                depth += 1;
                out.push(b);
            }
            b')' if depth == 0 => return out,
            b')' => {
                depth -= 1;
                out.push(b);
            }
            _ => out.push(b),
        }
    }
    panic!("unterminated string");
}

/// The first ULID (26 characters of Crockford's base32) in `text`.
pub fn ulid_in(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(26)
        .map(|w| w.iter().collect::<String>())
        .find(|s| {
            ulid::Ulid::from_string(s).is_ok() && s.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// Checks an answer to Acrobat that accepted a submission, and returns the submission's id.
pub fn accepted_fdf(answer: &Answer, what: &str) -> String {
    assert_eq!(answer.status, 200, "{what}: {}", answer.text());
    assert_eq!(answer.content_type, "application/vnd.fdf", "{what}");
    let status = fdf_status(&answer.body);
    ulid_in(&status).unwrap_or_else(|| panic!("{what}: no submission id in /Status {status:?}"))
}

/// Checks an answer to Acrobat that refused a submission: the status, an FDF body whose
/// `/Status` names `code`, within `secs` seconds.
pub fn refused_fdf(answer: &Answer, status: u16, code: &str, secs: u64) {
    let text = answer.text();
    assert_eq!(answer.status, status, "{code}: {text}");
    assert_eq!(answer.content_type, "application/vnd.fdf", "{code}");
    let message = fdf_status(&answer.body);
    assert!(
        message.contains(&format!("({code})")),
        "{code}: {message:?}"
    );
    assert!(
        answer.elapsed < Duration::from_secs(secs),
        "{code}: answered after {:?}",
        answer.elapsed
    );
}

/// The id in a 201 JSON answer.
pub fn json_id(answer: &Answer) -> String {
    assert_eq!(answer.status, 201, "{}", answer.text());
    let v: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// Waits until the Documents store holds every id in `ids`.
pub fn wait_for_docs(server: &Server, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let have = server.doc_ids();
        let missing: Vec<&String> = ids.iter().filter(|id| !have.contains(id)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} documents never arrived; log:\n{}",
            missing.len(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `docs get`: the submission (fields in received order), its JSON, and its files.
pub fn submission(server: &Server, id: &str) -> (Submission, serde_json::Value, Vec<Vec<u8>>) {
    server.wait_for_doc(id);
    let (json, text, files) = server.doc_raw(id, &[]);
    (serde_json::from_str(&text).unwrap(), json, files)
}

/// The names of a submission's fields, in order.
pub fn names(s: &Submission) -> Vec<String> {
    s.fields.iter().map(|(n, _)| n.to_owned()).collect()
}

/// Peak resident memory (VmHWM) of a process, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}
