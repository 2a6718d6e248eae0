//! The example web forms of `examples/web` in a real browser (issue 8): Debian's headless
//! Chromium, driven by `tests/browser/run.mjs` (playwright-core), fills and sends each page
//! against the real binary; this side then finds each submission in the Documents store, byte for
//! byte, and checks what must not be there. The pages are served by a small static site on its
//! own loopback port, so they have a real `http://` origin that is not SecureForm's; a second
//! site is an origin no form allows.

mod site;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{noise, sha256_hex, tempdir, Server, BIN};
use site::{examples_dir, Site, PAGES, SHIPPED_ENDPOINT};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("browser")
}

/// Fails, never skips, naming what to install when a tool is missing.
pub(crate) fn require_tools() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install the Debian package chromium (apt-get install chromium)"
    );
    let node = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .expect("node is missing: install the Debian packages nodejs and npm");
    let version = String::from_utf8_lossy(&node.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 18,
        "node {} is too old: the browser tests need Node.js 18 or newer",
        version.trim()
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` \
         (Debian packages nodejs and npm)"
    );
}

/// `<target>/browser-artifacts`, next to the binary under test (never in the repository).
pub(crate) fn artifacts_dir() -> PathBuf {
    let target = Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in <target>/<profile>/");
    target.join("browser-artifacts")
}

/// `examples/web/secureform.toml` as shipped, with its data folder made local, the test site's
/// origin allowed, and two more forms: one with a `redirect`, one with a sink not encrypted at
/// rest (an email sink in `tls` mode, whose server is never reached), so that answers carry
/// warnings.
fn examples_config(site: &str) -> String {
    let shipped = std::fs::read_to_string(examples_dir().join("secureform.toml")).unwrap();
    let config = shipped
        .replace(
            r#"data_dir = "../../secureform-data""#,
            r#"data_dir = "./secureform-data""#,
        )
        .replace(
            r#"allowed_origins = ["http://localhost:8000", "http://127.0.0.1:8000"]"#,
            &format!(r#"allowed_origins = ["{site}"]"#),
        );
    assert!(
        config.contains(&format!("[\"{site}\"]")) && config.contains("\"./secureform-data\""),
        "examples/web/secureform.toml changed: update examples_config()"
    );
    config
        + &format!(
            r#"
[forms.signup]
sinks = ["docs"]
honeypot = "_gotcha"
allowed_origins = ["{site}"]
redirect = "{site}/done"

[forms.feedback]
sinks = ["docs", "mail"]
honeypot = "_gotcha"
allowed_origins = ["{site}"]

[sinks.mail]
type = "email"
mode = "tls"
smtp_url = "smtp://127.0.0.1:9"
from = "forms@example.com"
to = ["team@example.com"]
"#
        )
}

/// The files the application form uploads: (path, bytes).
fn uploads(dir: &Path) -> [(PathBuf, Vec<u8>); 2] {
    let mut cv = b"%PDF-1.7\n".to_vec();
    cv.extend(noise(300_000, 8));
    let cover = "Dear team,\r\nI would like to apply \u{2013} twice.\n\u{1f680}\0\u{ff}"
        .as_bytes()
        .to_vec();
    let files = [
        (dir.join("Lebenslauf Zo\u{eb}.pdf"), cv),
        (dir.join("cover letter.txt"), cover),
    ];
    for (path, bytes) in &files {
        std::fs::write(path, bytes).unwrap();
    }
    files
}

/// Runs `run.mjs`; returns what it saw, or fails with its whole report.
fn run_browser(input: &Value, dir: &Path) -> Value {
    run_node_script("run.mjs", input, dir, "")
}

/// Runs `tests/browser/<script>` under node's test runner with `input` (written into `dir`, the
/// script reads it from `SF_BROWSER_INPUT`) and returns the results it wrote to
/// `SF_BROWSER_RESULTS`. Fails with the runner's whole report, and `context` (e.g. the server's
/// log), when a test failed or none ran.
pub(crate) fn run_node_script(script: &str, input: &Value, dir: &Path, context: &str) -> Value {
    let stem = script.trim_end_matches(".mjs");
    let input_path = dir.join(format!("{stem}-input.json"));
    let results_path = dir.join(format!("{stem}-results.json"));
    std::fs::write(&input_path, serde_json::to_vec_pretty(input).unwrap()).unwrap();
    let out = Command::new("node")
        .arg("--test-reporter=spec")
        .arg(script)
        .current_dir(browser_dir())
        .env("SF_BROWSER_INPUT", &input_path)
        .env("SF_BROWSER_RESULTS", &results_path)
        .output()
        .expect("node is missing: install the Debian packages nodejs and npm");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the browser test {script} failed:\n{report}\n{context}"
    );
    assert!(
        report.contains("fail 0") && !report.contains("pass 0"),
        "the browser test {script} ran nothing:\n{report}\n{context}"
    );
    serde_json::from_slice(&std::fs::read(&results_path).unwrap()).unwrap()
}

/// A file the Documents store must hold, byte for byte.
struct Expected<'a> {
    field: &'a str,
    filename: &'a str,
    content_type: &'a str,
    bytes: &'a [u8],
}

/// The submission `id` in `server`'s Documents store: its fields, in this order, and its files.
fn assert_doc(
    server: &Server,
    id: &str,
    source: &str,
    fields: &[(&str, Value)],
    files: &[Expected],
) {
    server.wait_for_doc(id);
    let (doc, text, bytes) = server.doc_raw(id, &[]);
    assert_eq!(doc["source"], source, "{text}");
    let want: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    assert_eq!(doc["fields"], Value::Object(want), "{text}");
    let body = &text[text.find("\"fields\"").unwrap()..];
    let at: Vec<usize> = fields
        .iter()
        .map(|(k, _)| body.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "fields out of order: {text}"
    );
    let metas = doc["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(metas.len(), files.len(), "{text}");
    for (i, f) in files.iter().enumerate() {
        assert!(
            bytes[i] == f.bytes,
            "file {i} ({}) is not byte-exact",
            f.field
        );
        assert_eq!(
            metas[i],
            json!({"field": f.field, "filename": f.filename, "content_type": f.content_type,
                   "size": f.bytes.len(), "sha256": sha256_hex(f.bytes)}),
            "{text}"
        );
    }
}

/// The ids and forms in a server's Documents store.
fn docs(server: &Server) -> Vec<(String, String)> {
    let out = server.cli(&["docs", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["form"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn example_pages_in_headless_chromium() {
    require_tools();
    for page in PAGES {
        let html = std::fs::read_to_string(examples_dir().join(page)).unwrap();
        assert!(
            html.contains(SHIPPED_ENDPOINT),
            "{page} no longer posts to {SHIPPED_ENDPOINT}"
        );
    }
    // Site A serves the pages (its origin allowed by the examples configuration); site B is
    // another origin, allowed nowhere.
    let site = Site::start();
    let foreign = Site::start();
    let embedded = Server::embedded();
    let examples = Server::with_config(&examples_config(&site.origin));
    let contact = |s: &Server| s.url("/f/contact");
    site.route("embedded", &contact(&embedded));
    site.route("examples", &contact(&examples));
    site.route("signup", &examples.url("/f/signup"));
    site.route("feedback", &examples.url("/f/feedback"));
    foreign.route("examples", &contact(&examples));

    let dir = tempdir();
    let [(cv_path, cv), (cover_path, cover)] = uploads(&dir);
    let message = "Hello,\nthe invoice \u{2013} \u{2116}42 \u{2013} is wrong \u{2713}";
    let input = json!({
        "chromium": CHROMIUM,
        "artifacts": artifacts_dir(),
        "secureform": {"embedded": embedded.base, "examples": examples.base},
        "pages": {
            "contact": site.page("embedded", "contact.html"),
            "apply": site.page("embedded", "apply.html"),
            "themed": site.page("examples", "contact.html"),
            "foreignContact": foreign.page("examples", "contact.html"),
            "redirect": site.page("signup", "contact.html"),
            "fetchAllowed": site.page("examples", "fetch.html"),
            "fetchWarnings": site.page("feedback", "fetch.html"),
            "fetchForeign": foreign.page("examples", "fetch.html"),
            "fetchEmbedded": site.page("embedded", "fetch.html"),
        },
        "done": format!("{}/done", site.origin),
        "thanks": {
            "embedded": {"title": "Thank you"},
            "themed": {"title": "Thank you, we have it",
                       "message": "Your message is stored encrypted. We will answer within two working days."},
        },
        "values": {
            "contact": {"name": "Zo\u{eb} \u{c5}ngstr\u{f6}m", "email": "zoe@example.com",
                        "subject": "billing", "reach_by": ["email", "phone"], "message": message},
            "apply": {"name": "Jean-Luc Picard", "email": "jl@example.org", "position": "designer",
                      "start_date": "2026-03-01", "about": "Two lines\nof text", "consent": true},
            "fetch": {"name": "Ann", "email": "ann@example.com", "rating": 4,
                      "topics": ["forms", "api"], "message": "Line one\nline two \u{2713}",
                      "subscribe": true},
        },
        "files": {"cv": cv_path, "cover": cover_path},
    });
    let seen = run_browser(&input, &dir);
    let id = |name: &str| seen[name]["id"].as_str().unwrap().to_owned();

    // What a browser sends: every field in document order, the honeypot removed, line breaks
    // in a textarea as CRLF (the HTML standard's form encoding), files untouched.
    let contact_fields = [
        ("name", json!("Zo\u{eb} \u{c5}ngstr\u{f6}m")),
        ("email", json!("zoe@example.com")),
        ("subject", json!("billing")),
        ("reach_by", json!(["email", "phone"])),
        ("message", json!(message.replace('\n', "\r\n"))),
    ];
    assert_doc(
        &embedded,
        &id("contact"),
        "urlencoded",
        &contact_fields,
        &[],
    );
    let apply_fields = [
        ("name", json!("Jean-Luc Picard")),
        ("email", json!("jl@example.org")),
        ("position", json!("designer")),
        ("start_date", json!("2026-03-01")),
        ("about", json!("Two lines\r\nof text")),
        ("consent", json!("yes")),
    ];
    let apply_files = [
        Expected {
            field: "cv",
            filename: "Lebenslauf Zo\u{eb}.pdf",
            content_type: "application/pdf",
            bytes: &cv,
        },
        Expected {
            field: "cover_letter",
            filename: "cover letter.txt",
            content_type: "text/plain",
            bytes: &cover,
        },
    ];
    assert_doc(
        &embedded,
        &id("apply"),
        "multipart",
        &apply_fields,
        &apply_files,
    );
    // The honeypot submission got the same answer, and nothing was kept.
    let stored: Vec<String> = docs(&embedded).into_iter().map(|(id, _)| id).collect();
    assert!(!stored.contains(&id("honeypot")));
    assert_eq!(stored.len(), 2, "{stored:?}");

    assert_doc(&examples, &id("themed"), "urlencoded", &contact_fields, &[]);
    let fetch_fields = [
        ("name", json!("Ann")),
        ("email", json!("ann@example.com")),
        ("rating", json!(4)),
        ("topics", json!(["forms", "api"])),
        ("message", json!("Line one\nline two \u{2713}")),
        ("subscribe", json!(true)),
    ];
    assert_doc(&examples, &id("fetchAllowed"), "json", &fetch_fields, &[]);
    assert_doc(&examples, &id("fetchWarnings"), "json", &fetch_fields, &[]);
    let warnings = seen["fetchWarnings"]["warnings"].to_string();
    assert!(warnings.contains("mail"), "{warnings}");
    assert_eq!(seen["fetchAllowed"]["warnings"], json!([]));
    // The redirected form was stored; the refused posts (required field missing, foreign origin,
    // foreign fetch) never were.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !docs(&examples).iter().any(|(_, form)| form == "signup") {
        assert!(
            std::time::Instant::now() < deadline,
            "the redirected submission never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut forms: Vec<String> = docs(&examples).into_iter().map(|(_, f)| f).collect();
    forms.sort();
    assert_eq!(forms, ["contact", "contact", "feedback", "signup"]);

    for name in ["thanks-default", "thanks-themed"] {
        let path = seen["screenshots"][name].as_str().unwrap();
        let png = std::fs::read(path).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{path}"
        );
        assert!(Path::new(path).starts_with(artifacts_dir()));
    }
}
