//! The signing key: a secret key file that only its owner may read.

use std::fmt;
use std::path::Path;

use sequoia_openpgp as openpgp;

use openpgp::crypto::KeyPair;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::types::RevocationStatus;
use openpgp::Cert;

use super::certs::read_certs;
use super::*;

/// A secret key that can sign. Its secret material stays in sequoia's memory protection.
pub struct Signer {
    pub(super) cert: Cert,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

/// Refuses a key file that the group or others may read (Unix permissions).
#[cfg(unix)]
fn check_private_mode(path: &Path) -> Result<(), PgpError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(file_err(
            path,
            format!(
                "secret key file is readable by group or others (mode {mode:04o}); \
                 run chmod 600 on it"
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path) -> Result<(), PgpError> {
    Ok(())
}

/// A keypair for the certificate's signing key valid now, or why there is none.
pub(super) fn signing_keypair(cert: &Cert, policy: &StandardPolicy) -> Result<KeyPair, String> {
    let vc = cert
        .with_policy(policy, None)
        .map_err(|e| format!("rejected by the standard policy: {}", chain(&e)))?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err("the certificate is revoked".into());
    }
    if let Err(e) = vc.alive() {
        return Err(format!("the certificate expired: {}", chain(&e)));
    }
    let candidates: Vec<_> = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .collect();
    if candidates.is_empty() {
        return Err("no signing-capable key valid now (none, expired or revoked)".into());
    }
    let mut encrypted = false;
    for ka in candidates {
        if !ka.key().has_secret() {
            continue;
        }
        if !ka.key().has_unencrypted_secret() {
            encrypted = true;
            continue;
        }
        let secret = match ka.key().clone().parts_into_secret() {
            Ok(k) => k,
            Err(_) => continue,
        };
        match secret.into_keypair() {
            Ok(pair) => return Ok(pair),
            Err(e) => return Err(format!("unusable signing key: {}", chain(&e))),
        }
    }
    if encrypted {
        Err("the secret signing key is password-protected; export it without a password".into())
    } else {
        Err("holds no secret key material for its signing key (a public certificate?)".into())
    }
}

impl Signer {
    /// Loads a transferable secret key (armored or binary, unencrypted secret material) with a
    /// signing-capable key valid now. Refuse a file group- or world-readable (mode & 0o077 != 0).
    pub fn load(path: &Path) -> Result<Signer, PgpError> {
        check_private_mode(path)?;
        let mut certs = read_certs(path)?;
        if certs.len() != 1 {
            return Err(file_err(
                path,
                format!(
                    "holds {} certificates; a signing key file must hold exactly one",
                    certs.len()
                ),
            ));
        }
        let cert = certs.remove(0);
        let policy = StandardPolicy::new();
        if let Err(why) = signing_keypair(&cert, &policy) {
            return Err(file_err(
                path,
                format!("key 0x{} cannot sign: {why}", fpr_hex(&cert.fingerprint())),
            ));
        }
        Ok(Signer { cert })
    }

    /// The certificate's (primary key's) fingerprint, upper-case hex without spaces.
    /// An ASCII-armored detached signature over `data`, which `gpg --verify SIG FILE` checks
    /// against this key's public certificate.
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, PgpError> {
        use openpgp::serialize::stream::{Armorer, Message};
        use std::io::Write;
        let sign = |what: &str, e: anyhow::Error| {
            PgpError::Encrypt(format!("signing, {what}: {}", chain(&e)))
        };
        let policy = StandardPolicy::new();
        let pair = signing_keypair(&self.cert, &policy).map_err(|why| {
            PgpError::Encrypt(format!("signing key 0x{}: {why}", self.fingerprint()))
        })?;
        let mut out = Vec::new();
        let message = Armorer::new(Message::new(&mut out))
            .kind(openpgp::armor::Kind::Signature)
            .build()
            .map_err(|e| sign("starting the armor", e))?;
        let mut signer = openpgp::serialize::stream::Signer::new(message, pair)
            .map_err(|e| sign("starting", e))?
            .detached()
            .build()
            .map_err(|e| sign("starting", e))?;
        signer
            .write_all(data)
            .map_err(|e| sign("writing", e.into()))?;
        signer.finalize().map_err(|e| sign("finishing", e))?;
        String::from_utf8(out).map_err(|e| PgpError::Encrypt(format!("armor is not UTF-8: {e}")))
    }

    /// The signing certificate's fingerprint, upper-case hex without spaces.
    pub fn fingerprint(&self) -> String {
        fpr_hex(&self.cert.fingerprint())
    }

    /// The public certificate, armored, for publishing to recipients (tests use it with gpg --import).
    pub fn public_cert_armored(&self) -> Result<String, PgpError> {
        let bytes = self.cert.armored().to_vec().map_err(|e| {
            PgpError::Generate(format!("serializing the certificate: {}", chain(&e)))
        })?;
        String::from_utf8(bytes)
            .map_err(|e| PgpError::Generate(format!("armored certificate is not UTF-8: {e}")))
    }
}
