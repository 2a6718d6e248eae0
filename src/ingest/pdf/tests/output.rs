//! What a parse produces is bounded as it is produced: names as they are joined, values before
//! they are decoded, every value counted, and all of them together (so one string shared by
//! many fields is not copied without bound); invalid UTF-16 is kept and reported.

use lopdf::{dictionary, Document, Object, StringFormat};

use super::super::fixtures::pdf_with;
use super::super::*;
use crate::ingest::bounded::{IngestWarning, OutputError, OutputLimits};

fn limits(output: OutputLimits) -> PdfLimits {
    PdfLimits {
        output,
        ..PdfLimits::default()
    }
}

fn small_total() -> PdfLimits {
    limits(OutputLimits {
        max_values: 100_000,
        max_name_bytes: 256,
        max_value_bytes: 64 * 1024,
        max_total_bytes: 1024 * 1024,
    })
}

/// An FDF whose fields are `(name, value)`; `shared` is added as object 1 for values to use.
fn fdf(shared: Object, fields: impl FnOnce(Object) -> Vec<Object>) -> Vec<u8> {
    let mut doc = Document::with_version("1.2");
    let shared = Object::Reference(doc.add_object(shared));
    let list = fields(shared);
    let root = doc.add_object(dictionary! {"FDF" => dictionary! {"Fields" => list}});
    doc.trailer.set("Root", root);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    let at = out.windows(5).position(|w| w == b"%PDF-").unwrap();
    out[at..at + 5].copy_from_slice(b"%FDF-");
    out
}

fn text(i: usize, v: Object) -> Object {
    Object::Dictionary(
        dictionary! {"FT" => "Tx", "T" => Object::string_literal(format!("f{i}")), "V" => v},
    )
}

#[test]
fn a_string_shared_by_many_fields_stops_at_the_total() {
    let big = Object::String(vec![b'v'; 60_000], StringFormat::Literal);
    let body = fdf(big.clone(), |s| {
        (0..100).map(|i| text(i, s.clone())).collect()
    });
    assert_eq!(
        parse_fdf(&body, &small_total()),
        Err(PdfFormError::Output(OutputError::TotalTooLarge(
            1024 * 1024
        )))
    );
    // The same within a PDF's AcroForm, and inside one field's list.
    let pdf = pdf_with(|doc, _| {
        let s = Object::Reference(doc.add_object(big.clone()));
        (0..100).map(|i| text(i, s.clone())).collect()
    });
    assert_eq!(
        parse_pdf(&pdf, &small_total()).unwrap_err().code(),
        "fields_too_large"
    );
    let list = fdf(big, |s| vec![text(0, Object::Array(vec![s; 100]))]);
    assert_eq!(
        parse_fdf(&list, &small_total()).unwrap_err().code(),
        "fields_too_large"
    );
    // Under the total, it is read.
    let few = fdf(Object::string_literal("x"), |s| {
        (0..100).map(|i| text(i, s.clone())).collect()
    });
    assert_eq!(parse_fdf(&few, &small_total()).unwrap().len(), 100);
}

#[test]
fn values_are_measured_before_they_are_decoded() {
    let tight = limits(OutputLimits {
        max_value_bytes: 10,
        ..OutputLimits::default()
    });
    let body = fdf(Object::string_literal("x".repeat(11)), |s| vec![text(0, s)]);
    assert_eq!(
        parse_fdf(&body, &tight).unwrap_err().code(),
        "field_too_large"
    );
    let ok = fdf(Object::string_literal("x".repeat(10)), |s| vec![text(0, s)]);
    assert!(parse_fdf(&ok, &tight).is_ok());
}

#[test]
fn fully_qualified_names_are_bounded_as_they_are_joined() {
    let tight = limits(OutputLimits {
        max_name_bytes: 20,
        ..OutputLimits::default()
    });
    // Three levels of 8 bytes: "aaaaaaaa.bbbbbbbb" fits, "….cccccccc" (26 bytes) does not.
    let nested = |depth: usize| {
        fdf(Object::string_literal("v"), |s| {
            let mut node = dictionary! {"T" => Object::string_literal("cccccccc"), "V" => s};
            for name in ["bbbbbbbb", "aaaaaaaa"].iter().take(depth) {
                node = dictionary! {"T" => Object::string_literal(*name), "Kids" => vec![Object::Dictionary(node)]};
            }
            vec![Object::Dictionary(node)]
        })
    };
    assert_eq!(parse_fdf(&nested(1), &tight).unwrap().len(), 1);
    assert_eq!(
        parse_fdf(&nested(2), &tight).unwrap_err().code(),
        "field_name_too_large"
    );
    // A long /T is refused before it is decoded, in PDFs too.
    let long = pdf_with(|_, _| vec![text(0, Object::string_literal("v"))]);
    assert!(parse_pdf(&long, &tight).is_ok());
    let pdf = pdf_with(|_, _| {
        vec![Object::Dictionary(dictionary! {"FT" => "Tx",
        "T" => Object::string_literal("n".repeat(300)), "V" => Object::string_literal("v")})]
    });
    assert_eq!(
        parse_pdf(&pdf, &PdfLimits::default()).unwrap_err().code(),
        "field_name_too_large"
    );
}

#[test]
fn xfdf_names_are_bounded_before_children_copy_them() {
    let parent = "p".repeat(1000);
    let children: String = (0..300)
        .map(|i| format!("<field name=\"c{i}\"><value>x</value></field>"))
        .collect();
    let body = format!(
        "<xfdf xmlns=\"http://ns.adobe.com/xfdf/\"><fields><field name=\"{parent}\">{children}</field></fields></xfdf>"
    );
    assert_eq!(
        parse_xfdf(body.as_bytes(), &PdfLimits::default()).unwrap_err(),
        PdfFormError::Output(OutputError::NameTooLarge(256))
    );
    let values: String = (0..20).map(|_| "<value>x</value>").collect();
    let body = format!(
        "<xfdf xmlns=\"http://ns.adobe.com/xfdf/\"><fields><field name=\"a\">{values}</field></fields></xfdf>"
    );
    let tight = limits(OutputLimits {
        max_values: 19,
        ..OutputLimits::default()
    });
    assert_eq!(
        parse_xfdf(body.as_bytes(), &tight).unwrap_err().code(),
        "too_many_fields"
    );
}

#[test]
fn invalid_utf16_is_kept_and_reported() {
    let lone = Object::String(
        vec![0xFE, 0xFF, 0x00, b'A', 0xDC, 0x00, 0x00, b'B'],
        StringFormat::Hexadecimal,
    );
    let body = fdf(lone.clone(), |s| vec![text(0, s)]);
    let read = read_fdf(&body, &PdfLimits::default()).unwrap();
    assert_eq!(read.warnings, [IngestWarning::InvalidText]);
    assert_eq!(
        read.fields.get("f0").map(|v| v.to_text()).as_deref(),
        Some("A\u{FFFD}B")
    );
    let pdf = pdf_with(|_, _| vec![text(0, lone)]);
    let read = read_pdf(&pdf, &PdfLimits::default()).unwrap();
    assert_eq!(read.warnings, [IngestWarning::InvalidText]);
    let fine = fdf(Object::string_literal("ok"), |s| vec![text(0, s)]);
    assert!(read_fdf(&fine, &PdfLimits::default())
        .unwrap()
        .warnings
        .is_empty());
}
