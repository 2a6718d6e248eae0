//! What a new user meets first: the service's root, the thank-you page's way back to the form,
//! and the CLI in a pipeline.

use std::process::{Command, Stdio};

use crate::support::{client, Server, BIN};

#[test]
fn the_root_names_the_service_and_links_on() {
    let server = Server::embedded();
    let http = client();
    let page = http.get(server.url("/")).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().unwrap();
    assert!(html.contains(env!("CARGO_PKG_VERSION")), "{html}");
    assert!(html.contains("href=\"/healthz\"") && html.contains("href=\"/openapi.yaml\""));

    let json: serde_json::Value = http
        .get(server.url("/"))
        .header("accept", "application/json")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(json["service"], "secureform");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["links"]["health"], "/healthz");

    let spec = http.get(server.url("/openapi.yaml")).send().unwrap();
    assert_eq!(spec.status(), 200);
    assert_eq!(spec.text().unwrap(), include_str!("../../openapi.yaml"));
}

#[test]
fn the_thank_you_page_links_back_only_to_a_page_of_this_origin() {
    let server = Server::embedded();
    let http = client();
    let host = server.base.trim_start_matches("http://").to_owned();
    let thanks = |referer: &str| {
        http.get(server.url("/f/contact/thanks"))
            .header("referer", referer)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let own = format!("http://{host}/contact.html?lang=en");
    let html = thanks(&own);
    assert!(
        html.contains(&format!(
            "id=\"back-to-form\" href=\"http://{host}/contact.html?lang=en\""
        )),
        "{html}"
    );
    for other in [
        "http://elsewhere.example/contact.html".to_owned(),
        format!("http://{host}.evil.example/"),
        format!("javascript:alert(1)//{host}/"),
    ] {
        assert!(!thanks(&other).contains("back-to-form"), "{other}");
    }
    let no_referer = http
        .get(server.url("/f/contact/thanks"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!no_referer.contains("back-to-form"));
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let server = Server::embedded();
    let answer: serde_json::Value = client()
        .post(server.url("/f/contact"))
        .json(&serde_json::json!({"email": "ann@example.com"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    server.wait_for_doc(answer["id"].as_str().unwrap());
    // Standard output is a pipe whose reader is already gone: every write fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    for args in [
        &["check"][..],
        &["docs", "list"],
        &["docs", "list", "--json"],
    ] {
        let writer = writer.try_clone().unwrap();
        let out = Command::new(BIN)
            .current_dir(&server.dir)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
    }
}

#[test]
fn token_new_writes_a_working_configuration() {
    let dir = crate::support::tempdir();
    let token_new = |name: &str| {
        Command::new(BIN)
            .current_dir(&dir)
            .args(["token", "new", "--name", name, "--scopes", "submit,read"])
            .args(["--forms", "*", "--write", "secureform.toml"])
            .output()
            .unwrap()
    };
    let out = token_new("me");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .find(|l| l.starts_with("sf_"))
        .expect("the token")
        .to_owned();
    assert!(stdout.contains("created secureform.toml"), "{stdout}");
    assert!(!std::fs::read_to_string(dir.join("secureform.toml"))
        .unwrap()
        .contains(&token));
    // The same name again is refused, and the file is left as it was; another name is added.
    let before = std::fs::read(dir.join("secureform.toml")).unwrap();
    assert!(!token_new("me").status.success());
    assert_eq!(std::fs::read(dir.join("secureform.toml")).unwrap(), before);
    assert!(token_new("crm").status.success());

    let server = Server::start_in(&dir, Some(dir.join("secureform.toml")));
    let http = client();
    let forms = http
        .get(server.url("/api/v1/forms"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(forms.status(), 200);
    let answer = http
        .post(server.url("/api/v1/forms/contact/submissions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"email": "ann@example.com"}))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 201);
    // An idempotent repeat is logged as one, not as a second acceptance.
    for _ in 0..2 {
        let again = http
            .post(server.url("/api/v1/forms/contact/submissions"))
            .bearer_auth(&token)
            .header("idempotency-key", "first-hour-1")
            .json(&serde_json::json!({"email": "bob@example.com"}))
            .send()
            .unwrap();
        assert_eq!(again.status(), 201);
    }
    // The log is read by another thread: wait (generously) until both lines have arrived.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut log = server.log_text();
    while log.matches("idempotent repeat").count() < 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        log = server.log_text();
    }
    assert_eq!(log.matches("accepted via the API").count(), 2, "{log}");
    assert_eq!(log.matches("idempotent repeat").count(), 1, "{log}");
    // The file serves the embedded default's store: the data folder beside it.
    assert!(dir.join("secureform-data").join("master.key").exists());
}

#[test]
fn the_example_configuration_works_after_its_keys_are_made() {
    let dir = crate::support::tempdir();
    let config = dir.join("secureform.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/secureform.toml"),
        &config,
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/example-keys.sh");
    let made = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .env("SECUREFORM_BIN", BIN)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let check = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Run twice: existing keys are kept.
    let key = std::fs::read(dir.join("keys/id_ed25519")).unwrap();
    let again = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .env("SECUREFORM_BIN", BIN)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(std::fs::read(dir.join("keys/id_ed25519")).unwrap(), key);

    // It serves: the sinks' servers do not exist here, and the service starts all the same.
    let server = Server::start_in(&dir, Some(config));
    let answer = client()
        .post(server.url("/f/contact"))
        .json(&serde_json::json!({"email": "ann@example.com"}))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 201);
}

/// A configuration whose mail sink's server is not there (a port nobody listens on).
fn unreachable_mail_config() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!(
        r#"
[storage]
data_dir = "./data"

[dispatch]
max_attempts = 3
backoff_base_ms = 50
backoff_max_ms = 100

[forms.contact]
sinks = ["docs", "mail"]

[sinks.docs]
type = "documents"

[sinks.mail]
type = "email"
mode = "tls"
smtp_url = "smtp://127.0.0.1:{port}"
from = "forms@example.com"
to = ["alice@example.com"]
"#
    )
}

#[test]
fn start_up_says_what_runs_and_sinks_report_their_health() {
    let server = Server::with_config(&unreachable_mail_config());
    let log = server.log_text();
    assert!(
        log.contains("secureform.toml") && log.contains("configuration"),
        "{log}"
    );
    assert!(
        log.contains("key_file=") && log.contains("master.key"),
        "{log}"
    );
    assert!(
        log.contains("sink=mail kind=\"email\" at_rest=\"not encrypted\""),
        "{log}"
    );
    assert!(log.contains("form=contact sinks=docs,mail"), "{log}");

    // The unreachable server is found by the background check, not waited for at start.
    let http = client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let ready = loop {
        let ready: serde_json::Value = http
            .get(server.url("/readyz"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if ready["sinks"]["mail"]["status"] == "failing" || std::time::Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["sinks"]["mail"]["status"], "failing", "{ready}");
    assert_eq!(ready["sinks"]["docs"]["status"], "ok", "{ready}");
    assert!(server.log_text().contains("sink failing its health check"));

    let online = server.cli(&["check", "--online"]);
    assert_eq!(online.status.code(), Some(1), "{online:?}");
    let stdout = String::from_utf8_lossy(&online.stdout);
    assert!(stdout.contains("sink mail: FAILING"), "{stdout}");
}

#[test]
fn each_failed_delivery_is_logged_once() {
    let server = Server::with_config(&unreachable_mail_config());
    let answer: serde_json::Value = client()
        .post(server.url("/f/contact"))
        .json(&serde_json::json!({"email": "ann@example.com"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = answer["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !server.log_text().contains("delivery is dead") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = server.log_text();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&id) && l.contains("sink=mail") && !l.contains("INFO"))
        .collect();
    // Three attempts: two "will retry", one "dead"; nothing else about them.
    assert_eq!(failures.len(), 3, "{failures:#?}");
    let replay = failures.iter().filter(|l| l.contains("will retry")).count();
    assert_eq!(replay, 2, "{failures:#?}");
}

#[test]
fn the_first_start_says_how_to_make_a_token_once() {
    let server = Server::embedded();
    assert!(
        server.log_text().contains("secureform token new --name me"),
        "{}",
        server.log_text()
    );
    let (dir, _) = server.kill9();
    let again = Server::start_in(&dir, None);
    assert!(!again.log_text().contains("secureform token new"));
}
