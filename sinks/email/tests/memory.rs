//! The message streams from the files through the encryption into the SMTP connection: a large
//! attachment is delivered without the process's memory growing with it. The peak resident
//! memory of this process (its own test binary, so nothing else runs in it) is reset before each
//! delivery and read after it (`VmHWM`), and the message is decrypted (gpg, `openssl cms`) to
//! prove it arrived whole: the attachment's SHA-256 is compared.
//!
//! The always-on test sends 64 MiB per mode. The 1 GiB one is `#[ignore]`d (minutes even in
//! release, and about 3 GiB of disk in the temporary folder, freed as it goes); run it with
//! `cargo test --release -p secureform-email --test memory -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use secureform_contract::{Delivery, FileSource, Source, Submission};
use secureform_email::EmailSink;
use sha2::{Digest, Sha256};
use support::*;

const MIB: u64 = 1024 * 1024;

/// A file of pseudo-random bytes made as it is read, so the test holds none of it.
struct Generated {
    size: u64,
}

struct Prng {
    state: u64,
    left: u64,
}

impl Read for Prng {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for b in &mut buf[..n] {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = (self.state >> 24) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl FileSource for Generated {
    fn open(&self, _index: usize) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(Prng {
            state: 0x9E37_79B9_7F4A_7C15,
            left: self.size,
        }))
    }
}

fn sha256_of(mut r: impl Read) -> String {
    let mut h = Sha256::new();
    io::copy(&mut r, &mut h).unwrap();
    hex::encode(h.finalize())
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resident memory before `f` runs and the peak while it runs (bytes).
async fn peak<F: std::future::Future>(f: F) -> (u64, u64, F::Output) {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS (Linux only)");
    let before = status_kib("VmRSS:") * 1024;
    let out = f.await;
    let peak = status_kib("VmHWM:") * 1024;
    (before, peak, out)
}

fn submission(size: u64) -> Submission {
    let digest = sha256_of(Generated { size }.open(0).unwrap());
    Submission {
        id: new_id(),
        form: "upload".into(),
        received_at: "2026-11-27T10:00:00Z".into(),
        source: Source::Multipart,
        fields: Default::default(),
        files: vec![secureform_contract::FileMeta {
            field: "scan".into(),
            filename: "scan.bin".into(),
            content_type: "application/octet-stream".into(),
            size,
            sha256: digest,
        }],
    }
}

/// Streams through a MIME entity (the content entity this sink writes) to the attachment
/// named `scan.bin` and returns its size and SHA-256, decoding its base64 line by line.
fn attachment_digest(entity: &Path) -> (u64, String) {
    let mut lines = BufReader::new(std::fs::File::open(entity).unwrap()).split(b'\n');
    let mut line = || {
        lines
            .next()
            .map(|l| {
                let l = l.unwrap();
                l.strip_suffix(b"\r").map(<[u8]>::to_vec).unwrap_or(l)
            })
            .expect("the entity ended early")
    };
    while !line().ends_with(b"filename=\"scan.bin\"") {}
    while !line().is_empty() {}
    let (mut hash, mut size) = (Sha256::new(), 0u64);
    loop {
        let l = line();
        if l.starts_with(b"--") {
            break;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&l)
            .unwrap();
        size += bytes.len() as u64;
        hash.update(&bytes);
    }
    (size, hex::encode(hash.finalize()))
}

/// Delivers one `size`-byte attachment in each mode, checks every message, and returns the
/// peak resident growth per mode (bytes).
async fn deliver_large(size: u64, modes: &[&str]) -> Vec<(String, u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("pki")).unwrap();
    let pki = Pki::new(&d.join("pki"));
    let gpg = Gpg::new();
    let fpr = gpg.generate(
        "Alice <alice@example.com>",
        "future-default",
        "default",
        "never",
        None,
    );
    gpg.export_public(&fpr, &d.join("alice.asc"));
    let (cert, key) = pki.smime_recipient("alice", None);
    let port = free_port();
    let opts = ServerOptions {
        data_size_limit: Some(size * 2 + 64 * MIB),
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    let common = format!(
        "smtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\"]\nca_file = {}\ntimeout_secs = 120\n",
        q(&pki.ca)
    );
    let s = Arc::new(submission(size));
    let mut results = Vec::new();
    for mode in modes {
        let keys = match *mode {
            "pgp" => "recipient_keys = [\"alice.asc\"]\n".to_owned(),
            "smime" | "smime-gcm" => format!("recipient_keys = [{}]\n", q(&cert)),
            _ => String::new(),
        };
        let (mode_key, extra) = match *mode {
            "smime-gcm" => ("smime", "smime_cipher = \"aes256-gcm\"\n"),
            m => (m, ""),
        };
        let cfg = config(&format!("mode = \"{mode_key}\"\n{common}{keys}{extra}"));
        let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
        let files: Arc<dyn FileSource> = Arc::new(Generated { size });
        let delivery = Delivery::new(&s, &files);
        let started = Instant::now();
        let (before, peak, result) =
            peak(secureform_contract::Sink::deliver(&sink, &delivery)).await;
        result.unwrap();
        let secs = started.elapsed().as_secs_f64();
        let growth = peak.saturating_sub(before);
        eprintln!(
            "{mode}: {} MiB attachment in {secs:.1} s; resident before {:.1} MiB, peak {:.1} MiB, \
             growth {:.1} MiB = {:.4} x the attachment",
            size / MIB,
            before as f64 / MIB as f64,
            peak as f64 / MIB as f64,
            growth as f64 / MIB as f64,
            growth as f64 / size as f64
        );
        results.push((mode.to_string(), before, growth));

        // The attachment arrived whole: decrypt with gpg / openssl and compare the digest.
        let stored = std::fs::read_dir(&server.store)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "eml"))
            .expect("the message was stored");
        let inner = d.join("inner.eml");
        match mode_key {
            "pgp" => {
                // gpg finds the armored message inside the MIME message.
                let status = gpg.decrypt_to(&stored, &inner);
                assert!(status.contains("DECRYPTION_OKAY"), "{status}");
            }
            "smime" => {
                run(Command::new("openssl")
                    .args(["cms", "-decrypt", "-in"])
                    .arg(&stored)
                    .arg("-recip")
                    .arg(&cert)
                    .arg("-inkey")
                    .arg(&key)
                    .arg("-out")
                    .arg(&inner));
            }
            _ => std::fs::copy(&stored, &inner).map(|_| ()).unwrap(),
        }
        let (got_size, digest) = attachment_digest(&inner);
        assert_eq!(got_size, size, "{mode}");
        assert_eq!(digest, s.files[0].sha256, "{mode}");
        for p in [stored.clone(), stored.with_extension("json"), inner] {
            std::fs::remove_file(p).unwrap();
        }
    }
    results
}

/// Always on: 64 MiB in each mode, the peak growth well under the attachment's size (the
/// message used to be held whole: about 1.4 times the attachment, 90 MiB here). What remains
/// does not grow with the attachment: chunks in the pipe, and for PGP the OpenPGP writer's
/// partial-body and armor buffers (4 MiB each; about 26 MiB in all, the same at 8, 48 and
/// 1024 MiB), hence the bound of 40 MiB.
/// `tls` goes first, so that one-time costs (the first TLS connection, the blocking thread) do
/// not count against the modes after it; they still count against it.
#[tokio::test]
async fn a_64_mib_attachment_streams_in_bounded_memory() {
    let size = 64 * MIB;
    for (mode, _, growth) in deliver_large(size, &["tls", "smime", "pgp"]).await {
        assert!(
            growth < 40 * MIB,
            "{mode}: peak growth {} MiB for a {} MiB attachment",
            growth / MIB,
            size / MIB
        );
    }
}

/// 1 GiB in each mode (the default limits allow 20 such files): the peak stays under 64 MiB
/// above what the process held before. Slow, and heavy on disk: run by hand, in release.
#[tokio::test]
#[ignore = "1 GiB per mode: run in release with --ignored (see the module docs)"]
async fn a_1_gib_attachment_streams_in_bounded_memory() {
    let size = 1024 * MIB;
    for (mode, _, growth) in deliver_large(size, &["tls", "smime", "smime-gcm", "pgp"]).await {
        assert!(
            growth < 64 * MIB,
            "{mode}: peak growth {} MiB for a {} MiB attachment",
            growth / MIB,
            size / MIB
        );
    }
}

/// The two ways a streamed message can fail half-way: the file read for it turns out wrong
/// (the writer fails: the server must not keep a truncated message, and the file's error is
/// the reason), and the server refuses the message (its reply is the reason, classified as
/// before).
#[tokio::test]
async fn a_stream_that_fails_half_way_leaves_nothing_at_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("pki")).unwrap();
    let pki = Pki::new(&d.join("pki"));
    let port = free_port();
    let opts = ServerOptions {
        data_size_limit: Some(2 * MIB),
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    let cfg = config(&format!(
        "mode = \"tls\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\"]\nca_file = {}\n",
        q(&pki.ca)
    ));
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();

    // 1 MiB recorded, 600 KiB there: the file ends early, after several chunks went out.
    let s = Arc::new(submission(MIB));
    let files: Arc<dyn FileSource> = Arc::new(Generated { size: 600 * 1024 });
    let err = secureform_contract::Sink::deliver(&sink, &Delivery::new(&s, &files))
        .await
        .unwrap_err();
    assert!(
        !err.is_retryable(),
        "expected a permanent file error, got {err:?}"
    );
    assert_eq!(
        err.reason(),
        secureform_contract::FailureReason::Payload,
        "{err}"
    );
    assert!(
        err.message().contains("reading the submission's files"),
        "{err}"
    );

    // 4 MiB against the server's limit of 2 MiB: its 552 is a permanent refusal.
    let s = Arc::new(submission(4 * MIB));
    let files: Arc<dyn FileSource> = Arc::new(Generated { size: 4 * MIB });
    let err = secureform_contract::Sink::deliver(&sink, &Delivery::new(&s, &files))
        .await
        .unwrap_err();
    assert!(
        !err.is_retryable(),
        "expected a permanent refusal, got {err:?}"
    );
    assert_eq!(
        err.reason(),
        secureform_contract::FailureReason::Quota,
        "{err}"
    );
    assert!(err.message().contains("552"), "{err}");
    // Nothing was stored, and the sink still delivers afterwards.
    assert!(server.messages().is_empty());
    let s = Arc::new(submission(100 * 1024));
    let files: Arc<dyn FileSource> = Arc::new(Generated { size: 100 * 1024 });
    secureform_contract::Sink::deliver(&sink, &Delivery::new(&s, &files))
        .await
        .unwrap();
    assert_eq!(server.messages().len(), 1);
}
