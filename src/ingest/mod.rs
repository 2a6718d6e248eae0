//! Ingestion: from the bytes of a request body to ordered fields. Pure functions over bytes (the
//! multipart reader, which streams files into the spool, lives with the HTTP layer). Every limit
//! is checked while parsing, and every refusal is an [`IngestError`]: a reason and its stable
//! code, no HTTP. The HTTP layer gives each its status and answer in one table
//! (`src/http/refusal.rs`).

pub mod bounded;
pub mod json;
pub mod pdf;
pub mod text;
pub mod urlencoded;

#[cfg(test)]
mod proptests;

use secureform_contract::Fields;

use crate::limits::Limits;
use bounded::OutputError;
use pdf::PdfFormError;

/// Why a body was refused while it was read. Carries no field value, file name or content: the
/// limit that was reached, or where the body stopped being what its type says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// A limit on what a parse may produce (values, a name, a value, the total).
    #[error(transparent)]
    Limit(#[from] OutputError),
    /// The body is not well-formed JSON.
    #[error("the body is not valid JSON (line {line}, column {column})")]
    MalformedJson {
        /// Where the JSON stopped being well-formed (1-based).
        line: usize,
        /// The column on that line (1-based).
        column: usize,
    },
    /// Well-formed JSON, but not one object of strings, numbers, booleans or arrays of them.
    #[error(
        "the JSON body must be one object whose values are strings, numbers, booleans or \
         arrays of them (line {line}, column {column})"
    )]
    InvalidJsonValue {
        /// Where the unexpected value is (1-based).
        line: usize,
        /// The column on that line (1-based).
        column: usize,
    },
    /// Bytes that are not valid text in the form's charset.
    #[error("the submission is not valid {encoding}")]
    InvalidCharset {
        /// The charset's name.
        encoding: &'static str,
    },
    /// An FDF, XFDF or PDF refused by its reader.
    #[error(transparent)]
    Pdf(#[from] PdfFormError),
}

impl IngestError {
    /// The stable, machine-readable reason (the `code` of the error answer).
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Limit(e) => e.code(),
            IngestError::MalformedJson { .. } => "malformed_json",
            IngestError::InvalidJsonValue { .. } => "invalid_json_value",
            IngestError::InvalidCharset { .. } => "invalid_charset",
            IngestError::Pdf(e) => e.code(),
        }
    }

    /// A sentence for the person who sent the body: the reason, capitalized, with a full stop
    /// (a PDF refusal's as Acrobat shows it in the FDF `/Status`).
    pub fn message(&self) -> String {
        if let IngestError::Pdf(e) = self {
            return e.message();
        }
        let mut message = self.to_string();
        if let Some(first) = message.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        message.push('.');
        message
    }
}

/// Checks an already parsed set of fields against the same limits the parsers enforce while
/// parsing (see [`bounded`]): a second line of defence for parsers outside this module.
pub fn check_field_limits(fields: &Fields, limits: &Limits) -> Result<(), IngestError> {
    let mut check = bounded::FieldsBuilder::new(bounded::OutputLimits::from_limits(limits));
    for (name, value) in fields.iter() {
        check.check_name(name.len())?;
        check.count(name, value)?;
    }
    Ok(())
}

/// The FDF answer Acrobat shows the user: `/Status` carries `message`.
pub fn fdf_answer(message: &str) -> Vec<u8> {
    pdf::fdf_status_body(message)
}
