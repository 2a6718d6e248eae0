//! Recipient certificates: reading certificate files and checking each has a key to encrypt to.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::cert::CertParser;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
use openpgp::types::RevocationStatus;
use openpgp::Cert;

use super::*;

/// Reads every certificate in a file (armored or binary, one or several).
pub(super) fn read_certs(path: &Path) -> Result<Vec<Cert>, PgpError> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(file_err(path, "is empty: no OpenPGP certificate in it"));
    }
    let parser = CertParser::from_bytes(&bytes).map_err(|e| {
        file_err(
            path,
            format!("is not an OpenPGP certificate or key: {}", chain(&e)),
        )
    })?;
    let mut certs = Vec::new();
    for cert in parser {
        let cert = cert.map_err(|e| {
            file_err(
                path,
                format!("holds a malformed OpenPGP certificate: {}", chain(&e)),
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(file_err(path, "holds no OpenPGP certificate"));
    }
    Ok(certs)
}

/// Checked recipient certificates (public parts only).
#[derive(Clone)]
pub struct Recipients {
    pub(super) certs: Vec<Cert>,
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipients")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

/// Why a certificate has no encryption-capable key valid now, or `Ok` with nothing to say.
fn check_recipient(cert: &Cert, policy: &StandardPolicy) -> Result<(), String> {
    let vc = cert
        .with_policy(policy, None)
        .map_err(|e| format!("rejected by the standard policy: {}", chain(&e)))?;
    if let RevocationStatus::Revoked(_) = vc.revocation_status() {
        return Err("the certificate is revoked".into());
    }
    if let Err(e) = vc.alive() {
        return Err(format!("the certificate expired: {}", chain(&e)));
    }

    let capable: Vec<_> = vc
        .keys()
        .for_transport_encryption()
        .for_storage_encryption()
        .collect();
    if capable.is_empty() {
        return Err("no key is marked for encryption (signing-only certificate?)".into());
    }

    let mut reasons = Vec::new();
    let mut usable = 0usize;
    for ka in &capable {
        let which = if ka.primary() {
            "primary key"
        } else {
            "subkey"
        };
        let id = format!("{which} 0x{}", fpr_hex(&ka.key().fingerprint()));
        if let RevocationStatus::Revoked(_) = ka.revocation_status() {
            reasons.push(format!("{id} is revoked"));
        } else if let Err(e) = ka.alive() {
            reasons.push(match ka.key_expiration_time() {
                Some(t) if t <= std::time::SystemTime::now() => {
                    format!("{id} expired at {}", utc(t))
                }
                _ => format!("{id} is not valid now: {}", chain(&e)),
            });
        } else if !ka.key().pk_algo().is_supported() {
            reasons.push(format!(
                "{id} uses an unsupported algorithm ({})",
                ka.key().pk_algo()
            ));
        } else {
            usable += 1;
        }
    }
    if usable == 0 {
        return Err(reasons.join("; "));
    }

    // A test encryption: proves that the key material is usable by this build's crypto backend.
    let mut sink = io::sink();
    test_encrypt(&vc, &mut sink).map_err(|e| format!("a test encryption failed: {}", chain(&e)))
}

fn test_encrypt(vc: &ValidCert<'_>, sink: &mut (dyn Write + Send + Sync)) -> anyhow::Result<()> {
    let keys = vc
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption()
        .for_storage_encryption();
    let message = Message::new(sink);
    let message = Encryptor::for_recipients(message, keys).build()?;
    let mut w = LiteralWriter::new(message).build()?;
    w.write_all(b"secureform test encryption")?;
    w.finalize()?;
    Ok(())
}

/// A point in time as a UTC date and time, e.g. `2024-02-29 12:34:56 UTC`.
pub(super) fn utc(t: std::time::SystemTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_else(|_| format!("{t:?}"))
}

impl Recipients {
    /// Loads certificates (armored or binary; a file may hold several). Each must have at least one
    /// encryption-capable (transport or storage) key valid now under StandardPolicy: not expired,
    /// not revoked, cert itself alive and not revoked; a test encryption to each must succeed.
    /// Otherwise an error naming the file and the reason. An empty list is an error.
    pub fn load(paths: &[PathBuf]) -> Result<Recipients, PgpError> {
        if paths.is_empty() {
            return Err(PgpError::NoRecipients);
        }
        let policy = StandardPolicy::new();
        let mut certs: Vec<Cert> = Vec::new();
        for path in paths {
            for cert in read_certs(path)? {
                let cert = cert.strip_secret_key_material();
                if let Err(why) = check_recipient(&cert, &policy) {
                    return Err(file_err(
                        path,
                        format!(
                            "certificate 0x{} has no encryption-capable key valid now ({why})",
                            fpr_hex(&cert.fingerprint())
                        ),
                    ));
                }
                match certs
                    .iter_mut()
                    .find(|c| c.fingerprint() == cert.fingerprint())
                {
                    // The same certificate twice (perhaps two exports): merge, encrypt once.
                    Some(existing) => {
                        let merged = existing.clone().merge_public(cert).map_err(|e| {
                            file_err(path, format!("cannot merge certificate: {}", chain(&e)))
                        })?;
                        *existing = merged;
                    }
                    None => certs.push(cert),
                }
            }
        }
        Ok(Recipients { certs })
    }

    /// The certificates' fingerprints, upper-case hex without spaces.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| fpr_hex(&c.fingerprint()))
            .collect()
    }
}
