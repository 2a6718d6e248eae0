//! The webhook sink through the running service: a form delivering to the real HTTPS receiver
//! the sink crate's tests use (`crates/testkit/receiver.py`, verifying every request with
//! the `standardwebhooks` package), a certificate of a private CA, `allow_private = true`.
//!
//! - delivered: the receiver verified the signature, `webhook-id` is the submission id, the body
//!   holds the field values; the status API shows it delivered with its `http_status` receipt;
//! - 503 with `Retry-After: 3`, then 200: the status API shows the retryable failure with its
//!   `failure_reason`, and the retry comes no sooner than 3 s after the first attempt (the
//!   dispatcher's own backoff here is 100–200 ms), with the same `webhook-id`;
//! - 410: dead at once, with a permanent reason, and not tried again.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::Digest;

use crate::support::*;
use secureform_testkit::net::free_port;
use secureform_testkit::webhook::{Env, Receiver};

const SUBMIT: &str = "sf_webhook_submit_0123456789";
const READ: &str = "sf_webhook_read_0123456789ab";

/// A service whose form `hooks` delivers to `rx` only, with a short backoff and 3 attempts.
fn service(env: &Env, rx: &Receiver) -> Server {
    let secrets = env.secret_file(&env.secrets);
    let hash = |t: &str| hex::encode(sha2::Sha256::digest(t.as_bytes()));
    let config = format!(
        r#"
[dispatch]
max_attempts = 3
backoff_base_ms = 100
backoff_max_ms = 200

[forms.hooks]
sinks = ["hook"]

[sinks.hook]
type = "webhook"
url = "{url}"
secret_file = "{secrets}"
ca_file = "{ca}"
allow_private = true
timeout_secs = 10

[tokens.shop]
sha256 = "{submit}"
scopes = ["submit"]
forms = ["hooks"]

[tokens.auditor]
sha256 = "{read}"
scopes = ["read"]
forms = ["hooks"]
"#,
        url = rx.url(),
        secrets = secrets.display(),
        ca = env.ca.display(),
        submit = hash(SUBMIT),
        read = hash(READ),
    );
    Server::with_config(&config)
}

/// Posts `fields` as a JSON submission to form `hooks`; returns the submission id.
fn submit(server: &Server, fields: &Value) -> String {
    let resp = client()
        .post(server.url("/api/v1/forms/hooks/submissions"))
        .bearer_auth(SUBMIT)
        .json(fields)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().unwrap();
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The delivery of sink `hook` as the status API shows it.
fn delivery(server: &Server, id: &str) -> Value {
    let resp = client()
        .get(server.url(&format!("/api/v1/submissions/{id}")))
        .bearer_auth(READ)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().unwrap();
    v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["sink"] == "hook")
        .cloned()
        .unwrap_or_else(|| panic!("no delivery to `hook`: {v}"))
}

/// Polls the status API until `pred` holds for the delivery; returns it.
fn wait_for(server: &Server, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = delivery(server, id);
        if pred(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "state never reached: {d}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses an RFC 3339 time of the API into Unix seconds.
fn unix_secs(text: &str) -> f64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    t.unix_timestamp_nanos() as f64 / 1e9
}

#[test]
fn a_submission_is_delivered_signed_with_its_id_and_fields() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    let server = service(&env, &rx);
    let fields = json!({"name": "Ada Lovelace", "topics": ["engines", "notes"], "age": 36,
                        "consent": true});
    let id = submit(&server, &fields);

    let d = wait_for(&server, &id, |d| d["state"] != "pending");
    assert_eq!(d["state"], "delivered", "{d}\n{}", server.log_text());
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["receipt"]["kind"], "http_status", "{d}");
    assert!(
        d["receipt"]["value"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 200 OK"),
        "{d}"
    );
    assert!(d.get("failure_reason").is_none(), "{d}");

    assert_eq!(rx.count(), 1);
    let r = rx.request(1);
    assert_eq!(
        r.verified_with,
        [0],
        "standardwebhooks verified the signature"
    );
    assert_eq!(r.headers["webhook-id"], id.as_str());
    assert_eq!(r.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["id"], id.as_str(), "{body}");
    assert_eq!(body["form"], "hooks", "{body}");
    assert_eq!(body["source"], "json", "{body}");
    assert_eq!(body["fields"], fields, "{body}");
}

#[test]
fn retry_after_is_honoured_and_the_failure_reason_is_shown() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    rx.script(json!([
        {"status": 503, "headers": {"Retry-After": "3"}, "body": "down for maintenance"},
        {"status": 200, "body": "{\"accepted\":true}"}
    ]));
    let server = service(&env, &rx);
    let id = submit(&server, &json!({"name": "Grace"}));

    // The first attempt fails: retrying, with the receiver's answer and a machine-readable
    // reason, and the next attempt scheduled after the receiver's Retry-After, not after the
    // dispatcher's 100–200 ms backoff.
    let retrying = wait_for(&server, &id, |d| d["state"] != "pending");
    assert_eq!(retrying["state"], "retrying", "{retrying}");
    assert_eq!(retrying["attempts"], 1, "{retrying}");
    assert_eq!(retrying["failure_reason"], "peer_error", "{retrying}");
    let error = retrying["last_error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 503 Service Unavailable")
            && error.contains("retry after 3 s")
            && error.contains("down for maintenance"),
        "{retrying}"
    );
    let first = rx.request(1);
    let next_at = unix_secs(retrying["next_attempt_at"].as_str().unwrap());
    assert!(
        next_at - first.received_at >= 2.9,
        "the next attempt is due {:.3} s after the first: {retrying}",
        next_at - first.received_at
    );

    let delivered = wait_for(&server, &id, |d| d["state"] == "delivered");
    assert_eq!(delivered["attempts"], 2, "{delivered}");
    assert_eq!(
        delivered["receipt"]["value"], "HTTP 200 OK: {\"accepted\":true}",
        "{delivered}"
    );
    assert!(delivered.get("failure_reason").is_none(), "{delivered}");
    assert_eq!(rx.count(), 2);
    let second = rx.request(2);
    let gap = second.received_at - first.received_at;
    assert!(
        gap >= 2.9,
        "the retry came {gap:.3} s after the first attempt"
    );
    assert!(gap < 20.0, "the retry came only after {gap:.3} s");
    assert_eq!(first.verified_with, [0]);
    assert_eq!(second.verified_with, [0]);
    assert_eq!(first.headers["webhook-id"], id.as_str());
    assert_eq!(second.headers["webhook-id"], id.as_str());
    assert_eq!(first.body, second.body, "the same body, signed anew");
}

#[test]
fn gone_is_dead_at_once_with_a_permanent_reason() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    rx.script(json!([{"status": 410, "body": "this hook was removed"}]));
    let server = service(&env, &rx);
    let id = submit(&server, &json!({"name": "Hedy"}));

    let dead = wait_for(&server, &id, |d| d["state"] != "pending");
    assert_eq!(dead["state"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 1, "{dead}");
    assert_eq!(dead["failure_reason"], "rejected_by_peer", "{dead}");
    let reason = dead["reason"].as_str().unwrap();
    assert!(
        reason.contains("HTTP 410 Gone") && reason.contains("this hook was removed"),
        "{dead}"
    );
    assert!(
        !reason.contains("Hedy"),
        "no field value in the reason: {dead}"
    );
    // Permanent: never tried again (the backoff would have retried within 200 ms).
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(rx.count(), 1);
    assert_eq!(delivery(&server, &id)["state"], "dead");
    assert_eq!(rx.request(1).headers["webhook-id"], id.as_str());
}
