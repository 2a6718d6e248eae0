//! The whole PDF: the AcroForm field tree (ISO 32000-1, 12.7.3) read into fields.

use lopdf::{Dictionary, Document, Object};
use secureform_contract::{FieldValue, Fields, Scalar};

use super::limits::{Budget, Step, TreeGuard};
use super::load::{
    as_dict, field_value, get, get_dict, join, load, partial_name, resolve, scalar_text,
};
use super::{PdfFormError, PdfLimits};
use crate::ingest::bounded::{FieldsBuilder, Ingested};

/// Field flags (ISO 32000-1, tables 226 and 230).
const FF_PUSHBUTTON: i64 = 1 << 16;
const FF_MULTISELECT: i64 = 1 << 21;

/// Reads the fields of a whole PDF (an Acrobat "submit as PDF" post) from its AcroForm.
///
/// See the module documentation for how each field type becomes a value.
pub fn parse_pdf(body: &[u8], limits: &PdfLimits) -> Result<Fields, PdfFormError> {
    read_pdf(body, limits).map(|read| read.fields)
}

/// [`parse_pdf`], with the warnings about what was read.
pub fn read_pdf(body: &[u8], limits: &PdfLimits) -> Result<Ingested, PdfFormError> {
    let mut budget = Budget::new(limits);
    let doc = load(body, &mut budget, PdfFormError::PdfMalformed)?;
    let catalog = match doc.trailer.get(b"Root") {
        Ok(root) => resolve(&doc, root)?,
        Err(_) => return Err(PdfFormError::PdfMalformed),
    };
    let catalog = as_dict(catalog).ok_or(PdfFormError::PdfMalformed)?;
    let acroform = get_dict(&doc, catalog, b"AcroForm")?.ok_or(PdfFormError::NoAcroForm)?;
    let roots = match get(&doc, acroform, b"Fields")? {
        Some(Object::Array(items)) => items.as_slice(),
        _ => return Err(PdfFormError::NoAcroForm),
    };
    let mut walk = Walk {
        doc: &doc,
        budget,
        out: FieldsBuilder::new(limits.output),
        guard: TreeGuard::default(),
    };
    let top = Inherited::default();
    for root in roots {
        walk.node(root, &top, 1)?;
    }
    Ok(walk.out.finish())
}

/// The inheritable attributes (ISO 32000-1, table 220) and the full name so far.
#[derive(Clone, Default)]
struct Inherited<'a> {
    name: String,
    ft: Option<&'a [u8]>,
    ff: i64,
    v: Option<&'a Object>,
}

struct Walk<'d, 'l> {
    doc: &'d Document,
    budget: Budget<'l>,
    /// The fields so far: a full name already there keeps its first value.
    out: FieldsBuilder,
    guard: TreeGuard,
}

impl<'d> Walk<'d, '_> {
    fn node(
        &mut self,
        obj: &'d Object,
        parent: &Inherited<'d>,
        depth: usize,
    ) -> Result<(), PdfFormError> {
        let id = match self.guard.enter(obj, depth, &mut self.budget)? {
            Step::Visit(id) => id,
            Step::Skip => return Ok(()),
        };
        let result = match as_dict(resolve(self.doc, obj)?) {
            Some(dict) => self.field(dict, parent, depth),
            None => Ok(()),
        };
        self.guard.leave(id);
        result
    }

    fn field(
        &mut self,
        dict: &'d Dictionary,
        parent: &Inherited<'d>,
        depth: usize,
    ) -> Result<(), PdfFormError> {
        let doc = self.doc;
        let partial = partial_name(doc, dict, &mut self.out)?;
        let here = Inherited {
            name: join(&parent.name, partial.as_deref(), &self.out)?,
            ft: match get(doc, dict, b"FT")? {
                Some(Object::Name(ft)) => Some(ft.as_slice()),
                _ => parent.ft,
            },
            ff: match get(doc, dict, b"Ff")? {
                Some(Object::Integer(ff)) => *ff,
                _ => parent.ff,
            },
            v: get(doc, dict, b"V")?.or(parent.v),
        };
        // Kids with /T (or with kids of their own) are fields; the rest are this field's
        // widgets, which carry its name.
        let mut has_widgets = false;
        let mut children = Vec::new();
        if let Some(Object::Array(kids)) = get(doc, dict, b"Kids")? {
            for kid in kids {
                self.budget.tick()?;
                let Some(kid_dict) = as_dict(resolve(doc, kid)?) else {
                    continue;
                };
                if kid_dict.has(b"T") || kid_dict.has(b"Kids") {
                    children.push(kid);
                } else {
                    has_widgets = true;
                }
            }
        }
        if children.is_empty() || has_widgets {
            self.terminal(dict, &here)?;
        }
        for kid in children {
            self.node(kid, &here, depth + 1)?;
        }
        Ok(())
    }

    /// Adds a terminal field's value, if it has one that is submitted.
    fn terminal(
        &mut self,
        dict: &'d Dictionary,
        field: &Inherited<'d>,
    ) -> Result<(), PdfFormError> {
        let (Some(v), false) = (field.v, field.name.is_empty()) else {
            return Ok(());
        };
        if self.out.contains(&field.name) {
            return Ok(());
        }
        let value = match field.ft {
            Some(b"Sig") => None,
            Some(b"Btn") if field.ff & FF_PUSHBUTTON != 0 => None,
            Some(b"Btn") => self.button(dict, v)?,
            Some(b"Ch") if field.ff & FF_MULTISELECT != 0 => {
                match field_value(self.doc, v, &mut self.budget, &mut self.out)? {
                    Some(FieldValue::One(one)) => Some(FieldValue::Many(vec![one])),
                    other => other,
                }
            }
            _ => field_value(self.doc, v, &mut self.budget, &mut self.out)?,
        };
        if let Some(value) = value {
            self.budget.add_field()?;
            self.out.insert(field.name.clone(), value)?;
        }
        Ok(())
    }

    /// A checkbox or radio value: the state name, or its export value through `/Opt`.
    fn button(
        &mut self,
        dict: &'d Dictionary,
        v: &'d Object,
    ) -> Result<Option<FieldValue>, PdfFormError> {
        let doc = self.doc;
        let Some(state) = scalar_text(doc, v, &mut self.budget, &mut self.out)? else {
            return Ok(None);
        };
        let export = match (get(doc, dict, b"Opt")?, state.parse::<usize>()) {
            (Some(Object::Array(opts)), Ok(index)) => match opts.get(index) {
                Some(opt) => scalar_text(doc, opt, &mut self.budget, &mut self.out)?,
                None => None,
            },
            _ => None,
        };
        Ok(Some(FieldValue::One(Scalar::Text(export.unwrap_or(state)))))
    }
}
