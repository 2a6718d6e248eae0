//! Loading a body with lopdf under the limits, and reading values out of the loaded objects.

use lopdf::{Dictionary, Document, LoadOptions, Object};
use secureform_contract::{FieldValue, Scalar};

use super::limits::Budget;
use super::scan::prescan;
use super::text::{decode_name, decode_pdf_text_checked};
use super::{find, PdfFormError};
use crate::ingest::bounded::{FieldsBuilder, IngestWarning, OutputError};

/// How many references in a row may be followed before it counts as a loop.
const MAX_HOPS: usize = 32;

/// Loads a PDF or FDF body (the caller has patched an FDF header) under the budget.
/// `malformed` is the error to give for syntax lopdf cannot read.
pub(crate) fn load(
    body: &[u8],
    budget: &mut Budget<'_>,
    malformed: PdfFormError,
) -> Result<Document, PdfFormError> {
    if body.len() > budget.limits.max_bytes {
        return Err(PdfFormError::TooLarge);
    }
    // A file cut short (an interrupted upload) must not pass for a smaller form: the last
    // line of a PDF or FDF is %%EOF (ISO 32000-1, 7.5.5); readers accept trailing bytes after
    // it, so we look in the last 1024 bytes.
    let tail = body.get(body.len().saturating_sub(1024)..).unwrap_or(body);
    if find(tail, b"%%EOF").is_none() {
        return Err(malformed);
    }
    prescan(body, budget)?;
    budget.check_time()?;
    // The pre-scan has counted the object and cross-reference streams lopdf inflates while
    // loading against the total; lopdf inflates them again, each bounded by that total.
    let per_stream = usize::try_from(budget.limits.max_decompressed).unwrap_or(usize::MAX);
    let options = LoadOptions {
        max_decompressed_size: Some(per_stream),
        ..LoadOptions::default()
    };
    let doc = Document::load_mem_with_options(body, options).map_err(|e| match e {
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            PdfFormError::DecompressionLimit
        }
        _ => malformed,
    })?;
    budget.check_time()?;
    if doc.objects.len() > budget.limits.max_objects {
        return Err(PdfFormError::TooManyObjects);
    }
    // lopdf leaves /Encrypt in the trailer when it could not authenticate the empty password.
    if doc.trailer.has(b"Encrypt") {
        return Err(PdfFormError::Encrypted);
    }
    Ok(doc)
}

/// Follows references; a missing object is null (ISO 32000-1, 7.3.10), a chain longer than
/// [`MAX_HOPS`] a loop.
pub(crate) fn resolve<'a>(
    doc: &'a Document,
    mut obj: &'a Object,
) -> Result<&'a Object, PdfFormError> {
    for _ in 0..MAX_HOPS {
        match obj {
            Object::Reference(id) => match doc.objects.get(id) {
                Some(next) => obj = next,
                None => return Ok(&Object::Null),
            },
            _ => return Ok(obj),
        }
    }
    Err(PdfFormError::ReferenceLoop)
}

/// `dict[key]`, resolved; `None` when absent or null.
pub(crate) fn get<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Result<Option<&'a Object>, PdfFormError> {
    match dict.get(key) {
        Ok(obj) => match resolve(doc, obj)? {
            Object::Null => Ok(None),
            obj => Ok(Some(obj)),
        },
        Err(_) => Ok(None),
    }
}

/// `dict[key]` as a dictionary (a stream's dictionary counts).
pub(crate) fn get_dict<'a>(
    doc: &'a Document,
    dict: &'a Dictionary,
    key: &[u8],
) -> Result<Option<&'a Dictionary>, PdfFormError> {
    Ok(get(doc, dict, key)?.and_then(as_dict))
}

/// The dictionary of a dictionary or stream object.
pub(crate) fn as_dict(obj: &Object) -> Option<&Dictionary> {
    match obj {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

/// A partial field name (`/T`), decoded; `None` when absent. A name that cannot fit the name
/// limit is refused before it is decoded.
pub(crate) fn partial_name(
    doc: &Document,
    dict: &Dictionary,
    out: &mut FieldsBuilder,
) -> Result<Option<String>, PdfFormError> {
    Ok(match get(doc, dict, b"T")? {
        Some(Object::String(bytes, _)) => {
            out.check_name(min_text_len(bytes))?;
            Some(decode_checked(bytes, out))
        }
        Some(Object::Name(bytes)) => {
            out.check_name(bytes.len())?;
            Some(decode_name(bytes))
        }
        _ => None,
    })
}

/// Joins a parent's full name and a partial name with ".", refusing a result longer than the
/// name limit before building it.
pub(crate) fn join(
    parent: &str,
    partial: Option<&str>,
    out: &FieldsBuilder,
) -> Result<String, PdfFormError> {
    Ok(match partial {
        Some(p) if parent.is_empty() => {
            out.check_name(p.len())?;
            p.to_owned()
        }
        Some(p) => {
            out.check_name(parent.len().saturating_add(1).saturating_add(p.len()))?;
            format!("{parent}.{p}")
        }
        None => parent.to_owned(),
    })
}

/// The fewest UTF-8 bytes a text string of these bytes can decode to: a UTF-16 unit of two
/// bytes can become one byte, every other byte at least one.
fn min_text_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(&[0xFE, 0xFF]) || bytes.starts_with(&[0xFF, 0xFE]) {
        bytes.len().saturating_sub(2) / 2
    } else {
        bytes.len().saturating_sub(3)
    }
}

/// Decodes a text string, noting a warning when part of it was invalid.
fn decode_checked(bytes: &[u8], out: &mut FieldsBuilder) -> String {
    let (text, replaced) = decode_pdf_text_checked(bytes);
    if replaced {
        out.warn(IngestWarning::InvalidText);
    }
    text
}

/// One value as text: a text string, a name, a number, a boolean, or a stream's text.
/// `None` for what has no text (null, dictionaries, arrays). A string too large for the value
/// limit is refused before it is decoded (it may be referenced by many fields).
pub(crate) fn scalar_text(
    doc: &Document,
    obj: &Object,
    budget: &mut Budget<'_>,
    out: &mut FieldsBuilder,
) -> Result<Option<String>, PdfFormError> {
    Ok(match resolve(doc, obj)? {
        Object::String(bytes, _) => {
            out.check_value(min_text_len(bytes))?;
            Some(decode_checked(bytes, out))
        }
        Object::Name(bytes) => {
            out.check_value(bytes.len())?;
            Some(decode_name(bytes))
        }
        Object::Integer(n) => Some(n.to_string()),
        Object::Real(r) => Some(r.to_string()),
        Object::Boolean(b) => Some(b.to_string()),
        Object::Stream(stream) => {
            let limit = usize::try_from(budget.remaining_decompressed()).unwrap_or(usize::MAX);
            let bytes = match stream.get_plain_content_with_limit(limit) {
                Ok(bytes) => bytes,
                Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded {
                    ..
                })) => return Err(PdfFormError::DecompressionLimit),
                // A filter lopdf cannot undo, or damaged data: no readable value.
                Err(_) => return Ok(None),
            };
            budget.take_decompressed(bytes.len() as u64)?;
            out.check_value(min_text_len(&bytes))?;
            Some(decode_checked(&bytes, out))
        }
        _ => None,
    })
}

/// A field value: an array is a list of its texts, anything else one text.
pub(crate) fn field_value(
    doc: &Document,
    obj: &Object,
    budget: &mut Budget<'_>,
    out: &mut FieldsBuilder,
) -> Result<Option<FieldValue>, PdfFormError> {
    match resolve(doc, obj)? {
        Object::Array(items) => {
            // One field's values count like fields: a list is no way around the cap.
            if items.len() > budget.limits.max_fields {
                return Err(PdfFormError::TooManyFields);
            }
            if items.len() > out.limits().max_values {
                return Err(OutputError::TooManyValues(out.limits().max_values).into());
            }
            let mut values = Vec::with_capacity(items.len().min(1024));
            let mut bytes = 0usize;
            for item in items {
                budget.tick()?;
                if let Some(text) = scalar_text(doc, item, budget, out)? {
                    // The items may all be one large string: count them as they are copied.
                    bytes = bytes.saturating_add(text.len());
                    out.check_more(values.len() + 1, bytes)?;
                    values.push(Scalar::Text(text));
                }
            }
            Ok(Some(FieldValue::Many(values)))
        }
        other => {
            Ok(scalar_text(doc, other, budget, out)?.map(|t| FieldValue::One(Scalar::Text(t))))
        }
    }
}
