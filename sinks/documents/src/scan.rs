//! Listing and verifying a store. A damaged document (a folder without its metadata, a folder
//! copied under another id, an item swapped for another) is skipped and reported, never the end
//! of the listing; `verify` also reads every item through and holds the store against its
//! manifest, so a deleted document is noticed.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::manifest;
use crate::store::{check_id, DocumentItem, DocumentMeta, DocumentStore, StoreError};

/// A document that could not be read, and why (the reason names ids and items, never content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Damaged {
    /// The document's id (its folder name).
    pub id: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What a listing found: the readable documents, oldest first, and the damaged ones skipped.
#[derive(Debug, Default)]
pub struct Listing {
    /// The readable documents, oldest first.
    pub documents: Vec<DocumentMeta>,
    /// The documents skipped because they could not be read.
    pub damaged: Vec<Damaged>,
}

/// What `verify` found. Clean only when every list is empty and the manifest is there.
#[derive(Debug, Default, Serialize)]
pub struct Verification {
    /// Documents whose every item authenticated.
    pub intact: usize,
    /// Documents with an item that did not read through or authenticate.
    pub damaged: Vec<Damaged>,
    /// In the manifest, but not in the store: deleted or lost.
    pub missing: Vec<String>,
    /// In the store, but not in the manifest: put there by something other than this store.
    pub unlisted: Vec<String>,
    /// Byte offsets of manifest lines that do not open or were moved.
    pub bad_manifest_lines: Vec<u64>,
    /// The store exists but has no manifest, so deletions cannot be detected.
    pub no_manifest: bool,
}

impl Verification {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
            && self.missing.is_empty()
            && self.unlisted.is_empty()
            && self.bad_manifest_lines.is_empty()
            && !self.no_manifest
    }
}

impl DocumentStore {
    /// Every readable document's metadata, oldest first, optionally of one form only; damaged
    /// documents are skipped, logged (id only) and returned apart.
    pub fn list(&self, form: Option<&str>) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        for id in self.ids()? {
            match self.checked_meta(&id) {
                Ok(meta) => {
                    if form.is_none_or(|f| f == meta.form) {
                        listing.documents.push(meta);
                    }
                }
                Err(e) => listing.damaged.push(self.damaged_entry(id, &e)),
            }
        }
        self.damaged
            .store(listing.damaged.len() as u64, Ordering::Relaxed);
        listing.documents.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listing)
    }

    /// Reads every item of every document through, and compares the store with its manifest.
    pub fn verify(&self) -> Result<Verification, StoreError> {
        let mut report = Verification::default();
        let mut present = BTreeSet::new();
        for id in self.ids()? {
            match self.verify_one(&id) {
                Ok(()) => report.intact += 1,
                Err(e) => report.damaged.push(self.damaged_entry(id.clone(), &e)),
            }
            present.insert(id);
        }
        self.damaged
            .store(report.damaged.len() as u64, Ordering::Relaxed);
        match manifest::read(&self.root, &self.keys)? {
            None => report.no_manifest = self.root.exists(),
            Some(entries) => {
                let mut listed: BTreeSet<String> = entries.ids.into_iter().collect();
                for erased in self.erased_ids()? {
                    listed.remove(&erased);
                }
                report.missing = listed.difference(&present).cloned().collect();
                report.unlisted = present.difference(&listed).cloned().collect();
                report.bad_manifest_lines = entries.bad_lines;
            }
        }
        Ok(report)
    }

    /// The data-key folder when it is configured and absent although the newest document
    /// needs it (its submission does not open without its data key). The folder is made with
    /// the first data key, so it is absent then only if it was lost or not restored; a store
    /// whose documents all predate data keys needs no folder.
    pub fn missing_data_keys_dir(&self) -> Result<Option<PathBuf>, StoreError> {
        let Some(dir) = self.data_keys_dir() else {
            return Ok(None);
        };
        if dir.symlink_metadata().is_ok() {
            return Ok(None);
        }
        let Some(newest) = self.ids()?.into_iter().max() else {
            return Ok(None);
        };
        match self.authenticate(&newest, DocumentItem::Submission) {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(None),
            Err(_) => Ok(Some(dir.to_path_buf())),
        }
    }

    /// How many damaged documents the last listing or verification found.
    pub fn damaged_count(&self) -> u64 {
        self.damaged.load(Ordering::Relaxed)
    }

    /// The id-shaped names in the root; the manifest and staging folders are not.
    fn ids(&self) -> Result<Vec<String>, StoreError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            if let Some(id) = name.to_str().filter(|id| check_id(id).is_ok()) {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    /// The metadata of a document known to be there: a missing `meta.sf` is damage here.
    fn checked_meta(&self, id: &str) -> Result<DocumentMeta, StoreError> {
        let meta = self.meta(id).map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::Damaged("no meta.sf: not a whole document"),
            other => other,
        })?;
        if meta.id != id {
            return Err(StoreError::Damaged("its metadata names another id"));
        }
        Ok(meta)
    }

    fn verify_one(&self, id: &str) -> Result<(), StoreError> {
        let meta = self.checked_meta(id)?;
        self.authenticate(id, DocumentItem::Submission)?;
        for n in 0..meta.files {
            self.authenticate(id, DocumentItem::File(n))?;
        }
        Ok(())
    }

    fn damaged_entry(&self, id: String, e: &StoreError) -> Damaged {
        tracing::warn!(document = %id, "skipping a damaged document (see `secureform docs verify`)");
        Damaged {
            id,
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{file_bytes, store_with, submission};
    use secureform_contract::MemoryFiles;
    use std::sync::Arc;

    #[test]
    fn damaged_entries_are_skipped_and_a_deleted_document_is_missing() {
        let (dir, store) = store_with(3);
        let ids: Vec<String> = store
            .list(None)
            .unwrap()
            .documents
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids.len(), 3);
        let root = dir.path();
        // An empty id-shaped folder, a folder copied under another id, a swapped meta.sf.
        let empty = submission(9).id;
        fs::create_dir(root.join(&empty)).unwrap();
        let copy = submission(8).id;
        fs::create_dir(root.join(&copy)).unwrap();
        fs::copy(
            root.join(&ids[0]).join("meta.sf"),
            root.join(&copy).join("meta.sf"),
        )
        .unwrap();
        fs::copy(
            root.join(&ids[2]).join("meta.sf"),
            root.join(&ids[1]).join("meta.sf"),
        )
        .unwrap();

        let listing = store.list(None).unwrap();
        let listed: Vec<&str> = listing.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(listed, [ids[0].as_str(), ids[2].as_str()]);
        let mut damaged: Vec<&str> = listing.damaged.iter().map(|d| d.id.as_str()).collect();
        damaged.sort();
        let mut expected = vec![empty.as_str(), copy.as_str(), ids[1].as_str()];
        expected.sort();
        assert_eq!(damaged, expected);
        assert_eq!(store.damaged_count(), 3);

        // Deleting a document is noticed by verify; so is a truncated item.
        fs::remove_dir_all(root.join(&ids[2])).unwrap();
        let item = root.join(&ids[0]).join("submission.sf");
        let len = fs::metadata(&item).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&item)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let report = store.verify().unwrap();
        assert!(!report.is_clean());
        assert_eq!(report.missing, vec![ids[2].clone()]);
        assert_eq!(report.damaged.len(), 4, "{report:?}");
        assert_eq!(report.intact, 0);
        let mut unlisted = report.unlisted.clone();
        unlisted.sort();
        let mut extra = vec![empty, copy];
        extra.sort();
        assert_eq!(unlisted, extra);
    }

    #[test]
    fn a_lost_data_key_folder_is_reported_only_when_documents_need_it() {
        // Documents from before data keys: no folder is needed.
        let (dir, store) = store_with(1);
        let keys = Arc::clone(&store.keys);
        drop(store);
        let key_dir = dir.path().join("keys");
        let store = DocumentStore::open(dir.path(), Arc::clone(&keys))
            .unwrap()
            .with_data_keys(key_dir.clone());
        assert_eq!(store.missing_data_keys_dir().unwrap(), None);
        // A document sealed under its own data key: the folder exists.
        let files = MemoryFiles(vec![file_bytes()]);
        store.put(&submission(5), &files, None, None).unwrap();
        assert_eq!(store.missing_data_keys_dir().unwrap(), None);
        // Lost: reported, naming the folder.
        fs::remove_dir_all(&key_dir).unwrap();
        assert_eq!(
            store.missing_data_keys_dir().unwrap(),
            Some(key_dir.clone())
        );
        // An empty store needs no folder.
        let empty = tempfile::tempdir().unwrap();
        let store = DocumentStore::open(empty.path(), keys)
            .unwrap()
            .with_data_keys(empty.path().join("keys"));
        assert_eq!(store.missing_data_keys_dir().unwrap(), None);
    }
}
