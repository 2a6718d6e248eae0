//! XFA-only forms: the data of the XFA `datasets` packet read into fields.
//!
//! An XFA form (XML Forms Architecture 3.3, chapter "Exchanging Data Between an Application and
//! a Client") keeps what the user typed in the `datasets` packet, under `xfa:data`: one element
//! per data group (a subform) and one per value, named by the form's bindings. A *dynamic* XFA
//! form has no AcroForm fields at all (`/Fields []`), so that packet is the only place its data
//! lives. It is parsed by roxmltree with DTDs refused (no entities, nothing outside the body is
//! read) and a node limit, under the same budget as the rest of the parse.

use std::collections::HashMap;

use lopdf::{Dictionary, Document, Object};
use roxmltree::{Node, ParsingOptions};
use secureform_contract::Scalar;

use super::limits::Budget;
use super::load::{get, resolve};
use super::PdfFormError;
use crate::ingest::bounded::{FieldsBuilder, Ingested};

/// The namespace of the `datasets` packet and its `data` element.
const XFA_DATA_NS: &str = "http://www.xfa.org/schema/xfa-data/1.0/";

/// Reads the fields of an XFA form's `datasets` packet. `xfa` is the AcroForm's `/XFA`: one
/// stream holding the whole XDP document, or an array of (packet name, stream) pairs.
/// Refuses with [`PdfFormError::XfaOnly`] when no filled value can be read.
pub(crate) fn parse_datasets(
    doc: &Document,
    acroform: &Dictionary,
    budget: &mut Budget<'_>,
) -> Result<Ingested, PdfFormError> {
    let xml = match get(doc, acroform, b"XFA")? {
        Some(Object::Stream(stream)) => plain(stream, budget)?,
        Some(Object::Array(items)) => datasets_packet(doc, items, budget)?,
        _ => None,
    };
    let Some(xml) = xml else {
        return Err(PdfFormError::XfaOnly);
    };
    let read = read_data(&xml, budget)?;
    if read.fields.is_empty() {
        return Err(PdfFormError::XfaOnly);
    }
    Ok(read)
}

/// The text of the packet named `datasets` in an array of (name, stream) pairs.
fn datasets_packet(
    doc: &Document,
    items: &[Object],
    budget: &mut Budget<'_>,
) -> Result<Option<Vec<u8>>, PdfFormError> {
    for pair in items.chunks(2) {
        budget.tick()?;
        let (Some(name), Some(packet)) = (pair.first(), pair.get(1)) else {
            break;
        };
        if let Object::String(name, _) = resolve(doc, name)? {
            if name.as_slice() == b"datasets" {
                if let Object::Stream(stream) = resolve(doc, packet)? {
                    return plain(stream, budget);
                }
            }
        }
    }
    Ok(None)
}

/// A stream's decoded bytes, counted against the decompression budget; `None` when its filter
/// cannot be undone.
fn plain(stream: &lopdf::Stream, budget: &mut Budget<'_>) -> Result<Option<Vec<u8>>, PdfFormError> {
    let limit = usize::try_from(budget.remaining_decompressed()).unwrap_or(usize::MAX);
    match stream.get_plain_content_with_limit(limit) {
        Ok(bytes) => {
            budget.take_decompressed(bytes.len() as u64)?;
            Ok(Some(bytes))
        }
        Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => {
            Err(PdfFormError::DecompressionLimit)
        }
        Err(_) => Ok(None),
    }
}

/// Parses the packet and reads every value under `xfa:data`, within the output limits.
fn read_data(xml: &[u8], budget: &mut Budget<'_>) -> Result<Ingested, PdfFormError> {
    let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
    let text = std::str::from_utf8(xml).map_err(|_| PdfFormError::XfaMalformed)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(budget.limits.max_objects.saturating_mul(4)).unwrap_or(u32::MAX),
        ..ParsingOptions::default()
    };
    // A DTD (the only way to entities and external references) is refused as malformed.
    let parsed = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => PdfFormError::TooManyObjects,
        _ => PdfFormError::XfaMalformed,
    })?;
    budget.check_time()?;
    let data = parsed
        .descendants()
        .find(|n| is_xfa(n, "datasets"))
        .and_then(|datasets| datasets.children().find(|n| is_xfa(n, "data")));
    let mut out = FieldsBuilder::new(budget.limits.output);
    if let Some(data) = data {
        walk(data, "", 1, budget, &mut out)?;
    }
    Ok(out.finish())
}

/// Whether `node` is the element `name` of the XFA data namespace.
fn is_xfa(node: &Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace() == Some(XFA_DATA_NS)
}

/// Reads the children of a data group: groups recurse, values become fields. Siblings that
/// share a name (a repeated subform or field) are told apart by their index, as XFA's SOM
/// expressions do (`item[0]`, `item[1]`).
fn walk(
    group: Node<'_, '_>,
    prefix: &str,
    depth: usize,
    budget: &mut Budget<'_>,
    out: &mut FieldsBuilder,
) -> Result<(), PdfFormError> {
    if depth > budget.limits.max_depth {
        return Err(PdfFormError::TooDeep);
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for child in group.children().filter(Node::is_element) {
        *counts.entry(child.tag_name().name()).or_default() += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for child in group.children().filter(Node::is_element) {
        budget.tick()?;
        let local = child.tag_name().name();
        let index = seen.entry(local).or_default();
        let partial = match counts.get(local) {
            Some(n) if *n > 1 => format!("{local}[{index}]"),
            _ => local.to_owned(),
        };
        *index += 1;
        // Measured before it is built: a deep path of long names cannot grow without bound.
        let len = if prefix.is_empty() {
            partial.len()
        } else {
            prefix.len() + 1 + partial.len()
        };
        out.check_name(len)?;
        let name = if prefix.is_empty() {
            partial
        } else {
            format!("{prefix}.{partial}")
        };
        if is_group(&child) {
            walk(child, &name, depth + 1, budget, out)?;
            continue;
        }
        let texts = || {
            child
                .descendants()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
        };
        out.check_value(texts().map(str::len).sum())?;
        let value: String = texts().collect();
        // Every bound field has an element, filled or not: an empty one was never filled in.
        // A name seen twice keeps its first value, as in the AcroForm walk.
        if !value.is_empty() && !out.contains(&name) {
            budget.add_field()?;
            out.push(name, Scalar::Text(value))?;
        }
    }
    Ok(())
}

/// A data group holds elements; a data value holds text (rich text, marked with
/// `xfa:contentType`, holds XHTML elements but is one value).
fn is_group(node: &Node<'_, '_>) -> bool {
    if node.attribute((XFA_DATA_NS, "dataNode")) == Some("dataGroup") {
        return true;
    }
    node.attribute((XFA_DATA_NS, "contentType")).is_none()
        && node.children().any(|n| n.is_element())
}
