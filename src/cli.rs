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
        /// For PGP double-encrypted documents: write the OpenPGP messages themselves
        /// (submission.json.pgp, files/N.pgp), to open with any OpenPGP tool.
        #[arg(long, conflicts_with = "pgp_key")]
        pgp_raw: bool,
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
        Command::Mysql { command } => mysql(command).await,
        Command::Token {
            command:
                TokenCommand::New {
                    name,
                    scopes,
                    forms,
                },
        } => report(token_new(&name, &scopes, &forms)),
        Command::Docs { command } => match command {
            DocsCommand::List { form, json, config } => match load(config.as_deref()) {
                Ok(c) => report(docs_list(&c, form.as_deref(), json)),
                Err(code) => code,
            },
            DocsCommand::Get {
                id,
                out,
                pgp_key,
                pgp_raw,
                config,
            } => match load(config.as_deref()) {
                Ok(c) => report(docs_get(&c, &id, &out, pgp_key.as_deref(), pgp_raw)),
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
    if let Err(e) = crate::sinks::check_offline(&config, keys, &signer).await {
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
                println!("{}", serde_json::to_string_pretty(&rows)?);
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
                    Some(bytes) => std::fs::write(&out, bytes)?,
                    None => anyhow::bail!("no file {index} of submission {id} in sink `{sink}`"),
                }
                Ok(())
            };
            report(result.await)
        }
    }
}

fn token_new(name: &str, scopes: &str, forms: &str) -> anyhow::Result<()> {
    use base64::Engine;
    use rand::RngCore;
    use sha2::Digest;
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let scopes = list(scopes);
    for s in &scopes {
        if !matches!(s.as_str(), "submit" | "read" | "admin") {
            anyhow::bail!("unknown scope `{s}`: use submit, read or admin");
        }
    }
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let token = zeroize::Zeroizing::new(format!(
        "sf_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
    ));
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let quoted = |v: &[String]| {
        v.iter()
            .map(|x| format!("\"{x}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "token (give it to the integrator; it is shown only once):\n{}\n",
        token.as_str()
    );
    println!("configuration (paste into secureform.toml):\n[tokens.{name}]\nsha256 = \"{hash}\"\nscopes = [{}]\nforms = [{}]", quoted(&scopes), quoted(&list(forms)));
    Ok(())
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

fn docs_get(
    config: &Config,
    id: &str,
    out: &Path,
    pgp_key: Option<&Path>,
    pgp_raw: bool,
) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let meta = store.meta(id)?;
    if pgp_raw && !meta.pgp {
        anyhow::bail!("document {id} is not PGP-encrypted; --pgp-raw does not apply");
    }
    std::fs::create_dir_all(out.join("files"))?;
    let suffix = if pgp_raw { ".pgp" } else { "" };
    let write = |item: DocumentItem, path: PathBuf| -> anyhow::Result<()> {
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        if pgp_raw {
            std::io::copy(&mut store.open_item(id, item)?, &mut file)?;
        } else {
            store.read_item(id, item, pgp_key, &mut file)?;
        }
        Ok(())
    };
    write(
        DocumentItem::Submission,
        out.join(format!("submission.json{suffix}")),
    )?;
    for n in 0..meta.files {
        write(
            DocumentItem::File(n),
            out.join("files").join(format!("{n}{suffix}")),
        )?;
    }
    println!(
        "wrote submission {id} and {} file(s) to {}",
        meta.files,
        out.display()
    );
    Ok(())
}
