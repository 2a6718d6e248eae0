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
