//! Decrypting a message with a recipient's secret key, optionally requiring a good signature.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sequoia_openpgp as openpgp;

use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, KeyHandle};

use super::certs::read_certs;
use super::*;

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

/// sequoia's parser wants a `Send + Sync` reader; a mutex makes a `Send` one `Sync`. The mutex
/// is never locked: `&mut self` reaches the reader through `get_mut`.
struct SyncReader<'a>(Mutex<&'a mut (dyn Read + Send)>);

impl Read for SyncReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.0.get_mut() {
            Ok(r) => r.read(out),
            Err(p) => p.into_inner().read(out),
        }
    }
}

const CHUNK: usize = 64 * 1024;

/// Runs sequoia's decryptor over `input`, writing the plaintext to `output`.
fn run_decryptor(
    helper: Helper,
    outcome: &Arc<Mutex<Outcome>>,
    input: &mut (dyn Read + Send),
    output: &mut dyn Write,
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
    let mut decryptor = DecryptorBuilder::from_reader(SyncReader(Mutex::new(input)))
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
        output
            .write_all(&buf[..n])
            .map_err(|e| PgpError::Decrypt(format!("writing the plaintext: {e}")))?;
    }
    if !decryptor.message_processed() {
        return Err(recorded(PgpError::Decrypt(
            "the message ended before it was complete".into(),
        )));
    }
    output
        .flush()
        .map_err(|e| PgpError::Decrypt(format!("writing the plaintext: {e}")))?;
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
    input: &mut (dyn Read + Send),
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

    run_decryptor(helper, &outcome, input, output)
}
