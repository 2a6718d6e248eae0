//! The console and documents encrypted to OpenPGP recipients (PGP double encryption): the page
//! decrypts them in the browser with the reader's private key, which never reaches the server.
//! The server's side (the OpenPGP messages behind the session, form scoping and the audit log;
//! the page's scripts, integrity and Content-Security-Policy), the list's summaries, and, in
//! headless Chromium (`tests/browser/console_pgp.mjs`), a decryption compared with what `gpg`
//! decrypts from the same document.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::Digest;

use crate::console::{
    assert_private, cookie_value, post, set_cookie, token_lines, Browser, READER,
};
use crate::support::*;

const ADMIN: &str = "pgp-console-admin-token-0123456789";
const PASSPHRASE: &str = "correct horse battery staple";

/// Runs gpg in `home` with `passphrase` for any key it unlocks or protects.
fn gpg_pw(home: &Path, passphrase: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "--homedir",
        home.to_str().unwrap(),
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        passphrase,
    ];
    all.extend_from_slice(args);
    let out = run("gpg", "gnupg", &all, home);
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Keys {
    home: GpgHome,
    /// Alice's secret key, ASCII armored, protected by [`PASSPHRASE`] (a recipient).
    alice_secret: PathBuf,
    /// Bob's secret key, ASCII armored, without a passphrase (not a recipient).
    bob_secret: PathBuf,
}

/// Alice (Curve25519, passphrase) is the forms' recipient; Bob (GnuPG's default, RSA) is not;
/// the service signs with a key of its own.
fn keys(dir: &Path) -> Keys {
    let home = gpg_home_with_key(dir, "Bob <bob@example.com>");
    gpg_pw(
        &home,
        PASSPHRASE,
        &[
            "--quick-gen-key",
            "Alice <alice@example.com>",
            "future-default",
            "default",
            "never",
        ],
    );
    gpg(
        &home,
        &[
            "--quick-gen-key",
            "SecureForm <forms@example.com>",
            "future-default",
            "default",
            "never",
        ],
    );
    let export = |pw: &str, args: &[&str], file: &str| {
        let out = gpg_pw(&home, pw, args);
        let path = dir.join(file);
        std::fs::write(&path, out.stdout).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    export(
        "",
        &["--armor", "--export", "alice@example.com"],
        "alice.asc",
    );
    let alice_secret = export(
        PASSPHRASE,
        &["--armor", "--export-secret-keys", "alice@example.com"],
        "alice-secret.asc",
    );
    let bob_secret = export(
        "",
        &["--armor", "--export-secret-keys", "bob@example.com"],
        "bob-secret.asc",
    );
    export(
        "",
        &["--armor", "--export-secret-keys", "forms@example.com"],
        "service.key",
    );
    Keys {
        home,
        alice_secret,
        bob_secret,
    }
}

/// Form `vault` goes to a Documents sink encrypted to Alice; `plain` to one without recipients;
/// `hidden` to the vault too, but the reader's token may not read it.
fn config(summary: bool) -> String {
    format!(
        "[storage]\npgp_signing_key = \"service.key\"\n\n\
         [console]\nenabled = true\nlist_summary = {summary}\n\n\
         [sinks.vault]\ntype = \"documents\"\npgp_recipients = [\"alice.asc\"]\n\n\
         [sinks.docs]\ntype = \"documents\"\n\n\
         [forms.vault]\nsinks = [\"vault\"]\n\n[forms.plain]\nsinks = [\"docs\"]\n\n\
         [forms.hidden]\nsinks = [\"vault\"]\n\n{}{}",
        token_lines("front-desk", READER, "\"read\"", "\"vault\", \"plain\""),
        token_lines("auditor", ADMIN, "\"read\", \"admin\"", "\"*\""),
    )
}

fn start(dir: &Path, summary: bool) -> Server {
    let path = dir.join("secureform.toml");
    std::fs::write(&path, config(summary)).unwrap();
    Server::start_in(dir, Some(path))
}

/// Waits until the Documents store of sink `sink` holds `id`.
fn wait_for(server: &Server, sink: &str, id: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = server.cli(&["docs", "list", "--json", "--sink", sink]);
        let listed = out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .is_some_and(|docs| docs.iter().any(|d| d["id"] == id));
        if listed {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} never reached {sink}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// What gpg decrypts from the document's raw OpenPGP messages (`docs get --pgp-raw`): the
/// submission's JSON text and the files' bytes.
fn gpg_decrypt(server: &Server, keys: &Keys, id: &str, files: usize) -> (String, Vec<Vec<u8>>) {
    let raw = server.dir.join(format!("raw-{id}"));
    let out = server.cli(&[
        "docs",
        "get",
        id,
        "--sink",
        "vault",
        "--out",
        raw.to_str().unwrap(),
        "--pgp-raw",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decrypt = |msg: &Path| {
        let out = gpg_pw(
            &keys.home,
            PASSPHRASE,
            &["--status-fd", "2", "--decrypt", msg.to_str().unwrap()],
        );
        let status = String::from_utf8_lossy(&out.stderr);
        assert!(status.contains("GOODSIG"), "{status}");
        out.stdout
    };
    let json = String::from_utf8(decrypt(&raw.join("submission.json.pgp"))).unwrap();
    let bytes = (0..files)
        .map(|n| decrypt(&raw.join(format!("files/{n}.pgp"))))
        .collect();
    (json, bytes)
}

fn audit(server: &Server) -> Vec<serde_json::Value> {
    let v: serde_json::Value = client()
        .get(server.url("/api/v1/audit"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["entries"].as_array().unwrap().clone()
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
    )
}

/// The `(src, integrity)` of every `<script>` of `html`.
fn scripts(html: &str) -> Vec<(String, String)> {
    html.split("<script")
        .skip(1)
        .map(|tag| {
            let tag = tag.split('>').next().unwrap();
            let attr = |name: &str| {
                tag.split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("")
                    .to_owned()
            };
            assert!(tag.contains("type=\"module\""), "{tag}");
            (attr("src"), attr("integrity"))
        })
        .collect()
}

#[test]
fn pgp_documents_are_sent_encrypted_scoped_and_audited_and_lists_show_summaries() {
    let dir = tempdir();
    let keys = keys(&dir);
    let server = start(&dir, true);
    let b = Browser {
        server: &server,
        origin: server.base.trim_end_matches('/').to_owned(),
    };
    let file = noise(40_000, 77);
    let id = post(
        &server,
        "vault",
        &[("name", "Zoë 報告 ✓"), ("diagnosis", "canary-pgp-5150")],
        Some(("scan.bin", file.clone())),
    );
    let long = "x".repeat(60);
    let plain = post(
        &server,
        "plain",
        &[
            ("<b>who</b>", "<img src=x onerror=alert(1)>"),
            ("long", &long),
            ("third", "three"),
            ("fourth", "not-in-the-summary"),
        ],
        None,
    );
    let hidden = post(&server, "hidden", &[("secret", "hidden")], None);
    for (sink, d) in [("vault", &id), ("docs", &plain), ("vault", &hidden)] {
        wait_for(&server, sink, d);
    }
    let cookies = format!(
        "sf_console={}",
        cookie_value(&set_cookie(&b.sign_in(READER), "sf_console").unwrap())
    );

    // The page of the PGP document: its own CSP (scripts from this origin, no inline, no eval),
    // the two integrity-checked module scripts, the mode said plainly, the key outside any form.
    let page = b.get(&format!("/console/submissions/vault/{id}"), &cookies);
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(page.headers()["cache-control"], "no-store");
    for part in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self';",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ] {
        assert!(csp.contains(part), "{part} missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.text().unwrap();
    assert!(html.contains(
        "This document is encrypted to your PGP key; it is decrypted in this browser; the key \
         is not sent."
    ));
    assert!(!html.contains("canary-pgp-5150") && !html.contains("Zoë"));
    let forms: Vec<&str> = html.split("<form").skip(1).collect();
    assert!(
        forms
            .iter()
            .all(|f| !f.split("</form>").next().unwrap().contains("key-")),
        "a key input is inside a form: {html}"
    );
    assert!(!html.contains("passphrase\" name=") && !html.contains("key-text\" name="));
    let tags = scripts(&html);
    assert_eq!(tags.len(), 2, "{html}");
    assert!(tags[0].0.contains("/openpgp-6.3.2."), "{tags:?}");
    let recorded = include_str!("../../src/console/vendor/openpgp.min.mjs.sha384").trim();
    assert_eq!(tags[0].1, recorded);
    for (src, integrity) in &tags {
        assert!(src.starts_with("/console/static/"), "{src}");
        let resp = b.get(src, "");
        assert_eq!(resp.status(), 200, "{src}");
        assert_eq!(
            resp.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let body = resp.bytes().unwrap();
        assert_eq!(&sri(&body), integrity, "{src}");
    }
    let vendored = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/vendor/openpgp.min.mjs"),
    )
    .unwrap();
    assert_eq!(b.get(&tags[0].0, "").bytes().unwrap().to_vec(), vendored);
    assert_eq!(b.get("/console/static/nothing.mjs", "").status(), 404);

    // The OpenPGP messages: what gpg decrypts from them is the document, and the server never
    // had the plaintext to send.
    let (gpg_json, gpg_files) = gpg_decrypt(&server, &keys, &id, 1);
    assert_eq!(gpg_files, vec![file.clone()]);
    let msg = b.get(
        &format!("/console/submissions/vault/{id}/pgp/submission"),
        &cookies,
    );
    assert_eq!(msg.status(), 200);
    assert_private(&msg);
    assert_eq!(msg.headers()["content-type"], "application/octet-stream");
    let msg = msg.bytes().unwrap().to_vec();
    assert!(!contains(&msg, b"canary-pgp-5150"));
    let msg_path = dir.join("from-console.pgp");
    std::fs::write(&msg_path, &msg).unwrap();
    let out = gpg_pw(
        &keys.home,
        PASSPHRASE,
        &["--decrypt", msg_path.to_str().unwrap()],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), gpg_json);
    let msg = b.get(
        &format!("/console/submissions/vault/{id}/pgp/files/0"),
        &cookies,
    );
    assert_eq!(msg.status(), 200);
    std::fs::write(&msg_path, msg.bytes().unwrap()).unwrap();
    let out = gpg_pw(
        &keys.home,
        PASSPHRASE,
        &["--decrypt", msg_path.to_str().unwrap()],
    );
    assert_eq!(out.stdout, file);

    // Not signed in: to the sign-in page. Out of reach, unknown, or not a PGP document: 404.
    let resp = b.get(
        &format!("/console/submissions/vault/{id}/pgp/submission"),
        "",
    );
    assert_eq!(resp.status(), 303);
    for path in [
        format!("/console/submissions/vault/{id}/pgp/files/1"),
        format!("/console/submissions/vault/{hidden}/pgp/submission"),
        format!("/console/submissions/docs/{plain}/pgp/submission"),
        format!("/console/submissions/docs/{id}/pgp/submission"),
        format!("/console/submissions/vault/{id}/files/0"),
        "/console/submissions/vault/not-an-id/pgp/submission".to_owned(),
    ] {
        assert_eq!(b.get(&path, &cookies).status(), 404, "{path}");
    }
    // A document without recipients keeps the page without any script.
    let resp = b.get(&format!("/console/submissions/docs/{plain}"), &cookies);
    assert_private(&resp);
    assert!(!resp.text().unwrap().contains("<script"));

    // Lists: the PGP document says it is encrypted; the other shows its first three fields,
    // escaped and cut at 40 characters.
    let list = b.get("/console/forms/vault", &cookies).text().unwrap();
    assert!(list.contains("Encrypted to PGP recipients"), "{list}");
    assert!(!list.contains("canary-pgp-5150") && !list.contains("Zoë"));
    let list = b.get("/console/forms/plain", &cookies);
    assert_private(&list);
    let list = list.text().unwrap();
    assert!(list.contains("<th scope=\"col\">Summary</th>"), "{list}");
    assert!(
        list.contains("&lt;b&gt;who&lt;/b&gt;:</span> &lt;img src=x onerror=alert(1)&gt;"),
        "{list}"
    );
    assert!(list.contains(&format!("{}…", "x".repeat(40))), "{list}");
    assert!(!list.contains(&"x".repeat(41)), "{list}");
    assert!(list.contains("three") && !list.contains("not-in-the-summary"));
    assert!(!list.contains("<img") && !list.contains("<b>who"), "{list}");

    // The audit log: each OpenPGP message sent, and each summary shown, with the token's name.
    let entries = audit(&server);
    let has = |action: &str, doc: &str, detail: &str| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["token"] == "front-desk"
                && e["document_id"] == doc
                && e["detail"] == detail
        })
    };
    assert!(
        has("console_read_submission", &id, "sink=vault openpgp"),
        "{entries:?}"
    );
    assert!(
        has("console_read_file", &id, "sink=vault openpgp"),
        "{entries:?}"
    );
    assert!(
        has("console_read_submission", &plain, "sink=docs summary"),
        "{entries:?}"
    );
    assert!(!entries.iter().any(|e| e["document_id"] == hidden.as_str()));
    assert!(
        !entries
            .iter()
            .any(|e| e["document_id"] == id.as_str() && e["detail"] == "sink=vault summary"),
        "a PGP document was summarized"
    );
    drop(server);

    // `list_summary = false`: no summary, nothing read, nothing recorded for the list.
    let server = start(&dir, false);
    let b = Browser {
        server: &server,
        origin: server.base.trim_end_matches('/').to_owned(),
    };
    let cookies = format!(
        "sf_console={}",
        cookie_value(&set_cookie(&b.sign_in(READER), "sf_console").unwrap())
    );
    let before = audit(&server).len();
    let list = b.get("/console/forms/plain", &cookies).text().unwrap();
    assert!(list.contains(&plain) && !list.contains("Summary"), "{list}");
    assert!(!list.contains("three"), "{list}");
    assert_eq!(audit(&server).len(), before);
}

/// In headless Chromium: sign in, open the PGP document, fail with a key that is not a
/// recipient's, decrypt with Alice's key file and passphrase, save the file; the fields and the
/// file are what gpg decrypts; no request carries the key or the passphrase; a tampered
/// OpenPGP.js does not run. Screenshots, light and dark, desktop and 360 px.
#[test]
fn pgp_documents_decrypt_in_a_real_browser() {
    use crate::browser::{artifacts_dir, require_tools, CHROMIUM};
    require_tools();
    let dir = tempdir();
    let keys = keys(&dir);
    let server = start(&dir, true);
    let file = noise(120_000, 4242);
    let id = post(
        &server,
        "vault",
        &[
            ("name", "Zoë 報告 ✓"),
            ("message", "Grüße — \"quoted\" <b>not bold</b>\nsecond line"),
            ("<img src=x onerror=alert(1)>", "javascript:alert(2)"),
            ("7", "a field named like a number keeps its place"),
        ],
        Some(("../Zoë <scan>.bin", file.clone())),
    );
    let plain = post(
        &server,
        "plain",
        &[("who", "<img src=x onerror=alert(3)>"), ("city", "Zürich")],
        None,
    );
    wait_for(&server, "vault", &id);
    wait_for(&server, "docs", &plain);
    let (gpg_json, gpg_files) = gpg_decrypt(&server, &keys, &id, 1);
    assert_eq!(gpg_files, vec![file.clone()]);

    let alice = std::fs::read_to_string(&keys.alice_secret).unwrap();
    // The body of the armored key (what would leak if any request carried it).
    let secret_lines: Vec<&str> = alice
        .lines()
        .filter(|l| l.len() > 40 && !l.starts_with("-----"))
        .collect();
    assert!(secret_lines.len() > 3);
    let input = serde_json::json!({
        "base": server.base.trim_end_matches('/'),
        "token": READER,
        "id": id,
        "plain": plain,
        "keyFile": keys.alice_secret,
        "wrongKey": std::fs::read_to_string(&keys.bob_secret).unwrap(),
        "passphrase": PASSPHRASE,
        "secretLines": secret_lines,
        "chromium": CHROMIUM,
        "artifacts": artifacts_dir(),
    });
    let results = crate::browser::run_node_script("console_pgp.mjs", &input, &dir, "");

    // The fields the page rendered are gpg's, in the same order, value for value.
    let expected: Vec<(String, String)> = {
        let v: serde_json::Value = serde_json::from_str(&gpg_json).unwrap();
        // serde_json keeps the order as written (the preserve_order feature is not needed:
        // read the names from the text itself to be sure).
        let fields = v["fields"].as_object().unwrap();
        let start = gpg_json.find("\"fields\":{").unwrap();
        let mut names: Vec<(usize, &String)> = fields
            .keys()
            .map(|k| {
                let quoted = serde_json::to_string(k).unwrap();
                (gpg_json[start..].find(&format!("{quoted}:")).unwrap(), k)
            })
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|(_, k)| {
                let text = match &fields[k] {
                    serde_json::Value::Array(vs) => vs
                        .iter()
                        .map(|x| x.as_str().map(str::to_owned).unwrap_or(x.to_string()))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    x => x.as_str().map(str::to_owned).unwrap_or(x.to_string()),
                };
                (k.clone(), text)
            })
            .collect()
    };
    let rendered: Vec<(String, String)> = results["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_owned(),
                r[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rendered, expected);
    assert_eq!(rendered[0].1, "Zoë 報告 ✓");
    assert_eq!(rendered[3].0, "7", "a numeric name moved: {rendered:?}");
    let downloaded = std::fs::read(results["download"].as_str().unwrap()).unwrap();
    assert_eq!(
        downloaded, gpg_files[0],
        "the download is not what gpg decrypts"
    );
    assert_eq!(results["suggested"], "Zoë scan.bin");
    for shot in results["screenshots"].as_array().unwrap() {
        assert!(std::fs::metadata(shot.as_str().unwrap()).unwrap().len() > 1000);
    }
    // The server saw no key: not in its log, not in its data folder.
    let log = server.log_text();
    for line in &secret_lines {
        assert!(!log.contains(line));
    }
    assert!(!log.contains(PASSPHRASE));
}
