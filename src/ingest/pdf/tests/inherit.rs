//! Issue 15, item 18: which inherited `/V` a terminal field reports.

use lopdf::{dictionary, Document, Object, ObjectId};

use super::super::fixtures::{lit, pdf_with};
use super::*;

const RADIO: i64 = 1 << 15;

/// A kid field of `parent` on `page`, merged with its widget.
fn kid(doc: &mut Document, page: ObjectId, parent: ObjectId, mut d: lopdf::Dictionary) -> Object {
    d.set("Parent", parent);
    d.set("Type", "Annot");
    d.set("Subtype", "Widget");
    d.set("P", page);
    d.set("Rect", vec![0.into(), 0.into(), 10.into(), 10.into()]);
    doc.add_object(d).into()
}

/// A root `form1[0]` with `/V ()` (what form converters write) over text fields, a list, a
/// checkbox and a radio group that nobody filled, and one text field that was filled.
fn root_with_empty_value(root_ft: Option<&str>) -> Vec<u8> {
    pdf_with(|doc, page| {
        let root = doc.new_object_id();
        let mut kids = Vec::new();
        for i in 0..200 {
            kids.push(kid(
                doc,
                page,
                root,
                dictionary! {"FT" => "Tx", "T" => lit(format!("t{i}").as_bytes())},
            ));
        }
        kids.push(kid(
            doc,
            page,
            root,
            dictionary! {"FT" => "Ch", "T" => lit(b"list")},
        ));
        kids.push(kid(
            doc,
            page,
            root,
            dictionary! {"FT" => "Btn", "T" => lit(b"box")},
        ));
        let group = doc.new_object_id();
        let radios: Vec<Object> = (0..2)
            .map(|_| kid(doc, page, group, dictionary! {"AS" => "Off"}))
            .collect();
        doc.objects.insert(
            group,
            Object::Dictionary(
                dictionary! {"FT" => "Btn", "Ff" => RADIO, "T" => lit(b"choice"),
                "Parent" => root, "Kids" => radios},
            ),
        );
        kids.push(group.into());
        kids.push(kid(
            doc,
            page,
            root,
            dictionary! {"FT" => "Tx", "T" => lit(b"filled"), "V" => lit(b"yes")},
        ));
        let mut d = dictionary! {"T" => lit(b"form1[0]"), "V" => lit(b""), "Kids" => kids};
        if let Some(ft) = root_ft {
            d.set("FT", ft);
        }
        doc.objects.insert(root, Object::Dictionary(d));
        vec![root.into()]
    })
}

#[test]
fn an_inherited_empty_value_fills_no_untouched_field() {
    for ft in [None, Some("Tx")] {
        let fields = parse_pdf(&root_with_empty_value(ft), &PdfLimits::default()).unwrap();
        assert_eq!(
            json(&fields),
            serde_json::json!({"form1[0].filled": "yes"}),
            "root /FT {ft:?}"
        );
    }
}

#[test]
fn a_text_string_is_no_button_value() {
    let body = pdf_with(|doc, page| {
        let root = doc.new_object_id();
        let boxes = vec![
            kid(
                doc,
                page,
                root,
                dictionary! {"T" => lit(b"own_string"), "V" => lit(b"Yes")},
            ),
            kid(
                doc,
                page,
                root,
                dictionary! {"T" => lit(b"own_name"), "V" => "Yes"},
            ),
            kid(doc, page, root, dictionary! {"T" => lit(b"inherits")}),
        ];
        doc.objects.insert(
            root,
            Object::Dictionary(dictionary! {"FT" => "Btn", "T" => lit(b"boxes"),
            "V" => "Yes", "Kids" => boxes}),
        );
        vec![root.into()]
    });
    let fields = parse_pdf(&body, &PdfLimits::default()).unwrap();
    assert_eq!(json(&fields), serde_json::json!({"boxes.own_name": "Yes"}));
}

#[test]
fn a_filled_ancestor_still_gives_its_value_to_kids_without_their_own() {
    let body = pdf_with(|doc, page| {
        let root = doc.new_object_id();
        let kids = vec![
            kid(doc, page, root, dictionary! {"T" => lit(b"a")}),
            kid(
                doc,
                page,
                root,
                dictionary! {"T" => lit(b"b"), "V" => lit(b"")},
            ),
            kid(
                doc,
                page,
                root,
                dictionary! {"T" => lit(b"c"), "V" => lit(b"own")},
            ),
        ];
        doc.objects.insert(
            root,
            Object::Dictionary(dictionary! {"FT" => "Tx", "T" => lit(b"phone"),
            "V" => lit(b"555-0100"), "Kids" => kids}),
        );
        vec![root.into()]
    });
    let fields = parse_pdf(&body, &PdfLimits::default()).unwrap();
    assert_eq!(
        json(&fields),
        serde_json::json!({"phone.a": "555-0100", "phone.b": "", "phone.c": "own"})
    );
}
