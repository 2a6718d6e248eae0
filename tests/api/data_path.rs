//! Submissions in each web format come back exact through `docs get`, and nothing readable is
//! left on disk or in the logs.

use crate::support::*;

fn json_of(resp: reqwest::blocking::Response) -> serde_json::Value {
    let status = resp.status();
    let text = resp.text().unwrap();
    assert_eq!(status.as_u16(), 201, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn urlencoded_browser_post_redirects_and_round_trips() {
    let server = Server::embedded();
    let resp = client()
        .post(server.url("/f/contact"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .body("name=Zo%C3%AB+M&topics=billing&email=z%40example.com&topics=support&note=a%26b%3Dc")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/f/contact/thanks?id="), "{location}");
    let id = location.rsplit('=').next().unwrap().to_owned();

    let page = client().get(server.url(&location)).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().unwrap().contains(&id));

    server.wait_for_doc(&id);
    let (doc, text, files) = server.doc_raw(&id, &[]);
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(doc["source"], "urlencoded");
    assert!(
        text.contains(r#""fields":{"name":"Zoë M","topics":["billing","support"],"email":"z@example.com","note":"a&b=c"}"#),
        "{text}"
    );
    assert!(files.is_empty());
}

#[test]
fn json_integrator_post_round_trips_with_types_and_order() {
    let server = Server::embedded();
    let body = r#"{"zeta":"last first","count":3,"agree":true,"tags":["a",2,false]}"#;
    let v = json_of(
        client()
            .post(server.url("/f/contact"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap(),
    );
    assert_eq!(v["form"], "contact");
    assert_eq!(v["warnings"], serde_json::json!([]));
    let id = v["id"].as_str().unwrap();
    server.wait_for_doc(id);
    let (doc, text, _) = server.doc_raw(id, &[]);
    assert!(text.contains(&format!(r#""fields":{body}"#)), "{text}");
    assert_eq!(doc["source"], "json");
}

#[test]
fn multipart_with_large_files_round_trips_and_leaves_no_plaintext() {
    let server = Server::embedded();
    let canary = format!("CANARY-{}", ulid::Ulid::new());
    let mut big = noise(2 * 1024 * 1024 + 12345, 7);
    // The canary inside the file, and in a field.
    big[1_000_000..1_000_000 + canary.len()].copy_from_slice(canary.as_bytes());
    let small = format!("hello {canary} world").into_bytes();
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", format!("Ann {canary}"))
        .part(
            "resume",
            reqwest::blocking::multipart::Part::bytes(big.clone())
                .file_name(format!("cv-{canary}.pdf"))
                .mime_str("application/pdf")
                .unwrap(),
        )
        .text("city", "Zürich")
        .part(
            "note",
            reqwest::blocking::multipart::Part::bytes(small.clone())
                .file_name("note.txt")
                .mime_str("text/plain")
                .unwrap(),
        );
    let v = json_of(
        client()
            .post(server.url("/f/contact"))
            .header("accept", "application/json")
            .multipart(form)
            .send()
            .unwrap(),
    );
    let id = v["id"].as_str().unwrap().to_owned();
    server.wait_for_doc(&id);
    let (doc, files) = server.doc(&id, &[]);
    assert_eq!(doc["source"], "multipart");
    assert_eq!(doc["fields"]["name"], format!("Ann {canary}").as_str());
    assert_eq!(doc["fields"]["city"], "Zürich");
    assert_eq!(doc["files"][0]["field"], "resume");
    assert_eq!(
        doc["files"][0]["filename"],
        format!("cv-{canary}.pdf").as_str()
    );
    assert_eq!(doc["files"][0]["content_type"], "application/pdf");
    assert_eq!(doc["files"][0]["size"], big.len());
    assert_eq!(doc["files"][0]["sha256"], sha256_hex(&big).as_str());
    assert_eq!(doc["files"][1]["sha256"], sha256_hex(&small).as_str());
    assert_eq!(files, vec![big, small]);

    // Nothing under the data folder, and nothing in the log, carries the canary.
    let data = server.dir.join("secureform-data");
    let scanned = all_files(&data);
    assert!(
        scanned.len() >= 5,
        "expected spool and store files, got {scanned:?}"
    );
    for path in scanned {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !contains(&bytes, canary.as_bytes()),
            "canary found in {}",
            path.display()
        );
    }
    let log = server.log_text();
    assert!(log.contains(&id), "the log names the submission id");
    assert!(!log.contains(&canary), "canary found in the log");
}

#[test]
fn honeypot_required_and_origin_rules() {
    let server = Server::with_config(
        r#"
[forms.apply]
sinks = ["docs"]
required = ["email"]
honeypot = "_gotcha"
allowed_origins = ["https://good.example"]

[sinks.docs]
type = "documents"
"#,
    );
    let post = |body: &str, origin: Option<&str>| {
        let mut req = client()
            .post(server.url("/f/apply"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body.to_owned());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<serde_json::Value>().unwrap())
    };
    let (status, v) = post("name=x", None);
    assert_eq!(status, 422);
    assert_eq!(v["error"]["code"], "required_field_missing");
    assert!(v["error"]["message"].as_str().unwrap().contains("email"));

    let (status, v) = post("email=a%40b.c", Some("https://evil.example"));
    assert_eq!(status, 403);
    assert_eq!(v["error"]["code"], "origin_not_allowed");

    let (status, v) = post("email=a%40b.c", Some("https://good.example"));
    assert_eq!(status, 201, "{v}");
    let kept = v["id"].as_str().unwrap().to_owned();

    // A filled honeypot looks accepted, and nothing is kept.
    let (status, v) = post("email=bot%40b.c&_gotcha=buy+now", None);
    assert_eq!(status, 201);
    let dropped = v["id"].as_str().unwrap().to_owned();
    server.wait_for_doc(&kept);
    let ids = server.doc_ids();
    assert!(!ids.contains(&dropped));
    let (doc, _) = server.doc(&kept, &[]);
    assert!(doc["fields"].get("_gotcha").is_none());

    // The browser error page names the missing field.
    let resp = client()
        .post(server.url("/f/apply"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .body("name=x")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let page = resp.text().unwrap();
    assert!(
        page.contains("email") && page.contains("role=\"alert\""),
        "{page}"
    );
}

#[test]
fn key_rotation_keeps_old_documents_readable() {
    let server = Server::embedded();
    let post = |server: &Server, v: &str| {
        let resp = client()
            .post(server.url("/f/contact"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"v":"{v}"}}"#))
            .send()
            .unwrap();
        json_of(resp)["id"].as_str().unwrap().to_owned()
    };
    let old = post(&server, "before");
    server.wait_for_doc(&old);
    let (dir, config) = server.kill9();
    let out = std::process::Command::new(BIN)
        .current_dir(&dir)
        .args(["keygen", "--rotate", "--out", "secureform-data/master.key"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start_in(&dir, config);
    let new = post(&server, "after");
    server.wait_for_doc(&new);
    assert_eq!(server.doc(&old, &[]).0["fields"]["v"], "before");
    assert_eq!(server.doc(&new, &[]).0["fields"]["v"], "after");
}
