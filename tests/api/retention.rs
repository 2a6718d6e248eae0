//! Issue 17: erasure by crypto-shredding (API and CLI), erasure of a submission still in the
//! spool, retention with a shifted clock, and the hash-chained audit trail.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

use crate::support::*;
use secureform_testkit::sshd::{keygen, Sshd};

const ADMIN: &str = "sf_admin_erase";
const READER: &str = "sf_read_erase";

fn token_lines(name: &str, token: &str, scopes: &str) -> String {
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    format!("[tokens.{name}]\nsha256 = \"{hash}\"\nscopes = [{scopes}]\nforms = [\"*\"]\n")
}

fn tokens() -> String {
    format!(
        "{}{}",
        token_lines("ops", ADMIN, "\"admin\", \"read\", \"submit\""),
        token_lines("auditor", READER, "\"read\"")
    )
}

fn call(
    server: &Server,
    method: &str,
    token: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client()
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn submit(server: &Server, body: &str) -> String {
    let (s, v) = call(
        server,
        "POST",
        ADMIN,
        "/api/v1/forms/contact/submissions",
        Some(body),
    );
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn audit_entries(server: &Server) -> Vec<Value> {
    let (s, v) = call(
        server,
        "GET",
        ADMIN,
        "/api/v1/audit?after=0&limit=1000",
        None,
    );
    assert_eq!(s, 200, "{v}");
    v["entries"].as_array().unwrap().clone()
}

fn cli_in(dir: &Path, config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn an_erased_document_is_gone_and_a_copy_taken_before_no_longer_opens_it() {
    let config = format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        tokens()
    );
    let server = Server::with_config(&config);
    let gone = submit(&server, r#"{"name":"Ann","note":"erase me"}"#);
    let kept = submit(&server, r#"{"name":"Bob"}"#);
    server.wait_for_doc(&gone);
    server.wait_for_doc(&kept);
    let keys = server.dir.join("secureform-data-keys").join("docs");
    assert!(
        keys.join(format!("{gone}.key")).exists(),
        "a data key per document"
    );

    // The backup: a copy of the data folder taken before the erasure.
    let copy = server.dir.join("backup");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(server.dir.join("secureform-data"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());

    let path = format!("/api/v1/documents/{gone}");
    assert_eq!(call(&server, "DELETE", READER, &path, None).0, 403);
    let (s, v) = call(&server, "DELETE", ADMIN, &path, None);
    assert_eq!(s, 204, "{v}");
    assert_eq!(
        call(&server, "DELETE", ADMIN, &path, None).0,
        404,
        "a second delete"
    );
    assert_eq!(call(&server, "GET", READER, &path, None).0, 404);
    assert_eq!(server.doc_ids(), vec![kept.clone()]);
    assert!(!keys.join(format!("{gone}.key")).exists());

    // The copy, read with the same key file and the same data-key folder: the erased document
    // does not open; the other one does.
    let copy_config = server.dir.join("copy.toml");
    std::fs::write(
        &copy_config,
        "[storage]\ndata_dir = \"backup\"\nmaster_key_file = \"backup/master.key\"\n\n\
         [forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\
         data_keys_dir = \"secureform-data-keys/docs\"\n",
    )
    .unwrap();
    let out_dir = server.dir.join("from-backup");
    let out = cli_in(
        &server.dir,
        &copy_config,
        &["docs", "get", &gone, "--out", out_dir.to_str().unwrap()],
    );
    assert!(
        !out.status.success(),
        "the erased document opened from the backup"
    );
    assert!(
        !out_dir.join("submission.json").exists(),
        "nothing of it was written"
    );
    let out = cli_in(
        &server.dir,
        &copy_config,
        &["docs", "get", &kept, "--out", out_dir.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The erasure is in the audit log: who, which id, why, and the sealed items' hash.
    let entries = audit_entries(&server);
    let erased = entries
        .iter()
        .find(|e| e["action"] == "erase_document" && e["document_id"] == gone.as_str())
        .unwrap_or_else(|| panic!("no erasure entry: {entries:?}"));
    assert_eq!(erased["actor"], "ops");
    assert_eq!(erased["reason"], "request");
    assert!(erased["detail"].as_str().unwrap().contains("shredded=true"));
    let log = server.log_text();
    assert!(!log.contains("erase me") && !log.contains("Ann"), "{log}");
}

#[test]
fn docs_delete_and_docs_get_on_the_command_line_are_audited_and_get_writes_privately() {
    use std::os::unix::fs::PermissionsExt;
    let config = format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        tokens()
    );
    let server = Server::with_config(&config);
    let id = submit(&server, r#"{"name":"Cy"}"#);
    let other = submit(&server, r#"{"name":"Di"}"#);
    server.wait_for_doc(&id);
    server.wait_for_doc(&other);

    let out_dir = server.dir.join("out");
    let out = server.cli(&["docs", "get", &id, "--out", out_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out_dir), 0o700);
    assert_eq!(mode(&out_dir.join("submission.json")), 0o600);
    // A second get into the same folder is refused without --force.
    let out = server.cli(&["docs", "get", &id, "--out", out_dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = server.cli(&[
        "docs",
        "get",
        &id,
        "--out",
        out_dir.to_str().unwrap(),
        "--force",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = server.cli(&["docs", "delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.doc_ids(), vec![other]);
    let out = server.cli(&["docs", "delete", &id]);
    assert!(!out.status.success(), "an unknown id is an error");

    let entries = audit_entries(&server);
    let by = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["document_id"] == id.as_str())
            .count()
    };
    assert_eq!(by("cli_read_document"), 2, "{entries:?}");
    assert_eq!(by("erase_document"), 1, "{entries:?}");
    assert!(entries
        .iter()
        .filter(|e| e["document_id"] == id.as_str())
        .all(|e| e["actor"].as_str().unwrap().starts_with("cli:")));
}

#[test]
fn erasing_a_spooled_submission_ends_its_pending_deliveries() {
    let keys = tempdir();
    let client_key = keygen(&keys, "id_ed25519", &["-t", "ed25519"], "");
    let mut sshd = Sshd::start(&[&client_key.with_extension("pub")], false);
    sshd.stop(); // The sink is down: its delivery stays pending or retrying.
    let config = format!(
        r#"
[dispatch]
backoff_base_ms = 600000
backoff_max_ms = 600000

[forms.contact]
sinks = ["docs", "upload"]

[sinks.docs]
type = "documents"

[sinks.upload]
type = "sftp"
host = "127.0.0.1"
port = {port}
user = "root"
private_key_file = "{key}"
host_key_sha256 = "{fpr}"
path = "/tmp"
format = "json"
timeout_secs = 3

{tokens}
"#,
        port = sshd.port,
        key = client_key.display(),
        fpr = sshd.fingerprint,
        tokens = tokens(),
    );
    let server = Server::with_config(&config);
    let id = submit(&server, r#"{"name":"Eve"}"#);
    server.wait_for_doc(&id);
    let path = format!("/api/v1/submissions/{id}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = call(&server, "GET", READER, &path, None);
        let states: Vec<_> = v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["sink"].clone(), d["state"].clone()))
            .collect();
        if states
            .iter()
            .any(|(s, st)| s == "docs" && st == "delivered")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(call(&server, "DELETE", READER, &path, None).0, 403);
    let (s, v) = call(&server, "DELETE", ADMIN, &path, None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["deliveries_ended"], 1, "{v}");
    assert_eq!(v["documents_erased"], 1, "{v}");
    let upload = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["sink"] == "upload")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            upload["state"].as_str(),
            upload["reason"].as_str(),
            upload["failure_reason"].as_str()
        ),
        (Some("dead"), Some("erased"), Some("erased")),
        "{v}"
    );
    assert!(server.doc_ids().is_empty());
    // From then on the submission is gone from the API: status, retry and a second erasure.
    assert_eq!(call(&server, "GET", READER, &path, None).0, 404);
    assert_eq!(
        call(&server, "POST", ADMIN, &format!("{path}/retry"), Some("{}")).0,
        404
    );
    assert_eq!(call(&server, "DELETE", ADMIN, &path, None).0, 404);
    // In the spool's database its pending delivery is dead with reason `erased`, its payload
    // gone, and it is marked erased.
    let row = spool_query(
        &server,
        &format!(
            "SELECT d.state, d.last_error, s.sealed IS NULL, s.erased_ms IS NOT NULL \
             FROM deliveries d JOIN submissions s ON s.id = d.submission_id \
             WHERE d.submission_id = '{id}' AND d.sink = 'upload'"
        ),
    );
    assert_eq!(row, "dead|erased|1|1");
    let unknown = "/api/v1/submissions/01JZZZZZZZZZZZZZZZZZZZZZZZ";
    assert_eq!(call(&server, "DELETE", ADMIN, unknown, None).0, 404);
}

#[test]
fn retention_erases_what_is_older_than_its_form_keeps_and_states_it() {
    let config = format!(
        "[retention]\nsweep_secs = 1\n\n[forms.contact]\nsinks = [\"docs\"]\nretain_days = 7\n\n\
         [sinks.docs]\ntype = \"documents\"\n\n{}",
        tokens()
    );
    // Ten days ago (by a shifted clock): a submission that is past its seven days.
    let server =
        Server::with_config_env(&config, &[("SECUREFORM_TEST_CLOCK_OFFSET_SECS", "-864000")]);
    let old = submit(&server, r#"{"name":"Old"}"#);
    server.wait_for_doc(&old);
    assert_eq!(
        server.doc_ids(),
        vec![old.clone()],
        "not expired by its own clock"
    );
    let (dir, config_path) = server.kill9();

    let server = Server::start_in(&dir, config_path);
    let new = submit(&server, r#"{"name":"New"}"#);
    server.wait_for_doc(&new);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.doc_ids().contains(&old) {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(2500)); // two more sweeps
    assert_eq!(server.doc_ids(), vec![new]);
    let entries = audit_entries(&server);
    assert!(
        entries.iter().any(|e| e["action"] == "erase_document"
            && e["document_id"] == old.as_str()
            && e["actor"] == "service"
            && e["reason"] == "retention"),
        "{entries:?}"
    );

    // The retention is stated to the integrator and on the thank-you page.
    let (_, forms) = call(&server, "GET", ADMIN, "/api/v1/forms", None);
    assert_eq!(forms["forms"][0]["retain_days"], 7, "{forms}");
    let page = client()
        .get(server.url("/f/contact/thanks"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("deleted 7 days after"), "{page}");
}

fn sqlite3(db: &Path, sql: &str) {
    let out = run(
        "sqlite3",
        "sqlite3",
        &[db.to_str().unwrap(), sql],
        Path::new("/"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn audit_verify_detects_an_edited_and_a_removed_entry() {
    // The rows are edited with sqlite3; tests/api/postgres.rs does the same with psql.
    if sqlite_only("editing the audit rows with sqlite3") {
        return;
    }
    let config = format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        tokens()
    );
    let server = Server::with_config(&config);
    let id = submit(&server, r#"{"name":"Fay"}"#);
    server.wait_for_doc(&id);
    for _ in 0..3 {
        assert_eq!(
            call(
                &server,
                "GET",
                READER,
                &format!("/api/v1/documents/{id}"),
                None
            )
            .0,
            200
        );
    }
    let (dir, config_path) = server.kill9();
    let config_path = config_path.unwrap();
    let verify = || cli_in(&dir, &config_path, &["audit", "verify"]);
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 entries"));

    let export = cli_in(&dir, &config_path, &["audit", "export"]);
    assert!(export.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["action"], "service_start");
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);

    let db = dir.join("secureform-data").join("spool").join("spool.db");
    sqlite3(&db, "UPDATE audit SET token = 'mallory' WHERE seq = 3");
    let out = verify();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit entry 3") && err.contains("edited"),
        "{err}"
    );

    sqlite3(&db, "UPDATE audit SET token = 'auditor' WHERE seq = 3");
    assert!(verify().status.success());

    // A cut tail leaves a shorter chain that still holds: the head kept from an earlier
    // verify (its `--json` head_seq and head_hash) is what finds it.
    let out = cli_in(&dir, &config_path, &["audit", "verify", "--json"]);
    let head: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = format!(
        "{}:{}",
        head["head_seq"],
        head["head_hash"].as_str().unwrap()
    );
    let with_head = || cli_in(&dir, &config_path, &["audit", "verify", "--head", &kept]);
    assert!(with_head().status.success());
    let bad = cli_in(&dir, &config_path, &["audit", "verify", "--head", "4:xyz"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SEQ:HASH"));
    sqlite3(&db, "DELETE FROM audit WHERE seq = 4");
    assert!(
        verify().status.success(),
        "without the head the cut is not seen"
    );
    let out = with_head();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 4 is gone"), "{err}");

    sqlite3(&db, "DELETE FROM audit WHERE seq = 2");
    let out = verify();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit entry 3") && err.contains("removed"),
        "{err}"
    );
}

#[test]
fn the_deletion_report_is_signed_and_gpg_verifies_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let home = gpg_home_with_key(&dir, "SecureForm <forms@example.com>");
    let key = dir.join("service.key");
    let out = gpg(
        &home,
        &["--armor", "--export-secret-keys", "forms@example.com"],
    );
    std::fs::write(&key, out.stdout).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("secureform.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\npgp_signing_key = \"service.key\"\n\n[forms.contact]\nsinks = [\"docs\"]\n\n\
             [sinks.docs]\ntype = \"documents\"\n\n{}",
            tokens()
        ),
    )
    .unwrap();
    let server = Server::start_in(&dir, Some(config));
    let id = submit(&server, r#"{"name":"Hal"}"#);
    server.wait_for_doc(&id);
    let (s, _) = call(
        &server,
        "DELETE",
        ADMIN,
        &format!("/api/v1/documents/{id}"),
        None,
    );
    assert_eq!(s, 204);
    assert_eq!(
        call(&server, "GET", READER, "/api/v1/erasures", None).0,
        403
    );
    let (s, v) = call(&server, "GET", ADMIN, "/api/v1/erasures?after=0", None);
    assert_eq!(s, 200, "{v}");
    let text = v["report"].as_str().unwrap();
    let report: Value = serde_json::from_str(text).unwrap();
    let erasure = &report["erasures"][0];
    assert_eq!(erasure["id"], id.as_str(), "{report}");
    assert!(erasure["detail"]
        .as_str()
        .unwrap()
        .contains("sealed_sha256="));
    std::fs::write(dir.join("report.json"), text).unwrap();
    std::fs::write(
        dir.join("report.json.asc"),
        v["signature"].as_str().unwrap(),
    )
    .unwrap();
    let verify = || {
        run(
            "gpg",
            "gnupg",
            &[
                "--homedir",
                home.to_str().unwrap(),
                "--batch",
                "--verify",
                "report.json.asc",
                "report.json",
            ],
            &dir,
        )
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.join("report.json"),
        text.replace(&id, "01JZZZZZZZZZZZZZZZZZZZZZZZ"),
    )
    .unwrap();
    assert!(
        !verify().status.success(),
        "an edited report does not verify"
    );
}

#[test]
fn a_subject_is_found_and_erased_among_many_through_the_blind_index() {
    let config = format!(
        "[forms.contact]\nsinks = [\"docs\"]\nsubject_fields = [\"email\"]\n\n\
         [sinks.docs]\ntype = \"documents\"\n\n{}",
        tokens()
    );
    let server = Server::with_config(&config);
    let mut ann = Vec::new();
    let mut last = String::new();
    for n in 0..150 {
        let email = match n {
            7 => "ann@example.com".to_owned(),
            70 => " Ann@Example.com".to_owned(),
            140 => "ANN@EXAMPLE.COM".to_owned(),
            _ => format!("person{n}@example.com"),
        };
        last = submit(&server, &format!(r#"{{"email":"{email}","n":{n}}}"#));
        if email.trim().eq_ignore_ascii_case("ann@example.com") {
            ann.push(last.clone());
        }
    }
    server.wait_for_doc(&last);
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.doc_ids().len() < 150 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    }
    ann.sort();
    let find = || {
        let out = server.cli(&["docs", "find", "--field", "email=Ann@example.com"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(find(), ann);
    // No plaintext index: the address is nowhere in the spool's database (on the postgres run
    // the database is PostgreSQL's, which tests/api/postgres.rs searches for a canary).
    if !on_postgres() {
        let db = std::fs::read(server.dir.join("secureform-data/spool/spool.db")).unwrap();
        assert!(!contains(&db, b"ann@example.com"));
    }

    let path = "/api/v1/subjects?field=email&value=ann%40example.com";
    assert_eq!(call(&server, "DELETE", READER, path, None).0, 403);
    let (s, v) = call(&server, "DELETE", ADMIN, path, None);
    assert_eq!(s, 200, "{v}");
    let mut erased: Vec<String> = v["erased"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_owned())
        .collect();
    erased.sort();
    assert_eq!(erased, ann);
    assert!(find().is_empty());
    let ids = server.doc_ids();
    assert_eq!(ids.len(), 147);
    assert!(ann.iter().all(|a| !ids.contains(a)));
    let entries = audit_entries(&server);
    let subject_erasures = entries
        .iter()
        .filter(|e| e["action"] == "erase_document" && e["reason"] == "subject")
        .count();
    assert_eq!(subject_erasures, 3, "{entries:?}");
    assert!(entries
        .iter()
        .any(|e| e["action"] == "cli_find_subject" && e["detail"] == "field=email matches=3"));
    let log = server.log_text();
    assert!(!log.to_lowercase().contains("ann@example.com"), "{log}");
}

/// Reads racing an erasure answer 200 with the whole document (before) or 404 (after), never
/// 500 `document_damaged` and never a body cut short: the erasure removes the data key before
/// the items, and a read caught between the two is of a document going away, not of a damaged
/// one; a read that opened the item before the erasure sends it whole.
#[test]
fn reads_racing_an_erasure_answer_200_or_404_never_500() {
    let config = format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        tokens()
    );
    let server = Server::with_config(&config);
    let stop = std::sync::atomic::AtomicBool::new(false);
    for round in 0..5 {
        let id = submit(
            &server,
            &format!(r#"{{"name":"Race {round}","n":{round}}}"#),
        );
        server.wait_for_doc(&id);
        let statuses = std::sync::Mutex::new(Vec::new());
        stop.store(false, std::sync::atomic::Ordering::SeqCst);
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    // A connection per request: a cut body must show here, not be hidden by a
                    // pooled connection's later failure.
                    let fresh = reqwest::blocking::Client::builder()
                        .pool_max_idle_per_host(0)
                        .build()
                        .unwrap();
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let resp = fresh
                            .get(server.url(&format!("/api/v1/documents/{id}")))
                            .bearer_auth(ADMIN)
                            .send()
                            .unwrap();
                        let s = resp.status().as_u16();
                        let seen = match (resp.bytes(), s) {
                            (Ok(b), 200) => {
                                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                                format!("name={}", v["fields"]["name"])
                            }
                            (Ok(b), _) => String::from_utf8_lossy(&b).into_owned(),
                            (Err(e), _) => format!("body cut short: {e}"),
                        };
                        statuses.lock().unwrap().push((s, seen));
                        if s == 404 {
                            break;
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(100));
            let (s, v) = call(
                &server,
                "DELETE",
                ADMIN,
                &format!("/api/v1/documents/{id}"),
                None,
            );
            assert_eq!(s, 204, "{v}");
            std::thread::sleep(Duration::from_millis(200));
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let statuses = statuses.into_inner().unwrap();
        assert!(!statuses.is_empty());
        for (s, seen) in &statuses {
            let whole = format!("name=\"Race {round}\"");
            assert!(
                (*s == 200 && *seen == whole) || *s == 404,
                "round {round}: {s} {seen}"
            );
        }
    }
}

/// Expired Idempotency-Keys are purged by the sweeper (on either spool backend), not only when
/// the same key comes again: a key remembered 49 hours ago is removed, one remembered 47 hours
/// ago stays through several sweeps.
#[test]
fn expired_idempotency_keys_are_purged_and_fresh_ones_kept() {
    let config = format!(
        "[retention]\nsweep_secs = 1\n\n[forms.contact]\nsinks = [\"docs\"]\n\n\
         [sinks.docs]\ntype = \"documents\"\n\n{}",
        tokens()
    );
    let post_with_key = |server: &Server, key: &str| {
        let resp = client()
            .post(server.url("/api/v1/forms/contact/submissions"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(format!(r#"{{"key":"{key}"}}"#))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{}", server.log_text());
    };
    let keys = |server: &Server| -> Vec<String> {
        spool_query(server, "SELECT key FROM idempotency_keys ORDER BY key")
            .lines()
            .map(str::to_owned)
            .collect()
    };
    // 49 hours ago by a shifted clock: a key that has expired by now.
    let server =
        Server::with_config_env(&config, &[("SECUREFORM_TEST_CLOCK_OFFSET_SECS", "-176400")]);
    post_with_key(&server, "expired-key");
    let (dir, config_path) = server.kill9();
    // 47 hours ago: a key still in its window now.
    let server = Server::start_with_env(
        &dir,
        config_path.clone(),
        &[("SECUREFORM_TEST_CLOCK_OFFSET_SECS", "-169200")],
    );
    post_with_key(&server, "fresh-key");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        keys(&server),
        ["expired-key", "fresh-key"],
        "both in their window then"
    );
    let (dir, config_path) = server.kill9();

    // Now: nothing is posted, the sweeper alone removes the expired key.
    let server = Server::start_in(&dir, config_path);
    let deadline = Instant::now() + Duration::from_secs(30);
    while keys(&server).contains(&"expired-key".to_owned()) {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(2500)); // two more sweeps
    assert_eq!(keys(&server), ["fresh-key"]);
    assert!(
        server
            .log_text()
            .contains("expired idempotency keys removed"),
        "{}",
        server.log_text()
    );
}
