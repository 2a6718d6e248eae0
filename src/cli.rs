//! The command line: `serve`, `check`, `keygen`, `docs list`, `docs get`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secureform_documents::{DocumentItem, DocumentStore};

use crate::config::Config;
use crate::service;
use crate::sinks::documents_root;

#[derive(Parser)]
#[command(name = "secureform", version, about = "Receives form submissions and keeps them encrypted at rest")]
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
        listen: Option<String>,
    },
    /// Validates the configuration and shows each form's sinks and their at-rest status.
    Check {
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
}

#[derive(Subcommand)]
pub enum DocsCommand {
    /// Lists stored submissions: id, form, received_at.
    List {
        #[arg(long)]
        form: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Decrypts one submission into DIR: submission.json and files/0, files/1, ...
    Get {
        id: String,
        #[arg(long)]
        out: PathBuf,
        /// A recipient's secret key, for PGP double-encrypted documents.
        #[arg(long)]
        pgp_key: Option<PathBuf>,
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
        Command::Check { config } => check(config.as_deref()).await,
        Command::Keygen { out, rotate, .. } => report(keygen(&out, rotate)),
        Command::Docs { command } => match command {
            DocsCommand::List { form, json, config } => match load(config.as_deref()) {
                Ok(c) => report(docs_list(&c, form.as_deref(), json)),
                Err(code) => code,
            },
            DocsCommand::Get {
                id,
                out,
                pgp_key,
                config,
            } => match load(config.as_deref()) {
                Ok(c) => report(docs_get(&c, &id, &out, pgp_key.as_deref())),
                Err(code) => code,
            },
        },
    }
}

fn report(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

async fn check(path: Option<&Path>) -> i32 {
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
    if let Err(e) = crate::sinks::check_offline(&config, &signer) {
        eprintln!("error: {e}");
        return EXIT_INVALID;
    }
    println!("configuration: {} (valid)", config.origin);
    for (name, form) in &config.forms {
        println!("form {name}:");
        for (sink, at_rest) in config.form_at_rest(form) {
            let kind = config.sinks.get(&sink).map(|s| s.kind()).unwrap_or("?");
            let level = match at_rest.level {
                secureform_contract::AtRestLevel::Encrypted => "encrypted at rest",
                secureform_contract::AtRestLevel::Weak => "WEAK encryption at rest",
                secureform_contract::AtRestLevel::Plaintext => "NOT encrypted at rest",
            };
            println!("  sink {sink} ({kind}): {level}: {}", at_rest.detail);
        }
        for w in config.form_warnings(form) {
            println!("  warning: {w}");
        }
    }
    0
}

fn keygen(out: &Path, rotate: bool) -> anyhow::Result<()> {
    let id = if rotate {
        secureform_crypto::keys::append_new_key(out)?
    } else {
        secureform_crypto::keys::create_key_file(out)?
    };
    println!("wrote key {id} to {}", out.display());
    Ok(())
}

fn open_store(config: &Config) -> anyhow::Result<DocumentStore> {
    let keys = service::load_keys(config, false)?;
    DocumentStore::open(&documents_root(&config.data_dir), Arc::clone(&keys))
        .context("opening the Documents store")
}

fn docs_list(config: &Config, form: Option<&str>, json: bool) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let all = store.list(form)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for d in all {
            println!("{}\t{}\t{}", d.id, d.form, d.received_at);
        }
    }
    Ok(())
}

fn docs_get(config: &Config, id: &str, out: &Path, pgp_key: Option<&Path>) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let meta = store.meta(id)?;
    std::fs::create_dir_all(out.join("files"))?;
    let write = |item: DocumentItem, path: PathBuf| -> anyhow::Result<()> {
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        store.read_item(id, item, pgp_key, &mut file)?;
        Ok(())
    };
    write(DocumentItem::Submission, out.join("submission.json"))?;
    for n in 0..meta.files {
        write(DocumentItem::File(n), out.join("files").join(n.to_string()))?;
    }
    println!("wrote submission {id} and {} file(s) to {}", meta.files, out.display());
    Ok(())
}
