//! Hostile inputs: each refused with its error, promptly, in bounded memory.

use std::time::{Duration, Instant};

use lopdf::{dictionary, Document, Object};

use super::super::fixtures::{
    every_field_type_pdf, expected_form_fields, lit, pdf_with, zlib, FDF, XFDF,
};
use super::super::*;
use super::json;

/// A zlib stream inflating to about `size` zero bytes, written directly (one fixed-Huffman
/// block: a literal 0, then matches of 258 bytes at distance 1), so that building a gigabyte
/// bomb takes milliseconds and no memory.
fn flate_bomb(size: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, bits: u32) {
            self.acc |= value << self.n;
            self.n += bits;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u64, bits: u32) {
            let reversed = (0..bits).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
            self.put(reversed, bits);
        }
    }
    let matches = size / 258;
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // BFINAL
    b.put(1, 2); // fixed Huffman
    b.code(0x30, 8); // literal 0
    for _ in 0..matches {
        b.code(0b1100_0101, 8); // length 258 (code 285)
        b.code(0, 5); // distance 1
    }
    b.code(0, 7); // end of block
    b.put(0, 7); // flush
    let total = (1 + 258 * matches) as u64;
    let adler = ((total % 65521) << 16) | 1;
    b.out.extend_from_slice(&(adler as u32).to_be_bytes());
    b.out
}

/// Peak resident memory of this process, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// Runs the test `name` (of this module) again in a process of its own, alone, and asserts it
/// passed: true in the parent, which then returns. Peak memory (`VmHWM`) belongs to a whole
/// process, so with the other tests running beside it in the same one, a bound on it measured
/// them too (403 MiB once, from tests that ran earlier).
fn alone_in_its_own_process(name: &str) -> bool {
    const CHILD: &str = "SECUREFORM_TEST_ALONE";
    if std::env::var_os(CHILD).is_some() {
        return false;
    }
    let full = format!("ingest::pdf::tests::hostile::{name}");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([full.as_str(), "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{full} alone:\n{text}");
    assert!(
        text.contains("1 passed"),
        "{full} did not run alone:\n{text}"
    );
    true
}

#[test]
fn flate_bombs_are_refused_promptly_in_bounded_memory() {
    if alone_in_its_own_process("flate_bombs_are_refused_promptly_in_bounded_memory") {
        return;
    }
    let bomb = flate_bomb(1 << 30);
    // In an object stream, which lopdf would inflate while loading.
    let mut body =
        b"%PDF-1.7\n1 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length ".to_vec();
    body.extend_from_slice(format!("{} >>\nstream\n", bomb.len()).as_bytes());
    body.extend_from_slice(&bomb);
    body.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 2 0 R >>\n%%EOF\n");
    // Unoptimized test builds inflate slowly: give them time, so the cap that trips is the
    // decompression cap.
    let limits = PdfLimits {
        max_parse_time: Duration::from_secs(60),
        ..PdfLimits::default()
    };
    let start = Instant::now();
    assert_eq!(
        parse_pdf(&body, &limits),
        Err(PdfFormError::DecompressionLimit)
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // In a field's value stream, which only we inflate.
    let value_bomb = pdf_with(|doc, _| {
        let v = doc.add_object(lopdf::Stream::new(
            dictionary! {"Filter" => "FlateDecode"},
            bomb.clone(),
        ));
        vec![doc
            .add_object(dictionary! {"FT" => "Tx", "T" => lit(b"big"), "V" => v})
            .into()]
    });
    let err = parse_pdf(&value_bomb, &limits).unwrap_err();
    assert_eq!(err, PdfFormError::DecompressionLimit);
    assert_eq!(crate::error::ClientError::from(err).status.as_u16(), 413);
    println!("peak memory {} MiB", peak_rss() >> 20);
    assert!(
        peak_rss() < 400 << 20,
        "peak memory {} MiB",
        peak_rss() >> 20
    );
}

#[test]
fn reference_loops_are_refused() {
    let self_loop = pdf_with(|doc, _| {
        let id = doc.new_object_id();
        doc.objects.insert(
            id,
            Object::Dictionary(dictionary! {"T" => lit(b"a"), "Kids" => vec![id.into()]}),
        );
        vec![id.into()]
    });
    assert_eq!(
        parse_pdf(&self_loop, &PdfLimits::default()),
        Err(PdfFormError::ReferenceLoop)
    );
    let parent_loop = pdf_with(|doc, _| {
        let (a, b) = (doc.new_object_id(), doc.new_object_id());
        doc.objects.insert(
            a,
            Object::Dictionary(dictionary! {"T" => lit(b"a"), "Kids" => vec![b.into()]}),
        );
        doc.objects.insert(
            b,
            Object::Dictionary(dictionary! {"T" => lit(b"b"), "Parent" => a,
            "Kids" => vec![a.into()]}),
        );
        vec![a.into()]
    });
    assert_eq!(
        parse_pdf(&parent_loop, &PdfLimits::default()),
        Err(PdfFormError::ReferenceLoop)
    );
    // A value that is a chain of references back to itself.
    let value_loop = pdf_with(|doc, _| {
        let (a, b) = (doc.new_object_id(), doc.new_object_id());
        doc.objects.insert(a, Object::Reference(b));
        doc.objects.insert(b, Object::Reference(a));
        vec![doc
            .add_object(dictionary! {"FT" => "Tx", "T" => lit(b"x"), "V" => a})
            .into()]
    });
    assert!(parse_pdf(&value_loop, &PdfLimits::default()).is_err());
}

#[test]
fn deep_nesting_is_refused() {
    // 10,000 nested arrays in one value.
    let mut body = b"%PDF-1.7\n1 0 obj\n<< /FT /Tx /T (a) /V ".to_vec();
    body.extend(std::iter::repeat_n(b'[', 10_000));
    body.extend(std::iter::repeat_n(b']', 10_000));
    body.extend_from_slice(b" >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    assert_eq!(
        parse_pdf(&body, &PdfLimits::default()),
        Err(PdfFormError::TooDeep)
    );
    // A field tree 10,000 levels deep, one object per level.
    let deep = pdf_with(|doc, _| {
        let mut child: Option<lopdf::ObjectId> = None;
        for _ in 0..10_000 {
            let mut d = dictionary! {"T" => lit(b"n")};
            if let Some(c) = child {
                d.set("Kids", vec![c.into()]);
            }
            child = Some(doc.add_object(d));
        }
        vec![child.unwrap().into()]
    });
    let start = Instant::now();
    assert_eq!(
        parse_pdf(&deep, &PdfLimits::default()),
        Err(PdfFormError::TooDeep)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn truncated_files_are_refused() {
    let full = every_field_type_pdf();
    for cut in [10, full.len() / 3, full.len() / 2, full.len() - 20] {
        let err = parse_pdf(&full[..cut], &PdfLimits::default()).unwrap_err();
        assert_eq!(err, PdfFormError::PdfMalformed, "cut at {cut}");
    }
    let err = parse_fdf(&FDF[..FDF.len() / 2], &PdfLimits::default()).unwrap_err();
    assert_eq!(err, PdfFormError::FdfMalformed);
}

#[test]
fn caps_on_objects_fields_size_and_time() {
    let body = every_field_type_pdf();
    let tight = |f: fn(&mut PdfLimits)| {
        let mut l = PdfLimits::default();
        f(&mut l);
        l
    };
    let objects = tight(|l| l.max_objects = 10);
    assert_eq!(
        parse_pdf(&body, &objects),
        Err(PdfFormError::TooManyObjects)
    );
    let fields = tight(|l| l.max_fields = 3);
    assert_eq!(parse_pdf(&body, &fields), Err(PdfFormError::TooManyFields));
    assert_eq!(parse_fdf(FDF, &fields), Err(PdfFormError::TooManyFields));
    assert_eq!(
        parse_xfdf(XFDF.as_bytes(), &fields),
        Err(PdfFormError::TooManyFields)
    );
    let bytes = tight(|l| l.max_bytes = 100);
    assert_eq!(parse_pdf(&body, &bytes), Err(PdfFormError::TooLarge));
    let time = tight(|l| l.max_parse_time = Duration::ZERO);
    assert_eq!(parse_pdf(&body, &time), Err(PdfFormError::Timeout));
}

#[test]
fn overlapping_object_stream_members_are_refused() {
    // Every member points into one array: lopdf would parse it once per member.
    let mut content = String::new();
    let n = 2000;
    for k in 0..n {
        content.push_str(&format!("{} {} ", k + 10, k));
    }
    let first = content.len();
    content.push_str(&"[".repeat(n));
    content.push_str(&"1 ".repeat(50_000));
    content.push_str(&"]".repeat(n));
    let limits = PdfLimits {
        max_depth: 10_000,
        ..PdfLimits::default()
    };
    let data = zlib(content.as_bytes());
    let mut body = format!("%PDF-1.7\n1 0 obj\n<< /Type /ObjStm /N {n} /First {first} /Filter /FlateDecode /Length {} >>\nstream\n", data.len()).into_bytes();
    body.extend_from_slice(&data);
    body.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 2 0 R >>\n%%EOF\n");
    assert_eq!(parse_pdf(&body, &limits), Err(PdfFormError::PdfMalformed));
}

#[test]
fn no_acroform_and_password_protected_pdfs_are_422() {
    let plain = pdf_with(|_, _| Vec::new());
    let doc = Document::load_mem(&plain).unwrap();
    let mut doc2 = doc.clone();
    let catalog = doc2.catalog_mut().unwrap();
    catalog.remove(b"AcroForm");
    let mut no_form = Vec::new();
    doc2.save_to(&mut no_form).unwrap();
    let err = parse_pdf(&no_form, &PdfLimits::default()).unwrap_err();
    assert_eq!(
        (err, crate::error::ClientError::from(err).status.as_u16()),
        (PdfFormError::NoAcroForm, 422)
    );
    // An empty form is a form with no fields.
    assert!(parse_pdf(&plain, &PdfLimits::default()).unwrap().is_empty());

    let mut locked = Document::load_mem(&every_field_type_pdf()).unwrap();
    locked.trailer.set(
        "ID",
        vec![lit(b"0123456789abcdef"), lit(b"0123456789abcdef")],
    );
    let version = lopdf::EncryptionVersion::V2 {
        document: &locked,
        owner_password: "owner",
        user_password: "secret",
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    };
    let state = lopdf::EncryptionState::try_from(version).unwrap();
    locked.encrypt(&state).unwrap();
    let mut body = Vec::new();
    locked.save_to(&mut body).unwrap();
    let err = parse_pdf(&body, &PdfLimits::default()).unwrap_err();
    assert_eq!(
        (err, crate::error::ClientError::from(err).status.as_u16()),
        (PdfFormError::Encrypted, 422)
    );
}

#[test]
fn empty_user_password_pdfs_are_read() {
    let mut doc = Document::load_mem(&every_field_type_pdf()).unwrap();
    doc.trailer.set(
        "ID",
        vec![lit(b"0123456789abcdef"), lit(b"0123456789abcdef")],
    );
    let version = lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password: "",
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    };
    let state = lopdf::EncryptionState::try_from(version).unwrap();
    doc.encrypt(&state).unwrap();
    let mut body = Vec::new();
    doc.save_to(&mut body).unwrap();
    let fields = parse_pdf(&body, &PdfLimits::default()).unwrap();
    assert_eq!(json(&fields), expected_form_fields());
}

#[test]
fn the_bomb_is_a_real_zlib_stream() {
    let small = flate_bomb(1 << 20);
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&small[..]), &mut out).unwrap();
    assert_eq!(out.len(), 1 + 258 * ((1 << 20) / 258));
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn a_list_of_too_many_values_is_refused() {
    let body = pdf_with(|doc, _| {
        let values: Vec<Object> = (0..10_001).map(|_| lit(b"x")).collect();
        vec![doc
            .add_object(
                dictionary! {"FT" => "Ch", "Ff" => 1 << 21, "T" => lit(b"l"), "V" => values},
            )
            .into()]
    });
    assert_eq!(
        parse_pdf(&body, &PdfLimits::default()),
        Err(PdfFormError::TooManyFields)
    );
}
