//! `secureform docs list|get|delete|verify`: the documents sinks' stores from the command line.
//!
//! `docs get` and `docs delete` are audit entries (actor `cli:<OS user>`), recorded before
//! anything is written out or removed. `docs get` writes into a folder it creates mode 0700,
//! files mode 0600, and refuses to replace a file already there unless `--force`. Each file is
//! saved as `files/<index>` (the contract's name) with a second name, a hard link,
//! `files/<index>-<submitted name>` sanitized by [`crate::file_names`]; with `--pgp-raw` only
//! `files/<index>.pgp` (the names are inside the still-encrypted submission).
//!
//! `docs get` never leaves plaintext that did not authenticate: each item is written under a
//! temporary name (mode 0600) and renamed to its name only once its last segment (and, for a PGP
//! document, the OpenPGP message) has checked out; on failure the temporary file is removed.
//! Standard output goes through `out!` (a closed pipe ends the command quietly).
#![deny(clippy::print_stdout)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rand::Rng;
use secureform_crypto::files::create_private_dir;
use secureform_documents::{DocumentItem, DocumentStore, Verification};

use crate::config::Config;
use crate::documents::DocumentStores;
use crate::service;

fn stores(config: &Config) -> anyhow::Result<DocumentStores> {
    let keys = service::load_keys(config, false)?;
    Ok(DocumentStores::open(config, &keys))
}

fn pick(stores: &DocumentStores, sink: Option<&str>) -> anyhow::Result<Arc<DocumentStore>> {
    let (_, store) = stores
        .pick(sink)
        .map_err(|e| anyhow::anyhow!("{e} (--sink NAME)"))?;
    Ok(Arc::clone(store))
}

/// `docs list`: the readable documents on stdout; damaged ones named on stderr.
pub fn list(
    config: &Config,
    sink: Option<&str>,
    form: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let store = pick(&stores(config)?, sink)?;
    let listing = store.list(form)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&listing.documents)?)?;
    } else {
        for d in &listing.documents {
            out!("{}\t{}\t{}", d.id, d.form, d.received_at)?;
        }
    }
    for d in &listing.damaged {
        eprintln!("warning: skipped damaged document {}: {}", d.id, d.reason);
    }
    if !listing.damaged.is_empty() {
        eprintln!(
            "warning: {} damaged document(s) skipped; run `secureform docs verify`",
            listing.damaged.len()
        );
    }
    Ok(())
}

/// How `docs get` writes.
pub struct GetOptions<'a> {
    /// A recipient's secret key, for PGP documents.
    pub pgp_key: Option<&'a Path>,
    /// Write PGP documents' OpenPGP messages as they are.
    pub pgp_raw: bool,
    /// Replace files already there.
    pub force: bool,
}

/// `docs get`: the submission and its files into `out`, each only once it authenticated.
pub async fn get(
    config: &Config,
    sink: Option<&str>,
    id: &str,
    out: &Path,
    options: GetOptions<'_>,
) -> anyhow::Result<()> {
    let GetOptions {
        pgp_key,
        pgp_raw,
        force,
    } = options;
    let stores = stores(config)?;
    let (sink_name, _) = stores
        .pick(sink)
        .map_err(|e| anyhow::anyhow!("{e} (--sink NAME)"))?;
    let sink_name = sink_name.to_owned();
    let store = pick(&stores, sink)?;
    let meta = store.meta(id)?;
    if pgp_raw && !meta.pgp {
        anyhow::bail!("document {id} is not PGP-encrypted; --pgp-raw does not apply");
    }
    // Each file is written as `files/N` (the contract's name) and, outside `--pgp-raw`, linked as
    // `files/N-<submitted name>` too (one file, two names). The numbered names are checked before
    // anything is read (a refused `get` reads nothing and is no audit entry); the submitted names
    // are inside the submission, so they are checked once it is decrypted.
    let suffix = if pgp_raw { ".pgp" } else { "" };
    let files_dir = out.join("files");
    let submission_path = out.join(format!("submission.json{suffix}"));
    let numbered: Vec<PathBuf> = (0..meta.files)
        .map(|n| files_dir.join(format!("{n}{suffix}")))
        .collect();
    if !force {
        refuse_taken(std::iter::once(&submission_path).chain(&numbered))?;
    }
    crate::cli::audit::record(
        config,
        crate::audit::Action::CliReadDocument,
        id,
        None,
        Some(format!("sink={sink_name}")),
    )
    .await?;
    // The submission first, into memory: its file list names the files. `--pgp-raw` writes the
    // OpenPGP messages as they are, so their names stay unknown here.
    let mut submission = Vec::new();
    if pgp_raw {
        std::io::copy(
            &mut store.open_item(id, DocumentItem::Submission)?,
            &mut submission,
        )?;
    } else {
        store.read_item(id, DocumentItem::Submission, pgp_key, &mut submission)?;
    }
    let named: Vec<Option<PathBuf>> = if pgp_raw {
        vec![None; meta.files]
    } else {
        let parsed: secureform_contract::Submission = serde_json::from_slice(&submission)
            .with_context(|| format!("document {id}: its submission does not parse"))?;
        (0..meta.files)
            .map(|n| {
                let submitted = parsed.files.get(n).map_or("", |f| f.filename.as_str());
                Some(files_dir.join(crate::file_names::save_as(submitted, n)))
            })
            .collect()
    };
    if !force {
        refuse_taken(named.iter().flatten())?;
    }
    create_private_dir(&out.join("files"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    write_verified(&submission_path, |file| Ok(file.write_all(&submission)?))?;
    for (n, (path, named)) in numbered.iter().zip(named).enumerate() {
        write_verified(path, |file| {
            if pgp_raw {
                std::io::copy(&mut store.open_item(id, DocumentItem::File(n))?, file)?;
            } else {
                store.read_item(id, DocumentItem::File(n), pgp_key, file)?;
            }
            Ok(())
        })?;
        if let Some(named) = named {
            // Only reached with --force when the name is taken: `hard_link` never replaces.
            if named.symlink_metadata().is_ok() {
                fs::remove_file(&named)
                    .with_context(|| format!("cannot replace {}", named.display()))?;
            }
            fs::hard_link(path, &named)
                .with_context(|| format!("cannot link {}", named.display()))?;
        }
    }
    out!(
        "wrote submission {id} and {} file(s) to {}",
        meta.files,
        out.display()
    )?;
    Ok(())
}

/// `docs find --field F=V`: the ids of the submissions whose subject field F holds V.
pub async fn find(config: &Config, field_value: &str) -> anyhow::Result<()> {
    let Some((field, value)) = field_value.split_once('=') else {
        anyhow::bail!("--field takes FIELD=VALUE, e.g. email=ann@example.com");
    };
    let keys = service::load_keys(config, false)?;
    let log = crate::spool::AuditLog::open(config).await?;
    let ids = log
        .subject_ids(crate::subjects::lookup(&keys, field, value))
        .await?;
    // The value is personal data: the entry names the field and the count only.
    let detail = format!("field={field} matches={}", ids.len());
    crate::cli::audit::record_in(
        &log,
        crate::audit::Action::CliFindSubject,
        "",
        None,
        Some(detail),
    )
    .await?;
    for id in ids {
        out!("{id}")?;
    }
    Ok(())
}

/// `docs delete`: erases each id from the chosen stores, each erasure an audit entry.
pub async fn delete(config: &Config, sink: Option<&str>, ids: &[String]) -> anyhow::Result<()> {
    let stores = stores(config)?;
    let log = crate::spool::AuditLog::open(config).await?;
    let mut missing = 0;
    for id in ids {
        match crate::erasure::erase_document(&stores, sink, id) {
            Ok(erased) => {
                for (name, e) in &erased {
                    crate::cli::audit::record_in(
                        &log,
                        crate::audit::Action::EraseDocument,
                        id,
                        Some(crate::audit::Reason::Request.as_str()),
                        Some(crate::erasure::detail(name, e)),
                    )
                    .await?;
                    let how = if e.shredded {
                        "data key destroyed, items removed"
                    } else {
                        "sealed before data keys: items removed"
                    };
                    out!("erased {id} from sink {name} ({how})")?;
                }
            }
            Err(crate::erasure::EraseError::NotFound(_)) => {
                eprintln!("warning: no document {id}");
                missing += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if missing > 0 {
        anyhow::bail!("{missing} of {} document(s) not found", ids.len());
    }
    Ok(())
}

/// Fails naming the first path that already exists (also a dangling symbolic link).
fn refuse_taken<'a>(mut paths: impl Iterator<Item = &'a PathBuf>) -> anyhow::Result<()> {
    match paths.find(|p| p.symlink_metadata().is_ok()) {
        Some(taken) => anyhow::bail!(
            "{} already exists: choose another --out folder, or pass --force to replace it",
            taken.display()
        ),
        None => Ok(()),
    }
}

/// Fills a new temporary file beside `path` (mode 0600) and renames it to `path` only when
/// `fill` succeeded; removes it otherwise.
fn write_verified(
    path: &Path,
    fill: impl FnOnce(&mut File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("an output path without a file name")?;
    let suffix: u64 = rand::thread_rng().gen();
    let tmp = path.with_file_name(format!(".{name}.partial-{suffix:016x}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = fill(&mut file).and_then(|()| {
        file.flush()?;
        file.sync_all()?;
        Ok(())
    });
    drop(file);
    match result {
        Ok(()) => fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display())),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e.context(format!("{} not written", path.display())))
        }
    }
}

/// `docs verify`: every store named (or every documents sink's), fails when any is not clean.
pub fn verify(config: &Config, sink: Option<&str>, json: bool) -> anyhow::Result<()> {
    let stores = stores(config)?;
    let chosen: Vec<(String, Arc<DocumentStore>)> = match sink {
        Some(name) => vec![(name.to_owned(), pick(&stores, Some(name))?)],
        None => stores
            .all()
            .map(|(n, s)| (n.to_owned(), Arc::clone(s)))
            .collect(),
    };
    if chosen.is_empty() {
        anyhow::bail!("no documents sink is configured");
    }
    let mut problems = 0;
    let mut reports = serde_json::Map::new();
    for (name, store) in chosen {
        let report = store
            .verify()
            .with_context(|| format!("verifying sink `{name}`'s store"))?;
        problems += count(&report);
        if !json {
            print_report(&name, &report)?;
        }
        reports.insert(name, serde_json::to_value(&report)?);
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&reports)?)?;
    }
    if problems > 0 {
        anyhow::bail!("{problems} problem(s) found in the Documents store");
    }
    Ok(())
}

fn count(r: &Verification) -> usize {
    r.damaged.len()
        + r.missing.len()
        + r.unlisted.len()
        + r.bad_manifest_lines.len()
        + usize::from(r.no_manifest)
}

fn print_report(name: &str, r: &Verification) -> std::io::Result<()> {
    out!(
        "sink {name}: {} intact, {} damaged, {} missing, {} unlisted",
        r.intact,
        r.damaged.len(),
        r.missing.len(),
        r.unlisted.len()
    )?;
    for d in &r.damaged {
        out!("  damaged {}: {}", d.id, d.reason)?;
    }
    for id in &r.missing {
        out!("  missing {id}: in the manifest, not in the store (deleted or lost)")?;
    }
    for id in &r.unlisted {
        out!("  unlisted {id}: in the store, not in its manifest (not written by this store)")?;
    }
    for at in &r.bad_manifest_lines {
        out!("  manifest line at byte {at} does not open or was moved")?;
    }
    if r.no_manifest {
        out!(
            "  no manifest: start the service once to write it; until then deletions go unnoticed"
        )?;
    }
    Ok(())
}
