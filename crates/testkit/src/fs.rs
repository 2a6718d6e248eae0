//! Private temporary folders, kept out of the repository.

use std::path::PathBuf;

/// A fresh folder under the system temp dir, named after the process and a new ULID (so no
/// other test or run shares it). Not removed afterwards: a failed test's files stay to look at.
pub fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "secureform-test-{}-{}",
        std::process::id(),
        ulid::Ulid::new()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
