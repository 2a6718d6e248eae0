//! Test support: the real OpenSSH `sshd`, client keys, free ports and program runners come from
//! `secureform-testkit` (re-exported here); this module adds helpers running tools nobody here
//! wrote (python3's json/csv/xml parsers, gpg), submissions and listings.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use secureform_contract::{Fields, FileMeta, FileSource, MemoryFiles, Source, Submission};
// The shared support; each test binary (auth, delivery, failures) uses some of it.
#[allow(unused_imports)]
pub use secureform_testkit::{
    cmd::{require, run},
    ids::ulid,
    net::free_port,
    sshd::{fingerprint, keygen, Sshd},
};
use tempfile::TempDir;

pub mod cases;

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
