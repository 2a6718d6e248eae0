//! The request body: the normalized submission as JSON, each file inline (base64) or as a link,
//! optionally wrapped in an OpenPGP message.

use std::io::Read;
use std::sync::Arc;

use base64::Engine;
use secureform_contract::{DeliveryError, FailureReason, FileMeta, FileSource, Source, Submission};
use secureform_crypto::pgp::{self, Recipients, Signer};
use serde::Serialize;
use zeroize::Zeroizing;

/// The content type of a plain body.
pub const JSON: &str = "application/json";
/// The content type of an encrypted body (an ASCII-armored OpenPGP message).
pub const PGP: &str = "application/pgp-encrypted";

/// How files and encryption are rendered.
pub struct Render {
    pub inline_file_bytes: u64,
    pub api_file_url: Option<String>,
    pub pgp: Option<Pgp>,
}

/// OpenPGP encryption to the recipients, signed by the service's key when configured.
pub struct Pgp {
    pub recipients: Recipients,
    pub signer: Option<Arc<Signer>>,
}

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    form: &'a str,
    received_at: &'a str,
    source: Source,
    fields: &'a secureform_contract::Fields,
    files: Vec<FileOut<'a>>,
}

#[derive(Serialize)]
struct FileOut<'a> {
    #[serde(flatten)]
    meta: &'a FileMeta,
    /// The file's bytes, base64 (standard alphabet, padded), when at most `inline_file_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_base64: Option<String>,
    /// Where the API serves the file, when too large to inline and `api_file_url` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl Render {
    /// The bytes to send and their content type. Blocking (reads files, encrypts): call it on
    /// the blocking pool. The plaintext JSON is zeroized once encrypted.
    pub fn render(
        &self,
        s: &Submission,
        files: &dyn FileSource,
    ) -> Result<(Vec<u8>, &'static str), DeliveryError> {
        let mut out = Vec::with_capacity(s.files.len());
        for (index, meta) in s.files.iter().enumerate() {
            let mut file = FileOut {
                meta,
                content_base64: None,
                url: None,
            };
            if meta.size <= self.inline_file_bytes {
                file.content_base64 = Some(self.inline(files, index, meta.size)?);
            } else if let Some(pattern) = &self.api_file_url {
                file.url = Some(
                    pattern
                        .replace("{id}", &s.id)
                        .replace("{n}", &index.to_string()),
                );
            }
            out.push(file);
        }
        let body = Body {
            id: &s.id,
            form: &s.form,
            received_at: &s.received_at,
            source: s.source,
            fields: &s.fields,
            files: out,
        };
        let json = Zeroizing::new(serde_json::to_vec(&body).map_err(|e| {
            DeliveryError::permanent(
                FailureReason::Payload,
                format!("the submission cannot be written as JSON: {e}"),
            )
        })?);
        match &self.pgp {
            None => Ok((json.to_vec(), JSON)),
            Some(p) => {
                let mut message = Vec::with_capacity(json.len() / 2 * 3 + 1024);
                pgp::encrypt(
                    &p.recipients,
                    p.signer.as_deref(),
                    true,
                    &mut json.as_slice(),
                    &mut message,
                )
                .map_err(|e| {
                    DeliveryError::permanent(
                        FailureReason::Payload,
                        format!("OpenPGP encryption of the body failed: {e}"),
                    )
                })?;
                Ok((message, PGP))
            }
        }
    }

    /// File `index` as base64, refusing one whose length differs from its metadata.
    fn inline(
        &self,
        files: &dyn FileSource,
        index: usize,
        size: u64,
    ) -> Result<String, DeliveryError> {
        let reading = |e: std::io::Error| {
            DeliveryError::retryable(
                FailureReason::Internal,
                format!("reading file {index}: {e}"),
            )
        };
        let reader = files.open(index).map_err(reading)?;
        let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
        reader
            .take(size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(reading)?;
        if bytes.len() as u64 != size {
            return Err(DeliveryError::permanent(
                FailureReason::Payload,
                format!(
                    "file {index} has {} bytes where its metadata says {size}",
                    bytes.len()
                ),
            ));
        }
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()))
    }
}
