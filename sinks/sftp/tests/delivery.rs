//! Deliveries to a real OpenSSH server, read back with tools nobody here wrote: Python's json, csv
//! and XML parsers, and gpg.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use secureform_contract::{AtRestLevel, Delivery, FieldValue, Fields, Scalar, Sink};
use secureform_crypto::pgp;
use secureform_sftp::{Config, SftpSink};
use support::*;

fn config(sshd: &Sshd, key: &Path, path: &Path, extra: &str) -> Config {
    toml::from_str(&format!(
        "host = \"127.0.0.1\"\nport = {}\nuser = \"root\"\nprivate_key_file = \"{}\"\n\
         host_key_sha256 = \"{}\"\npath = \"{}\"\ntimeout_secs = 10\n{extra}",
        sshd.port,
        key.display(),
        sshd.fingerprint,
        path.display()
    ))
    .unwrap()
}

/// Fields meant to break naive CSV and XML writers.
fn tricky_fields() -> Fields {
    let mut f = Fields::new();
    f.push("email", "a@example.com");
    f.push("note", "Line 1\r\nLine 2, \"quoted\" <b>&amp;</b> 'x'");
    f.push("formula", "=HYPERLINK(\"http://evil.example\",\"x\")");
    f.push("negative", "-5");
    f.push("topics", "billing");
    f.push("topics", "support");
    f.push("1 bad<name> & \"x\"", "ünïcødé ✓ 😀");
    f.push("control", "a\u{1}b");
    f.insert("count", FieldValue::One(Scalar::Number(42.into())));
    f.insert("ok", FieldValue::One(Scalar::Bool(true)));
    f
}

const READ_JSON: &str =
    "import json, sys\nprint(json.dumps(json.load(open(sys.argv[1], encoding='utf-8'))))";
const READ_CSV: &str = "import csv, json, sys\nprint(json.dumps(list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))))";
const READ_XML: &str = r#"
import base64, json, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
def attr(e, name):
    v = e.get(name)
    return v if v is not None else base64.b64decode(e.get(name + '-base64')).decode()
fields = []
for f in root.find('fields'):
    vals = []
    for v in f.findall('value'):
        t = v.text or ''
        if v.get('encoding') == 'base64':
            t = base64.b64decode(t).decode()
        vals.append([v.get('type'), t])
    fields.append([attr(f, 'name'), vals])
files = [dict(f.attrib) for f in root.find('files')]
print(json.dumps({'root': root.tag, 'attrs': dict(root.attrib), 'fields': fields, 'files': files}))
"#;

fn parsed(script: &str, file: &Path) -> serde_json::Value {
    serde_json::from_str(&python(script, &[file])).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_csv_and_xml_arrive_complete_parse_and_redeliver_to_the_same_names() {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "id_ed25519", &["-t", "ed25519"], "");
    let sshd = Sshd::start(&[&key.with_extension("pub")], false);
    let root = tempfile::tempdir().unwrap();
    let id = ulid(1);
    let big = bytes(3 * 1024 * 1024 + 17, 7);
    let files = vec![big.clone(), Vec::new(), b"small text\n".to_vec()];
    let (s, source) = submission(&id, tricky_fields(), files.clone());

    for format in ["json", "csv", "xml"] {
        // Missing nested folders are created.
        let dir = root.path().join(format).join("in/box");
        let cfg = config(&sshd, &key, &dir, &format!("format = \"{format}\""));
        assert_eq!(cfg.at_rest().level, AtRestLevel::Plaintext);
        let sink = SftpSink::build("upload", &cfg, keys.path(), None)
            .await
            .unwrap();
        assert_eq!(cfg.at_rest().level, AtRestLevel::Plaintext);
        let receipt = sink.deliver(&Delivery::new(&s, &source)).await.unwrap();
        let document = dir.join(format!("{id}.{format}"));
        assert_eq!(receipt.kind, "remote_path");
        assert_eq!(receipt.value, document.display().to_string());
        let expected_listing = vec![
            format!("{id}.{format}"),
            format!("{id}/"),
            format!("{id}/0"),
            format!("{id}/1"),
            format!("{id}/2"),
        ];
        let mut expected_listing = expected_listing;
        expected_listing.sort();
        assert_eq!(listing(&dir), expected_listing, "{}", sshd.log());
        for (i, f) in files.iter().enumerate() {
            assert_eq!(
                &fs::read(dir.join(&id).join(i.to_string())).unwrap(),
                f,
                "file {i}"
            );
        }
        let mode = fs::metadata(&document).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // A redelivery (the dispatcher is at-least-once) leaves the same names, nothing more.
        let first = fs::read(&document).unwrap();
        sink.deliver(&Delivery::new(&s, &source)).await.unwrap();
        assert_eq!(listing(&dir), expected_listing);
        assert_eq!(fs::read(&document).unwrap(), first);
        check_document(format, &document, &s);
    }
}

fn check_document(format: &str, document: &Path, s: &secureform_contract::Submission) {
    match format {
        "json" => assert_eq!(
            parsed(READ_JSON, document),
            serde_json::to_value(s).unwrap()
        ),
        "csv" => {
            let mut header = vec!["id".to_owned(), "form".into(), "received_at".into()];
            let mut row = vec![s.id.clone(), s.form.clone(), s.received_at.clone()];
            for (name, value) in s.fields.iter() {
                header.push(name.into());
                row.push(value.to_text());
            }
            // Spreadsheet formula guard: these cells start with a quote.
            for cell in header.iter_mut().chain(row.iter_mut()) {
                if cell.starts_with(['=', '+', '-', '@']) {
                    cell.insert(0, '\'');
                }
            }
            assert_eq!(parsed(READ_CSV, document), serde_json::json!([header, row]));
            assert!(row.contains(&"'=HYPERLINK(\"http://evil.example\",\"x\")".to_owned()));
        }
        "xml" => {
            let v = parsed(READ_XML, document);
            assert_eq!(v["root"], "submission");
            assert_eq!(v["attrs"]["id"], s.id.as_str());
            assert_eq!(v["attrs"]["received_at"], s.received_at.as_str());
            let expected: Vec<serde_json::Value> = s
                .fields
                .iter()
                .map(|(name, value)| {
                    let values: Vec<_> = value
                        .values()
                        .iter()
                        .map(|v| {
                            let t = match v {
                                Scalar::Bool(_) => serde_json::json!("boolean"),
                                Scalar::Number(_) => serde_json::json!("number"),
                                Scalar::Text(_) => serde_json::Value::Null,
                            };
                            serde_json::json!([t, v.to_text()])
                        })
                        .collect();
                    serde_json::json!([name, values])
                })
                .collect();
            assert_eq!(v["fields"], serde_json::Value::Array(expected));
            assert_eq!(v["files"][0]["filename"], "../../etc/evil 0.pdf");
            assert_eq!(v["files"][2]["size"], "11");
        }
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pgp_files_decrypt_with_gpg_and_verify() {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "id_ed25519", &["-t", "ed25519"], "");
    let (alice_secret, alice_public) = pgp::generate("Alice <alice@example.com>").unwrap();
    let (service_secret, service_public) = pgp::generate("SecureForm <forms@example.com>").unwrap();
    for (name, text) in [
        ("alice.sec", &alice_secret),
        ("alice.asc", &alice_public),
        ("service.sec", &service_secret),
        ("service.asc", &service_public),
    ] {
        let path = keys.path().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let signer = Arc::new(pgp::Signer::load(&keys.path().join("service.sec")).unwrap());
    let sshd = Sshd::start(&[&key.with_extension("pub")], false);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("encrypted");
    // A relative certificate path is resolved against the configuration's folder.
    let cfg = config(&sshd, &key, &dir, "pgp_recipients = [\"alice.asc\"]");
    assert_eq!(cfg.at_rest().level, AtRestLevel::Encrypted);
    let sink = SftpSink::build("upload", &cfg, keys.path(), Some(Arc::clone(&signer)))
        .await
        .unwrap();
    assert_eq!(cfg.at_rest().level, AtRestLevel::Encrypted);

    let id = ulid(2);
    let marker = b"PLAINTEXT-MARKER-".repeat(1000);
    let files = vec![marker.clone(), bytes(1024 * 1024 + 3, 9)];
    let (s, source) = submission(&id, tricky_fields(), files.clone());
    let receipt = sink.deliver(&Delivery::new(&s, &source)).await.unwrap();
    assert_eq!(
        receipt.value,
        dir.join(format!("{id}.json.pgp")).display().to_string()
    );
    let mut expected = vec![
        format!("{id}.json.pgp"),
        format!("{id}/"),
        format!("{id}/0.pgp"),
        format!("{id}/1.pgp"),
    ];
    expected.sort();
    assert_eq!(listing(&dir), expected);

    let gpg = Gpg::new();
    gpg.import(&keys.path().join("alice.sec"));
    gpg.import(&keys.path().join("service.asc"));
    let signer_fpr = signer.fingerprint().to_uppercase();
    let check = |path: &Path| -> Vec<u8> {
        let raw = fs::read(path).unwrap();
        assert!(
            !raw.windows(17).any(|w| w == b"PLAINTEXT-MARKER-"),
            "plaintext on the server"
        );
        assert!(
            !raw.windows(13).any(|w| w == b"a@example.com"),
            "plaintext on the server"
        );
        let (plain, status) = gpg.decrypt(path);
        assert!(status.contains("[GNUPG:] DECRYPTION_OKAY"), "{status}");
        assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
        let valid = status
            .lines()
            .find(|l| l.starts_with("[GNUPG:] VALIDSIG"))
            .unwrap();
        assert!(
            valid.to_uppercase().contains(&signer_fpr),
            "{valid} vs {signer_fpr}"
        );
        plain
    };
    for (i, f) in files.iter().enumerate() {
        assert_eq!(
            &check(&dir.join(&id).join(format!("{i}.pgp"))),
            f,
            "file {i}"
        );
    }
    let json = check(&dir.join(format!("{id}.json.pgp")));
    let back: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, serde_json::to_value(&*s).unwrap());
}
