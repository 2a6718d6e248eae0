//! SecureForm's cryptography, shared by the spool and the sinks.
//!
//! - [`files`]: sealed files written durably (fsync), the only way bytes of a submission reach disk.
//! - [`keys`]: key-encryption keys: key files (refused when others can read them), rotation.
//! - [`seal`]: AES-256-GCM sealing with a fresh data key per item, wrapped by the current
//!   key-encryption key, streamed in authenticated segments (constant memory for any size).
//! - [`pgp`]: OpenPGP (sequoia): checking recipient certificates, encrypting and signing, and
//!   decrypting with a recipient's secret key.
//! - [`smime`]: S/MIME enveloped data (AES-256-CBC, and AES-256-GCM AuthEnvelopedData) for the
//!   email sink.

#![warn(missing_docs)]

pub mod files;
pub mod keys;
pub mod pgp;
pub mod seal;
pub mod smime;

pub use keys::{KeyError, KeyId, KeyRing};
pub use seal::{open, seal, Opener, SealError, Sealer, SegmentSpace};
