use super::signer::signing_keypair;
use super::*;
use openpgp::armor;
use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, LiteralWriter, Message};
use openpgp::serialize::SerializeInto;
use openpgp::types::KeyFlags;
use openpgp::Cert;
use sequoia_openpgp as openpgp;
use std::io::{self, Read, Write};
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
        std::fs::set_permissions(&alice.secret, std::fs::Permissions::from_mode(0o640)).unwrap();
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
fn utc_formats() {
    assert_eq!(
        certs::utc(SystemTime::UNIX_EPOCH),
        "1970-01-01 00:00:00 UTC"
    );
    assert_eq!(
        certs::utc(SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
        "2024-02-29 12:34:56 UTC"
    );
}

#[test]
fn generate_refuses_empty_user_id() {
    assert!(generate("  ").is_err());
}
