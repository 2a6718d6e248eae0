//! PGP double-encrypted documents: opened with a recipient's key by `docs get --pgp-key`, and by
//! the `gpg` command line from the raw messages, with the service's signature verified.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

#[test]
fn double_encrypted_documents_open_with_gpg_and_verify() {
    let dir = tempdir();
    let home = gpg_home_with_key(&dir, "Alice <alice@example.com>");
    gpg(
        &home,
        &[
            "--quick-gen-key",
            "SecureForm <forms@example.com>",
            "default",
            "default",
            "never",
        ],
    );
    let export = |args: &[&str], file: &str| {
        let out = gpg(&home, args);
        let path = dir.join(file);
        std::fs::write(&path, out.stdout).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    export(&["--armor", "--export", "alice@example.com"], "alice.asc");
    export(
        &["--armor", "--export-secret-keys", "alice@example.com"],
        "alice-secret.asc",
    );
    export(
        &["--armor", "--export-secret-keys", "forms@example.com"],
        "service.key",
    );

    let config = dir.join("secureform.toml");
    std::fs::write(
        &config,
        r#"
[storage]
pgp_signing_key = "service.key"

[forms.intake]
sinks = ["vault"]

[sinks.vault]
type = "documents"
pgp_recipients = ["alice.asc"]
"#,
    )
    .unwrap();
    let server = Server::start_in(&dir, Some(config));
    let file = noise(300_000, 3);
    let form = reqwest::blocking::multipart::Form::new()
        .text("diagnosis", "confidential-canary-42")
        .part(
            "scan",
            reqwest::blocking::multipart::Part::bytes(file.clone()).file_name("scan.png"),
        );
    let resp = client()
        .post(server.url("/f/intake"))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let id = resp.json::<serde_json::Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.wait_for_doc(&id);

    // Without the recipient's key the service cannot open it.
    let out = server.cli(&["docs", "get", &id, "--out", dir.join("x").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pgp-key"));

    // With it, our own reader opens it.
    let key = dir.join("alice-secret.asc");
    let (doc, files) = server.doc(&id, &["--pgp-key", key.to_str().unwrap()]);
    assert_eq!(doc["fields"]["diagnosis"], "confidential-canary-42");
    assert_eq!(files, vec![file.clone()]);

    // gpg opens the raw messages and verifies the service's signature.
    let raw = dir.join("raw");
    let out = server.cli(&[
        "docs",
        "get",
        &id,
        "--out",
        raw.to_str().unwrap(),
        "--pgp-raw",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (msg, expected) in [("submission.json.pgp", None), ("files/0.pgp", Some(&file))] {
        let out = gpg(
            &home,
            &[
                "--status-fd",
                "2",
                "--decrypt",
                raw.join(msg).to_str().unwrap(),
            ],
        );
        let status = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.contains("GOODSIG") && status.contains("SecureForm"),
            "{status}"
        );
        match expected {
            Some(bytes) => assert_eq!(&out.stdout, bytes),
            None => {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(v["id"], id.as_str());
            }
        }
    }
    // And the canary is nowhere on disk in the clear.
    for path in all_files(&dir.join("secureform-data")) {
        assert!(!contains(
            &std::fs::read(&path).unwrap(),
            b"confidential-canary-42"
        ));
    }
}
