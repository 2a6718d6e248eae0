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
