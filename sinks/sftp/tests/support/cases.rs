//! What the failure and login tests share: a config for a given server, and deliveries that
//! return the remote path or the classified failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use secureform_contract::{Delivery, DeliveryError, Fields, Sink};
use secureform_sftp::{Config, SftpSink};

use super::{bytes, submission, ulid};

pub fn config(port: u16, pin: &str, path: &Path, auth: &str) -> Config {
    toml::from_str(&format!(
        "host = \"127.0.0.1\"\nport = {port}\nhost_key_sha256 = \"{pin}\"\npath = \"{}\"\n\
         timeout_secs = 5\n{auth}",
        path.display()
    ))
    .unwrap()
}

pub fn root_key(key: &Path) -> String {
    format!("user = \"root\"\nprivate_key_file = \"{}\"", key.display())
}

pub fn fields() -> Fields {
    let mut f = Fields::new();
    f.push("email", "secret-value@example.com");
    f
}

pub async fn deliver(sink: &SftpSink, n: u32) -> Result<String, DeliveryError> {
    let (s, files) = submission(&ulid(n), fields(), vec![bytes(1000, n.into())]);
    sink.deliver(&Delivery::new(&s, &files))
        .await
        .map(|r| r.value)
}

/// The message of a permanent failure (which must not quote a field value).
pub fn permanent(r: Result<String, DeliveryError>) -> String {
    permanent_error(r).into_message()
}

/// A permanent failure (whose message must not quote a field value).
pub fn permanent_error(r: Result<String, DeliveryError>) -> DeliveryError {
    match r {
        Err(e) if !e.is_retryable() => {
            assert!(!e.message().contains("secret-value"), "{e}");
            e
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

/// The message of a retryable failure.
pub fn retryable(r: Result<String, DeliveryError>) -> String {
    retryable_error(r).into_message()
}

/// A retryable failure.
pub fn retryable_error(r: Result<String, DeliveryError>) -> DeliveryError {
    match r {
        Err(e) if e.is_retryable() => e,
        other => panic!("expected a retryable failure, got {other:?}"),
    }
}
