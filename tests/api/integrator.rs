//! The integrator API: tokens and scopes, idempotency, delivery states through a failing and
//! then fixed SFTP sink (a real sshd), retries, documents with their audit log, CORS, rate
//! limits and metrics.

use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

use crate::support::*;
use secureform_testkit::sshd::{keygen, Sshd};

fn token_lines(name: &str, token: &str, scopes: &str, forms: &str) -> String {
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    format!("[tokens.{name}]\nsha256 = \"{hash}\"\nscopes = [{scopes}]\nforms = [{forms}]\n")
}

struct Api<'a> {
    server: &'a Server,
}

impl Api<'_> {
    fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let resp = client()
            .get(self.server.url(path))
            .bearer_auth(token)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    fn post(&self, token: &str, path: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let mut req = client()
            .post(self.server.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// Polls a submission until `pred` holds for the delivery of `sink`.
    fn wait_state(
        &self,
        token: &str,
        id: &str,
        sink: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, v) = self.get(token, &format!("/api/v1/submissions/{id}"));
            assert_eq!(status, 200, "{v}");
            let d = v["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["sink"] == sink)
                .cloned()
                .unwrap();
            if pred(&d) {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "state never reached: {d}\n{}",
                self.server.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn tokens_idempotency_states_retry_documents_and_audit() {
    let keys = tempdir();
    let client_key = keygen(&keys, "id_ed25519", &["-t", "ed25519"], "");
    let mut sshd = Sshd::start(&[&client_key.with_extension("pub")], false);
    sshd.stop(); // The sink starts out failing: nothing listens.
    let remote = tempdir();

    let (submit, reader, admin, other) = ("sf_submit_1", "sf_read_1", "sf_admin_1", "sf_other_1");
    let config = format!(
        r#"
[dispatch]
max_attempts = 3
backoff_base_ms = 100
backoff_max_ms = 200

[forms.orders]
sinks = ["docs", "upload"]

[forms.contact]
sinks = ["docs"]

[sinks.docs]
type = "documents"

[sinks.upload]
type = "sftp"
host = "127.0.0.1"
port = {port}
user = "root"
private_key_file = "{key}"
host_key_sha256 = "{fpr}"
path = "{remote}"
format = "json"
timeout_secs = 3

{t1}
{t2}
{t3}
{t4}
"#,
        port = sshd.port,
        key = client_key.display(),
        fpr = sshd.fingerprint,
        remote = remote.display(),
        t1 = token_lines("shop", submit, "\"submit\"", "\"orders\""),
        t2 = token_lines("auditor", reader, "\"read\"", "\"orders\""),
        t3 = token_lines("ops", admin, "\"admin\", \"read\"", "\"*\""),
        t4 = token_lines("other", other, "\"submit\", \"read\"", "\"contact\""),
    );
    let server = Server::with_config(&config);
    let api = Api { server: &server };

    // 401 without or with a bad token, 403 outside scope or forms.
    let resp = client().get(server.url("/api/v1/forms")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_eq!(api.get("sf_wrong", "/api/v1/forms").0, 401);
    let (s, v) = api.post(reader, "/api/v1/forms/orders/submissions", "{}", None);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = api.post(other, "/api/v1/forms/orders/submissions", "{}", None);
    assert_eq!(s, 403);

    // The token's forms, with their sinks' at-rest status and warnings.
    let (s, v) = api.get(submit, "/api/v1/forms");
    assert_eq!(s, 200);
    let forms = v["forms"].as_array().unwrap();
    assert_eq!(forms.len(), 1, "only the token's forms: {v}");
    assert_eq!(forms[0]["at_rest"], "plaintext");
    assert!(forms[0]["warnings"][0].as_str().unwrap().contains("upload"));

    // An Idempotency-Key retried 5 times gives one submission.
    let ids: Vec<String> = (0..5)
        .map(|_| {
            let (s, v) = api.post(
                submit,
                "/api/v1/forms/orders/submissions",
                r#"{"item":"lamp","qty":2}"#,
                Some("order-77"),
            );
            assert_eq!(s, 201, "{v}");
            assert!(
                !v["warnings"].as_array().unwrap().is_empty(),
                "the sftp sink is warned about"
            );
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let id = ids[0].clone();

    // Pending or delivered at once for docs; the failing sink goes retrying, then dead.
    api.wait_state(reader, &id, "docs", |d| {
        d["state"] == "delivered" && d["receipt"]["kind"] == "document"
    });
    // The retrying window lasts one short backoff: a poll under load may see "dead" first.
    let failing = api.wait_state(reader, &id, "upload", |d| {
        d["state"] == "retrying" || d["state"] == "dead"
    });
    if failing["state"] == "retrying" {
        assert!(
            failing["last_error"].as_str().unwrap().len() > 3,
            "{failing}"
        );
        assert!(failing["next_attempt_at"].is_string(), "{failing}");
        assert_eq!(failing["failure_reason"], "connection", "{failing}");
    }
    let dead = api.wait_state(reader, &id, "upload", |d| d["state"] == "dead");
    assert!(
        dead["reason"].as_str().unwrap().contains("attempts"),
        "{dead}"
    );
    // Giving up keeps the last failure's reason: the server was down.
    assert_eq!(dead["failure_reason"], "connection", "{dead}");

    // The other form's token cannot see it; retry needs admin.
    assert_eq!(api.get(other, &format!("/api/v1/submissions/{id}")).0, 404);
    assert_eq!(
        api.post(reader, &format!("/api/v1/submissions/{id}/retry"), "", None)
            .0,
        403
    );

    // Fix the sink, retry, delivered.
    sshd.restart();
    let (s, v) = api.post(admin, &format!("/api/v1/submissions/{id}/retry"), "", None);
    assert_eq!((s, v["requeued"].as_u64()), (200, Some(1)), "{v}");
    let retried = id.clone();
    let done = api.wait_state(reader, &id, "upload", |d| d["state"] == "delivered");
    let path = done["receipt"]["value"].as_str().unwrap().to_owned();
    let uploaded: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(uploaded["fields"]["item"], "lamp");

    // Documents: listed, paginated, read; every read audited.
    let (_, v) = api.post(
        submit,
        "/api/v1/forms/orders/submissions",
        r#"{"item":"desk"}"#,
        None,
    );
    let second = v["id"].as_str().unwrap().to_owned();
    server.wait_for_doc(&second);
    let (s, page) = api.get(reader, "/api/v1/documents?form=orders&limit=1");
    assert_eq!(s, 200);
    assert_eq!(page["documents"][0]["id"], id.as_str());
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page2) = api.get(
        reader,
        &format!("/api/v1/documents?form=orders&limit=1&cursor={cursor}"),
    );
    assert_eq!(page2["documents"][0]["id"], second.as_str());
    assert!(page2["next_cursor"].is_null());
    assert_eq!(api.get(reader, "/api/v1/documents?form=contact").0, 403);
    let (s, doc) = api.get(reader, &format!("/api/v1/documents/{id}"));
    assert_eq!(s, 200);
    assert_eq!(doc["fields"]["qty"], 2);
    let (_, audit) = api.get(admin, "/api/v1/audit");
    let entry = &audit["entries"][0];
    assert_eq!(
        (entry["token"].as_str(), entry["document_id"].as_str()),
        (Some("auditor"), Some(id.as_str()))
    );
    assert_eq!(api.get(reader, "/api/v1/audit").0, 403);
    // The retry above is an entry too, with the admin token's name; and the start says which
    // configuration (by hash) and keys it ran with.
    let (_, all) = api.get(admin, "/api/v1/audit?after=0&limit=1000");
    let entries = all["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "retry" && e["document_id"] == retried.as_str()),
        "{entries:?}"
    );
    let start = entries
        .iter()
        .find(|e| e["action"] == "service_start")
        .unwrap();
    let detail = start["detail"].as_str().unwrap();
    assert!(
        detail.contains("config_sha256=") && detail.contains("keys="),
        "{detail}"
    );

    // Metrics count what happened, and carry no field value.
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("secureform_submissions_accepted_total{form=\"orders\",source=\"json\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("secureform_deliveries_total{sink=\"upload\",outcome=\"dead\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("lamp"));
}

#[test]
fn cors_preflight_and_rate_limits() {
    let server = Server::with_config(
        r#"
[forms.contact]
sinks = ["docs"]
allowed_origins = ["https://good.example"]
rate_per_minute = 3

[sinks.docs]
type = "documents"
"#,
    );
    let preflight = |origin: &str| {
        client()
            .request(reqwest::Method::OPTIONS, server.url("/f/contact"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .unwrap()
    };
    let ok = preflight("https://good.example");
    assert!(ok.status().is_success());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    assert!(ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let no = preflight("https://evil.example");
    assert!(no.headers().get("access-control-allow-origin").is_none());

    let post = |origin: &str| {
        client()
            .post(server.url("/f/contact"))
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(r#"{"a":"b"}"#)
            .send()
            .unwrap()
    };
    let resp = post("https://good.example");
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://good.example"
    );
    let resp = post("https://evil.example");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // The third request within a minute is the last allowed; the fourth is 429.
    assert_eq!(post("https://good.example").status().as_u16(), 201);
    let limited = post("https://good.example");
    assert_eq!(limited.status().as_u16(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=21).contains(&wait), "{wait}");
    let v: Value = limited.json().unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
}

#[test]
fn a_sink_removed_from_the_configuration_leaves_its_deliveries_dead_not_pending() {
    // On PostgreSQL an instance leaves them open: in a rolling deploy another instance may still
    // have the sink (docs/scale-out.md).
    if sqlite_only("marking a removed sink's deliveries dead at start") {
        return;
    }
    let keys = tempdir();
    let client_key = keygen(&keys, "id_ed25519", &["-t", "ed25519"], "");
    // A port where nothing listens: the sink fails, retryably, until it is removed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reader = "sf_read_removed";
    let tokens = token_lines("ops", reader, "\"read\"", "\"*\"");
    let with_gone = format!(
        r#"
[dispatch]
backoff_base_ms = 60000

[forms.orders]
sinks = ["docs", "gone"]

[sinks.docs]
type = "documents"

[sinks.gone]
type = "sftp"
host = "127.0.0.1"
port = {port}
user = "root"
private_key_file = "{key}"
host_key_sha256 = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
path = "/tmp"
timeout_secs = 2

{tokens}"#,
        key = client_key.display(),
    );
    let server = Server::with_config(&with_gone);
    let api = Api { server: &server };
    let resp = client()
        .post(server.url("/f/orders"))
        .header("content-type", "application/json")
        .body(r#"{"item":"chair"}"#)
        .send()
        .unwrap();
    let id = resp.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.wait_state(reader, &id, "gone", |d| d["state"] == "retrying");
    let (dir, config) = server.kill9();

    let without = with_gone
        .replace("sinks = [\"docs\", \"gone\"]", "sinks = [\"docs\"]")
        .split("[sinks.gone]")
        .next()
        .unwrap()
        .to_owned()
        + &tokens;
    std::fs::write(config.as_ref().unwrap(), without).unwrap();
    let server = Server::start_in(&dir, config);
    let api = Api { server: &server };
    let dead = api.wait_state(reader, &id, "gone", |d| d["state"] == "dead");
    assert!(
        dead["reason"]
            .as_str()
            .unwrap()
            .contains("no longer configured"),
        "{dead}"
    );
    assert_eq!(dead["failure_reason"], "bad_config", "{dead}");
    api.wait_state(reader, &id, "docs", |d| d["state"] == "delivered");
}
