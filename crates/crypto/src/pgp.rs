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

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use sequoia_openpgp as openpgp;

use openpgp::armor;
use openpgp::cert::prelude::*;
use openpgp::cert::CertParser;
use openpgp::crypto::{KeyPair, SessionKey};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message};
use openpgp::serialize::SerializeInto;
use openpgp::types::{Features, KeyFlags, RevocationStatus, SymmetricAlgorithm};
use openpgp::{Cert, Fingerprint, KeyHandle};

/// What went wrong, naming the file (where there is one) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum PgpError {
    /// A key or certificate file could not be used.
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
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

fn file_err(path: &Path, problem: impl Into<String>) -> PgpError {
    PgpError::File {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// `{:#}` shows anyhow's whole chain of causes on one line.
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

fn fpr_hex(fpr: &Fingerprint) -> String {
    fpr.to_hex()
}

/// Reads every certificate in a file (armored or binary, one or several).
fn read_certs(path: &Path) -> Result<Vec<Cert>, PgpError> {
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

// ---------------------------------------------------------------------------------------------
// Recipients

/// Checked recipient certificates (public parts only).
#[derive(Clone)]
pub struct Recipients {
    certs: Vec<Cert>,
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
                    format!("{id} expired at {}", unix_utc(t))
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

/// Seconds since the epoch, formatted as a UTC date and time (no calendar crate needed).
fn unix_utc(t: std::time::SystemTime) -> String {
    let secs = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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

// ---------------------------------------------------------------------------------------------
// Signer

/// A secret key that can sign. Its secret material stays in sequoia's memory protection.
pub struct Signer {
    cert: Cert,
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
fn signing_keypair(cert: &Cert, policy: &StandardPolicy) -> Result<KeyPair, String> {
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

// ---------------------------------------------------------------------------------------------
// Encrypt

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

// ---------------------------------------------------------------------------------------------
// Decrypt

#[derive(Default)]
struct Outcome {
    good_signatures: usize,
    /// Set when the message failed the check (unsigned, bad signature, not encrypted).
    refusal: Option<PgpError>,
}

struct Helper {
    secret_file: PathBuf,
    secret: Vec<Cert>,
    verify: Option<(PathBuf, Vec<Cert>)>,
    outcome: Arc<Mutex<Outcome>>,
}

impl Helper {
    fn refuse(&self, err: PgpError) -> anyhow::Error {
        let text = err.to_string();
        if let Ok(mut o) = self.outcome.lock() {
            o.refusal = Some(err);
        }
        anyhow::anyhow!(text)
    }
}

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .verify
            .as_ref()
            .map(|(_, certs)| certs.clone())
            .unwrap_or_default())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        let mut encrypted = false;
        let mut good = 0usize;
        let mut problems = Vec::new();
        for layer in structure {
            match layer {
                MessageLayer::Encryption { .. } => encrypted = true,
                MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results } => {
                    for r in results {
                        match r {
                            Ok(_) => good += 1,
                            Err(e) => problems.push(e.to_string()),
                        }
                    }
                }
            }
        }
        if !encrypted {
            return Err(self.refuse(PgpError::Decrypt("the message is not encrypted".into())));
        }
        if let Ok(mut o) = self.outcome.lock() {
            o.good_signatures = good;
        }
        if let Some((path, certs)) = &self.verify {
            if good == 0 {
                let fprs: Vec<String> = certs.iter().map(|c| fpr_hex(&c.fingerprint())).collect();
                let why = if problems.is_empty() {
                    "the message is not signed".to_string()
                } else {
                    problems.join("; ")
                };
                return Err(self.refuse(PgpError::Signature(format!(
                    "no good signature by {} (from {}): {why}",
                    fprs.join(", "),
                    path.display()
                ))));
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        // Addressed PKESKs first, then wildcard (anonymous-recipient) ones against every key.
        for want_wildcard in [false, true] {
            for pkesk in pkesks {
                let recipient = pkesk.recipient();
                if recipient.is_none() != want_wildcard {
                    continue;
                }
                for cert in &self.secret {
                    for ka in cert.keys().unencrypted_secret() {
                        if let Some(r) = &recipient {
                            if !r.aliases(ka.key().key_handle()) {
                                continue;
                            }
                        }
                        let Ok(mut pair) = ka.key().clone().into_keypair() else {
                            continue;
                        };
                        if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                            if decrypt(algo, &sk) {
                                return Ok(Some(cert.clone()));
                            }
                        }
                    }
                }
            }
        }
        let for_whom: Vec<String> = pkesks
            .iter()
            .map(|p| match p.recipient() {
                Some(h) => format!("0x{h:X}"),
                None => "an anonymous recipient".into(),
            })
            .collect();
        Err(self.refuse(PgpError::Decrypt(format!(
            "no secret key in {} can decrypt this message (it is encrypted to {})",
            self.secret_file.display(),
            if for_whom.is_empty() {
                "no public key: password-only messages are not supported".into()
            } else {
                for_whom.join(", ")
            }
        ))))
    }
}

fn load_secret_certs(path: &Path) -> Result<Vec<Cert>, PgpError> {
    let certs = read_certs(path)?;
    let mut any_secret = false;
    let mut any_unencrypted = false;
    for cert in &certs {
        for ka in cert.keys().secret() {
            any_secret = true;
            if ka.key().has_unencrypted_secret() {
                any_unencrypted = true;
            }
        }
    }
    if !any_secret {
        return Err(file_err(
            path,
            "holds no secret key material (a public certificate?)",
        ));
    }
    if !any_unencrypted {
        return Err(file_err(
            path,
            "all secret key material is password-protected; export it without a password",
        ));
    }
    Ok(certs)
}

/// Requests from the decrypting thread to the caller's thread, which owns `input` and `output`.
enum Request {
    /// Send the next chunk of input (empty at end of input).
    Input,
    /// Write this plaintext.
    Output(Vec<u8>),
}

/// The decrypting thread's view of `input`: asks the caller's thread for each chunk.
struct ChannelReader {
    requests: SyncSender<Request>,
    chunks: Mutex<Receiver<io::Result<Vec<u8>>>>,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.buf.len() {
            if self.eof {
                return Ok(0);
            }
            let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "decryption was abandoned");
            self.requests.send(Request::Input).map_err(|_| gone())?;
            let chunk = self
                .chunks
                .lock()
                .map_err(|_| gone())?
                .recv()
                .map_err(|_| gone())??;
            self.eof = chunk.is_empty();
            self.buf = chunk;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The decrypting thread's view of `output`.
struct ChannelWriter {
    requests: SyncSender<Request>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.requests
            .send(Request::Output(buf.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "output was abandoned"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const CHUNK: usize = 64 * 1024;

/// Runs sequoia's decryptor over the channel reader, writing to the channel writer.
fn run_decryptor(
    helper: Helper,
    outcome: &Arc<Mutex<Outcome>>,
    reader: ChannelReader,
    mut writer: ChannelWriter,
) -> Result<bool, PgpError> {
    let policy = StandardPolicy::new();
    // Prefer the error the helper recorded (it knows whether it is a signature problem).
    let recorded = |fallback: PgpError| -> PgpError {
        outcome
            .lock()
            .ok()
            .and_then(|mut o| o.refusal.take())
            .unwrap_or(fallback)
    };
    let mut decryptor = DecryptorBuilder::from_reader(reader)
        .and_then(|b| b.with_policy(&policy, None, helper))
        .map_err(|e| recorded(PgpError::Decrypt(chain(&e))))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match decryptor.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(recorded(PgpError::Decrypt(e.to_string()))),
        };
        writer
            .write_all(&buf[..n])
            .map_err(|e| PgpError::Decrypt(format!("writing the plaintext: {e}")))?;
    }
    if !decryptor.message_processed() {
        return Err(recorded(PgpError::Decrypt(
            "the message ended before it was complete".into(),
        )));
    }
    let good = outcome.lock().map(|o| o.good_signatures).unwrap_or(0);
    Ok(good > 0)
}

/// Decrypts a message (armored or binary) with the secret key(s) in `secret_key_file`, streaming the
/// plaintext to `output`. If `verify_with` is Some, the message must carry a good signature by that
/// certificate or it is an error; returns whether a good signature (from any key in verify_with) was seen.
///
/// Up to sequoia's buffer (25 MiB) the plaintext is released only after the signature check; a
/// longer message streams, and on error the caller must discard what was written.
pub fn decrypt(
    secret_key_file: &Path,
    verify_with: Option<&Path>,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<bool, PgpError> {
    let secret = load_secret_certs(secret_key_file)?;
    let verify = match verify_with {
        Some(p) => Some((
            p.to_path_buf(),
            read_certs(p)?
                .into_iter()
                .map(Cert::strip_secret_key_material)
                .collect(),
        )),
        None => None,
    };
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let helper = Helper {
        secret_file: secret_key_file.to_path_buf(),
        secret,
        verify,
        outcome: Arc::clone(&outcome),
    };

    // sequoia's parser needs a `Send + Sync` reader, and `input` is neither; so the parser runs
    // on a scoped thread and asks this thread, which owns `input` and `output`, for each chunk
    // and to write each piece of plaintext. Rendezvous channels keep memory constant.
    std::thread::scope(|scope| {
        let (req_tx, req_rx) = sync_channel::<Request>(0);
        let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Vec<u8>>>(0);
        let reader = ChannelReader {
            requests: req_tx.clone(),
            chunks: Mutex::new(chunk_rx),
            buf: Vec::new(),
            pos: 0,
            eof: false,
        };
        let writer = ChannelWriter { requests: req_tx };
        let outcome_ref = &outcome;
        let worker = scope.spawn(move || run_decryptor(helper, outcome_ref, reader, writer));

        let mut failure: Option<PgpError> = None;
        let mut buf = vec![0u8; CHUNK];
        while let Ok(req) = req_rx.recv() {
            match req {
                Request::Input => {
                    let chunk = loop {
                        match input.read(&mut buf) {
                            Ok(n) => break Ok(buf[..n].to_vec()),
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => break Err(e),
                        }
                    };
                    if chunk_tx.send(chunk).is_err() {
                        break;
                    }
                }
                Request::Output(data) => {
                    if let Err(e) = output.write_all(&data) {
                        failure = Some(PgpError::Decrypt(format!("writing the plaintext: {e}")));
                        break;
                    }
                }
            }
        }
        // Hanging up makes a worker still waiting on us fail instead of blocking forever.
        drop(req_rx);
        drop(chunk_tx);
        let result = match worker.join() {
            Ok(r) => r,
            Err(_) => Err(PgpError::Decrypt("the decrypting thread panicked".into())),
        };
        if let Some(f) = failure {
            return Err(f);
        }
        let good = result?;
        output
            .flush()
            .map_err(|e| PgpError::Decrypt(format!("writing the plaintext: {e}")))?;
        Ok(good)
    })
}

// ---------------------------------------------------------------------------------------------
// Recognising a message, generating keys

/// Whether binary OpenPGP data starts with a packet that opens an encrypted message: a public-key
/// or symmetric-key encrypted session key, or encrypted data, with a known version.
fn binary_looks_encrypted(bytes: &[u8]) -> bool {
    let Some(&first) = bytes.first() else {
        return false;
    };
    if first & 0x80 == 0 {
        return false;
    }
    let (tag, body_start) = if first & 0x40 != 0 {
        // New format: the length's first octet tells how many octets it has.
        let tag = first & 0x3f;
        let len_octets = match bytes.get(1) {
            Some(&l) if l < 192 => 1,
            Some(&l) if l < 224 => 2,
            Some(&255) => 5,
            Some(_) => 1, // partial body length
            None => return false,
        };
        (tag, 1 + len_octets)
    } else {
        let tag = (first >> 2) & 0x0f;
        let len_octets = match first & 0x03 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 0, // indeterminate length
        };
        (tag, 1 + len_octets)
    };
    let version = bytes.get(body_start).copied();
    match tag {
        1 => matches!(version, Some(3 | 6)),  // PKESK
        3 => matches!(version, Some(4..=6)),  // SKESK
        18 => matches!(version, Some(1 | 2)), // SEIPD
        20 => matches!(version, Some(1)),     // OCB encrypted data (LibrePGP)
        9 => bytes.len() > body_start,        // legacy symmetrically encrypted data
        _ => false,
    }
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

/// Quick check whether bytes already look like an OpenPGP message (armored or binary), used to skip double work.
///
/// Only an *encrypted* message counts: an armored or binary message that is merely signed or
/// compressed returns `false`, so it still gets encrypted.
pub fn looks_encrypted(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    const BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
    if !trimmed.starts_with(BEGIN) {
        return binary_looks_encrypted(trimmed);
    }
    // Armored: skip the header lines ("Key: value") and decode the start of the body.
    let text = String::from_utf8_lossy(&trimmed[BEGIN.len()..]);
    let mut lines = text.lines().map(str::trim);
    if lines.next().is_some_and(|rest| !rest.is_empty()) {
        return false; // something after the BEGIN line on the same line
    }
    let mut b64 = String::new();
    for line in lines {
        if b64.is_empty() && (line.is_empty() || line.contains(':')) {
            continue;
        }
        if line.starts_with('=') || line.starts_with("-----") {
            break;
        }
        b64.push_str(line);
        if b64.len() >= 64 {
            break;
        }
    }
    let usable = b64.len() / 4 * 4;
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(&b64[..usable]) {
        Ok(raw) => binary_looks_encrypted(&raw),
        Err(_) => false,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    /// Writes `text` to `dir/name` with mode 0600 and returns the path.
    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path
    }

    struct Party {
        secret: PathBuf,
        public: PathBuf,
    }

    fn party(dir: &Path, name: &str) -> Party {
        let (secret, public) = generate(&format!("{name} <{name}@example.com>")).unwrap();
        Party {
            secret: write(dir, &format!("{name}.sec.asc"), secret.as_bytes()),
            public: write(dir, &format!("{name}.asc"), public.as_bytes()),
        }
    }

    fn cert_file(dir: &Path, name: &str, cert: &Cert) -> PathBuf {
        write(dir, name, &cert.armored().to_vec().unwrap())
    }

    fn encrypt_vec(r: &Recipients, s: Option<&Signer>, armor: bool, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = encrypt(r, s, armor, &mut &data[..], &mut out).unwrap();
        assert_eq!(n, data.len() as u64);
        out
    }

    fn decrypt_vec(
        secret: &Path,
        verify: Option<&Path>,
        msg: &[u8],
    ) -> Result<(Vec<u8>, bool), PgpError> {
        let mut out = Vec::new();
        let good = decrypt(secret, verify, &mut &msg[..], &mut out)?;
        Ok((out, good))
    }

    #[test]
    fn round_trip_signed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let alice = party(dir.path(), "alice");
        let service = party(dir.path(), "service");
        let recipients = Recipients::load(std::slice::from_ref(&alice.public)).unwrap();
        let signer = Signer::load(&service.secret).unwrap();
        let plaintext = b"name=Jo&message=hello\r\n\x00\xff binary too";

        for armor in [true, false] {
            let msg = encrypt_vec(&recipients, Some(&signer), armor, plaintext);
            assert!(!msg.windows(plaintext.len()).any(|w| w == plaintext));
            assert_eq!(msg.starts_with(b"-----BEGIN PGP MESSAGE-----"), armor);
            assert!(looks_encrypted(&msg));

            let (out, good) = decrypt_vec(&alice.secret, Some(&service.public), &msg).unwrap();
            assert_eq!(out, plaintext);
            assert!(good);
            // Without verify_with nothing is verified.
            let (out, good) = decrypt_vec(&alice.secret, None, &msg).unwrap();
            assert_eq!(out, plaintext);
            assert!(!good);
        }

        // verify_with someone else: refused, naming the signature problem.
        let mallory = party(dir.path(), "mallory");
        let msg = encrypt_vec(&recipients, Some(&signer), true, plaintext);
        let err = decrypt_vec(&alice.secret, Some(&mallory.public), &msg).unwrap_err();
        assert!(matches!(err, PgpError::Signature(_)), "{err}");
        assert!(err.to_string().contains("no good signature"), "{err}");

        // An unsigned message when a signature is required: refused.
        let unsigned = encrypt_vec(&recipients, None, true, plaintext);
        let err = decrypt_vec(&alice.secret, Some(&service.public), &unsigned).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");
        let (out, good) = decrypt_vec(&alice.secret, None, &unsigned).unwrap();
        assert_eq!((out.as_slice(), good), (&plaintext[..], false));

        // The wrong secret key: refused, naming the file.
        let err = decrypt_vec(&mallory.secret, None, &msg).unwrap_err();
        assert!(err.to_string().contains("mallory.sec.asc"), "{err}");
        assert!(err.to_string().contains("can decrypt"), "{err}");

        // A tampered message: refused.
        let mut binary = encrypt_vec(&recipients, Some(&signer), false, plaintext);
        let at = binary.len() - 30;
        binary[at] ^= 0x01;
        assert!(decrypt_vec(&alice.secret, None, &binary).is_err());

        // Empty input round-trips too.
        let empty = encrypt_vec(&recipients, Some(&signer), true, b"");
        let (out, good) = decrypt_vec(&alice.secret, Some(&service.public), &empty).unwrap();
        assert!(out.is_empty() && good);
    }

    #[test]
    fn debug_shows_fingerprints_only() {
        let dir = tempfile::tempdir().unwrap();
        let service = party(dir.path(), "service");
        let signer = Signer::load(&service.secret).unwrap();
        let recipients = Recipients::load(std::slice::from_ref(&service.public)).unwrap();
        let d = format!("{signer:?} {recipients:?}");
        assert!(d.contains(&signer.fingerprint()), "{d}");
        assert!(!d.to_lowercase().contains("secret"), "{d}");
        assert_eq!(recipients.fingerprints(), vec![signer.fingerprint()]);
        assert!(signer
            .public_cert_armored()
            .unwrap()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        assert!(!signer.public_cert_armored().unwrap().contains("PRIVATE"));
    }

    /// Reads in small pieces and counts them, to show the message was streamed.
    struct Pattern {
        size: u64,
        left: u64,
        reads: u64,
    }
    impl Read for Pattern {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(8192).min(self.left as usize);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                let pos = self.size - self.left + i as u64;
                *b = (pos.wrapping_mul(31) ^ (pos >> 9)) as u8;
            }
            self.left -= n as u64;
            self.reads += 1;
            Ok(n)
        }
    }

    #[test]
    fn three_mib_streams_both_ways() {
        const SIZE: u64 = 3 * 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let alice = party(dir.path(), "alice");
        let service = party(dir.path(), "service");
        let recipients = Recipients::load(std::slice::from_ref(&alice.public)).unwrap();
        let signer = Signer::load(&service.secret).unwrap();

        let mut input = Pattern {
            size: SIZE,
            left: SIZE,
            reads: 0,
        };
        let mut expected = Vec::new();
        Pattern {
            size: SIZE,
            left: SIZE,
            reads: 0,
        }
        .read_to_end(&mut expected)
        .unwrap();
        let mut msg = Vec::new();
        let n = encrypt(&recipients, Some(&signer), false, &mut input, &mut msg).unwrap();
        assert_eq!(n, SIZE);
        assert!(input.reads > 100, "input was read in {} reads", input.reads);

        /// A reader handing out at most 1000 bytes a call, to exercise the chunk plumbing.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1000).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        /// Counts the writes, to show the plaintext arrives in pieces.
        struct Counting {
            data: Vec<u8>,
            writes: usize,
        }
        impl Write for Counting {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.writes += 1;
                self.data.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = Counting {
            data: Vec::new(),
            writes: 0,
        };
        let good = decrypt(
            &alice.secret,
            Some(&service.public),
            &mut Trickle(&msg),
            &mut out,
        )
        .unwrap();
        assert!(good);
        assert_eq!(out.data.len() as u64, SIZE);
        assert!(out.data == expected, "plaintext differs");
        assert!(out.writes > 10, "plaintext came in {} writes", out.writes);
    }

    #[test]
    fn decrypt_reports_io_and_truncation_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let alice = party(dir.path(), "alice");
        let r = Recipients::load(std::slice::from_ref(&alice.public)).unwrap();
        let data = vec![7u8; 200_000];
        let msg = encrypt_vec(&r, None, false, &data);

        struct FailingWriter;
        impl Write for FailingWriter {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = decrypt(&alice.secret, None, &mut &msg[..], &mut FailingWriter).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");

        struct FailingReader;
        impl Read for FailingReader {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("connection reset"))
            }
        }
        let err = decrypt(&alice.secret, None, &mut FailingReader, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");

        // A message cut short is an error, never a silently shorter plaintext.
        let cut = &msg[..msg.len() / 2];
        assert!(decrypt_vec(&alice.secret, None, cut).is_err());
        assert!(decrypt_vec(&alice.secret, None, b"").is_err());

        // Encrypt reports its I/O errors too.
        let err = encrypt(&r, None, true, &mut FailingReader, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("connection reset"), "{err}");
    }

    #[test]
    fn two_recipients_both_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let alice = party(dir.path(), "alice");
        let bob = party(dir.path(), "bob");
        let carol = party(dir.path(), "carol");
        // Both certificates in one file, as a keyring export would have them.
        let mut both = std::fs::read(&alice.public).unwrap();
        both.extend(std::fs::read(&bob.public).unwrap());
        let ring = write(dir.path(), "ring.asc", &both);
        let recipients = Recipients::load(&[ring, alice.public.clone()]).unwrap();
        assert_eq!(recipients.fingerprints().len(), 2, "duplicates are merged");

        let msg = encrypt_vec(&recipients, None, true, b"for two");
        for who in [&alice, &bob] {
            let (out, _) = decrypt_vec(&who.secret, None, &msg).unwrap();
            assert_eq!(out, b"for two");
        }
        assert!(decrypt_vec(&carol.secret, None, &msg).is_err());
    }

    fn load_err(dir: &Path, name: &str, cert: &Cert) -> String {
        let path = cert_file(dir, name, cert);
        let err = Recipients::load(&[path]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&dir.join(name).display().to_string()),
            "{text}"
        );
        assert!(
            text.contains("has no encryption-capable key valid now"),
            "{text}"
        );
        text
    }

    #[test]
    fn expired_encryption_subkey_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ten_days_ago = SystemTime::now() - Duration::from_secs(10 * 86_400);
        let (cert, _) = CertBuilder::new()
            .set_creation_time(ten_days_ago)
            .add_userid("old <old@example.com>")
            .add_signing_subkey()
            .add_subkey(
                KeyFlags::empty()
                    .set_transport_encryption()
                    .set_storage_encryption(),
                Duration::from_secs(86_400),
                None,
            )
            .generate()
            .unwrap();
        let text = load_err(dir.path(), "old.asc", &cert);
        assert!(text.contains("expired"), "{text}");
        assert!(text.contains(&cert.fingerprint().to_hex()), "{text}");
        // The same cert with a fresh encryption key is fine: the refusal is about the subkey.
        let (fresh, _) = CertBuilder::new()
            .set_creation_time(ten_days_ago)
            .add_userid("new <new@example.com>")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        Recipients::load(&[cert_file(dir.path(), "fresh.asc", &fresh)]).unwrap();
    }

    #[test]
    fn expired_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = CertBuilder::new()
            .set_creation_time(SystemTime::now() - Duration::from_secs(10 * 86_400))
            .set_validity_period(Duration::from_secs(86_400))
            .add_userid("gone <gone@example.com>")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let text = load_err(dir.path(), "gone.asc", &cert);
        assert!(text.contains("expired"), "{text}");
    }

    #[test]
    fn signing_only_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = CertBuilder::new()
            .add_userid("signer <signer@example.com>")
            .add_signing_subkey()
            .generate()
            .unwrap();
        let text = load_err(dir.path(), "signonly.asc", &cert);
        assert!(text.contains("no key is marked for encryption"), "{text}");
    }

    #[test]
    fn revoked_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, revocation) = CertBuilder::new()
            .add_userid("revoked <revoked@example.com>")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let (cert, _) = cert.insert_packets(revocation).unwrap();
        let text = load_err(dir.path(), "revoked.asc", &cert);
        assert!(text.contains("revoked"), "{text}");
    }

    #[test]
    fn revoked_encryption_subkey_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = CertBuilder::new()
            .add_userid("sub <sub@example.com>")
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let mut primary = cert
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .into_keypair()
            .unwrap();
        let sub = cert.keys().subkeys().next().unwrap();
        let rev = SubkeyRevocationBuilder::new()
            .set_reason_for_revocation(openpgp::types::ReasonForRevocation::KeyCompromised, b"lost")
            .unwrap()
            .build(&mut primary, &cert, sub.key(), None)
            .unwrap();
        let (cert, _) = cert.insert_packets(rev).unwrap();
        let text = load_err(dir.path(), "subrev.asc", &cert);
        assert!(text.contains("is revoked"), "{text}");
    }

    #[test]
    fn load_refuses_bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Recipients::load(&[]), Err(PgpError::NoRecipients)));
        let missing = dir.path().join("missing.asc");
        let err = Recipients::load(&[missing]).unwrap_err().to_string();
        assert!(err.contains("missing.asc: cannot read"), "{err}");
        let junk = write(dir.path(), "junk.asc", b"not a key at all");
        let err = Recipients::load(&[junk]).unwrap_err().to_string();
        assert!(
            err.starts_with(&dir.path().join("junk.asc").display().to_string()),
            "{err}"
        );
        let empty = write(dir.path(), "empty.asc", b"");
        assert!(Recipients::load(&[empty]).is_err());

        // Binary certificates load too, and a secret key file works as a recipient file.
        let alice = party(dir.path(), "alice");
        let armored = std::fs::read(&alice.public).unwrap();
        let cert = Cert::from_bytes(&armored).unwrap();
        let bin = write(dir.path(), "alice.pgp", &cert.to_vec().unwrap());
        let r = Recipients::load(&[bin, alice.secret.clone()]).unwrap();
        assert_eq!(r.fingerprints().len(), 1);
    }

    #[test]
    fn signer_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let alice = party(dir.path(), "alice");
        // A public certificate is no signing key.
        let err = Signer::load(&alice.public).unwrap_err().to_string();
        assert!(err.contains("no secret key material"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&alice.secret, std::fs::Permissions::from_mode(0o640))
                .unwrap();
            let err = Signer::load(&alice.secret).unwrap_err().to_string();
            assert!(err.contains("readable by group or others"), "{err}");
            assert!(err.contains("alice.sec.asc"), "{err}");
        }
        // An encryption-only key cannot sign.
        let (cert, _) = CertBuilder::new()
            .add_userid("enc <enc@example.com>")
            .set_primary_key_flags(KeyFlags::empty().set_certification())
            .add_transport_encryption_subkey()
            .generate()
            .unwrap();
        let path = write(dir.path(), "enc.sec", &cert.as_tsk().to_vec().unwrap());
        let err = Signer::load(&path).unwrap_err().to_string();
        assert!(err.contains("cannot sign"), "{err}");
        // A password-protected key is refused with a hint.
        let (cert, _) = CertBuilder::new()
            .add_userid("pw <pw@example.com>")
            .add_signing_subkey()
            .set_password(Some("hunter2".into()))
            .generate()
            .unwrap();
        let path = write(dir.path(), "pw.sec", &cert.as_tsk().to_vec().unwrap());
        let err = Signer::load(&path).unwrap_err().to_string();
        assert!(err.contains("password-protected"), "{err}");
    }

    #[test]
    fn looks_encrypted_recognises_messages() {
        let dir = tempfile::tempdir().unwrap();
        let alice = party(dir.path(), "alice");
        let r = Recipients::load(std::slice::from_ref(&alice.public)).unwrap();
        let armored = encrypt_vec(&r, None, true, b"x");
        let binary = encrypt_vec(&r, None, false, b"x");
        assert!(looks_encrypted(&armored));
        assert!(looks_encrypted(&binary));
        let mut padded = b"\n  \r\n".to_vec();
        padded.extend_from_slice(&armored);
        assert!(looks_encrypted(&padded));

        assert!(!looks_encrypted(b""));
        assert!(!looks_encrypted(b"hello world"));
        assert!(!looks_encrypted(b"%PDF-1.7\n"));
        assert!(!looks_encrypted(b"\x89PNG\r\n\x1a\n"));
        assert!(!looks_encrypted(
            b"-----BEGIN PGP MESSAGE-----\n\nnot base64!!\n"
        ));
        // A signed-only (unencrypted) message is not encrypted.
        let mut signed = Vec::new();
        {
            let key = Cert::from_bytes(&std::fs::read(&alice.secret).unwrap()).unwrap();
            let p = StandardPolicy::new();
            let pair = signing_keypair(&key, &p).unwrap();
            let m = Message::new(&mut signed);
            let m = Armorer::new(m).kind(armor::Kind::Message).build().unwrap();
            let m = openpgp::serialize::stream::Signer::new(m, pair)
                .unwrap()
                .build()
                .unwrap();
            let mut w = LiteralWriter::new(m).build().unwrap();
            w.write_all(b"signed, not sealed").unwrap();
            w.finalize().unwrap();
        }
        assert!(signed.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        assert!(!looks_encrypted(&signed));
        // And decrypt refuses it rather than passing it through.
        let err = decrypt_vec(&alice.secret, None, &signed).unwrap_err();
        assert!(err.to_string().contains("not encrypted"), "{err}");
    }

    #[test]
    fn unix_utc_formats() {
        assert_eq!(unix_utc(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            unix_utc(SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29 12:34:56 UTC"
        );
    }

    #[test]
    fn generate_refuses_empty_user_id() {
        assert!(generate("  ").is_err());
    }
}
