//! Failures against a real OpenSSH server: a wrong pinned host key, a server that goes away and
//! comes back, a stalled server, a refused connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use secureform_contract::{FailureReason, Sink};
use secureform_sftp::SftpSink;
use support::cases::*;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn wrong_host_key_delivers_nothing_while_the_server_keeps_serving_others() {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "id", &["-t", "ed25519"], "");
    let other = keygen(keys.path(), "other_host", &["-t", "ed25519"], "");
    let wrong = fingerprint(&other.with_extension("pub"));
    let sshd = Sshd::start(&[&key.with_extension("pub")], false);
    let root = tempfile::tempdir().unwrap();
    let bad_dir = root.path().join("bad");
    let good_dir = root.path().join("good");
    let bad = SftpSink::build(
        "bad",
        &config(sshd.port, &wrong, &bad_dir, &root_key(&key)),
        keys.path(),
        None,
    )
    .await
    .unwrap();
    let good = SftpSink::build(
        "good",
        &config(sshd.port, &sshd.fingerprint, &good_dir, &root_key(&key)),
        keys.path(),
        None,
    )
    .await
    .unwrap();

    for n in 1..=2 {
        let err = permanent_error(deliver(&bad, n).await);
        assert_eq!(err.reason(), FailureReason::Tls, "{err}");
        let reason = err.into_message();
        assert!(reason.contains(&format!("expected {wrong}")), "{reason}");
        assert!(reason.contains(&sshd.fingerprint), "{reason}");
        let ok = deliver(&good, n).await.unwrap();
        assert!(Path::new(&ok).is_file());
    }
    // Nothing reached the disk for the mismatched sink: not even its folder.
    assert!(!bad_dir.exists());
    assert_eq!(listing(&good_dir).len(), 6);
    // Only the good sink ever logged in, once (its session is reused): the mismatched sink
    // compared the host key first and never authenticated.
    assert_eq!(
        sshd.log().matches("Accepted publickey").count(),
        1,
        "{}",
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sshd_stopped_then_started_the_backlog_arrives_nothing_twice() {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "id", &["-t", "ed25519"], "");
    let mut sshd = Sshd::start(&[&key.with_extension("pub")], false);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("in");
    let sink = SftpSink::build(
        "up",
        &config(sshd.port, &sshd.fingerprint, &dir, &root_key(&key)),
        keys.path(),
        None,
    )
    .await
    .unwrap();
    deliver(&sink, 1).await.unwrap(); // the session is now cached

    sshd.stop();
    let mut backlog = vec![];
    for n in 2..=4 {
        let reason = retryable(deliver(&sink, n).await);
        assert!(!reason.contains("secret-value"), "{reason}");
        backlog.push(n);
    }
    assert_eq!(
        listing(&dir).len(),
        3,
        "nothing may arrive while sshd is down"
    );

    sshd.restart();
    // The dispatcher retries the backlog, and (at-least-once) may redeliver one already done.
    for n in backlog.iter().chain([&1, &3]) {
        deliver(&sink, *n).await.unwrap();
    }
    let mut expected = vec![];
    for n in 1..=4 {
        let id = ulid(n);
        expected.extend([format!("{id}.json"), format!("{id}/"), format!("{id}/0")]);
        let (s, _) = submission(&id, fields(), vec![]);
        let text = fs::read_to_string(dir.join(format!("{id}.json"))).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["id"], s.id.as_str());
        assert_eq!(
            fs::read(dir.join(&id).join("0")).unwrap(),
            bytes(1000, n.into())
        );
    }
    expected.sort();
    assert_eq!(listing(&dir), expected);

    // A restart while a session is cached breaks it; the sink reconnects once and delivers.
    sshd.restart();
    deliver(&sink, 5).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing(&dir).len(), expected.len() + 3);
    assert_eq!(
        sshd.log().matches("Accepted publickey").count(),
        3,
        "{}",
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_server_times_out_and_a_refused_connection_is_retryable() {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "id", &["-t", "ed25519"], "");
    let pin = fingerprint(&key.with_extension("pub"));
    // Accepts connections and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = vec![];
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let mut cfg = config(port, &pin, keys.path(), &root_key(&key));
    cfg.timeout_secs = 2;
    let sink = SftpSink::build("stall", &cfg, keys.path(), None)
        .await
        .unwrap();
    let started = Instant::now();
    let err = retryable_error(deliver(&sink, 1).await);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    assert!(err.message().contains("handshake"), "{err}");
    assert_eq!(err.reason(), FailureReason::Timeout, "{err}");

    let refused = free_port();
    let sink = SftpSink::build(
        "down",
        &config(refused, &pin, keys.path(), &root_key(&key)),
        keys.path(),
        None,
    )
    .await
    .unwrap();
    let err = retryable_error(deliver(&sink, 1).await);
    assert!(err.message().contains("cannot connect"), "{err}");
    assert_eq!(err.reason(), FailureReason::Connection, "{err}");
}

/// The health check logs in and looks at the folder, writing nothing; a wrong host key, a
/// missing folder and a stopped server each fail it.
#[tokio::test(flavor = "multi_thread")]
async fn the_health_check_logs_in_and_writes_nothing() {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "id", &["-t", "ed25519"], "");
    let other = keygen(keys.path(), "other_host", &["-t", "ed25519"], "");
    let sshd = Sshd::start(&[&key.with_extension("pub")], false);
    let root = tempfile::tempdir().unwrap();
    let build = |pin: &str, dir: &Path| {
        let cfg = config(sshd.port, pin, dir, &root_key(&key));
        let base = keys.path().to_path_buf();
        async move { SftpSink::build("up", &cfg, &base, None).await }
    };
    build(&sshd.fingerprint, root.path())
        .await
        .unwrap()
        .healthcheck()
        .await
        .unwrap();
    let missing = root.path().join("missing");
    assert!(build(&sshd.fingerprint, &missing)
        .await
        .unwrap()
        .healthcheck()
        .await
        .is_err());
    assert!(!missing.exists(), "the health check created the folder");
    let wrong = fingerprint(&other.with_extension("pub"));
    let err = build(&wrong, root.path())
        .await
        .unwrap()
        .healthcheck()
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        0,
        "a health check wrote something"
    );
}
