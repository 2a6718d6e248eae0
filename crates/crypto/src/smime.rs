//! S/MIME (RFC 8551) enveloped data, streamed.
//!
//! [`encrypt`] writes a CMS `ContentInfo` holding either an `EnvelopedData` (RFC 5652) with
//! AES-256-CBC, or an `AuthEnvelopedData` (RFC 5083/5084) with AES-256-GCM, to every recipient
//! certificate by RSA key transport (PKCS #1 v1.5, which every S/MIME client reads).
//!
//! Why not the `cms` crate: it builds the whole structure in memory (the content, its ciphertext
//! and the DER, three copies of a 20 MiB attachment), and its key-agreement builder is broken.
//! Here the structure is written in BER with indefinite lengths around the encrypted content,
//! which is emitted in segments as the input is read — memory stays at one segment whatever the
//! size, exactly as `openssl cms -encrypt -stream` does. The few definite-length parts (recipient
//! infos, algorithm identifiers) are small and hand-encoded in [`der`]; the recipient's issuer and
//! serial number are copied byte-exact from its certificate.
//!
//! Certificates are checked when loaded ([`Recipients::load`]): RSA of at least 2048 bits, valid
//! now, key usage (when present) allowing key encipherment, extended key usage (when present)
//! allowing email protection, and a test encryption must succeed. Trust chains are not checked:
//! the owner names each recipient certificate explicitly, which pins it.

mod der;
#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::encrypt::Encrypter;
use openssl::error::ErrorStack;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use openssl::x509::{X509ExtendedKeyUsage, X509KeyUsage, X509};
use zeroize::Zeroizing;

/// Bytes of plaintext encrypted per segment of the encrypted content.
const SEGMENT: usize = 64 * 1024;
/// The smallest RSA modulus accepted for a recipient.
const MIN_RSA_BITS: u32 = 2048;
/// GCM tag length, written into the GCM parameters (RFC 5084 `aes-ICVlen`).
const GCM_TAG_LEN: usize = 16;

/// Problems loading a recipient certificate or encrypting. Never carries content bytes.
#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    /// A recipient certificate file could not be read.
    #[error("{path}: cannot read the certificate file: {source}")]
    Read {
        /// The certificate file.
        path: String,
        /// The I/O error reading it.
        source: io::Error,
    },
    /// The file is neither a PEM nor a DER X.509 certificate.
    #[error("{path}: not an X.509 certificate (PEM or DER)")]
    NotACertificate {
        /// The certificate file.
        path: String,
    },
    /// The certificate cannot be used to encrypt: not RSA, a key too short, outside its validity
    /// period, or its key usage forbids key encipherment.
    #[error("{path}: {reason}")]
    Unusable {
        /// The certificate file.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// No recipient certificate was configured.
    #[error("no recipient certificate given")]
    NoRecipients,
    /// OpenSSL failed while encrypting.
    #[error("S/MIME encryption failed: {0}")]
    Crypto(#[from] ErrorStack),
    /// Reading the content or writing the encrypted output failed.
    #[error("S/MIME encryption failed: {0}")]
    Io(#[from] io::Error),
}

/// The content-encryption algorithm, and with it the CMS type (RFC 8551 section 2.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContentCipher {
    /// `EnvelopedData` with AES-256-CBC: what every S/MIME client reads.
    #[default]
    Aes256Cbc,
    /// `AuthEnvelopedData` with AES-256-GCM (RFC 5083): authenticated, newer clients only.
    Aes256Gcm,
}

impl ContentCipher {
    /// The `smime-type` parameter of `application/pkcs7-mime` for this cipher.
    pub fn smime_type(self) -> &'static str {
        match self {
            ContentCipher::Aes256Cbc => "enveloped-data",
            ContentCipher::Aes256Gcm => "authEnveloped-data",
        }
    }
}

/// One checked recipient certificate.
struct Recipient {
    key: PKey<Public>,
    /// DER of the `IssuerAndSerialNumber` naming this certificate.
    issuer_and_serial: Vec<u8>,
}

impl Recipient {
    /// The `KeyTransRecipientInfo` carrying `cek` encrypted to this recipient.
    fn key_trans_info(&self, cek: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let mut encrypter = Encrypter::new(&self.key)?;
        encrypter.set_rsa_padding(Padding::PKCS1)?;
        let mut wrapped = vec![0; encrypter.encrypt_len(cek)?];
        let len = encrypter.encrypt(cek, &mut wrapped)?;
        wrapped.truncate(len);
        Ok(der::sequence(&[
            der::integer_small(0),
            self.issuer_and_serial.clone(),
            der::sequence(&[der::OID_RSA_ENCRYPTION.to_vec(), der::NULL.to_vec()]),
            der::octet_string(&wrapped),
        ]))
    }
}

/// The recipient certificates of an S/MIME message, each checked when loaded.
pub struct Recipients {
    list: Vec<Recipient>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipients({} certificates)", self.list.len())
    }
}

impl Recipients {
    /// Loads one certificate from each file (PEM or DER; in a PEM file with a chain, the first
    /// certificate is the recipient) and checks it; errors name the file and the reason.
    pub fn load(paths: &[PathBuf]) -> Result<Recipients, SmimeError> {
        if paths.is_empty() {
            return Err(SmimeError::NoRecipients);
        }
        let mut list = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| SmimeError::Read {
                path: path.display().to_string(),
                source,
            })?;
            list.push(check(path, &bytes)?);
        }
        Ok(Recipients { list })
    }

    /// Checks certificates given as bytes; `label` names them in errors.
    pub fn from_bytes(label: &str, certificates: &[&[u8]]) -> Result<Recipients, SmimeError> {
        if certificates.is_empty() {
            return Err(SmimeError::NoRecipients);
        }
        let list = certificates
            .iter()
            .map(|bytes| check(Path::new(label), bytes))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Recipients { list })
    }

    /// How many recipients.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none (never true for loaded recipients).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Parses and checks one certificate, then proves it by a test encryption.
fn check(path: &Path, bytes: &[u8]) -> Result<Recipient, SmimeError> {
    let name = path.display().to_string();
    let unusable = |reason: &str| SmimeError::Unusable {
        path: name.clone(),
        reason: reason.to_owned(),
    };
    let cert = parse_certificate(bytes)
        .ok_or_else(|| SmimeError::NotACertificate { path: name.clone() })?;
    let key = cert
        .public_key()
        .map_err(|_| unusable("the certificate's public key cannot be read"))?;
    if key.id() != Id::RSA {
        return Err(unusable(
            "only RSA certificates are supported (RSA key transport); this key is not RSA",
        ));
    }
    if key.bits() < MIN_RSA_BITS {
        return Err(unusable(&format!(
            "the RSA key has {} bits; at least {MIN_RSA_BITS} are required",
            key.bits()
        )));
    }
    let now = Asn1Time::days_from_now(0)?;
    if cert.not_after() < now {
        return Err(unusable(&format!(
            "the certificate expired on {}",
            cert.not_after()
        )));
    }
    if cert.not_before() > now {
        return Err(unusable(&format!(
            "the certificate is not valid before {}",
            cert.not_before()
        )));
    }
    if let Some(usage) = cert.key_usage() {
        if !usage.contains(X509KeyUsage::KEY_ENCIPHERMENT) {
            return Err(unusable(
                "the certificate's key usage does not allow key encipherment",
            ));
        }
    }
    if let Some(usage) = cert.extended_key_usage() {
        if !usage.intersects(X509ExtendedKeyUsage::SMIME | X509ExtendedKeyUsage::ANYEKU) {
            return Err(unusable(
                "the certificate's extended key usage does not allow email protection",
            ));
        }
    }
    let cert_der = cert.to_der()?;
    let issuer_and_serial = der::issuer_and_serial(&cert_der)
        .ok_or_else(|| unusable("the certificate's issuer or serial number cannot be read"))?;
    let recipient = Recipient {
        key,
        issuer_and_serial,
    };
    // A test encryption, so that a key the library cannot use is refused now, not at delivery.
    recipient
        .key_trans_info(&[0u8; 32])
        .map_err(|_| unusable("a test encryption to the certificate's key failed"))?;
    Ok(recipient)
}

fn parse_certificate(bytes: &[u8]) -> Option<X509> {
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        X509::stack_from_pem(bytes).ok()?.into_iter().next()
    } else {
        X509::from_der(bytes).ok()
    }
}

/// Encrypts everything read from `input` to every recipient, writing a BER-encoded CMS
/// `ContentInfo` to `output`; returns the number of bytes written. Memory stays at one segment.
pub fn encrypt(
    recipients: &Recipients,
    cipher: ContentCipher,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<u64, SmimeError> {
    if recipients.list.is_empty() {
        return Err(SmimeError::NoRecipients);
    }
    let mut cek = Zeroizing::new([0u8; 32]);
    openssl::rand::rand_bytes(&mut cek[..])?;
    let mut infos = recipients
        .list
        .iter()
        .map(|r| r.key_trans_info(&cek[..]))
        .collect::<Result<Vec<_>, _>>()?;
    infos.sort(); // DER orders a SET OF by its encodings
    let (content_type, algorithm, mut crypter) = content_cipher(cipher, &cek[..])?;

    let mut out = Counting {
        inner: output,
        n: 0,
    };
    out.write_all(&[0x30, 0x80])?; // ContentInfo
    out.write_all(content_type)?;
    out.write_all(&[0xA0, 0x80])?; // [0] EXPLICIT content
    out.write_all(&[0x30, 0x80])?; // (Auth)EnvelopedData
    out.write_all(&der::integer_small(0))?;
    out.write_all(&der::set(&infos))?;
    out.write_all(&[0x30, 0x80])?; // EncryptedContentInfo
    out.write_all(der::OID_DATA)?;
    out.write_all(&algorithm)?;
    out.write_all(&[0xA0, 0x80])?; // [0] IMPLICIT encrypted content, in segments
    stream_segments(&mut crypter, cipher, input, &mut out)?;
    out.write_all(der::END)?; // encrypted content
    out.write_all(der::END)?; // EncryptedContentInfo
    if cipher == ContentCipher::Aes256Gcm {
        let mut tag = [0u8; GCM_TAG_LEN];
        crypter.get_tag(&mut tag)?;
        out.write_all(&der::octet_string(&tag))?; // mac
    }
    out.write_all(der::END)?; // (Auth)EnvelopedData
    out.write_all(der::END)?; // [0]
    out.write_all(der::END)?; // ContentInfo
    out.flush()?;
    Ok(out.n)
}

/// The CMS content type, the encoded content-encryption algorithm and a ready crypter.
fn content_cipher(
    cipher: ContentCipher,
    cek: &[u8],
) -> Result<(&'static [u8], Vec<u8>, Crypter), SmimeError> {
    match cipher {
        ContentCipher::Aes256Cbc => {
            let mut iv = [0u8; 16];
            openssl::rand::rand_bytes(&mut iv)?;
            let crypter = Crypter::new(Cipher::aes_256_cbc(), Mode::Encrypt, cek, Some(&iv))?;
            let algorithm = der::sequence(&[der::OID_AES256_CBC.to_vec(), der::octet_string(&iv)]);
            Ok((der::OID_ENVELOPED_DATA, algorithm, crypter))
        }
        ContentCipher::Aes256Gcm => {
            let mut nonce = [0u8; 12];
            openssl::rand::rand_bytes(&mut nonce)?;
            let crypter = Crypter::new(Cipher::aes_256_gcm(), Mode::Encrypt, cek, Some(&nonce))?;
            let params = der::sequence(&[
                der::octet_string(&nonce),
                der::integer_small(GCM_TAG_LEN as u8),
            ]);
            let algorithm = der::sequence(&[der::OID_AES256_GCM.to_vec(), params]);
            Ok((der::OID_AUTH_ENVELOPED_DATA, algorithm, crypter))
        }
    }
}

/// Encrypts `input` segment by segment, each written as a primitive OCTET STRING.
fn stream_segments(
    crypter: &mut Crypter,
    cipher: ContentCipher,
    input: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<(), SmimeError> {
    let block = match cipher {
        ContentCipher::Aes256Cbc => Cipher::aes_256_cbc().block_size(),
        ContentCipher::Aes256Gcm => Cipher::aes_256_gcm().block_size(),
    };
    let mut plain = vec![0u8; SEGMENT];
    let mut sealed = vec![0u8; SEGMENT + 2 * block];
    loop {
        let n = match input.read(&mut plain) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let chunk = plain.get(..n).unwrap_or_default();
        let len = crypter.update(chunk, &mut sealed)?;
        write_segment(out, sealed.get(..len).unwrap_or_default())?;
    }
    let len = crypter.finalize(&mut sealed)?;
    write_segment(out, sealed.get(..len).unwrap_or_default())?;
    Ok(())
}

fn write_segment(out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    out.write_all(&der::header(der::TAG_OCTET_STRING, bytes.len()))?;
    out.write_all(bytes)
}

/// Counts what passes through, for the returned size.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
