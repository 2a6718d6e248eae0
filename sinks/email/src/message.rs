//! The whole message, per mode, written into one buffer that is sent as is.
//!
//! - `pgp`: RFC 3156 `multipart/encrypted` around one armored OpenPGP message (signed, then
//!   encrypted, when the service has a signing key) of the content entity.
//! - `smime`: RFC 8551 `application/pkcs7-mime` whose body is the base64 of a CMS enveloped (or
//!   auth-enveloped) content entity.
//! - `tls`: the content entity itself under the headers.
//!
//! The content streams from the files through the encryption into the buffer, so memory is the
//! finished message (about 1.4 times the files' size, base64 being 4/3) plus one chunk per stage.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use secureform_contract::{DeliveryError, FailureReason, FileSource, Submission};
use secureform_crypto::{pgp, smime};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

use crate::codec::{Base64Writer, CrlfWriter};
use crate::mime::{self, token};
use crate::subject::{encode_unstructured, Template};

/// How the content is protected.
#[derive(Clone)]
pub enum Protection {
    Pgp {
        recipients: Arc<pgp::Recipients>,
        signer: Option<Arc<pgp::Signer>>,
    },
    Smime {
        recipients: Arc<smime::Recipients>,
        cipher: smime::ContentCipher,
    },
    Tls,
    /// A content-free notification; `link` is the configured link template, if any.
    Notify {
        link: Option<String>,
    },
}

/// What the headers are made of, all from the configuration.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
    /// The right-hand side of Message-IDs: the sender's domain.
    pub domain: String,
    pub subject: Template,
    pub attach_json: bool,
}

/// The Message-ID of a submission: the same on every redelivery, so a copy is recognisable.
pub fn message_id(s: &Submission, domain: &str) -> String {
    format!("<{}.{}@{}>", token(&s.id), token(&s.form), domain)
}

fn date(s: &Submission) -> String {
    let when = OffsetDateTime::parse(&s.received_at, &Rfc3339)
        .unwrap_or_else(|_| OffsetDateTime::now_utc());
    when.format(&Rfc2822).unwrap_or_default()
}

fn headers(env: &Envelope, s: &Submission) -> String {
    format!(
        "Date: {}\r\nFrom: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\n\
         Auto-Submitted: auto-generated\r\n",
        date(s),
        env.from,
        env.to.join(",\r\n "),
        encode_unstructured(&env.subject.render(s)),
        message_id(s, &env.domain),
    )
}

/// Estimated size of the message, to allocate its buffer once.
fn estimate(s: &Submission, protection: &Protection) -> usize {
    let fields: usize = s
        .fields
        .iter()
        .map(|(n, v)| n.len() + v.to_text().len())
        .sum();
    let files: u64 = s.files.iter().map(|f| f.size / 57 * 78 + 600).sum();
    let content = 8192 + fields.saturating_mul(12) + usize::try_from(files).unwrap_or(0);
    match protection {
        Protection::Pgp { .. } => content / 64 * 88 + 4096,
        Protection::Smime { .. } => content / 57 * 78 + 4096,
        Protection::Tls => content + 2048,
        Protection::Notify { .. } => 4096,
    }
}

/// Remembers the first read error of the content, to tell a file problem from a crypto one.
struct Watched<R> {
    inner: R,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if let Ok(mut slot) = self.error.lock() {
                slot.get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// A failure to read a file of the submission: corrupt or mismatched data cannot get better
/// (`payload`); any other local failure may (`internal`).
pub fn file_error(e: &io::Error) -> DeliveryError {
    let message = format!("reading the submission's files: {e}");
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::NotFound => {
            DeliveryError::permanent(FailureReason::Payload, message)
        }
        _ => DeliveryError::retryable(FailureReason::Internal, message),
    }
}

/// Writes the complete message for `s`. Blocking: call from `spawn_blocking`.
pub fn compose(
    protection: &Protection,
    env: &Envelope,
    s: &Submission,
    files: Arc<dyn FileSource>,
) -> Result<Vec<u8>, DeliveryError> {
    let mut out = Vec::new();
    // Only a hint: when it cannot be had, the buffer grows as usual.
    let _ = out.try_reserve(estimate(s, protection));
    out.extend_from_slice(headers(env, s).as_bytes());
    if let Protection::Notify { link } = protection {
        // Never reads the fields or the files: only the form, time, id and their count.
        out.extend_from_slice(notification(s, link.as_deref()).as_bytes());
        return Ok(out);
    }
    let read_error = Arc::new(Mutex::new(None));
    let mut body = Watched {
        inner: mime::body(s, files, env.attach_json),
        error: Arc::clone(&read_error),
    };
    let result = match protection {
        Protection::Tls => io::copy(&mut body, &mut out)
            .map(|_| ())
            .map_err(|e| file_error(&e)),
        Protection::Pgp { recipients, signer } => {
            pgp_body(recipients, signer.as_deref(), s, &mut body, &mut out)
        }
        Protection::Smime { recipients, cipher } => {
            smime_body(recipients, *cipher, &mut body, &mut out)
        }
        Protection::Notify { .. } => Ok(()),
    };
    match result {
        Ok(()) => Ok(out),
        Err(e) => match read_error.lock().ok().and_then(|mut slot| slot.take()) {
            Some(io) => Err(file_error(&io)),
            None => Err(e),
        },
    }
}

/// The body of a content-free notification: which form, when, the id, how many files, and
/// where to see it. Form names are configuration and ids are ULIDs; both are made plain here.
fn notification(s: &Submission, link: Option<&str>) -> String {
    let form = token(&s.form);
    let id = token(&s.id);
    let link = match link {
        Some(template) => template.replace("{id}", &id).replace("{form}", &form),
        None => format!("GET /api/v1/submissions/{id} (and /api/v1/documents/{id})"),
    };
    format!(
        "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
         A submission arrived.\r\n\r\n\
         Form: {form}\r\n\
         Received: {}\r\n\
         Submission id: {id}\r\n\
         Files: {}\r\n\
         See it: {link}\r\n\r\n\
         This notification holds none of the submission's content.\r\n",
        s.received_at
            .chars()
            .filter(char::is_ascii_graphic)
            .collect::<String>(),
        s.files.len(),
    )
}

fn pgp_body(
    recipients: &pgp::Recipients,
    signer: Option<&pgp::Signer>,
    s: &Submission,
    body: &mut dyn Read,
    out: &mut Vec<u8>,
) -> Result<(), DeliveryError> {
    let b = mime::boundary("encrypted", s);
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n \
             boundary=\"{b}\"\r\n\r\n\
             This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156).\r\n\
             --{b}\r\n\
             Content-Type: application/pgp-encrypted\r\n\
             Content-Description: PGP/MIME version identification\r\n\r\n\
             Version: 1\r\n\r\n\
             --{b}\r\n\
             Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
             Content-Description: OpenPGP encrypted message\r\n\
             Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut armored = CrlfWriter::new(&mut *out);
    pgp::encrypt(recipients, signer, true, body, &mut armored).map_err(|e| {
        DeliveryError::permanent(
            FailureReason::Payload,
            format!("PGP encryption failed: {e}"),
        )
    })?;
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    Ok(())
}

fn smime_body(
    recipients: &smime::Recipients,
    cipher: smime::ContentCipher,
    body: &mut dyn Read,
    out: &mut Vec<u8>,
) -> Result<(), DeliveryError> {
    out.extend_from_slice(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={};\r\n name=\"smime.p7m\"\r\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\
             Content-Description: S/MIME Encrypted Message\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n",
            cipher.smime_type()
        )
        .as_bytes(),
    );
    let failed = |e: &dyn std::fmt::Display| {
        DeliveryError::permanent(
            FailureReason::Payload,
            format!("S/MIME encryption failed: {e}"),
        )
    };
    let mut encoded = Base64Writer::new(&mut *out);
    smime::encrypt(recipients, cipher, body, &mut encoded).map_err(|e| failed(&e))?;
    encoded.finish().map_err(|e| failed(&e))?;
    Ok(())
}
