//! SecureForm's SFTP sink: uploads each submission to a customer's server.
//!
//! # Design
//! - **Pinned host key, checked first.** After the SSH handshake and before a single
//!   authentication byte is sent, the server's host key SHA-256 is compared with
//!   `host_key_sha256` (as `ssh-keygen -lf` prints it). A mismatch is a permanent failure whose
//!   reason names both fingerprints. There is no trust on first use and no known_hosts file.
//! - **Login** with a private key (ed25519 or RSA, OpenSSH or PEM format, optionally encrypted
//!   with a passphrase from the environment or a file) or a password (environment or file). The
//!   secrets are loaded once by [`SftpSink::build`] into `secrecy` types; secret files readable by
//!   group or others are refused.
//! - **Files**: `<path>/<id>/<index>` for the submission's files,
//!   then `<path>/<id>.<format>` (`json`, `csv` or `xml`), `.pgp` appended when encrypted. Each is
//!   streamed in chunks to a temporary `.part-<random>` name and renamed when complete, so a reader
//!   of the folder never sees half a file, and a redelivery replaces the same names (idempotent on
//!   the submission id). Missing folders are created.
//! - **Formats.** `json`: the normalized submission. `csv` (RFC 4180, CRLF): a header row `id`,
//!   `form`, `received_at`, then each field name, and one data row (several values joined with
//!   ", "); a cell starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'` so spreadsheets
//!   do not run formulas a client typed. `xml`: `<field name="...">` elements (field names are
//!   never element names), escaped; text XML 1.0 cannot carry is base64 with `encoding="base64"`.
//! - **OpenPGP** (`pgp_recipients`): every uploaded file is an OpenPGP message to the recipients,
//!   signed with the service's key when one is configured; only then is the sink reported as
//!   encrypted at rest. Without it, SFTP protects the transfer only, and the sink says so.
//! - **Blocking I/O off the runtime.** ssh2 blocks, so a delivery runs on tokio's blocking pool.
//!   One session is kept and reused across deliveries (deliveries to one sink are serialized on
//!   it); when a reused session turns out broken, the sink reconnects once. Every blocking SSH
//!   operation is bounded by `timeout_secs`.
//! - **Classification.** Refused or lost connections, timeouts, full disks: retryable.
//!   Authentication, host key mismatch, permission denied: permanent. Reasons carry host, user,
//!   ids and fingerprints, never field values, file names or contents.

#![warn(missing_docs)]

mod config;
mod remote;
mod render;
mod secrets;
mod upload;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use secureform_contract::{
    AtRest, BuildContext, ConfigError, Delivery, DeliveryError, FailureReason, FileSource, Receipt,
    Sink, SinkSpec, Submission,
};
use secureform_crypto::pgp::{Recipients, Signer};

pub use config::{Config, Fingerprint, Format, DEFAULT_TIMEOUT_SECS, MAX_TIMEOUT_SECS};

use remote::{Conn, Target};
use upload::{Layout, Pgp};

/// The SFTP sink, built from its [`Config`].
pub struct SftpSink {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    target: Target,
    layout: Layout,
    /// The session reused across deliveries; `None` until the first one, or after a failure.
    conn: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for SftpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpSink")
            .field("name", &self.inner.name)
            .field("host", &self.inner.target.host)
            .field("port", &self.inner.target.port)
            .field("pin", &self.inner.target.pin)
            .finish_non_exhaustive()
    }
}

impl SftpSink {
    /// Loads keys, certificates and secrets (relative paths resolved against `base_dir`, the
    /// config file's folder), checks them (errors name the key), and prepares the client. No
    /// connection is made here.
    pub async fn build(
        sink_name: &str,
        config: &Config,
        base_dir: &Path,
        signer: Option<Arc<Signer>>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let pin = Fingerprint::parse(&config.host_key_sha256)?;
        let auth = secrets::load(config, base_dir)?;
        let pgp = match &config.pgp_recipients {
            Some(paths) => {
                let paths: Vec<_> = paths
                    .iter()
                    .map(|p| secrets::resolve(base_dir, p))
                    .collect();
                let recipients = Recipients::load(&paths)
                    .map_err(|e| ConfigError::new("pgp_recipients", e.to_string()))?;
                Some(Pgp { recipients, signer })
            }
            None => None,
        };
        Ok(SftpSink {
            inner: Arc::new(Inner {
                name: sink_name.to_owned(),
                target: Target {
                    host: config.host.clone(),
                    port: config.port,
                    user: config.user.clone(),
                    pin,
                    timeout: config.timeout(),
                    auth,
                },
                layout: Layout {
                    path: config.path.clone(),
                    format: config.format,
                    pgp,
                },
                conn: Mutex::new(None),
            }),
        })
    }

    /// The sink's name in the configuration.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

/// `type = "sftp"`.
pub struct Spec;

impl SinkSpec for Spec {
    type Config = Config;
    type Sink = SftpSink;

    fn validate(config: &Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn at_rest(config: &Config) -> AtRest {
        config.at_rest()
    }

    /// Building connects nowhere: it loads and checks the key, secrets and certificates.
    async fn check_offline(config: &Config, context: &BuildContext<'_>) -> Result<(), ConfigError> {
        SftpSink::build(context.name, config, context.base_dir, None)
            .await
            .map(drop)
    }

    async fn build(config: &Config, context: BuildContext<'_>) -> Result<SftpSink, ConfigError> {
        SftpSink::build(context.name, config, context.base_dir, context.signer).await
    }
}

impl Sink for SftpSink {
    /// Connects, checks the pinned host key, logs in and looks at the target folder, writing
    /// nothing: for the start-up report, `secureform check --online` and `/readyz`.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner.target.connect()?;
            let path = std::path::Path::new(&inner.layout.path);
            match conn.sftp.stat(path) {
                Ok(stat) if stat.is_dir() => Ok(()),
                Ok(_) => Err(DeliveryError::permanent(
                    FailureReason::BadConfig,
                    format!("`{}` on the server is not a folder", inner.layout.path),
                )),
                Err(e) => Err(remote::classify(&e, "looking at the target folder")),
            }
        })
        .await
        .map_err(|_| {
            DeliveryError::retryable(FailureReason::Internal, "the SFTP health check was lost")
        })?
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
        let inner = Arc::clone(&self.inner);
        let submission = Arc::clone(d.submission);
        let files = Arc::clone(d.files);
        tokio::task::spawn_blocking(move || inner.deliver(&submission, files.as_ref()))
            .await
            .map_err(|_| {
                DeliveryError::retryable(FailureReason::Internal, "the SFTP delivery task was lost")
            })?
    }
}

impl Inner {
    fn slot(&self) -> MutexGuard<'_, Option<Conn>> {
        // A panic while holding the lock leaves at worst a half-used session: drop it.
        self.conn.lock().unwrap_or_else(|poisoned| {
            let mut guard = poisoned.into_inner();
            *guard = None;
            guard
        })
    }

    /// Delivers on the cached session, or a new one; a broken cached session is replaced once.
    fn deliver(&self, s: &Submission, files: &dyn FileSource) -> Result<Receipt, DeliveryError> {
        let mut slot = self.slot();
        if let Some(conn) = slot.take() {
            match self.attempt(&conn, s, files) {
                Ok(receipt) => {
                    *slot = Some(conn);
                    return Ok(receipt);
                }
                Err(failure) if failure.error.is_retryable() => {
                    tracing::debug!(sink = %self.name, submission = %s.id,
                        "reused SFTP session failed; reconnecting once");
                }
                Err(failure) => {
                    if failure.connection_ok {
                        *slot = Some(conn);
                    }
                    return Err(self.failed(s, failure.error));
                }
            }
        }
        let conn = self.target.connect().map_err(|e| self.failed(s, e))?;
        match self.attempt(&conn, s, files) {
            Ok(receipt) => {
                *slot = Some(conn);
                Ok(receipt)
            }
            Err(failure) => {
                if failure.connection_ok {
                    *slot = Some(conn);
                }
                Err(self.failed(s, failure.error))
            }
        }
    }

    fn attempt(
        &self,
        conn: &Conn,
        s: &Submission,
        files: &dyn FileSource,
    ) -> Result<Receipt, upload::Failure> {
        let written = self.layout.deliver(&conn.sftp, s, files)?;
        tracing::info!(sink = %self.name, submission = %s.id, files = s.files.len(),
            bytes = written.plaintext_bytes, "delivered over SFTP");
        Ok(Receipt::new("remote_path", written.document))
    }

    /// A failed attempt: logged at debug level only (the dispatcher logs each failed delivery
    /// once, with its reason and what happens next).
    fn failed(&self, s: &Submission, error: DeliveryError) -> DeliveryError {
        tracing::debug!(sink = %self.name, submission = %s.id,
            retryable = error.is_retryable(), reason = %error.reason(), "SFTP attempt failed");
        error
    }
}
