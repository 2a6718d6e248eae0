//! Test fixtures of the project's own making: PDFs with AcroForms built with lopdf, and
//! hand-written FDF and XFDF bodies.

use std::io::Write;

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream, StringFormat};

/// A PDF text string in UTF-16BE with BOM.
pub(crate) fn utf16(s: &str) -> Object {
    let mut b = vec![0xFE, 0xFF];
    b.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
    Object::String(b, StringFormat::Hexadecimal)
}

/// A PDF literal string of raw bytes (PDFDocEncoding when not ASCII).
pub(crate) fn lit(b: &[u8]) -> Object {
    Object::String(b.to_vec(), StringFormat::Literal)
}

pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A widget annotation on `page` with the appearance states `states`.
fn widget(
    doc: &mut Document,
    page: ObjectId,
    parent: Option<ObjectId>,
    states: &[&str],
) -> Dictionary {
    let mut d = dictionary! {
        "Type" => "Annot", "Subtype" => "Widget", "P" => page,
        "Rect" => vec![0.into(), 0.into(), 10.into(), 10.into()],
    };
    if let Some(p) = parent {
        d.set("Parent", p);
    }
    if !states.is_empty() {
        let appearance = doc.add_object(Stream::new(
            dictionary! {"Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), 10.into(), 10.into()]},
            Vec::new(),
        ));
        let mut n = Dictionary::new();
        for s in states {
            n.set(s.as_bytes().to_vec(), appearance);
        }
        d.set("AP", dictionary! {"N" => n});
    }
    d
}

/// An empty one-page document: the document, its page tree and its page.
fn one_page_document() -> (Document, ObjectId, ObjectId) {
    let mut doc = Document::with_version("1.7");
    let pages = doc.new_object_id();
    let page = doc.add_object(dictionary! {"Type" => "Page", "Parent" => pages,
    "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()]});
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
        "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1}),
    );
    (doc, pages, page)
}

/// Builds a PDF whose AcroForm holds `fields` (the callback adds them and returns the roots).
pub(crate) fn pdf_with(build: impl FnOnce(&mut Document, ObjectId) -> Vec<Object>) -> Vec<u8> {
    let (mut doc, pages, page) = one_page_document();
    let fields = build(&mut doc, page);
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages,
    "AcroForm" => dictionary! {"Fields" => fields, "NeedAppearances" => true}});
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// A form with every field type: the fixture of [`expected_form_fields`].
pub(crate) fn every_field_type_pdf() -> Vec<u8> {
    pdf_with(|doc, page| {
        let mut roots: Vec<Object> = Vec::new();
        let add = |doc: &mut Document, mut d: Dictionary, states: &[&str]| {
            let w = widget(doc, page, None, states);
            for (k, v) in w {
                d.set(k, v);
            }
            doc.add_object(d)
        };
        let mut ids = Vec::new();
        // Text in PDFDocEncoding (ë is 0xEB, ’ is 0x90).
        ids.push(add(
            doc,
            dictionary! {"FT" => "Tx", "T" => lit(b"name"), "V" => lit(b"Zo\xEB O\x90Brien")},
            &[],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Tx", "Ff" => 4096, "T" => lit(b"message"),
            "V" => lit(b"line one\rline two")},
            &[],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Tx", "T" => lit(b"empty"), "V" => lit(b"")},
            &[],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Tx", "T" => lit(b"never_filled")},
            &[],
        ));
        let long = doc.add_object(Stream::new(
            dictionary! {"Filter" => "FlateDecode"},
            zlib(b"\xEF\xBB\xBFlong \xE2\x9C\x93 text"),
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Tx", "T" => lit(b"long"), "V" => long},
            &[],
        ));
        // Checkbox with an export value through /Opt; a toggled-off box; an untouched box.
        ids.push(add(
            doc,
            dictionary! {"FT" => "Btn", "T" => lit(b"agree"), "V" => "0", "AS" => "0",
            "Opt" => vec![utf16("I agree ✓")]},
            &["0", "Off"],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Btn", "T" => lit(b"newsletter"), "V" => "Off", "AS" => "Off"},
            &["Yes", "Off"],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Btn", "T" => lit(b"untouched"), "AS" => "Off"},
            &["Yes", "Off"],
        ));
        // A radio group: the field holds the value, its two widgets the states.
        let radio = doc.new_object_id();
        let w = widget(doc, page, Some(radio), &["email", "Off"]);
        let email = doc.add_object(w);
        let w = widget(doc, page, Some(radio), &["phone", "Off"]);
        let phone = doc.add_object(w);
        doc.objects.insert(radio, Object::Dictionary(dictionary! {"FT" => "Btn",
            "Ff" => (1 << 15) | (1 << 14), "T" => lit(b"contact"), "V" => Object::Name("Téléphone".as_bytes().to_vec()),
            "Kids" => vec![email.into(), phone.into()]}));
        ids.push(radio);
        // An unset radio group.
        let radio2 = doc.new_object_id();
        let w = widget(doc, page, Some(radio2), &["a", "Off"]);
        let a = doc.add_object(w);
        doc.objects.insert(
            radio2,
            Object::Dictionary(dictionary! {"FT" => "Btn",
            "Ff" => 1 << 15, "T" => lit(b"unset_radio"), "Kids" => vec![a.into()]}),
        );
        ids.push(radio2);
        ids.push(add(
            doc,
            dictionary! {"FT" => "Ch", "Ff" => 1 << 17, "T" => lit(b"country"),
            "Opt" => vec![lit(b"Deutschland"), lit(b"France")], "V" => lit(b"Deutschland")},
            &[],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Ch", "Ff" => 1 << 21, "T" => lit(b"topics"),
            "Opt" => vec![lit(b"billing"), lit(b"support"), lit(b"sales")],
            "V" => vec![lit(b"billing"), lit(b"support")]},
            &[],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Ch", "Ff" => 1 << 21, "T" => lit(b"one_topic"),
            "Opt" => vec![lit(b"billing"), lit(b"support")], "V" => lit(b"support")},
            &[],
        ));
        // Hierarchy: address.city (UTF-16BE value) and address.zip, FT inherited.
        let address = doc.new_object_id();
        let city = doc.add_object(
            dictionary! {"T" => lit(b"city"), "Parent" => address, "V" => utf16("Zürich")},
        );
        let zip = doc
            .add_object(dictionary! {"T" => lit(b"zip"), "Parent" => address, "V" => lit(b"8001")});
        doc.objects.insert(
            address,
            Object::Dictionary(dictionary! {"FT" => "Tx", "T" => lit(b"address"),
            "Kids" => vec![city.into(), zip.into()]}),
        );
        ids.push(address);
        // A non-ASCII name and value, both UTF-16BE.
        ids.push(add(
            doc,
            dictionary! {"FT" => "Tx", "T" => utf16("Straße ☃"), "V" => utf16("Grüße 😀")},
            &[],
        ));
        // Omitted: a pushbutton (the submit button) and a signature.
        ids.push(add(
            doc,
            dictionary! {"FT" => "Btn", "Ff" => 1 << 16, "T" => lit(b"submit")},
            &[],
        ));
        ids.push(add(
            doc,
            dictionary! {"FT" => "Sig", "T" => lit(b"signature"),
            "V" => dictionary! {"Type" => "Sig"}},
            &[],
        ));
        roots.extend(ids.into_iter().map(Object::from));
        roots
    })
}

/// What [`every_field_type_pdf`] must yield, in order, as JSON.
pub(crate) fn expected_form_fields() -> serde_json::Value {
    serde_json::json!({
        "name": "Zoë O’Brien",
        "message": "line one\rline two",
        "empty": "",
        "long": "long ✓ text",
        "agree": "I agree ✓",
        "newsletter": "Off",
        "contact": "Téléphone",
        "country": "Deutschland",
        "topics": ["billing", "support"],
        "one_topic": ["support"],
        "address.city": "Zürich",
        "address.zip": "8001",
        "Straße ☃": "Grüße 😀"
    })
}

/// An FDF as Acrobat submits it, with the same content as [`every_field_type_pdf`] where FDF
/// can carry it (FDF has no field flags, so a one-item multi-select is one value).
pub(crate) const FDF: &[u8] = b"%FDF-1.2\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /FDF << /Fields [\n\
<< /T (name) /V (Zo\xEB O\\220Brien) >>\n\
<< /T (message) /V (line one\\rline two) >>\n\
<< /T (empty) /V () >>\n\
<< /T (long) /V 2 0 R >>\n\
<< /T (agree) /V /I#20agree >>\n\
<< /T (newsletter) /V /Off >>\n\
<< /T (contact) /V /T#C3#A9l#C3#A9phone >>\n\
<< /T (country) /V (Deutschland) >>\n\
<< /T (topics) /V [(billing) (support)] >>\n\
<< /T (address) /Kids [ << /T (city) /V <FEFF005A00FC0072006900630068> >> << /T (zip) /V (8001) >> ] >>\n\
<< /T <FEFF005300740072006100DF006500202603> /V (\\376\\377\\000G\\000r\\000\\374\\000\\337\\000e) >>\n\
<< /T (submit) >>\n\
] /F (http://example.com/form.pdf) /ID [<01> <02>] >> >>\nendobj\n\
2 0 obj\n<< /Length 16 >>\nstream\n\xEF\xBB\xBFlong \xE2\x9C\x93 text\nendstream\nendobj\n\
trailer\n<< /Root 1 0 R >>\n%%EOF\n";

/// An XFDF as Acrobat submits it.
pub(crate) const XFDF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xfdf xmlns="http://ns.adobe.com/xfdf/" xml:space="preserve">
  <f href="form.pdf"/>
  <fields>
    <field name="name"><value>Zoë O’Brien</value></field>
    <field name="message"><value>line one&#13;line two</value></field>
    <field name="empty"><value></value></field>
    <field name="notes"><value-richtext><body xmlns="http://www.w3.org/1999/xhtml"><p>Bold <b>move</b></p><p>Next</p></body></value-richtext></field>
    <field name="agree"><value>I agree ✓</value></field>
    <field name="topics"><value>billing</value><value>support</value></field>
    <field name="address">
      <field name="city"><value>Zürich</value></field>
      <field name="zip"><value>8001</value></field>
    </field>
    <field name="Straße ☃"><value>Grüße 😀</value></field>
    <field name="submit"/>
  </fields>
  <ids original="01" modified="02"/>
</xfdf>
"#;

/// The `datasets` packet of a filled XFA form: two pages, a repeated row, a rich-text value,
/// an empty (never filled) field and an empty data group.
pub(crate) const XFA_DATASETS: &str = r#"<xfa:datasets xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/">
<xfa:data>
<form1>
  <page1><name>Zoë Zürich</name><email>zoe@example.com</email><phone/></page1>
  <page2>
    <item><qty>1</qty><what>pen</what></item>
    <item><qty>2</qty><what>ink</what></item>
    <note xfa:contentType="text/html"><body xmlns="http://www.w3.org/1999/xhtml"><p>rich <b>text</b></p></body></note>
    <extra xfa:dataNode="dataGroup"/>
  </page2>
</form1>
</xfa:data>
</xfa:datasets>"#;

/// A dynamic XFA form (`/Fields []`) whose data is [`XFA_DATASETS`]: `/XFA` as an array of
/// (name, stream) packets when `packets`, else as one stream holding the whole XDP.
pub(crate) fn xfa_only_pdf(datasets: &str, packets: bool) -> Vec<u8> {
    let template = r#"<template xmlns="http://www.xfa.org/schema/xfa-template/3.3/"><subform name="form1"/></template>"#;
    let (mut doc, pages, _page) = one_page_document();
    let stream = |doc: &mut Document, text: &str| -> Object {
        let mut s = Stream::new(
            dictionary! {"Filter" => "FlateDecode"},
            zlib(text.as_bytes()),
        );
        s.allows_compression = false;
        doc.add_object(s).into()
    };
    let xfa = if packets {
        let open = r#"<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">"#;
        let parts = [
            ("preamble", stream(&mut doc, open)),
            ("template", stream(&mut doc, template)),
            ("datasets", stream(&mut doc, datasets)),
            ("postamble", stream(&mut doc, "</xdp:xdp>")),
        ];
        Object::Array(
            parts
                .into_iter()
                .flat_map(|(n, s)| [lit(n.as_bytes()), s])
                .collect(),
        )
    } else {
        let whole = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">{template}{datasets}</xdp:xdp>"#
        );
        stream(&mut doc, &whole)
    };
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages,
    "NeedsRendering" => true,
    "AcroForm" => dictionary! {"Fields" => Vec::<Object>::new(), "XFA" => xfa}});
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}
