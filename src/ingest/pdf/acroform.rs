//! The whole PDF: the AcroForm field tree (ISO 32000-1, 12.7.3) read into fields.

use lopdf::{Dictionary, Document, Object};
use secureform_contract::{FieldValue, Fields, Scalar};

use super::limits::{Budget, Step, TreeGuard};
use super::load::{
    as_dict, field_value, get, get_dict, join, load_form, partial_name, resolve, scalar_text,
};
use super::xfa::parse_datasets;
use super::{PdfFormError, PdfLimits};
use crate::ingest::bounded::{FieldsBuilder, Ingested};

/// Field flags (ISO 32000-1, tables 226 and 230).
const FF_PUSHBUTTON: i64 = 1 << 16;
const FF_MULTISELECT: i64 = 1 << 21;

/// The value a terminal field reports (the rule and its reasons are in the module docs):
/// its own `/V`; else an ancestor's non-empty `/V`, unless it is a button; never a text string
/// on a button (a button's value is a name, ISO 32000-1 12.7.4.2.3).
fn reported_value<'d>(
    doc: &'d Document,
    ft: Option<&[u8]>,
    own: Option<&'d Object>,
    inherited: Option<&'d Object>,
) -> Result<Option<&'d Object>, PdfFormError> {
    let button = ft == Some(b"Btn".as_slice());
    let v = match (own, inherited) {
        (Some(v), _) => v,
        (None, Some(v)) if !button && !is_empty_value(resolve(doc, v)?) => v,
        (None, _) => return Ok(None),
    };
    if button && matches!(resolve(doc, v)?, Object::String(..)) {
        return Ok(None);
    }
    Ok(Some(v))
}

/// An empty text string (a bare byte-order mark included) or an empty list: a value that
/// fills nothing in.
fn is_empty_value(v: &Object) -> bool {
    match v {
        Object::String(bytes, _) => {
            bytes.is_empty() || bytes == b"\xFE\xFF" || bytes == b"\xEF\xBB\xBF"
        }
        Object::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Reads the fields of a whole PDF (an Acrobat "submit as PDF" post) from its AcroForm.
///
/// See the module documentation for how each field type becomes a value.
pub fn parse_pdf(body: &[u8], limits: &PdfLimits) -> Result<Fields, PdfFormError> {
    read_pdf(body, limits).map(|read| read.fields)
}

/// [`parse_pdf`], with the warnings about what was read.
pub fn read_pdf(body: &[u8], limits: &PdfLimits) -> Result<Ingested, PdfFormError> {
    let mut budget = Budget::new(limits);
    let doc = load_form(body, &mut budget)?;
    let catalog = match doc.trailer.get(b"Root") {
        Ok(root) => resolve(&doc, root)?,
        Err(_) => return Err(PdfFormError::PdfMalformed),
    };
    let catalog = as_dict(catalog).ok_or(PdfFormError::PdfMalformed)?;
    let acroform = get_dict(&doc, catalog, b"AcroForm")?.ok_or(PdfFormError::NoAcroForm)?;
    let roots = match get(&doc, acroform, b"Fields")? {
        Some(Object::Array(items)) => items.as_slice(),
        _ => &[],
    };
    // A dynamic XFA form has no AcroForm fields: its data lives only in the XFA datasets.
    if roots.is_empty() {
        if acroform.has(b"XFA") {
            return parse_datasets(&doc, acroform, &mut budget);
        }
        if !acroform.has(b"Fields") {
            return Err(PdfFormError::NoAcroForm);
        }
    }
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
    /// The value this field reports when it is terminal (see [`reported_value`]).
    v: Option<&'a Object>,
    /// The nearest `/V` on this field or an ancestor: what its kids may inherit.
    inherit_v: Option<&'a Object>,
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
        let ft = match get(doc, dict, b"FT")? {
            Some(Object::Name(ft)) => Some(ft.as_slice()),
            _ => parent.ft,
        };
        let own_v = get(doc, dict, b"V")?;
        let here = Inherited {
            name: join(&parent.name, partial.as_deref(), &self.out)?,
            ft,
            ff: match get(doc, dict, b"Ff")? {
                Some(Object::Integer(ff)) => *ff,
                _ => parent.ff,
            },
            v: reported_value(doc, ft, own_v, parent.inherit_v)?,
            inherit_v: own_v.or(parent.inherit_v),
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
