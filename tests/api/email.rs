//! The email sink through the running service: a form delivering PGP/MIME to a real SMTP server
//! that requires STARTTLS (the email crate's aiosmtpd server), opened with `gpg`; and a form
//! delivering in `tls` mode is warned about in every JSON answer.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const SMTPD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/sinks/email/tests/support/smtpd.py"
);

struct Smtpd(Child);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A test CA and a server certificate for 127.0.0.1, then the SMTP server on a free port.
fn start_smtpd(dir: &Path, store: &Path) -> (Smtpd, u16) {
    make_loopback_certificate(dir);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(store).unwrap();
    let mut child = Command::new("/usr/bin/python3")
        .arg(SMTPD)
        .args(["--port", &port.to_string(), "--cert"])
        .arg(dir.join("server.pem"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .arg("--store")
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start smtpd.py (Debian package python3-aiosmtpd)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(
        line.trim(),
        "READY",
        "smtpd.py did not start: install python3-aiosmtpd"
    );
    (Smtpd(child), port)
}

#[test]
fn pgp_mail_arrives_encrypted_and_tls_mode_is_warned() {
    let dir = tempdir();
    let store = dir.join("mail");
    let (_smtpd, port) = start_smtpd(&dir, &store);
    let home = gpg_home_with_key(&dir, "Alice <alice@example.com>");
    let cert = gpg(&home, &["--armor", "--export", "alice@example.com"]).stdout;
    std::fs::write(dir.join("alice.asc"), cert).unwrap();

    let config = dir.join("secureform.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[forms.intake]
sinks = ["mail"]

[forms.plain]
sinks = ["plainmail"]

[sinks.mail]
type = "email"
mode = "pgp"
smtp_url = "smtp://127.0.0.1:{port}"
ca_file = "ca.pem"
from = "forms@example.com"
to = ["alice@example.com"]
recipient_keys = ["alice.asc"]

[sinks.plainmail]
type = "email"
mode = "tls"
smtp_url = "smtp://127.0.0.1:{port}"
ca_file = "ca.pem"
from = "forms@example.com"
to = ["bob@example.com"]
"#
        ),
    )
    .unwrap();
    let server = Server::start_in(&dir, Some(config));
    let canary = format!("mail-canary-{}", ulid::Ulid::new());
    let post = |form: &str| {
        let resp = client()
            .post(server.url(&format!("/f/{form}")))
            .header("content-type", "application/json")
            .body(format!(r#"{{"symptoms":"{canary}"}}"#))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        resp.json::<serde_json::Value>().unwrap()
    };
    let v = post("intake");
    assert_eq!(v["warnings"], serde_json::json!([]));
    let id = v["id"].as_str().unwrap().to_owned();
    let plain = post("plain");
    let warning = plain["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("plainmail") && warning.contains("not encrypted at rest"),
        "{warning}"
    );

    // Both messages arrive; the PGP one holds no canary in its raw bytes and opens with gpg.
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages = loop {
        let mut all: Vec<Vec<u8>> = std::fs::read_dir(&store)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| std::fs::read(e.path()).unwrap())
            .collect();
        if all.len() >= 2 {
            all.sort_by_key(|m| !contains(m, b"multipart/encrypted"));
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "mail never arrived:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let encrypted = &messages[0];
    assert!(contains(encrypted, b"multipart/encrypted"));
    assert!(
        contains(encrypted, id.as_bytes()),
        "the Message-ID derives from the submission id"
    );
    assert!(!contains(encrypted, canary.as_bytes()));
    let text = String::from_utf8_lossy(encrypted);
    let start = text.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = text.find("-----END PGP MESSAGE-----").unwrap() + "-----END PGP MESSAGE-----".len();
    std::fs::write(dir.join("msg.asc"), &text[start..end]).unwrap();
    let inner = gpg(&home, &["--decrypt", dir.join("msg.asc").to_str().unwrap()]).stdout;
    std::fs::write(dir.join("inner.eml"), &inner).unwrap();
    // The inner MIME parts are base64: let Python's email parser decode them.
    let decoded = run(
        "/usr/bin/python3",
        "python3",
        &["-c", "import email,sys;m=email.message_from_binary_file(open(sys.argv[1],'rb'));print(''.join((p.get_payload(decode=True) or b'').decode('utf-8','replace') for p in m.walk() if not p.is_multipart()))", dir.join("inner.eml").to_str().unwrap()],
        &dir,
    );
    assert!(
        String::from_utf8_lossy(&decoded.stdout).contains(&canary),
        "the decrypted message holds the field"
    );
    // The tls-mode message is plain, as warned.
    assert!(contains(&messages[1], b"bob@example.com") || contains(&messages[1], b"Submission"));
}
