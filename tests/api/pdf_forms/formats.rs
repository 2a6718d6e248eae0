//! One filled form of our own making, posted in each of the four formats Acrobat sends, comes
//! back from `docs get` with the same fields; bodies are read by what they are, not by their
//! label.

use serde_json::json;

use super::acrobat::{expected, expected_order, html_format, FDF, XFDF};
use super::build::filled_form_pdf;
use super::*;

const FORM: &[(&str, &str)] = &[("contact", "")];

/// Checks a stored submission against the expected fields of `format`, order included.
fn check_fields(s: &Submission, format: &str) {
    assert_eq!(
        serde_json::to_value(&s.fields).unwrap(),
        expected(format),
        "{format}"
    );
    assert_eq!(names(s), expected_order(format), "{format}: field order");
}

#[test]
fn every_format_of_the_filled_form_yields_the_same_fields() {
    let server = Server::with_config(&config("", FORM));

    // The whole PDF: its fields, and the PDF itself as file 0, byte for byte.
    let pdf = filled_form_pdf();
    let answer = post(&server, "contact", "application/pdf", None, pdf.clone());
    let id = accepted_fdf(&answer, "pdf");
    let (s, json, files) = submission(&server, &id);
    assert_eq!(json["source"], "pdf");
    check_fields(&s, "pdf");
    assert_eq!(s.files.len(), 1);
    let meta = &s.files[0];
    assert_eq!(meta.content_type, "application/pdf");
    assert_eq!(meta.size, pdf.len() as u64);
    assert_eq!(meta.sha256, sha256_hex(&pdf));
    assert_eq!(files[0], pdf);

    // FDF and XFDF: the same fields, and the answer never echoes the client's /F.
    for (format, ct, body) in [
        ("fdf", "application/vnd.fdf", FDF.to_vec()),
        (
            "xfdf",
            "application/vnd.adobe.xfdf",
            XFDF.as_bytes().to_vec(),
        ),
    ] {
        let answer = post(&server, "contact", ct, None, body);
        let id = accepted_fdf(&answer, format);
        assert!(!contains(&answer.body, b"secret-path"), "{}", answer.text());
        assert!(!contains(&answer.body, b"/F "), "{}", answer.text());
        assert!(!contains(&answer.body, b"/F("), "{}", answer.text());
        let (s, json, files) = submission(&server, &id);
        assert_eq!(json["source"], format);
        check_fields(&s, format);
        assert!(files.is_empty());
    }

    // Acrobat's HTML format: urlencoded, the Submit button's coordinates dropped.
    let answer = post(
        &server,
        "contact",
        "application/x-www-form-urlencoded",
        Some("application/json"),
        html_format(),
    );
    let (s, json, _) = submission(&server, &json_id(&answer));
    assert_eq!(json["source"], "urlencoded");
    check_fields(&s, "html");

    // Acrobat itself sends no Accept header worth the name: it gets the browser's 303.
    let answer = post(
        &server,
        "contact",
        "application/x-www-form-urlencoded",
        Some("*/*"),
        html_format(),
    );
    assert_eq!(answer.status, 303, "{}", answer.text());
    let id = ulid_in(&answer.location).unwrap();
    let (s, _, _) = submission(&server, &id);
    check_fields(&s, "html");

    // Nothing of what was submitted is in the log.
    let log = server.log_text();
    for secret in ["Zoë", "Zürich", "zoe@example.com", "secret-path", "张三"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn mislabeled_bodies_are_read_by_what_they_are() {
    let server = Server::with_config(&config("", FORM));
    let pdf = filled_form_pdf();
    let cases: [(&str, &str, Vec<u8>); 6] = [
        ("fdf", "application/x-www-form-urlencoded", FDF.to_vec()),
        ("fdf", "application/octet-stream", FDF.to_vec()),
        ("xfdf", "text/xml", XFDF.as_bytes().to_vec()),
        (
            "xfdf",
            "application/x-www-form-urlencoded",
            XFDF.as_bytes().to_vec(),
        ),
        ("pdf", "application/octet-stream", pdf.clone()),
        ("pdf", "application/x-www-form-urlencoded", pdf.clone()),
    ];
    for (format, ct, body) in cases {
        let answer = post(&server, "contact", ct, Some("application/json"), body);
        let id = json_id(&answer);
        let (s, json, files) = submission(&server, &id);
        assert_eq!(json["source"], format, "{format} as {ct}");
        check_fields(&s, format);
        if format == "pdf" {
            assert_eq!(files, vec![pdf.clone()]);
        }
    }
    // Labeled as the wrong member of the family: still an FDF answer, read as what it is.
    for (format, ct, body) in [
        ("xfdf", "application/vnd.fdf", XFDF.as_bytes().to_vec()),
        ("fdf", "application/pdf", FDF.to_vec()),
        ("pdf", "application/vnd.adobe.xfdf", pdf.clone()),
    ] {
        let answer = post(&server, "contact", ct, None, body);
        let id = accepted_fdf(&answer, ct);
        let (s, json, _) = submission(&server, &id);
        assert_eq!(json["source"], format, "{format} as {ct}");
        check_fields(&s, format);
    }
    // Mislabeled as a browser's type, with no Accept: answered as Acrobat expects, with an FDF.
    for (format, ct, body) in [
        ("fdf", "application/x-www-form-urlencoded", FDF.to_vec()),
        ("pdf", "application/octet-stream", pdf.clone()),
    ] {
        let answer = post(&server, "contact", ct, None, body);
        let id = accepted_fdf(&answer, ct);
        let (_, json, _) = submission(&server, &id);
        assert_eq!(json["source"], format, "{format} as {ct}");
    }
    // A body that is none of them, labeled as a PDF: refused as a PDF.
    let answer = post(
        &server,
        "contact",
        "application/pdf",
        None,
        b"a=1&b=2".to_vec(),
    );
    refused_fdf(&answer, 400, "pdf_malformed", 10);
}

#[test]
fn answers_to_acrobat_for_unknown_forms_and_forms_without_fields() {
    let server = Server::with_config(&config(
        "",
        &[("contact", ""), ("strict", "required = [\"email\"]")],
    ));
    let answer = post(&server, "nope", "application/vnd.fdf", None, FDF.to_vec());
    refused_fdf(&answer, 404, "unknown_form", 10);
    // A PDF with no AcroForm: 422, with a hint Acrobat shows the user.
    let mut doc = lopdf::Document::with_version("1.7");
    let pages = doc.add_object(
        lopdf::dictionary! {"Type" => "Pages", "Kids" => Vec::<lopdf::Object>::new(), "Count" => 0},
    );
    let catalog = doc.add_object(lopdf::dictionary! {"Type" => "Catalog", "Pages" => pages});
    doc.trailer.set("Root", catalog);
    let mut plain = Vec::new();
    doc.save_to(&mut plain).unwrap();
    let answer = post(&server, "contact", "application/pdf", None, plain);
    refused_fdf(&answer, 422, "no_acroform", 10);
    // The form's own rules apply to PDF posts: a missing required field is a 422 FDF answer.
    let fdf = b"%FDF-1.2\n1 0 obj\n<< /FDF << /Fields [ << /T (name) /V (x) >> ] >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
    let answer = post(&server, "strict", "application/vnd.fdf", None, fdf.to_vec());
    refused_fdf(&answer, 422, "required_field_missing", 10);
    // A non-ASCII message travels as UTF-16BE.
    assert!(fdf_status(&answer.body).contains("\u{201c}email\u{201d}"));
    // An FDF whose values are all absent is accepted with no fields.
    let empty = b"%FDF-1.2\n1 0 obj\n<< /FDF << /Fields [ << /T (submit) >> ] >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
    let answer = post(
        &server,
        "contact",
        "application/vnd.fdf",
        None,
        empty.to_vec(),
    );
    let id = accepted_fdf(&answer, "empty fdf");
    let (_, json, _) = submission(&server, &id);
    assert_eq!(json["fields"], json!({}));
}
