//! XFDF (ISO 19444-1): nested `<field name>` elements read into fields.
//!
//! roxmltree refuses any DTD (its default, set explicitly here), so no entity can be declared
//! and nothing outside the body is ever read; a node limit bounds the tree's size.

use roxmltree::{Document, Node, ParsingOptions};
use secureform_contract::{FieldValue, Fields, Scalar};

use super::limits::Budget;
use super::{PdfFormError, PdfLimits, XFDF_NS};
use crate::ingest::bounded::{FieldsBuilder, Ingested};

/// Reads the fields of an XFDF body (an Acrobat XFDF submit).
///
/// Field names nest (`<field name="a"><field name="b">` is `a.b`); a field's `<value>`
/// elements are its values (several make a list, as a multi-select list sends them), and a
/// `<value-richtext>` is reduced to its text. A field with no value is omitted.
pub fn parse_xfdf(body: &[u8], limits: &PdfLimits) -> Result<Fields, PdfFormError> {
    read_xfdf(body, limits).map(|read| read.fields)
}

/// [`parse_xfdf`], with the warnings about what was read (none so far: XFDF is XML, whose
/// text is always valid).
pub fn read_xfdf(body: &[u8], limits: &PdfLimits) -> Result<Ingested, PdfFormError> {
    let budget = Budget::new(limits);
    if body.len() > limits.max_bytes {
        return Err(PdfFormError::TooLarge);
    }
    let text = xml_text(body)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(limits.max_objects.saturating_mul(4)).unwrap_or(u32::MAX),
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(&text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => PdfFormError::XfdfDtdForbidden,
        roxmltree::Error::NodesLimitReached => PdfFormError::TooManyObjects,
        _ => PdfFormError::XfdfMalformed,
    })?;
    budget.check_time()?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace();
    if root.tag_name().name() != "xfdf" || !(ns == Some(XFDF_NS) || ns.is_none()) {
        return Err(PdfFormError::XfdfMalformed);
    }
    let mut walk = Walk {
        budget,
        out: FieldsBuilder::new(limits.output),
    };
    for fields in root.children().filter(|n| is(n, "fields")) {
        walk.children(fields, "", 1)?;
    }
    Ok(walk.out.finish())
}

/// The body as text: UTF-8 (XFDF's encoding), with or without BOM, or UTF-16 with BOM.
fn xml_text(body: &[u8]) -> Result<String, PdfFormError> {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        let units = rest.chunks_exact(2).map(|p| unit([p[0], p[1]]));
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| PdfFormError::XfdfMalformed)
    };
    if let Some(rest) = body.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    if let Some(rest) = body.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    String::from_utf8(body.to_vec()).map_err(|_| PdfFormError::XfdfMalformed)
}

/// Whether `node` is an XFDF element named `name` (in the XFDF namespace, or in none).
fn is(node: &Node<'_, '_>, name: &str) -> bool {
    let tag = node.tag_name();
    node.is_element() && tag.name() == name && matches!(tag.namespace(), None | Some(XFDF_NS))
}

struct Walk<'l> {
    budget: Budget<'l>,
    /// The fields so far: a name already there keeps its first value.
    out: FieldsBuilder,
}

impl Walk<'_> {
    /// Reads the `<field>` children of `parent`, whose full name is `prefix`.
    fn children(
        &mut self,
        parent: Node<'_, '_>,
        prefix: &str,
        depth: usize,
    ) -> Result<(), PdfFormError> {
        if depth > self.budget.limits.max_depth {
            return Err(PdfFormError::TooDeep);
        }
        for field in parent.children().filter(|n| is(n, "field")) {
            self.budget.tick()?;
            let Some(partial) = field.attribute("name") else {
                continue;
            };
            // Measured before it is built: a long parent name must not be copied into each
            // of its children.
            let name = if prefix.is_empty() {
                self.out.check_name(partial.len())?;
                partial.to_owned()
            } else {
                let len = prefix.len().saturating_add(1).saturating_add(partial.len());
                self.out.check_name(len)?;
                format!("{prefix}.{partial}")
            };
            if let Some(value) = self.value(field)? {
                if !self.out.contains(&name) {
                    self.budget.add_field()?;
                    self.out.insert(name.clone(), value)?;
                }
            }
            self.children(field, &name, depth + 1)?;
        }
        Ok(())
    }

    /// A `<field>`'s value: its `<value>` elements (several make a list), else its
    /// `<value-richtext>` as text; `None` when it has neither. Each value is measured before
    /// it is copied, and a list is counted as it grows.
    fn value(&mut self, field: Node<'_, '_>) -> Result<Option<FieldValue>, PdfFormError> {
        let mut values = Vec::new();
        let mut bytes = 0usize;
        for node in field.children().filter(|c| is(c, "value")) {
            self.budget.tick()?;
            let text = node.text().unwrap_or_default();
            self.out.check_value(text.len())?;
            bytes = bytes.saturating_add(text.len());
            self.out.check_more(values.len() + 1, bytes)?;
            if values.len() >= self.budget.limits.max_fields {
                return Err(PdfFormError::TooManyFields);
            }
            values.push(Scalar::Text(text.to_owned()));
        }
        if values.is_empty() {
            if let Some(rich) = field.children().find(|c| is(c, "value-richtext")) {
                let text = rich_text(rich);
                self.out.check_value(text.len())?;
                values.push(Scalar::Text(text));
            }
        }
        Ok(match values.len() {
            0 => None,
            1 => values.pop().map(FieldValue::One),
            _ => Some(FieldValue::Many(values)),
        })
    }
}

/// The characters of a `<value-richtext>` (XHTML): text in document order, a line break
/// (CR, as PDF text fields write it) between paragraphs and for `<br/>`; indentation between
/// elements dropped.
fn rich_text(node: Node<'_, '_>) -> String {
    let mut out = String::new();
    let mut blocks = 0usize;
    for n in node.descendants() {
        if n.is_element() {
            match n.tag_name().name() {
                "p" | "div" => {
                    if blocks > 0 {
                        out.push('\r');
                    }
                    blocks += 1;
                }
                "br" => out.push('\r'),
                _ => {}
            }
        } else if let Some(t) = n.text().filter(|_| n.is_text()) {
            if !(t.trim().is_empty() && t.contains('\n')) {
                out.push_str(t);
            }
        }
    }
    out
}
