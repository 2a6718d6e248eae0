//! Black-box tests of the running service: the real binary, started on a free port in a
//! temporary folder, driven over HTTP and through its own CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod captcha;
mod cli;
mod console;
mod console_pgp;
mod contract;
mod crash;
mod data_path;
mod documents;
mod documents_disk;
mod email;
mod first_hour;
mod hostile;
mod http_layer;
mod integrator;
mod limits;
mod pdf_forms;
mod pgp_documents;
mod postgres;
mod readme;
mod retention;
mod spam;
mod spool_hardening;
mod support;
mod webhook;

/// The SFTP sink's test peer (a real sshd on a free port), shared with its crate's tests.
#[path = "../../sinks/sftp/tests/support/mod.rs"]
mod sftp_support;

/// The webhook sink's test peer (the Python HTTPS receiver verifying with `standardwebhooks`, and
/// its certificates), shared with its crate's tests.
#[path = "../../sinks/webhook/tests/support/mod.rs"]
mod webhook_support;
