//! A 20 MiB attachment is delivered without holding more than a small multiple of its size: the
//! peak resident memory of this process (its own test binary, so nothing else runs in it) is
//! measured around each delivery, and the message is decrypted to prove it arrived whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{self, Read};
use std::process::Command;
use std::sync::Arc;

use secureform_contract::{Delivery, FileSource, Source, Submission};
use secureform_email::EmailSink;
use sha2::{Digest, Sha256};
use support::*;

const SIZE: u64 = 20 * 1024 * 1024;

/// A file of pseudo-random bytes made as it is read, so the test holds none of it.
struct Generated;

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
            left: SIZE,
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

/// Peak resident growth (bytes) while `f` runs.
async fn peak_growth<F: std::future::Future>(f: F) -> (u64, F::Output) {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS (Linux only)");
    let before = status_kib("VmRSS:");
    let out = f.await;
    let peak = status_kib("VmHWM:");
    (peak.saturating_sub(before) * 1024, out)
}

fn submission() -> Submission {
    let digest = sha256_of(Generated.open(0).unwrap());
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
            size: SIZE,
            sha256: digest,
        }],
    }
}

#[tokio::test]
async fn a_20_mib_attachment_stays_within_a_small_multiple_of_its_size() {
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
    let server = SmtpServer::start(&pki, port, &d.join("store"), &ServerOptions::default());
    let common = format!(
        "smtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\"]\nca_file = {}\n",
        q(&pki.ca)
    );
    let modes = [
        ("pgp", "recipient_keys = [\"alice.asc\"]\n".to_owned()),
        ("smime", format!("recipient_keys = [{}]\n", q(&cert))),
    ];
    for (n, (mode, keys)) in modes.iter().enumerate() {
        let cfg = config(&format!("mode = \"{mode}\"\n{common}{keys}"));
        let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
        let s = Arc::new(submission());
        let files: Arc<dyn FileSource> = Arc::new(Generated);
        let d_ = Delivery::new(&s, &files);
        let (growth, result) = peak_growth(secureform_contract::Sink::deliver(&sink, &d_)).await;
        result.unwrap();
        let ratio = growth as f64 / SIZE as f64;
        eprintln!(
            "{mode}: peak resident growth {} MiB = {ratio:.2} x the attachment",
            growth >> 20
        );
        assert!(
            ratio < 5.0,
            "{mode}: peak growth {ratio:.2} x the attachment"
        );

        // The attachment arrived whole: decrypt with gpg / openssl and compare the digest.
        let (path, _, _) = &server.messages()[n];
        let inner = d.join(format!("inner-{n}.eml"));
        if *mode == "pgp" {
            let outer = parts(path, &d.join(format!("outer-{n}")));
            let armored = d.join("big.asc");
            std::fs::write(&armored, &leaf_payloads(&outer)[1].1).unwrap();
            std::fs::write(&inner, gpg.decrypt(&armored).0).unwrap();
        } else {
            run(Command::new("openssl")
                .args(["cms", "-decrypt", "-in"])
                .arg(path)
                .arg("-recip")
                .arg(&cert)
                .arg("-inkey")
                .arg(&key)
                .arg("-out")
                .arg(&inner));
        }
        let leaves = leaf_payloads(&parts(&inner, &d.join(format!("inner-{n}"))));
        let (_, bytes) = leaves.last().unwrap();
        assert_eq!(bytes.len() as u64, SIZE);
        assert_eq!(hex::encode(Sha256::digest(bytes)), s.files[0].sha256);
    }
}
