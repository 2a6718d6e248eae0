//! Where each Documents sink keeps its store, and which store `docs` and the API read.
//!
//! Every `documents` sink has a store of its own, `<data_dir>/sinks/<sink name>`: two sinks on
//! one form (one plain, one PGP) each hold every submission, the way their configuration says.
//! Versions before this one kept a single store at `<data_dir>/documents`, shared by every
//! documents sink. The service moves that store to `<data_dir>/sinks/<name>` at its first start
//! when exactly one documents sink is configured (a rename: nothing is copied or re-sealed);
//! until then `docs` reads it where it is. With several documents sinks the old store's owner is
//! ambiguous, and the service refuses to start until the operator moves it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use secureform_crypto::files::{create_private_dir, sync_dir};
use secureform_crypto::KeyRing;
use secureform_documents::DocumentStore;

use crate::config::{Config, SinkConfig};

/// The store of the documents sink `name`: its state folder.
pub fn store_root(data_dir: &Path, name: &str) -> PathBuf {
    crate::registry::state_dir(data_dir, name)
}

/// Where sink `name` keeps its documents' data keys: its `data_keys_dir` when set, else
/// `<data_dir>-keys/<name>` beside the data folder. Outside the data folder on purpose: erasing
/// destroys a document's data key, and a backup of the data folder taken before must not hold
/// it (see docs/retention.md).
pub fn data_keys_dir(config: &Config, name: &str) -> PathBuf {
    if let Some(SinkConfig::Documents(c)) = config.sinks.get(name) {
        if let Some(dir) = &c.data_keys_dir {
            return config.base_dir.join(dir);
        }
    }
    let data_dir = &config.data_dir;
    let keys = match (data_dir.parent(), data_dir.file_name()) {
        (Some(parent), Some(folder)) => {
            let mut folder = folder.to_owned();
            folder.push("-keys");
            parent.join(folder)
        }
        // A data folder at the root of the filesystem: its keys beside it, named alike.
        _ => PathBuf::from("/secureform-data-keys"),
    };
    keys.join(name)
}

/// Gives every documents sink its data-key folder (see [`data_keys_dir`]), so that building
/// the sinks seals new documents under per-document keys.
pub fn resolve_data_keys(config: &mut Config) {
    let dirs: Vec<(String, PathBuf)> = sink_names(config)
        .into_iter()
        .map(|n| (n.to_owned(), data_keys_dir(config, n)))
        .collect();
    for (name, dir) in dirs {
        if let Some(SinkConfig::Documents(c)) = config.sinks.get_mut(&name) {
            c.data_keys_dir = Some(dir);
        }
    }
}

/// The single store of versions before per-sink stores.
pub fn legacy_root(data_dir: &Path) -> PathBuf {
    data_dir.join("documents")
}

/// The names of the configured documents sinks, in name order.
pub fn sink_names(config: &Config) -> Vec<&str> {
    config
        .sinks
        .iter()
        .filter(|(_, s)| matches!(s, SinkConfig::Documents(_)))
        .map(|(n, _)| n.as_str())
        .collect()
}

/// Whether the store of an earlier version is to be moved, and from where to where: an error
/// when its owner is ambiguous or its place is taken (see the module docs).
pub fn legacy_move(config: &Config) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    let legacy = legacy_root(&config.data_dir);
    if !legacy.is_dir() {
        return Ok(None);
    }
    let names = sink_names(config);
    let [name] = names.as_slice() else {
        if names.is_empty() {
            return Ok(None);
        }
        anyhow::bail!(
            "{} holds the Documents store of an earlier version, which every documents sink \
             shared; with several documents sinks ({}) it is not clear whose it is: move it to \
             {} for the sink it belongs to, then start again",
            legacy.display(),
            names.join(", "),
            store_root(&config.data_dir, "NAME").display()
        );
    };
    let target = store_root(&config.data_dir, name);
    if target.exists() {
        anyhow::bail!(
            "both {} (the Documents store of an earlier version) and {} (sink `{name}`'s store) \
             exist: merge or remove one, then start again",
            legacy.display(),
            target.display()
        );
    }
    Ok(Some((legacy, target)))
}

/// Moves the store of an earlier version to the one documents sink's place (see the module
/// docs). Runs before the sinks are built, so nothing writes to either place meanwhile.
pub fn migrate_legacy(config: &Config) -> anyhow::Result<()> {
    let Some((legacy, target)) = legacy_move(config)? else {
        return Ok(());
    };
    let parent = config.data_dir.join("sinks");
    create_private_dir(&parent)?;
    std::fs::rename(&legacy, &target)
        .with_context(|| format!("moving {} to {}", legacy.display(), target.display()))?;
    sync_dir(&parent)?;
    sync_dir(&config.data_dir)?;
    tracing::info!("moved the Documents store of an earlier version to its sink's own folder");
    Ok(())
}

/// Where `docs` and the API read sink `name`'s store: its own folder, or the earlier version's
/// single store while the service has not yet moved it (one documents sink only).
fn read_root(config: &Config, name: &str, only_one: bool) -> PathBuf {
    let own = store_root(&config.data_dir, name);
    let legacy = legacy_root(&config.data_dir);
    if only_one && !own.exists() && legacy.is_dir() {
        legacy
    } else {
        own
    }
}

/// The documents sinks' stores, opened for reading (`docs`, the API).
pub struct DocumentStores {
    by_name: BTreeMap<String, Arc<DocumentStore>>,
}

/// Why no store was picked.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    #[error("no documents sink is configured")]
    NoSink,
    #[error("there are several documents sinks ({0}): name the one to read")]
    Ambiguous(String),
    #[error("no documents sink named `{0}`")]
    Unknown(String),
}

impl DocumentStores {
    /// Opens every documents sink's store for reading; creates nothing.
    pub fn open(config: &Config, keys: &Arc<KeyRing>) -> DocumentStores {
        let names = sink_names(config);
        let only_one = names.len() == 1;
        let by_name = names
            .iter()
            .map(|name| {
                let root = read_root(config, name, only_one);
                let store = DocumentStore::open_reader(&root, Arc::clone(keys))
                    .with_data_keys(data_keys_dir(config, name));
                ((*name).to_owned(), Arc::new(store))
            })
            .collect();
        DocumentStores { by_name }
    }

    /// The store of sink `name`, or the only one when no name is given.
    pub fn pick(&self, name: Option<&str>) -> Result<(&str, &Arc<DocumentStore>), PickError> {
        match name {
            Some(n) => self
                .by_name
                .get_key_value(n)
                .map(|(k, v)| (k.as_str(), v))
                .ok_or_else(|| PickError::Unknown(n.chars().take(64).collect())),
            None => {
                let mut all = self.by_name.iter();
                match (all.next(), all.next()) {
                    (Some((k, v)), None) => Ok((k.as_str(), v)),
                    (None, _) => Err(PickError::NoSink),
                    _ => Err(PickError::Ambiguous(self.names().join(", "))),
                }
            }
        }
    }

    /// Every store, by sink name.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Arc<DocumentStore>)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The documents sinks' names.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    /// The stores' metrics, in the Prometheus text format: damaged documents the last listing
    /// or verification of each store found.
    pub fn render_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP secureform_documents_damaged Damaged documents skipped by the last listing or \
             verification of a Documents store (see `secureform docs verify`).\n\
             # TYPE secureform_documents_damaged gauge\n",
        );
        for (name, store) in &self.by_name {
            out.push_str(&format!(
                "secureform_documents_damaged{{sink=\"{name}\"}} {}\n",
                store.damaged_count()
            ));
        }
        out
    }
}
