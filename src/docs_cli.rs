//! `secureform docs list|get|verify`: reading the documents sinks' stores from the command line.
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

/// `docs get`: the submission and its files into `out`, each only once it authenticated.
pub fn get(
    config: &Config,
    sink: Option<&str>,
    id: &str,
    out: &Path,
    pgp_key: Option<&Path>,
    pgp_raw: bool,
) -> anyhow::Result<()> {
    let store = pick(&stores(config)?, sink)?;
    let meta = store.meta(id)?;
    if pgp_raw && !meta.pgp {
        anyhow::bail!("document {id} is not PGP-encrypted; --pgp-raw does not apply");
    }
    create_private_dir(&out.join("files"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let suffix = if pgp_raw { ".pgp" } else { "" };
    let write = |item: DocumentItem, path: PathBuf| -> anyhow::Result<()> {
        write_verified(&path, |file| {
            if pgp_raw {
                std::io::copy(&mut store.open_item(id, item)?, file)?;
            } else {
                store.read_item(id, item, pgp_key, file)?;
            }
            Ok(())
        })
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
    out!(
        "wrote submission {id} and {} file(s) to {}",
        meta.files,
        out.display()
    )?;
    Ok(())
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
