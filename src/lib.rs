//! SecureForm, as a library: the service is `secureform serve` (src/main.rs); the library exists
//! so that fuzz targets and tests can reach the parsers and the spool directly.
//!
//! SecureForm: receives form submissions from web pages, PDF forms and integrators, normalizes
//! each into one submission, keeps it sealed in a durable spool, and delivers it to the sinks
//! its form's owner chose.
//!
//! The data path, one module a step:
//! `http` (requests, limits, answers) → `ingest` (bytes to fields) → `normalize` (one
//! submission, the form's rules) → `spool` (sealed, fsynced, group-committed) → `dispatch` (a
//! queue per sink, retries) → `sinks` (the closed set of sink kinds).

/// Writes one line to standard output, returning the `io::Result` instead of panicking as
/// `println!` does when the reader has gone (`secureform docs list | head`). The command-line
/// modules use it for all their output, and deny `println!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod datadir;
pub mod dispatch;
pub mod docs_cli;
pub mod documents;
pub mod erasure;
pub mod error;
pub mod file_names;
pub mod health;
pub mod http;
pub mod ingest;
pub mod limits;
pub mod metrics;
pub mod normalize;
pub mod registry;
pub mod retention;
pub mod service;
pub mod spool;
pub mod storage_backend;
pub mod subjects;
