//! Real peers for the email sink's tests: an aiosmtpd server with STARTTLS (smtpd.py), a test
//! CA made with the `openssl` CLI, GnuPG homes, and Python's email parser (parts.py). Every
//! program is started by the test itself; a missing one fails the test naming its Debian package.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use secureform_contract::{Fields, FileMeta, Scalar, Source, Submission};
use sha2::{Digest, Sha256};

pub const PYTHON: &str = "/usr/bin/python3";

/// Fails with the Debian package to install when `program` cannot be found (the workspace's
/// test kit, shared with the other sinks' tests).
pub fn need(program: &str, package: &str) {
    secureform_testkit::cmd::require(program, package);
}

fn need_aiosmtpd() {
    need(PYTHON, "python3");
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "aiosmtpd is missing: apt-get install python3-aiosmtpd");
}

/// Runs a command, failing the test with its stderr when it does not succeed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub use secureform_testkit::net::free_port;

pub fn support_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// A test CA and a server certificate for 127.0.0.1 / localhost, made with the openssl CLI.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        need("openssl", "openssl");
        let p = |n: &str| dir.join(n);
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem"))
            .args(["-days", "2", "-subj", "/CN=SecureForm test CA"]));
        std::fs::write(
            p("server.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes"])
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr"))
            .args(["-subj", "/CN=localhost"]));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("server.pem"))
            .arg("-extfile")
            .arg(p("server.cnf")));
        Pki {
            dir: dir.to_path_buf(),
            ca: p("ca.pem"),
            ca_key: p("ca.key"),
            server_cert: p("server.pem"),
            server_key: p("server.key"),
        }
    }

    /// An S/MIME recipient certificate and key signed by the test CA, valid between `start` and
    /// `end` (openssl `ca` dates, e.g. `20200101000000Z`), or for two days when `None`.
    pub fn smime_recipient(&self, name: &str, dates: Option<(&str, &str)>) -> (PathBuf, PathBuf) {
        let d = self.dir.join(format!("ca-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        // A serial of its own per recipient: issuer and serial number name the recipient.
        std::fs::write(d.join("serial"), format!("{}\n", hex::encode(name))).unwrap();
        let cnf = format!(
            "[ca]\ndefault_ca=d\n[d]\ndatabase={dir}/index.txt\nserial={dir}/serial\n\
             new_certs_dir={dir}\ndefault_md=sha256\npolicy=p\nx509_extensions=e\n\
             default_days=2\nunique_subject=no\n[p]\ncommonName=supplied\n\
             [e]\nkeyUsage=critical,keyEncipherment,digitalSignature\n\
             extendedKeyUsage=emailProtection\nsubjectAltName=email:{name}@example.com\n",
            dir = d.display()
        );
        std::fs::write(d.join("ca.cnf"), cnf).unwrap();
        let (key, csr, cert) = (d.join("key.pem"), d.join("req.csr"), d.join("cert.pem"));
        run(Command::new("openssl")
            .args(["req", "-newkey", "rsa:2048", "-nodes"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/CN={name}")]));
        let mut ca = Command::new("openssl");
        ca.args(["ca", "-batch", "-notext", "-config"])
            .arg(d.join("ca.cnf"))
            .arg("-keyfile")
            .arg(&self.ca_key)
            .arg("-cert")
            .arg(&self.ca)
            .arg("-in")
            .arg(&csr)
            .arg("-out")
            .arg(&cert);
        if let Some((start, end)) = dates {
            ca.args(["-startdate", start, "-enddate", end]);
        }
        run(&mut ca);
        (cert, key)
    }
}

/// How the test SMTP server behaves.
#[derive(Default)]
pub struct ServerOptions {
    pub user: Option<(String, String)>,
    pub reject: Vec<String>,
    pub tempfail: Vec<String>,
    pub implicit_tls: bool,
    pub no_starttls: bool,
    /// The largest message accepted, in bytes (default 200 MiB).
    pub data_size_limit: Option<u64>,
}

/// smtpd.py on 127.0.0.1:`port`, killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub store: PathBuf,
}

impl SmtpServer {
    pub fn start(pki: &Pki, port: u16, store: &Path, opts: &ServerOptions) -> SmtpServer {
        need_aiosmtpd();
        std::fs::create_dir_all(store).unwrap();
        let mut cmd = Command::new(PYTHON);
        cmd.arg(support_file("smtpd.py"))
            .args(["--port", &port.to_string()])
            .arg("--cert")
            .arg(&pki.server_cert)
            .arg("--key")
            .arg(&pki.server_key)
            .arg("--store")
            .arg(store)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some((user, password)) = &opts.user {
            cmd.args(["--user", user, "--password", password]);
        }
        for r in &opts.reject {
            cmd.args(["--reject", r]);
        }
        for r in &opts.tempfail {
            cmd.args(["--tempfail", r]);
        }
        if opts.implicit_tls {
            cmd.arg("--implicit-tls");
        }
        if opts.no_starttls {
            cmd.arg("--no-starttls");
        }
        if let Some(limit) = opts.data_size_limit {
            cmd.args(["--data-size-limit", &limit.to_string()]);
        }
        let mut child = cmd.spawn().expect("start smtpd.py");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY", "smtpd.py did not start");
        SmtpServer {
            child,
            port,
            store: store.to_path_buf(),
        }
    }

    /// The stored messages, oldest first: (raw bytes, envelope metadata).
    pub fn messages(&self) -> Vec<(PathBuf, Vec<u8>, serde_json::Value)> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.store)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let raw = std::fs::read(&p).unwrap();
                let meta = std::fs::read(p.with_extension("json")).unwrap();
                (p, raw, serde_json::from_slice(&meta).unwrap())
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits a message with Python's email parser; returns the manifest (see parts.py).
pub fn parts(message: &Path, out: &Path) -> serde_json::Value {
    run(Command::new(PYTHON)
        .arg(support_file("parts.py"))
        .arg(message)
        .arg(out));
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

/// The decoded payload of every leaf part.
pub fn leaf_payloads(manifest: &serde_json::Value) -> Vec<(serde_json::Value, Vec<u8>)> {
    manifest["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.get("file").is_some())
        .map(|p| {
            (
                p.clone(),
                std::fs::read(p["file"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// A GnuPG home in a temporary folder; its agent is stopped on drop.
pub struct Gpg {
    pub home: tempfile::TempDir,
}

impl Gpg {
    pub fn new() -> Gpg {
        need("gpg", "gnupg");
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        Gpg { home }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(self.home.path()).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    /// Makes a key without passphrase; returns its fingerprint.
    pub fn generate(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
        faked: Option<&str>,
    ) -> String {
        let mut c = self.cmd();
        if let Some(t) = faked {
            c.arg("--faked-system-time").arg(t);
        }
        let out = run(c.args([
            "--status-fd",
            "1",
            "--quick-gen-key",
            uid,
            algo,
            usage,
            expire,
        ]));
        let status = String::from_utf8_lossy(&out.stdout).to_string();
        let line = status.lines().find(|l| l.contains("KEY_CREATED")).unwrap();
        line.split_whitespace().last().unwrap().to_owned()
    }

    pub fn export_public(&self, fpr: &str, to: &Path) {
        let out = run(self.cmd().args(["--armor", "--export", fpr]));
        std::fs::write(to, out.stdout).unwrap();
    }

    /// Writes the secret key with mode 0600 (key files readable by others are refused).
    pub fn export_secret(&self, fpr: &str, to: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let out = run(self.cmd().args(["--armor", "--export-secret-keys", fpr]));
        std::fs::write(to, out.stdout).unwrap();
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn import(&self, file: &Path) {
        run(self.cmd().arg("--import").arg(file));
    }

    /// Decrypts `input`; returns (plaintext, status lines).
    pub fn decrypt(&self, input: &Path) -> (Vec<u8>, String) {
        let out = self.home.path().join("plain.out");
        let status = self.decrypt_to(input, &out);
        (std::fs::read(&out).unwrap(), status)
    }

    /// Decrypts `input` into the file `out`; returns the status-fd text.
    pub fn decrypt_to(&self, input: &Path, out: &Path) -> String {
        let status = self.home.path().join("status.txt");
        let _ = std::fs::remove_file(out);
        run(self
            .cmd()
            .arg("--status-file")
            .arg(&status)
            .arg("--output")
            .arg(out)
            .arg("--decrypt")
            .arg(input));
        String::from_utf8_lossy(&std::fs::read(&status).unwrap()).into_owned()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}

pub use secureform_testkit::ids::new_id;

pub fn file_meta(field: &str, filename: &str, content_type: &str, bytes: &[u8]) -> FileMeta {
    FileMeta {
        field: field.into(),
        filename: filename.into(),
        content_type: content_type.into(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    }
}

/// A submission whose fields exercise escaping, Unicode, lists, numbers, multi-line text, and
/// carry `canary`; and two files (binary and text) that also carry it.
pub fn rich_submission(canary: &str) -> (Submission, Vec<Vec<u8>>) {
    let mut fields = Fields::new();
    fields.push("name", "Zoë Müller-Łukasiewicz");
    fields.push("email", "zoe@example.com");
    fields.push(
        "message",
        format!("Hello <b>team</b> & \"friends\",\r\nline two\nline three {canary}"),
    );
    fields.push("topics", "billing");
    fields.push("topics", "support");
    fields.push(
        "amount",
        Scalar::Number(serde_json::Number::from_f64(42.5).unwrap()),
    );
    fields.push("agree", Scalar::Bool(true));
    fields.push("secret", canary);
    let binary: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let text = format!("notes with the canary {canary}\n.\n..leading dots\r\nend").into_bytes();
    let files = vec![
        file_meta(
            "resume",
            "../../évil\r\nname.pdf",
            "application/pdf",
            &binary,
        ),
        file_meta("notes", "notes.txt", "text/plain; charset=utf-8", &text),
    ];
    let s = Submission {
        id: new_id(),
        form: "contact".into(),
        received_at: "2026-11-27T10:00:00Z".into(),
        source: Source::Multipart,
        fields,
        files,
    };
    (s, vec![binary, text])
}

/// Waits until `f` holds, up to `secs`.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Writes a password file with mode 0600.
pub fn password_file(dir: &Path, password: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("smtp-password");
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A TOML string literal for a path.
pub fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Parses an email sink table.
pub fn config(toml_text: &str) -> secureform_email::Config {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("config: {e}\n{toml_text}"))
}
