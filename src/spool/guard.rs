//! Removing a request's spool files when the request ends without storing them.

use std::sync::Arc;

use super::Spool;

/// Removes a request's spool files when the request ends without storing them, whatever the
/// cause: a refusal, a honeypot, an idempotent repeat, a client that reset the connection
/// mid-upload (the HTTP layer then drops the handler's future, and with it this guard).
///
/// The removal goes through the writer, in order after any commit this request queued: a
/// handler dropped while its submission is being committed must not lose the files of a
/// submission that is then stored. The writer removes them only when no submission has the id.
/// On PostgreSQL the removal and the acceptance take the same advisory lock instead (see
/// `pg_files.rs`).
pub struct UploadGuard {
    spool: Arc<Spool>,
    id: String,
    keep: bool,
}

impl Spool {
    /// A guard over the spool files of request `id`: unless [`UploadGuard::keep`] is called,
    /// they are removed when the guard goes.
    pub fn upload_guard(self: &Arc<Self>, id: &str) -> UploadGuard {
        UploadGuard {
            spool: Arc::clone(self),
            id: id.to_owned(),
            keep: false,
        }
    }
}

impl UploadGuard {
    /// The submission was stored under this id: its files stay.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if self.keep {
            if let Some(store) = &self.spool.pg_files {
                store.end_upload(&self.id);
            }
            return;
        }
        // Most requests write no file: they cost the writer nothing.
        if !self.spool.may_have_files(&self.id) {
            return;
        }
        self.spool.backend.discard(std::mem::take(&mut self.id));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{clock, open, sinks, submission};
    use super::super::Acceptance;
    use std::time::Duration;

    /// A request's guard removes its files when nothing was stored under its id, and keeps
    /// them when the submission was committed, even if the guard went while the commit was
    /// still queued (a handler dropped mid-commit).
    #[tokio::test]
    async fn a_dropped_upload_guard_removes_only_files_of_what_was_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let spool = open(dir.path(), &clock);
        let files = dir.path().join("spool").join("files");
        let write_file = |id: &str| {
            let mut writer = spool.file_writer(id, 0).unwrap();
            writer.write_chunk(b"some bytes").unwrap();
            writer.finish().unwrap();
        };
        let lost = submission(&clock);
        write_file(&lost.id);
        drop(spool.upload_guard(&lost.id));

        let kept = submission(&clock);
        write_file(&kept.id);
        let guard = spool.upload_guard(&kept.id);
        let kept_sinks = sinks();
        let accept = spool.accept(&kept, &kept_sinks, None);
        tokio::pin!(accept);
        assert!(futures_util::future::poll_immediate(&mut accept)
            .await
            .is_none());
        drop(guard);
        assert_eq!(accept.await.unwrap(), Acceptance::Stored);

        for _ in 0..100 {
            if !files.join(&lost.id).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!files.join(&lost.id).exists(), "the unstored files went");
        assert!(
            files.join(&kept.id).join("0.sf").exists(),
            "the stored ones stay"
        );
    }
}
