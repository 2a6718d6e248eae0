//! The command line: `serve`, `check`, `keygen`, `docs list|get|delete|verify`, `token`,
//! `mysql`, `audit verify|export`.
//!
//! Standard output is written with `out!` (see `lib.rs`), never `println!` (denied below): it panics
//! when the reader has gone (`secureform docs list | head`), while `out!` returns the error and
//! [`report`] ends the command quietly on a closed pipe.
#![deny(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::service;

pub(crate) mod audit;
mod token;

#[derive(Parser)]
#[command(
    name = "secureform",
    version,
    about = "Receives form submissions and keeps them encrypted at rest"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Runs the service (the embedded default when there is no configuration).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding [server] listen (port 0 picks a free port).
        #[arg(long)]
        listen: Option<crate::config::ListenAddr>,
    },
    /// Validates the configuration and shows each form's sinks and their at-rest status.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also connect to each sink's server as a delivery would (sending nothing) and say
        /// whether it answers; exit 1 when one does not.
        #[arg(long)]
        online: bool,
    },
    /// Applies the spool's database migrations (`[storage] backend = "postgres"`; the SQLite
    /// spool migrates itself at start).
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Writes a new key-encryption key file (mode 0600).
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Append a new current key to an existing key file (rotation); older keys still open
        /// what they sealed.
        #[arg(long)]
        rotate: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reads the Documents store.
    Docs {
        #[command(subcommand)]
        command: DocsCommand,
    },
    /// Makes API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Reads back rows a MySQL sink wrote, decrypting `aes_gcm` and `mysql_aes` values.
    Mysql {
        #[command(subcommand)]
        command: MysqlCommand,
    },
    /// Checks and exports the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walks the hash chain; exits 1 naming the first entry that was edited or follows a
    /// removed one, or when a head kept from an earlier `verify` is no longer in the chain.
    Verify {
        #[arg(long)]
        json: bool,
        /// A head printed by an earlier `verify` and kept elsewhere, as SEQ:HASH: the chain
        /// must still hold that entry with that hash (detects a cut tail or a rebuilt chain).
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Writes the entries as JSON lines, oldest first.
    Export {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Prints a new random token and the configuration lines that grant it.
    New {
        /// The token's name in the configuration (and in the audit log).
        #[arg(long)]
        name: String,
        /// Comma-separated: submit, read, admin.
        #[arg(long, default_value = "submit")]
        scopes: String,
        /// Comma-separated form names, or * for all.
        #[arg(long, default_value = "*")]
        forms: String,
        /// Also add the lines to this configuration file (created, as the embedded default's
        /// equivalent, when it does not exist yet).
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum MysqlCommand {
    /// Prints the newest rows' submissions as a JSON array.
    Read {
        /// The name of the mysql sink in the configuration.
        #[arg(long)]
        sink: String,
        #[arg(long)]
        form: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Writes file INDEX of a submission, as stored in the sink's files table, to OUT.
    File {
        #[arg(long)]
        sink: String,
        id: String,
        index: u32,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum DocsCommand {
    /// Lists stored submissions: id, form, received_at. Damaged documents are skipped and
    /// named on stderr (see `docs verify`).
    List {
        #[arg(long)]
        form: Option<String>,
        /// The documents sink whose store to read (needed when there are several).
        #[arg(long)]
        sink: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Decrypts one submission into DIR: submission.json and files/0, files/1, ..., each file
    /// also under its sanitized submitted name with its index first (files/0-cv.pdf)
    Get {
        id: String,
        #[arg(long)]
        out: PathBuf,
        /// The documents sink whose store to read (needed when there are several).
        #[arg(long)]
        sink: Option<String>,
        /// A recipient's secret key, for PGP double-encrypted documents.
        #[arg(long)]
        pgp_key: Option<PathBuf>,
        /// For PGP double-encrypted documents: write the OpenPGP messages themselves
        /// (submission.json.pgp, files/N.pgp), to open with any OpenPGP tool.
        #[arg(long, conflicts_with = "pgp_key")]
        pgp_raw: bool,
        /// Replace files already in DIR (refused otherwise).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Finds the submissions of a data subject through the keyed blind index of the forms'
    /// `subject_fields` (no plaintext index exists); prints their ids. Audited.
    Find {
        /// FIELD=VALUE, e.g. email=ann@example.com (case and surrounding space ignored).
        #[arg(long)]
        field: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Erases documents by crypto-shredding (their data keys are destroyed, then their items),
    /// from every documents sink's store or the one named; each erasure is an audit entry.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
        /// Only this documents sink's store.
        #[arg(long)]
        sink: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Reads every item of every document through and checks the store against its manifest;
    /// lists damaged, missing and unlisted documents and exits 1 when there is any.
    Verify {
        /// Only this documents sink's store (default: every documents sink's).
        #[arg(long)]
        sink: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Exit code for an invalid configuration.
pub const EXIT_INVALID: i32 = 2;

fn load(config: Option<&Path>) -> Result<Config, i32> {
    Config::load(config).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_INVALID
    })
}

/// Runs a command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve { config, listen } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            report(service::serve(config, listen).await)
        }
        Command::Check { config, online } => check(config.as_deref(), online).await,
        Command::Migrate { config } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            report(migrate(&config).await)
        }
        Command::Keygen { out, rotate, .. } => report(keygen(&out, rotate)),
        Command::Mysql { command } => mysql(command).await,
        Command::Token {
            command:
                TokenCommand::New {
                    name,
                    scopes,
                    forms,
                    write,
                },
        } => report(token::new(&name, &scopes, &forms, write.as_deref())),
        Command::Docs { command } => docs(command).await,
        Command::Audit { command } => match command {
            AuditCommand::Verify { json, head, config } => match load(config.as_deref()) {
                Ok(c) => report(audit::verify(&c, json, head.as_deref()).await),
                Err(code) => code,
            },
            AuditCommand::Export { after, config } => match load(config.as_deref()) {
                Ok(c) => report(audit::export(&c, after).await),
                Err(code) => code,
            },
        },
    }
}

async fn docs(command: DocsCommand) -> i32 {
    match command {
        DocsCommand::List {
            form,
            sink,
            json,
            config,
        } => match load(config.as_deref()) {
            Ok(c) => report(crate::docs_cli::list(
                &c,
                sink.as_deref(),
                form.as_deref(),
                json,
            )),
            Err(code) => code,
        },
        DocsCommand::Get {
            id,
            out,
            sink,
            pgp_key,
            pgp_raw,
            force,
            config,
        } => match load(config.as_deref()) {
            Ok(c) => {
                let options = crate::docs_cli::GetOptions {
                    pgp_key: pgp_key.as_deref(),
                    pgp_raw,
                    force,
                };
                report(crate::docs_cli::get(&c, sink.as_deref(), &id, &out, options).await)
            }
            Err(code) => code,
        },
        DocsCommand::Find { field, config } => match load(config.as_deref()) {
            Ok(c) => report(crate::docs_cli::find(&c, &field).await),
            Err(code) => code,
        },
        DocsCommand::Delete { ids, sink, config } => match load(config.as_deref()) {
            Ok(c) => report(crate::docs_cli::delete(&c, sink.as_deref(), &ids).await),
            Err(code) => code,
        },
        DocsCommand::Verify { sink, json, config } => match load(config.as_deref()) {
            Ok(c) => report(crate::docs_cli::verify(&c, sink.as_deref(), json)),
            Err(code) => code,
        },
    }
}

/// Whether an error is a write to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit code of a command's result: 0, or 1 with the error on standard error. A closed
/// standard output (the reader took what it wanted) is not an error: 0, quietly.
fn report(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            1
        }
    }
}

/// An error and its causes, `: `-separated, leaving out a cause its effect's text already
/// holds (sqlx's and the spool's errors repeat their source in their own message, so `{:#}`
/// printed the same reason up to four times).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

async fn check(path: Option<&Path>, online: bool) -> i32 {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Keys and certificates are part of the configuration: load and check them too.
    let signer = match service::load_signer(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return EXIT_INVALID;
        }
    };
    // `check` never creates anything: a ring of one throwaway key stands in for the default key
    // file of a new data folder, and for a key in an environment variable that is not set here
    // (sinks only need it to open their stores). A missing or unusable key file is an error.
    let throwaway = || {
        secureform_crypto::KeyRing::generate()
            .map(Arc::new)
            .map_err(anyhow::Error::from)
    };
    let keys = match (service::load_keys(&config, false), &config.keys) {
        (Err(_), crate::config::KeySource::Env(_)) => throwaway(),
        (Err(_), crate::config::KeySource::File(path))
            if config.create_key
                && !path.exists()
                && crate::datadir::is_new(&config.data_dir).unwrap_or(false) =>
        {
            throwaway()
        }
        (result, _) => result,
    };
    let keys = match keys {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e:#}");
            return EXIT_INVALID;
        }
    };
    if let Err(e) = crate::registry::check_offline(&config, Arc::clone(&keys), &signer).await {
        eprintln!("error: {e:#}");
        return EXIT_INVALID;
    }
    // Third-party captchas: their secret files and CA files (a secret in an environment
    // variable not set here is left to `serve`).
    if let Err(e) = crate::http::siteverify::Siteverify::from_config(
        &config,
        crate::http::siteverify::Secrets::IfPresent,
    ) {
        eprintln!("error: {e}");
        return EXIT_INVALID;
    }
    let code = report(print_check(&config));
    if online && code == 0 {
        return report(check_online(&config, keys, &signer).await);
    }
    code
}

/// `migrate`: applies the PostgreSQL spool's migrations.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    match config.spool_backend.postgres_options(true)? {
        None => out!("storage: sqlite: the spool migrates itself at start; nothing to do")?,
        Some(options) => {
            crate::spool::Spool::migrate_postgres(&options).await?;
            out!("storage: postgres: the schema is up to date")?;
        }
    }
    Ok(())
}

/// `check --online`: the spool's database, then each sink's health check (the Documents store is local: not built here,
/// since building it would create its folder).
async fn check_online(
    config: &Config,
    keys: Arc<secureform_crypto::KeyRing>,
    signer: &Option<Arc<secureform_crypto::pgp::Signer>>,
) -> anyhow::Result<()> {
    if let Some(options) = config.spool_backend.postgres_options(false)? {
        match crate::spool::Spool::check_postgres(&options).await {
            Ok(()) => out!("storage: postgres: reachable, schema up to date")?,
            Err(e) => {
                out!("storage: postgres: FAILING: {e}")?;
                anyhow::bail!("the spool's database is not usable");
            }
        }
    }
    let mut failing = Vec::new();
    for (name, sink) in &config.sinks {
        if sink.is_local() {
            out!("sink {name}: local store, nothing to reach")?;
            continue;
        }
        let built = crate::registry::BuiltSink::build(
            name,
            sink,
            config,
            Arc::clone(&keys),
            signer.clone(),
        )
        .await?;
        match crate::health::check(&built).await {
            crate::health::Health::Failing { reason } => {
                out!("sink {name}: FAILING: {reason}")?;
                failing.push(name.as_str());
            }
            _ => out!("sink {name}: reachable")?,
        }
    }
    if !failing.is_empty() {
        anyhow::bail!("sinks failing their health check: {}", failing.join(", "));
    }
    Ok(())
}

/// `check`'s listing: each form, its sinks with their at-rest status, and its warnings.
fn print_check(config: &Config) -> anyhow::Result<()> {
    out!("configuration: {} (valid)", config.origin)?;
    for (name, form) in &config.forms {
        out!("form {name}:")?;
        for (sink, at_rest) in config.form_at_rest(form) {
            let kind = config.sinks.get(&sink).map(|s| s.kind()).unwrap_or("?");
            let level = match at_rest.level {
                secureform_contract::AtRestLevel::Encrypted => "encrypted at rest",
                secureform_contract::AtRestLevel::Weak => "WEAK encryption at rest",
                secureform_contract::AtRestLevel::Plaintext => "NOT encrypted at rest",
            };
            out!("  sink {sink} ({kind}): {level}: {}", at_rest.detail)?;
        }
        for w in config.form_warnings(form) {
            out!("  warning: {w}")?;
        }
    }
    Ok(())
}

fn mysql_config<'a>(
    config: &'a Config,
    sink: &str,
) -> anyhow::Result<&'a secureform_mysql::Config> {
    match config.sinks.get(sink) {
        Some(crate::config::SinkConfig::Mysql(c)) => Ok(c),
        Some(_) => anyhow::bail!("sink `{sink}` is not a mysql sink"),
        None => anyhow::bail!("no sink named `{sink}` in {}", config.origin),
    }
}

async fn mysql(command: MysqlCommand) -> i32 {
    match command {
        MysqlCommand::Read {
            sink,
            form,
            limit,
            config,
        } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let result = async {
                let c = mysql_config(&config, &sink)?;
                let rows = secureform_mysql::read_rows(c, &config.base_dir, form.as_deref(), limit)
                    .await?;
                // Recorded before anything is shown: who read which submission.
                let log = crate::spool::AuditLog::open(&config).await?;
                for row in &rows {
                    let id = row.get("id").and_then(|v| v.as_str()).unwrap_or("");
                    audit::record_in(
                        &log,
                        crate::audit::Action::CliMysqlRead,
                        id,
                        None,
                        Some(format!("sink={sink}")),
                    )
                    .await?;
                }
                out!("{}", serde_json::to_string_pretty(&rows)?)?;
                Ok(())
            };
            report(result.await)
        }
        MysqlCommand::File {
            sink,
            id,
            index,
            out,
            config,
        } => {
            let config = match load(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let result = async {
                let c = mysql_config(&config, &sink)?;
                match secureform_mysql::read_file(c, &config.base_dir, &id, index).await? {
                    Some(bytes) => {
                        let detail = format!("sink={sink} file={index}");
                        audit::record(
                            &config,
                            crate::audit::Action::CliMysqlFile,
                            &id,
                            None,
                            Some(detail),
                        )
                        .await?;
                        std::fs::write(&out, bytes)?
                    }
                    None => anyhow::bail!("no file {index} of submission {id} in sink `{sink}`"),
                }
                Ok(())
            };
            report(result.await)
        }
    }
}

fn keygen(out: &Path, rotate: bool) -> anyhow::Result<()> {
    let id = if rotate {
        secureform_crypto::keys::append_new_key(out)?
    } else {
        secureform_crypto::keys::create_key_file(out)?
    };
    out!("wrote key {id} to {}", out.display())?;
    Ok(())
}
