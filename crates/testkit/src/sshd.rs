//! A real OpenSSH `sshd` on a free 127.0.0.1 port with its own config, host key and authorized
//! keys (the SFTP sink's peer, in its crate's tests and the service's), and client keys made by
//! `ssh-keygen`.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::cmd::{require, run};
use crate::net::free_port;

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

/// A running `sshd -D -e` (its own config, host key and authorized keys, in a temporary
/// folder, on a free 127.0.0.1 port), killed (with the session processes it forked) on drop.
pub struct Sshd {
    /// Its folder: `sshd_config`, the host key, `authorized_keys`, `sshd.log`.
    pub dir: TempDir,
    /// The port it listens on (127.0.0.1).
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

    /// What sshd logged so far (`-e`: its stderr, appended across restarts).
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
