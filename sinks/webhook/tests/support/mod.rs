//! Test support: a CA and a server certificate made by `openssl`, the Python receiver
//! (`receiver.py`, verifying with the `standardwebhooks` package), secrets, and submissions.
//! Shared with the service's black-box tests (`tests/api/webhook.rs`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use secureform_contract::{Fields, FileMeta, FileSource, MemoryFiles, Source, Submission};
use tempfile::TempDir;

/// Runs a command, failing the test with its stderr when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Python with `standardwebhooks`: the tests' virtualenv when present, else `python3`.
/// `None` (the test is skipped, with a message) when there is none, unless
/// `SECUREFORM_REQUIRE_ALL` is set: then the test fails.
pub fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("SECUREFORM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/secureform-test-venv"));
    let candidates = [venv.join("bin/python3"), PathBuf::from("python3")];
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import standardwebhooks"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
    }
    let why = "python3 with the `standardwebhooks` package is missing \
               (pip install standardwebhooks, as scripts/test.sh does)";
    if std::env::var_os("SECUREFORM_REQUIRE_ALL").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// A test's folder: certificates, secrets, the receiver's records.
pub struct Env {
    pub dir: TempDir,
    pub python: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub secrets: Vec<String>,
}

pub fn secret(byte: u8) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

impl Env {
    /// Certificates for 127.0.0.1 and localhost under a fresh CA, and `n` secrets.
    pub fn new(n: u8) -> Option<Env> {
        let python = python()?;
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        let (ca, ca_key, cert, key, csr, ext) = (
            p("ca.pem"),
            p("ca.key"),
            p("server.pem"),
            p("server.key"),
            p("server.csr"),
            p("ext.cnf"),
        );
        let s = |p: &Path| p.to_str().unwrap().to_owned();
        run(Command::new("openssl").args([
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
            "/CN=webhook test CA",
            "-keyout",
            &s(&ca_key),
            "-out",
            &s(&ca),
        ]));
        run(Command::new("openssl").args([
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
        run(Command::new("openssl").args([
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
        let secrets = (1..=n).map(secret).collect();
        Some(Env {
            dir,
            python,
            ca,
            cert,
            key,
            secrets,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the secrets the sink signs with to a private file; returns its path.
    pub fn secret_file(&self, secrets: &[String]) -> PathBuf {
        let path = self.path("secrets");
        fs::write(&path, secrets.join("\n") + "\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A configuration for `url`, signing with all of the env's secrets, trusting its CA.
    pub fn config(&self, url: &str, extra: &str) -> secureform_webhook::Config {
        let secrets = self.secret_file(&self.secrets);
        toml::from_str(&format!(
            "url = \"{url}\"\nsecret_file = \"{}\"\nca_file = \"{}\"\nallow_private = true\n{extra}",
            secrets.display(),
            self.ca.display()
        ))
        .unwrap()
    }

    /// Starts the receiver on `port`, verifying with `secrets`, recording into `records`.
    pub fn receiver(&self, port: u16, secrets: &[String], records: &str) -> Receiver {
        let dir = self.path(records);
        fs::create_dir_all(&dir).unwrap();
        let _ = fs::remove_file(dir.join("ready"));
        let script = receiver_script();
        let child = Command::new(&self.python)
            .arg(script)
            .arg(port.to_string())
            .arg(&self.cert)
            .arg(&self.key)
            .arg(&dir)
            .env("RECEIVER_SECRETS", secrets.join(" "))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let receiver = Receiver { child, dir, port };
        let start = Instant::now();
        while !receiver.dir.join("ready").exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the receiver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        receiver
    }
}

/// `receiver.py`. This module is also compiled into the service's black-box tests
/// (`tests/api/webhook.rs`), whose manifest folder is the workspace's root.
pub fn receiver_script() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        manifest.join("tests/receiver.py"),
        manifest.join("sinks/webhook/tests/receiver.py"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("receiver.py")
}

/// The running receiver; killed when dropped.
pub struct Receiver {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
}

/// One request the receiver recorded.
pub struct Recorded {
    pub headers: serde_json::Value,
    pub verified_with: Vec<u64>,
    pub body: Vec<u8>,
    /// When the receiver read it (Unix seconds).
    pub received_at: f64,
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/hook", self.port)
    }

    /// Sets the answers to the next requests, e.g. `[{"status": 500}]`.
    pub fn script(&self, answers: serde_json::Value) {
        fs::write(self.dir.join("script.json"), answers.to_string()).unwrap();
    }

    /// Request `n` (from 1).
    pub fn request(&self, n: usize) -> Recorded {
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(self.dir.join(format!("req-{n}.json"))).unwrap())
                .unwrap();
        Recorded {
            headers: meta["headers"].clone(),
            verified_with: meta["verified_with"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect(),
            body: fs::read(self.dir.join(format!("req-{n}.body"))).unwrap(),
            received_at: meta["received_at"].as_f64().unwrap_or(0.0),
        }
    }

    /// How many POSTs were recorded.
    pub fn count(&self) -> usize {
        (1..)
            .take_while(|n| self.dir.join(format!("req-{n}.json")).exists())
            .count()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A submission with two files: a small one (inline) and one of 4096 bytes.
pub fn submission() -> (Arc<Submission>, Arc<dyn FileSource>, Vec<Vec<u8>>) {
    let mut fields = Fields::new();
    fields.push("email", "canary-7f3a@example.com");
    fields.push("topics", "billing");
    fields.push("topics", "support");
    fields.push("note", "line one\nline \"two\" é");
    let small = b"small file bytes \x00\x01\xff".to_vec();
    let large = vec![0x5a_u8; 4096];
    let meta = |field: &str, bytes: &[u8], name: &str| FileMeta {
        field: field.into(),
        filename: name.into(),
        content_type: "application/octet-stream".into(),
        size: bytes.len() as u64,
        sha256: "00".repeat(32),
    };
    let s = Submission {
        id: "01JDWEBHOOKTEST0000000000A".into(),
        form: "contact".into(),
        received_at: "2026-11-27T10:00:00Z".into(),
        source: Source::Multipart,
        fields,
        files: vec![meta("a", &small, "a.bin"), meta("b", &large, "b.bin")],
    };
    let files: Arc<dyn FileSource> = Arc::new(MemoryFiles(vec![small.clone(), large.clone()]));
    (Arc::new(s), files, vec![small, large])
}
