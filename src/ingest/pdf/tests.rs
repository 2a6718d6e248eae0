//! Every format and field type from fixtures of our own making, and hostile inputs.

use std::time::{Duration, Instant};

use lopdf::{Document, Object, StringFormat};
use secureform_contract::Fields;

use super::fixtures::{every_field_type_pdf, expected_form_fields, FDF, XFDF};
use super::text::decode_pdf_text_checked;
use super::*;

fn decode_pdf_text(bytes: &[u8]) -> String {
    decode_pdf_text_checked(bytes).0
}

mod corpus;
mod hostile;
mod inherit;
mod memory;
mod output;
mod xfa;

pub(super) fn json(fields: &Fields) -> serde_json::Value {
    serde_json::to_value(fields).unwrap()
}

fn keys(fields: &Fields) -> Vec<&str> {
    fields.iter().map(|(k, _)| k).collect()
}

#[test]
fn pdf_every_field_type() {
    let body = every_field_type_pdf();
    assert_eq!(sniff(&body), Some(PdfKind::Pdf));
    let fields = parse_pdf(&body, &PdfLimits::default()).unwrap();
    assert_eq!(json(&fields), expected_form_fields());
    // Field order is the field tree's document order.
    let order = [
        "name",
        "message",
        "empty",
        "long",
        "agree",
        "newsletter",
        "contact",
        "country",
        "topics",
        "one_topic",
        "address.city",
        "address.zip",
        "Straße ☃",
    ];
    assert_eq!(keys(&fields), order);
}

#[test]
fn fdf_every_field_type() {
    assert_eq!(sniff(FDF), Some(PdfKind::Fdf));
    let fields = parse_fdf(FDF, &PdfLimits::default()).unwrap();
    let expected = serde_json::json!({
        "name": "Zoë O’Brien",
        "message": "line one\rline two",
        "empty": "",
        "long": "long ✓ text",
        "agree": "I agree",
        "newsletter": "Off",
        "contact": "Téléphone",
        "country": "Deutschland",
        "topics": ["billing", "support"],
        "address.city": "Zürich",
        "address.zip": "8001",
        "Straße ☃": "Grüße"
    });
    assert_eq!(json(&fields), expected);
    // The same body as PDF is refused by parse_pdf only for what it is, never misread.
    assert!(parse_pdf(FDF, &PdfLimits::default()).is_err());
}

#[test]
fn fdf_without_fdf_header_or_dictionary_is_refused() {
    let limits = PdfLimits::default();
    assert_eq!(
        parse_fdf(b"hello", &limits),
        Err(PdfFormError::FdfMalformed)
    );
    let no_fdf = b"%FDF-1.2\n1 0 obj\n<< /Foo 1 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
    assert_eq!(parse_fdf(no_fdf, &limits), Err(PdfFormError::FdfMalformed));
}

#[test]
fn xfdf_every_field_type() {
    assert_eq!(sniff(XFDF.as_bytes()), Some(PdfKind::Xfdf));
    let fields = parse_xfdf(XFDF.as_bytes(), &PdfLimits::default()).unwrap();
    let expected = serde_json::json!({
        "name": "Zoë O’Brien",
        "message": "line one\rline two",
        "empty": "",
        "notes": "Bold move\rNext",
        "agree": "I agree ✓",
        "topics": ["billing", "support"],
        "address.city": "Zürich",
        "address.zip": "8001",
        "Straße ☃": "Grüße 😀"
    });
    assert_eq!(json(&fields), expected);
    // UTF-16 with BOM reads the same.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(XFDF.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(parse_xfdf(&utf16, &PdfLimits::default()).unwrap(), fields);
}

#[test]
fn xfdf_must_be_xfdf() {
    let limits = PdfLimits::default();
    let other = br#"<form xmlns="http://ns.adobe.com/xfdf/"><fields/></form>"#;
    assert_eq!(parse_xfdf(other, &limits), Err(PdfFormError::XfdfMalformed));
    assert_eq!(
        parse_xfdf(b"<xfdf", &limits),
        Err(PdfFormError::XfdfMalformed)
    );
    assert_eq!(
        parse_xfdf(b"\xFF\xFE\x00", &limits),
        Err(PdfFormError::XfdfMalformed)
    );
    assert_eq!(sniff(b"<html><body>hi</body></html>"), None);
    assert_eq!(sniff(b"name=value"), None);
    assert_eq!(sniff(b"\xEF\xBB\xBF  \n%PDF-1.7"), Some(PdfKind::Pdf));
}

#[test]
fn xfdf_external_entity_is_refused() {
    let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE xfdf [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<xfdf xmlns="http://ns.adobe.com/xfdf/"><fields><field name="a"><value>&xxe;</value></field></fields></xfdf>"#;
    assert_eq!(sniff(xxe), Some(PdfKind::Xfdf));
    let err = parse_xfdf(xxe, &PdfLimits::default()).unwrap_err();
    assert_eq!(err, PdfFormError::XfdfDtdForbidden);
    assert_eq!(err.code(), "xfdf_dtd_forbidden");
    assert_eq!(crate::error::ClientError::from(err).status.as_u16(), 400);
    // An entity used without a DTD is simply unknown.
    let undeclared = br#"<xfdf xmlns="http://ns.adobe.com/xfdf/"><fields><field name="a"><value>&xxe;</value></field></fields></xfdf>"#;
    assert_eq!(
        parse_xfdf(undeclared, &PdfLimits::default()),
        Err(PdfFormError::XfdfMalformed)
    );
}

#[test]
fn xfdf_billion_laughs_is_refused() {
    let mut doc =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE xfdf [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        doc.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    doc.push_str("]>\n<xfdf xmlns=\"http://ns.adobe.com/xfdf/\"><fields><field name=\"a\"><value>&lol9;</value></field></fields></xfdf>");
    let start = Instant::now();
    let err = parse_xfdf(doc.as_bytes(), &PdfLimits::default()).unwrap_err();
    assert_eq!(err, PdfFormError::XfdfDtdForbidden);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn xfdf_deep_nesting_is_refused() {
    let mut doc = String::from("<xfdf xmlns=\"http://ns.adobe.com/xfdf/\"><fields>");
    doc.push_str(&"<field name=\"a\">".repeat(10_000));
    doc.push_str("<value>x</value>");
    doc.push_str(&"</field>".repeat(10_000));
    doc.push_str("</fields></xfdf>");
    assert_eq!(
        parse_xfdf(doc.as_bytes(), &PdfLimits::default()),
        Err(PdfFormError::TooDeep)
    );
}

#[test]
fn status_body_is_an_fdf_acrobat_reads() {
    let body = fdf_status_body("Thank you. Your submission id is 01JD8Q (kept safe).");
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.starts_with("%FDF-1.2\n"));
    assert!(text.contains("/Status (Thank you. Your submission id is 01JD8Q \\(kept safe\\).)"));
    assert!(text.trim_end().ends_with("%%EOF"));
    assert!(!text.contains("/F "));
    // Our own reader reads it back, through lopdf, header patch and all.
    let mut patched = body.clone();
    patched[..5].copy_from_slice(b"%PDF-");
    let doc = Document::load_mem(&patched).unwrap();
    let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    let fdf = doc
        .get_dictionary(root)
        .unwrap()
        .get(b"FDF")
        .unwrap()
        .as_dict()
        .unwrap();
    let status = fdf.get(b"Status").unwrap().as_str().unwrap();
    assert_eq!(
        decode_pdf_text(status),
        "Thank you. Your submission id is 01JD8Q (kept safe)."
    );
    // Not ASCII: UTF-16BE with BOM, still an all-ASCII body.
    let body = fdf_status_body("Merci, reçu ✓");
    assert!(body.is_ascii());
    let mut patched = body.clone();
    patched[..5].copy_from_slice(b"%PDF-");
    let doc = Document::load_mem(&patched).unwrap();
    let fdf = doc
        .get_dictionary((1, 0))
        .unwrap()
        .get(b"FDF")
        .unwrap()
        .as_dict()
        .unwrap();
    let status = fdf.get(b"Status").unwrap().as_str().unwrap();
    assert_eq!(decode_pdf_text(status), "Merci, reçu ✓");
}

#[test]
fn errors_are_4xx_with_codes_and_plain_messages() {
    let all = [
        PdfFormError::PdfMalformed,
        PdfFormError::FdfMalformed,
        PdfFormError::XfdfMalformed,
        PdfFormError::XfdfDtdForbidden,
        PdfFormError::TooLarge,
        PdfFormError::TooManyObjects,
        PdfFormError::TooDeep,
        PdfFormError::DecompressionLimit,
        PdfFormError::ReferenceLoop,
        PdfFormError::Timeout,
        PdfFormError::TooManyFields,
        PdfFormError::Encrypted,
        PdfFormError::NoAcroForm,
    ];
    for e in all {
        let answered = crate::error::ClientError::from(e);
        assert!(answered.status.is_client_error(), "{e:?}");
        assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert!(e.message().ends_with('.'));
    }
}

/// The example form (`cargo run --example make_pdf_form`) parses: blank, and filled in.
#[test]
fn example_form_parses_blank_and_filled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("form.pdf");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["run", "-q", "--example", "make_pdf_form", "--"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let body = std::fs::read(&out).unwrap();
    assert!(parse_pdf(&body, &PdfLimits::default()).unwrap().is_empty());
    let mut doc = Document::load_mem(&body).unwrap();
    let text = |b: &[u8]| Object::String(b.to_vec(), StringFormat::Literal);
    let ids: Vec<_> = doc.objects.keys().copied().collect();
    for id in ids {
        let Ok(Object::Dictionary(d)) = doc.get_object_mut(id) else {
            continue;
        };
        let v = match d.get(b"T").and_then(Object::as_str) {
            Ok(b"name") => text(b"Zo\xEB"),
            Ok(b"message") => text(b"a\rb"),
            Ok(b"subscribe") => Object::Name(b"Yes".to_vec()),
            Ok(b"contact") => Object::Name(b"phone".to_vec()),
            Ok(b"country") => text(b"France"),
            Ok(b"topics") => Object::Array(vec![text(b"billing")]),
            _ => continue,
        };
        d.set("V", v);
    }
    let mut filled = Vec::new();
    doc.save_to(&mut filled).unwrap();
    let fields = parse_pdf(&filled, &PdfLimits::default()).unwrap();
    let expected = serde_json::json!({"name": "Zoë", "message": "a\rb", "subscribe": "Yes",
        "contact": "phone", "country": "France", "topics": ["billing"]});
    assert_eq!(json(&fields), expected);
    let order = [
        "name",
        "message",
        "subscribe",
        "contact",
        "country",
        "topics",
    ];
    assert_eq!(keys(&fields), order);
}
