//! The Documents store's hardening (issue 15, items 9, 10, 14 and 15): a store per sink, a full
//! disk retried, damaged and deleted documents reported, and no unauthenticated plaintext
//! handed out by `docs get` or the API.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const TOKEN: &str = "sf-documents-test-token";

pub(crate) fn token_lines() -> String {
    format!(
        "[tokens.ops]\nsha256 = \"{}\"\nscopes = [\"read\", \"admin\"]\nforms = [\"*\"]\n",
        sha256_hex(TOKEN.as_bytes())
    )
}

fn api_get(server: &Server, path: &str) -> reqwest::blocking::Response {
    client()
        .get(server.url(path))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
}

/// Posts a multipart submission with one file; returns its id.
pub(crate) fn post(server: &Server, form: &str, file: &[u8]) -> String {
    let body = reqwest::blocking::multipart::Form::new()
        .text("note", "documents-canary")
        .part(
            "scan",
            reqwest::blocking::multipart::Part::bytes(file.to_vec()).file_name("scan.bin"),
        );
    let resp = client()
        .post(server.url(&format!("/f/{form}")))
        .header("accept", "application/json")
        .multipart(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    resp.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until `sink`'s delivery of `id` satisfies `pred`; returns it.
pub(crate) fn wait_delivery(
    server: &Server,
    id: &str,
    sink: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: Value = api_get(server, &format!("/api/v1/submissions/{id}"))
            .json()
            .unwrap();
        let d = v["deliveries"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["sink"] == sink).cloned())
            .unwrap_or(Value::Null);
        if pred(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "{d}\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn delivered(server: &Server, id: &str, sink: &str) {
    wait_delivery(server, id, sink, |d| d["state"] == "delivered");
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn store(server: &Server, sink: &str) -> PathBuf {
    server.dir.join("secureform-data").join("sinks").join(sink)
}

/// Item 9: a plain and a PGP documents sink on one form each keep every submission, the PGP one
/// only PGP-encrypted; `docs` and the API name the store they read.
#[test]
fn two_documents_sinks_each_keep_every_submission_in_their_own_store() {
    let dir = tempdir();
    let home = gpg_home_with_key(&dir, "Alice <alice@example.com>");
    let cert = gpg(&home, &["--armor", "--export", "alice@example.com"]).stdout;
    std::fs::write(dir.join("alice.asc"), cert).unwrap();
    let config = dir.join("secureform.toml");
    let toml = "[forms.intake]\nsinks = [\"plain\", \"vault\"]\n\n[sinks.plain]\n\
                type = \"documents\"\n\n[sinks.vault]\ntype = \"documents\"\n\
                pgp_recipients = [\"alice.asc\"]\n\n";
    std::fs::write(&config, format!("{toml}{}", token_lines())).unwrap();
    let server = Server::start_in(&dir, Some(config));
    let ids: Vec<String> = (0..5)
        .map(|i| post(&server, "intake", &noise(1000, i)))
        .collect();
    for id in &ids {
        delivered(&server, id, "plain");
        delivered(&server, id, "vault");
    }
    let listed = |sink: &str| -> Vec<Value> {
        let out = server.cli(&["docs", "list", "--json", "--sink", sink]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    };
    for (sink, pgp) in [("plain", false), ("vault", true)] {
        let docs = listed(sink);
        assert_eq!(docs.len(), ids.len(), "{sink}: {docs:?}");
        assert!(docs.iter().all(|d| d["pgp"] == pgp), "{sink}: {docs:?}");
    }
    // Without a recipient's key no vault document opens; the plain one does.
    for id in &ids {
        let out_dir = dir.join(format!("out-{id}"));
        let args = [
            "docs",
            "get",
            id,
            "--out",
            out_dir.to_str().unwrap(),
            "--sink",
        ];
        let vault = server.cli(&[&args[..], &["vault"][..]].concat());
        assert!(!vault.status.success() && stderr(&vault).contains("--pgp-key"));
        let plain = server.cli(&[&args[..], &["plain"][..]].concat());
        assert!(plain.status.success(), "{}", stderr(&plain));
    }
    // Not naming the sink is an error that names them; over the API too.
    let out = server.cli(&["docs", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("plain, vault") && stderr(&out).contains("--sink"));
    let resp = api_get(&server, "/api/v1/documents");
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.json::<Value>().unwrap()["error"]["code"],
        "sink_required"
    );
    let page: Value = api_get(&server, "/api/v1/documents?sink=vault")
        .json()
        .unwrap();
    let docs = page["documents"].as_array().unwrap();
    assert_eq!(docs.len(), ids.len());
    assert!(docs.iter().all(|d| d["pgp"] == true));
    let resp = api_get(&server, &format!("/api/v1/documents/{}?sink=vault", ids[0]));
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().unwrap().contains("BEGIN PGP MESSAGE"));
    let resp = api_get(&server, "/api/v1/documents?sink=nope");
    assert_eq!(resp.status().as_u16(), 404);
}

/// Item 9: the single store of an earlier version keeps working: `docs` reads it where it is,
/// and the service moves it to the one documents sink's folder.
#[test]
fn the_store_of_an_earlier_version_is_read_then_moved() {
    let server = Server::with_config(&format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        token_lines()
    ));
    let id = post(&server, "contact", &noise(5000, 1));
    delivered(&server, &id, "docs");
    let (dir, config) = server.kill9();
    // The layout before per-sink stores: one folder, no manifest.
    let data = dir.join("secureform-data");
    std::fs::rename(data.join("sinks").join("docs"), data.join("documents")).unwrap();
    std::fs::remove_file(data.join("documents").join("manifest")).unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&dir).args(args);
        if let Some(c) = &config {
            cmd.arg("--config").arg(c);
        }
        cmd.output().unwrap()
    };
    let out = cli(&["docs", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{}",
        stderr(&out)
    );
    let server = Server::start_in(&dir, config);
    assert!(!data.join("documents").exists());
    assert_eq!(server.doc_ids(), vec![id.clone()]);
    let (doc, files) = server.doc(&id, &[]);
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(files, vec![noise(5000, 1)]);
    // The manifest was written for it: verify finds everything in order.
    let out = server.cli(&["docs", "verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

/// Item 14: an empty id-shaped folder, a folder copied under another id and a swapped
/// `meta.sf` are skipped and reported; a deleted document is noticed by `docs verify`.
#[test]
fn damaged_documents_are_skipped_and_a_deleted_one_is_noticed() {
    let server = Server::with_config(&format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        token_lines()
    ));
    let ids: Vec<String> = (0..4)
        .map(|i| post(&server, "contact", &noise(100, i)))
        .collect();
    for id in &ids {
        delivered(&server, id, "docs");
    }
    let root = store(&server, "docs");
    let empty = ulid::Ulid::new().to_string();
    std::fs::create_dir(root.join(&empty)).unwrap();
    let copied = ulid::Ulid::new().to_string();
    copy_dir(&root.join(&ids[0]), &root.join(&copied));
    std::fs::copy(
        root.join(&ids[2]).join("meta.sf"),
        root.join(&ids[1]).join("meta.sf"),
    )
    .unwrap();

    let out = server.cli(&["docs", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&str> = listed.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[0].as_str(), ids[2].as_str(), ids[3].as_str()]);
    for bad in [&empty, &copied, &ids[1]] {
        assert!(stderr(&out).contains(bad.as_str()), "{}", stderr(&out));
    }
    let resp = api_get(&server, "/api/v1/documents");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.json::<Value>().unwrap()["documents"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("secureform_documents_damaged{sink=\"docs\"} 3"),
        "{metrics}"
    );
    let log = server.log_text();
    assert!(log.contains(&empty) && !log.contains("documents-canary"));

    std::fs::remove_dir_all(root.join(&ids[3])).unwrap();
    let out = server.cli(&["docs", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains(&format!("missing {}", ids[3])), "{text}");
    for bad in [&empty, &copied, &ids[1]] {
        assert!(text.contains(&format!("damaged {bad}")), "{text}");
    }
    assert!(text.contains(&format!("unlisted {empty}")), "{text}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Item 15: a truncated item leaves no plaintext behind `docs get`, and the API answers an
/// error instead of a 200 that stops short.
#[test]
fn a_truncated_item_is_neither_written_nor_served() {
    let server = Server::with_config(&format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        token_lines()
    ));
    let file = noise(300_000, 7);
    let id = post(&server, "contact", &file);
    delivered(&server, &id, "docs");
    // Intact: served whole, with its length announced.
    let resp = api_get(&server, &format!("/api/v1/documents/{id}/files/0"));
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.content_length(), Some(file.len() as u64));
    assert_eq!(resp.bytes().unwrap().as_ref(), &file[..]);

    let item = store(&server, "docs").join(&id).join("files").join("0.sf");
    let len = std::fs::metadata(&item).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&item).unwrap();
    f.set_len(len - 70_000).unwrap();

    let out_dir = server.dir.join("out");
    let out = server.cli(&["docs", "get", &id, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let files = all_files(&out_dir);
    assert_eq!(files, vec![out_dir.join("submission.json")], "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let resp = api_get(&server, &format!("/api/v1/documents/{id}/files/0"));
    assert_eq!(resp.status().as_u16(), 500);
    assert_eq!(
        resp.json::<Value>().unwrap()["error"]["code"],
        "document_damaged"
    );
}

/// Item 9: with several documents sinks, the single store of an earlier version has no clear
/// owner: `check` and `serve` refuse, naming the folder, instead of guessing.
#[test]
fn an_earlier_store_with_several_documents_sinks_is_not_guessed() {
    let dir = tempdir();
    let data = dir.join("secureform-data");
    std::fs::create_dir_all(data.join("documents")).unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    let key = data.join("master.key");
    assert!(run(&["keygen", "--out", key.to_str().unwrap()])
        .status
        .success());
    let config = dir.join("secureform.toml");
    std::fs::write(
        &config,
        "[forms.contact]\nsinks = [\"a\", \"b\"]\n\n[sinks.a]\ntype = \"documents\"\n\n\
         [sinks.b]\ntype = \"documents\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let out = run(&["check", "--config", config]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("several documents sinks (a, b)"),
        "{}",
        stderr(&out)
    );
    let mut child = Command::new(BIN)
        .current_dir(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--config", config])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started beside a store it cannot place");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("several documents sinks"),
        "{}",
        stderr(&out)
    );
    assert!(data.join("documents").is_dir() && !data.join("sinks").join("a").exists());
}

/// `docs get` saves each file as `files/N` (the contract's name) and, under a second name,
/// `files/N-<submitted name>` made safe: no path leaves the folder, no control or invisible
/// bidirectional characters, no leading dots, a bounded length; every file private.
#[test]
fn docs_get_names_files_by_their_sanitized_submitted_names() {
    let server = Server::with_config(&format!(
        "[forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n{}",
        token_lines()
    ));
    let submitted = [
        "../../escape.sh".to_owned(),
        "invoice\u{202E}fdp.exe".to_owned(),
        // (Control characters cannot reach here: a multipart header refuses them, 400.)
        "C:\\Users\\ann\\.hid|den?.txt".to_owned(),
        "same.txt".to_owned(),
        "same.txt".to_owned(),
        "..".to_owned(),
        "報".repeat(120),
    ];
    let mut body = reqwest::blocking::multipart::Form::new().text("note", "names");
    for (n, name) in submitted.iter().enumerate() {
        body = body.part(
            format!("f{n}"),
            reqwest::blocking::multipart::Part::bytes(format!("content {n}").into_bytes())
                .file_name(name.clone()),
        );
    }
    let resp = client()
        .post(server.url("/f/contact"))
        .header("accept", "application/json")
        .multipart(body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let id = resp.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    delivered(&server, &id, "docs");

    let out_dir = server.dir.join("out");
    let get = |extra: &[&str]| {
        let mut args = vec!["docs", "get", &id, "--out", out_dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        server.cli(&args)
    };
    let out = get(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected_names = [
        "0-escape.sh".to_owned(),
        "1-invoicefdp.exe".to_owned(),
        "2-hidden.txt".to_owned(),
        "3-same.txt".to_owned(),
        "4-same.txt".to_owned(),
        "5-file-5".to_owned(),
        format!("6-{}", "報".repeat(66)),
    ];
    let mut expected: Vec<PathBuf> = vec![out_dir.join("submission.json")];
    for (n, name) in expected_names.iter().enumerate() {
        expected.push(out_dir.join("files").join(n.to_string()));
        expected.push(out_dir.join("files").join(name));
    }
    expected.sort();
    let mut files = all_files(&out_dir);
    files.sort();
    assert_eq!(files, expected);
    assert!(!server.dir.join("escape.sh").exists() && !out_dir.join("escape.sh").exists());
    for (n, name) in expected_names.iter().enumerate() {
        let numbered = out_dir.join("files").join(n.to_string());
        let named = out_dir.join("files").join(name);
        assert_eq!(
            std::fs::read(&named).unwrap(),
            format!("content {n}").as_bytes()
        );
        assert_eq!(
            std::fs::read(&numbered).unwrap(),
            format!("content {n}").as_bytes()
        );
        let mode = std::fs::metadata(&named).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{name} is private");
    }
    // The submission keeps the names as submitted; only the saved names are made safe.
    let submission: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("submission.json")).unwrap()).unwrap();
    assert_eq!(submission["files"][1]["filename"], submitted[1].as_str());

    // Taken names are refused without --force, replaced with it (links included).
    let out = get(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    std::fs::write(out_dir.join("files").join("3-same.txt"), b"stale").unwrap();
    let out = get(&["--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(out_dir.join("files").join("3-same.txt")).unwrap(),
        b"content 3"
    );
}
