//! The three modes, read back with the database's AES_DECRYPT, Python's `cryptography`, and
//! the server's files on disk.

use secureform_contract::AtRestLevel;
use sqlx::{Executor, Row};

use crate::support::{self, Mariadb};
use crate::{build, deliver};

/// `mysql_aes` rows decrypt with `SELECT AES_DECRYPT(submission, key)` in SQL and hold every
/// field; mapped columns and files decrypt the same way.
#[tokio::test]
async fn mysql_aes_rows_decrypt_in_sql() {
    let db = support::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let key = "a mysql_aes key of 32 bytes!!!!!";
    let key_path = support::key_file(dir.path(), "db.key", key);
    let table = support::unique("aes");
    let config = support::config(&format!(
        r#"url = "{}"
           table = "{table}"
           encryption = "mysql_aes"
           key_file = "{}"
           create_table = true
           files_max_bytes = 4096
           columns = {{ email_col = "email", topics_col = "topics" }}"#,
        db.url,
        key_path.display()
    ));
    let sink = build(&config, dir.path()).await;
    let at_rest = config.at_rest();
    assert_eq!(at_rest.level, AtRestLevel::Weak);
    assert!(config.at_rest().detail.contains("AES-128-ECB"));
    assert!(config.at_rest().detail.contains("deterministic"));

    let canary = support::unique("CANARYAES");
    let mut s = support::submission(
        "contact",
        &[
            ("email", "a@example.com"),
            ("name", "Zoë ✓ 𝄞"),
            ("topics", "billing"),
            ("note", &canary),
        ],
        &[b"file bytes \x00\xff end"],
    );
    s.fields.push("topics", "support");
    deliver(&sink, &s, &[b"file bytes \x00\xff end"])
        .await
        .unwrap();

    let mut conn = db.connect().await;
    let row = sqlx::query(&format!(
        "SELECT submission, submission_iv, email_col, email_col_iv, topics_col, topics_col_iv \
         FROM `{table}` WHERE submission_id = ?"
    ))
    .bind(&s.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let raw: Vec<u8> = row.get(0);
    assert!(!raw.windows(canary.len()).any(|w| w == canary.as_bytes()));
    // ECB on MariaDB (no IV); on a server with block_encryption_mode, CBC with the stored IV.
    let iv: Option<Vec<u8>> = row.get(1);
    let cbc = iv.is_some();
    let open = |col: &'static str| aes_decrypt(&db, cbc, &table, col, key, &s.id);
    let json: serde_json::Value = serde_json::from_str(&open("submission").await).unwrap();
    assert_eq!(json, serde_json::to_value(&s).unwrap());
    assert_eq!(json["fields"]["note"], canary.as_str());
    assert_eq!(json["fields"]["name"], "Zoë ✓ 𝄞");
    assert_eq!(open("email_col").await, "a@example.com");
    assert_eq!(open("topics_col").await, r#"["billing","support"]"#);

    let file: Option<Vec<u8>> = sqlx::query_scalar(&format!(
        "SELECT AES_DECRYPT(content, ?) FROM `{table}_files` WHERE submission_id = ? AND file_index = 0"
    ))
    .bind(key.as_bytes())
    .bind(&s.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    if !cbc {
        assert_eq!(file.unwrap(), b"file bytes \x00\xff end");
    }

    // The sink's own read-back agrees.
    let rows = secureform_mysql::read_rows(&config, dir.path(), Some("contact"), 10)
        .await
        .unwrap();
    assert_eq!(rows, vec![serde_json::to_value(&s).unwrap()]);
    let back = secureform_mysql::read_file(&config, dir.path(), &s.id, 0)
        .await
        .unwrap();
    assert_eq!(back.unwrap(), b"file bytes \x00\xff end");
    db.drop_tables(&[&table]).await;
}

/// `SELECT AES_DECRYPT(col, key[, col_iv])` of one cell, as text.
async fn aes_decrypt(
    db: &support::Db,
    cbc: bool,
    table: &str,
    col: &str,
    key: &str,
    id: &str,
) -> String {
    let mut conn = db.connect().await;
    let sql = if cbc {
        conn.execute("SET block_encryption_mode = 'aes-256-cbc'")
            .await
            .unwrap();
        format!("SELECT AES_DECRYPT({col}, ?, {col}_iv) FROM `{table}` WHERE submission_id = ?")
    } else {
        format!("SELECT AES_DECRYPT({col}, ?) FROM `{table}` WHERE submission_id = ?")
    };
    let v: Option<Vec<u8>> = sqlx::query_scalar(&sql)
        .bind(key.as_bytes())
        .bind(id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    String::from_utf8(v.expect("AES_DECRYPT gave NULL")).unwrap()
}

/// `aes_gcm` rows hold no canary in any column, nor in the server's files on disk, and decrypt
/// with Python's `cryptography` following FORMAT.md. A plaintext (`none`) control row in the
/// same server shows that the disk scan does find what is there.
#[tokio::test]
async fn aes_gcm_leaves_no_canary_and_python_opens_it() {
    let mut server = Mariadb::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (raw_key, b64) = support::gcm_key();
    let key_path = support::key_file(dir.path(), "db.key", &format!("{b64}\n"));
    let table = support::unique("gcm");
    let control = support::unique("plain");
    let config = support::config(&format!(
        r#"url = "{}"
           table = "{table}"
           key_file = "{}"
           create_table = true
           columns = {{ secret_col = "secret" }}"#,
        server.url(),
        key_path.display()
    ));
    let control_config = support::config(&format!(
        r#"url = "{}"
           table = "{control}"
           encryption = "none"
           create_table = true
           columns = {{ secret_col = "secret" }}"#,
        server.url()
    ));
    let sink = build(&config, dir.path()).await;
    assert_eq!(config.at_rest().level, AtRestLevel::Encrypted);
    let control_sink = build(&control_config, dir.path()).await;
    assert_eq!(control_config.at_rest().level, AtRestLevel::Plaintext);

    let canary = support::unique("CANARYGCM");
    let file_canary = support::unique("FILECANARYGCM");
    let s = support::submission(
        "contact",
        &[("secret", &canary), ("other", "x")],
        &[file_canary.as_bytes()],
    );
    deliver(&sink, &s, &[file_canary.as_bytes()]).await.unwrap();
    let plain_canary = support::unique("CANARYPLAIN");
    let c = support::submission("contact", &[("secret", &plain_canary)], &[]);
    deliver(&control_sink, &c, &[]).await.unwrap();

    let mut conn = server.connect("test").await;
    // No column of any row holds the canary.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME = ?",
    )
    .bind(&table)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(columns.len() >= 5, "{columns:?}");
    for column in &columns {
        let values: Vec<Option<Vec<u8>>> =
            sqlx::query_scalar(&format!("SELECT CAST(`{column}` AS BINARY) FROM `{table}`"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
        for v in values.into_iter().flatten() {
            assert!(
                !v.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "canary in {column}"
            );
        }
    }
    // Python opens every cell.
    let (sub, secret): (Vec<u8>, Vec<u8>) = sqlx::query_as(&format!(
        "SELECT submission, secret_col FROM `{table}` WHERE submission_id = ?"
    ))
    .bind(&s.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let json = support::python_open(&raw_key, &table, "submission", &s.id, &sub);
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json, serde_json::to_value(&s).unwrap());
    assert_eq!(
        support::python_open(&raw_key, &table, "secret_col", &s.id, &secret),
        canary.as_bytes()
    );
    let content: Vec<u8> = sqlx::query_scalar(&format!(
        "SELECT content FROM `{table}_files` WHERE submission_id = ? AND file_index = 0"
    ))
    .bind(&s.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let files_table = format!("{table}_files");
    let row_key = format!("{}:0", s.id);
    assert_eq!(
        support::python_open(&raw_key, &files_table, "content", &row_key, &content),
        file_canary.as_bytes()
    );
    // A value moved to another column does not open.
    assert!(secureform_mysql::open_value(&raw_key, &table, "submission", &s.id, &secret).is_err());

    let rows = secureform_mysql::read_rows(&config, dir.path(), None, 5)
        .await
        .unwrap();
    assert_eq!(rows, vec![serde_json::to_value(&s).unwrap()]);
    drop(conn);

    // Everything flushed to the files; then look at every byte the server wrote.
    server.stop().await;
    let datadir = server.datadir();
    assert_eq!(
        support::files_containing(&datadir, canary.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        support::files_containing(&datadir, file_canary.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(
        !support::files_containing(&datadir, plain_canary.as_bytes()).is_empty(),
        "the disk scan did not find the plaintext control row: the scan proves nothing"
    );
}
