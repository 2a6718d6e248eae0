//! Turning bytes into text without ever losing a byte silently.
//!
//! With a form `charset`, bytes are decoded with it and a byte sequence that is invalid in it is
//! refused (400 `invalid_charset`). Without one, bytes that are valid UTF-8 are UTF-8; otherwise the whole
//! submission is read as windows-1252, which maps every byte to a character (this is what
//! Acrobat's HTML format sends on Western Windows hosts when it gives no charset).

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

use super::IngestError;

/// Chooses the encoding for a set of byte strings: the form's, or UTF-8 when all are valid
/// UTF-8, else windows-1252.
pub fn choose<'a>(
    charset: Option<&'static Encoding>,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> &'static Encoding {
    if let Some(enc) = charset {
        return enc;
    }
    if pieces.into_iter().all(|p| std::str::from_utf8(p).is_ok()) {
        UTF_8
    } else {
        WINDOWS_1252
    }
}

/// Decodes with `encoding`, refusing malformed input instead of replacing it.
pub fn decode(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, IngestError> {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|s| s.into_owned())
        .ok_or_else(|| invalid(encoding))
}

/// [`decode`] of bytes that are not needed afterwards: UTF-8 becomes the string in place,
/// without the copy `decode` makes (every urlencoded name and value takes this path).
pub fn decode_owned(encoding: &'static Encoding, bytes: Vec<u8>) -> Result<String, IngestError> {
    if encoding == UTF_8 {
        String::from_utf8(bytes).map_err(|_| invalid(encoding))
    } else {
        decode(encoding, &bytes)
    }
}

fn invalid(encoding: &'static Encoding) -> IngestError {
    IngestError::InvalidCharset {
        encoding: encoding.name(),
    }
}
