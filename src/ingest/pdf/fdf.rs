//! FDF (ISO 32000-1, 12.7.7): the `/Root /FDF /Fields` tree read into fields, and the FDF
//! answer Acrobat shows its user.

use lopdf::{Document, Object};
use secureform_contract::Fields;

use super::limits::{Budget, Step, TreeGuard};
use super::load::{as_dict, field_value, get, get_dict, join, load, partial_name, resolve};
use super::text::pdf_literal_string;
use super::{find, PdfFormError, PdfLimits};
use crate::ingest::bounded::{FieldsBuilder, Ingested};

/// Reads the fields of an FDF body (an Acrobat FDF submit).
///
/// Each field dictionary in `/Fields` and its `/Kids` contributes its `/V` under its fully
/// qualified name; a field without `/V` (such as the submit button's own `/T`) is omitted.
/// Strings, names (checkbox and radio states), numbers and streams become one text value, an
/// array (a multi-select list) a list.
pub fn parse_fdf(body: &[u8], limits: &PdfLimits) -> Result<Fields, PdfFormError> {
    read_fdf(body, limits).map(|read| read.fields)
}

/// [`parse_fdf`], with the warnings about what was read.
pub fn read_fdf(body: &[u8], limits: &PdfLimits) -> Result<Ingested, PdfFormError> {
    let mut budget = Budget::new(limits);
    if body.len() > limits.max_bytes {
        return Err(PdfFormError::TooLarge);
    }
    let patched = patch_header(body).ok_or(PdfFormError::FdfMalformed)?;
    let doc = load(&patched, &mut budget, PdfFormError::FdfMalformed)?;
    let root = match doc.trailer.get(b"Root") {
        Ok(root) => as_dict(resolve(&doc, root)?),
        Err(_) => None,
    };
    let fdf = match root {
        Some(root) => get_dict(&doc, root, b"FDF")?.ok_or(PdfFormError::FdfMalformed)?,
        None => return Err(PdfFormError::FdfMalformed),
    };
    let mut walk = Walk {
        doc: &doc,
        budget,
        out: FieldsBuilder::new(limits.output),
        guard: TreeGuard::default(),
    };
    if let Some(Object::Array(roots)) = get(&doc, fdf, b"Fields")? {
        for node in roots {
            walk.node(node, "", 1)?;
        }
    }
    Ok(walk.out.finish())
}

/// lopdf reads only `%PDF-` headers. The FDF header is the same syntax with another name, so
/// a copy of the body gets `%PDF-` in place of its `%FDF-` (those five bytes, nothing else);
/// every other check lopdf makes still applies.
fn patch_header(body: &[u8]) -> Option<Vec<u8>> {
    let head = body.get(..body.len().min(1024 + 5)).unwrap_or(body);
    let at = find(head, b"%FDF-")?;
    let mut copy = body.to_vec();
    copy.get_mut(at..at + 5)?.copy_from_slice(b"%PDF-");
    Some(copy)
}

struct Walk<'d, 'l> {
    doc: &'d Document,
    budget: Budget<'l>,
    /// The fields so far: a name already there keeps its first value.
    out: FieldsBuilder,
    guard: TreeGuard,
}

impl<'d> Walk<'d, '_> {
    fn node(&mut self, obj: &'d Object, parent: &str, depth: usize) -> Result<(), PdfFormError> {
        let id = match self.guard.enter(obj, depth, &mut self.budget)? {
            Step::Visit(id) => id,
            Step::Skip => return Ok(()),
        };
        let result = self.field(obj, parent, depth);
        self.guard.leave(id);
        result
    }

    fn field(&mut self, obj: &'d Object, parent: &str, depth: usize) -> Result<(), PdfFormError> {
        let doc = self.doc;
        let Some(dict) = as_dict(resolve(doc, obj)?) else {
            return Ok(());
        };
        let partial = partial_name(doc, dict, &mut self.out)?;
        let name = join(parent, partial.as_deref(), &self.out)?;
        if let Some(v) = get(doc, dict, b"V")? {
            if !name.is_empty() && !self.out.contains(&name) {
                if let Some(value) = field_value(doc, v, &mut self.budget, &mut self.out)? {
                    self.budget.add_field()?;
                    self.out.insert(name.clone(), value)?;
                }
            }
        }
        if let Some(Object::Array(kids)) = get(doc, dict, b"Kids")? {
            for kid in kids {
                self.node(kid, &name, depth + 1)?;
            }
        }
        Ok(())
    }
}

/// The body of the answer to Acrobat: an FDF whose `/Status` is `message`, which Acrobat shows
/// the user in a dialog. `message` is written as a PDF text string (ASCII, or UTF-16BE with
/// BOM), escaped so the body stays plain ASCII. The answer never carries the client's `/F`.
pub fn fdf_status_body(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() * 2 + 96);
    out.extend_from_slice(b"%FDF-1.2\n1 0 obj\n<< /FDF << /Status ");
    out.extend_from_slice(&pdf_literal_string(message));
    out.extend_from_slice(b" >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    out
}
