//! Test support: real MariaDB servers (the shared one at 127.0.0.1:3306, or private ones this
//! code starts in temporary folders), submissions, keys, and decrypting with Python.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secureform_contract::{Fields, FileMeta, Source, Submission};
pub use secureform_testkit::ids::{new_id, unique};
use secureform_testkit::net::free_port;
use sqlx::{Connection, Executor, MySqlConnection};

fn find_program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` not found: install the Debian package `{package}` (apt-get install {package})"
    );
}

/// TLS files for a private server.
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A private MariaDB server in a temporary folder, on a free 127.0.0.1 port, killed on drop.
pub struct Mariadb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    tls: Option<ServerTls>,
}

impl Mariadb {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    pub async fn start_with(tls: Option<ServerTls>) -> Self {
        let install = find_program("mariadb-install-db", "mariadb-server");
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("data");
        // A private tmpdir: servers sharing /tmp collide on temporary table names.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let out = Command::new(install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(user_arg())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = Mariadb {
            dir,
            port: free_port(),
            child: None,
            tls,
        };
        server.spawn().await;
        let mut conn = server.connect("mysql").await;
        conn.execute("CREATE DATABASE IF NOT EXISTS test")
            .await
            .unwrap();
        server
    }

    async fn spawn(&mut self) {
        let mariadbd = find_program("mariadbd", "mariadb-server");
        let d = self.dir.path();
        let mut cmd = Command::new(mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", d.join("s.sock").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--pid-file={}", d.join("p.pid").display()))
            .arg(format!("--log-error={}", d.join("err.log").display()))
            .arg("--innodb-log-file-size=8M")
            .arg("--innodb-buffer-pool-size=32M")
            .args(user_arg())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(tls) = &self.tls {
            cmd.arg(format!("--ssl-ca={}", tls.ca.display()))
                .arg(format!("--ssl-cert={}", tls.cert.display()))
                .arg(format!("--ssl-key={}", tls.key.display()))
                .arg("--require-secure-transport=ON");
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mariadbd exited ({status}): {}", self.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start: {}",
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default()
    }

    /// `mysql://root@127.0.0.1:PORT/test`
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn datadir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn connect(&self, db: &str) -> MySqlConnection {
        let url = format!("mysql://root@127.0.0.1:{}/{db}", self.port);
        let url = match &self.tls {
            Some(t) => format!("{url}?ssl-mode=VERIFY_CA&ssl-ca={}", t.ca.display()),
            None => url,
        };
        MySqlConnection::connect(&url).await.unwrap()
    }

    /// Shuts the server down cleanly (everything flushed to its files) and waits for it.
    pub async fn stop(&mut self) {
        let mut conn = self.connect("mysql").await;
        let _ = conn.execute("SHUTDOWN").await;
        drop(conn);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "mariadbd did not stop");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Starts the server again on the same data and port.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn user_arg() -> Vec<String> {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    if uid == 0 {
        vec!["--user=root".into()]
    } else {
        Vec::new()
    }
}

/// A database to test against: the shared server (SECUREFORM_TEST_MYSQL_URL, or 127.0.0.1:3306
/// when it answers), else a private one.
pub struct Db {
    pub url: String,
    _own: Option<Mariadb>,
}

pub async fn shared() -> Db {
    if let Ok(url) = std::env::var("SECUREFORM_TEST_MYSQL_URL") {
        return Db { url, _own: None };
    }
    let addr = "127.0.0.1:3306".parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        return Db {
            url: "mysql://root@127.0.0.1:3306/test".into(),
            _own: None,
        };
    }
    let own = Mariadb::start().await;
    Db {
        url: own.url(),
        _own: Some(own),
    }
}

impl Db {
    pub async fn connect(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url).await.unwrap()
    }

    /// Drops a test's tables (and their files tables) from the shared database.
    pub async fn drop_tables(&self, tables: &[&str]) {
        let mut conn = self.connect().await;
        for t in tables {
            let sql = format!("DROP TABLE IF EXISTS `{t}`, `{t}_files`");
            conn.execute(sql.as_str()).await.unwrap();
        }
    }
}

/// Writes a key file (mode 0600) into `dir` and returns its path.
pub fn key_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A fresh 32-byte key: (raw, base64).
pub fn gcm_key() -> ([u8; 32], String) {
    use base64::Engine;
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).unwrap();
    (raw, base64::engine::general_purpose::STANDARD.encode(raw))
}

/// A submission of `form` with `fields` and files (metadata matching `files`' bytes).
pub fn submission(form: &str, fields: &[(&str, &str)], files: &[&[u8]]) -> Submission {
    let mut f = Fields::new();
    for (name, value) in fields {
        f.push(*name, *value);
    }
    Submission {
        id: new_id(),
        form: form.into(),
        received_at: "2026-11-27T10:00:00Z".into(),
        source: Source::Multipart,
        fields: f,
        files: files
            .iter()
            .enumerate()
            .map(|(i, bytes)| FileMeta {
                field: format!("file{i}"),
                filename: format!("f{i}.bin"),
                content_type: "application/octet-stream".into(),
                size: bytes.len() as u64,
                sha256: String::new(),
            })
            .collect(),
    }
}

/// Parses a sink configuration from TOML.
pub fn config(text: &str) -> secureform_mysql::Config {
    toml::from_str(text).unwrap()
}

/// Opens one aes_gcm cell with Python's `cryptography`, following FORMAT.md.
pub fn python_open(
    key: &[u8; 32],
    table: &str,
    column: &str,
    row_key: &str,
    value: &[u8],
) -> Vec<u8> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mysql/open_cell.py");
    let python = find_program("python3", "python3");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(
        "{}\n{table}\n{column}\n{row_key}\n{}\n",
        hex::encode(key),
        hex::encode(value)
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'cryptography'"),
        "Python's cryptography is missing: apt-get install python3-cryptography (or pip install cryptography)"
    );
    assert!(
        out.status.success(),
        "python could not open the cell: {stderr}"
    );
    out.stdout
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}
