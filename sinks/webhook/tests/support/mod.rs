//! Test support: the Python receiver (verifying with the `standardwebhooks` package), its
//! certificates and secrets come from `secureform-testkit` (re-exported here); this module adds
//! the sink's configuration for them and a submission.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use secureform_contract::{Fields, FileMeta, FileSource, MemoryFiles, Source, Submission};
pub use secureform_testkit::cmd::run_bytes as run;
pub use secureform_testkit::net::free_port;
pub use secureform_testkit::webhook::{secret, Env};

/// The sink's configuration for an [`Env`].
pub trait EnvConfig {
    /// A configuration for `url`, signing with all of the env's secrets, trusting its CA.
    fn config(&self, url: &str, extra: &str) -> secureform_webhook::Config;
}

impl EnvConfig for Env {
    fn config(&self, url: &str, extra: &str) -> secureform_webhook::Config {
        let secrets = self.secret_file(&self.secrets);
        toml::from_str(&format!(
            "url = \"{url}\"\nsecret_file = \"{}\"\nca_file = \"{}\"\nallow_private = true\n{extra}",
            secrets.display(),
            self.ca.display()
        ))
        .unwrap()
    }
}

/// A submission with two files: a small one (inline) and one of 4096 bytes.
pub fn submission() -> (Arc<Submission>, Arc<dyn FileSource>, Vec<Vec<u8>>) {
    let mut fields = Fields::new();
    fields.push("email", "canary-7f3a@example.com");
    fields.push("topics", "billing");
    fields.push("topics", "support");
    fields.push("note", "line one\nline \"two\" é");
    let small = b"small file bytes \x00\x01\xff".to_vec();
    let large = vec![0x5a_u8; 4096];
    let meta = |field: &str, bytes: &[u8], name: &str| FileMeta {
        field: field.into(),
        filename: name.into(),
        content_type: "application/octet-stream".into(),
        size: bytes.len() as u64,
        sha256: "00".repeat(32),
    };
    let s = Submission {
        id: "01JDWEBHOOKTEST0000000000A".into(),
        form: "contact".into(),
        received_at: "2026-11-27T10:00:00Z".into(),
        source: Source::Multipart,
        fields,
        files: vec![meta("a", &small, "a.bin"), meta("b", &large, "b.bin")],
    };
    let files: Arc<dyn FileSource> = Arc::new(MemoryFiles(vec![small.clone(), large.clone()]));
    (Arc::new(s), files, vec![small, large])
}
