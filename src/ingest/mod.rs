//! Ingestion: from the bytes of a request body to ordered fields. Pure functions over bytes (the
//! multipart reader, which streams files into the spool, lives with the HTTP layer). Every limit
//! is checked while parsing, and every refusal is a [`ClientError`](crate::error::ClientError)
//! with a 4xx status.

pub mod bounded;
pub mod json;
pub mod pdf;
pub mod text;
pub mod urlencoded;

#[cfg(test)]
mod proptests;

use secureform_contract::Fields;

use crate::error::ClientError;
use crate::limits::Limits;

/// Checks an already parsed set of fields against the same limits the parsers enforce while
/// parsing (see [`bounded`]): a second line of defence for parsers outside this module.
pub fn check_field_limits(fields: &Fields, limits: &Limits) -> Result<(), ClientError> {
    let mut check = bounded::FieldsBuilder::new(bounded::OutputLimits::from_limits(limits));
    for (name, value) in fields.iter() {
        check.check_name(name.len())?;
        check.count(name, value)?;
    }
    Ok(())
}

/// 413 `too_many_fields`.
pub fn too_many_fields(limits: &Limits) -> ClientError {
    ClientError::too_large(
        "too_many_fields",
        format!("The submission has more than {} values.", limits.max_fields),
    )
}

/// 413 `field_too_large`.
pub fn field_too_large(limits: &Limits) -> ClientError {
    ClientError::too_large(
        "field_too_large",
        format!("A field is larger than {} bytes.", limits.max_field_bytes),
    )
}

/// The FDF answer Acrobat shows the user: `/Status` carries `message`.
pub fn fdf_answer(message: &str) -> Vec<u8> {
    pdf::fdf_status_body(message)
}
