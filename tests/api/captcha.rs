//! Third-party captchas (Turnstile, hCaptcha, reCAPTCHA v2 and v3) through the running service.
//! The providers' siteverify endpoints are outside this machine: these tests run a local
//! verifier (`tests/siteverify/verifier.py`, Python's standard library) that speaks the
//! documented siteverify protocol with a known secret and known good tokens, over plain HTTP
//! and over HTTPS with a test CA. Checked: a good token is accepted and its field is not stored;
//! a wrong, replayed or missing token, a wrong host name or action and a low v3 score are 422
//! `captcha_failed`; a verifier that answers 500, garbage, a redirect, the wrong secret, nothing
//! in time, or cannot be reached is 503 `captcha_unavailable` with Retry-After (fail closed);
//! the verifier receives the secret, the token and the client's address; refusals are counted
//! in `/metrics`, never stored, and neither token nor secret is logged.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{client, make_loopback_certificate, tempdir, Server, BIN};

const VERIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/siteverify/verifier.py");
/// The verifier's secret (`SECRET` in verifier.py).
const SECRET: &str = "sf-test-siteverify-secret";
const SECRET_ENV: &str = "SF_TEST_SITEVERIFY_SECRET";
/// Cloudflare's documented always-pass test secret, and the dummy token its test site keys
/// make (examples/web/README.md's Turnstile form).
const CF_TEST_SECRET: &str = "1x0000000000000000000000000000000AA";
const CF_DUMMY_TOKEN: &str = "XXXX.DUMMY.TOKEN.XXXX";

/// The local verifier, killed on drop.
struct Verifier {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Verifier {
    /// Starts verifier.py in `dir` (HTTPS with `dir/server.pem` when `tls`).
    fn start(dir: &Path, tls: bool) -> Verifier {
        let mut cmd = Command::new("python3");
        cmd.arg(VERIFIER).arg(dir);
        if tls {
            cmd.arg("--cert")
                .arg(dir.join("server.pem"))
                .arg("--key")
                .arg(dir.join("server.key"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run python3: install the Debian package python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("verifier.py did not start: {line:?}"));
        Verifier {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// The requests it received, oldest first.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(http: u16, https: u16) -> String {
    let url = |path: &str| format!("http://127.0.0.1:{http}{path}");
    let ts = url("/turnstile/v0/siteverify");
    let rc = url("/recaptcha/api/siteverify");
    let closed = closed_port();
    format!(
        r#"
[forms.ts]
sinks = ["docs"]
captcha = {{ provider = "turnstile", secret_env = "{SECRET_ENV}", verify_url = "{ts}", hostnames = ["forms.example.test"], action = "contact" }}

# hCaptcha over HTTPS (a test CA), the secret in a file, host names compared without case.
[forms.hc]
sinks = ["docs"]
captcha = {{ provider = "hcaptcha", secret_file = "hcaptcha.secret", verify_url = "https://127.0.0.1:{https}/hcaptcha/siteverify", ca_file = "tls/ca.pem", hostnames = ["www.example.test", "FORMS.example.test"] }}

# reCAPTCHA v3: the default min_score (0.5).
[forms.rc]
sinks = ["docs"]
captcha = {{ provider = "recaptcha", secret_env = "{SECRET_ENV}", verify_url = "{rc}", hostnames = ["forms.example.test"], action = "contact" }}

# reCAPTCHA v2 in a field of its own name.
[forms.rc2]
sinks = ["docs"]
captcha = {{ provider = "recaptcha", secret_env = "{SECRET_ENV}", verify_url = "{rc}", hostnames = ["forms.example.test"], field = "token" }}

# reCAPTCHA with min_score set: a v3 score is required.
[forms.rc3]
sinks = ["docs"]
captcha = {{ provider = "recaptcha", secret_env = "{SECRET_ENV}", verify_url = "{rc}", hostnames = ["forms.example.test"], min_score = 0.8 }}

{example}

# Verifiers that give no usable answer.
[forms.wrongsecret]
sinks = ["docs"]
captcha = {{ provider = "turnstile", secret_env = "SF_TEST_WRONG_SECRET", verify_url = "{ts}", hostnames = ["forms.example.test"] }}

[forms.down]
sinks = ["docs"]
captcha = {{ provider = "turnstile", secret_env = "{SECRET_ENV}", verify_url = "{down}", hostnames = ["forms.example.test"] }}

[forms.garbage]
sinks = ["docs"]
captcha = {{ provider = "hcaptcha", secret_env = "{SECRET_ENV}", verify_url = "{garbage}", hostnames = ["forms.example.test"] }}

[forms.hang]
sinks = ["docs"]
captcha = {{ provider = "recaptcha", secret_env = "{SECRET_ENV}", verify_url = "{hang}", hostnames = ["forms.example.test"], timeout_ms = 700 }}

[forms.redirect]
sinks = ["docs"]
captcha = {{ provider = "turnstile", secret_env = "{SECRET_ENV}", verify_url = "{redirect}", hostnames = ["forms.example.test"] }}

[forms.unreachable]
sinks = ["docs"]
captcha = {{ provider = "turnstile", secret_env = "{SECRET_ENV}", verify_url = "http://127.0.0.1:{closed}/siteverify", hostnames = ["forms.example.test"] }}

[sinks.docs]
type = "documents"
"#,
        example = example_form().replace(
            "hostnames = [\"*\"] }",
            &format!("hostnames = [\"*\"], verify_url = \"{ts}\" }}"),
        ),
        down = url("/fault/500"),
        garbage = url("/fault/garbage"),
        hang = url("/fault/hang"),
        redirect = url("/fault/redirect"),
    )
}

/// examples/web/README.md's Turnstile form (Cloudflare's test secret, any host name), as
/// written there.
fn example_form() -> String {
    let readme = include_str!("../../examples/web/README.md");
    let marker = "<!-- examples/web turnstile form: checked by tests/api/captcha.rs -->";
    let after = &readme[readme.find(marker).expect("the README's marker")..];
    let start = after.find("```toml\n").expect("its block") + "```toml\n".len();
    let block = &after[start..];
    block[..block.find("```").expect("the block's end")].to_owned()
}

fn metric(text: &str, form: &str, code: &str) -> u64 {
    let key = format!("secureform_submissions_rejected_total{{form=\"{form}\",code=\"{code}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn third_party_tokens_are_verified_with_siteverify_and_fail_closed() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("plain")).unwrap();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    make_loopback_certificate(&dir.join("tls"));
    let plain = Verifier::start(&dir.join("plain"), false);
    let tls = Verifier::start(&dir.join("tls"), true);

    let secret_file = dir.join("hcaptcha.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("secureform.toml");
    std::fs::write(&path, config(plain.port, tls.port)).unwrap();
    let server = Server::start_with_env(
        &dir,
        Some(path),
        &[
            (SECRET_ENV, SECRET),
            ("SECUREFORM_TURNSTILE_SECRET", CF_TEST_SECRET),
            ("SF_TEST_WRONG_SECRET", "not-the-secret"),
        ],
    );
    let http = client();
    let post = |form: &str, fields: Value| {
        let r = http
            .post(server.url(&format!("/f/{form}")))
            .json(&fields)
            .send()
            .unwrap();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap(), retry_after)
    };
    let refused = |form: &str, fields: Value| {
        let (status, body, _) = post(form, fields);
        (
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            body["error"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let failed = |reason: &str| (422, "captcha_failed".to_owned(), reason.to_owned());
    let mut stored = Vec::new();

    // Good tokens: stored, without the token's field.
    for (form, field, token) in [
        ("ts", "cf-turnstile-response", "pass~ts-1"),
        ("hc", "h-captcha-response", "pass~hc-1"),
        ("rc", "g-recaptcha-response", "pass~rc-1"),
        ("rc2", "token", "v2~rc2-1"),
        ("rc3", "g-recaptcha-response", "pass~rc3-1"),
    ] {
        let mut fields = json!({"email": "ann@example.com", "message": format!("canary-{form}")});
        fields[field] = json!(token);
        if form == "hc" {
            // hCaptcha's widget also fills g-recaptcha-response with the same token.
            fields["g-recaptcha-response"] = json!(token);
        }
        let (status, body, _) = post(form, fields);
        assert_eq!(status, 201, "{form}: {body}\n{}", server.log_text());
        stored.push(body["id"].as_str().unwrap().to_owned());
    }
    for id in &stored {
        server.wait_for_doc(id);
        let (doc, _) = server.doc(id, &[]);
        let form = doc["form"].as_str().unwrap();
        assert_eq!(
            doc["fields"],
            json!({"email": "ann@example.com", "message": format!("canary-{form}")}),
            "only the person's fields are stored"
        );
    }
    // A browser post (urlencoded, as the widget's form sends it) goes the same way.
    let r = http
        .post(server.url("/f/ts"))
        .form(&[
            ("email", "bob@example.com"),
            ("cf-turnstile-response", "pass~ts-form"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().unwrap());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let id = location.split("id=").nth(1).unwrap().to_owned();
    server.wait_for_doc(&id);
    assert_eq!(
        server.doc(&id, &[]).0["fields"],
        json!({"email": "bob@example.com"})
    );
    stored.push(id);
    // The example's configuration: Cloudflare's test secret takes the dummy token.
    let (status, body, _) = post(
        "turnstile",
        json!({"email": "c@example.com", "cf-turnstile-response": CF_DUMMY_TOKEN}),
    );
    assert_eq!(status, 201, "{body}");
    stored.push(body["id"].as_str().unwrap().to_owned());

    // What the verifier received: the secret, the token, the client's address, urlencoded.
    let first = &plain.requests()[0];
    assert_eq!(first["path"], "/turnstile/v0/siteverify");
    assert_eq!(first["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(
        first["form"],
        json!({"secret": SECRET, "response": "pass~ts-1", "remoteip": "127.0.0.1"})
    );
    let over_tls = &tls.requests()[0];
    assert_eq!(
        over_tls["form"],
        json!({"secret": SECRET, "response": "pass~hc-1", "remoteip": "127.0.0.1"}),
        "the secret file's value, trimmed"
    );

    // Refused: 422 captcha_failed with a reason.
    let with = |field: &str, token: &str| json!({"email": "x@example.com", field: token});
    let ts = |token: &str| with("cf-turnstile-response", token);
    assert_eq!(
        refused("ts", ts("pass~ts-1")),
        failed("token_expired_or_reused")
    );
    assert_eq!(refused("ts", ts("forged~1")), failed("token_rejected"));
    assert_eq!(
        refused("ts", ts("otherhost~ts-2")),
        failed("hostname_mismatch")
    );
    assert_eq!(
        refused("ts", ts("otheraction~ts-3")),
        failed("action_mismatch")
    );
    assert_eq!(
        refused("ts", json!({"email": "x@example.com"})),
        failed("token_missing")
    );
    assert_eq!(refused("ts", ts(" ")), failed("token_missing"));
    assert_eq!(
        refused("ts", json!({"cf-turnstile-response": ["pass~a", "pass~b"]})),
        failed("token_malformed")
    );
    let hc = |token: &str| with("h-captcha-response", token);
    assert_eq!(
        refused("hc", hc("pass~hc-1")),
        failed("token_expired_or_reused")
    );
    assert_eq!(
        refused("hc", hc("otherhost~hc-2")),
        failed("hostname_mismatch")
    );
    let rc = |token: &str| with("g-recaptcha-response", token);
    assert_eq!(refused("rc", rc("lowscore~rc-2")), failed("score_too_low"));
    assert_eq!(
        refused("rc", rc("otheraction~rc-3")),
        failed("action_mismatch")
    );
    assert_eq!(refused("rc", rc("v2~rc-4")), failed("action_mismatch"));
    assert_eq!(refused("rc3", rc("v2~rc3-2")), failed("score_missing"));
    assert_eq!(
        refused("rc2", with("g-recaptcha-response", "v2~rc2-2")),
        failed("token_missing"),
        "the token is read from the configured field only"
    );
    assert_eq!(
        refused("turnstile", ts("pass~not-the-dummy")),
        failed("token_rejected")
    );

    // No usable answer from the verifier: 503 captcha_unavailable, Retry-After, nothing kept.
    let unavailable = |form: &str, reason: &str| {
        let started = Instant::now();
        // The token in each provider's field (the forms below are of all three).
        let token = format!("pass~fault-{form}");
        let fields = json!({"cf-turnstile-response": token, "h-captcha-response": token,
            "g-recaptcha-response": token});
        let (status, body, retry_after) = post(form, fields);
        assert_eq!(
            (
                status,
                body["error"]["code"].as_str(),
                body["error"]["reason"].as_str()
            ),
            (503, Some("captcha_unavailable"), Some(reason)),
            "{form}: {body}"
        );
        assert_eq!(retry_after.as_deref(), Some("10"), "{form}");
        started.elapsed()
    };
    unavailable("wrongsecret", "verifier_refused_secret");
    unavailable("down", "verifier_http_error");
    unavailable("garbage", "verifier_reply_malformed");
    unavailable("redirect", "verifier_http_error");
    unavailable("unreachable", "verifier_unreachable");
    let took = unavailable("hang", "verifier_timeout");
    assert!(
        took < Duration::from_secs(5),
        "timeout_ms = 700 took {took:?}"
    );
    let redirects = plain
        .requests()
        .iter()
        .filter(|r| r["form"]["response"] == "pass~fault-redirect")
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(
        redirects.contains(&"/fault/redirect".to_owned())
            && !redirects.contains(&"/turnstile/v0/siteverify".to_owned()),
        "the redirect was not followed: {redirects:?}"
    );
    // Meanwhile the service answers other requests (the hang held no thread or lock).
    let (status, body, _) = post("ts", ts("pass~ts-after"));
    assert_eq!(status, 201, "{body}");
    stored.push(body["id"].as_str().unwrap().to_owned());

    // Counted, never stored, never logged.
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(metric(&metrics, "ts", "captcha_failed"), 7, "{metrics}");
    assert_eq!(metric(&metrics, "rc", "captcha_failed"), 3, "{metrics}");
    assert_eq!(
        metric(&metrics, "hang", "captcha_unavailable"),
        1,
        "{metrics}"
    );
    for id in &stored {
        server.wait_for_doc(id);
    }
    let mut ids = server.doc_ids();
    ids.sort();
    stored.sort();
    assert_eq!(ids, stored, "refused posts are not stored");
    let log = server.log_text();
    for secret_or_token in [
        SECRET,
        CF_TEST_SECRET,
        "not-the-secret",
        "pass~",
        "otherhost~",
    ] {
        assert!(
            !log.contains(secret_or_token),
            "`{secret_or_token}` is in the log:\n{log}"
        );
    }
    assert!(log.contains("verifier_timeout"), "{log}");
}

#[test]
fn check_names_a_bad_third_party_captcha_and_serve_needs_its_secret() {
    let dir = tempdir();
    let path = dir.join("secureform.toml");
    let run = |args: &[&str], toml: &str| {
        std::fs::write(&path, toml).unwrap();
        let out = Command::new(BIN)
            .current_dir(&dir)
            .args(args)
            .arg("--config")
            .arg(&path)
            .env_remove(SECRET_ENV)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let form = |captcha: &str| {
        format!("[forms.f]\nsinks = [\"docs\"]\ncaptcha = {{ {captcha} }}\n[sinks.docs]\ntype = \"documents\"\n")
    };
    let good = format!("provider = \"turnstile\", secret_env = \"{SECRET_ENV}\", hostnames = [\"forms.example.com\"]");
    let (code, text) = run(&["check"], &form(&good));
    assert_eq!(
        code,
        Some(0),
        "check leaves an unset variable to serve: {text}"
    );
    let example = format!("{}\n[sinks.docs]\ntype = \"documents\"\n", example_form());
    let (code, text) = run(&["check"], &example);
    assert_eq!(code, Some(0), "examples/web/README.md's form: {text}");
    for (captcha, named) in [
        (
            format!("{good}, verify_url = \"http://verify.example.com/siteverify\""),
            "verify_url",
        ),
        (format!("{good}, min_score = 0.5"), "min_score"),
        (format!("{good}, timeout_ms = 99999"), "timeout_ms"),
        (
            "provider = \"hcaptcha\", secret_file = \"missing.secret\", hostnames = [\"*\"]"
                .to_owned(),
            "missing.secret",
        ),
        (
            format!("provider = \"recaptcha\", secret_env = \"{SECRET_ENV}\""),
            "hostnames",
        ),
    ] {
        let (code, text) = run(&["check"], &form(&captcha));
        assert_eq!(code, Some(2), "{captcha}: {text}");
        assert!(text.contains(named), "{captcha}: {text}");
    }
    let (code, text) = run(&["serve", "--listen", "127.0.0.1:0"], &form(&good));
    assert_ne!(code, Some(0));
    assert!(text.contains(SECRET_ENV), "{text}");
    let (code, text) = run(
        &["check"],
        &form(&good).replace("[sinks.docs]", "min_submit_secs = 3\n[sinks.docs]"),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("min_submit_secs"), "{text}");
}
