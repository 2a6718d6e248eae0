//! OpenPGP with sequoia: checking recipient certificates, encrypting (and signing) submissions
//! to them, and decrypting with a recipient's secret key.
//!
//! Every check is made under sequoia's [`StandardPolicy`] at the current time.
//!
//! - [`Recipients::load`] refuses any certificate that has no encryption-capable key valid now
//!   (expired, revoked, or no key marked for encryption), naming the file and the reason.
//! - [`Signer::load`] refuses a secret key file that the group or others can read.
//! - [`encrypt`] and [`decrypt`] stream: memory does not grow with the message's size.
//!
//! Keys made by [`generate`] advertise only SEIPDv1 (the encryption container every GnuPG
//! reads), so messages that sequoia writes to them stay readable by `gpg` 2.2 and 2.4.

mod certs;
mod decrypt;
mod detect;
mod encrypt;
mod generate;
mod signer;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use sequoia_openpgp::Fingerprint;

pub use certs::Recipients;
pub use decrypt::decrypt;
pub use detect::looks_encrypted;
pub use encrypt::{armor_message, encrypt};
pub use generate::generate;
pub use signer::Signer;

/// What went wrong, naming the file (where there is one) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// A key or certificate file could not be used.
    #[error("{}: {problem}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// `Recipients::load` was given no files.
    #[error("no recipient certificate files given: at least one is needed")]
    NoRecipients,
    /// Encrypting or signing failed (including reading the input or writing the output).
    #[error("encrypting: {0}")]
    Encrypt(String),
    /// Decrypting failed (no usable secret key, a corrupt or tampered message, I/O).
    #[error("decrypting: {0}")]
    Decrypt(String),
    /// A signature was required (`verify_with`) but no good one was found.
    #[error("verifying: {0}")]
    Signature(String),
    /// Generating a key failed.
    #[error("generating a key: {0}")]
    Generate(String),
}

pub(super) fn file_err(path: &Path, problem: impl Into<String>) -> PgpError {
    PgpError::File {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// `{:#}` shows anyhow's whole chain of causes on one line.
pub(super) fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

pub(super) fn fpr_hex(fpr: &Fingerprint) -> String {
    fpr.to_hex()
}
