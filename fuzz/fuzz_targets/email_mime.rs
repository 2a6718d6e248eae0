//! MIME rendering of hostile field names and values, file names, file fields and content types
//! (sinks/email: mime.rs, render.rs, subject.rs, message.rs in `tls` mode, where the entity is
//! sent as it is), parsed back with `mailparse`. Properties:
//! - the headers are exactly the ones we write, in order: nothing a client sent adds a header
//!   line; the Subject reads back as the rendered template;
//! - every line ends in CRLF and is at most 998 bytes (RFC 5322);
//! - the structure is exactly mixed(alternative(text, html), [json], files...): no value adds a
//!   part; each part has exactly its own headers; text, HTML and JSON read back as rendered;
//!   each file reads back byte for byte under its safe name.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mailparse::{MailHeaderMap, ParsedMail};
use secureform_contract::{Fields, FileMeta, MemoryFiles, Source, Submission};
use secureform_email::message::{compose, Envelope, Protection};
use secureform_email::mime::safe_name;
use secureform_email::render;
use secureform_email::subject::Template;
use secureform_fuzz::Input;

fn text(input: &mut Input<'_>, max: usize) -> String {
    String::from_utf8_lossy(input.bytes(max)).into_owned()
}

fn keys(part: &ParsedMail<'_>) -> Vec<String> {
    part.headers.iter().map(|h| h.get_key()).collect()
}

fn submission(input: &mut Input<'_>) -> (Submission, Vec<Vec<u8>>) {
    let counts = input.byte();
    let mut fields = Fields::new();
    for _ in 0..usize::from(counts % 7) {
        let name = text(input, 60);
        let value = text(input, 200);
        fields.push(name, value);
    }
    let mut files = Vec::new();
    let mut metas = Vec::new();
    for _ in 0..usize::from(counts >> 3) % 4 {
        let field = text(input, 40);
        let filename = text(input, 120);
        let content_type = text(input, 40);
        let content = input.bytes(255).to_vec();
        metas.push(FileMeta {
            field,
            filename,
            content_type,
            size: content.len() as u64,
            sha256: String::new(),
        });
        files.push(content);
    }
    let s = Submission {
        id: "01JD5Z8F3QK7N2V4X6Y8A0B1C2".to_owned(),
        form: "contact".to_owned(),
        received_at: "2026-12-05T08:00:00Z".to_owned(),
        source: Source::Json,
        fields,
        files: metas,
    };
    (s, files)
}

fn check_lines(message: &[u8]) {
    for line in message.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "a line without CRLF");
        assert!(!line[..line.len() - 2].contains(&b'\r'), "a bare CR");
        assert!(line.len() <= 1000, "a line of {} bytes", line.len());
    }
}

/// A Subject template with fuzzer text and up to two of the fields, allowed for it.
fn template(input: &mut Input<'_>, s: &Submission) -> Template {
    let subject_text = text(input, 60);
    let allowed: Vec<String> = s
        .fields
        .iter()
        .take(2)
        .map(|(n, _)| n.to_owned())
        .filter(|n| !n.is_empty() && !n.contains(['{', '}']))
        .collect();
    let mut template = format!("{subject_text} {{id}}");
    for name in &allowed {
        template.push_str(&format!(" {{{name}}}"));
    }
    Template::parse(&template, &allowed)
        .or_else(|_| Template::parse("{id} {form}", &[]))
        .expect("template")
}

/// Exactly our headers, in order; the Subject as rendered.
fn check_headers(mail: &ParsedMail<'_>, subject: &Template, s: &Submission) {
    let top = [
        "Date",
        "From",
        "To",
        "Subject",
        "Message-ID",
        "MIME-Version",
        "Auto-Submitted",
        "Content-Type",
    ];
    assert_eq!(keys(mail), top, "top-level headers");
    let read = mail.headers.get_first_value("Subject").expect("subject");
    let rendered = subject.render(s);
    assert_eq!(
        read.split_whitespace().collect::<Vec<_>>(),
        rendered.split_whitespace().collect::<Vec<_>>(),
        "Subject"
    );
    assert_eq!(mail.ctype.mimetype, "multipart/mixed");
}

/// The text and HTML alternatives, and submission.json when attached, read back as rendered.
fn check_bodies(mail: &ParsedMail<'_>, s: &Submission, attach_json: bool) {
    let alt = &mail.subparts[0];
    assert_eq!(alt.ctype.mimetype, "multipart/alternative");
    assert_eq!(alt.subparts.len(), 2, "parts of multipart/alternative");
    let body_keys = ["Content-Type", "Content-Transfer-Encoding"];
    for (part, want) in alt.subparts.iter().zip([render::text(s), render::html(s)]) {
        assert_eq!(keys(part), body_keys);
        assert_eq!(part.get_body().expect("body"), want, "text or HTML part");
    }
    if attach_json {
        let json = mail.subparts[1].get_body_raw().expect("json");
        assert_eq!(json, render::json(s), "submission.json");
    }
}

/// Attachment `index`: its own three headers, its bytes, its safe name.
fn check_file(part: &ParsedMail<'_>, index: usize, meta: &FileMeta, content: &[u8]) {
    let own = [
        "Content-Type",
        "Content-Disposition",
        "Content-Transfer-Encoding",
    ];
    assert_eq!(keys(part), own);
    assert_eq!(part.get_body_raw().expect("file"), content, "file {index}");
    // The quoted file name cannot end early: no quote, backslash or control character.
    let name = safe_name(index, &meta.filename);
    let unsafe_char = name.contains(['"', '\\']) || name.contains(char::is_control);
    assert!(!unsafe_char, "safe name");
    let raw = part
        .headers
        .get_first_header("Content-Disposition")
        .expect("disposition");
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    let quoted = format!("filename=\"{ascii}\"");
    let value = String::from_utf8_lossy(raw.get_value_raw());
    assert!(value.contains(&quoted), "file name");
    // mailparse 0.15 splits parameters at a `;` even inside quotes: compare only without.
    if name.is_ascii() && !name.contains(';') {
        let disposition = part.get_content_disposition();
        assert_eq!(disposition.params.get("filename"), Some(&name), "file name");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let attach_json = input.byte() & 1 == 1;
    let (s, files) = submission(&mut input);
    let subject = template(&mut input, &s);
    let env = Envelope {
        from: "forms@example.com".to_owned(),
        to: vec!["a@example.com".to_owned(), "b@example.com".to_owned()],
        domain: "example.com".to_owned(),
        subject: subject.clone(),
        attach_json,
    };
    let source = Arc::new(MemoryFiles(files.clone()));
    let mut message = Vec::new();
    compose(&Protection::Tls, &env, &s, source, &mut message).expect("compose");
    check_lines(&message);

    let mail = mailparse::parse_mail(&message).expect("mailparse reads the message");
    check_headers(&mail, &subject, &s);
    let first_file = 1 + usize::from(attach_json);
    assert_eq!(
        mail.subparts.len(),
        first_file + files.len(),
        "parts of multipart/mixed"
    );
    check_bodies(&mail, &s, attach_json);
    for (index, (meta, content)) in s.files.iter().zip(&files).enumerate() {
        check_file(&mail.subparts[first_file + index], index, meta, content);
    }
});
