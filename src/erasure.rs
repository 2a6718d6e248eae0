//! Erasing a document from the documents sinks' stores: shared by the API, `docs delete` and
//! the retention sweeper. Each store's erasure is crypto-shredding (the document's data key is
//! destroyed first; see `secureform_documents::DocumentStore::erase`); a document sealed before
//! data keys existed has its files removed only.
//!
//! The callers write one audit entry per store erased from, with [`detail`] as its detail.

use std::sync::Arc;

use secureform_documents::{DocumentStore, Erased, StoreError};

use crate::documents::{DocumentStores, PickError};

/// Why nothing was erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("no document {0} in the documents sinks' stores")]
    NotFound(String),
    #[error(transparent)]
    Pick(#[from] PickError),
    #[error("erasing from sink `{sink}`'s store: {source}")]
    Store { sink: String, source: StoreError },
}

/// The stores to erase from: the one named, or every documents sink's.
fn chosen(
    stores: &DocumentStores,
    sink: Option<&str>,
) -> Result<Vec<(String, Arc<DocumentStore>)>, PickError> {
    match sink {
        Some(name) => {
            let (name, store) = stores.pick(Some(name))?;
            Ok(vec![(name.to_owned(), Arc::clone(store))])
        }
        None => Ok(stores
            .all()
            .map(|(n, s)| (n.to_owned(), Arc::clone(s)))
            .collect()),
    }
}

/// The form of document `id` in the first chosen store holding it (to check a token's forms).
pub fn form_of(
    stores: &DocumentStores,
    sink: Option<&str>,
    id: &str,
) -> Result<Option<String>, EraseError> {
    for (_, store) in chosen(stores, sink)? {
        match store.meta(id) {
            Ok(meta) => return Ok(Some(meta.form)),
            Err(StoreError::NotFound(_) | StoreError::BadId(_)) => {}
            // A damaged document can still be erased: its form is unknown.
            Err(_) => return Ok(Some(String::new())),
        }
    }
    Ok(None)
}

/// Erases document `id` from every chosen store that holds it (blocking: run it off the event
/// loop). Returns the stores erased from; `NotFound` when none held it.
pub fn erase_document(
    stores: &DocumentStores,
    sink: Option<&str>,
    id: &str,
) -> Result<Vec<(String, Erased)>, EraseError> {
    let mut erased = Vec::new();
    for (name, store) in chosen(stores, sink)? {
        match store.erase(id) {
            Ok(e) => erased.push((name, e)),
            Err(StoreError::NotFound(_) | StoreError::BadId(_)) => {}
            Err(source) => return Err(EraseError::Store { sink: name, source }),
        }
    }
    if erased.is_empty() {
        return Err(EraseError::NotFound(id.chars().take(40).collect()));
    }
    Ok(erased)
}

/// The audit entry's detail of one store's erasure: ids and hashes only.
pub fn detail(sink: &str, erased: &Erased) -> String {
    format!(
        "sink={sink} sealed_sha256={} shredded={}",
        erased.sealed_sha256, erased.shredded
    )
}
