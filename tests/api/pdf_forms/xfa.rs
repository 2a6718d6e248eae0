//! Issue 15, item 17: a filled XFA-only form posted as a whole PDF gives the values of its XFA
//! datasets, not an empty submission; one with nothing filled in is refused.

use lopdf::{dictionary, Document, Object, Stream};

use super::build::lit;
use super::*;

/// A dynamic XFA form: `/Fields []`, and `/XFA` as (name, stream) packets around `datasets`.
fn xfa_only_pdf(data: &str) -> Vec<u8> {
    let datasets = format!(
        r#"<xfa:datasets xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/"><xfa:data>{data}</xfa:data></xfa:datasets>"#
    );
    let mut doc = Document::with_version("1.7");
    let pages = doc.new_object_id();
    let page = doc.add_object(dictionary! {"Type" => "Page", "Parent" => pages,
    "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()]});
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
        "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1}),
    );
    let packets = [
        (
            "preamble",
            r#"<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">"#.to_owned(),
        ),
        ("datasets", datasets),
        ("postamble", "</xdp:xdp>".to_owned()),
    ];
    let mut xfa = Vec::new();
    for (name, text) in packets {
        let id = doc.add_object(Stream::new(dictionary! {}, text.into_bytes()));
        xfa.extend([lit(name.as_bytes()), id.into()]);
    }
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages,
    "AcroForm" => dictionary! {"Fields" => Vec::<Object>::new(), "XFA" => xfa}});
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn a_filled_xfa_only_form_gives_its_datasets_values() {
    let server = Server::with_config(&config("", &[("contact", "")]));
    let filled = xfa_only_pdf(
        "<form1><page1><name>Zoë</name><email>zoe@example.com</email><fax/></page1></form1>",
    );
    let answer = post(&server, "contact", "application/pdf", None, filled);
    let id = accepted_fdf(&answer, "a filled XFA-only form");
    let (_, json, _) = submission(&server, &id);
    assert_eq!(
        json["fields"],
        serde_json::json!({"form1.page1.name": "Zoë", "form1.page1.email": "zoe@example.com"})
    );
    let blank = xfa_only_pdf("<form1><page1><name/><email/></page1></form1>");
    let answer = post(&server, "contact", "application/pdf", None, blank);
    refused_fdf(&answer, 422, "xfa_only", 10);
}
