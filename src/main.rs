//! SecureForm: receives form submissions from web pages, PDF forms and integrators, normalizes
//! each into one submission, keeps it sealed in a durable spool, and delivers it to the sinks
//! its form's owner chose.
//!
//! The data path, one module a step:
//! `http` (requests, limits, answers) → `ingest` (bytes to fields) → `normalize` (one
//! submission, the form's rules) → `spool` (sealed, fsynced, group-committed) → `dispatch` (a
//! queue per sink, retries) → `sinks` (the closed set of sink kinds).

mod cli;
mod clock;
mod config;
mod dispatch;
mod error;
mod http;
mod ingest;
mod limits;
mod metrics;
mod normalize;
mod service;
mod sinks;
mod spool;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(cli::run(cli));
    std::process::exit(code);
}
