//! The Documents store: SecureForm's own encrypted archive of submissions.
//!
//! Each submission is a folder named by its id under the store's root, holding separately sealed
//! items (see `secureform_crypto::seal`: AES-256-GCM, a fresh data key per item, wrapped by the
//! service's key-encryption key, whose id is stored so keys can rotate):
//!
//! ```text
//! <root>/<id>/meta.sf          {id, form, received_at, files, pgp}: what `docs list` shows
//! <root>/<id>/submission.sf    the normalized submission as JSON
//! <root>/<id>/files/<n>.sf     file n of the submission's `files` array
//! ```
//!
//! Every item is sealed with its own place as associated data (`documents/<id>/submission`, …),
//! so an item copied over another does not open.
//!
//! With `pgp_recipients`, the submission and each file are first encrypted to those OpenPGP
//! recipients (and signed with the service's key when one is configured), then sealed: double
//! encryption, which only a recipient's secret key opens. The metadata stays sealed with the
//! service key alone, so the service can still list what it holds.
//!
//! A submission is written into a staging folder and renamed into place only when complete and
//! flushed to disk, so a folder named by an id is always whole; a redelivery of an id already
//! present writes nothing (the id is the idempotency key). The flushes are shared: deliveries
//! running at the same time wait for one `syncfs` of the store's filesystem (and one `fsync` of
//! its root after the renames) instead of syncing each file and folder on their own. `syncfs`
//! also waits for whatever else is dirty on that filesystem: where other programs write heavily
//! to it, give the data directory a filesystem of its own.

mod store;
mod sync;

pub use store::{DocumentItem, DocumentMeta, DocumentStore, StoreError};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secureform_contract::{AtRest, ConfigError, Delivery, DeliveryError, Receipt, Sink};
use secureform_crypto::pgp::{Recipients, Signer};
use secureform_crypto::KeyRing;
use serde::Deserialize;

/// The `[sinks.NAME]` table of a `type = "documents"` sink.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// OpenPGP certificates: when set, every item is first encrypted to them (double encryption).
    #[serde(default)]
    pub pgp_recipients: Vec<PathBuf>,
}

impl Config {
    /// Always encrypted at rest: sealed items, optionally PGP inside.
    pub fn at_rest(&self) -> AtRest {
        if self.pgp_recipients.is_empty() {
            AtRest::encrypted("each item sealed with AES-256-GCM under a per-item key wrapped by the service's key")
        } else {
            AtRest::encrypted(format!(
                "each item PGP-encrypted to {} recipient certificate(s), then sealed with AES-256-GCM",
                self.pgp_recipients.len()
            ))
        }
    }

    /// Nothing to check without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The Documents sink: writes each delivered submission into the store.
pub struct DocumentsSink {
    store: Arc<DocumentStore>,
    recipients: Option<Arc<Recipients>>,
    signer: Option<Arc<Signer>>,
    at_rest: AtRest,
}

impl DocumentsSink {
    /// Opens the store at `root` and loads the recipients' certificates (each checked, see
    /// `Recipients::load`).
    pub fn build(
        config: &Config,
        base_dir: &Path,
        root: &Path,
        keys: Arc<KeyRing>,
        signer: Option<Arc<Signer>>,
    ) -> Result<Self, ConfigError> {
        let recipients = if config.pgp_recipients.is_empty() {
            None
        } else {
            let paths: Vec<PathBuf> = config
                .pgp_recipients
                .iter()
                .map(|p| base_dir.join(p))
                .collect();
            Some(Arc::new(Recipients::load(&paths).map_err(|e| {
                ConfigError::new("pgp_recipients", e.to_string())
            })?))
        };
        let store = DocumentStore::open(root, keys)
            .map_err(|e| ConfigError::new("data_dir", e.to_string()))?;
        Ok(DocumentsSink {
            store: Arc::new(store),
            recipients,
            signer,
            at_rest: config.at_rest(),
        })
    }
}

impl Sink for DocumentsSink {
    fn at_rest(&self) -> AtRest {
        self.at_rest.clone()
    }

    async fn deliver(&self, delivery: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
        let store = Arc::clone(&self.store);
        let submission = Arc::clone(delivery.submission);
        let files = Arc::clone(delivery.files);
        let recipients = self.recipients.clone();
        let signer = self.signer.clone();
        let id = submission.id.clone();
        let result = tokio::task::spawn_blocking(move || {
            store.put(
                &submission,
                files.as_ref(),
                recipients.as_deref(),
                signer.as_deref(),
            )
        })
        .await
        .map_err(|e| DeliveryError::Retryable(format!("the store task failed: {e}")))?;
        match result {
            Ok(()) => Ok(Receipt::new("document", id)),
            // The disk is ours: a failure here is worth retrying (full disk, I/O error), except
            // for a file the spool cannot give back, which will not get better.
            Err(StoreError::Source(e)) => Err(DeliveryError::Permanent(format!(
                "could not read a file of the submission from the spool: {e}"
            ))),
            Err(e) => Err(DeliveryError::Retryable(e.to_string())),
        }
    }
}
