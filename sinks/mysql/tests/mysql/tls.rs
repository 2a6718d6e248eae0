//! TLS to the database with a private CA, against a server that refuses plaintext; and a sink
//! built while the database is down, which catches up once it is up.

use std::path::Path;
use std::process::Command;

use crate::support::{self, Mariadb, ServerTls};
use crate::{build, deliver};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl not runnable ({e}): apt-get install openssl"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.pem`, `<name>.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=SecureForm test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn make_server_tls(dir: &Path) -> ServerTls {
    make_ca(dir, "ca");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    ServerTls {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

#[tokio::test]
async fn tls_with_a_private_ca_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let server = Mariadb::start_with(Some(make_server_tls(dir.path()))).await;
    make_ca(dir.path(), "other");
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
