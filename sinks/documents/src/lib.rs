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
//! <root>/manifest              one sealed line per document taken (see `manifest.rs`)
//! ```
//!
//! Each documents sink has a store of its own (the service gives it `data_dir/sinks/<name>`).
//! Listing skips a damaged document and reports it; [`DocumentStore::verify`] reads every item
//! through and holds the store against its manifest, so a deleted document is noticed.
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

#![warn(missing_docs)]

mod manifest;
mod scan;
mod store;
mod sync;

pub use scan::{Damaged, Listing, Verification};
pub use store::{DocumentItem, DocumentMeta, DocumentStore, Erased, PinnedItem, StoreError};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secureform_contract::{
    AtRest, BuildContext, ConfigError, Delivery, DeliveryError, FailureReason, Receipt, Sink,
    SinkSpec,
};
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
    /// Where each document's data key is kept, wrapped by the key-encryption key (see
    /// [`DocumentStore::with_data_keys`]); relative to the configuration's folder. The service
    /// gives a sink without one `<data_dir>-keys/<sink name>`, outside the data folder, so that
    /// a backup of the data folder does not hold the keys an erasure destroys.
    pub data_keys_dir: Option<PathBuf>,
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
        let mut store = DocumentStore::open(root, keys)
            .map_err(|e| ConfigError::new("data_dir", e.to_string()))?;
        if let Some(dir) = &config.data_keys_dir {
            store = store.with_data_keys(base_dir.join(dir));
        }
        Ok(DocumentsSink {
            store: Arc::new(store),
            recipients,
            signer,
        })
    }
}

/// `type = "documents"`: the store lives in the sink's state folder, its documents' data keys in
/// its key folder unless `data_keys_dir` says otherwise.
pub struct Spec;

impl SinkSpec for Spec {
    type Config = Config;
    type Sink = DocumentsSink;
    const LOCAL: bool = true;

    fn validate(config: &Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn at_rest(config: &Config) -> AtRest {
        config.at_rest()
    }

    /// Loads the recipients' certificates; the store is not opened, since opening creates it.
    async fn check_offline(config: &Config, context: &BuildContext<'_>) -> Result<(), ConfigError> {
        if !config.pgp_recipients.is_empty() {
            let paths: Vec<PathBuf> = config
                .pgp_recipients
                .iter()
                .map(|p| context.resolve(p))
                .collect();
            Recipients::load(&paths)
                .map_err(|e| ConfigError::new("pgp_recipients", e.to_string()))?;
        }
        Ok(())
    }

    async fn build(
        config: &Config,
        context: BuildContext<'_>,
    ) -> Result<DocumentsSink, ConfigError> {
        let mut config = config.clone();
        if config.data_keys_dir.is_none() {
            config.data_keys_dir = Some(context.key_dir.clone());
        }
        let BuildContext {
            base_dir,
            state_dir,
            keys,
            signer,
            ..
        } = context;
        DocumentsSink::build(&config, base_dir, &state_dir, keys, signer)
    }
}

impl Sink for DocumentsSink {
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
        .map_err(|e| {
            DeliveryError::retryable(
                FailureReason::Internal,
                format!("the store task failed: {e}"),
            )
        })?;
        match result {
            Ok(()) => Ok(Receipt::new("document", id)),
            Err(e) => Err(classify(&e)),
        }
    }

    /// Fails when the data-key folder is gone while the store holds documents: every document
    /// sealed under a data key is unreadable until the folder is restored from its backup.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        let store = Arc::clone(&self.store);
        let missing = tokio::task::spawn_blocking(move || store.missing_data_keys_dir())
            .await
            .map_err(|e| {
                DeliveryError::retryable(
                    FailureReason::Internal,
                    format!("the check task failed: {e}"),
                )
            })?
            .map_err(|e| classify(&e))?;
        match missing {
            None => Ok(()),
            Some(dir) => Err(DeliveryError::permanent(
                FailureReason::BadConfig,
                format!(
                    "the data-key folder {} is missing while the store holds documents: \
                     those sealed under data keys cannot be opened until it is restored",
                    dir.display()
                ),
            )),
        }
    }
}

/// The disk is ours: a failure to store is worth retrying (a full disk is `quota`, any other
/// local failure `internal`), except for a file the spool cannot give back, which will not get
/// better (`payload`).
fn classify(e: &StoreError) -> DeliveryError {
    match e {
        StoreError::Source(e) => DeliveryError::permanent(
            FailureReason::Payload,
            format!("could not read a file of the submission from the spool: {e}"),
        ),
        StoreError::Io(io) if is_full(io) => {
            DeliveryError::retryable(FailureReason::Quota, e.to_string())
        }
        e => DeliveryError::retryable(FailureReason::Internal, e.to_string()),
    }
}

/// Whether an I/O error says the disk (or the user's quota on it) is full.
fn is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secureform_contract::{FileMeta, MemoryFiles, Source, Submission};
    use std::process::Command;

    /// A tmpfs of `size` mounted on a fresh folder, unmounted on drop.
    struct Tmpfs(tempfile::TempDir);

    impl Tmpfs {
        fn mount(size: &str) -> Option<Tmpfs> {
            let dir = tempfile::tempdir().unwrap();
            let opts = format!("size={size},mode=0700");
            let ok = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(Tmpfs(dir))
        }

        fn resize(&self, size: &str) {
            let opts = format!("remount,size={size}");
            let status = Command::new("mount")
                .args(["-o", &opts])
                .arg(self.0.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0.path()).status();
        }
    }

    #[test]
    fn store_failures_are_classified() {
        use std::io::{Error, ErrorKind};
        let full = classify(&StoreError::Io(Error::from(ErrorKind::StorageFull)));
        assert!(full.is_retryable());
        assert_eq!(full.reason(), FailureReason::Quota);
        let quota = classify(&StoreError::Io(Error::from(ErrorKind::QuotaExceeded)));
        assert_eq!(quota.reason(), FailureReason::Quota);
        let io = classify(&StoreError::Io(Error::from(ErrorKind::PermissionDenied)));
        assert!(io.is_retryable());
        assert_eq!(io.reason(), FailureReason::Internal);
        let source = classify(&StoreError::Source(Error::from(ErrorKind::InvalidData)));
        assert!(!source.is_retryable());
        assert_eq!(source.reason(), FailureReason::Payload);
    }

    /// Item 10 of issue 15: a full disk used to be reported as an unreadable spool file, a
    /// permanent failure that marked the delivery dead on its first attempt.
    #[test]
    fn a_full_disk_is_retryable_and_the_retry_succeeds_once_there_is_room() {
        let Some(fs) = Tmpfs::mount("512k") else {
            eprintln!(
                "SKIPPED: mounting a tmpfs is not permitted here (run as root to test a full disk)"
            );
            return;
        };
        let keys = Arc::new(KeyRing::generate().unwrap());
        let root = fs.0.path().join("store");
        let sink =
            DocumentsSink::build(&Config::default(), fs.0.path(), &root, keys, None).unwrap();
        let file: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
        let submission = Arc::new(Submission {
            id: "01JDISKFULL000000000000000".into(),
            form: "contact".into(),
            received_at: "2026-12-05T10:00:00Z".into(),
            source: Source::Multipart,
            fields: secureform_contract::Fields::new(),
            files: vec![FileMeta {
                field: "scan".into(),
                filename: "scan.bin".into(),
                content_type: "application/octet-stream".into(),
                size: file.len() as u64,
                sha256: String::new(),
            }],
        });
        let files: Arc<dyn secureform_contract::FileSource> =
            Arc::new(MemoryFiles(vec![file.clone()]));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let deliver = || rt.block_on(sink.deliver(&Delivery::new(&submission, &files)));
        match deliver() {
            Err(e) if e.is_retryable() => {
                assert!(!e.message().contains("spool"), "{e}");
                assert_eq!(e.reason(), FailureReason::Quota, "{e}");
            }
            other => panic!("a full disk must be retryable, got {other:?}"),
        }
        // Nothing half-written is left behind, and with room the retry delivers.
        fs.resize("16m");
        deliver().unwrap();
        let mut back = Vec::new();
        sink.store
            .read_item(&submission.id, DocumentItem::File(0), None, &mut back)
            .unwrap();
        assert_eq!(back, file);
    }
}
