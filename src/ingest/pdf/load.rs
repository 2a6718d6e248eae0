//! Loading a body with lopdf under the limits, and reading values out of the loaded objects.

use std::cell::Cell;

use lopdf::{Dictionary, Document, LoadOptions, Object, ObjectId};
use secureform_contract::{FieldValue, Scalar};

use super::limits::Budget;
use super::scan::prescan;
use super::text::{decode_name, decode_pdf_text_checked};
use super::{find, PdfFormError};
use crate::ingest::bounded::{FieldsBuilder, IngestWarning, OutputError};

/// How many references in a row may be followed before it counts as a loop.
const MAX_HOPS: usize = 32;

/// Loads an FDF body (the caller has patched its header) under the budget, every object kept.
pub(crate) fn load(
    body: &[u8],
    budget: &mut Budget<'_>,
    malformed: PdfFormError,
) -> Result<Document, PdfFormError> {
    load_filtered(body, budget, malformed, None)
}

/// Loads a whole PDF under the budget, keeping only what its form's fields are read from
/// (see [`keep_form_objects`]).
pub(crate) fn load_form(body: &[u8], budget: &mut Budget<'_>) -> Result<Document, PdfFormError> {
    load_filtered(
        body,
        budget,
        PdfFormError::PdfMalformed,
        Some(keep_form_objects),
    )
}

/// Loads a PDF or FDF body under the budget. `malformed` is the error to give for syntax lopdf
/// cannot read.
fn load_filtered(
    body: &[u8],
    budget: &mut Budget<'_>,
    malformed: PdfFormError,
    filter: Option<lopdf::FilterFunc>,
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
    let mut doc = load_with(body, budget, malformed, filter, false)?;
    // lopdf repairs a cross-reference table that points at the wrong objects by itself only
    // when it loads unfiltered: a catalog that did not load gets a second try with the table
    // rebuilt by scanning the file.
    if filter.is_some() && !catalog_loaded(&doc) {
        budget.check_time()?;
        doc = load_with(body, budget, malformed, filter, true)?;
    }
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

/// One lopdf load of `body`, each stream bounded by the whole decompression budget.
fn load_with(
    body: &[u8],
    budget: &Budget<'_>,
    malformed: PdfFormError,
    filter: Option<lopdf::FilterFunc>,
    force_reconstruct: bool,
) -> Result<Document, PdfFormError> {
    // The pre-scan has counted the object and cross-reference streams lopdf inflates while
    // loading against the total; lopdf inflates them again, each bounded by that total.
    let per_stream = usize::try_from(budget.limits.max_decompressed).unwrap_or(usize::MAX);
    let options = LoadOptions {
        max_decompressed_size: Some(per_stream),
        filter,
        force_reconstruct,
        ..LoadOptions::default()
    };
    KEPT_VALUES.with(|kept| kept.set(0));
    let doc = Document::load_mem_with_options(body, options).map_err(|e| match e {
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. }) => {
            PdfFormError::DecompressionLimit
        }
        _ => malformed,
    })?;
    if KEPT_VALUES.with(Cell::get) > MAX_KEPT_VALUES {
        return Err(PdfFormError::TooManyObjects);
    }
    Ok(doc)
}

/// Whether the trailer's `/Root` (the catalog, or an FDF's root) is among the loaded objects.
fn catalog_loaded(doc: &Document) -> bool {
    match doc.trailer.get(b"Root") {
        Ok(Object::Reference(id)) => doc.objects.contains_key(id),
        Ok(Object::Dictionary(_)) => true,
        _ => false,
    }
}

/// Object types a form's fields never lead to: fonts, images and appearance streams, page
/// content resources, the structure tree of tagged PDFs, metadata, outlines, embedded files.
const UNUSED_TYPES: &[&[u8]] = &[
    b"Font",
    b"FontDescriptor",
    b"XObject",
    b"ExtGState",
    b"Pattern",
    b"Shading",
    b"StructElem",
    b"MCR",
    b"OBJR",
    b"Metadata",
    b"Outlines",
    b"EmbeddedFile",
    // Stream subtypes: images, form XObjects (appearances), font programs.
    b"Image",
    b"Form",
    b"Type1C",
    b"CIDFontType0C",
    b"OpenType",
];

/// The dictionary keys the AcroForm walk reads (catalog, AcroForm, field tree, values) and
/// those lopdf needs to decode a stream or an object stream after loading.
const USED_KEYS: &[&[u8]] = &[
    b"AcroForm",
    b"Fields",
    b"XFA",
    b"T",
    b"FT",
    b"Ff",
    b"V",
    b"Kids",
    b"Opt",
    b"Type",
    b"Subtype",
    b"Filter",
    b"DecodeParms",
    b"Length",
    b"DL",
    b"N",
    b"First",
    b"Extends",
];

/// lopdf's load filter for a whole PDF: drops the objects of [`UNUSED_TYPES`] (a reference to
/// one then reads as null) and, from every dictionary it keeps, the entries not in
/// [`USED_KEYS`] (appearances, rectangles, borders, resources...). A loaded object costs about
/// 25 times its bytes in memory, and real forms are mostly made of what this drops. lopdf
/// keeps a top-level object as the filter leaves it but an object-stream member as the
/// filter returns it: hence the change in place and the (then small) clone of a dictionary.
fn keep_form_objects(id: ObjectId, obj: &mut Object) -> Option<(ObjectId, Object)> {
    if !strip_unused(obj) {
        return None;
    }
    // Past the cap the load is refused afterwards; until then nothing more is kept.
    let kept = KEPT_VALUES.with(|kept| {
        kept.set(kept.get().saturating_add(count_values(obj)));
        kept.get()
    });
    if kept > MAX_KEPT_VALUES {
        return None;
    }
    if matches!(obj, Object::Stream(_)) {
        // Streams are never object-stream members (ISO 32000-1, 7.5.7): what is returned
        // for them is not used, so their content is not copied.
        return Some((id, Object::Null));
    }
    Some((id, obj.clone()))
}

/// Strips a dictionary or stream dictionary to [`USED_KEYS`]; `false` when the whole object is
/// of an [`UNUSED_TYPES`] type.
fn strip_unused(obj: &mut Object) -> bool {
    let (dict, stream) = match obj {
        Object::Dictionary(d) => (d, false),
        Object::Stream(s) => (&mut s.dict, true),
        _ => return true,
    };
    let named = |key: &[u8]| match dict.get(key) {
        Ok(Object::Name(name)) => UNUSED_TYPES.contains(&name.as_slice()),
        _ => false,
    };
    // A stream's /Subtype names an image, a form XObject or a font program; /Length1 marks a
    // TrueType font program.
    if named(b"Type") || (stream && (named(b"Subtype") || dict.has(b"Length1"))) {
        return false;
    }
    if dict
        .iter()
        .any(|(key, _)| !USED_KEYS.contains(&key.as_slice()))
    {
        *dict = std::mem::take(dict)
            .into_iter()
            .filter(|(key, _)| USED_KEYS.contains(&key.as_slice()))
            .collect();
    }
    true
}

/// Most values a filtered load keeps (about 150 bytes each in lopdf's objects). A form keeps
/// a few per field and one per other object; a body of large top-level arrays keeps them all.
const MAX_KEPT_VALUES: usize = 1 << 19;

thread_local! {
    /// The values [`keep_form_objects`] has kept in this thread's current load: lopdf (built
    /// without its `rayon` feature) runs the filter on the thread that loads.
    static KEPT_VALUES: Cell<usize> = const { Cell::new(0) };
}

/// The values in an object, itself included (a stream's content counts as one).
fn count_values(obj: &Object) -> usize {
    match obj {
        Object::Array(items) => 1 + items.iter().map(count_values).sum::<usize>(),
        Object::Dictionary(d) => 1 + d.iter().map(|(_, v)| count_values(v)).sum::<usize>(),
        Object::Stream(s) => 1 + s.dict.iter().map(|(_, v)| count_values(v)).sum::<usize>(),
        _ => 1,
    }
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
