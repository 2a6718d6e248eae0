//! The webhook sink's test peer: `receiver.py` (in this crate's folder), an HTTPS receiver on
//! loopback verifying every POST with the `standardwebhooks` package, under a test CA made by
//! [`crate::pki`]; and the secrets it verifies with. Used by the sink's tests and the service's
//! (`tests/api/webhook.rs`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use tempfile::TempDir;

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
    /// The folder (removed on drop).
    pub dir: TempDir,
    /// The Python that runs the receiver (see [`python`]).
    pub python: PathBuf,
    /// The test CA's certificate: what the sink trusts.
    pub ca: PathBuf,
    /// The receiver's certificate, for 127.0.0.1 and localhost.
    pub cert: PathBuf,
    /// The receiver's private key.
    pub key: PathBuf,
    /// `whsec_` secrets, made by [`secret`] from the bytes 1..=n.
    pub secrets: Vec<String>,
}

/// A Standard Webhooks secret (`whsec_` and base64 of 32 bytes `byte`).
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
        let crate::pki::Certificates { ca, cert, key, .. } = crate::pki::loopback(dir.path());
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

    /// `name` in the env's folder.
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

/// `receiver.py`, in this crate's folder.
pub fn receiver_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("receiver.py")
}

/// The running receiver; killed when dropped.
pub struct Receiver {
    child: Child,
    /// Where it records requests and reads its script.
    pub dir: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

/// One request the receiver recorded.
pub struct Recorded {
    /// The request's headers (a JSON object).
    pub headers: serde_json::Value,
    /// The indexes of the secrets the signature verified with.
    pub verified_with: Vec<u64>,
    /// The raw body.
    pub body: Vec<u8>,
    /// When the receiver read it (Unix seconds).
    pub received_at: f64,
}

impl Receiver {
    /// `https://127.0.0.1:PORT/hook`
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
