//! The one accumulator every parser pushes its names and values into, so that the output of a
//! parse is bounded while it is produced, whatever the input format.
//!
//! A parser asks [`FieldsBuilder::check_name`] before it builds a name (a PDF's fully qualified
//! name is checked as each part is joined, before a deeper name is allocated) and
//! [`FieldsBuilder::check_value`] before it copies a value it can measure first; every value it
//! then adds is counted and measured once more. The limits (see [`OutputLimits`]):
//! - the number of values: every value counts, each repetition of a name and each item of a
//!   list; a name with an empty list counts as one, so names are bounded too;
//! - the size of each name and of each value;
//! - the total of all names and values added, so that one PDF string referenced by many fields
//!   costs its size once per reference and cannot turn a small body into a huge submission.
//!
//! Repeated names are found through the hash index of [`Fields`], so a parse is linear in the
//! number of values.

use secureform_contract::{FieldValue, Fields, Scalar};

use crate::limits::Limits;

/// What one parse may produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits {
    /// Most values (see the module documentation for what counts).
    pub max_values: usize,
    /// Longest name, in bytes of UTF-8.
    pub max_name_bytes: usize,
    /// Largest value, in bytes of UTF-8.
    pub max_value_bytes: usize,
    /// Most bytes of all names and values together: each value costs its size and its name's
    /// (an empty list, its name's).
    pub max_total_bytes: usize,
}

impl OutputLimits {
    /// The limits of `[limits]`: `max_fields`, `max_name_bytes`, `max_field_bytes`, and
    /// `max_body_bytes` for the total.
    pub fn from_limits(limits: &Limits) -> Self {
        OutputLimits {
            max_values: limits.max_fields,
            max_name_bytes: limits.max_name_bytes,
            max_value_bytes: limits.max_field_bytes,
            max_total_bytes: limits.max_body_bytes,
        }
    }
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits::from_limits(&Limits::default())
    }
}

/// A limit of [`OutputLimits`] that a parse reached; carries the limit, never a name or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("the submission has more than {0} values")]
    TooManyValues(usize),
    #[error("a field name is longer than {0} bytes")]
    NameTooLarge(usize),
    #[error("a field is larger than {0} bytes")]
    ValueTooLarge(usize),
    #[error("the fields of the submission are larger than {0} bytes in total")]
    TotalTooLarge(usize),
}

impl OutputError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            OutputError::TooManyValues(_) => "too_many_fields",
            OutputError::NameTooLarge(_) => "field_name_too_large",
            OutputError::ValueTooLarge(_) => "field_too_large",
            OutputError::TotalTooLarge(_) => "fields_too_large",
        }
    }
}

/// Something a client should know about an accepted submission. The text never carries a
/// field's name or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IngestWarning {
    /// A PDF text string (a value or a name) was not valid UTF-16 (an unpaired surrogate, an
    /// odd last byte) or UTF-8; each invalid part was kept as U+FFFD.
    InvalidText,
}

impl IngestWarning {
    /// The sentence shown in the `warnings` array of the JSON answer.
    pub fn message(&self) -> &'static str {
        match self {
            IngestWarning::InvalidText => {
                "A text in the form was not valid UTF-16 or UTF-8 (for example an unpaired surrogate); each invalid part was kept as U+FFFD."
            }
        }
    }
}

/// What a parse produced: the fields, and warnings about them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ingested {
    pub fields: Fields,
    /// Each warning once, in a stable order.
    pub warnings: Vec<IngestWarning>,
}

impl From<Fields> for Ingested {
    fn from(fields: Fields) -> Self {
        Ingested {
            fields,
            warnings: Vec::new(),
        }
    }
}

/// The bounded accumulator (see the module documentation).
#[derive(Debug)]
pub struct FieldsBuilder {
    limits: OutputLimits,
    fields: Fields,
    values: usize,
    total: usize,
    warnings: Vec<IngestWarning>,
}

impl FieldsBuilder {
    pub fn new(limits: OutputLimits) -> Self {
        FieldsBuilder {
            limits,
            fields: Fields::new(),
            values: 0,
            total: 0,
            warnings: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &OutputLimits {
        &self.limits
    }

    /// Refuses a name of `len` bytes, before it is built.
    pub fn check_name(&self, len: usize) -> Result<(), OutputError> {
        if len > self.limits.max_name_bytes {
            return Err(OutputError::NameTooLarge(self.limits.max_name_bytes));
        }
        Ok(())
    }

    /// Refuses a value of `len` bytes, before it is copied.
    pub fn check_value(&self, len: usize) -> Result<(), OutputError> {
        if len > self.limits.max_value_bytes {
            return Err(OutputError::ValueTooLarge(self.limits.max_value_bytes));
        }
        Ok(())
    }

    /// Refuses `values` more values of `bytes` in total before they are added (for a list read
    /// item by item, so its items are not all copied before the check).
    pub fn check_more(&self, values: usize, bytes: usize) -> Result<(), OutputError> {
        if self.values.saturating_add(values) > self.limits.max_values {
            return Err(OutputError::TooManyValues(self.limits.max_values));
        }
        if self.total.saturating_add(bytes) > self.limits.max_total_bytes {
            return Err(OutputError::TotalTooLarge(self.limits.max_total_bytes));
        }
        Ok(())
    }

    /// Whether a name already has a value (PDF formats keep the first occurrence).
    pub fn contains(&self, name: &str) -> bool {
        self.fields.contains(name)
    }

    /// Adds one value under `name`; a repeated name makes a list.
    pub fn push(&mut self, name: String, value: Scalar) -> Result<(), OutputError> {
        self.account(&name, 1, scalar_len(&value))?;
        self.fields.push(name, value);
        Ok(())
    }

    /// Adds a whole value: a list stays a list, even of one item or none.
    pub fn insert(&mut self, name: String, value: FieldValue) -> Result<(), OutputError> {
        match &value {
            FieldValue::One(v) => self.account(&name, 1, scalar_len(v))?,
            FieldValue::Many(vs) => {
                let count = vs.len().max(1);
                // Each item costs its name too, as if added one by one (see `push_item`).
                let mut bytes = name.len().saturating_mul(count - 1);
                for v in vs {
                    let len = scalar_len(v);
                    self.check_value(len)?;
                    bytes = bytes.saturating_add(len);
                }
                self.account(&name, count, bytes)?;
            }
        }
        self.fields.insert(name, value);
        Ok(())
    }

    /// Counts a value that is kept elsewhere (for checking fields parsed without a builder).
    pub fn count(&mut self, name: &str, value: &FieldValue) -> Result<(), OutputError> {
        match value {
            FieldValue::One(v) => self.account(name, 1, scalar_len(v)),
            FieldValue::Many(vs) if vs.is_empty() => self.account(name, 1, 0),
            FieldValue::Many(vs) => vs
                .iter()
                .try_for_each(|v| self.account(name, 1, scalar_len(v))),
        }
    }

    /// Adds the values of a list one by one, each counted as it comes (for readers that stream
    /// a list's items, so a list of millions is refused at the limit, not after).
    pub fn push_item(&mut self, name: &str, value: Scalar) -> Result<(), OutputError> {
        let len = scalar_len(&value);
        self.account(name, 1, len)?;
        match self.fields.get(name) {
            Some(_) => self.fields.push(name, value),
            None => self.fields.insert(name, FieldValue::Many(vec![value])),
        }
        Ok(())
    }

    /// Records a warning (each kind once).
    pub fn warn(&mut self, warning: IngestWarning) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
            self.warnings.sort_unstable();
        }
    }

    /// The fields, and the warnings.
    pub fn finish(self) -> Ingested {
        Ingested {
            fields: self.fields,
            warnings: self.warnings,
        }
    }

    /// Counts `count` values of `bytes` in total under `name`, or refuses them.
    fn account(&mut self, name: &str, count: usize, bytes: usize) -> Result<(), OutputError> {
        self.check_name(name.len())?;
        if count == 1 {
            self.check_value(bytes)?;
        }
        let values = self.values.saturating_add(count);
        if values > self.limits.max_values {
            return Err(OutputError::TooManyValues(self.limits.max_values));
        }
        let total = self.total.saturating_add(name.len()).saturating_add(bytes);
        if total > self.limits.max_total_bytes {
            return Err(OutputError::TotalTooLarge(self.limits.max_total_bytes));
        }
        self.values = values;
        self.total = total;
        Ok(())
    }
}

/// The size of a value as text (what the limits measure).
fn scalar_len(value: &Scalar) -> usize {
    match value {
        Scalar::Text(s) => s.len(),
        Scalar::Bool(true) => 4,
        Scalar::Bool(false) => 5,
        Scalar::Number(n) => n.to_string().len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> OutputLimits {
        OutputLimits {
            max_values: 4,
            max_name_bytes: 3,
            max_value_bytes: 5,
            max_total_bytes: 20,
        }
    }

    #[test]
    fn every_value_counts() {
        let mut b = FieldsBuilder::new(small());
        b.push("a".into(), "1".into()).unwrap();
        b.push("a".into(), "2".into()).unwrap();
        b.insert("l".into(), FieldValue::Many(vec!["x".into()]))
            .unwrap();
        b.insert("e".into(), FieldValue::Many(Vec::new())).unwrap();
        assert_eq!(
            b.push("a".into(), "3".into()),
            Err(OutputError::TooManyValues(4))
        );
        let out = b.finish();
        assert_eq!(
            serde_json::to_string(&out.fields).unwrap(),
            r#"{"a":["1","2"],"l":["x"],"e":[]}"#
        );
    }

    #[test]
    fn names_values_and_total_are_bounded() {
        let mut b = FieldsBuilder::new(small());
        assert_eq!(
            b.push("long".into(), "1".into()),
            Err(OutputError::NameTooLarge(3))
        );
        assert_eq!(
            b.push("a".into(), "123456".into()),
            Err(OutputError::ValueTooLarge(5))
        );
        assert_eq!(
            b.insert("a".into(), FieldValue::Many(vec!["123456".into()])),
            Err(OutputError::ValueTooLarge(5))
        );
        b.push("abc".into(), "12345".into()).unwrap();
        b.push("abc".into(), "12345".into()).unwrap();
        // 8 + 8 bytes so far; 3 + 2 more would make 21.
        assert_eq!(
            b.push("abc".into(), "12".into()),
            Err(OutputError::TotalTooLarge(20))
        );
        b.push("abc".into(), "1".into()).unwrap();
    }

    #[test]
    fn streamed_items_make_a_list() {
        let mut b = FieldsBuilder::new(OutputLimits::default());
        b.push_item("l", "x".into()).unwrap();
        b.push_item("l", Scalar::Bool(true)).unwrap();
        b.warn(IngestWarning::InvalidText);
        b.warn(IngestWarning::InvalidText);
        let out = b.finish();
        assert_eq!(
            serde_json::to_string(&out.fields).unwrap(),
            r#"{"l":["x",true]}"#
        );
        assert_eq!(out.warnings, [IngestWarning::InvalidText]);
    }

    #[test]
    fn errors_carry_their_code_and_a_sentence() {
        let e = super::super::IngestError::from(OutputError::NameTooLarge(256));
        assert_eq!(e.code(), "field_name_too_large");
        assert_eq!(e.message(), "A field name is longer than 256 bytes.");
    }
}
