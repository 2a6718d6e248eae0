//! PDF text strings (src/ingest/pdf/text.rs `decode_pdf_text`). Properties: at most one
//! character per byte and 3 bytes of UTF-8 per byte; any text written as UTF-16BE with a BOM, or
//! as UTF-8 with a BOM, reads back as itself (language escapes, U+001B, aside); printable ASCII
//! without a BOM reads as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secureform_fuzz::adapt;

fuzz_target!(|data: &[u8]| {
    let text = adapt::pdf_text(data);
    assert!(
        text.chars().count() <= data.len(),
        "more characters than bytes"
    );
    assert!(
        text.len() <= data.len() * 3,
        "more than 3 bytes of UTF-8 per byte"
    );

    let original: String = String::from_utf8_lossy(data).replace('\u{1B}', "");
    let mut utf16 = vec![0xFE, 0xFF];
    for unit in original.encode_utf16() {
        utf16.extend_from_slice(&unit.to_be_bytes());
    }
    assert_eq!(adapt::pdf_text(&utf16), original, "UTF-16BE round trip");
    let mut utf8 = vec![0xEF, 0xBB, 0xBF];
    utf8.extend_from_slice(original.as_bytes());
    assert_eq!(adapt::pdf_text(&utf8), original, "UTF-8 round trip");

    if data.iter().all(|b| (0x20..0x7F).contains(b)) {
        assert_eq!(
            adapt::pdf_text(data),
            String::from_utf8_lossy(data),
            "ASCII as is"
        );
    }
});
