//! Test CAs and a server certificate for 127.0.0.1 and localhost, made by the `openssl` CLI
//! (EC P-256 keys, valid for two days). Used by the webhook receiver and the MySQL sink's
//! private MariaDB servers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::run_bytes;

/// The files [`loopback`] wrote.
pub struct Certificates {
    /// The CA's certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The CA's private key (PEM).
    pub ca_key: PathBuf,
    /// The server's certificate (PEM), for IP 127.0.0.1 and DNS localhost, signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PEM, unencrypted).
    pub key: PathBuf,
}

/// Runs `openssl args...` in `dir`, failing the test with its stderr when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    run_bytes(Command::new("openssl").current_dir(dir).args(args));
}

/// Makes a self-signed CA in `dir`: `<name>.pem` (certificate, common name
/// `SecureForm test <name>`, a critical CA:TRUE and keyCertSign/cRLSign) and `<name>.key`.
pub fn ca(dir: &Path, name: &str) {
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

/// Makes a CA (`dir/ca.pem`, `dir/ca.key`, see [`ca`]) and a server certificate it signed
/// (`dir/server.pem`, key `dir/server.key`) for 127.0.0.1 and localhost: not a CA,
/// `digitalSignature`, `serverAuth`.
pub fn loopback(dir: &Path) -> Certificates {
    ca(dir, "ca");
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
    fs::write(
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
    Certificates {
        ca: dir.join("ca.pem"),
        ca_key: dir.join("ca.key"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}
