//! Fixtures of our own making: a filled-in form with every field type (built with lopdf), and
//! a flate bomb.

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream, StringFormat};

/// Field flags (ISO 32000-1, tables 226, 228, 230).
const MULTILINE: i64 = 1 << 12;
const NO_TOGGLE_TO_OFF: i64 = 1 << 14;
const RADIO: i64 = 1 << 15;
const PUSHBUTTON: i64 = 1 << 16;
const COMBO: i64 = 1 << 17;
const MULTISELECT: i64 = 1 << 21;

/// A PDF text string in UTF-16BE with BOM.
pub fn utf16(s: &str) -> Object {
    let mut b = vec![0xFE, 0xFF];
    b.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
    Object::String(b, StringFormat::Hexadecimal)
}

/// A PDF literal string of raw bytes (PDFDocEncoding when not ASCII).
pub fn lit(b: &[u8]) -> Object {
    Object::String(b.to_vec(), StringFormat::Literal)
}

/// Builds a one-page PDF whose AcroForm `/Fields` are what `build` returns.
pub fn pdf_with(build: impl FnOnce(&mut Document, ObjectId) -> Vec<Object>) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let pages = doc.new_object_id();
    let page = doc.add_object(dictionary! {"Type" => "Page", "Parent" => pages,
    "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()]});
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
        "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1}),
    );
    let fields = build(&mut doc, page);
    let catalog = doc.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages,
    "AcroForm" => dictionary! {"Fields" => fields, "NeedAppearances" => true}});
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

/// Makes `d` a widget on `page` too, with appearance states `states` (checkboxes, radios).
fn widget(doc: &mut Document, page: ObjectId, d: &mut Dictionary, states: &[&str]) {
    d.set("Type", "Annot");
    d.set("Subtype", "Widget");
    d.set("P", page);
    d.set("Rect", vec![0.into(), 0.into(), 12.into(), 12.into()]);
    if !states.is_empty() {
        let look = doc.add_object(Stream::new(
            dictionary! {"Type" => "XObject", "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), 12.into(), 12.into()]},
            Vec::new(),
        ));
        let mut n = Dictionary::new();
        for s in states {
            n.set(s.as_bytes().to_vec(), look);
        }
        d.set("AP", dictionary! {"N" => n});
    }
}

/// A field merged with its widget.
fn add(doc: &mut Document, page: ObjectId, mut d: Dictionary, states: &[&str]) -> Object {
    widget(doc, page, &mut d, states);
    doc.add_object(d).into()
}

/// A radio group: the field holds the value, each kid widget (no `/T`) one state.
fn radio(doc: &mut Document, page: ObjectId, mut d: Dictionary, states: &[&str]) -> Object {
    let id = doc.new_object_id();
    let kids: Vec<Object> = states
        .iter()
        .map(|s| {
            let mut w = dictionary! {"Parent" => id, "AS" => "Off"};
            widget(doc, page, &mut w, &[s, "Off"]);
            doc.add_object(w).into()
        })
        .collect();
    d.set("FT", "Btn");
    d.set("Kids", kids);
    doc.objects.insert(id, Object::Dictionary(d));
    id.into()
}

/// The form, filled in: text (PDFDocEncoding, UTF-16BE), multiline, an empty and a never-filled
/// text field, checkboxes (checked, toggled off, untouched, with an `/Opt` export value), radio
/// groups (set, set through `/Opt`, unset), a combo box, multi-select and single-select lists,
/// a three-level hierarchy with inherited `/FT`, non-ASCII names, a Submit button and a
/// signature field.
pub fn filled_form_pdf() -> Vec<u8> {
    pdf_with(|doc, page| {
        let name = |s: &str| Object::Name(s.as_bytes().to_vec());
        let opts =
            |items: &[&str]| Object::Array(items.iter().map(|s| lit(s.as_bytes())).collect());
        let mut f = vec![
            // ë is 0xEB and ’ is 0x90 in PDFDocEncoding.
            add(
                doc,
                page,
                dictionary! {"FT" => "Tx", "T" => lit(b"name"),
                "V" => lit(b"Zo\xEB O\x90Brien")},
                &[],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Tx", "T" => lit(b"email"),
                "V" => lit(b"zoe@example.com")},
                &[],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Tx", "Ff" => MULTILINE, "T" => lit(b"message"),
                "V" => lit(b"line one\rline two")},
                &[],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Tx", "T" => lit(b"comment"), "V" => lit(b"")},
                &[],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Tx", "T" => lit(b"never_filled")},
                &[],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Btn", "T" => lit(b"subscribe"), "V" => name("Yes"),
                "AS" => name("Yes")},
                &["Yes", "Off"],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Btn", "T" => lit(b"newsletter"),
                "V" => name("Off"), "AS" => name("Off")},
                &["Yes", "Off"],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Btn", "T" => lit(b"untouched"), "AS" => name("Off")},
                &["Yes", "Off"],
            ),
            add(
                doc,
                page,
                dictionary! {"FT" => "Btn", "T" => lit(b"agree"), "V" => name("0"),
                "AS" => name("0"), "Opt" => vec![utf16("I agree ✓")]},
                &["0", "Off"],
            ),
        ];
        f.push(radio(
            doc,
            page,
            dictionary! {"T" => lit(b"contact"),
            "Ff" => RADIO | NO_TOGGLE_TO_OFF, "V" => name("phone")},
            &["email", "phone"],
        ));
        f.push(radio(
            doc,
            page,
            dictionary! {"T" => lit(b"language"), "Ff" => RADIO,
            "V" => name("1"), "Opt" => vec![utf16("Français"), utf16("日本語")]},
            &["0", "1"],
        ));
        f.push(radio(
            doc,
            page,
            dictionary! {"T" => lit(b"unset_radio"), "Ff" => RADIO},
            &["a", "b"],
        ));
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Ch", "Ff" => COMBO, "T" => lit(b"country"),
            "Opt" => opts(&["Germany", "France"]), "V" => lit(b"France")},
            &[],
        ));
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Ch", "Ff" => MULTISELECT,
            "T" => lit(b"topics"), "Opt" => opts(&["billing", "support", "sales"]),
            "V" => vec![lit(b"billing"), lit(b"support")]},
            &[],
        ));
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Ch", "Ff" => MULTISELECT,
            "T" => lit(b"one_topic"), "Opt" => opts(&["billing", "support"]),
            "V" => lit(b"support")},
            &[],
        ));
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Ch", "T" => lit(b"size"),
            "Opt" => opts(&["S", "M", "L"]), "V" => lit(b"M")},
            &[],
        ));
        // person.name, person.address.city, person.address.zip: /FT inherited from `person`.
        let (person, address) = (doc.new_object_id(), doc.new_object_id());
        let kid = |doc: &mut Document, parent, t: &[u8], v: Object| {
            let mut d = dictionary! {"T" => lit(t), "Parent" => parent, "V" => v};
            widget(doc, page, &mut d, &[]);
            Object::from(doc.add_object(d))
        };
        let pname = kid(doc, person, b"name", utf16("Zoë"));
        let city = kid(doc, address, b"city", utf16("Zürich"));
        let zip = kid(doc, address, b"zip", lit(b"8001"));
        doc.objects.insert(
            address,
            Object::Dictionary(dictionary! {"T" => lit(b"address"),
            "Parent" => person, "Kids" => vec![city, zip]}),
        );
        doc.objects.insert(
            person,
            Object::Dictionary(dictionary! {"FT" => "Tx",
            "T" => lit(b"person"), "Kids" => vec![pname, address.into()]}),
        );
        f.push(person.into());
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Tx", "T" => utf16("Straße ☃"),
            "V" => utf16("Grüße 😀")},
            &[],
        ));
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Tx", "T" => utf16("姓名"),
            "V" => utf16("张三")},
            &[],
        ));
        // Omitted: the Submit button and a signature.
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Btn", "Ff" => PUSHBUTTON, "T" => lit(b"submit"),
            "A" => dictionary! {"S" => "SubmitForm", "Flags" => 256,
            "F" => dictionary! {"FS" => "URL", "F" => lit(b"http://127.0.0.1:8080/f/contact")}}},
            &[],
        ));
        f.push(add(
            doc,
            page,
            dictionary! {"FT" => "Sig", "T" => lit(b"signature"),
            "V" => dictionary! {"Type" => "Sig"}},
            &[],
        ));
        f
    })
}

/// A zlib stream inflating to about `size` zero bytes, written directly (one fixed-Huffman
/// block: a literal 0, then matches of 258 bytes at distance 1), so that a gigabyte bomb takes
/// milliseconds and no memory to build.
pub fn flate_bomb(size: usize) -> Vec<u8> {
    let (mut out, mut acc, mut n) = (vec![0x78u8, 0x01], 0u64, 0u32);
    let mut put = |value: u64, bits: u32, out: &mut Vec<u8>| {
        acc |= value << n;
        n += bits;
        while n >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            n -= 8;
        }
    };
    // Huffman codes go most significant bit first.
    let rev = |code: u64, bits: u32| (0..bits).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
    put(1, 1, &mut out); // BFINAL
    put(1, 2, &mut out); // fixed Huffman
    put(rev(0x30, 8), 8, &mut out); // literal 0
    let matches = size / 258;
    for _ in 0..matches {
        put(rev(0b1100_0101, 8), 8, &mut out); // length 258 (code 285)
        put(0, 5, &mut out); // distance 1
    }
    put(0, 7, &mut out); // end of block
    put(0, 7, &mut out); // flush
    let total = (1 + 258 * matches) as u64;
    let adler = ((total % 65521) << 16) | 1;
    out.extend_from_slice(&(adler as u32).to_be_bytes());
    out
}

/// A large form shaped like a real tax form: `fields` filled text fields, each with an
/// appearance stream, pages of content, and `filler` untyped dictionaries (a loader cannot tell
/// them from form objects, so they stand for what no filter can drop). Field `line{i}` holds
/// `value {i}`.
pub fn big_form_pdf(fields: usize, filler: usize) -> Vec<u8> {
    pdf_with(|doc, page| {
        let mut roots = Vec::with_capacity(fields);
        for i in 0..fields {
            let look = doc.add_object(Stream::new(
                dictionary! {"Type" => "XObject", "Subtype" => "Form",
                "BBox" => vec![0.into(), 0.into(), 200.into(), 12.into()],
                "Resources" => dictionary! {"Font" => dictionary! {"Helv" => page}}},
                format!(
                    "/Tx BMC q BT /Helv 9 Tf 0 g 2 3 Td (value {i}) Tj ET Q EMC {}",
                    " ".repeat(64)
                )
                .into_bytes(),
            ));
            let d = dictionary! {"FT" => "Tx", "T" => lit(format!("line{i}").as_bytes()),
            "V" => lit(format!("value {i}").as_bytes()), "DA" => lit(b"/Helv 9 Tf 0 g"),
            "Type" => "Annot", "Subtype" => "Widget", "P" => page, "F" => 4,
            "Rect" => vec![0.into(), 0.into(), 200.into(), 12.into()],
            "MK" => dictionary! {"BC" => vec![0.into()], "BG" => vec![1.into()]},
            "AP" => dictionary! {"N" => look}};
            roots.push(Object::from(doc.add_object(d)));
        }
        for i in 0..filler {
            doc.add_object(dictionary! {"Kind" => "Filler", "N" => i as i64,
            "Data" => vec![1.into(), 2.into(), 3.into(), 4.into(), 5.into(), 6.into()],
            "Label" => lit(format!("filler object number {i}").as_bytes())});
        }
        roots
    })
}
