//! The email sink's health check against a real SMTP server (aiosmtpd, STARTTLS required): it
//! logs in as a delivery would and sends no message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use secureform_contract::Sink;
use secureform_email::EmailSink;
use support::*;

fn sink_config(port: u16, ca: &Path, extra: &str) -> secureform_email::Config {
    config(&format!(
        "mode = \"tls\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"forms@example.com\"\n\
         to = [\"alice@example.com\"]\nca_file = {}\ntimeout_secs = 5\n{extra}",
        q(ca)
    ))
}

#[tokio::test]
async fn the_health_check_logs_in_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("pki")).unwrap();
    let pki = Pki::new(&d.join("pki"));
    let port = free_port();
    let opts = ServerOptions {
        user: Some(("forms".into(), "right".into())),
        ..Default::default()
    };
    let server = SmtpServer::start(&pki, port, &d.join("store"), &opts);
    std::env::set_var("EMAIL_HEALTH_RIGHT", "right");
    std::env::set_var("EMAIL_HEALTH_WRONG", "wrong");
    let login = |var: &str| format!("username = \"forms\"\npassword_env = \"{var}\"\n");

    let good = EmailSink::build(
        "mail",
        &sink_config(port, &pki.ca, &login("EMAIL_HEALTH_RIGHT")),
        d,
        None,
    )
    .await
    .unwrap();
    good.healthcheck().await.unwrap();

    let wrong = EmailSink::build(
        "mail",
        &sink_config(port, &pki.ca, &login("EMAIL_HEALTH_WRONG")),
        d,
        None,
    )
    .await
    .unwrap();
    let err = wrong.healthcheck().await.unwrap_err();
    assert!(err.message().contains("535"), "{err}");
    assert_eq!(
        err.reason(),
        secureform_contract::FailureReason::Auth,
        "{err}"
    );

    let down = EmailSink::build("mail", &sink_config(free_port(), &pki.ca, ""), d, None)
        .await
        .unwrap();
    assert!(down.healthcheck().await.unwrap_err().is_retryable());
    assert!(
        server.messages().is_empty(),
        "a health check sent a message"
    );
}
