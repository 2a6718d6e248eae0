//! The README's "Try it" block, run as written against the embedded default: only the address
//! and the way the binary is started differ (the test's server listens on a free port, and the
//! binary under test stands in for `cargo run --release --`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Server, BIN};

/// The block after the README's marker comment.
fn readme_example() -> String {
    let readme = include_str!("../../README.md");
    let marker = "<!-- README example: tests/api/readme.rs";
    let after = &readme[readme.find(marker).expect("the README's example marker")..];
    let start = after.find("```sh\n").expect("the example's block") + "```sh\n".len();
    let block = &after[start..];
    block[..block.find("```").expect("the block's end")].to_owned()
}

#[test]
fn the_readme_example_runs_as_written() {
    let server = Server::embedded();
    let example = readme_example();
    assert!(example.contains("http://127.0.0.1:8080/f/contact"));
    let mut script = String::from("set -euo pipefail\n");
    let mut posts = 0;
    for line in example.lines() {
        // Deliveries are asynchronous: before reading the store, wait until it holds every
        // submission posted so far (a person typing the next command gives it that time).
        if line.contains("-- docs") && posts > 0 {
            script.push_str(&format!(
                "for _ in $(seq 100); do [ \"$({BIN} docs list | wc -l)\" -ge {posts} ] && break; sleep 0.1; done\n"
            ));
            posts = 0;
        }
        if line.starts_with("curl ") {
            posts += 1;
        }
        let line = line
            .replace("http://127.0.0.1:8080", &server.base)
            .replace("cargo run -q --release --", BIN)
            .replace("cargo run --release --", BIN);
        script.push_str(&line);
        script.push('\n');
    }
    let started = Instant::now();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&server.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README example failed:\n{script}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("HTTP/1.1 303"), "{stdout}");
    assert_eq!(server.doc_ids().len(), 3, "three submissions stored");
    // `docs get` of the newest submission: the multipart one with its file.
    let out_dir = server.dir.join("secureform-out");
    let submission: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("submission.json")).unwrap()).unwrap();
    assert_eq!(submission["fields"]["name"], "Ann");
    assert_eq!(submission["files"][0]["filename"], "notes.txt");
    assert_eq!(
        std::fs::read(out_dir.join("files/0")).unwrap(),
        b"my notes\n"
    );
    assert_eq!(
        std::fs::read(out_dir.join("files/0-notes.txt")).unwrap(),
        b"my notes\n",
        "the README's comment names the file's second name"
    );
}
