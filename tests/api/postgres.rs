//! The spool on PostgreSQL (`[storage] backend = "postgres"`): against the real server on
//! 127.0.0.1:5432, each test in a database of its own, dropped at the end.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

use crate::support::*;

const SUBMIT: &str = "pg-submit-token-0123456789abcdef";
const ADMIN: &str = "pg-admin-token-0123456789abcdef";

/// A database of its own, dropped (with its connections) on drop.
struct Db {
    name: String,
}

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Db {
    fn create() -> Db {
        let name = format!("sf_{}", ulid::Ulid::new().to_string().to_lowercase());
        psql("postgres", &format!("CREATE DATABASE {}", name));
        Db { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    fn query(&self, sql: &str) -> String {
        psql(&self.name, sql)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-Atc",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// A configuration on `db`; `key` is the shared key ring's file (none: this instance makes it).
fn config(dir: &Path, db: &Db, key: Option<&Path>, lease_secs: u64) -> PathBuf {
    config_with(
        dir,
        db,
        key,
        lease_secs,
        "[sinks.docs]\ntype = \"documents\"\n",
    )
}

/// [`config`] with `sink` as the `docs` sink's table, and an admin token (`ADMIN`).
fn config_with(dir: &Path, db: &Db, key: Option<&Path>, lease_secs: u64, sink: &str) -> PathBuf {
    std::fs::write(dir.join("pg.url"), db.url()).unwrap();
    let key = key
        .map(|k| format!("master_key_file = \"{}\"\n", k.display()))
        .unwrap_or_default();
    let hash = hex::encode(sha2::Sha256::digest(SUBMIT.as_bytes()));
    let admin_hash = hex::encode(sha2::Sha256::digest(ADMIN.as_bytes()));
    let toml = format!(
        r#"[storage]
backend = "postgres"
postgres_url_file = "pg.url"
pool_size = 4
lease_secs = {lease_secs}
{key}
[forms.contact]
sinks = ["docs"]

{sink}
[tokens.integrator]
sha256 = "{hash}"
scopes = ["submit", "read"]
forms = ["contact"]

[tokens.ops]
sha256 = "{admin_hash}"
scopes = ["admin", "read"]
forms = ["*"]
"#
    );
    let path = dir.join("secureform.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn start(db: &Db, key: Option<&Path>, lease_secs: u64) -> Server {
    let dir = tempdir();
    let config = config(&dir, db, key, lease_secs);
    Server::start_in(&dir, Some(config))
}

fn key_of(server: &Server) -> PathBuf {
    server.dir.join("secureform-data").join("master.key")
}

fn post(server: &Server, body: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = client()
        .post(server.url("/api/v1/forms/contact/submissions"))
        .bearer_auth(SUBMIT)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn submit(server: &Server, body: &str) -> String {
    let (s, v) = post(server, body, None);
    assert_eq!(s, 201, "{v}\n{}", server.log_text());
    v["id"].as_str().unwrap().to_owned()
}

/// Waits until the documents stores of `servers` together hold `wanted`; returns each store's
/// ids.
fn wait_delivered(servers: &[&Server], wanted: &BTreeSet<String>) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let stores: Vec<Vec<String>> = servers.iter().map(|s| s.doc_ids()).collect();
        let all: BTreeSet<String> = stores.iter().flatten().cloned().collect();
        if wanted.is_subset(&all) {
            return stores;
        }
        assert!(
            Instant::now() < deadline,
            "{} never delivered",
            wanted.difference(&all).count()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_api_works_on_postgres_and_only_sealed_bytes_reach_the_database() {
    let db = Db::create();
    let server = start(&db, None, 120);
    let canary = format!("canary-{}", ulid::Ulid::new());

    let id = submit(&server, &format!(r#"{{"secret":"{canary}"}}"#));
    server.wait_for_doc(&id);
    let (doc, _) = server.doc(&id, &[]);
    assert_eq!(doc["fields"]["secret"], canary.as_str());

    // The status API reads the delivery from PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = client()
            .get(server.url(&format!("/api/v1/submissions/{id}")))
            .bearer_auth(SUBMIT)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["deliveries"][0]["state"] == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        db.query(&format!(
            "SELECT state || ',' || (claimed_by IS NULL) FROM deliveries WHERE submission_id = '{id}'"
        ))
        .trim(),
        "delivered,true"
    );

    // An Idempotency-Key gives one submission.
    let first = post(&server, r#"{"n":1}"#, Some("order-1"));
    let again = post(&server, r#"{"n":1}"#, Some("order-1"));
    assert_eq!((first.0, again.0), (201, 201));
    assert_eq!(first.1["id"], again.1["id"]);
    let reused = post(&server, r#"{"n":2}"#, Some("order-1"));
    assert_eq!(reused.0, 422);
    assert_eq!(reused.1["error"]["code"], "idempotency_key_reused");

    // A canary submitted and not yet delivered is in the rows sealed only.
    let pending = format!("canary-{}", ulid::Ulid::new());
    submit(&server, &format!(r#"{{"secret":"{pending}"}}"#));
    let dump =
        db.query("SELECT encode(sealed, 'escape') FROM submissions WHERE sealed IS NOT NULL");
    let rows = db.query(
        "SELECT s::text FROM submissions s UNION ALL SELECT d::text FROM deliveries d \
         UNION ALL SELECT i::text FROM idempotency_keys i",
    );
    for c in [&canary, &pending] {
        assert!(!dump.contains(c.as_str()) && !rows.contains(c.as_str()));
    }
    psql(&db.name, "CHECKPOINT");
    let data_dir = psql("postgres", "SHOW data_directory");
    let data_dir = Path::new(data_dir.trim());
    let mut scanned = 0;
    for file in all_files(data_dir) {
        if let Ok(bytes) = std::fs::read(&file) {
            scanned += 1;
            for c in [&canary, &pending] {
                assert!(
                    !contains(&bytes, c.as_bytes()),
                    "{} holds the plaintext canary",
                    file.display()
                );
            }
        }
    }
    assert!(scanned > 10, "the data directory was read");
}

#[test]
fn two_instances_share_the_work_and_deliver_each_submission_once() {
    let db = Db::create();
    let a = start(&db, None, 120);
    let b = start(&db, Some(&key_of(&a)), 120);
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&a, &b, &a, &b]
            .into_iter()
            .enumerate()
            .map(|(t, server)| {
                scope.spawn(move || {
                    (0..25)
                        .map(|i| submit(server, &format!(r#"{{"t":{t},"n":{i}}}"#)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wanted: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(wanted.len(), 100);
    let stores = wait_delivered(&[&a, &b], &wanted);
    let in_a: BTreeSet<_> = stores[0].iter().cloned().collect();
    let in_b: BTreeSet<_> = stores[1].iter().cloned().collect();
    assert_eq!(in_a.len(), stores[0].len());
    assert_eq!(in_b.len(), stores[1].len());
    assert!(
        in_a.is_disjoint(&in_b),
        "no submission was delivered by both instances"
    );
    assert_eq!(in_a.len() + in_b.len(), 100);
    // A submission accepted by one instance is readable through the other's API.
    let v: Value = client()
        .get(b.url(&format!("/api/v1/submissions/{}", ids[0])))
        .bearer_auth(SUBMIT)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["deliveries"][0]["state"], "delivered", "{v}");
    // An Idempotency-Key sent to both instances gives one submission.
    let first = post(&a, r#"{"n":1}"#, Some("both"));
    let again = post(&b, r#"{"n":1}"#, Some("both"));
    assert_eq!(first.1["id"], again.1["id"]);
}

#[test]
fn a_killed_instances_leases_are_taken_over() {
    let db = Db::create();
    let a = start(&db, None, 2);
    let key = tempdir().join("master.key");
    std::fs::copy(key_of(&a), &key).unwrap();
    let ids: Vec<String> = (0..20)
        .map(|n| submit(&a, &format!(r#"{{"n":{n}}}"#)))
        .collect();
    let _ = a.kill9();
    // Whatever the killed instance had not delivered is now claimed by it (as though it died
    // mid-delivery), its lease running.
    db.query(
        "UPDATE deliveries SET claimed_by = 'killed', \
         lease_until = (extract(epoch from now()) * 1000)::bigint + 2000 \
         WHERE state IN ('pending', 'retrying')",
    );
    let b = start(&db, Some(&key), 2);
    let delivered_by_a: BTreeSet<String> = db
        .query("SELECT submission_id FROM deliveries WHERE state = 'delivered'")
        .lines()
        .map(str::to_owned)
        .collect();
    let rest: BTreeSet<String> = ids
        .iter()
        .filter(|i| !delivered_by_a.contains(*i))
        .cloned()
        .collect();
    wait_delivered(&[&b], &rest);
    assert_eq!(
        db.query(
            "SELECT COUNT(*) FROM deliveries WHERE state != 'delivered' OR claimed_by IS NOT NULL"
        )
        .trim(),
        "0"
    );
}

#[test]
fn an_unreachable_database_makes_the_instance_unready_and_it_recovers() {
    let db = Db::create();
    let server = start(&db, None, 120);
    submit(&server, r#"{"n":0}"#);
    let ready = || {
        client()
            .get(server.url("/readyz"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready(), 200);

    psql(
        "postgres",
        &format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name),
    );
    psql(
        "postgres",
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        ),
    );
    assert_eq!(ready(), 503);
    let (s, v) = post(&server, r#"{"n":1}"#, None);
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "spool_unavailable");

    psql(
        "postgres",
        &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready() != 200 {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let id = submit(&server, r#"{"n":2}"#);
    server.wait_for_doc(&id);
}

#[test]
fn migrate_and_check_test_the_database_and_a_newer_schema_is_refused() {
    let db = Db::create();
    let dir = tempdir();
    let config = config(&dir, &db, None, 120);
    let run = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(&dir)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let check = run(&["check", "--online"]);
    assert!(!check.status.success(), "an empty database is not migrated");
    let migrate = run(&["migrate"]);
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let check = run(&["check", "--online"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}");
    assert!(said.contains("storage: postgres: reachable"), "{said}");

    // A schema a newer build made: this one refuses it.
    db.query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from a newer build', true, '\\x00', 0)",
    );
    assert!(!run(&["check", "--online"]).status.success());
    let serve = Command::new(BIN)
        .current_dir(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!serve.status.success());
    assert!(
        String::from_utf8_lossy(&serve.stderr).contains("99990101000000"),
        "{}",
        String::from_utf8_lossy(&serve.stderr)
    );
}

/// Issue 17 on PostgreSQL: erasing a spooled submission, and the audit chain shared by the
/// instances, verified, then an edited and a removed row detected.
#[test]
fn erasure_and_the_audit_chain_on_postgres() {
    let db = Db::create();
    let dir = tempdir();
    let path = config(&dir, &db, None, 120);
    let server = Server::start_in(&dir, Some(path.clone()));
    let (s, v) = post(&server, r#"{"name":"Gil"}"#, None);
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    server.wait_for_doc(&id);
    let resp = client()
        .get(server.url(&format!("/api/v1/documents/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = client()
        .delete(server.url(&format!("/api/v1/submissions/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(server.doc_ids().is_empty());
    let actions = db.query("SELECT action FROM audit ORDER BY seq");
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        [
            "service_start",
            "read_submission",
            "erase_submission",
            "erase_document"
        ],
        "{actions}"
    );

    let verify = || server.cli(&["audit", "verify"]);
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seqs: Vec<i64> = db
        .query("SELECT seq FROM audit ORDER BY seq")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    db.query(&format!(
        "UPDATE audit SET document_id = 'x' WHERE seq = {}",
        seqs[2]
    ));
    let out = verify();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("audit entry {}", seqs[2])), "{err}");
    db.query(&format!(
        "UPDATE audit SET document_id = '{id}' WHERE seq = {}",
        seqs[2]
    ));
    assert!(verify().status.success());
    db.query(&format!("DELETE FROM audit WHERE seq = {}", seqs[1]));
    let out = verify();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("audit entry {}", seqs[2])), "{err}");
}

/// A `docs` sink that never delivers: a webhook to a port nobody listens on (every attempt fails
/// and is retried), so that what an instance accepts stays in the spool.
fn never_delivering_sink(dir: &Path) -> String {
    std::fs::write(
        dir.join("webhook.secret"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("webhook.secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!(
        "[sinks.docs]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/never\"\n\
         secret_file = \"webhook.secret\"\nallow_private = true\n"
    )
}

/// An instance whose `docs` sink never delivers.
fn start_holding(db: &Db, key: Option<&Path>, lease_secs: u64) -> Server {
    let dir = tempdir();
    let sink = never_delivering_sink(&dir);
    let config = config_with(&dir, db, key, lease_secs, &sink);
    Server::start_in(&dir, Some(config))
}

/// Posts a multipart form with a text field and `files` (field name, file name, bytes) to the
/// form's page; returns the status and the answer.
fn post_files(server: &Server, text: &str, files: &[(&str, &str, &[u8])]) -> (u16, Value) {
    let mut form = reqwest::blocking::multipart::Form::new().text("name", text.to_owned());
    for (field, name, bytes) in files {
        form = form.part(
            field.to_string(),
            reqwest::blocking::multipart::Part::bytes(bytes.to_vec())
                .file_name(name.to_string())
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    }
    let resp = client()
        .post(server.url("/f/contact"))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn segment_rows(db: &Db, id: &str) -> u64 {
    db.query(&format!(
        "SELECT COUNT(*) FROM file_segments WHERE submission_id = '{id}'"
    ))
    .trim()
    .parse()
    .unwrap()
}

/// Waits until submission `id` has no rows of files left.
fn wait_no_segments(db: &Db, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while segment_rows(db, id) != 0 {
        assert!(Instant::now() < deadline, "the rows of {id} stay");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue 16: uploaded files are sealed into PostgreSQL. An instance accepts a submission with
/// files and is killed (SIGKILL) right after its 201, before it delivered anything; a second
/// instance, with a data folder of its own, delivers the files byte for byte. Meanwhile a
/// canary inside a file is in no table and nowhere in PostgreSQL's data directory.
#[test]
fn files_accepted_by_a_killed_instance_are_delivered_by_another_and_stored_sealed() {
    let db = Db::create();
    let a = start_holding(&db, None, 2);
    let key = tempdir().join("master.key");
    std::fs::copy(key_of(&a), &key).unwrap();

    let canary = format!("canary-{}", ulid::Ulid::new());
    // Three rows and a bit: the canary in the first and in the last row.
    let mut big = noise(3 * 1024 * 1024 + 4321, 16);
    big[1000..1000 + canary.len()].copy_from_slice(canary.as_bytes());
    let at = big.len() - 2000;
    big[at..at + canary.len()].copy_from_slice(canary.as_bytes());
    let small = format!("note {canary}").into_bytes();
    let (status, v) = post_files(
        &a,
        "Ann",
        &[("resume", "cv.pdf", &big), ("note", "note.txt", &small)],
    );
    assert_eq!(status, 201, "{v}\n{}", a.log_text());
    let id = v["id"].as_str().unwrap().to_owned();
    let (dir_a, _) = a.kill9();

    // Nothing of the upload stayed on the instance.
    let local = dir_a.join("secureform-data").join("spool").join("files");
    assert!(all_files(&local).is_empty(), "{:?}", all_files(&local));
    // Rows of about 1 MiB, numbered from 0, holding a little more than the plaintext.
    let per_file = db.query(&format!(
        "SELECT file_index, COUNT(*), MAX(segment), SUM(length(sealed)) FROM file_segments \
         WHERE submission_id = '{id}' GROUP BY file_index ORDER BY file_index"
    ));
    let per_file: Vec<Vec<u64>> = per_file
        .lines()
        .map(|l| l.split('|').map(|n| n.parse().unwrap()).collect())
        .collect();
    assert_eq!(per_file.len(), 2, "{per_file:?}");
    assert!(
        (3..=4).contains(&per_file[0][1]) && per_file[0][2] == per_file[0][1] - 1,
        "{per_file:?}"
    );
    assert!(per_file[0][3] > big.len() as u64, "{per_file:?}");
    assert_eq!(&per_file[1][1..3], &[1, 0], "{per_file:?}");

    // The canary is in no column of any table, sealed rows included.
    let hex_canary = hex::encode(canary.as_bytes());
    assert_eq!(
        db.query(&format!(
            "SELECT COUNT(*) FROM file_segments \
             WHERE position('\\x{hex_canary}'::bytea IN sealed) > 0"
        ))
        .trim(),
        "0"
    );
    let rows = db.query(
        "SELECT s::text FROM submissions s UNION ALL SELECT d::text FROM deliveries d \
         UNION ALL SELECT i::text FROM idempotency_keys i UNION ALL SELECT a::text FROM audit a \
         UNION ALL SELECT (f.submission_id, f.file_index, f.segment, f.created_ms)::text \
         FROM file_segments f",
    );
    assert!(rows.contains(&id), "the rows were read");
    assert!(!rows.contains(&canary));
    psql(&db.name, "CHECKPOINT");
    let data_dir = psql("postgres", "SHOW data_directory");
    let mut scanned = 0;
    for file in all_files(Path::new(data_dir.trim())) {
        if let Ok(bytes) = std::fs::read(&file) {
            scanned += 1;
            assert!(
                !contains(&bytes, canary.as_bytes()),
                "{} holds the plaintext canary",
                file.display()
            );
        }
    }
    assert!(scanned > 10, "the data directory was read");

    // A second instance, which never saw the upload, delivers it.
    let b = start(&db, Some(&key), 2);
    b.wait_for_doc(&id);
    let (doc, files) = b.doc(&id, &[]);
    assert_eq!(doc["files"][0]["sha256"], sha256_hex(&big).as_str());
    assert_eq!(doc["files"][1]["sha256"], sha256_hex(&small).as_str());
    assert!(files == vec![big, small], "the files arrive byte for byte");
    // Delivered everywhere: the rows go.
    wait_no_segments(&db, &id);
}

/// Erasing a spooled submission removes its rows of files at once; a request that fails after
/// its file was sealed leaves none; the janitor removes rows no submission has once they are
/// old, and only those.
#[test]
fn erasure_a_failed_request_and_the_janitor_remove_file_segments() {
    let db = Db::create();
    let server = start_holding(&db, None, 120);
    let file = noise(1536 * 1024, 3);
    let (status, v) = post_files(&server, "Gil", &[("doc", "a.bin", &file)]);
    assert_eq!(status, 201, "{v}\n{}", server.log_text());
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(segment_rows(&db, &id), 2);
    let resp = client()
        .delete(server.url(&format!("/api/v1/submissions/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", server.log_text());
    assert_eq!(segment_rows(&db, &id), 0, "erased with the submission");

    // A file sealed, then the request refused (a text field over its limit): nothing stays.
    let before = db.query("SELECT COUNT(*) FROM file_segments");
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "doc",
            reqwest::blocking::multipart::Part::bytes(file.clone())
                .file_name("b.bin")
                .mime_str("application/octet-stream")
                .unwrap(),
        )
        .text("huge", "x".repeat(70 * 1024));
    let sent = client()
        .post(server.url("/f/contact"))
        .header("accept", "application/json")
        .multipart(form)
        .send();
    // The service may answer before it has read the whole body (the client then sees a reset).
    if let Ok(resp) = sent {
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    assert_eq!(before.trim(), "0");
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.query("SELECT COUNT(*) FROM file_segments").trim() != "0" {
        assert!(Instant::now() < deadline, "the refused request's rows stay");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A client that goes mid-file: the rows already written go too.
    let mut conn = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    let head = "POST /f/contact HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
        Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 10000000\r\n\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"c.bin\"\r\n\
        Content-Type: application/octet-stream\r\n\r\n";
    std::io::Write::write_all(&mut conn, head.as_bytes()).unwrap();
    std::io::Write::write_all(&mut conn, &noise(3 * 1024 * 1024, 5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.query("SELECT COUNT(*) FROM file_segments").trim() == "0" {
        assert!(Instant::now() < deadline, "no row of the upload under way");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.query("SELECT COUNT(*) FROM file_segments").trim() != "0" {
        assert!(
            Instant::now() < deadline,
            "the unfinished upload's rows stay"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // What a killed instance left mid-upload: rows without a submission, one set old, one new.
    db.query(
        "INSERT INTO file_segments (submission_id, file_index, segment, sealed, created_ms) VALUES \
         ('OLDORPHAN', 0, 0, '\\x00', 0), ('NEWUPLOAD', 0, 0, '\\x00', DEFAULT)",
    );
    let (dir, config) = server.kill9();
    let restarted = Server::start_in(&dir, config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while segment_rows(&db, "OLDORPHAN") != 0 {
        assert!(Instant::now() < deadline, "{}", restarted.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        segment_rows(&db, "NEWUPLOAD"),
        1,
        "an upload under way stays"
    );
}

/// A large upload streams into PostgreSQL and out to the Documents store with bounded memory:
/// the service's peak resident memory grows by less than 64 MiB. 256 MiB, or the MiB in
/// `SECUREFORM_TEST_LARGE_UPLOAD_MIB` (1024 to try a 1 GiB file).
#[test]
fn a_large_upload_streams_through_postgres_in_bounded_memory() {
    let mib: usize = std::env::var("SECUREFORM_TEST_LARGE_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let size = mib * 1024 * 1024;
    let db = Db::create();
    let server = start(&db, None, 120);
    // Warm up: a small submission with a file, delivered.
    let (status, v) = post_files(&server, "warm", &[("doc", "w.bin", b"warm up")]);
    assert_eq!(status, 201, "{v}");
    server.wait_for_doc(v["id"].as_str().unwrap());
    let before = peak_rss(server.pid());

    let big = noise(size, 256);
    let sha = sha256_hex(&big);
    let started = Instant::now();
    let (status, v) = post_files(&server, "big", &[("doc", "big.bin", &big)]);
    assert_eq!(status, 201, "{v}\n{}", server.log_text());
    let accepted = started.elapsed();
    drop(big);
    let id = v["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !server.doc_ids().contains(&id) {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let delivered = started.elapsed();
    let peak = peak_rss(server.pid());
    let growth = peak.saturating_sub(before);
    eprintln!(
        "{mib} MiB upload: accepted in {accepted:?}, delivered in {delivered:?}; \
         peak RSS {} MiB before, {} MiB after (growth {} MiB)",
        before >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(growth < 64 * 1024 * 1024, "peak RSS grew by {growth} bytes");
    let out = server.cli(&["docs", "list", "--json"]);
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["id"] == id.as_str()));
    let (doc, files) = server.doc(&id, &[]);
    assert_eq!(doc["files"][0]["sha256"], sha.as_str());
    assert_eq!(sha256_hex(&files[0]), sha, "the file arrives whole");
    wait_no_segments(&db, &id);
}

/// Peak resident memory (VmHWM) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// Issue 16: a 30 s database outage under load loses nothing acknowledged. A client posts unique
/// submissions without pause; the database becomes unreachable for 30 s, then comes back. Every
/// answer is a 2xx or a 503 `spool_unavailable`; the instance is ready again by itself (no
/// restart), and every acknowledged submission reaches the Documents store.
#[test]
fn a_30_second_outage_under_load_loses_nothing_acknowledged() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let db = Db::create();
    let server = start(&db, None, 120);
    let ready = || {
        client()
            .get(server.url("/readyz"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(ready(), 200);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (acked, refused, outage, restored) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut acked: Vec<(Instant, String)> = Vec::new();
            let mut refused = 0u32;
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let (status, v) = post(&server, &format!(r#"{{"n":{n}}}"#), None);
                if (200..300).contains(&status) {
                    acked.push((Instant::now(), v["id"].as_str().expect("an id").to_owned()));
                } else {
                    assert_eq!(status, 503, "post {n}: {v}");
                    assert_eq!(v["error"]["code"], "spool_unavailable", "post {n}: {v}");
                    refused += 1;
                    // A refused post answers at once or after the pool's wait: no need to spin.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            (acked, refused)
        });
        std::thread::sleep(Duration::from_secs(4));
        let down = Instant::now();
        psql(
            "postgres",
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name),
        );
        psql(
            "postgres",
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                db.name
            ),
        );
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(ready(), 503, "unready while the database is away");
        std::thread::sleep(Duration::from_secs(28));
        psql(
            "postgres",
            &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name),
        );
        let restored = Instant::now();
        let outage = restored - down;
        std::thread::sleep(Duration::from_secs(5));
        stop.store(true, Ordering::SeqCst);
        let (acked, refused) = load.join().expect("the client thread");
        (acked, refused, outage, restored)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready() != 200 {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered = started.elapsed();
    let wanted: BTreeSet<String> = acked.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(wanted.len(), acked.len(), "every id is its own");
    assert!(refused > 0, "the outage refused posts");
    // The same process acknowledged posts again once the database was back.
    let after = acked.iter().filter(|(at, _)| *at > restored).count();
    assert!(after > 0, "{}", server.log_text());
    let stores = wait_delivered(&[&server], &wanted);
    eprintln!(
        "outage of {outage:?} under load: {} acknowledged ({after} after it), {refused} \
         refused with 503, ready again {recovered:?} after the load began, all {} delivered",
        acked.len(),
        stores[0].len()
    );
}

/// A server that answers every connection's TLS request with `N`, as PostgreSQL with
/// `ssl = off` does; returns its port.
fn server_without_tls() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut request = [0u8; 8];
            if std::io::Read::read_exact(&mut conn, &mut request).is_ok() {
                let _ = std::io::Write::write_all(&mut conn, b"N");
            }
        }
    });
    port
}

/// `[storage] postgres_ssl_mode` and `postgres_ssl_root_cert`: `require` against a server
/// without TLS fails at once with an error that says so; `verify-full` checks the server's
/// certificate (the local server's, for `localhost`): refused without its CA, refused for a
/// name it does not hold, accepted with its CA, and the service's connections are then TLS.
/// An unknown mode is refused at load, naming the key.
#[test]
fn postgres_tls_modes_are_applied_and_fail_clearly() {
    let db = Db::create();
    let dir = tempdir();
    let config = config(&dir, &db, None, 120);
    let text = std::fs::read_to_string(&config).unwrap();
    let with = |url: &str, lines: &str| {
        std::fs::write(dir.join("pg.url"), url).unwrap();
        std::fs::write(
            &config,
            text.replace("pool_size = 4\n", &format!("pool_size = 4\n{lines}\n")),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        let started = Instant::now();
        let out = Command::new(BIN)
            .current_dir(&dir)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let took = started.elapsed();
        eprintln!("{args:?}: {took:?}: {}", said.trim());
        assert!(took < Duration::from_secs(10), "{took:?}: {said}");
        (out.status.success(), said)
    };
    let fails_with = |args: &[&str], wanted: &str| {
        let (ok, said) = run(args);
        assert!(!ok, "{said}");
        assert!(said.to_lowercase().contains(wanted), "{said}");
    };

    // require, and a server that has no TLS.
    let plain = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        server_without_tls(),
        db.name
    );
    with(&plain, "postgres_ssl_mode = \"require\"");
    let (ok, said) = run(&["migrate"]);
    assert!(!ok);
    assert_eq!(
        said.matches("server does not support TLS").count(),
        1,
        "said once: {said}"
    );
    fails_with(&["check", "--online"], "tls");

    // The local server has TLS, with a self-signed certificate for localhost.
    let ca = dir.join("server-ca.pem");
    let cert = psql("postgres", "SHOW ssl_cert_file");
    std::fs::copy(cert.trim(), &ca).unwrap();
    let localhost = format!("postgres://postgres@localhost:5432/{}", db.name);
    with(&localhost, "postgres_ssl_mode = \"verify-full\"");
    fails_with(&["migrate"], "certificate");
    with(
        &db.url(),
        "postgres_ssl_mode = \"verify-full\"\npostgres_ssl_root_cert = \"server-ca.pem\"",
    );
    fails_with(&["migrate"], "certificate");
    with(
        &localhost,
        "postgres_ssl_mode = \"verify-full\"\npostgres_ssl_root_cert = \"server-ca.pem\"",
    );
    let (ok, said) = run(&["migrate"]);
    assert!(ok, "{said}");
    let (ok, said) = run(&["check", "--online"]);
    assert!(ok, "{said}");
    let server = Server::start_in(&dir, Some(config.clone()));
    let id = submit(&server, r#"{"n":1}"#);
    server.wait_for_doc(&id);
    let tls = db.query(&format!(
        "SELECT bool_and(s.ssl), COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a \
         USING (pid) WHERE a.datname = '{}' AND a.pid != pg_backend_pid()",
        db.name
    ));
    let (all_tls, count) = tls.trim().split_once('|').unwrap();
    assert_eq!(
        all_tls, "t",
        "every connection of the service is TLS: {tls}"
    );
    assert!(count.parse::<u32>().unwrap() >= 1, "{tls}");
    drop(server);

    with(&db.url(), "postgres_ssl_mode = \"verify_full\"");
    let (ok, said) = run(&["check"]);
    assert!(!ok);
    assert!(said.contains("postgres_ssl_mode"), "{said}");
    // A root certificate that is not there: named, before any connection.
    with(
        &localhost,
        "postgres_ssl_mode = \"verify-full\"\npostgres_ssl_root_cert = \"missing.pem\"",
    );
    let (ok, said) = run(&["migrate"]);
    assert!(!ok);
    assert!(
        said.contains("postgres_ssl_root_cert") && said.contains("missing.pem"),
        "{said}"
    );
}

/// Runs a PostgreSQL program as the `postgres` user when this test runs as root (the server
/// refuses root), as is otherwise.
fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd.args(args).output().expect("run a PostgreSQL program");
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A private PostgreSQL cluster in /var/tmp with TLS on, its certificate for 127.0.0.1 signed
/// by a test CA; stopped and removed on drop.
struct TlsCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl TlsCluster {
    fn start() -> Option<TlsCluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let dir = PathBuf::from(format!(
            "/var/tmp/sf-pgtls-{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(&dir)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for (name, cn) in [("ca", "SecureForm test CA"), ("other-ca", "Another CA")] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={cn}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .output();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = TlsCluster { dir, bin, port };
        let data = cluster.dir.join("data");
        as_postgres(
            &cluster.bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
            ],
        );
        let d = cluster.dir.display();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(
            &mut conf,
            format!(
                "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\n\
                 fsync = off\nssl = on\nssl_cert_file = '{d}/server.pem'\nssl_key_file = '{d}/server.key'\n"
            )
            .as_bytes(),
        )
        .unwrap();
        as_postgres(
            &cluster.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                cluster.dir.join("log").to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        Some(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn query(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-Atc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args([
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        let _ = Command::new(self.bin.join("pg_ctl"))
            .args([
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// TLS with a real chain: a private cluster whose certificate for 127.0.0.1 is signed by a
/// test CA. `verify-full` with that CA migrates, checks and serves over TLS; with another CA,
/// or none (the built-in roots), it is refused. Then the cluster turns TLS off (`ssl = off`,
/// reloaded): `require` is refused at once, `prefer` connects without TLS.
#[test]
fn verify_full_against_a_cluster_with_a_test_ca_and_require_once_tls_is_off() {
    let Some(cluster) = TlsCluster::start() else {
        eprintln!("no PostgreSQL server programs under /usr/lib/postgresql: skipped");
        return;
    };
    let dir = tempdir();
    std::fs::copy(cluster.dir.join("ca.pem"), dir.join("ca.pem")).unwrap();
    std::fs::copy(cluster.dir.join("other-ca.pem"), dir.join("other-ca.pem")).unwrap();
    std::fs::write(dir.join("pg.url"), cluster.url()).unwrap();
    let hash = hex::encode(sha2::Sha256::digest(SUBMIT.as_bytes()));
    let config = dir.join("secureform.toml");
    let with = |tls: &str| {
        std::fs::write(
            &config,
            format!(
                "[storage]\nbackend = \"postgres\"\npostgres_url_file = \"pg.url\"\npool_size = 2\n\
                 {tls}\n\n[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n\
                 [tokens.integrator]\nsha256 = \"{hash}\"\nscopes = [\"submit\", \"read\"]\n\
                 forms = [\"contact\"]\n"
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        let started = Instant::now();
        let out = Command::new(BIN)
            .current_dir(&dir)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let took = started.elapsed();
        eprintln!("{args:?}: {took:?}: {}", said.trim());
        assert!(took < Duration::from_secs(10), "{took:?}: {said}");
        (out.status.success(), said)
    };

    with("postgres_ssl_mode = \"verify-full\"");
    let (ok, said) = run(&["migrate"]);
    assert!(!ok && said.contains("UnknownIssuer"), "{said}");
    with("postgres_ssl_mode = \"verify-full\"\npostgres_ssl_root_cert = \"other-ca.pem\"");
    let (ok, said) = run(&["migrate"]);
    assert!(!ok && said.contains("certificate"), "{said}");

    with("postgres_ssl_mode = \"verify-full\"\npostgres_ssl_root_cert = \"ca.pem\"");
    let (ok, said) = run(&["migrate"]);
    assert!(ok, "{said}");
    let (ok, said) = run(&["check", "--online"]);
    assert!(
        ok && said.contains("storage: postgres: reachable"),
        "{said}"
    );
    let server = Server::start_in(&dir, Some(config.clone()));
    let id = submit(&server, r#"{"n":1}"#);
    server.wait_for_doc(&id);
    let tls = cluster.query(
        "SELECT bool_and(s.ssl), COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = 'postgres' AND a.backend_type = 'client backend' \
         AND a.pid != pg_backend_pid()",
    );
    assert_eq!(tls.trim().split('|').next(), Some("t"), "{tls}");
    drop(server);

    // The cluster without TLS.
    cluster.query("ALTER SYSTEM SET ssl = off");
    cluster.query("SELECT pg_reload_conf()");
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.query("SHOW ssl").trim() != "off" {
        assert!(Instant::now() < deadline, "ssl stays on");
        std::thread::sleep(Duration::from_millis(100));
    }
    with("postgres_ssl_mode = \"require\"");
    let (ok, said) = run(&["check", "--online"]);
    assert!(
        !ok && said.contains("server does not support TLS"),
        "{said}"
    );
    let (ok, said) = run(&["migrate"]);
    assert!(
        !ok && said.contains("server does not support TLS"),
        "{said}"
    );
    with("postgres_ssl_mode = \"prefer\"");
    let (ok, said) = run(&["check", "--online"]);
    assert!(ok, "{said}");
}
