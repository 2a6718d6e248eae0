//! Starting the real `secureform` binary in a temporary folder, and talking to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use secureform_testkit::fs::tempdir;

pub const BIN: &str = env!("CARGO_BIN_EXE_secureform");

/// A running server in its own folder. Killed on drop.
pub struct Server {
    pub dir: PathBuf,
    pub base: String,
    pub config: Option<PathBuf>,
    child: Child,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the embedded default in a fresh temporary folder.
    pub fn embedded() -> Server {
        let dir = tempdir();
        Server::start_in(&dir, None)
    }

    /// Starts with a configuration file written into a fresh temporary folder.
    pub fn with_config(toml: &str) -> Server {
        let dir = tempdir();
        let path = dir.join("secureform.toml");
        std::fs::write(&path, toml).unwrap();
        Server::start_in(&dir, Some(path))
    }

    /// Starts (or restarts) a server in `dir`.
    pub fn start_in(dir: &Path, config: Option<PathBuf>) -> Server {
        Server::start_with_env(dir, config, &[])
    }

    /// Starts with a configuration file and these environment variables set for the server.
    pub fn with_config_env(toml: &str, envs: &[(&str, &str)]) -> Server {
        let dir = tempdir();
        let path = dir.join("secureform.toml");
        std::fs::write(&path, toml).unwrap();
        Server::start_with_env(&dir, Some(path), envs)
    }

    /// Starts a server in `dir` with `envs` added to its environment.
    pub fn start_with_env(dir: &Path, config: Option<PathBuf>, envs: &[(&str, &str)]) -> Server {
        if let Some(c) = &config {
            on_postgres_when_asked(dir, c);
        }
        let mut cmd = Command::new(BIN);
        cmd.envs(envs.iter().copied());
        cmd.current_dir(dir)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0");
        if let Some(c) = &config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start secureform");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start:\n{}", log.lock().unwrap());
            }
        };
        Server {
            dir: dir.to_path_buf(),
            base,
            config,
            child,
            log,
        }
    }

    /// The server process's id (to read its memory use from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Kills the process at once (SIGKILL): nothing is flushed on the way out.
    pub fn kill9(mut self) -> (PathBuf, Option<PathBuf>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self.config.clone())
    }

    /// Runs a `secureform` subcommand in the server's folder.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir).args(args);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.output().unwrap()
    }

    /// The ids in the Documents store, via `docs list --json`.
    pub fn doc_ids(&self) -> Vec<String> {
        let out = self.cli(&["docs", "list", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until the Documents store holds `id`.
    pub fn wait_for_doc(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.doc_ids().iter().any(|d| d == id) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "document {id} never arrived; log:\n{}",
            self.log.lock().unwrap()
        );
    }

    /// `docs get ID --out DIR`: the submission JSON and the files' bytes.
    pub fn doc(&self, id: &str, extra: &[&str]) -> (serde_json::Value, Vec<Vec<u8>>) {
        let (json, _, files) = self.doc_raw(id, extra);
        (json, files)
    }

    /// Like [`Server::doc`], with the submission's JSON text as written (field order intact).
    pub fn doc_raw(&self, id: &str, extra: &[&str]) -> (serde_json::Value, String, Vec<Vec<u8>>) {
        let out_dir = self.dir.join(format!("get-{id}"));
        let _ = std::fs::remove_dir_all(&out_dir);
        let mut args = vec!["docs", "get", id, "--out", out_dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(out_dir.join("submission.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let n = json["files"].as_array().map(|a| a.len()).unwrap_or(0);
        let files = (0..n)
            .map(|i| std::fs::read(out_dir.join("files").join(i.to_string())).unwrap())
            .collect();
        std::fs::remove_dir_all(&out_dir).unwrap();
        (json, text, files)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this run puts every configured server's spool on PostgreSQL
/// (`SECUREFORM_TEST_STORAGE=postgres`; `scripts/test.sh` runs the suite once per backend).
pub fn on_postgres() -> bool {
    std::env::var("SECUREFORM_TEST_STORAGE").is_ok_and(|v| v == "postgres")
}

/// For a test that is about the SQLite spool itself (its file, its locking, its recovery):
/// true, saying so, when this run is on PostgreSQL (the caller returns early).
pub fn sqlite_only(what: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped on the postgres run: {what} is about the SQLite spool");
        return true;
    }
    false
}

/// One query on `server`'s spool database, whichever backend holds it: the rows' columns
/// joined by `|`, booleans as SQLite prints them (`1`/`0`; PostgreSQL's `t`/`f` are mapped).
pub fn spool_query(server: &Server, sql: &str) -> String {
    let out = match std::fs::read_to_string(server.dir.join(".test-postgres-db")) {
        Ok(db) => Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                db.trim(),
                "-Atc",
                sql,
            ])
            .output()
            .expect("run psql"),
        Err(_) => Command::new("sqlite3")
            .arg(server.dir.join("secureform-data/spool/spool.db"))
            .arg(sql)
            .output()
            .expect("run sqlite3"),
    };
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split('|')
        .map(|cell| match cell {
            "t" => "1",
            "f" => "0",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// On the postgres run, gives the configuration in `config` a `[storage]` on a database of its
/// own (`sft_<ulid>`, kept across restarts in the same folder, dropped by scripts/test.sh after
/// the run), unless it chose a backend itself. The embedded default (no file) stays on SQLite.
fn on_postgres_when_asked(dir: &Path, config: &Path) {
    if !on_postgres() {
        return;
    }
    let Ok(text) = std::fs::read_to_string(config) else {
        return;
    };
    if text.lines().any(|l| l.trim_start().starts_with("backend")) {
        return;
    }
    let marker = dir.join(".test-postgres-db");
    let name = match std::fs::read_to_string(&marker) {
        Ok(name) => name.trim().to_owned(),
        Err(_) => {
            let name = format!("sft_{}", ulid::Ulid::new().to_string().to_lowercase());
            let out = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-Atc",
                ])
                .arg(format!("CREATE DATABASE {name}"))
                .output()
                .expect("run psql");
            assert!(
                out.status.success(),
                "creating {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&marker, &name).unwrap();
            name
        }
    };
    let url_file = dir.join(".test-postgres-url");
    std::fs::write(
        &url_file,
        format!("postgres://postgres@127.0.0.1:5432/{name}"),
    )
    .unwrap();
    let storage = format!(
        "backend = \"postgres\"\npostgres_url_file = \"{}\"\n",
        url_file.display()
    );
    let text = if text.lines().any(|l| l.trim() == "[storage]") {
        text.replacen("[storage]\n", &format!("[storage]\n{storage}"), 1)
    } else {
        format!("{text}\n[storage]\n{storage}")
    };
    std::fs::write(config, text).unwrap();
}

/// An HTTP client that does not follow redirects (the 303 is part of what is tested).
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Pseudo-random bytes (deterministic per seed), so file comparisons mean something.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Makes a test CA (`dir/ca.pem`) and a certificate for 127.0.0.1 and localhost it signed
/// (`dir/server.pem`, key `dir/server.key`), for TLS test servers: the shared test PKI
/// ([`secureform_testkit::pki::loopback`]).
pub fn make_loopback_certificate(dir: &Path) {
    secureform_testkit::pki::loopback(dir);
}

/// Runs a program, failing with the Debian package to install when it is missing.
pub fn run(program: &str, package: &str, args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install the Debian package {package}")
        })
}

/// Runs `gpg` in its own home folder, in batch mode with an empty passphrase; fails on error.
pub fn gpg(home: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "--homedir",
        home.to_str().unwrap(),
        "--batch",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ];
    all.extend_from_slice(args);
    let out = run("gpg", "gnupg", &all, home);
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A GnuPG home folder whose agent is stopped when the test ends.
pub struct GpgHome(PathBuf);

impl std::ops::Deref for GpgHome {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.0)
            .args(["--kill", "all"])
            .output();
    }
}

/// A fresh GnuPG home (mode 0700) under `dir`, holding a new key for `user_id`.
pub fn gpg_home_with_key(dir: &Path, user_id: &str) -> GpgHome {
    use std::os::unix::fs::PermissionsExt;
    let home = GpgHome(dir.join("gnupg"));
    std::fs::create_dir_all(&*home).unwrap();
    std::fs::set_permissions(&*home, std::fs::Permissions::from_mode(0o700)).unwrap();
    gpg(
        &home,
        &["--quick-gen-key", user_id, "default", "default", "never"],
    );
    home
}
