//! Finding and running the external programs the tests drive (tools nobody here wrote).

use std::path::PathBuf;
use std::process::Command;

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

/// Runs a command, failing the test with its stderr when it fails; returns stdout as text.
pub fn run(cmd: &mut Command) -> String {
    String::from_utf8(run_bytes(cmd)).unwrap()
}

/// Runs a command, failing the test with its stderr when it fails; returns stdout's bytes.
pub fn run_bytes(cmd: &mut Command) -> Vec<u8> {
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
