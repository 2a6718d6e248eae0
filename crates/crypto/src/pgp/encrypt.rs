//! Encrypting (and signing) a stream to the recipients; armoring a stored binary message.

use std::io::{self, Read, Write};

use sequoia_openpgp as openpgp;

use openpgp::armor;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message};

use super::signer::signing_keypair;
use super::*;

/// Encrypts (and signs first when `signer` is given, so recipients can verify) everything read from
/// `input` to every recipient, writing one OpenPGP message to `output` (ASCII-armored when `armor`).
/// Streams: memory is constant in the input's size. Returns the plaintext byte count.
pub fn encrypt(
    recipients: &Recipients,
    signer: Option<&Signer>,
    armor: bool,
    input: &mut dyn Read,
    output: &mut (dyn Write + Send + Sync),
) -> Result<u64, PgpError> {
    let policy = StandardPolicy::new();
    let enc = |what: &str, e: anyhow::Error| PgpError::Encrypt(format!("{what}: {}", chain(&e)));

    // Re-check validity now: a long-running service may outlive a key's expiry.
    let mut keys = Vec::new();
    for cert in &recipients.certs {
        let vc = cert.with_policy(&policy, None).map_err(|e| {
            enc(
                &format!("certificate 0x{}", fpr_hex(&cert.fingerprint())),
                e,
            )
        })?;
        let before = keys.len();
        keys.extend(
            vc.keys()
                .supported()
                .alive()
                .revoked(false)
                .for_transport_encryption()
                .for_storage_encryption(),
        );
        if keys.len() == before {
            return Err(PgpError::Encrypt(format!(
                "certificate 0x{} has no encryption-capable key valid now",
                fpr_hex(&cert.fingerprint())
            )));
        }
    }
    let keypair = match signer {
        Some(s) => Some(signing_keypair(&s.cert, &policy).map_err(|why| {
            PgpError::Encrypt(format!("signing key 0x{}: {why}", s.fingerprint()))
        })?),
        None => None,
    };

    let mut message = Message::new(output);
    if armor {
        message = Armorer::new(message)
            .kind(armor::Kind::Message)
            .build()
            .map_err(|e| enc("starting the armor", e))?;
    }
    message = Encryptor::for_recipients(message, keys)
        .build()
        .map_err(|e| enc("starting encryption", e))?;
    if let Some(pair) = keypair {
        let mut s = openpgp::serialize::stream::Signer::new(message, pair)
            .map_err(|e| enc("starting the signature", e))?;
        for cert in &recipients.certs {
            s = s.add_intended_recipient(cert);
        }
        message = s.build().map_err(|e| enc("starting the signature", e))?;
    }
    let mut literal = LiteralWriter::new(message)
        .build()
        .map_err(|e| enc("starting the literal data", e))?;
    let count = io::copy(input, &mut literal)
        .map_err(|e| PgpError::Encrypt(format!("streaming the plaintext: {e}")))?;
    literal
        .finalize()
        .map_err(|e| enc("finishing the message", e))?;
    Ok(count)
}

/// Wraps a binary OpenPGP message in ASCII armor (RFC 4880 section 6), streaming: for serving a
/// stored double-encrypted document to a recipient, who opens it with any OpenPGP tool.
pub fn armor_message(input: &mut dyn Read, output: &mut dyn Write) -> Result<u64, PgpError> {
    let mut writer = armor::Writer::new(output, armor::Kind::Message)
        .map_err(|e| PgpError::Encrypt(format!("armoring: {e}")))?;
    let n =
        io::copy(input, &mut writer).map_err(|e| PgpError::Encrypt(format!("armoring: {e}")))?;
    writer
        .finalize()
        .map_err(|e| PgpError::Encrypt(format!("armoring: {e}")))?;
    Ok(n)
}
