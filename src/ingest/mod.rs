//! Ingestion: from the bytes of a request body to ordered fields. Pure functions over bytes (the
//! multipart reader, which streams files into the spool, lives with the HTTP layer). Every limit
//! is checked while parsing, and every refusal is a [`ClientError`](crate::error::ClientError)
//! with a 4xx status.

pub mod json;
pub mod pdf;
pub mod text;
pub mod urlencoded;

use secureform_contract::Fields;

use crate::error::ClientError;
use crate::limits::Limits;

/// Checks the field count and each value's size of an already parsed set of fields.
pub fn check_field_limits(fields: &Fields, limits: &Limits) -> Result<(), ClientError> {
    if fields.len() > limits.max_fields {
        return Err(too_many_fields(limits));
    }
    for (_, value) in fields.iter() {
        for v in value.values() {
            if v.to_text().len() > limits.max_field_bytes {
                return Err(field_too_large(limits));
            }
        }
    }
    Ok(())
}

pub fn too_many_fields(limits: &Limits) -> ClientError {
    ClientError::too_large(
        "too_many_fields",
        format!("The submission has more than {} fields.", limits.max_fields),
    )
}

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
