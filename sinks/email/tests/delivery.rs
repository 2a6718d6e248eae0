//! The email sink against a real SMTP server (aiosmtpd, STARTTLS required), read back with tools
//! nobody here wrote: gpg, `openssl cms -decrypt`, Python's email parser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use secureform_contract::{
    AtRestLevel, Delivery, DeliveryError, FailureReason, FileSource, MemoryFiles, Receipt, Sink,
    Submission,
};
use secureform_crypto::pgp::Signer;
use secureform_email::EmailSink;
use support::*;

fn header<'a>(manifest: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    manifest["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
        .collect()
}

/// The raw message holds the canary nowhere, not even inside its decoded (base64) parts.
fn assert_no_canary(raw: &[u8], path: &Path, canary: &str, work: &Path) {
    let needle = canary.as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "canary in raw message"
    );
    for (part, bytes) in leaf_payloads(&parts(path, work)) {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "canary in {part}"
        );
    }
}

/// Checks the decrypted content entity: every field, every file, byte-exact.
fn check_content(inner: &Path, s: &Submission, files: &[Vec<u8>], work: &Path) {
    let manifest = parts(inner, work);
    assert_eq!(
        manifest["defects"].as_array().unwrap().len(),
        0,
        "{manifest}"
    );
    let leaves = leaf_payloads(&manifest);
    let types: Vec<&str> = leaves
        .iter()
        .map(|(p, _)| p["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "text/plain",
            "text/html",
            "application/json",
            "application/pdf",
            "text/plain"
        ]
    );

    let text = String::from_utf8(leaves[0].1.clone()).unwrap();
    let order: Vec<usize> = [
        "name: Zoë Müller-Łukasiewicz\r\n",
        "email: zoe@example.com\r\n",
        "message: Hello <b>team</b> & \"friends\",\r\n  line two\r\n  line three CANARY",
        "topics: billing, support\r\n",
        "amount: 42.5\r\n",
        "agree: true\r\n",
        "secret: CANARY",
    ]
    .iter()
    .map(|needle| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {text}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "fields out of order: {text}"
    );

    let html = String::from_utf8(leaves[1].1.clone()).unwrap();
    assert!(html.contains("Hello &lt;b&gt;team&lt;/b&gt; &amp; &quot;friends&quot;,<br>"));
    assert!(!html.contains("<b>team"));

    assert_eq!(leaves[2].0["filename"], "submission.json");
    let back: Submission = serde_json::from_slice(&leaves[2].1).unwrap();
    assert_eq!(&back, s, "fields differ after the round trip");

    let attachments = &leaves[3..];
    assert_eq!(attachments.len(), files.len());
    for ((part, bytes), expected) in attachments.iter().zip(files) {
        assert_eq!(part["disposition"], "attachment");
        assert_eq!(bytes, expected, "attachment {} differs", part["filename"]);
    }
    assert_eq!(attachments[0].0["filename"], "évil__name.pdf");
    assert_eq!(attachments[1].0["filename"], "notes.txt");
}

/// Delivers `s` with `files` held in memory.
async fn deliver(
    sink: &EmailSink,
    s: &Submission,
    files: &[Vec<u8>],
) -> Result<Receipt, DeliveryError> {
    let s = Arc::new(s.clone());
    let files: Arc<dyn FileSource> = Arc::new(MemoryFiles(files.to_vec()));
    sink.deliver(&Delivery::new(&s, &files)).await
}

#[tokio::test]
async fn pgp_mime_decrypts_with_gpg_for_every_recipient_and_the_signature_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let service = Gpg::new();
    let sfpr = service.generate(
        "SecureForm <forms@example.com>",
        "future-default",
        "default",
        "never",
        None,
    );
    service.export_secret(&sfpr, &d.join("service.key"));
    service.export_public(&sfpr, &d.join("service.asc"));
    let readers: Vec<Gpg> = ["alice", "bob"]
        .iter()
        .map(|name| {
            let g = Gpg::new();
            let fpr = g.generate(
                &format!("{name} <{name}@example.com>"),
                "future-default",
                "default",
                "never",
                None,
            );
            g.export_public(&fpr, &d.join(format!("{name}.asc")));
            g.import(&d.join("service.asc"));
            g
        })
        .collect();
    let port = free_port();
    let opts = ServerOptions {
        user: Some(("forms".into(), "s3cret pass".into())),
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    password_file(d, "s3cret pass");
    let cfg = config(&format!(
        "mode = \"pgp\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\", \"bob@example.com\"]\nrecipient_keys = [\"alice.asc\", \"bob.asc\"]\n\
         ca_file = \"pki/ca.pem\"\nusername = \"forms\"\npassword_file = \"smtp-password\"\n"));
    let signer = Arc::new(Signer::load(&d.join("service.key")).unwrap());
    let sink = EmailSink::build("mail", &cfg, d, Some(signer))
        .await
        .unwrap();
    assert_eq!(cfg.at_rest().level, AtRestLevel::Encrypted);

    let canary = format!("CANARY-{}", new_id());
    let (s, files) = rich_submission(&canary);
    let receipt = deliver(&sink, &s, &files).await.unwrap();
    assert_eq!(receipt.kind, "message_id");
    assert_eq!(receipt.value, format!("<{}.contact@example.com>", s.id));

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let (path, raw, meta) = &messages[0];
    assert_eq!(meta["tls"], true);
    assert_eq!(meta["authenticated"], true);
    assert_eq!(meta["mail_from"], "forms@example.com");
    assert_eq!(
        meta["rcpt_tos"],
        serde_json::json!(["alice@example.com", "bob@example.com"])
    );
    assert_no_canary(raw, path, &canary, &d.join("raw-parts"));

    let outer = parts(path, &d.join("outer"));
    assert_eq!(header(&outer, "Message-ID"), [receipt.value.as_str()]);
    assert_eq!(
        header(&outer, "Subject"),
        [format!("Submission {} to form contact", s.id)]
    );
    assert_eq!(outer["parts"][0]["content_type"], "multipart/encrypted");
    let leaves = leaf_payloads(&outer);
    assert_eq!(leaves.len(), 2);
    assert_eq!(leaves[0].0["content_type"], "application/pgp-encrypted");
    assert_eq!(String::from_utf8_lossy(&leaves[0].1).trim(), "Version: 1");
    assert_eq!(leaves[1].0["content_type"], "application/octet-stream");
    let armored = d.join("encrypted.asc");
    std::fs::write(&armored, &leaves[1].1).unwrap();

    for (i, reader) in readers.iter().enumerate() {
        let (plain, status) = reader.decrypt(&armored);
        assert!(status.contains("DECRYPTION_OKAY"), "{status}");
        assert!(status.contains("GOODSIG"), "no good signature: {status}");
        assert!(
            status.contains(&sfpr),
            "not signed by the service key: {status}"
        );
        let inner = d.join(format!("inner-{i}.eml"));
        std::fs::write(&inner, plain).unwrap();
        check_content(&inner, &s, &files, &d.join(format!("inner-{i}")));
    }
}

fn mk(d: &Path, name: &str) -> std::path::PathBuf {
    let p = d.join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[tokio::test]
async fn smime_decrypts_with_openssl_cms_in_cbc_and_gcm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let alice = pki.smime_recipient("alice", None);
    let bob = pki.smime_recipient("bob", None);
    let port = free_port();
    let server = SmtpServer::start(&pki, port, &d.join("store"), &ServerOptions::default());
    for (n, cipher) in ["aes256-cbc", "aes256-gcm"].iter().enumerate() {
        let cfg = config(&format!(
            "mode = \"smime\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
             to = [\"alice@example.com\", \"bob@example.com\"]\nrecipient_keys = [{}, {}]\n\
             ca_file = {}\nsmime_cipher = \"{cipher}\"\n", q(&alice.0), q(&bob.0), q(&pki.ca)));
        let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
        assert_eq!(cfg.at_rest().level, AtRestLevel::Encrypted);
        assert!(cfg
            .at_rest()
            .detail
            .contains(&cipher.to_uppercase().replace("AES256", "AES-256")));
        let canary = format!("CANARY-{}", new_id());
        let (s, files) = rich_submission(&canary);
        deliver(&sink, &s, &files).await.unwrap();

        let messages = server.messages();
        assert_eq!(messages.len(), n + 1);
        let (path, raw, _) = &messages[n];
        assert_no_canary(raw, path, &canary, &d.join(format!("raw-{n}")));
        let outer = parts(path, &d.join(format!("outer-{n}")));
        let smime_type = if n == 0 {
            "enveloped-data"
        } else {
            "authEnveloped-data"
        };
        assert_eq!(outer["parts"][0]["content_type"], "application/pkcs7-mime");
        assert_eq!(outer["parts"][0]["params"]["smime-type"], smime_type);

        for (who, (cert, key)) in [("alice", &alice), ("bob", &bob)] {
            let inner = d.join(format!("inner-{n}-{who}.eml"));
            run(Command::new("openssl")
                .args(["cms", "-decrypt", "-in"])
                .arg(path)
                .arg("-recip")
                .arg(cert)
                .arg("-inkey")
                .arg(key)
                .arg("-out")
                .arg(&inner));
            check_content(&inner, &s, &files, &d.join(format!("inner-{n}-{who}")));
        }
    }
}

#[tokio::test]
async fn field_values_cannot_add_headers_and_tls_mode_is_plaintext_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let port = free_port();
    let server = SmtpServer::start(&pki, port, &d.join("store"), &ServerOptions::default());
    let cfg = config(&format!(
        "mode = \"tls\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\"]\nca_file = {}\nsubject = \"New request: {{topic}} ({{id}})\"\n\
         subject_fields = [\"topic\"]\n", q(&pki.ca)));
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    let at_rest = cfg.at_rest();
    assert_eq!(at_rest.level, AtRestLevel::Plaintext);
    assert!(at_rest.needs_warning());
    assert!(at_rest
        .detail
        .contains("plaintext in the recipient's mailbox"));

    let canary = format!("CANARY-{}", new_id());
    let (mut s, mut files) = rich_submission(&canary);
    s.fields.push(
        "topic",
        "help\r\nBcc: victim@evil.example\r\nX-Injected: yes",
    );
    s.fields
        .push("other", "x\r\n\r\nBcc: second@evil.example\nX-Injected: 2");
    let evil = b"payload".to_vec();
    s.files.push(file_meta(
        "f",
        "a\r\nBcc: third@evil.example\r\n.pdf",
        "text/plain\r\nBcc: x@evil.example",
        &evil,
    ));
    files.push(evil);
    deliver(&sink, &s, &files).await.unwrap();

    let messages = server.messages();
    let (path, raw, meta) = &messages[0];
    assert_eq!(meta["rcpt_tos"], serde_json::json!(["alice@example.com"]));
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
    for line in head.split("\r\n") {
        assert!(!line.to_ascii_lowercase().starts_with("bcc"), "{head}");
        assert!(
            !line.to_ascii_lowercase().starts_with("x-injected"),
            "{head}"
        );
    }
    let manifest = parts(path, &d.join("parts"));
    assert!(header(&manifest, "Bcc").is_empty());
    assert!(header(&manifest, "X-Injected").is_empty());
    assert_eq!(
        header(&manifest, "Subject"),
        [format!(
            "New request: help Bcc: victim@evil.example X-Injected: yes ({})",
            s.id
        )]
    );
    // The attachment with the hostile name and type is still only an attachment, safely named.
    let leaves = leaf_payloads(&manifest);
    let last = &leaves.last().unwrap().0;
    assert_eq!(last["filename"], "a__Bcc_ third@evil.example__.pdf");
    assert_eq!(last["content_type"], "application/octet-stream");
    // Control: in tls mode the content is readable by anyone holding the mailbox, so the check
    // that the encrypted modes pass is one that can fail.
    let canary_seen = leaves
        .iter()
        .any(|(_, b)| b.windows(canary.len()).any(|w| w == canary.as_bytes()));
    assert!(canary_seen);
}

fn tls_sink_config(port: u16, ca: &Path, to: &str, extra: &str) -> secureform_email::Config {
    config(&format!(
        "mode = \"tls\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"{to}\"]\nca_file = {}\ntimeout_secs = 10\n{extra}",
        q(ca)
    ))
}

fn small_submission() -> (Submission, Vec<Vec<u8>>) {
    rich_submission("CANARY-small")
}

#[tokio::test]
async fn smtp_down_is_retryable_and_delivery_succeeds_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let port = free_port();
    let cfg = tls_sink_config(port, &pki.ca, "alice@example.com", "");
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    let (s, files) = small_submission();
    match deliver(&sink, &s, &files).await {
        Err(e) if e.is_retryable() => {
            assert!(!e.message().contains("CANARY"), "{e}");
            assert_eq!(e.reason(), FailureReason::Connection, "{e}");
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    let store = d.join("store");
    let server = SmtpServer::start(&pki, port, &store, &ServerOptions::default());
    let receipt = deliver(&sink, &s, &files).await.unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let manifest = parts(&messages[0].0, &d.join("parts"));
    assert_eq!(header(&manifest, "Message-ID"), [receipt.value.as_str()]);

    // The connection is pooled: the next delivery comes from the same client port.
    deliver(&sink, &s, &files).await.unwrap();
    let messages = server.messages();
    assert_eq!(messages[0].2["peer"], messages[1].2["peer"]);

    // The server restarts: the pooled connection is dead, a new one is made.
    drop(server);
    let server = SmtpServer::start(&pki, port, &store, &ServerOptions::default());
    deliver(&sink, &s, &files).await.unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 3);
    assert_ne!(messages[1].2["peer"], messages[2].2["peer"]);
    // Every copy is recognisably the same message.
    for (path, _, _) in &messages {
        let m = parts(path, &d.join("again"));
        assert_eq!(header(&m, "Message-ID"), [receipt.value.as_str()]);
    }
}

#[tokio::test]
async fn a_silent_server_is_a_retryable_timeout_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    // Accepts connections (the kernel completes them) but never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let cfg = tls_sink_config(port, &pki.ca, "alice@example.com", "").clone();
    let cfg = secureform_email::Config {
        timeout_secs: Some(1),
        ..cfg
    };
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    let (s, files) = small_submission();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        deliver(&sink, &s, &files),
    )
    .await
    .expect("deliver hung");
    match result {
        Err(e) if e.is_retryable() => {
            assert!(e.message().contains("no answer"), "{e}");
            assert_eq!(e.reason(), FailureReason::Timeout, "{e}");
        }
        other => panic!("expected a retryable timeout, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn a_5xx_reply_is_permanent_and_a_4xx_retryable_with_the_servers_reply_as_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let port = free_port();
    let opts = ServerOptions {
        reject: vec!["blocked@example.com".into()],
        tempfail: vec!["busy@example.com".into()],
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    let (s, files) = small_submission();
    let cfg = tls_sink_config(port, &pki.ca, "blocked@example.com", "");
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    match deliver(&sink, &s, &files).await {
        Err(e) if !e.is_retryable() => {
            assert_eq!(e.reason(), FailureReason::RejectedByPeer, "{e}");
            let reason = e.message();
            assert!(reason.contains("550"), "{reason}");
            assert!(
                reason.contains("recipient rejected by test policy"),
                "{reason}"
            );
            assert!(!reason.contains("CANARY"), "{reason}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    let cfg = tls_sink_config(port, &pki.ca, "busy@example.com", "");
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    match deliver(&sink, &s, &files).await {
        Err(e) if e.is_retryable() => {
            assert_eq!(e.reason(), FailureReason::PeerError, "{e}");
            assert!(
                e.message().contains("451") && e.message().contains("try again later"),
                "{e}"
            )
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_answered_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let port = free_port();
    let opts = ServerOptions {
        user: Some(("forms".into(), "right".into())),
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    std::env::set_var("EMAIL_TEST_WRONG_PASSWORD", "wrong");
    let extra = "username = \"forms\"\npassword_env = \"EMAIL_TEST_WRONG_PASSWORD\"\n";
    let sink = EmailSink::build(
        "mail",
        &tls_sink_config(port, &pki.ca, "alice@example.com", extra),
        d,
        None,
    )
    .await
    .unwrap();
    let (s, files) = small_submission();
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        deliver(&sink, &s, &files),
    )
    .await
    .expect("the client was left waiting");
    match result {
        Err(e) if !e.is_retryable() => {
            assert!(e.message().contains("535"), "{e}");
            assert_eq!(e.reason(), FailureReason::Auth, "{e}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn implicit_tls_works_and_an_untrusted_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let port = free_port();
    let opts = ServerOptions {
        implicit_tls: true,
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    let cfg =
        config(&format!(
        "mode = \"tls\"\nsmtp_url = \"smtps://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\"]\nca_file = {}\n", q(&pki.ca)));
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    let (s, files) = small_submission();
    deliver(&sink, &s, &files).await.unwrap();
    assert_eq!(server.messages().len(), 1);
    assert_eq!(server.messages()[0].2["tls"], true);

    // Without the private CA the server's certificate is not trusted: nothing is sent.
    let untrusted = config(&format!(
        "mode = \"tls\"\nsmtp_url = \"smtps://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\"]\n"
    ));
    let sink = EmailSink::build("mail", &untrusted, d, None).await.unwrap();
    let err = deliver(&sink, &s, &files).await.unwrap_err();
    assert!(
        err.message().contains("tls") || err.message().contains("certificate"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::Tls, "{err}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_server_without_starttls_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let port = free_port();
    let opts = ServerOptions {
        no_starttls: true,
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    std::env::set_var("EMAIL_TEST_PLAIN_PASSWORD", "never-sent");
    let extra = "username = \"forms\"\npassword_env = \"EMAIL_TEST_PLAIN_PASSWORD\"\n";
    let cfg = tls_sink_config(port, &pki.ca, "alice@example.com", extra);
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    let (s, files) = small_submission();
    match deliver(&sink, &s, &files).await {
        Err(e) if !e.is_retryable() => {
            assert!(e.message().contains("STARTTLS"), "{e}");
            assert_eq!(e.reason(), FailureReason::Tls, "{e}");
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn unusable_certificates_are_refused_when_the_sink_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let gpg = Gpg::new();
    let signing_only = gpg.generate(
        "Sign Only <s@example.com>",
        "ed25519",
        "sign",
        "never",
        None,
    );
    gpg.export_public(&signing_only, &d.join("sign-only.asc"));
    let old = gpg.generate(
        "Old <old@example.com>",
        "future-default",
        "default",
        "1d",
        Some("20200101T000000!"),
    );
    gpg.export_public(&old, &d.join("expired.asc"));
    let expired_x509 = pki.smime_recipient("old", Some(("20200101000000Z", "20200201000000Z")));

    let cases = [
        (
            "pgp",
            q(Path::new("sign-only.asc")),
            "sign-only.asc",
            "no key is marked for encryption",
        ),
        ("pgp", q(Path::new("expired.asc")), "expired.asc", "expired"),
        ("smime", q(&expired_x509.0), "cert.pem", "expired"),
        (
            "smime",
            q(Path::new("missing.pem")),
            "missing.pem",
            "cannot read",
        ),
    ];
    for (mode, file, name, why) in cases {
        let cfg = config(&format!(
            "mode = \"{mode}\"\nsmtp_url = \"smtp://127.0.0.1:25\"\nfrom = \"forms@example.com\"\n\
             to = [\"alice@example.com\"]\nrecipient_keys = [{file}]\n"
        ));
        let err = EmailSink::build("mail", &cfg, d, None).await.unwrap_err();
        assert_eq!(err.key, "recipient_keys");
        assert!(
            err.message.contains(name) && err.message.contains(why),
            "{mode} {name}: {err}"
        );
    }
}

/// `mode = "notify"`: a plain message saying that a submission arrived (form, time, id, link),
/// received by the real SMTP server, in which no byte of any field value, file name or file
/// appears; its sink is not warned as unencrypted.
#[tokio::test]
async fn notify_mode_sends_no_field_value_file_name_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new(&mk(d, "pki"));
    let port = free_port();
    let server = SmtpServer::start(&pki, port, &d.join("store"), &ServerOptions::default());
    let mut cfg = tls_sink_config(
        port,
        &pki.ca,
        "alice@example.com",
        "link = \"https://forms.example.com/console/{form}/{id}\"\n",
    );
    cfg.mode = secureform_email::Mode::Notify;
    assert!(!cfg.at_rest().needs_warning(), "{:?}", cfg.at_rest());
    let sink = EmailSink::build("mail", &cfg, d, None).await.unwrap();
    let canary = "CANARY-notify-5150";
    let (mut s, files) = rich_submission(canary);
    s.fields.push("city", "Quedlinburg-canary");
    deliver(&sink, &s, &files).await.unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let raw = std::fs::read(&messages[0].0).unwrap();
    let text = String::from_utf8_lossy(&raw);
    // What it says.
    assert!(text.contains(&format!("Submission id: {}", s.id)), "{text}");
    assert!(text.contains("Form: contact"), "{text}");
    assert!(text.contains("Received: 2026-11-27T10:00:00Z"), "{text}");
    assert!(
        text.contains(&format!(
            "https://forms.example.com/console/contact/{}",
            s.id
        )),
        "{text}"
    );
    // What it never holds: every field value (each item of a list), every file name, and the
    // files' bytes, in the raw message and in every decoded part.
    let mut canaries: Vec<Vec<u8>> = Vec::new();
    for (_, value) in s.fields.iter() {
        for scalar in value.values() {
            canaries.push(scalar.to_text().into_bytes());
        }
    }
    for f in &s.files {
        canaries.push(f.filename.as_bytes().to_vec());
        canaries.push(b"evil".to_vec());
    }
    for bytes in &files {
        canaries.push(bytes[..32.min(bytes.len())].to_vec());
        canaries.push(bytes[bytes.len() - 32..].to_vec());
    }
    canaries.push("notes.txt".into());
    canaries.push(canary.into());
    for needle in &canaries {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_slice()),
            "{:?} is in the notification:\n{text}",
            String::from_utf8_lossy(needle)
        );
    }
    assert_no_canary(&raw, &messages[0].0, canary, &d.join("parts"));

    // Settings that would put content in the message are refused.
    for extra in ["subject_fields = [\"name\"]\n", "attach_json = true\n"] {
        let mut bad = tls_sink_config(port, &pki.ca, "alice@example.com", extra);
        bad.mode = secureform_email::Mode::Notify;
        assert!(bad.validate().is_err(), "{extra}");
    }
    let mut bad = tls_sink_config(port, &pki.ca, "alice@example.com", "link = \"x\"\n");
    bad.mode = secureform_email::Mode::Tls;
    assert!(bad.validate().is_err());
}
