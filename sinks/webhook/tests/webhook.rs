//! Black-box tests of the webhook sink against a real HTTPS receiver on loopback that verifies
//! every request with the `standardwebhooks` package, and `gpg` for encrypted bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use std::time::Duration;

use secureform_contract::{AtRestLevel, Delivery, FailureReason, Sink};
use secureform_webhook::{Config, WebhookSink};
use serde_json::json;
use support::{free_port, run, submission, Env, EnvConfig};

async fn build(config: &Config) -> WebhookSink {
    WebhookSink::build("hook", config, Path::new("/"), None)
        .await
        .unwrap()
}

async fn deliver(
    sink: &WebhookSink,
) -> Result<secureform_contract::Receipt, secureform_contract::DeliveryError> {
    let (s, files, _) = submission();
    sink.deliver(&Delivery::new(&s, &files)).await
}

/// The JSON the receiver should get for `submission()` with inline limit 1024.
fn expected_json(pattern_url: bool) -> serde_json::Value {
    let (s, _, bytes) = submission();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut large = json!({"field": "b", "filename": "b.bin",
        "content_type": "application/octet-stream", "size": 4096, "sha256": "00".repeat(32)});
    if pattern_url {
        large["url"] = json!(format!(
            "https://forms.example.com/api/v1/documents/{}/files/1?sink=docs",
            s.id
        ));
    }
    json!({
        "id": s.id, "form": "contact", "received_at": "2026-11-27T10:00:00Z",
        "source": "multipart",
        "fields": {"email": "canary-7f3a@example.com", "topics": ["billing", "support"],
                   "note": "line one\nline \"two\" é"},
        "files": [
            {"field": "a", "filename": "a.bin", "content_type": "application/octet-stream",
             "size": bytes[0].len(), "sha256": "00".repeat(32), "content_base64": b64(&bytes[0])},
            large,
        ]
    })
}

#[tokio::test]
async fn delivers_json_verified_by_standardwebhooks() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    let config = env.config(
        &rx.url(),
        "inline_file_bytes = 1024\napi_file_url = \"https://forms.example.com/api/v1/documents/{id}/files/{n}?sink=docs\"",
    );
    let sink = build(&config).await;
    assert_eq!(config.at_rest().level, AtRestLevel::Plaintext);
    let receipt = deliver(&sink).await.unwrap();
    assert_eq!(receipt.kind, "http_status");
    assert!(
        receipt.value.starts_with("HTTP 200 OK"),
        "{}",
        receipt.value
    );
    let r = rx.request(1);
    assert_eq!(r.verified_with, [0]);
    assert_eq!(r.headers["webhook-id"], "01JDWEBHOOKTEST0000000000A");
    assert_eq!(r.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, expected_json(true));
    // Field order is kept as received.
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.find("\"email\"").unwrap() < text.find("\"topics\"").unwrap());
    sink.healthcheck().await.unwrap();
}

#[tokio::test]
async fn each_rotated_secret_verifies() {
    let Some(env) = Env::new(2) else { return };
    // The sink signs with both secrets; the receiver tries each on its own.
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    let sink = build(&env.config(&rx.url(), "")).await;
    deliver(&sink).await.unwrap();
    let r = rx.request(1);
    assert_eq!(r.verified_with, [0, 1], "each secret verifies on its own");
    let sig = r.headers["webhook-signature"].as_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2);
    // A receiver holding only the second secret accepts the request.
    let only_new = env.receiver(free_port(), &env.secrets[1..], "rx-new");
    let sink = build(&env.config(&only_new.url(), "")).await;
    deliver(&sink).await.unwrap();
    assert_eq!(only_new.request(1).verified_with, [0]);
    // A receiver with a secret the sink does not hold refuses it: 401 is permanent.
    let other = env.receiver(free_port(), &[support::secret(9)], "rx-other");
    let sink = build(&env.config(&other.url(), "")).await;
    let err = deliver(&sink).await.unwrap_err();
    assert!(
        !err.is_retryable() && err.message().contains("401"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::Auth, "{err}");
}

#[tokio::test]
async fn pgp_body_decrypts_with_gpg() {
    let Some(env) = Env::new(1) else { return };
    let home = env.path("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args))
    };
    gpg(&[
        "--quick-gen-key",
        "Webhook Receiver <rx@example.com>",
        "default",
        "default",
        "never",
    ]);
    let cert = gpg(&["--armor", "--export", "rx@example.com"]);
    std::fs::write(env.path("rx.asc"), cert).unwrap();
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    let config = env.config(
        &rx.url(),
        &format!(
            "inline_file_bytes = 1024\npgp_recipients = [\"{}\"]",
            env.path("rx.asc").display()
        ),
    );
    // The service's signing key, made by sequoia; its certificate is imported into gpg.
    let (service_secret, service_public) =
        secureform_crypto::pgp::generate("SecureForm <forms@example.com>").unwrap();
    let service_key = env.path("service.sec");
    std::fs::write(&service_key, service_secret).unwrap();
    std::fs::set_permissions(
        &service_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(env.path("service.asc"), service_public).unwrap();
    gpg(&["--import", env.path("service.asc").to_str().unwrap()]);
    let signer = std::sync::Arc::new(secureform_crypto::pgp::Signer::load(&service_key).unwrap());
    let sink = WebhookSink::build("hook", &config, Path::new("/"), Some(signer))
        .await
        .unwrap();
    assert_eq!(config.at_rest().level, AtRestLevel::Encrypted);
    deliver(&sink).await.unwrap();
    let r = rx.request(1);
    assert_eq!(
        r.verified_with,
        [0],
        "the signature covers the encrypted bytes"
    );
    assert_eq!(r.headers["content-type"], "application/pgp-encrypted");
    assert!(r.body.starts_with(b"-----BEGIN PGP MESSAGE-----"));
    let canary = b"canary-7f3a";
    assert!(!r.body.windows(canary.len()).any(|w| w == canary));
    std::fs::write(env.path("body.asc"), &r.body).unwrap();
    let status = env.path("status");
    let plain = gpg(&[
        "--status-file",
        status.to_str().unwrap(),
        "--decrypt",
        env.path("body.asc").to_str().unwrap(),
    ]);
    let status = String::from_utf8_lossy(&std::fs::read(status).unwrap()).into_owned();
    assert!(
        status.contains("GOODSIG"),
        "signed by the service: {status}"
    );
    let body: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(body, expected_json(false));
}

#[tokio::test]
async fn receiver_down_is_retryable_then_delivered() {
    let Some(env) = Env::new(1) else { return };
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}/hook");
    let sink = build(&env.config(&url, "timeout_secs = 5")).await;
    let err = deliver(&sink).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.reason(), FailureReason::Connection, "{err}");
    assert!(sink.healthcheck().await.is_err());
    let rx = env.receiver(port, &env.secrets, "rx");
    sink.healthcheck().await.unwrap();
    deliver(&sink).await.unwrap();
    assert_eq!(rx.request(1).verified_with, [0]);
}

#[tokio::test]
async fn server_error_is_retried_with_the_same_webhook_id() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    rx.script(json!([
        {"status": 500, "body": "database\u{0007} down"},
        {"status": 503, "headers": {"Retry-After": "30"}},
        {"status": 429, "headers": {"Retry-After": "5"}},
        {"status": 200, "body": "{\"accepted\":true}"}
    ]));
    let sink = build(&env.config(&rx.url(), "")).await;
    let err = deliver(&sink).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.message().contains("HTTP 500") && err.message().contains("database  down"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::PeerError);
    assert_eq!(err.retry_after(), None);
    let err = deliver(&sink).await.unwrap_err();
    assert!(
        err.is_retryable() && err.message().contains("retry after 30 s"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::PeerError);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    let err = deliver(&sink).await.unwrap_err();
    assert!(
        err.is_retryable() && err.message().contains("retry after 5 s"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::Quota);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    let receipt = deliver(&sink).await.unwrap();
    assert_eq!(receipt.value, "HTTP 200 OK: {\"accepted\":true}");
    assert_eq!(rx.count(), 4);
    let ids: Vec<_> = (1..=4)
        .map(|n| rx.request(n).headers["webhook-id"].clone())
        .collect();
    assert!(
        ids.iter().all(|id| id == "01JDWEBHOOKTEST0000000000A"),
        "{ids:?}"
    );
    assert!((1..=4).all(|n| rx.request(n).body == rx.request(1).body));
}

#[tokio::test]
async fn gone_and_redirects_are_permanent() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    rx.script(json!([
        {"status": 410, "body": "x".repeat(2000)},
        {"status": 302, "headers": {"Location": "https://127.0.0.1:1/elsewhere"}}
    ]));
    let sink = build(&env.config(&rx.url(), "")).await;
    let err = deliver(&sink).await.unwrap_err();
    assert!(
        !err.is_retryable() && err.message().contains("HTTP 410 Gone"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::RejectedByPeer);
    assert!(
        err.message().len() < 600,
        "the excerpt is bounded: {}",
        err.message().len()
    );
    let err = deliver(&sink).await.unwrap_err();
    assert!(
        !err.is_retryable() && err.message().contains("HTTP 302"),
        "{err}"
    );
    assert!(err.message().contains("not followed"), "{err}");
    assert_eq!(err.reason(), FailureReason::BadConfig);
    assert_eq!(rx.count(), 2, "the redirect was not followed");
}

#[tokio::test]
async fn slow_receiver_times_out_as_retryable() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    rx.script(json!([{"sleep": 4, "status": 200}]));
    let sink = build(&env.config(&rx.url(), "timeout_secs = 1")).await;
    let started = std::time::Instant::now();
    let err = deliver(&sink).await.unwrap_err();
    assert!(
        err.is_retryable() && err.message().contains("timed out"),
        "{err}"
    );
    assert_eq!(err.reason(), FailureReason::Timeout);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // The next attempt is answered in time and carries the same id.
    deliver(&sink).await.unwrap();
    assert_eq!(
        rx.request(2).headers["webhook-id"],
        rx.request(1).headers["webhook-id"]
    );
}

#[tokio::test]
async fn an_unknown_ca_is_not_trusted() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    let secrets = env.secret_file(&env.secrets);
    let config: Config = toml::from_str(&format!(
        "url = \"{}\"\nsecret_file = \"{}\"\nallow_private = true",
        rx.url(),
        secrets.display()
    ))
    .unwrap();
    let sink = build(&config).await;
    let err = deliver(&sink).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.reason(), FailureReason::Tls, "{err}");
    assert_eq!(rx.count(), 0);
}

#[tokio::test]
async fn the_ssrf_guard_refuses_loopback_without_allow_private() {
    let Some(env) = Env::new(1) else { return };
    let rx = env.receiver(free_port(), &env.secrets, "rx");
    let secrets = env.secret_file(&env.secrets);
    let config = |url: &str| -> Config {
        toml::from_str(&format!(
            "url = \"{url}\"\nsecret_file = \"{}\"\nca_file = \"{}\"",
            secrets.display(),
            env.ca.display()
        ))
        .unwrap()
    };
    // An address literal: refused by validation.
    let literal = config(&rx.url());
    assert_eq!(literal.validate().unwrap_err().key, "url");
    // A name resolving to loopback: refused when the sink is built.
    let named = config(&format!("https://localhost:{}/hook", rx.port));
    named.validate().unwrap();
    let err = WebhookSink::build("hook", &named, Path::new("/"), None)
        .await
        .unwrap_err();
    assert_eq!(err.key, "url");
    assert!(err.message.contains("allow_private"), "{err}");
    assert_eq!(rx.count(), 0);
}
