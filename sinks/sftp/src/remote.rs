//! Opening an SFTP connection (TCP, SSH handshake, host key pin, login) and classifying ssh2's
//! errors. Everything here blocks: it runs on tokio's blocking pool, never on the runtime.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use libssh2_sys as raw;
use secrecy::ExposeSecret;
use secureform_contract::{DeliveryError, FailureReason};
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
        let mut session = Session::new().map_err(|e| {
            DeliveryError::retryable(
                FailureReason::Internal,
                format!("cannot create an SSH session: {e}"),
            )
        })?;
        let millis = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        session.set_timeout(millis);
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| {
            // A lost connection or a silent server, or no algorithm in common.
            let reason = if is_transport(&e) {
                transport_reason(&e)
            } else {
                FailureReason::Tls
            };
            DeliveryError::retryable(
                reason,
                format!("SSH handshake with {} failed: {e}", self.place()),
            )
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
            .map_err(|e| {
                DeliveryError::retryable(
                    FailureReason::Connection,
                    format!("cannot resolve {}: {e}", self.host),
                )
            })?
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
        Err(match last {
            Some(e) if e.kind() == std::io::ErrorKind::TimedOut => DeliveryError::retryable(
                FailureReason::Timeout,
                format!("cannot connect to {}: {e}", self.place()),
            ),
            Some(e) => DeliveryError::retryable(
                FailureReason::Connection,
                format!("cannot connect to {}: {e}", self.place()),
            ),
            None => DeliveryError::retryable(
                FailureReason::Connection,
                format!("{} resolves to no address", self.host),
            ),
        })
    }

    fn check_host_key(&self, session: &Session) -> Result<(), DeliveryError> {
        let offered = session
            .host_key_hash(HashType::Sha256)
            .and_then(Fingerprint::from_digest)
            .ok_or_else(|| {
                DeliveryError::permanent(
                    FailureReason::Tls,
                    format!(
                        "{} offered no host key to compare with the pinned {}",
                        self.place(),
                        self.pin
                    ),
                )
            })?;
        if offered != self.pin {
            let kind = session
                .host_key()
                .map(|(_, t)| format!(" ({t:?} key)"))
                .unwrap_or_default();
            return Err(DeliveryError::permanent(
                FailureReason::Tls,
                format!(
                    "host key mismatch for {}: expected {} (host_key_sha256), the server offered {offered}{kind}; not logged in, nothing uploaded",
                    self.place(),
                    self.pin
                ),
            ));
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
            Ok(()) => Err(DeliveryError::permanent(
                FailureReason::Auth,
                format!(
                    "{} did not accept {method} authentication for user {}",
                    self.place(),
                    self.user
                ),
            )),
            Err(e) if is_transport(&e) => Err(DeliveryError::retryable(
                transport_reason(&e),
                format!(
                    "connection to {} lost during authentication: {e}",
                    self.place()
                ),
            )),
            Err(e) => Err(DeliveryError::permanent(
                FailureReason::Auth,
                format!(
                    "{method} authentication as {} on {} failed: {e}",
                    self.user,
                    self.place()
                ),
            )),
        }
    }
}

/// Whether an error means the connection itself failed (lost, timed out, closed).
pub(crate) fn is_transport(e: &ssh2::Error) -> bool {
    is_transport_code(e.code())
}

fn is_transport_code(code: ErrorCode) -> bool {
    matches!(
        code,
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

/// A timeout or another broken connection.
fn transport_reason(e: &ssh2::Error) -> FailureReason {
    match e.code() {
        ErrorCode::Session(raw::LIBSSH2_ERROR_SOCKET_TIMEOUT | raw::LIBSSH2_ERROR_TIMEOUT) => {
            FailureReason::Timeout
        }
        _ => FailureReason::Connection,
    }
}

/// Classifies an SSH/SFTP failure of `what`: the server refusing an operation for good (denied,
/// read-only, unsupported, not a folder) is permanent; a lost connection, a timeout, a full disk
/// or a generic failure is worth retrying. See [`class_of`] for the reasons.
pub(crate) fn classify(e: &ssh2::Error, what: &str) -> DeliveryError {
    let (retryable, reason) = class_of(e.code());
    let message = format!("{what}: {}", describe(e));
    if retryable {
        DeliveryError::retryable(reason, message)
    } else {
        DeliveryError::permanent(reason, message)
    }
}

/// Whether an SSH/SFTP error code is worth retrying, and why it failed:
///
/// | code | retryable | reason |
/// | --- | --- | --- |
/// | SFTP permission denied; SSH request or channel request denied | no | `auth` |
/// | SFTP write-protected, operation unsupported | no | `rejected_by_peer` |
/// | SFTP not a folder, invalid file name, link loop | no | `bad_config` |
/// | SFTP no space, quota exceeded | yes | `quota` |
/// | SSH timeouts | yes | `timeout` |
/// | SSH socket, banner, channel closed | yes | `connection` |
/// | any other SFTP status or SSH error | yes | `peer_error` |
pub(crate) fn class_of(code: ErrorCode) -> (bool, FailureReason) {
    use FailureReason::*;
    match code {
        ErrorCode::SFTP(raw::LIBSSH2_FX_PERMISSION_DENIED) => (false, Auth),
        ErrorCode::SFTP(raw::LIBSSH2_FX_WRITE_PROTECT | raw::LIBSSH2_FX_OP_UNSUPPORTED) => {
            (false, RejectedByPeer)
        }
        ErrorCode::SFTP(
            raw::LIBSSH2_FX_NOT_A_DIRECTORY
            | raw::LIBSSH2_FX_INVALID_FILENAME
            | raw::LIBSSH2_FX_LINK_LOOP,
        ) => (false, BadConfig),
        ErrorCode::SFTP(
            raw::LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM | raw::LIBSSH2_FX_QUOTA_EXCEEDED,
        ) => (true, Quota),
        ErrorCode::SFTP(_) => (true, PeerError),
        ErrorCode::Session(
            raw::LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED | raw::LIBSSH2_ERROR_REQUEST_DENIED,
        ) => (false, Auth),
        ErrorCode::Session(raw::LIBSSH2_ERROR_SOCKET_TIMEOUT | raw::LIBSSH2_ERROR_TIMEOUT) => {
            (true, Timeout)
        }
        code @ ErrorCode::Session(_) if is_transport_code(code) => (true, Connection),
        ErrorCode::Session(_) => (true, PeerError),
    }
}

/// An error's text without anything the peer chose beyond the message libssh2 attaches.
fn describe(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::SFTP(code) => format!("SFTP status {code} ({})", e.message()),
        ErrorCode::Session(code) => format!("SSH error {code} ({})", e.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_classified() {
        use FailureReason::*;
        let sftp = |c| class_of(ErrorCode::SFTP(c));
        let ssh = |c| class_of(ErrorCode::Session(c));
        assert_eq!(sftp(raw::LIBSSH2_FX_PERMISSION_DENIED), (false, Auth));
        assert_eq!(sftp(raw::LIBSSH2_FX_WRITE_PROTECT), (false, RejectedByPeer));
        assert_eq!(sftp(raw::LIBSSH2_FX_NOT_A_DIRECTORY), (false, BadConfig));
        assert_eq!(sftp(raw::LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM), (true, Quota));
        assert_eq!(sftp(raw::LIBSSH2_FX_QUOTA_EXCEEDED), (true, Quota));
        assert_eq!(sftp(raw::LIBSSH2_FX_FAILURE), (true, PeerError));
        assert_eq!(ssh(raw::LIBSSH2_ERROR_REQUEST_DENIED), (false, Auth));
        assert_eq!(ssh(raw::LIBSSH2_ERROR_TIMEOUT), (true, Timeout));
        assert_eq!(
            ssh(raw::LIBSSH2_ERROR_SOCKET_DISCONNECT),
            (true, Connection)
        );
        assert_eq!(ssh(raw::LIBSSH2_ERROR_KEX_FAILURE), (true, PeerError));
    }
}
