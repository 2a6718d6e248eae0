//! TLS to the database with a private CA, against a server that refuses plaintext; and a sink
//! built while the database is down, which catches up once it is up.

use std::path::Path;

use secureform_testkit::pki;

use crate::support::{self, Mariadb, ServerTls};
use crate::{build, deliver};

/// The private CA and the server's certificate, from the shared test PKI.
fn make_server_tls(dir: &Path) -> ServerTls {
    let c = pki::loopback(dir);
    ServerTls {
        ca: c.ca,
        cert: c.cert,
        key: c.key,
    }
}

#[tokio::test]
async fn tls_with_a_private_ca_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let server = Mariadb::start_with(Some(make_server_tls(dir.path()))).await;
    pki::ca(dir.path(), "other");
    let port = server.port();
    let sink_config = |url_tail: &str, ca: &str| {
        support::config(&format!(
            "url = \"mysql://root@localhost:{port}/test{url_tail}\"\n\
             table = \"tls_rows\"\nencryption = \"none\"\ncreate_table = true\n{ca}"
        ))
    };

    // The private CA (relative to the configuration's folder): verified TLS, row delivered.
    let sink = build(&sink_config("", "ca_file = \"ca.pem\""), dir.path()).await;
    let s = support::submission("contact", &[("email", "a@example.com")], &[]);
    deliver(&sink, &s, &[]).await.unwrap();

    // Another CA: the server's certificate is not trusted, and the health check says so.
    let other = secureform_mysql::MysqlSink::build(
        "db",
        &sink_config("", "ca_file = \"other.pem\""),
        dir.path(),
    )
    .await
    .unwrap();
    let err = other.check_table().await.unwrap_err();
    assert_eq!(err.key, "url");
    assert!(
        err.message.contains("TLS") && err.message.contains("certificate"),
        "{err}"
    );
    eprintln!("{err}");

    // The server refuses plaintext; that too is a health error, not a silent downgrade.
    let err = secureform_mysql::MysqlSink::build(
        "db",
        &sink_config("?ssl-mode=DISABLED", ""),
        dir.path(),
    )
    .await
    .unwrap()
    .check_table()
    .await
    .unwrap_err();
    assert_eq!(err.key, "url");
}

#[tokio::test]
async fn a_sink_built_while_the_database_is_down_catches_up() {
    let mut server = Mariadb::start().await;
    server.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let table = support::unique("late");
    let config = support::config(&format!(
        "url = \"{}\"\ntable = \"{table}\"\nencryption = \"none\"\ncreate_table = true\n\
         connect_timeout_secs = 1",
        server.url()
    ));
    let sink = build(&config, dir.path()).await;
    let s = support::submission("contact", &[("n", "1")], &[]);
    let err = deliver(&sink, &s, &[]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");

    server.restart().await;
    deliver(&sink, &s, &[]).await.unwrap();
    let rows = secureform_mysql::read_rows(&config, dir.path(), None, 10)
        .await
        .unwrap();
    assert_eq!(rows, vec![serde_json::to_value(&s).unwrap()]);
}
