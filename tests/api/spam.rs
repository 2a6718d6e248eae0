//! Spam protection checked on this server (issue 19): ALTCHA-format proof-of-work challenges
//! from `GET /f/{form}/challenge`, solved here as the widget solves them, verified on post,
//! single use (a replay is 422 `captcha_replayed`), `min_submit_secs`, and refused spam counted
//! in `/metrics` and never stored. The real widget in Chromium is in `browser.rs`.

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::support::{client, Server};

const KEY_ENV: &str = "SF_TEST_ALTCHA_KEY";
const KEY: &str = "0123456789abcdef0123456789abcdef-test-key";

fn config() -> String {
    r#"
[forms.pow]
sinks = ["docs"]
honeypot = "_gotcha"
captcha = { provider = "altcha", secret_env = "SF_TEST_ALTCHA_KEY", max_number = 20000 }

[forms.slow]
sinks = ["docs"]
min_submit_secs = 600
captcha = { provider = "altcha", secret_env = "SF_TEST_ALTCHA_KEY", max_number = 2000 }

[forms.plain]
sinks = ["docs"]

[sinks.docs]
type = "documents"
"#
    .to_owned()
}

/// Finds the number as the widget does: SHA-256(salt ‖ decimal(n)) == challenge.
pub fn solve(challenge: &Value) -> String {
    let salt = challenge["salt"].as_str().unwrap();
    let target = challenge["challenge"].as_str().unwrap();
    let max = challenge["maxnumber"].as_u64().unwrap();
    let number = (0..=max)
        .find(|n| {
            let mut h = Sha256::new();
            h.update(salt.as_bytes());
            h.update(n.to_string().as_bytes());
            hex::encode(h.finalize()) == target
        })
        .expect("the challenge has a solution");
    let payload = json!({"algorithm": challenge["algorithm"], "challenge": target,
        "number": number, "salt": salt, "signature": challenge["signature"], "took": 1});
    base64::engine::general_purpose::STANDARD.encode(payload.to_string())
}

fn metric(text: &str, form: &str, code: &str) -> u64 {
    let key = format!("secureform_submissions_rejected_total{{form=\"{form}\",code=\"{code}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn altcha_challenge_verified_single_use_and_spam_never_stored() {
    let server = Server::with_config_env(&config(), &[(KEY_ENV, KEY)]);
    let http = client();
    let get = |form: &str| {
        let r = http
            .get(server.url(&format!("/f/{form}/challenge")))
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    let post = |form: &str, fields: Value| {
        let r = http
            .post(server.url(&format!("/f/{form}")))
            .json(&fields)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };

    let (status, challenge) = get("pow");
    assert_eq!(status, 200, "{challenge}");
    assert_eq!(challenge["algorithm"], "SHA-256");
    assert_eq!(challenge["maxnumber"], 20000);
    assert!(challenge["salt"].as_str().unwrap().contains("?expires="));
    let (status, body) = get("plain");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("captcha_not_configured"))
    );
    let (status, body) = get("nope");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_form"))
    );

    // Solved once: stored, without the solution.
    let solution = solve(&challenge);
    let canary = "canary-pow-7781";
    let (status, body) = post("pow", json!({"message": canary, "altcha": solution}));
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    server.wait_for_doc(&id);
    let (doc, _) = server.doc(&id, &[]);
    assert_eq!(doc["fields"]["message"], canary);
    assert!(doc["fields"].get("altcha").is_none(), "{doc}");

    // The same solution again: refused, machine-readable.
    let (status, body) = post("pow", json!({"message": "replayed", "altcha": solution}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("captcha_replayed")),
        "{body}"
    );
    // No solution, a forged one (signature of another challenge), too fast.
    let (status, body) = post("pow", json!({"message": "none"}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("captcha_failed"))
    );
    let (_, other) = get("pow");
    let mut forged: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(solve(&other))
            .unwrap(),
    )
    .unwrap();
    forged["signature"] = challenge["signature"].clone();
    let forged = base64::engine::general_purpose::STANDARD.encode(forged.to_string());
    let (status, body) = post("pow", json!({"message": "forged", "altcha": forged}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("captcha_failed"))
    );
    let (_, slow) = get("slow");
    let (status, body) = post("slow", json!({"message": "fast", "altcha": solve(&slow)}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("submitted_too_fast")),
        "{body}"
    );
    // A browser post (urlencoded, as the widget's form sends it) is checked the same way.
    let r = http
        .post(server.url("/f/pow"))
        .header("accept", "application/json")
        .form(&[("message", "urlencoded"), ("altcha", solution.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);

    // Refused spam is counted and never stored.
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(metric(&metrics, "pow", "captcha_replayed"), 2, "{metrics}");
    assert_eq!(metric(&metrics, "pow", "captcha_failed"), 2, "{metrics}");
    assert_eq!(
        metric(&metrics, "slow", "submitted_too_fast"),
        1,
        "{metrics}"
    );
    assert_eq!(server.doc_ids(), vec![id]);
}

#[test]
fn a_missing_captcha_key_stops_the_service_and_min_submit_needs_a_captcha() {
    let dir = crate::support::tempdir();
    let path = dir.join("secureform.toml");
    std::fs::write(&path, config()).unwrap();
    let out = std::process::Command::new(crate::support::BIN)
        .current_dir(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env_remove(KEY_ENV)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(KEY_ENV), "{err}");

    std::fs::write(
        &path,
        "[forms.f]\nsinks = [\"docs\"]\nmin_submit_secs = 3\n[sinks.docs]\ntype = \"documents\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(crate::support::BIN)
        .current_dir(&dir)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("min_submit_secs"), "{err}");
}

/// The shipped `examples/web/altcha.html` with the real ALTCHA widget (npm `altcha`, pinned in
/// `tests/browser/package.json`) in headless Chromium: the widget solves the server's challenge,
/// the form is stored without the solution, and the same solution posted again is refused.
#[test]
fn altcha_widget_in_chromium_submits_and_a_replay_is_refused() {
    let browser = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser.join("node_modules/altcha/package.json").exists()
            && browser
                .join("node_modules/playwright-core/package.json")
                .exists(),
        "run `npm ci --prefix tests/browser` (Debian packages nodejs, npm and chromium)"
    );
    // The page's origin: a free loopback port, served by altcha.mjs.
    let site_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = format!(
        r#"
[forms.altcha]
sinks = ["docs"]
allowed_origins = ["http://127.0.0.1:{site_port}"]
captcha = {{ provider = "altcha", secret_env = "SF_TEST_ALTCHA_KEY" }}

[sinks.docs]
type = "documents"
"#
    );
    let server = Server::with_config_env(&toml, &[(KEY_ENV, KEY)]);
    let dir = crate::support::tempdir();
    let input = json!({
        "chromium": "/usr/bin/chromium",
        "base": server.base,
        "site_port": site_port,
        "page": std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/web/altcha.html"),
        "email": "pow@example.com",
        "message": "canary-widget-5521",
    });
    let results = crate::browser::run_node_script("altcha.mjs", &input, &dir, &server.log_text());
    // The widget posted the ALTCHA v1 payload this server issued.
    assert_eq!(results["payload"]["algorithm"], "SHA-256", "{results}");
    assert!(results["payload"]["number"].is_u64(), "{results}");
    let id = results["id"].as_str().unwrap();
    server.wait_for_doc(id);
    let (doc, _) = server.doc(id, &[]);
    assert_eq!(
        doc["fields"],
        json!({"email": "pow@example.com", "message": "canary-widget-5521"})
    );
    assert_eq!(
        server.doc_ids(),
        vec![id.to_owned()],
        "the replay was not stored"
    );
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        metric(&metrics, "altcha", "captcha_replayed"),
        1,
        "{metrics}"
    );
}
