//! Opening an SFTP connection (TCP, SSH handshake, host key pin, login) and classifying ssh2's
//! errors. Everything here blocks: it runs on tokio's blocking pool, never on the runtime.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use libssh2_sys as raw;
use secrecy::ExposeSecret;
use secureform_contract::DeliveryError;
use ssh2::{ErrorCode, HashType, Session, Sftp};

use crate::config::Fingerprint;
use crate::secrets::Auth;

/// Where and how to log in.
#[derive(Debug)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pin: Fingerprint,
    pub timeout: Duration,
    pub auth: Auth,
}

/// An authenticated session with its SFTP channel, reused across deliveries.
pub(crate) struct Conn {
    // Declared first so it is dropped (its channel closed) before the session.
    pub sftp: Sftp,
    _session: Session,
}

impl Target {
    fn place(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Connects, checks the pinned host key before anything else is sent, logs in and opens SFTP.
    pub(crate) fn connect(&self) -> Result<Conn, DeliveryError> {
        let tcp = self.tcp()?;
        let mut session = Session::new()
            .map_err(|e| DeliveryError::Retryable(format!("cannot create an SSH session: {e}")))?;
        let millis = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        session.set_timeout(millis);
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| {
            DeliveryError::Retryable(format!("SSH handshake with {} failed: {e}", self.place()))
        })?;
        self.check_host_key(&session)?;
        self.login(&session)?;
        let sftp = session.sftp().map_err(|e| {
            classify(
                &e,
                &format!("opening the SFTP subsystem on {}", self.place()),
            )
        })?;
        Ok(Conn {
            sftp,
            _session: session,
        })
    }

    fn tcp(&self) -> Result<TcpStream, DeliveryError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| DeliveryError::Retryable(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(tcp) => {
                    // Small requests (SFTP opens, renames) should not wait for Nagle.
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(DeliveryError::Retryable(match last {
            Some(e) => format!("cannot connect to {}: {e}", self.place()),
            None => format!("{} resolves to no address", self.host),
        }))
    }

    fn check_host_key(&self, session: &Session) -> Result<(), DeliveryError> {
        let offered = session
            .host_key_hash(HashType::Sha256)
            .and_then(Fingerprint::from_digest)
            .ok_or_else(|| {
                DeliveryError::Permanent(format!(
                    "{} offered no host key to compare with the pinned {}",
                    self.place(),
                    self.pin
                ))
            })?;
        if offered != self.pin {
            let kind = session
                .host_key()
                .map(|(_, t)| format!(" ({t:?} key)"))
                .unwrap_or_default();
            return Err(DeliveryError::Permanent(format!(
                "host key mismatch for {}: expected {} (host_key_sha256), the server offered {offered}{kind}; not logged in, nothing uploaded",
                self.place(),
                self.pin
            )));
        }
        Ok(())
    }

    fn login(&self, session: &Session) -> Result<(), DeliveryError> {
        let (method, result) = match &self.auth {
            Auth::Key {
                private_key,
                passphrase,
            } => (
                "public key",
                session.userauth_pubkey_memory(
                    &self.user,
                    None,
                    private_key.expose_secret(),
                    passphrase.as_ref().map(|p| p.expose_secret()),
                ),
            ),
            Auth::Password(password) => (
                "password",
                session.userauth_password(&self.user, password.expose_secret()),
            ),
        };
        match result {
            Ok(()) if session.authenticated() => Ok(()),
            Ok(()) => Err(DeliveryError::Permanent(format!(
                "{} did not accept {method} authentication for user {}",
                self.place(),
                self.user
            ))),
            Err(e) if is_transport(&e) => Err(DeliveryError::Retryable(format!(
                "connection to {} lost during authentication: {e}",
                self.place()
            ))),
            Err(e) => Err(DeliveryError::Permanent(format!(
                "{method} authentication as {} on {} failed: {e}",
                self.user,
                self.place()
            ))),
        }
    }
}

/// Whether an error means the connection itself failed (lost, timed out, closed).
pub(crate) fn is_transport(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Session(
            raw::LIBSSH2_ERROR_SOCKET_SEND
                | raw::LIBSSH2_ERROR_SOCKET_RECV
                | raw::LIBSSH2_ERROR_SOCKET_DISCONNECT
                | raw::LIBSSH2_ERROR_SOCKET_TIMEOUT
                | raw::LIBSSH2_ERROR_TIMEOUT
                | raw::LIBSSH2_ERROR_BANNER_RECV
                | raw::LIBSSH2_ERROR_BANNER_SEND
                | raw::LIBSSH2_ERROR_BAD_SOCKET
                | raw::LIBSSH2_ERROR_CHANNEL_CLOSED
                | raw::LIBSSH2_ERROR_CHANNEL_EOF_SENT
                | raw::LIBSSH2_ERROR_CHANNEL_FAILURE
                | raw::LIBSSH2_ERROR_EAGAIN
        )
    )
}

/// Classifies an SSH/SFTP failure of `what`: the server refusing an operation for good (denied,
/// read-only, unsupported, not a folder) is permanent; a lost connection, a timeout, a full disk
/// or a generic failure is worth retrying.
pub(crate) fn classify(e: &ssh2::Error, what: &str) -> DeliveryError {
    let permanent = match e.code() {
        ErrorCode::SFTP(code) => matches!(
            code,
            raw::LIBSSH2_FX_PERMISSION_DENIED
                | raw::LIBSSH2_FX_WRITE_PROTECT
                | raw::LIBSSH2_FX_OP_UNSUPPORTED
                | raw::LIBSSH2_FX_NOT_A_DIRECTORY
                | raw::LIBSSH2_FX_INVALID_FILENAME
                | raw::LIBSSH2_FX_LINK_LOOP
        ),
        ErrorCode::Session(
            raw::LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED | raw::LIBSSH2_ERROR_REQUEST_DENIED,
        ) => true,
        ErrorCode::Session(_) => false,
    };
    let reason = format!("{what}: {}", describe(e));
    if permanent {
        DeliveryError::Permanent(reason)
    } else {
        DeliveryError::Retryable(reason)
    }
}

/// An error's text without anything the peer chose beyond the message libssh2 attaches.
fn describe(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::SFTP(code) => format!("SFTP status {code} ({})", e.message()),
        ErrorCode::Session(code) => format!("SSH error {code} ({})", e.message()),
    }
}
