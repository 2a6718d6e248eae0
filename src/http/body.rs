//! Reading request bodies within limits: whole bodies for the small formats, and multipart as a
//! stream whose files go straight into sealed spool files.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use secureform_contract::{Fields, FileMeta};

use crate::error::ClientError;
use crate::ingest::bounded::{FieldsBuilder, OutputError, OutputLimits};
use crate::ingest::text;
use crate::limits::Limits;
use crate::spool::{Spool, SpoolFileUpload};

use super::multipart::{self, MultipartError, MultipartReader};
use super::pace::{self, Pace, Paced, PacedError};

fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn body_too_large(limit: u64) -> ClientError {
    ClientError::too_large(
        "body_too_large",
        format!("The request body is larger than {limit} bytes."),
    )
}

/// Reads a whole body, refusing it as soon as it passes `limit`, or arrives slower than `pace`.
pub async fn read_all(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    pace: Pace,
) -> Result<web::BytesMut, ClientError> {
    if declared_length(req).is_some_and(|n| n > limit as u64) {
        return Err(body_too_large(limit as u64));
    }
    let mut payload = Paced::new(payload, pace);
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            PacedError::TooSlow => pace::too_slow(&pace),
            PacedError::Inner(_) => ClientError::malformed(
                "body_incomplete",
                "The request body could not be read completely.",
            ),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(body_too_large(limit as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What a multipart body became: text fields (still bytes, decoded together once the charset is
/// known) and the metadata of the files sealed into the spool.
pub struct MultipartParts {
    pub fields: Fields,
    pub files: Vec<FileMeta>,
}

fn multipart_refused(e: MultipartError, limit: u64) -> ClientError {
    match e {
        MultipartError::TooLarge => body_too_large(limit),
        MultipartError::Truncated => ClientError::malformed(
            "multipart_malformed",
            "The multipart body is malformed or was cut short.",
        ),
        other => ClientError::malformed(
            "multipart_malformed",
            format!("The multipart body is malformed: {other}."),
        ),
    }
}

/// Streams a multipart body: text parts are collected within the field limits, file parts are
/// sealed into spool files for submission `id` as they arrive. On error the caller discards the
/// spool files of `id`.
pub async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    limits: &Limits,
    charset: Option<&'static encoding_rs::Encoding>,
    spool: &Spool,
    id: &str,
) -> Result<MultipartParts, ClientError> {
    let pace = Pace::upload(limits);
    let payload = Paced::new(payload, pace);
    let slow = payload.flag();
    // The reader reports a stream cut off as truncated: the flag says why.
    let refused = |e| {
        if slow.is_set() {
            pace::too_slow(&pace)
        } else {
            multipart_refused(e, limits.max_upload_bytes)
        }
    };
    if declared_length(req).is_some_and(|n| n > limits.max_upload_bytes) {
        return Err(body_too_large(limits.max_upload_bytes));
    }
    let boundary = multipart::boundary(req.headers().get(header::CONTENT_TYPE)).map_err(refused)?;
    let mut reader = MultipartReader::new(payload, &boundary, limits.max_upload_bytes);
    let output = OutputLimits::from_limits(limits);
    let mut texts: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // All text parts together, names included, count against `max_body_bytes`: without it a
    // body of many text fields (each within its own limit) was bounded only by the upload limit.
    let mut text_bytes = 0usize;
    let mut files = Vec::new();
    while let Some(part) = reader.next_part().await.map_err(refused)? {
        if part.name.len() > output.max_name_bytes {
            return Err(OutputError::NameTooLarge(output.max_name_bytes).into());
        }
        match part.filename {
            None => {
                if texts.len() >= limits.max_fields {
                    return Err(OutputError::TooManyValues(limits.max_fields).into());
                }
                text_bytes = text_bytes.saturating_add(part.name.len());
                let mut value = Vec::new();
                while let Some(chunk) = reader.next_chunk().await.map_err(refused)? {
                    if value.len() + chunk.len() > limits.max_field_bytes {
                        return Err(OutputError::ValueTooLarge(limits.max_field_bytes).into());
                    }
                    text_bytes = text_bytes.saturating_add(chunk.len());
                    if text_bytes > output.max_total_bytes {
                        return Err(OutputError::TotalTooLarge(output.max_total_bytes).into());
                    }
                    value.extend_from_slice(&chunk);
                }
                texts.push((part.name.into_bytes(), value));
            }
            Some(filename) => {
                let content_type = part
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let index = files.len();
                let mut writer: Option<SpoolFileUpload> = None;
                let mut size: u64 = 0;
                while let Some(chunk) = reader.next_chunk().await.map_err(refused)? {
                    size += chunk.len() as u64;
                    if size > limits.max_file_bytes {
                        return Err(ClientError::too_large(
                            "file_too_large",
                            format!("A file is larger than {} bytes.", limits.max_file_bytes),
                        ));
                    }
                    if writer.is_none() {
                        if files.len() >= limits.max_files {
                            return Err(ClientError::too_large(
                                "too_many_files",
                                format!("The submission has more than {} files.", limits.max_files),
                            ));
                        }
                        let created = spool.file_writer(id, index).map_err(|e| {
                            tracing::error!(submission = %id, error = %e, "cannot create a spool file");
                            ClientError::unavailable()
                        })?;
                        writer = Some(SpoolFileUpload::new(created));
                    }
                    if let Some(w) = writer.as_mut() {
                        w.write(&chunk).await.map_err(|e| {
                            tracing::error!(submission = %id, error = %e, "cannot write a spool file");
                            ClientError::unavailable()
                        })?;
                    }
                }
                // A file input left empty arrives as a part with no bytes (and usually no
                // name): it is not a file.
                let Some(writer) = writer else { continue };
                let (size, sha256) = writer.finish().await.map_err(|e| {
                    tracing::error!(submission = %id, error = %e, "cannot finish a spool file");
                    ClientError::unavailable()
                })?;
                files.push(FileMeta {
                    field: part.name,
                    filename,
                    content_type,
                    size,
                    sha256,
                });
            }
        }
    }
    let encoding = text::choose(
        charset,
        texts.iter().flat_map(|(n, v)| [n.as_slice(), v.as_slice()]),
    );
    let mut fields = FieldsBuilder::new(output);
    for (name, value) in &texts {
        fields.push(
            text::decode(encoding, name)?,
            text::decode(encoding, value)?.into(),
        )?;
    }
    Ok(MultipartParts {
        fields: fields.finish().fields,
        files,
    })
}
