//! The one table from the parsers' and the form rules' refusals to HTTP: each reason's status,
//! and its code and sentence in the error answer ([`ClientError`]). The parsers
//! ([`crate::ingest`]) and the rules ([`crate::normalize`]) know nothing of HTTP; what a client
//! sees for each of their errors is decided here alone.
//!
//! | refusal | status |
//! |---|---|
//! | a limit on the output (values, a name, a value, the total), a document too large, with too many objects, fields or decompressed bytes | 413 |
//! | an encrypted PDF, a PDF without a form, an XFA-only form with nothing filled; a required field missing | 422 |
//! | anything else the body is not: JSON, charset, FDF, XFDF, PDF, XFA, a DTD, a loop, a timeout | 400 |

use actix_web::http::StatusCode;

use crate::error::ClientError;
use crate::ingest::bounded::OutputError;
use crate::ingest::pdf::PdfFormError;
use crate::ingest::IngestError;
use crate::normalize::NormalizeError;

/// The status a reading error is answered with (see the module's table).
pub fn ingest_status(e: &IngestError) -> StatusCode {
    match e {
        IngestError::Limit(_) => StatusCode::PAYLOAD_TOO_LARGE,
        IngestError::MalformedJson { .. }
        | IngestError::InvalidJsonValue { .. }
        | IngestError::InvalidCharset { .. } => StatusCode::BAD_REQUEST,
        IngestError::Pdf(pdf) => match pdf {
            PdfFormError::TooLarge
            | PdfFormError::TooManyObjects
            | PdfFormError::DecompressionLimit
            | PdfFormError::TooManyFields
            | PdfFormError::Output(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PdfFormError::Encrypted | PdfFormError::NoAcroForm | PdfFormError::XfaOnly => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            PdfFormError::PdfMalformed
            | PdfFormError::FdfMalformed
            | PdfFormError::XfdfMalformed
            | PdfFormError::XfdfDtdForbidden
            | PdfFormError::TooDeep
            | PdfFormError::ReferenceLoop
            | PdfFormError::Timeout
            | PdfFormError::XfaMalformed => StatusCode::BAD_REQUEST,
        },
    }
}

/// The status a form rule's refusal is answered with.
pub fn normalize_status(e: &NormalizeError) -> StatusCode {
    match e {
        NormalizeError::RequiredFieldMissing { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<IngestError> for ClientError {
    fn from(e: IngestError) -> Self {
        ClientError::new(ingest_status(&e), e.code(), e.message())
    }
}

impl From<OutputError> for ClientError {
    fn from(e: OutputError) -> Self {
        IngestError::Limit(e).into()
    }
}

impl From<PdfFormError> for ClientError {
    fn from(e: PdfFormError) -> Self {
        IngestError::Pdf(e).into()
    }
}

impl From<NormalizeError> for ClientError {
    fn from(e: NormalizeError) -> Self {
        ClientError::new(normalize_status(&e), e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_code;

    /// Every reason the parsers and the rules can give, one of each variant.
    pub(crate) fn every_refusal() -> Vec<ClientError> {
        let outputs = [
            OutputError::TooManyValues(1),
            OutputError::NameTooLarge(1),
            OutputError::ValueTooLarge(1),
            OutputError::TotalTooLarge(1),
        ];
        let pdfs = [
            PdfFormError::PdfMalformed,
            PdfFormError::FdfMalformed,
            PdfFormError::XfdfMalformed,
            PdfFormError::XfdfDtdForbidden,
            PdfFormError::TooLarge,
            PdfFormError::TooManyObjects,
            PdfFormError::TooDeep,
            PdfFormError::DecompressionLimit,
            PdfFormError::ReferenceLoop,
            PdfFormError::Timeout,
            PdfFormError::TooManyFields,
            PdfFormError::Encrypted,
            PdfFormError::NoAcroForm,
            PdfFormError::XfaOnly,
            PdfFormError::XfaMalformed,
            PdfFormError::Output(OutputError::TotalTooLarge(1)),
        ];
        let mut all: Vec<ClientError> = outputs.into_iter().map(ClientError::from).collect();
        all.extend(pdfs.into_iter().map(ClientError::from));
        all.extend(
            [
                IngestError::MalformedJson { line: 1, column: 2 },
                IngestError::InvalidJsonValue { line: 1, column: 2 },
                IngestError::InvalidCharset { encoding: "UTF-8" },
            ]
            .into_iter()
            .map(ClientError::from),
        );
        all.push(
            NormalizeError::RequiredFieldMissing {
                field: "email".into(),
            }
            .into(),
        );
        all
    }

    #[test]
    fn every_refusal_has_its_catalogued_status() {
        for e in every_refusal() {
            assert_eq!(
                error_code(e.code).map(|(s, _)| s),
                Some(e.status.as_u16()),
                "`{}` is answered with {}",
                e.code,
                e.status
            );
            assert!(e.status.is_client_error(), "{e}");
        }
    }

    #[test]
    fn messages_are_sentences() {
        let e = ClientError::from(OutputError::NameTooLarge(256));
        assert_eq!((e.status.as_u16(), e.code), (413, "field_name_too_large"));
        assert_eq!(e.message, "A field name is longer than 256 bytes.");
        let e = ClientError::from(IngestError::MalformedJson { line: 3, column: 7 });
        assert_eq!(e.message, "The body is not valid JSON (line 3, column 7).");
        let e = ClientError::from(IngestError::InvalidCharset {
            encoding: "Shift_JIS",
        });
        assert_eq!(e.message, "The submission is not valid Shift_JIS.");
        let e = ClientError::from(PdfFormError::Encrypted);
        assert_eq!(e.status.as_u16(), 422);
        assert!(e.message.ends_with("Remove the password and submit again."));
        let e = ClientError::from(NormalizeError::RequiredFieldMissing {
            field: "email".into(),
        });
        assert_eq!((e.status.as_u16(), e.code), (422, "required_field_missing"));
        assert!(e.message.contains("email"));
    }
}
