//! The database stopped, then started again: every submission accepted meanwhile arrives, none
//! twice; and redeliveries never add rows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use secureform_contract::FailureReason;

use crate::support::{self, Mariadb};
use crate::{build, deliver};

#[tokio::test]
async fn database_stopped_then_started_loses_nothing_and_doubles_nothing() {
    let mut server = Mariadb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, b64) = support::gcm_key();
    let key_path = support::key_file(dir.path(), "db.key", &b64);
    let table = support::unique("outage");
    let config = support::config(&format!(
        r#"url = "{}"
           table = "{table}"
           key_file = "{}"
           create_table = true
           connect_timeout_secs = 1"#,
        server.url(),
        key_path.display()
    ));
    let sink = build(&config, dir.path()).await;
    let file: &[u8] = b"attached";
    let first = support::submission("contact", &[("n", "0")], &[file]);
    deliver(&sink, &first, &[file]).await.unwrap();

    server.stop().await;
    // Accepted by the service while the database is down: each delivery is retryable.
    let meanwhile: Vec<_> = (1..=3)
        .map(|i| support::submission("contact", &[("n", &i.to_string())], &[file]))
        .collect();
    for s in &meanwhile {
        let err = deliver(&sink, s, &[file]).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(!err.message().contains(s.id.as_str()));
        assert!(
            matches!(
                err.reason(),
                FailureReason::Connection | FailureReason::Timeout
            ),
            "{err}"
        );
    }

    server.restart().await;
    // The dispatcher retries every pending submission, and (at least once) the first again.
    let mut pending: Vec<_> = meanwhile.iter().chain(std::iter::once(&first)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        assert!(Instant::now() < deadline, "still pending after the restart");
        let mut left = Vec::new();
        for s in pending {
            if let Err(e) = deliver(&sink, s, &[file]).await {
                assert!(e.is_retryable(), "{e}");
                left.push(s);
            }
        }
        pending = left;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut conn = server.connect("test").await;
    let ids: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT CAST(submission_id AS CHAR) FROM `{table}`"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut counts = BTreeMap::new();
    for id in &ids {
        *counts.entry(id.clone()).or_insert(0) += 1;
    }
    assert_eq!(ids.len(), 4);
    for s in meanwhile.iter().chain(std::iter::once(&first)) {
        assert_eq!(counts.get(&s.id), Some(&1), "{}", s.id);
    }
    let files: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{table}_files`"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(files, 4);
}

/// The same submission delivered twice leaves one row (and one copy of its files), in every
/// mode, and the second delivery counts as delivered.
#[tokio::test]
async fn redelivery_leaves_one_row() {
    let db = support::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, b64) = support::gcm_key();
    let gcm_key = support::key_file(dir.path(), "gcm.key", &b64);
    let aes_key = support::key_file(dir.path(), "aes.key", "0123456789abcdef0123456789abcdef");
    for (mode, key) in [
        ("aes_gcm", format!("key_file = \"{}\"", gcm_key.display())),
        ("mysql_aes", format!("key_file = \"{}\"", aes_key.display())),
        ("none", String::new()),
    ] {
        let table = support::unique("twice");
        let config = support::config(&format!(
            "url = \"{}\"\ntable = \"{table}\"\nencryption = \"{mode}\"\n{key}\ncreate_table = true",
            db.url
        ));
        let sink = build(&config, dir.path()).await;
        let s = support::submission("contact", &[("email", "a@example.com")], &[b"one", b"two"]);
        let first = deliver(&sink, &s, &[b"one", b"two"]).await.unwrap();
        let second = deliver(&sink, &s, &[b"one", b"two"]).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(first.kind, "row");
        let mut conn = db.connect().await;
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{table}`"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let files: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{table}_files`"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!((rows, files), (1, 2), "mode {mode}");
        db.drop_tables(&[&table]).await;
    }
}
