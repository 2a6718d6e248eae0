//! PDF text strings and names to Rust strings, and back for the FDF answer.
//!
//! A PDF *text string* (ISO 32000-1, 7.9.2.2) is UTF-16BE when it starts with the BOM FE FF,
//! UTF-8 when it starts with EF BB BF (PDF 2.0), and PDFDocEncoding otherwise. A *name* is a
//! byte sequence (its `#xx` escapes already undone by the parser) that PDF 2.0 says should be
//! read as UTF-8; names that are not valid UTF-8 are read as PDFDocEncoding.

/// PDFDocEncoding for the bytes 0x18–0x1F (ISO 32000-1, Annex D.2): diacritics, not controls.
const LOW: [char; 8] = [
    '\u{02D8}', '\u{02C7}', '\u{02C6}', '\u{02D9}', '\u{02DD}', '\u{02DB}', '\u{02DA}', '\u{02DC}',
];

/// PDFDocEncoding for the bytes 0x80–0xA0. 0x9F is undefined and becomes U+FFFD.
const HIGH: [char; 33] = [
    '\u{2022}', '\u{2020}', '\u{2021}', '\u{2026}', '\u{2014}', '\u{2013}', '\u{0192}', '\u{2044}',
    '\u{2039}', '\u{203A}', '\u{2212}', '\u{2030}', '\u{201E}', '\u{201C}', '\u{201D}', '\u{2018}',
    '\u{2019}', '\u{201A}', '\u{2122}', '\u{FB01}', '\u{FB02}', '\u{0141}', '\u{0152}', '\u{0160}',
    '\u{0178}', '\u{017D}', '\u{0131}', '\u{0142}', '\u{0153}', '\u{0161}', '\u{017E}', '\u{FFFD}',
    '\u{20AC}',
];

/// One PDFDocEncoding byte as a character. Bytes PDFDocEncoding leaves undefined below 0x18
/// and 0x7F keep their code point (as pypdf and pdftk do), 0x9F becomes U+FFFD, 0xA1–0xFF
/// are Latin-1 (0xAD is the soft hyphen, as PDF 2.0 defines it).
fn pdfdoc_char(byte: u8) -> char {
    match byte {
        0x18..=0x1F => LOW[usize::from(byte - 0x18)],
        0x80..=0xA0 => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

/// Decodes a PDF text string: UTF-16BE with BOM, UTF-8 with BOM, else PDFDocEncoding; and
/// says whether anything was replaced by U+FFFD because it was not valid UTF-16 (an unpaired
/// surrogate, an odd last byte) or UTF-8, so the caller can warn (the value is kept: a text
/// string has no other way to say those code units). PDFDocEncoding's undefined 0x9F is not
/// counted: every byte there has a meaning.
///
/// UTF-16 language escapes (U+001B … U+001B, ISO 32000-1 7.9.2.2) are dropped.
pub fn decode_pdf_text_checked(bytes: &[u8]) -> (String, bool) {
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return decode_utf16(rest, u16::from_be_bytes);
    }
    // Not in ISO 32000, but written by some producers; 0xFF 0xFE is "ÿþ" in PDFDocEncoding,
    // which no real value starts with.
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return decode_utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return match String::from_utf8_lossy(rest) {
            std::borrow::Cow::Borrowed(s) => (s.to_owned(), false),
            std::borrow::Cow::Owned(s) => (s, true),
        };
    }
    (bytes.iter().copied().map(pdfdoc_char).collect(), false)
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> (String, bool) {
    let pairs = bytes.chunks_exact(2);
    let mut replaced = !pairs.remainder().is_empty();
    let units = pairs.map(|pair| unit([pair[0], pair[1]]));
    let mut out = String::with_capacity(bytes.len() / 2);
    let mut in_language_escape = false;
    for c in char::decode_utf16(units) {
        let c = c.unwrap_or_else(|_| {
            replaced = true;
            char::REPLACEMENT_CHARACTER
        });
        if c == '\u{1B}' {
            in_language_escape = !in_language_escape;
        } else if !in_language_escape {
            out.push(c);
        }
    }
    (out, replaced)
}

/// Decodes a PDF name's bytes (checkbox and radio states): UTF-8 when valid, else
/// PDFDocEncoding.
pub(crate) fn decode_name(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().copied().map(pdfdoc_char).collect(),
    }
}

/// Writes `text` as a PDF literal string, parentheses included: ASCII as is (with `\`, `(`
/// and `)` escaped), otherwise UTF-16BE with a BOM. Every byte outside printable ASCII is
/// written as an octal escape, so the result is plain ASCII whatever the message holds.
pub(crate) fn pdf_literal_string(text: &str) -> Vec<u8> {
    let bytes: Vec<u8> = if text.is_ascii() {
        text.as_bytes().to_vec()
    } else {
        let mut b = vec![0xFE, 0xFF];
        b.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        b
    };
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'(');
    for byte in bytes {
        match byte {
            b'\\' | b'(' | b')' => out.extend_from_slice(&[b'\\', byte]),
            0x20..=0x7E => out.push(byte),
            _ => out.extend_from_slice(format!("\\{byte:03o}").as_bytes()),
        }
    }
    out.push(b')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_pdf_text(bytes: &[u8]) -> String {
        decode_pdf_text_checked(bytes).0
    }

    #[test]
    fn pdfdoc_encoding_table() {
        assert_eq!(decode_pdf_text(b"abc"), "abc");
        assert_eq!(decode_pdf_text(&[0x80, 0x84, 0x8D, 0x8E, 0x92]), "•—“”™");
        assert_eq!(decode_pdf_text(&[0x93, 0x94, 0x95, 0x9E, 0xA0]), "ﬁﬂŁž€");
        assert_eq!(decode_pdf_text(&[0x18, 0x19, 0x1F]), "˘ˇ˜");
        assert_eq!(
            decode_pdf_text(&[0xE4, 0xF6, 0xFC, 0xDF, 0xAD]),
            "äöüß\u{AD}"
        );
        assert_eq!(decode_pdf_text(&[0x09, 0x0D, 0x0A]), "\t\r\n");
        assert_eq!(decode_pdf_text(&[0x9F]), "\u{FFFD}");
    }

    #[test]
    fn utf16_and_utf8_boms() {
        let mut b = vec![0xFE, 0xFF];
        b.extend("Zürich 😀".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode_pdf_text(&b), "Zürich 😀");
        assert_eq!(decode_pdf_text(b"\xEF\xBB\xBFsalad \xC3\xB7"), "salad ÷");
        // A language escape ("en") is dropped.
        let mut b = vec![0xFE, 0xFF, 0x00, 0x1B, 0x00, b'e', 0x00, b'n', 0x00, 0x1B];
        b.extend([0x00, b'h', 0x00, b'i']);
        assert_eq!(decode_pdf_text(&b), "hi");
        // An odd trailing byte and a lone surrogate do not panic.
        assert_eq!(decode_pdf_text(&[0xFE, 0xFF, 0xD8, 0x00, 0x00]), "\u{FFFD}");
    }

    #[test]
    fn replacements_are_reported() {
        let checked = |b: &[u8]| decode_pdf_text_checked(b);
        assert_eq!(checked(&[0xFE, 0xFF, 0x00, b'a']), ("a".into(), false));
        assert_eq!(
            checked(&[0xFE, 0xFF, 0xDC, 0x00, 0x00, b'a']),
            ("\u{FFFD}a".into(), true)
        );
        assert_eq!(
            checked(&[0xFF, 0xFE, 0x00, 0xD8]),
            ("\u{FFFD}".into(), true)
        );
        assert!(checked(&[0xFE, 0xFF, 0x00, b'a', 0x00]).1);
        assert_eq!(checked(b"\xEF\xBB\xBFa\xFF"), ("a\u{FFFD}".into(), true));
        assert_eq!(checked(&[0x9F]), ("\u{FFFD}".into(), false));
    }

    #[test]
    fn names_are_utf8_or_pdfdoc() {
        assert_eq!(decode_name("небінарний".as_bytes()), "небінарний");
        assert_eq!(decode_name(&[0x4F, 0x6E, 0xE9]), "Oné");
    }

    #[test]
    fn literal_strings_escape_and_round_trip() {
        assert_eq!(pdf_literal_string("a(b)\\c"), b"(a\\(b\\)\\\\c)".to_vec());
        assert_eq!(pdf_literal_string("x\ny"), b"(x\\012y)".to_vec());
        let lit = pdf_literal_string("Merci é");
        assert!(lit.is_ascii());
        assert!(lit.starts_with(b"(\\376\\377"));
    }
}
