//! The HTTP contract: the running server against `openapi.yaml`. Starts the real binary with
//! `tests/contract/server.toml` (forms in every situation, small limits, three tokens, a PGP
//! recipient made here with gpg), then runs the two checkers of `tests/contract/`:
//!
//! - `check_responses.py`: every documented operation exercised with realistic requests (each
//!   body format, each refusal, each token case, idempotency, delivery states through a failing
//!   sink and a retry, documents, audit, CORS), every answer checked against the document;
//! - `schemathesis_run.py`: schemathesis (PyPI) with the admin token, positive and negative
//!   data, checking for server errors and status, Content-Type, header and schema conformance.
//!
//! Both are Python; their packages are pinned in `tests/contract/requirements.txt`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn contract_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract")
}

/// Fails, naming the install line, when python3 or the checkers' packages are missing.
fn require_python_packages() {
    let requirements = contract_dir().join("requirements.txt");
    let out = Command::new("python3")
        .args([
            "-c",
            "import schemathesis, openapi_schema_validator, openapi_spec_validator, jsonschema, yaml, requests",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the contract checks need Python packages: run `python3 -m pip install -r {}` ({})",
            requirements.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run python3 ({e}): install the Debian package python3, then \
             `python3 -m pip install -r {}`",
            requirements.display()
        ),
    }
}

/// A recipient certificate for the `vault` sink, made with gpg in `dir` as `alice.asc`.
fn make_recipient(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let home = gpg_home_with_key(dir, "Alice <alice@example.com>");
    let cert = gpg(&home, &["--armor", "--export", "alice@example.com"]).stdout;
    let path = dir.join("alice.asc");
    std::fs::write(&path, cert).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Runs one checker against the server; fails with its report and the server's log.
fn run_checker(server: &Server, script: &str) {
    let started = std::time::Instant::now();
    let out = Command::new("python3")
        .arg(contract_dir().join(script))
        .arg("--base")
        .arg(&server.base)
        .arg("--spec")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml"))
        .current_dir(&server.dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install the Debian package python3"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = server.log_text();
    let tail: String = log
        .lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "{script} found mismatches between the server and openapi.yaml:\n{report}\n\
         --- server log (last lines) ---\n{tail}"
    );
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("exchanges checked") || l.contains("generated,"))
        .collect();
    eprintln!(
        "{script}: passed in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        summary.join("; ").trim()
    );
}

#[test]
fn every_answer_matches_openapi_yaml() {
    require_python_packages();
    let dir = tempdir();
    make_recipient(&dir);
    let config = dir.join("secureform.toml");
    std::fs::copy(contract_dir().join("server.toml"), &config).unwrap();
    let server = Server::start_with_env(
        &dir,
        Some(config),
        &[
            (
                "SF_CONTRACT_ALTCHA_KEY",
                "contract-test-key-0123456789abcdef",
            ),
            (
                "SF_CONTRACT_TURNSTILE_SECRET",
                "contract-test-turnstile-secret",
            ),
        ],
    );

    // Realistic scenarios first: they count on a fresh server (rate limits, document counts).
    run_checker(&server, "check_responses.py");
    run_checker(&server, "schemathesis_run.py");

    // Whatever was thrown at it, the server is alive and never panicked.
    let health = client().get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let log = server.log_text();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}
