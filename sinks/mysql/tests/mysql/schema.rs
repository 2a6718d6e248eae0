//! Tables the user made, checked by the health check; hostile input stored as data; errors classified.

use secureform_contract::FailureReason;
use secureform_mysql::MysqlSink;
use sqlx::Executor;

use crate::support;
use crate::{build, deliver};

const HOSTILE_NAME: &str = "x'; DROP TABLE t; -- `b`";
const HOSTILE_VALUE: &str = "`); DROP TABLE `t`; -- O'Brien \"q\" \\ \0 end";

/// A hostile field name or value (quotes, backticks, `; DROP TABLE`) is stored as data.
#[tokio::test]
async fn hostile_names_and_values_are_stored_as_data() {
    let db = support::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, b64) = support::gcm_key();
    let key = support::key_file(dir.path(), "db.key", &b64);
    for (mode, key_line) in [
        ("none", String::new()),
        ("aes_gcm", format!("key_file = \"{}\"", key.display())),
    ] {
        let table = support::unique("hostile");
        let config = support::config(&format!(
            "url = \"{}\"\ntable = \"{table}\"\nencryption = \"{mode}\"\n{key_line}\n\
             create_table = true\n[columns]\nmapped = {:?}",
            db.url, HOSTILE_NAME
        ));
        let sink = build(&config, dir.path()).await;
        let mut s = support::submission(
            "contact'; DROP TABLE x; --",
            &[(HOSTILE_NAME, HOSTILE_VALUE), ("a`b", "';--")],
            &[],
        );
        s.fields.push("; DROP TABLE `t`", "\\'");
        deliver(&sink, &s, &[]).await.unwrap();

        let rows = secureform_mysql::read_rows(&config, dir.path(), Some(&s.form), 5)
            .await
            .unwrap();
        assert_eq!(rows, vec![serde_json::to_value(&s).unwrap()], "mode {mode}");
        let mut conn = db.connect().await;
        let form: String = sqlx::query_scalar(&format!("SELECT form FROM `{table}`"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(form, s.form);
        if mode == "none" {
            let mapped: String = sqlx::query_scalar(&format!("SELECT mapped FROM `{table}`"))
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(mapped, HOSTILE_VALUE);
        }
        db.drop_tables(&[&table]).await;
    }
}

/// With `create_table = false`, a missing table, a missing column, a column of the wrong type
/// and a missing unique key are health-check errors naming them; a fitting table works.
#[tokio::test]
async fn create_table_false_checks_the_table_at_start_up() {
    let db = support::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, b64) = support::gcm_key();
    let key = support::key_file(dir.path(), "db.key", &b64);
    let table = support::unique("mine");
    let config = support::config(&format!(
        "url = \"{}\"\ntable = \"{table}\"\nkey_file = \"{}\"\nfiles_max_bytes = 0\n\
         columns = {{ email_col = \"email\" }}",
        db.url,
        key.display()
    ));
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap()
        .check_table()
        .await
        .unwrap_err();
    assert_eq!(err.key, "table");
    assert!(
        err.message.contains(&table) && err.message.contains("does not exist"),
        "{err}"
    );

    let mut conn = db.connect().await;
    let base = "submission_id VARCHAR(64) NOT NULL, form VARCHAR(255) NOT NULL, \
                received_at DATETIME NOT NULL";
    let create = |extra: &str, key: &str| format!("CREATE TABLE `{table}` ({base}, {extra}{key})");
    conn.execute(
        create(
            "submission LONGBLOB NOT NULL",
            ", PRIMARY KEY (submission_id)",
        )
        .as_str(),
    )
    .await
    .unwrap();
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap()
        .check_table()
        .await
        .unwrap_err();
    assert_eq!(err.key, "columns");
    assert!(err.message.contains("email_col"), "{err}");

    conn.execute(format!("DROP TABLE `{table}`").as_str())
        .await
        .unwrap();
    conn.execute(
        create(
            "submission LONGTEXT NOT NULL, email_col BLOB",
            ", PRIMARY KEY (submission_id)",
        )
        .as_str(),
    )
    .await
    .unwrap();
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap()
        .check_table()
        .await
        .unwrap_err();
    assert!(
        err.message.contains("`submission`") && err.message.contains("longtext"),
        "{err}"
    );

    conn.execute(format!("DROP TABLE `{table}`").as_str())
        .await
        .unwrap();
    conn.execute(create("submission LONGBLOB NOT NULL, email_col BLOB", "").as_str())
        .await
        .unwrap();
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap()
        .check_table()
        .await
        .unwrap_err();
    assert!(err.message.contains("UNIQUE"), "{err}");

    conn.execute(format!("DROP TABLE `{table}`").as_str())
        .await
        .unwrap();
    conn.execute(
        create(
            "submission LONGBLOB NOT NULL, email_col BLOB",
            ", UNIQUE KEY (submission_id)",
        )
        .as_str(),
    )
    .await
    .unwrap();
    let sink = build(&config, dir.path()).await;
    let s = support::submission("contact", &[("email", "a@example.com")], &[]);
    deliver(&sink, &s, &[]).await.unwrap();
    db.drop_tables(&[&table]).await;
}

/// A constraint error is permanent, with the reason kept (error number) and no value in it.
#[tokio::test]
async fn constraint_errors_are_permanent_and_carry_no_values() {
    let db = support::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let table = support::unique("narrow");
    let mut conn = db.connect().await;
    conn.execute(
        format!(
            "CREATE TABLE `{table}` (submission_id VARCHAR(64) PRIMARY KEY, form VARCHAR(3) NOT NULL, \
             received_at DATETIME NOT NULL, submission LONGTEXT NOT NULL, \
             note VARCHAR(4), UNIQUE KEY (note))"
        )
        .as_str(),
    )
    .await
    .unwrap();
    let config = support::config(&format!(
        "url = \"{}\"\ntable = \"{table}\"\nencryption = \"none\"\nfiles_max_bytes = 0\n\
         columns = {{ note = \"note\" }}",
        db.url
    ));
    let sink = build(&config, dir.path()).await;

    let long_form = support::submission("contact-form-secret", &[], &[]);
    let err = deliver(&sink, &long_form, &[]).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.message().contains("1406"), "{err}");
    assert_eq!(err.reason(), FailureReason::RejectedByPeer, "{err}");

    // A duplicate on another unique index is not a redelivery: permanent, value not quoted.
    let a = support::submission("abc", &[("note", "SECR")], &[]);
    let b = support::submission("abc", &[("note", "SECR")], &[]);
    deliver(&sink, &a, &[]).await.unwrap();
    let err = deliver(&sink, &b, &[]).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.message().contains("1062") && !err.message().contains("SECR"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::RejectedByPeer, "{err}");
    db.drop_tables(&[&table]).await;
}

/// A files limit the server's max_allowed_packet cannot carry is a health-check error.
#[tokio::test]
async fn files_max_bytes_must_fit_the_servers_packet() {
    let db = support::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let mut conn = db.connect().await;
    let max: u64 = sqlx::query_scalar("SELECT CAST(@@max_allowed_packet AS UNSIGNED)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if max >= secureform_mysql::MAX_FILES_MAX_BYTES + 64 * 1024 {
        return; // this server takes any allowed files_max_bytes
    }
    let config = support::config(&format!(
        "url = \"{}\"\ntable = \"{}\"\nencryption = \"none\"\ncreate_table = true\n\
         files_max_bytes = {}",
        db.url,
        support::unique("packet"),
        secureform_mysql::MAX_FILES_MAX_BYTES
    ));
    let err = MysqlSink::build("db", &config, dir.path())
        .await
        .unwrap()
        .check_table()
        .await
        .unwrap_err();
    assert_eq!(err.key, "files_max_bytes");
    assert!(err.message.contains("max_allowed_packet"), "{err}");
}
