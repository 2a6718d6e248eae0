//! The whole message, per mode, written as a stream to the SMTP pipe ([`crate::pipe`]).
//!
//! - `pgp`: RFC 3156 `multipart/encrypted` around one armored OpenPGP message (signed, then
//!   encrypted, when the service has a signing key) of the content entity.
//! - `smime`: RFC 8551 `application/pkcs7-mime` whose body is the base64 of a CMS enveloped (or
//!   auth-enveloped) content entity.
//! - `tls`: the content entity itself under the headers.
//!
//! The content streams from the files through the encryption into the writer, so memory is one
//! chunk per stage whatever the files' size; nothing is written to disk.

use std::io::{self, Read, Write};
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
    /// PGP/MIME (RFC 3156): the whole body encrypted to the recipients' certificates.
    Pgp {
        /// The recipients' certificates.
        recipients: Arc<pgp::Recipients>,
        /// The service's signing key, when one is configured.
        signer: Option<Arc<pgp::Signer>>,
    },
    /// S/MIME: the whole body enveloped to the recipients' X.509 certificates.
    Smime {
        /// The recipients' certificates.
        recipients: Arc<smime::Recipients>,
        /// The content cipher (AES-256-CBC or AES-256-GCM).
        cipher: smime::ContentCipher,
    },
    /// No content encryption: only the SMTP connection is encrypted (TLS).
    Tls,
    /// A content-free notification; `link` is the configured link template, if any.
    Notify {
        /// The link template (`{id}` and `{form}` are filled in), if configured.
        link: Option<String>,
    },
}

/// What the headers are made of, all from the configuration.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// The `From` address.
    pub from: String,
    /// The `To` addresses.
    pub to: Vec<String>,
    /// The right-hand side of Message-IDs: the sender's domain.
    pub domain: String,
    /// The subject template.
    pub subject: Template,
    /// Whether the normalized submission is attached as JSON too.
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

/// Estimated size of the message in bytes (it sizes the deadline of the upload).
pub fn estimate(s: &Submission, protection: &Protection) -> usize {
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

/// A failure to hand the message over: the SMTP side went away (its own error is the one that
/// counts) or refused it.
fn write_error(e: &io::Error) -> DeliveryError {
    DeliveryError::retryable(
        FailureReason::Connection,
        format!("writing the message: {e}"),
    )
}

/// Writes the complete message for `s` to `out`. Blocking: call from `spawn_blocking`.
pub fn compose(
    protection: &Protection,
    env: &Envelope,
    s: &Submission,
    files: Arc<dyn FileSource>,
    out: &mut (dyn Write + Send + Sync),
) -> Result<(), DeliveryError> {
    let mut out = Tail::new(out);
    out.write_all(headers(env, s).as_bytes())
        .map_err(|e| write_error(&e))?;
    if let Protection::Notify { link } = protection {
        // Never reads the fields or the files: only the form, time, id and their count.
        return out
            .write_all(notification(s, link.as_deref()).as_bytes())
            .map_err(|e| write_error(&e));
    }
    let read_error = Arc::new(Mutex::new(None));
    let mut body = Watched {
        inner: mime::body(s, files, env.attach_json),
        error: Arc::clone(&read_error),
    };
    let result = match protection {
        Protection::Tls => io::copy(&mut body, &mut out)
            .map(|_| ())
            .map_err(|e| write_error(&e)),
        Protection::Pgp { recipients, signer } => {
            pgp_body(recipients, signer.as_deref(), s, &mut body, &mut out)
        }
        Protection::Smime { recipients, cipher } => {
            smime_body(recipients, *cipher, &mut body, &mut out)
        }
        Protection::Notify { .. } => Ok(()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) => match read_error.lock().ok().and_then(|mut slot| slot.take()) {
            Some(io) => Err(file_error(&io)),
            None => Err(e),
        },
    }
}

/// Passes bytes through and remembers the last two (to end the armor with a line break).
struct Tail<'a> {
    inner: &'a mut (dyn Write + Send + Sync),
    last: [u8; 2],
}

impl<'a> Tail<'a> {
    fn new(inner: &'a mut (dyn Write + Send + Sync)) -> Self {
        Tail {
            inner,
            last: [0; 2],
        }
    }

    fn ends_with_crlf(&self) -> bool {
        self.last == *b"\r\n"
    }
}

impl Write for Tail<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match buf.get(..n).unwrap_or_default() {
            [] => {}
            [one] => self.last = [self.last[1], *one],
            [.., a, b] => self.last = [*a, *b],
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
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
    out: &mut Tail<'_>,
) -> Result<(), DeliveryError> {
    let b = mime::boundary("encrypted", s);
    out.write_all(
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
    )
    .map_err(|e| write_error(&e))?;
    let mut armored = CrlfWriter::new(&mut *out);
    pgp::encrypt(recipients, signer, true, body, &mut armored).map_err(|e| {
        DeliveryError::permanent(
            FailureReason::Payload,
            format!("PGP encryption failed: {e}"),
        )
    })?;
    if !out.ends_with_crlf() {
        out.write_all(b"\r\n").map_err(|e| write_error(&e))?;
    }
    out.write_all(format!("\r\n--{b}--\r\n").as_bytes())
        .map_err(|e| write_error(&e))
}

fn smime_body(
    recipients: &smime::Recipients,
    cipher: smime::ContentCipher,
    body: &mut dyn Read,
    out: &mut Tail<'_>,
) -> Result<(), DeliveryError> {
    out.write_all(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={};\r\n name=\"smime.p7m\"\r\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\
             Content-Description: S/MIME Encrypted Message\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n",
            cipher.smime_type()
        )
        .as_bytes(),
    )
    .map_err(|e| write_error(&e))?;
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
