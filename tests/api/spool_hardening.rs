//! Start-up and the spool under stress (issue 15, items 11, 12, 13 and 16): a missing key file,
//! Idempotency-Keys per form, uploads cut off by a reset, and the data folder's lock,
//! permissions and leftovers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::support::*;

/// Runs `serve` in `dir`, which must refuse to start: its exit code and what it printed. Fails
/// when it is still running after 30 s.
fn serve_refused(dir: &Path, config: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), err)
}

fn post_json(server: &Server, body: &str) -> String {
    let resp = client()
        .post(server.url("/f/contact"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let v: serde_json::Value = resp.json().unwrap();
    v["id"].as_str().unwrap().to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Item 11: a restart without the key file must not make a new key that opens nothing.
#[test]
fn a_missing_key_file_at_restart_refuses_to_start_and_names_the_key_the_data_needs() {
    let server = Server::embedded();
    let id = post_json(&server, r#"{"n":1}"#);
    server.wait_for_doc(&id);
    let log = server.log_text();
    let key_id = log
        .split("key_id=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key id in the log:\n{log}"))
        .to_owned();
    let (dir, config) = server.kill9();
    let key = dir.join("secureform-data").join("master.key");
    std::fs::remove_file(&key).unwrap();

    let (code, err) = serve_refused(&dir, config.as_deref());
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(key.to_str().unwrap()),
        "names the key file: {err}"
    );
    assert!(err.contains(&key_id), "names key {key_id}: {err}");
    assert_eq!(err.matches(&key_id).count(), 1, "said once: {err}");
    assert!(!key.exists(), "no new key was made");

    // Once the key is back, everything opens again.
    let out = Command::new(BIN)
        .current_dir(&dir)
        .args(["docs", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "docs cannot read without the key");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&key_id));
}

/// Item 11: `check` fails on a configured key file that does not exist, and names it.
#[test]
fn check_fails_on_a_missing_master_key_file_and_names_it() {
    let dir = tempdir();
    let path = dir.join("check.toml");
    std::fs::write(
        &path,
        "[storage]\nmaster_key_file = \"keys/absent.key\"\n\n[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(&dir)
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("keys/absent.key"), "{err}");
}

/// Item 12: an Idempotency-Key belongs to (token, form), and a reused key with another body is
/// refused instead of answered with a submission that was never stored.
#[test]
fn idempotency_keys_are_per_form_and_refuse_another_body() {
    let token = "sf_shop_token";
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let server = Server::with_config(&format!(
        "[forms.a]\nsinks = [\"docs\"]\n\n[forms.b]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n\
         [tokens.shop]\nsha256 = \"{hash}\"\nscopes = [\"submit\", \"read\"]\nforms = [\"a\", \"b\"]\n"
    ));
    let post = |form: &str, body: &str| {
        let resp = client()
            .post(server.url(&format!("/api/v1/forms/{form}/submissions")))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("idempotency-key", "order-1")
            .body(body.to_owned())
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<serde_json::Value>().unwrap())
    };
    let (s, first) = post("a", r#"{"item":"lamp"}"#);
    assert_eq!(s, 201, "{first}");
    let (s, other_form) = post("b", r#"{"colour":"red"}"#);
    assert_eq!(s, 201, "{other_form}");
    assert_ne!(
        first["id"], other_form["id"],
        "form b gets its own submission"
    );
    let id_b = other_form["id"].as_str().unwrap();
    let status = client()
        .get(server.url(&format!("/api/v1/submissions/{id_b}")))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(
        status.status().as_u16(),
        200,
        "form b's submission was stored"
    );
    server.wait_for_doc(id_b);

    let (s, repeat) = post("a", r#"{"item":"lamp"}"#);
    assert_eq!((s, &repeat["id"]), (201, &first["id"]), "a true repeat");
    let (s, reused) = post("a", r#"{"item":"chair"}"#);
    assert_eq!(s, 422, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
}

/// Item 13: a client that resets the connection mid-upload leaves no sealed file behind.
#[test]
fn a_reset_mid_upload_leaves_no_spool_files() {
    let server = Server::embedded();
    let files = server
        .dir
        .join("secureform-data")
        .join("spool")
        .join("files");
    let addr = server.base.trim_start_matches("http://").to_owned();
    let listing = || std::fs::read_dir(&files).map(|d| d.count()).unwrap_or(0);
    for seed in 0..2 {
        let mut stream = TcpStream::connect(&addr).unwrap();
        let head = format!(
            "POST /f/contact HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            64 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&noise(4 * 1024 * 1024, seed)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while listing() == 0 {
            assert!(
                Instant::now() < deadline,
                "the upload never reached the spool"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Linger 0: closing sends a reset, not an orderly end.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while listing() != 0 {
        assert!(
            Instant::now() < deadline,
            "spool files left by reset uploads: {:?}",
            all_files(&files)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The service goes on serving.
    post_json(&server, r#"{"after":"resets"}"#);
}

/// Item 16: a second `serve` on the same data folder fails at once, with a clear message.
#[test]
fn a_second_serve_on_the_same_data_folder_fails_fast() {
    let server = Server::embedded();
    let (code, err) = serve_refused(&server.dir, None);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("another `secureform serve`"), "{err}");
    post_json(&server, r#"{"first":"still serves"}"#);
}

/// Item 16: the spool's database files are 0600 (also those of a spool made before), and
/// staging folders a `kill -9` left are removed at start.
#[test]
fn spool_files_are_private_and_a_crash_leaves_no_staging_folder() {
    let server = Server::embedded();
    post_json(&server, r#"{"n":1}"#);
    let spool = server.dir.join("secureform-data").join("spool");
    for name in ["spool.db", "spool.db-wal", "spool.db-shm"] {
        assert_eq!(mode(&spool.join(name)), 0o600, "{name}");
    }
    let (dir, config) = server.kill9();
    // As a spool made before this fix has them, and as a crash mid-store leaves one.
    std::fs::set_permissions(
        spool.join("spool.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let staging = dir
        .join("secureform-data")
        .join("sinks")
        .join("docs")
        .join(".staging-01JQ0000000000000000000000-00000000000000ff");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("meta.sf"), b"half-written").unwrap();

    let server = Server::start_in(&dir, config);
    assert!(!staging.exists(), "the staging folder is gone");
    assert_eq!(mode(&spool.join("spool.db")), 0o600);
    post_json(&server, r#"{"n":2}"#);
}

/// Item 16: a data folder that group or others may write is refused, with the fix named.
#[test]
fn a_group_writable_data_folder_is_refused() {
    let dir = tempdir();
    let data = dir.join("secureform-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o770)).unwrap();
    let (code, err) = serve_refused(&dir, None);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("chmod 700"), "{err}");
}
