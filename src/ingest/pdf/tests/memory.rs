//! Issue 15, item 2: what one parse may hold. lopdf keeps every value in 120 bytes or more, so
//! a body of bare values (13 MB of one array of zeros took 1.6 GB) is refused before it loads,
//! and a whole PDF keeps only what its form is read from.

use super::*;

/// A PDF with an empty form and top-level arrays of `n` zeros each.
fn arrays_of_zeros(arrays: &[usize]) -> Vec<u8> {
    let mut body =
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /AcroForm << /Fields [] >> >>\nendobj\n".to_vec();
    for (k, n) in arrays.iter().enumerate() {
        body.extend_from_slice(format!("{} 0 obj\n[", k + 2).as_bytes());
        body.extend(std::iter::repeat_n(*b"0 ", *n).flatten());
        body.extend_from_slice(b"]\nendobj\n");
    }
    body.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    body
}

#[test]
fn an_object_of_too_many_values_is_refused_before_it_loads() {
    let body = arrays_of_zeros(&[300_000]);
    let got = parse_pdf(&body, &PdfLimits::default());
    assert_eq!(got, Err(PdfFormError::TooManyObjects));
    let answered = crate::error::ClientError::from(PdfFormError::TooManyObjects);
    assert_eq!(answered.status.as_u16(), 413);
}

#[test]
fn too_many_kept_values_over_many_objects_are_refused() {
    let body = arrays_of_zeros(&[200_000, 200_000, 200_000]);
    let got = parse_pdf(&body, &PdfLimits::default());
    assert_eq!(got, Err(PdfFormError::TooManyObjects));
    // Values under entries the form is not read from are not kept.
    let mut widths =
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /AcroForm << /Fields [] >> >>\nendobj\n".to_vec();
    for k in 0..3 {
        widths.extend_from_slice(format!("{} 0 obj\n<< /W [", k + 2).as_bytes());
        widths.extend(std::iter::repeat_n(*b"0 ", 200_000).flatten());
        widths.extend_from_slice(b"] >>\nendobj\n");
    }
    widths.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    // What is checked is what is kept, not speed: an unoptimized build on a busy machine may
    // take longer than the default parse time to read 600,000 values.
    let patient = PdfLimits {
        max_parse_time: std::time::Duration::from_secs(120),
        ..PdfLimits::default()
    };
    assert_eq!(
        json(&parse_pdf(&widths, &patient).unwrap()),
        serde_json::json!({})
    );
}
