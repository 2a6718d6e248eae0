//! Test support shared by the sink crates' tests and the service's black-box tests
//! (`tests/api`), so that no test includes another crate's files with `#[path]`.
//!
//! A dev-dependency only (`publish = false`): its helpers fail the test (panic) rather than
//! return errors, which is why the workspace's `unwrap_used`/`expect_used`/`panic` lints are
//! allowed here.
//!
//! - [`cmd`]: finding and running the external programs the tests drive;
//! - [`net`]: free loopback ports;
//! - [`fs`]: private temporary folders;
//! - [`ids`]: ULID-shaped test ids and unique names;
//! - [`pki`]: test CAs and a loopback server certificate made by `openssl`;
//! - [`sshd`]: a real OpenSSH server and client keys made by `ssh-keygen`;
//! - [`webhook`]: the Python HTTPS webhook receiver (`receiver.py`, verifying with the
//!   `standardwebhooks` package).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cmd;
pub mod fs;
pub mod ids;
pub mod net;
pub mod pki;
pub mod sshd;
pub mod webhook;
