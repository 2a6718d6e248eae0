//! Interoperability of `secureform_crypto::pgp` with GnuPG (the real `gpg` binary, Debian package
//! `gnupg`). Each test runs gpg in its own temporary home directory.

// The helpers below are test code too: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use secureform_crypto::pgp::{self, PgpError, Recipients, Signer};

/// A throwaway GnuPG home; its agent is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        match Command::new("gpg").arg("--version").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "gpg --version failed ({}): install Debian package gnupg",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run gpg ({e}): install Debian package gnupg"),
        }
        // Short path: the agent's socket lives in the home directory.
        let home = tempfile::Builder::new()
            .prefix("sf-gpg")
            .tempdir_in("/tmp")
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        Gpg { home }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Runs gpg with this home, in batch mode, with an empty passphrase for loopback pinentry.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new("gpg");
        cmd.arg("--homedir")
            .arg(self.home.path())
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("spawn gpg: install Debian package gnupg");
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Like `run`, but the command must succeed.
    fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The fingerprint of the (only) key with this user ID.
    fn fingerprint(&self, user: &str) -> String {
        let out = self.ok(&["--with-colons", "--list-keys", user], None);
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .unwrap_or_else(|| panic!("no fingerprint for {user} in:\n{text}"));
        line.split(':').nth(9).unwrap().to_string()
    }

    /// Generates a key the way an administrator would and returns its fingerprint.
    fn quick_gen_key(&self, user: &str, algo: &str, usage: &str, extra: &[&str]) -> String {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--quick-gen-key", user, algo, usage, "never"]);
        self.ok(&args, None);
        self.fingerprint(user)
    }

    fn export_public(&self, fpr: &str, name: &str) -> PathBuf {
        let out = self.ok(&["--armor", "--export", fpr], None);
        assert!(out
            .stdout
            .starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        write_private(&self.path(name), &out.stdout)
    }

    fn export_secret(&self, fpr: &str, name: &str) -> PathBuf {
        let out = self.ok(&["--armor", "--export-secret-keys", fpr], None);
        assert!(out
            .stdout
            .starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"));
        write_private(&self.path(name), &out.stdout)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes a file readable by its owner only (as secret key files must be).
fn write_private(path: &Path, data: &[u8]) -> PathBuf {
    std::fs::write(path, data).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path.to_path_buf()
}

/// A plaintext with binary bytes, CR LF, NUL and no trailing newline, larger than one chunk.
fn plaintext() -> Vec<u8> {
    let mut data = b"name=Jo Bloggs\r\nmessage=gr\xc3\xbc\xc3\x9fe\0".to_vec();
    data.extend((0..200_000u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8));
    data.extend_from_slice(b"\r\nend");
    data
}

/// A service signing key from `pgp::generate`, written to files; returns (secret, public).
fn service_key(dir: &Path) -> (PathBuf, PathBuf) {
    let (secret, public) = pgp::generate("SecureForm service <forms@example.com>").unwrap();
    (
        write_private(&dir.join("service.sec.asc"), secret.as_bytes()),
        write_private(&dir.join("service.asc"), public.as_bytes()),
    )
}

#[test]
fn gpg_key_is_a_recipient_and_gpg_reads_our_signed_message() {
    let gpg = Gpg::new();
    let alice = gpg.quick_gen_key("Alice <alice@example.com>", "default", "default", &[]);
    let alice_pub = gpg.export_public(&alice, "alice.asc");
    let alice_sec = gpg.export_secret(&alice, "alice.sec.asc");

    let recipients = Recipients::load(std::slice::from_ref(&alice_pub)).unwrap();
    assert_eq!(recipients.fingerprints(), vec![alice.clone()]);

    let (service_sec, _) = service_key(gpg.home.path());
    let signer = Signer::load(&service_sec).unwrap();
    let data = plaintext();
    let mut message = Vec::new();
    let n = pgp::encrypt(
        &recipients,
        Some(&signer),
        true,
        &mut data.as_slice(),
        &mut message,
    )
    .unwrap();
    assert_eq!(n, data.len() as u64);
    assert!(pgp::looks_encrypted(&message));
    let msg_path = write_private(&gpg.path("message.asc"), &message);

    // gpg knows the signer only after importing the published certificate.
    let cert = signer.public_cert_armored().unwrap();
    gpg.ok(&["--import"], Some(cert.as_bytes()));

    let out_path = gpg.path("plain.out");
    let out = gpg.ok(
        &[
            "--status-fd",
            "1",
            "--output",
            out_path.to_str().unwrap(),
            "--decrypt",
            msg_path.to_str().unwrap(),
        ],
        None,
    );
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("[GNUPG:] GOODSIG "), "status:\n{status}");
    assert!(
        status.contains("[GNUPG:] DECRYPTION_OKAY"),
        "status:\n{status}"
    );
    let validsig = status
        .lines()
        .find(|l| l.starts_with("[GNUPG:] VALIDSIG "))
        .unwrap_or_else(|| panic!("no VALIDSIG in:\n{status}"));
    assert!(
        validsig.trim_end().ends_with(&signer.fingerprint()),
        "VALIDSIG not by the signer's certificate {}: {validsig}",
        signer.fingerprint()
    );
    assert!(!status.contains("BADSIG"), "status:\n{status}");
    assert!(
        std::fs::read(&out_path).unwrap() == data,
        "gpg's plaintext differs"
    );

    // gpg's exported secret key opens the same message with our decrypt too.
    let service_pub = write_private(&gpg.path("service.pub.asc"), cert.as_bytes());
    let mut plain = Vec::new();
    let good = pgp::decrypt(
        &alice_sec,
        Some(&service_pub),
        &mut message.as_slice(),
        &mut plain,
    )
    .unwrap();
    assert!(good);
    assert!(plain == data);
}

#[test]
fn our_decrypt_opens_what_gpg_encrypts_to_a_generated_key() {
    let gpg = Gpg::new();
    let (secret, public) = pgp::generate("Bob <bob@example.com>").unwrap();
    let bob_sec = write_private(&gpg.path("bob.sec.asc"), secret.as_bytes());
    gpg.ok(&["--import"], Some(public.as_bytes()));
    let bob = gpg.fingerprint("bob@example.com");
    let data = plaintext();

    // Unsigned, armored and binary.
    for armor in [true, false] {
        let mut args = vec![
            "--trust-model",
            "always",
            "--recipient",
            &bob,
            "--output",
            "-",
            "--encrypt",
        ];
        if armor {
            args.insert(0, "--armor");
        }
        let out = gpg.ok(&args, Some(&data));
        assert!(pgp::looks_encrypted(&out.stdout), "armor={armor}");
        let mut plain = Vec::new();
        let good = pgp::decrypt(&bob_sec, None, &mut out.stdout.as_slice(), &mut plain).unwrap();
        assert!(!good);
        assert!(plain == data, "armor={armor}: plaintext differs");
    }

    // Signed by a gpg key and encrypted: verified against that key's exported certificate.
    let alice = gpg.quick_gen_key("Alice <alice@example.com>", "default", "default", &[]);
    let alice_pub = gpg.export_public(&alice, "alice.asc");
    let out = gpg.ok(
        &[
            "--armor",
            "--trust-model",
            "always",
            "--local-user",
            &alice,
            "--recipient",
            &bob,
            "--output",
            "-",
            "--sign",
            "--encrypt",
        ],
        Some(&data),
    );
    let mut plain = Vec::new();
    let good = pgp::decrypt(
        &bob_sec,
        Some(&alice_pub),
        &mut out.stdout.as_slice(),
        &mut plain,
    )
    .unwrap();
    assert!(good);
    assert!(plain == data);

    // The same message checked against someone else's certificate is refused.
    let (_, other) = pgp::generate("Other <other@example.com>").unwrap();
    let other_pub = write_private(&gpg.path("other.asc"), other.as_bytes());
    let err = pgp::decrypt(
        &bob_sec,
        Some(&other_pub),
        &mut out.stdout.as_slice(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(err, PgpError::Signature(_)), "{err}");
}

#[test]
fn gpg_key_with_expired_encryption_subkey_is_refused() {
    let gpg = Gpg::new();
    // gpg will not give a past expiry date, so make the key in the past: created on
    // 2020-01-01 (time frozen by the '!'), its encryption subkey expiring a day later.
    let past = ["--faked-system-time", "20200101T000000!"];
    let old = gpg.quick_gen_key("Old <old@example.com>", "ed25519", "sign", &past);
    let mut args = past.to_vec();
    args.extend(["--quick-add-key", &old, "cv25519", "encr", "1d"]);
    gpg.ok(&args, None);
    let old_pub = gpg.export_public(&old, "old.asc");

    let err = Recipients::load(std::slice::from_ref(&old_pub)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&old_pub.display().to_string()),
        "names the file: {text}"
    );
    assert!(text.contains(&old), "names the certificate: {text}");
    assert!(
        text.contains("no encryption-capable key valid now"),
        "{text}"
    );
    assert!(text.contains("expired"), "says why: {text}");

    // The same certificate with a current encryption subkey is accepted: the refusal was
    // about the expired subkey, not about gpg's key as such.
    gpg.ok(&["--quick-add-key", &old, "cv25519", "encr", "never"], None);
    let renewed = gpg.export_public(&old, "renewed.asc");
    let r = Recipients::load(&[renewed]).unwrap();
    assert_eq!(r.fingerprints(), vec![old]);
}
