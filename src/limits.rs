//! Limits on what a client may send: `[limits]` in the configuration. Every limit is enforced
//! while the body is read, so memory stays bounded whatever the client sends.

use serde::Deserialize;

/// `[limits]`, with safe defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest body that is not multipart (urlencoded, JSON, FDF, XFDF, PDF), in bytes. It also
    /// bounds what any body becomes: all names and values of one submission together (so a PDF
    /// string shared by many fields cannot amplify a small body), and the text parts of a
    /// multipart body together (files count against their own limits).
    pub max_body_bytes: usize,
    /// Largest multipart body, files included, in bytes.
    pub max_upload_bytes: u64,
    /// Most values in one submission, in every format. Every value counts: each repetition of
    /// a name and each item of a list (a name with an empty list counts as one), so the number
    /// of distinct names is bounded by it too.
    pub max_fields: usize,
    /// Largest single field value, in bytes (UTF-8, as stored).
    pub max_field_bytes: usize,
    /// Longest field name, in bytes (UTF-8, as stored); for PDF, FDF and XFDF this is the fully
    /// qualified name (`parent.child`), checked as it is joined.
    pub max_name_bytes: usize,
    /// Most files in one submission.
    pub max_files: usize,
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Longest time, in seconds, for parsing a PDF-family body. A PDF-family post also waits at
    /// most five times this for parse memory (then 503 `pdf_busy`).
    pub pdf_parse_secs: u64,
    /// Memory, in bytes, that all PDF-family parses in progress may hold together: each
    /// reserves its body plus an estimate of its parse before it runs (`src/http/pdf_gate.rs`).
    pub pdf_parse_memory_bytes: u64,
    /// Submissions per minute from one client address to one form (`/f/...`); 0 is no limit.
    /// A form's own `rate_per_minute` overrides it.
    pub rate_per_minute: u32,
    /// API requests per minute from one client address (`/api/...`); 0 is no limit.
    pub api_rate_per_minute: u32,
    /// Longest time, in seconds, for a whole body that is not multipart to arrive (408 after).
    pub body_read_secs: u64,
    /// Longest time, in seconds, for a whole multipart body to arrive (408 after).
    pub upload_read_secs: u64,
    /// Slowest a body may arrive, in bytes per second over each 10 s; 0 is no minimum.
    pub min_body_bytes_per_sec: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 20 * 1024 * 1024,
            max_upload_bytes: 1100 * 1024 * 1024,
            max_fields: 1_000,
            max_field_bytes: 64 * 1024,
            max_name_bytes: 256,
            max_files: 20,
            max_file_bytes: 1024 * 1024 * 1024,
            pdf_parse_secs: 5,
            pdf_parse_memory_bytes: 128 * 1024 * 1024,
            rate_per_minute: 0,
            api_rate_per_minute: 0,
            body_read_secs: 300,
            upload_read_secs: 3600,
            min_body_bytes_per_sec: 1024,
        }
    }
}

impl Limits {
    /// Zero limits would refuse everything: name the key.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.max_body_bytes == 0 {
            return Err(("max_body_bytes", "must be at least 1"));
        }
        if self.max_fields == 0 {
            return Err(("max_fields", "must be at least 1"));
        }
        if self.max_field_bytes == 0 {
            return Err(("max_field_bytes", "must be at least 1"));
        }
        if self.max_name_bytes == 0 {
            return Err(("max_name_bytes", "must be at least 1"));
        }
        if self.pdf_parse_secs == 0 {
            return Err(("pdf_parse_secs", "must be at least 1"));
        }
        if self.pdf_parse_memory_bytes < 1024 * 1024 {
            return Err(("pdf_parse_memory_bytes", "must be at least 1048576 (1 MiB)"));
        }
        if self.body_read_secs == 0 {
            return Err(("body_read_secs", "must be at least 1"));
        }
        if self.upload_read_secs == 0 {
            return Err(("upload_read_secs", "must be at least 1"));
        }
        Ok(())
    }
}
