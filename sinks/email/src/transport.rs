//! SMTP over rustls with lettre's connection type: TLS always (STARTTLS required for `smtp://`,
//! implicit for `smtps://`), optional AUTH, a small pool of open connections, a deadline on every
//! step, and the classification of failures.
//!
//! Why not lettre's `AsyncSmtpTransport`: its tokio flavour bounds only the connect with the
//! timeout (a server that accepts and then stays silent would hold a delivery forever), and its
//! `send_raw` wants the whole message in memory. Here every command has a deadline, the message
//! streams from its writer through a bounded pipe into `message_iter` as it is produced (see
//! [`crate::pipe`]: the TCP stream under lettre's TLS is wrapped so that the DATA phase can wait
//! for the next chunk), and a connection that failed or timed out in any way is dropped, never
//! returned to the pool. lettre still does the TLS (STARTTLS or implicit, with the configured
//! roots), AUTH, the commands, the dot-stuffing and the parsing of replies.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::Error as SmtpError;
use lettre::Address;
use secrecy::{ExposeSecret, SecretString};
use secureform_contract::{ConfigError, DeliveryError, FailureReason};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::config::Endpoint;
use crate::pipe::{Feed, Gate, Gated, Lettre};

/// Open connections kept per sink.
const POOL_SIZE: usize = 4;
/// How long an idle connection is kept before it is closed rather than reused.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// The slowest upload rate allowed for, to size the deadline of a message's DATA.
const MIN_BYTES_PER_SEC: u64 = 256 * 1024;

/// A configured SMTP client. Connections are made on first use, never when it is built.
pub struct Smtp {
    endpoint: Endpoint,
    tls: TlsParameters,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

/// Everything needed to set up the client.
pub struct SmtpSettings<'a> {
    /// Where to connect, and whether TLS starts at once.
    pub endpoint: &'a Endpoint,
    /// A CA file (its path, for messages, and its PEM bytes) to trust instead of the system's roots.
    pub ca_pem: Option<(&'a Path, Vec<u8>)>,
    /// User name and password for AUTH, when configured.
    pub credentials: Option<(String, SecretString)>,
    /// The name sent in EHLO, when configured.
    pub hello_name: Option<String>,
    /// The limit for connecting and for each SMTP step.
    pub timeout: Duration,
}

impl Smtp {
    /// Sets up the TLS parameters (the private CA alone when given, else the system's roots).
    pub fn new(settings: SmtpSettings<'_>) -> Result<Smtp, ConfigError> {
        let endpoint = settings.endpoint.clone();
        let mut tls = TlsParameters::builder(endpoint.host.clone());
        if let Some((path, pem)) = settings.ca_pem {
            let cert = Certificate::from_pem(&pem).map_err(|_| {
                ConfigError::new(
                    "ca_file",
                    format!("{}: not a PEM certificate", path.display()),
                )
            })?;
            tls = tls
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| {
            ConfigError::new("smtp_url", format!("cannot set up TLS for the server: {e}"))
        })?;
        Ok(Smtp {
            endpoint,
            tls,
            hello: settings
                .hello_name
                .map(ClientId::Domain)
                .unwrap_or_default(),
            credentials: settings
                .credentials
                .map(|(user, pw)| Credentials::new(user, pw.expose_secret().to_owned())),
            timeout: settings.timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Bounds one step by the timeout; running out is an error like any other.
    async fn step<T>(
        &self,
        limit: Duration,
        what: &str,
        f: impl Future<Output = Result<T, SmtpError>>,
    ) -> Result<T, Failed> {
        match tokio::time::timeout(limit, f).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Failed {
                reply: e.status().is_some(),
                error: classify(&e),
            }),
            Err(_) => Err(Failed {
                reply: false,
                error: DeliveryError::retryable(
                    FailureReason::Timeout,
                    format!("SMTP: no answer to {what} within {} s", limit.as_secs()),
                ),
            }),
        }
    }

    /// A new connection: TLS (implicit or STARTTLS, never plaintext past the greeting), AUTH.
    ///
    /// The TCP stream is made here and wrapped in a [`Gated`] stream (under lettre's TLS), so
    /// that the DATA phase can wait for the message as it is produced (see [`crate::pipe`]).
    async fn connect(&self) -> Result<Conn, Failed> {
        let gate = Gate::default();
        let server = (self.endpoint.host.as_str(), self.endpoint.port);
        let tcp = match tokio::time::timeout(self.timeout, TcpStream::connect(server)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(Failed {
                    reply: false,
                    error: DeliveryError::retryable(
                        FailureReason::Connection,
                        format!("SMTP: cannot connect to the server: {e}"),
                    ),
                })
            }
            Err(_) => {
                return Err(Failed {
                    reply: false,
                    error: DeliveryError::retryable(
                        FailureReason::Timeout,
                        format!(
                            "SMTP: no answer to the connection within {} s",
                            self.timeout.as_secs()
                        ),
                    ),
                })
            }
        };
        let _ = tcp.set_nodelay(true);
        let gated = Gated::new(tcp, gate.clone());
        let stream: Box<dyn AsyncTokioStream> = if self.endpoint.implicit_tls {
            #[allow(deprecated)]
            let mut net = AsyncNetworkStream::use_existing_tokio1(Box::new(gated));
            self.step(
                self.timeout,
                "the TLS handshake",
                net.upgrade_tls(self.tls.clone()),
            )
            .await?;
            Box::new(Lettre(net))
        } else {
            Box::new(gated)
        };
        let connect = AsyncSmtpConnection::connect_with_transport(stream, &self.hello);
        let mut conn = self.step(self.timeout * 2, "the greeting", connect).await?;
        if !self.endpoint.implicit_tls {
            // Fails when the server does not offer STARTTLS: nothing is sent in the clear.
            let tls = self.tls.clone();
            self.step(self.timeout, "STARTTLS", conn.starttls(tls, &self.hello))
                .await?;
        }
        if let Some(credentials) = &self.credentials {
            let mechanisms = [Mechanism::Plain, Mechanism::Login];
            self.step(self.timeout, "AUTH", conn.auth(&mechanisms, credentials))
                .await?;
        }
        Ok(Conn { smtp: conn, gate })
    }

    /// Connects as a delivery would (TLS, AUTH) and says goodbye: the health check.
    pub async fn probe(&self) -> Result<(), DeliveryError> {
        let mut conn = self.connect().await.map_err(|f| f.error)?;
        let _ = tokio::time::timeout(self.timeout, conn.smtp.quit()).await;
        Ok(())
    }

    /// An idle connection that still answers NOOP (and `true`), or a new one (and `false`).
    async fn checkout(&self) -> Result<(Conn, bool), Failed> {
        loop {
            let next = self.idle.lock().await.pop();
            let Some((mut conn, since)) = next else {
                return Ok((self.connect().await?, false));
            };
            if since.elapsed() < POOL_IDLE {
                let alive = tokio::time::timeout(self.timeout, conn.smtp.test_connected()).await;
                if matches!(alive, Ok(true)) {
                    return Ok((conn, true));
                }
            }
            // Stale or silent: close it without waiting on it.
            drop(conn);
        }
    }

    /// Sends one message on `conn`. `feed` is taken only once the server accepted DATA: a
    /// failure before that leaves it for another connection. A failure after the upload began
    /// is never worth a retry on another connection here (the server may have the message
    /// already, and the stream cannot be replayed).
    async fn transfer(
        &self,
        conn: &mut Conn,
        from: &Address,
        to: &[Address],
        feed: &mut Option<Feed>,
        size_hint: u64,
    ) -> Result<(), Failed> {
        let mail = Mail::new(Some(from.clone()), vec![]);
        self.step(self.timeout, "MAIL FROM", conn.smtp.command(mail))
            .await?;
        for rcpt in to {
            let rcpt = Rcpt::new(rcpt.clone(), vec![]);
            self.step(self.timeout, "RCPT TO", conn.smtp.command(rcpt))
                .await?;
        }
        self.step(self.timeout, "DATA", conn.smtp.command(Data))
            .await?;
        let Some(message) = feed.take() else {
            return Err(Failed {
                reply: true,
                error: DeliveryError::retryable(
                    FailureReason::Internal,
                    "SMTP: the message was already sent",
                ),
            });
        };
        conn.gate.attach(message);
        let upload = Duration::from_secs(size_hint / MIN_BYTES_PER_SEC);
        let limit = self.timeout * 2 + upload;
        let chunks = conn.gate.chunks();
        let result = self
            .step(limit, "the message", conn.smtp.message_iter(chunks))
            .await
            .map_err(|f| Failed { reply: true, ..f });
        // Dropping the rest of the message stops its writer, whatever happened.
        drop(conn.gate.detach());
        result.map(|_| ())
    }

    /// Sends the message read from `feed` (about `size_hint` bytes: it sizes the deadline of
    /// the upload). When a pooled connection breaks before the message went out, one new
    /// connection is tried; a failed connection is dropped, never pooled again.
    pub async fn send(
        &self,
        from: &Address,
        to: &[Address],
        feed: Feed,
        size_hint: u64,
    ) -> Result<(), DeliveryError> {
        let mut feed = Some(feed);
        let (mut conn, reused) = self.checkout().await.map_err(|f| f.error)?;
        let result = match self
            .transfer(&mut conn, from, to, &mut feed, size_hint)
            .await
        {
            Err(f) if reused && !f.reply && feed.is_some() => {
                drop(conn);
                conn = self.connect().await.map_err(|f| f.error)?;
                self.transfer(&mut conn, from, to, &mut feed, size_hint)
                    .await
            }
            other => other,
        };
        match result {
            Ok(()) => {
                let mut idle = self.idle.lock().await;
                if idle.len() < POOL_SIZE {
                    idle.push((conn, Instant::now()));
                }
                Ok(())
            }
            Err(f) => Err(f.error),
        }
    }
}

/// An open connection and the gate of its stream.
struct Conn {
    smtp: AsyncSmtpConnection,
    gate: Gate,
}

/// A failed step, and whether the server answered it (rather than the connection failing).
struct Failed {
    error: DeliveryError,
    reply: bool,
}

/// 5xx replies and client-side refusals (no STARTTLS offered, no usable AUTH mechanism) are
/// permanent; 4xx, network, TLS and protocol failures are retryable. The message keeps the
/// server's reply: only the envelope and the message reach the server, never in a command. The
/// reason comes from the reply code ([`reply_reason`]) or the kind of failure.
pub fn classify(e: &SmtpError) -> DeliveryError {
    let message = format!("SMTP: {e}");
    let reason = match e.status() {
        Some(code) => reply_reason(u16::from(code), &message),
        None if e.is_timeout() => FailureReason::Timeout,
        None if is_tls(e) => FailureReason::Tls,
        None if e.is_client() => client_reason(&message),
        None if e.is_response() => FailureReason::PeerError,
        None => FailureReason::Connection,
    };
    if e.is_permanent() || e.is_client() {
        DeliveryError::permanent(reason, message)
    } else {
        DeliveryError::retryable(reason, message)
    }
}

/// The reason of a negative SMTP reply (RFC 5321 section 4.2, RFC 4954 for AUTH, RFC 3463 for
/// the enhanced status codes the reply `text` may carry):
///
/// | reply | reason |
/// | --- | --- |
/// | 530, 534, 535, 538, 454 (authentication required, too weak, refused, needs encryption; temporary AUTH failure) | `auth` |
/// | 452, 552 (out of storage), or an enhanced code X.2.2 (mailbox full) / X.3.1 (mail system full) | `quota` |
/// | other 5xx | `rejected_by_peer` |
/// | other 4xx | `peer_error` |
pub fn reply_reason(code: u16, text: &str) -> FailureReason {
    let enhanced = |suffix: &str| {
        ['4', '5']
            .iter()
            .any(|class| text.contains(&format!(" {class}{suffix}")))
    };
    match code {
        530 | 534 | 535 | 538 | 454 => FailureReason::Auth,
        452 | 552 => FailureReason::Quota,
        _ if enhanced(".2.2 ") || enhanced(".3.1 ") => FailureReason::Quota,
        500..=599 => FailureReason::RejectedByPeer,
        _ => FailureReason::PeerError,
    }
}

/// Whether a failure is TLS's: lettre's own TLS kind, or a connection failure caused by the
/// handshake (see [`secureform_contract::caused_by_tls`]).
fn is_tls(e: &SmtpError) -> bool {
    e.is_tls() || secureform_contract::caused_by_tls(e)
}

/// The reason of a refusal by lettre itself, before or without a reply.
fn client_reason(message: &str) -> FailureReason {
    if message.contains("STARTTLS") || message.contains("not encrypted") {
        FailureReason::Tls
    } else if message.contains("authentication") || message.contains("challenge") {
        FailureReason::Auth
    } else {
        FailureReason::Other
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn reply_codes_give_reasons() {
        use FailureReason::*;
        for code in [530, 534, 535, 538, 454] {
            assert_eq!(reply_reason(code, "x"), Auth, "{code}");
        }
        assert_eq!(
            reply_reason(452, "4.3.1 Insufficient system storage"),
            Quota
        );
        assert_eq!(reply_reason(552, "5.3.4 Message too big"), Quota);
        assert_eq!(
            reply_reason(550, "SMTP: permanent error (550): 5.2.2 Mailbox full"),
            Quota
        );
        assert_eq!(
            reply_reason(450, "SMTP: transient error (450): 4.2.2 over quota"),
            Quota
        );
        assert_eq!(
            reply_reason(550, "SMTP: permanent error (550): 5.1.1 No such user"),
            RejectedByPeer
        );
        assert_eq!(reply_reason(554, "x"), RejectedByPeer);
        assert_eq!(reply_reason(421, "x"), PeerError);
        assert_eq!(reply_reason(451, "4.7.1 greylisted"), PeerError);
    }

    #[test]
    fn client_refusals_give_reasons() {
        assert_eq!(
            client_reason("SMTP: internal client error: STARTTLS is not supported on this server"),
            FailureReason::Tls
        );
        assert_eq!(
            client_reason(
                "SMTP: internal client error: No compatible authentication mechanism was found"
            ),
            FailureReason::Auth
        );
        assert_eq!(
            client_reason("SMTP: internal client error: Unknown error code"),
            FailureReason::Other
        );
    }
}
