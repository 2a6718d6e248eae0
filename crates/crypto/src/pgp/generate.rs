//! Generating a key pair (for the service key and for tests).

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::serialize::SerializeInto;
use openpgp::types::{Features, KeyFlags};

use super::*;

/// Generates a new cert with a signing and an encryption subkey (Cv25519), for `secureform` to create a service key and for tests.
///
/// The primary key only certifies, nothing expires, and the key advertises SEIPDv1 only, so
/// that GnuPG can read messages that sequoia encrypts to it.
pub fn generate(user_id: &str) -> Result<(String, String), PgpError> {
    if user_id.trim().is_empty() {
        return Err(PgpError::Generate("the user ID is empty".into()));
    }
    let gen = |what: &str, e: anyhow::Error| PgpError::Generate(format!("{what}: {}", chain(&e)));
    let (cert, _revocation) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_features(Features::empty().set_seipdv1())
        .map_err(|e| gen("setting features", e))?
        .add_userid(user_id)
        .set_primary_key_flags(KeyFlags::empty().set_certification())
        .add_signing_subkey()
        .add_subkey(
            KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        )
        .generate()
        .map_err(|e| gen("key generation", e))?;
    let secret = cert
        .as_tsk()
        .armored()
        .to_vec()
        .map_err(|e| gen("serializing the secret key", e))?;
    let public = cert
        .armored()
        .to_vec()
        .map_err(|e| gen("serializing the certificate", e))?;
    let text = |b: Vec<u8>| {
        String::from_utf8(b).map_err(|e| PgpError::Generate(format!("armor is not UTF-8: {e}")))
    };
    Ok((text(secret)?, text(public)?))
}
