//! The command line beyond `serve`: `check` (exit codes, at-rest report, errors that name the
//! file, table and key) and `mysql read` against the real MariaDB.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

fn check(dir: &std::path::Path, toml: &str) -> (i32, String, String) {
    let path = dir.join("check.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_reports_at_rest_status_and_names_what_is_wrong() {
    let dir = tempdir();
    // Valid, with a warning: SFTP without PGP is not encrypted at rest.
    let key = dir.join("id");
    std::fs::write(&key, "not used by check beyond being readable\n").unwrap();
    let valid = r#"
[forms.contact]
sinks = ["docs", "db"]

[sinks.docs]
type = "documents"

[sinks.db]
type = "mysql"
url = "mysql://root@127.0.0.1:3306/test"
table = "t"
encryption = "none"
"#;
    let (code, out, err) = check(&dir, valid);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("sink docs (documents): encrypted at rest"),
        "{out}"
    );
    assert!(
        out.contains("sink db (mysql): NOT encrypted at rest"),
        "{out}"
    );
    assert!(
        out.contains("warning: sink `db` is not encrypted at rest"),
        "{out}"
    );
    assert!(
        !dir.join("secureform-data").exists(),
        "check creates nothing"
    );

    // A typo: exit 2, naming the file, the table and the key.
    let (code, _, err) = check(&dir, &valid.replace("encryption", "encrytpion"));
    assert_eq!(code, 2);
    assert!(
        err.contains("check.toml") && err.contains("[sinks.db]") && err.contains("encrytpion"),
        "{err}"
    );
    // A form naming a sink that does not exist.
    let (code, _, err) = check(
        &dir,
        &valid.replace("[\"docs\", \"db\"]", "[\"docs\", \"nope\"]"),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("[forms.contact] sinks: no sink named `nope`"),
        "{err}"
    );
    // A PGP recipient file that is not a certificate.
    let bad = valid.replace(
        "type = \"documents\"",
        "type = \"documents\"\npgp_recipients = [\"id\"]",
    );
    let (code, _, err) = check(&dir, &bad);
    assert_eq!(code, 2);
    assert!(err.contains("[sinks.docs] pgp_recipients"), "{err}");
}

#[test]
fn mysql_sink_rows_read_back_through_the_cli() {
    let table = format!("sf_cli_{}", ulid::Ulid::new().to_string().to_lowercase());
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, base64
    let dir = tempdir();
    std::fs::write(dir.join("db.key"), format!("{key}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("db.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("secureform.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[forms.intake]
sinks = ["db"]

[sinks.db]
type = "mysql"
url = "mysql://root@127.0.0.1:3306/test"
table = "{table}"
encryption = "aes_gcm"
key_file = "db.key"
create_table = true
"#
        ),
    )
    .unwrap();
    let server = Server::start_in(&dir, Some(config));
    let resp = client()
        .post(server.url("/f/intake"))
        .header("content-type", "application/json")
        .body(r#"{"name":"Zoë","note":"it's; DROP TABLE x; --"}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let id = resp.json::<serde_json::Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = server.cli(&["mysql", "read", "--sink", "db"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains(&id) {
            let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
            let row = rows
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r.to_string().contains(&id))
                .unwrap();
            let s = row.to_string();
            assert!(s.contains("Zoë") && s.contains("DROP TABLE x"), "{s}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "row never arrived: {text}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("mariadb")
        .args([
            "-uroot",
            "-h127.0.0.1",
            "test",
            "-e",
            &format!("DROP TABLE IF EXISTS `{table}`; DROP TABLE IF EXISTS `{table}_files`"),
        ])
        .output();
}
