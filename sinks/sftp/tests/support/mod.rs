//! Test support: a real OpenSSH `sshd` on a free 127.0.0.1 port with its own config, host key and
//! authorized keys; client keys made by `ssh-keygen`; and helpers running tools nobody here wrote
//! (python3's json/csv/xml parsers, gpg).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secureform_contract::{Fields, FileMeta, FileSource, MemoryFiles, Source, Submission};
use tempfile::TempDir;

pub mod cases;

/// Finds `program` (an absolute path or a name on PATH), or fails naming the Debian package.
pub fn require(program: &str, package: &str) -> PathBuf {
    let candidates: Vec<PathBuf> = if program.starts_with('/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join(program)).collect())
            .unwrap_or_default()
    };
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{program}` is missing: install the Debian package `{package}` (apt-get install {package})")
        })
}

/// Runs a command, failing the test with its stderr when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Makes a key pair with `ssh-keygen`; returns the private key's path (`.pub` next to it).
pub fn keygen(dir: &Path, name: &str, args: &[&str], passphrase: &str) -> PathBuf {
    let keygen = require("/usr/bin/ssh-keygen", "openssh-client");
    let path = dir.join(name);
    run(Command::new(keygen)
        .args(args)
        .args(["-q", "-N", passphrase, "-C", name, "-f"])
        .arg(&path));
    path
}

/// The fingerprint of a public key file, as `ssh-keygen -lf` prints it (`SHA256:...`).
pub fn fingerprint(public_key: &Path) -> String {
    let keygen = require("/usr/bin/ssh-keygen", "openssh-client");
    let out = run(Command::new(keygen).arg("-lf").arg(public_key));
    let fp = out.split_whitespace().nth(1).unwrap().to_owned();
    assert!(fp.starts_with("SHA256:"), "{out}");
    fp
}

/// A running `sshd -D -e`, killed (with the session processes it forked) on drop.
pub struct Sshd {
    pub dir: TempDir,
    pub port: u16,
    /// The host key's fingerprint as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    child: Option<Child>,
}

impl Sshd {
    /// Starts sshd authorizing `authorized` public key files (for any user), with password
    /// authentication enabled when `passwords`.
    pub fn start(authorized: &[&Path], passwords: bool) -> Sshd {
        require("/usr/sbin/sshd", "openssh-server");
        fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let host_key = keygen(dir.path(), "host_ed25519", &["-t", "ed25519"], "");
        let fingerprint = fingerprint(&host_key.with_extension("pub"));
        let mut keys = String::new();
        for key in authorized {
            keys.push_str(&fs::read_to_string(key).unwrap());
        }
        let authorized_keys = dir.path().join("authorized_keys");
        fs::write(&authorized_keys, keys).unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nUsePAM no\n\
             StrictModes no\nPermitRootLogin prohibit-password\nAuthorizedKeysFile {}\n\
             PubkeyAuthentication yes\nPasswordAuthentication {}\nKbdInteractiveAuthentication no\n\
             PermitEmptyPasswords no\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n\
             MaxStartups 100\nMaxSessions 50\n",
            host_key.display(),
            authorized_keys.display(),
            if passwords { "yes" } else { "no" },
        );
        fs::write(dir.path().join("sshd_config"), config).unwrap();
        let mut me = Sshd {
            dir,
            port,
            fingerprint,
            child: None,
        };
        me.launch();
        me
    }

    fn launch(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sshd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops sshd and every session process it forked: established connections die too.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            let kill = require("kill", "procps");
            for descendant in descendants(pid) {
                let _ = Command::new(&kill)
                    .args(["-KILL", &descendant.to_string()])
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts sshd again on the same port with the same host key.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The process ids descending from `root`, found in /proc (sshd's session children call setsid).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid) in &parents {
            if *ppid == p && !found.contains(pid) {
                found.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Runs `python3 -c script args...` and returns its stdout.
pub fn python(script: &str, args: &[&Path]) -> String {
    let python = require("python3", "python3");
    run(Command::new(python).arg("-c").arg(script).args(args))
}

/// A throwaway GnuPG home; its agent is stopped on drop.
pub struct Gpg {
    pub home: TempDir,
}

impl Gpg {
    pub fn new() -> Gpg {
        require("gpg", "gnupg");
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path())
            .args(["--batch", "--no-tty"]);
        c
    }

    pub fn import(&self, key: &Path) {
        run(self.cmd().arg("--import").arg(key));
    }

    /// Decrypts `file`; returns the plaintext and gpg's machine-readable status lines.
    pub fn decrypt(&self, file: &Path) -> (Vec<u8>, String) {
        let out = self.home.path().join("plain.out");
        let _ = fs::remove_file(&out);
        let output = self
            .cmd()
            .args(["--status-fd", "1", "--output"])
            .arg(&out)
            .arg("--decrypt")
            .arg(file)
            .output()
            .unwrap();
        let status = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "gpg --decrypt failed: {status}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        (fs::read(&out).unwrap(), status)
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a failing comparison is reproducible.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A ULID-shaped id.
pub fn ulid(n: u32) -> String {
    format!("01JD{n:022}")
}

/// A submission with `fields` and `files`, ready to deliver.
pub fn submission(
    id: &str,
    fields: Fields,
    files: Vec<Vec<u8>>,
) -> (Arc<Submission>, Arc<dyn FileSource>) {
    let metas = files
        .iter()
        .enumerate()
        .map(|(i, f)| FileMeta {
            field: format!("upload{i}"),
            filename: format!("../../etc/evil {i}.pdf"),
            content_type: "application/octet-stream".into(),
            size: f.len() as u64,
            sha256: "0".repeat(64),
        })
        .collect();
    let s = Submission {
        id: id.into(),
        form: "contact".into(),
        received_at: "2026-11-27T10:00:00Z".into(),
        source: Source::Multipart,
        fields,
        files: metas,
    };
    (Arc::new(s), Arc::new(MemoryFiles(files)))
}

/// Every path under `dir`, relative, sorted (folders end with `/`).
pub fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &e.path(), out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Serializes tests that change the system (the `sftptest` user).
pub static SYSTEM: Mutex<()> = Mutex::new(());
