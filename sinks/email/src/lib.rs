//! SecureForm's email sink: each submission becomes one message that stays encrypted in the
//! recipient's mailbox (`pgp`: PGP/MIME, `smime`: S/MIME), or — in `tls` mode, warned about — a
//! plain message that is only ever sent over TLS.
//!
//! The path of a delivery:
//!
//! 1. [`mime`] lays out the content entity (text and HTML listings of the fields, an optional
//!    `submission.json`, one attachment per file) as a stream that reads each file only when it
//!    gets there;
//! 2. [`message`] streams it through the encryption (`secureform_crypto::pgp` or
//!    `secureform_crypto::smime`) and the armor or base64 behind the headers, on a blocking
//!    thread, into a bounded [`pipe`] (4 chunks of 64 KiB);
//! 3. [`transport`] sends the chunks as they come over a pooled lettre SMTP connection (rustls),
//!    with a deadline on every step: lettre's DATA phase reads the pipe without blocking, and a
//!    wrapper on the TCP stream under the TLS layer makes it wait for the next chunk.
//!
//! So the message is never held whole, in memory or on disk: a delivery's memory is a few
//! chunks per stage whatever the attachments' size (plus, for PGP, the OpenPGP writer's
//! partial-body buffers of 4 MiB each); `tests/memory.rs` measures it. If the writer fails (a
//! file cannot be read) the connection is poisoned so that the message's final `.` never goes
//! out and the server discards it; if the server refuses or the connection breaks mid-way, the
//! pipe closes and the writer stops. Either way a retry composes and sends the message again.
//!
//! Headers come from the configuration, except the Subject, which is a template that may name
//! only fields marked safe for it and is rendered so that no value can add a header line
//! ([`subject`]). The Message-ID is derived from the submission id, so a redelivery (the
//! dispatcher delivers at least once) is recognisable as the same message.
//!
//! Failures are classified, not retried: SMTP 4xx, timeouts, TLS and connection failures are
//! retryable; 5xx replies (including refused credentials) and anything that will fail the same
//! way again are permanent, with the server's reply kept in the message and a
//! [`secureform_contract::FailureReason`] from the reply code (`auth` for 530/534/535/538/454,
//! `quota` for 452/552 or a full mailbox, `rejected_by_peer` for other 5xx, `peer_error` for
//! other 4xx; see [`transport::reply_reason`]). Messages never carry field values, file names or
//! contents into logs or errors.

#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod message;
pub mod mime;
pub mod pipe;
pub mod render;
pub mod subject;
pub mod transport;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::Address;
use secrecy::SecretString;
use secureform_contract::{
    AtRest, BuildContext, ConfigError, Delivery, DeliveryError, FailureReason, Receipt, Sink,
    SinkSpec,
};
use secureform_crypto::{pgp, smime};

pub use config::{Config, Mode, SmimeCipher};
use message::{Envelope, Protection};
use transport::{Smtp, SmtpSettings};

/// A built email sink, ready to deliver.
pub struct EmailSink {
    name: String,
    protection: Protection,
    envelope: Arc<Envelope>,
    from: Address,
    to: Vec<Address>,
    smtp: Smtp,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

use secureform_secrets::resolve;

impl EmailSink {
    /// Loads keys/certificates/secrets (relative paths resolved against `base_dir`, the config
    /// file's folder), checks them (errors name the key), and prepares the client. No delivery
    /// happens here, and no connection is made.
    pub async fn build(
        sink_name: &str,
        config: &Config,
        base_dir: &Path,
        signer: Option<Arc<pgp::Signer>>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let endpoint = config.endpoint()?;
        let from = config.from_address()?;
        let to = config.to_addresses()?;
        let keys: Vec<PathBuf> = config
            .recipient_keys
            .iter()
            .map(|p| resolve(base_dir, p))
            .collect();
        let key_err = |e: &dyn std::fmt::Display| ConfigError::new("recipient_keys", e.to_string());
        let protection = match config.mode {
            Mode::Pgp => Protection::Pgp {
                recipients: Arc::new(pgp::Recipients::load(&keys).map_err(|e| key_err(&e))?),
                signer,
            },
            Mode::Smime => Protection::Smime {
                recipients: Arc::new(smime::Recipients::load(&keys).map_err(|e| key_err(&e))?),
                cipher: match config.cipher() {
                    SmimeCipher::Aes256Cbc => smime::ContentCipher::Aes256Cbc,
                    SmimeCipher::Aes256Gcm => smime::ContentCipher::Aes256Gcm,
                },
            },
            Mode::Tls => Protection::Tls,
            Mode::Notify => Protection::Notify {
                link: config.link.clone(),
            },
        };
        let ca_pem = match &config.ca_file {
            Some(path) => {
                let path = resolve(base_dir, path);
                let pem = std::fs::read(&path).map_err(|e| {
                    ConfigError::new("ca_file", format!("{}: cannot read: {e}", path.display()))
                })?;
                Some((path, pem))
            }
            None => None,
        };
        let credentials = match &config.username {
            Some(user) => Some((user.clone(), password(config, base_dir)?)),
            None => None,
        };
        let smtp = Smtp::new(SmtpSettings {
            endpoint: &endpoint,
            ca_pem: ca_pem.as_ref().map(|(p, pem)| (p.as_path(), pem.clone())),
            credentials,
            hello_name: config.hello_name.clone(),
            timeout: Duration::from_secs(config.timeout()),
        })?;
        let envelope = Envelope {
            from: from.to_string(),
            to: to.iter().map(Address::to_string).collect(),
            domain: from.domain().to_owned(),
            subject: config.subject_template()?,
            attach_json: config.attach_json(),
        };
        Ok(EmailSink {
            name: sink_name.to_owned(),
            protection,
            envelope: Arc::new(envelope),
            from,
            to,
            smtp,
        })
    }
}

/// The SMTP password from `password_env` or `password_file` (which must not be readable by
/// group or others).
fn password(config: &Config, base_dir: &Path) -> Result<SecretString, ConfigError> {
    secureform_secrets::SecretSource {
        env: config.password_env.as_deref(),
        file: config.password_file.as_deref(),
        keys: secureform_secrets::Keys {
            env: "password_env",
            file: "password_file",
        },
    }
    .load_text(base_dir)?
    .ok_or_else(|| ConfigError::new("username", "needs password_env or password_file"))
}

/// `type = "email"`.
pub struct Spec;

impl SinkSpec for Spec {
    type Config = Config;
    type Sink = EmailSink;

    fn validate(config: &Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn at_rest(config: &Config) -> AtRest {
        config.at_rest()
    }

    /// Building connects nowhere: it loads and checks the certificates, keys and secrets.
    async fn check_offline(config: &Config, context: &BuildContext<'_>) -> Result<(), ConfigError> {
        EmailSink::build(context.name, config, context.base_dir, None)
            .await
            .map(drop)
    }

    async fn build(config: &Config, context: BuildContext<'_>) -> Result<EmailSink, ConfigError> {
        EmailSink::build(context.name, config, context.base_dir, context.signer).await
    }
}

impl Sink for EmailSink {
    /// Connects to the SMTP server as a delivery would (TLS verified, STARTTLS required unless
    /// the URL says implicit TLS, AUTH) and quits, sending no message: for the start-up report,
    /// `secureform check --online` and `/readyz`.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        self.smtp.probe().await
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
        let s = d.submission;
        let protection = self.protection.clone();
        let envelope = Arc::clone(&self.envelope);
        let submission = Arc::clone(s);
        let files = Arc::clone(d.files);
        let size_hint = u64::try_from(message::estimate(s, &protection)).unwrap_or(u64::MAX);
        let (mut writer, feed) = pipe::pipe();
        // The writer: MIME → encryption → base64/armor → the pipe, on a blocking thread. It
        // waits while the pipe is full and stops when the SMTP side goes away.
        let producer = tokio::task::spawn_blocking(move || {
            let composed =
                message::compose(&protection, &envelope, &submission, files, &mut writer).and_then(
                    |()| {
                        writer.finish().map_err(|e| {
                            DeliveryError::retryable(
                                FailureReason::Connection,
                                format!("writing the message: {e}"),
                            )
                        })
                    },
                );
            (composed, writer.closed_by_reader())
        });
        let sent = self.smtp.send(&self.from, &self.to, feed, size_hint).await;
        let (composed, reader_gone) = producer.await.map_err(|_| {
            DeliveryError::retryable(
                FailureReason::Internal,
                "composing the message: task failed",
            )
        })?;
        // A failure is logged once, by the dispatcher, with its reason and what happens next.
        // When the writer failed on its own (a file, the encryption), its reason is the one
        // that counts: the SMTP side only saw the message cut short.
        let size = match (composed, sent) {
            (Ok(size), Ok(())) => size,
            (Err(e), _) if !reader_gone => return Err(e),
            (_, Err(e)) => return Err(e),
            (Err(e), Ok(())) => return Err(e),
        };
        tracing::info!(sink = %self.name, submission = %s.id, bytes = size,
            files = s.files.len(), "email sent");
        Ok(Receipt::new(
            "message_id",
            message::message_id(s, &self.envelope.domain),
        ))
    }
}
