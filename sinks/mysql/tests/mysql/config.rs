//! Configuration checks that need no database: identifiers, keys, ranges, at-rest classes.

use std::os::unix::fs::PermissionsExt;

use secureform_contract::AtRestLevel;
use secureform_mysql::{Config, MysqlSink};

use crate::support;

fn parse(extra: &str) -> Config {
    let table = if extra.contains("table =") {
        ""
    } else {
        "table = \"contact\""
    };
    support::config(&format!(
        "url = \"mysql://forms@db.example:3306/forms\"\n{table}\n{extra}"
    ))
}

fn key_of(extra: &str) -> String {
    parse(extra).validate().unwrap_err().key
}

#[test]
fn identifiers_and_combinations_are_checked() {
    let k = "key_env = \"K\"";
    assert!(parse(k).validate().is_ok());
    assert_eq!(
        key_of("key_env = \"K\"\ntable = \"x`; DROP TABLE t; --\"").as_str(),
        "table"
    );
    let hostile_table =
        support::config("url = \"mysql://h/db\"\ntable = \"a`b\"\nencryption = \"none\"");
    assert_eq!(hostile_table.validate().unwrap_err().key, "table");
    assert_eq!(
        key_of("key_env = \"K\"\ncolumns = { \"a`b\" = \"f\" }"),
        "columns"
    );
    assert_eq!(
        key_of("key_env = \"K\"\ncolumns = { Submission = \"f\" }"),
        "columns"
    );
    assert_eq!(key_of("key_env = \"K\"\ncolumns = { a = \"\" }"), "columns");
    assert_eq!(
        key_of(
            "encryption = \"mysql_aes\"\nkey_env = \"K\"\ncolumns = { a = \"f\", a_iv = \"g\" }"
        ),
        "columns"
    );
    assert_eq!(key_of(""), "key_env");
    assert_eq!(key_of("key_env = \"K\"\nkey_file = \"k\""), "key_env");
    assert_eq!(key_of("encryption = \"none\"\nkey_env = \"K\""), "key_env");
    assert_eq!(
        key_of("key_env = \"K\"\nfiles_max_bytes = 1000000000"),
        "files_max_bytes"
    );
    assert_eq!(key_of("key_env = \"K\"\npool_size = 0"), "pool_size");
    assert_eq!(
        key_of("key_env = \"K\"\npassword_env = \"P\"\npassword_file = \"p\""),
        "password_env"
    );
    let long = "t".repeat(60);
    assert_eq!(
        key_of(&format!("key_env = \"K\"\ntable = \"{long}\"")),
        "table"
    );
    assert!(parse(&format!(
        "key_env = \"K\"\ntable = \"{long}\"\nfiles_max_bytes = 0"
    ))
    .validate()
    .is_ok());

    let with_password = support::config(
        "url = \"mysql://u:secret@h/db\"\ntable = \"t\"\nencryption = \"none\"\npassword_env = \"P\"",
    );
    let err = with_password.validate().unwrap_err();
    assert_eq!(err.key, "password_env");
    assert!(!err.to_string().contains("secret"));
    assert!(!format!("{with_password:?}").contains("secret"));

    let bad_url =
        support::config("url = \"postgres://h/db\"\ntable = \"t\"\nencryption = \"none\"");
    assert_eq!(bad_url.validate().unwrap_err().key, "url");
    assert!(
        toml::from_str::<Config>("url = \"mysql://h/d\"\ntable = \"t\"\ntabel = \"x\"").is_err()
    );
}

#[test]
fn at_rest_follows_the_mode() {
    assert_eq!(
        parse("key_env = \"K\"").at_rest().level,
        AtRestLevel::Encrypted
    );
    let weak = parse("encryption = \"mysql_aes\"\nkey_env = \"K\"").at_rest();
    assert_eq!(weak.level, AtRestLevel::Weak);
    for word in ["AES-128-ECB", "deterministic", "no IV", "XOR"] {
        assert!(weak.detail.contains(word), "{word}: {}", weak.detail);
    }
    let plain = parse("encryption = \"none\"").at_rest();
    assert_eq!(plain.level, AtRestLevel::Plaintext);
    assert!(plain.needs_warning());
}

/// Keys are checked at build, before any connection (the URL's host does not exist).
#[tokio::test]
async fn keys_are_checked_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let short = support::key_file(dir.path(), "short.key", "c2hvcnQ=");
    let config = parse(&format!("key_file = \"{}\"", short.display()));
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap_err();
    assert_eq!(err.key, "key_file");
    assert!(err.message.contains("32 bytes"), "{err}");

    let (_, b64) = support::gcm_key();
    let open = support::key_file(dir.path(), "open.key", &b64);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = parse("key_file = \"open.key\"");
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap_err();
    assert_eq!(err.key, "key_file");
    assert!(err.message.contains("chmod 600"), "{err}");

    let weak = support::key_file(dir.path(), "weak.key", "tooshort");
    let config = parse(&format!(
        "encryption = \"mysql_aes\"\nkey_file = \"{}\"",
        weak.display()
    ));
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap_err();
    assert_eq!(err.key, "key_file");

    let config = parse("key_env = \"SECUREFORM_TEST_MYSQL_KEY_NOT_SET\"");
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap_err();
    assert_eq!(err.key, "key_env");

    let config = parse("encryption = \"none\"\nca_file = \"missing-ca.pem\"");
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap_err();
    assert_eq!(err.key, "ca_file");
}

/// A database that accepts the connection and never answers does not hold up building the sink
/// (the service's start); the health check reports it under `url`.
#[tokio::test]
async fn building_does_not_wait_for_the_database() {
    let dir = tempfile::tempdir().unwrap();
    // Connections are accepted by the kernel's backlog; nobody ever sends a greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = support::config(&format!(
        "url = \"mysql://forms@127.0.0.1:{port}/forms\"\ntable = \"contact\"\n\
         encryption = \"none\"\nconnect_timeout_secs = 2"
    ));
    let started = std::time::Instant::now();
    let sink = MysqlSink::build("db", &config, dir.path()).await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "build waited {:?}",
        started.elapsed()
    );
    let err = sink.check_table().await.unwrap_err();
    assert_eq!(err.key, "url");
}
