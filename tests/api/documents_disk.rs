//! A full disk under a Documents store (issue 15, item 10): retried, not dead on the first
//! attempt, and delivered once there is room. A real tmpfs, so this needs root (`mount`); it
//! says so and passes when mounting is not permitted.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::documents::{delivered, post, token_lines, wait_delivery};
use crate::support::*;

/// A tmpfs mounted on `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let opts = format!("size={size},mode=0700");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let opts = format!("remount,size={size}");
        let status = Command::new("mount")
            .args(["-o", &opts])
            .arg(&self.0)
            .status();
        assert!(status.unwrap().success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Item 10: a full disk under the store is retried (not dead on the first attempt), and the
/// submission is delivered once there is room.
#[test]
fn a_full_documents_disk_is_retried_until_there_is_room() {
    let dir = tempdir();
    let Some(disk) = Tmpfs::mount(&dir.join("secureform-data/sinks/docs"), "512k") else {
        eprintln!(
            "SKIPPED: mounting a tmpfs is not permitted here (run as root to test a full disk)"
        );
        return;
    };
    // The store's folder exists before the first start (the mount), so the data folder is not
    // new and no key would be made for it: the key is made first, outside the data folder.
    let keygen = std::process::Command::new(crate::support::BIN)
        .args(["keygen", "--out"])
        .arg(dir.join("master.key"))
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let config = dir.join("secureform.toml");
    let toml = "[storage]\nmaster_key_file = \"master.key\"\n\n[dispatch]\nmax_attempts = 1000\nbackoff_base_ms = 100\nbackoff_max_ms = 200\n\n\
                [forms.contact]\nsinks = [\"docs\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n";
    std::fs::write(&config, format!("{toml}{}", token_lines())).unwrap();
    let server = Server::start_in(&dir, Some(config));
    let file = noise(2_000_000, 9);
    let id = post(&server, "contact", &file);
    let d = wait_delivery(&server, &id, "docs", |d| {
        d["state"] == "dead" || (d["state"] == "retrying" && d["attempts"].as_u64() >= Some(2))
    });
    assert_eq!(d["state"], "retrying", "{d}");
    disk.resize("16m");
    delivered(&server, &id, "docs");
    let (_, files) = server.doc(&id, &[]);
    assert_eq!(files, vec![file]);
    drop(server);
}
