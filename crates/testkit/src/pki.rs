//! A test CA and a server certificate for 127.0.0.1 and localhost, made by the `openssl` CLI
//! (EC P-256 keys, valid for two days).

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

/// Makes a CA (`dir/ca.pem`, `dir/ca.key`) and a server certificate it signed
/// (`dir/server.pem`, key `dir/server.key`; `serverAuth`, not a CA) for 127.0.0.1 and localhost.
/// `ca_name` is the CA's common name.
pub fn loopback(dir: &Path, ca_name: &str) -> Certificates {
    let p = |name: &str| dir.join(name);
    let (ca, ca_key, cert, key, csr, ext) = (
        p("ca.pem"),
        p("ca.key"),
        p("server.pem"),
        p("server.key"),
        p("server.csr"),
        p("ext.cnf"),
    );
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    run_bytes(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={ca_name}"),
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]));
    run_bytes(Command::new("openssl").args([
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]));
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run_bytes(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]));
    Certificates {
        ca,
        ca_key,
        cert,
        key,
    }
}
