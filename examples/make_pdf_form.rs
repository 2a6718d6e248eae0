//! Writes a fillable PDF form whose Submit button posts to a SecureForm form.
//!
//! ```text
//! cargo run --release --example make_pdf_form -- OUT.pdf [URL] [fdf|xfdf|pdf|html]
//! ```
//! URL defaults to `http://127.0.0.1:8080/f/contact`, the format to `fdf`. Open OUT.pdf in
//! Acrobat Reader, fill it in and press Submit: Reader posts the fields to URL and shows the
//! `/Status` of SecureForm's FDF answer. See `examples/PDF_FORMS.md`.
//!
//! The Submit button's SubmitForm action (ISO 32000-1, 12.7.5.2) picks the body with its flags
//! (table 237): FDF is the default (no format bit), XFDF is bit 6 (32), the whole PDF bit 9
//! (256), Acrobat's HTML format bit 3 (4, ExportFormat, sent as a POST). For FDF we also set
//! ExclFKey (bit 12, 2048) so that Reader does not send the PDF's own file path in `/F`.

use std::error::Error;

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream, StringFormat};

/// Field flags (ISO 32000-1, tables 226, 228, 230).
const MULTILINE: i64 = 1 << 12;
const NO_TOGGLE_TO_OFF: i64 = 1 << 14;
const RADIO: i64 = 1 << 15;
const PUSHBUTTON: i64 = 1 << 16;
const COMBO: i64 = 1 << 17;
const MULTISELECT: i64 = 1 << 21;

/// SubmitForm flags (ISO 32000-1, table 237).
fn submit_flags(format: &str) -> Result<i64, Box<dyn Error>> {
    Ok(match format {
        "fdf" => 1 << 11, // ExclFKey
        "xfdf" => 1 << 5, // XFDF
        "pdf" => 1 << 8,  // SubmitPDF
        "html" => 1 << 2, // ExportFormat (POST)
        other => return Err(format!("unknown format {other:?}: fdf, xfdf, pdf or html").into()),
    })
}

fn text(s: &str) -> Object {
    Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
}

fn rect(x: f32, y: f32, w: f32, h: f32) -> Object {
    vec![x.into(), y.into(), (x + w).into(), (y + h).into()].into()
}

/// An appearance stream: a frame, and when `on`, a filled mark.
fn appearance(doc: &mut Document, w: f32, h: f32, on: bool) -> ObjectId {
    let mut ops = vec![
        Operation::new("G", vec![0.into()]),
        Operation::new(
            "re",
            vec![0.5.into(), 0.5.into(), (w - 1.0).into(), (h - 1.0).into()],
        ),
        Operation::new("S", vec![]),
    ];
    if on {
        ops.push(Operation::new(
            "re",
            vec![3.into(), 3.into(), (w - 6.0).into(), (h - 6.0).into()],
        ));
        ops.push(Operation::new("f", vec![]));
    }
    let content = Content { operations: ops }.encode().unwrap_or_default();
    let dict = dictionary! {"Type" => "XObject", "Subtype" => "Form",
    "BBox" => vec![0.into(), 0.into(), w.into(), h.into()]};
    doc.add_object(Stream::new(dict, content))
}

/// Adds a field (merged with its widget) on `page`, returns its id.
fn field(doc: &mut Document, page: ObjectId, mut d: Dictionary, r: Object) -> ObjectId {
    d.set("Type", "Annot");
    d.set("Subtype", "Widget");
    d.set("P", page);
    d.set("Rect", r);
    d.set("F", 4); // Print
    if !d.has(b"MK") {
        d.set(
            "MK",
            dictionary! {"BC" => vec![0.4.into()], "BG" => vec![1.into()]},
        );
    }
    d.set("BS", dictionary! {"W" => 1, "S" => "S"});
    d.set("DA", text("/Helv 10 Tf 0 g"));
    doc.add_object(d)
}

/// A checkbox or radio widget with the on state `state`.
fn toggle(
    doc: &mut Document,
    page: ObjectId,
    mut d: Dictionary,
    r: Object,
    state: &str,
) -> ObjectId {
    let (on, off) = (
        appearance(doc, 12.0, 12.0, true),
        appearance(doc, 12.0, 12.0, false),
    );
    let mut n = Dictionary::new();
    n.set(state.as_bytes().to_vec(), on);
    n.set("Off", off);
    d.set("AP", dictionary! {"N" => n});
    d.set("AS", "Off");
    d.set(
        "MK",
        dictionary! {"BC" => vec![0.into()], "BG" => vec![1.into()]},
    );
    field(doc, page, d, r)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .ok_or("usage: make_pdf_form OUT.pdf [URL] [fdf|xfdf|pdf|html]")?;
    let url = args
        .get(1)
        .map_or("http://127.0.0.1:8080/f/contact", String::as_str);
    let flags = submit_flags(args.get(2).map_or("fdf", String::as_str))?;

    let mut doc = Document::with_version("1.7");
    let pages = doc.new_object_id();
    let font = doc.add_object(dictionary! {"Type" => "Font", "Subtype" => "Type1",
    "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding"});
    let labels = [
        (50, 740, "SecureForm contact form"),
        (50, 700, "Name"),
        (50, 670, "Email"),
        (50, 640, "Message"),
        (50, 570, "Subscribe to the newsletter"),
        (50, 540, "Contact me by"),
        (218, 540, "email"),
        (298, 540, "phone"),
        (50, 510, "Country"),
        (50, 480, "Topics (Ctrl-click for several)"),
    ];
    let mut ops = vec![Operation::new("BT", vec![])];
    for (x, y, label) in labels {
        ops.push(Operation::new("Tf", vec!["F1".into(), 11.into()]));
        ops.push(Operation::new(
            "Tm",
            vec![1.into(), 0.into(), 0.into(), 1.into(), x.into(), y.into()],
        ));
        ops.push(Operation::new("Tj", vec![text(label)]));
    }
    ops.push(Operation::new("ET", vec![]));
    let content = doc.add_object(Stream::new(
        Dictionary::new(),
        Content { operations: ops }.encode()?,
    ));
    let page = doc.add_object(dictionary! {"Type" => "Page", "Parent" => pages,
    "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()], "Contents" => content,
    "Resources" => dictionary! {"Font" => dictionary! {"F1" => font}}});

    let mut fields = Vec::new();
    let tx = |name: &str| dictionary! {"FT" => "Tx", "T" => text(name)};
    fields.push(field(
        &mut doc,
        page,
        tx("name"),
        rect(200.0, 695.0, 300.0, 18.0),
    ));
    fields.push(field(
        &mut doc,
        page,
        tx("email"),
        rect(200.0, 665.0, 300.0, 18.0),
    ));
    let mut message = tx("message");
    message.set("Ff", MULTILINE);
    fields.push(field(
        &mut doc,
        page,
        message,
        rect(200.0, 590.0, 300.0, 66.0),
    ));
    let subscribe = dictionary! {"FT" => "Btn", "T" => text("subscribe")};
    fields.push(toggle(
        &mut doc,
        page,
        subscribe,
        rect(200.0, 567.0, 12.0, 12.0),
        "Yes",
    ));

    // A radio group: the field holds the value, each widget one state.
    let radio = doc.new_object_id();
    let mut kids = Vec::new();
    for (x, state) in [(200.0, "email"), (280.0, "phone")] {
        let w = dictionary! {"Parent" => radio};
        kids.push(Object::from(toggle(
            &mut doc,
            page,
            w,
            rect(x, 537.0, 12.0, 12.0),
            state,
        )));
    }
    doc.objects.insert(
        radio,
        Object::Dictionary(dictionary! {"FT" => "Btn",
        "Ff" => RADIO | NO_TOGGLE_TO_OFF, "T" => text("contact"), "Kids" => kids}),
    );
    fields.push(radio);

    let options = |items: &[&str]| Object::Array(items.iter().map(|s| text(s)).collect());
    let country = dictionary! {"FT" => "Ch", "Ff" => COMBO, "T" => text("country"),
    "Opt" => options(&["Germany", "France", "Switzerland", "Other"])};
    fields.push(field(
        &mut doc,
        page,
        country,
        rect(200.0, 505.0, 150.0, 18.0),
    ));
    let topics = dictionary! {"FT" => "Ch", "Ff" => MULTISELECT, "T" => text("topics"),
    "Opt" => options(&["billing", "support", "sales"])};
    fields.push(field(
        &mut doc,
        page,
        topics,
        rect(200.0, 430.0, 150.0, 60.0),
    ));

    // The Submit button: a pushbutton whose action posts the form to `url`.
    let label = Content {
        operations: vec![
            Operation::new("g", vec![0.85.into()]),
            Operation::new("re", vec![0.into(), 0.into(), 80.into(), 22.into()]),
            Operation::new("f", vec![]),
            Operation::new("BT", vec![]),
            Operation::new("g", vec![0.into()]),
            Operation::new("Tf", vec!["Helv".into(), 11.into()]),
            Operation::new("Td", vec![20.into(), 7.into()]),
            Operation::new("Tj", vec![text("Submit")]),
            Operation::new("ET", vec![]),
        ],
    };
    let look = doc.add_object(Stream::new(
        dictionary! {"Type" => "XObject", "Subtype" => "Form",
        "BBox" => vec![0.into(), 0.into(), 80.into(), 22.into()],
        "Resources" => dictionary! {"Font" => dictionary! {"Helv" => font}}},
        label.encode()?,
    ));
    let submit = dictionary! {"FT" => "Btn", "Ff" => PUSHBUTTON, "T" => text("submit"),
    "MK" => dictionary! {"CA" => text("Submit"), "BG" => vec![0.85.into()]},
    "AP" => dictionary! {"N" => look},
    "A" => dictionary! {"Type" => "Action", "S" => "SubmitForm",
        "F" => dictionary! {"FS" => "URL", "F" => text(url)}, "Flags" => flags}};
    fields.push(field(
        &mut doc,
        page,
        submit,
        rect(200.0, 380.0, 80.0, 22.0),
    ));

    let annots: Vec<Object> = fields
        .iter()
        .filter(|id| **id != radio)
        .map(|id| Object::from(*id))
        .chain(kids_of(&doc, radio))
        .collect();
    if let Ok(Object::Dictionary(p)) = doc.get_object_mut(page) {
        p.set("Annots", annots);
    }
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {"Type" => "Pages",
        "Kids" => vec![page.into()], "Count" => 1}),
    );
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages,
    "AcroForm" => dictionary! {
        "Fields" => fields.iter().map(|id| Object::from(*id)).collect::<Vec<_>>(),
        "NeedAppearances" => true,
        "DA" => text("/Helv 10 Tf 0 g"),
        "DR" => dictionary! {"Font" => dictionary! {"Helv" => font}},
    }});
    doc.trailer.set("Root", catalog);
    doc.save(out)?;
    println!("wrote {out}: Submit posts to {url}");
    Ok(())
}

/// The widget kids of a field.
fn kids_of(doc: &Document, field: ObjectId) -> Vec<Object> {
    match doc.get_dictionary(field).and_then(|d| d.get(b"Kids")) {
        Ok(Object::Array(kids)) => kids.clone(),
        _ => Vec::new(),
    }
}
