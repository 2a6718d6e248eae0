//! Issue 15, item 17: XFA-only forms are read from their datasets packet.

use super::super::fixtures::{xfa_only_pdf, XFA_DATASETS};
use super::*;

fn expected() -> serde_json::Value {
    serde_json::json!({
        "form1.page1.name": "Zoë Zürich",
        "form1.page1.email": "zoe@example.com",
        "form1.page2.item[0].qty": "1",
        "form1.page2.item[0].what": "pen",
        "form1.page2.item[1].qty": "2",
        "form1.page2.item[1].what": "ink",
        "form1.page2.note": "rich text",
    })
}

#[test]
fn xfa_only_forms_give_the_datasets_values_by_data_path() {
    for packets in [true, false] {
        let body = xfa_only_pdf(XFA_DATASETS, packets);
        let fields = parse_pdf(&body, &PdfLimits::default()).unwrap();
        assert_eq!(json(&fields), expected(), "packets: {packets}");
        assert_eq!(keys(&fields)[0], "form1.page1.name");
    }
}

#[test]
fn xfa_only_forms_without_filled_data_or_with_a_dtd_are_refused() {
    let empty = r#"<xfa:datasets xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/"><xfa:data><form1><a/></form1></xfa:data></xfa:datasets>"#;
    let dtd = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xfa:datasets xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/"><xfa:data><a>&e;</a></xfa:data></xfa:datasets>"#;
    let cases = [
        (empty, PdfFormError::XfaOnly),
        ("<not xml", PdfFormError::XfaMalformed),
        (dtd, PdfFormError::XfaMalformed),
    ];
    for (datasets, want) in cases {
        let body = xfa_only_pdf(datasets, true);
        assert_eq!(
            parse_pdf(&body, &PdfLimits::default()),
            Err(want),
            "{datasets}"
        );
    }
    let limits = PdfLimits {
        max_fields: 3,
        ..PdfLimits::default()
    };
    let body = xfa_only_pdf(XFA_DATASETS, false);
    assert_eq!(parse_pdf(&body, &limits), Err(PdfFormError::TooManyFields));
}
