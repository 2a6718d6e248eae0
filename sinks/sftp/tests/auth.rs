//! Logging in to a real OpenSSH server: ed25519 and RSA keys (OpenSSH and PEM formats, with
//! passphrases from a file or the environment), passwords; bad credentials are permanent failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use secureform_contract::FailureReason;
use secureform_sftp::SftpSink;
use support::cases::*;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn rsa_and_ed25519_keys_with_passphrases_log_in_and_bad_credentials_are_permanent() {
    let keys = tempfile::tempdir().unwrap();
    let ed = keygen(keys.path(), "ed", &["-t", "ed25519"], "");
    let rsa = keygen(
        keys.path(),
        "rsa",
        &["-t", "rsa", "-b", "3072"],
        "rsa pass phrase",
    );
    let rsa_pem = keygen(
        keys.path(),
        "rsa_pem",
        &["-t", "rsa", "-b", "2048", "-m", "PEM"],
        "pem-pass",
    );
    let ed_pass = keygen(keys.path(), "ed_pass", &["-t", "ed25519"], "ed-pass");
    let stranger = keygen(keys.path(), "stranger", &["-t", "ed25519"], "");
    let pubs: Vec<_> = [&ed, &rsa, &rsa_pem, &ed_pass]
        .iter()
        .map(|k| k.with_extension("pub"))
        .collect();
    let sshd = Sshd::start(&pubs.iter().map(|p| p.as_path()).collect::<Vec<_>>(), false);
    let root = tempfile::tempdir().unwrap();
    let passfile = keys.path().join("rsa.pass");
    fs::write(&passfile, "rsa pass phrase\n").unwrap();
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o600)).unwrap();
    std::env::set_var("SFTP_TEST_PEM_PASS", "pem-pass");
    std::env::set_var("SFTP_TEST_ED_PASS", "ed-pass");
    std::env::set_var("SFTP_TEST_WRONG_PASS", "wrong");

    let cases = [
        ("ed", root_key(&ed)),
        (
            "rsa",
            format!("{}\npassphrase_file = \"rsa.pass\"", root_key(&rsa)),
        ),
        (
            "rsa_pem",
            format!(
                "{}\npassphrase_env = \"SFTP_TEST_PEM_PASS\"",
                root_key(&rsa_pem)
            ),
        ),
        (
            "ed_pass",
            format!(
                "{}\npassphrase_env = \"SFTP_TEST_ED_PASS\"",
                root_key(&ed_pass)
            ),
        ),
    ];
    for (n, (name, auth)) in (1..).zip(cases) {
        let dir = root.path().join(name);
        let sink = SftpSink::build(
            name,
            &config(sshd.port, &sshd.fingerprint, &dir, &auth),
            keys.path(),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let path = deliver(&sink, n)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", sshd.log()));
        assert!(Path::new(&path).is_file(), "{name}");
    }

    let failing = [
        format!(
            "{}\npassphrase_env = \"SFTP_TEST_WRONG_PASS\"",
            root_key(&rsa)
        ),
        root_key(&stranger),
    ];
    for auth in failing {
        let dir = root.path().join("refused");
        let sink = SftpSink::build(
            "x",
            &config(sshd.port, &sshd.fingerprint, &dir, &auth),
            keys.path(),
            None,
        )
        .await
        .unwrap();
        let err = permanent_error(deliver(&sink, 9).await);
        assert_eq!(err.reason(), FailureReason::Auth, "{err}");
        let reason = err.into_message();
        assert!(reason.contains("authentication"), "{reason}");
        assert!(!dir.exists());
    }

    // An encrypted key without a passphrase is refused when the sink is built, naming the key.
    let err = SftpSink::build(
        "x",
        &config(sshd.port, &sshd.fingerprint, root.path(), &root_key(&rsa)),
        keys.path(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.key, "private_key_file");
    assert!(err.message.contains("encrypted"), "{err}");
    // So is a key file others can read.
    fs::set_permissions(&ed, fs::Permissions::from_mode(0o644)).unwrap();
    let err = SftpSink::build(
        "x",
        &config(sshd.port, &sshd.fingerprint, root.path(), &root_key(&ed)),
        keys.path(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.key, "private_key_file");
}

/// Creates (once) the throwaway system user `sftptest` and sets its password.
fn test_user(password: &str) -> (u32, u32) {
    let _guard = SYSTEM.lock().unwrap_or_else(|p| p.into_inner());
    let exists = Command::new("id")
        .arg("sftptest")
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let useradd = require("/usr/sbin/useradd", "passwd");
        run(Command::new(useradd).args(["--create-home", "--shell", "/bin/sh", "sftptest"]));
    }
    let mut chpasswd = Command::new(require("/usr/sbin/chpasswd", "passwd"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("sftptest:{password}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());
    let uid = run(Command::new("id").args(["-u", "sftptest"]))
        .trim()
        .parse()
        .unwrap();
    let gid = run(Command::new("id").args(["-g", "sftptest"]))
        .trim()
        .parse()
        .unwrap();
    (uid, gid)
}

#[tokio::test(flavor = "multi_thread")]
async fn password_login_works_and_a_wrong_password_is_permanent() {
    let password = "Correct horse 42!";
    let (uid, gid) = test_user(password);
    let sshd = Sshd::start(&[], true);
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(root.path(), Some(uid), Some(gid)).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let wrong = secrets.path().join("wrong");
    fs::write(&wrong, "not the password\n").unwrap();
    fs::set_permissions(&wrong, fs::Permissions::from_mode(0o600)).unwrap();
    std::env::set_var("SFTP_TEST_PASSWORD", password);

    let dir = root.path().join("in");
    let auth = "user = \"sftptest\"\npassword_env = \"SFTP_TEST_PASSWORD\"";
    let sink = SftpSink::build(
        "pw",
        &config(sshd.port, &sshd.fingerprint, &dir, auth),
        secrets.path(),
        None,
    )
    .await
    .unwrap();
    let path = deliver(&sink, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(&path).unwrap().uid(),
        uid,
        "written as the test user"
    );

    let auth = "user = \"sftptest\"\npassword_file = \"wrong\"";
    let sink = SftpSink::build(
        "pw",
        &config(sshd.port, &sshd.fingerprint, &dir, auth),
        secrets.path(),
        None,
    )
    .await
    .unwrap();
    let err = permanent_error(deliver(&sink, 2).await);
    assert_eq!(err.reason(), FailureReason::Auth, "{err}");
    let reason = err.into_message();
    assert!(reason.contains("password authentication"), "{reason}");
    assert_eq!(listing(&dir).len(), 3);

    let err = SftpSink::build(
        "pw",
        &config(
            sshd.port,
            &sshd.fingerprint,
            &dir,
            "user = \"u\"\npassword_env = \"SFTP_TEST_UNSET_VAR\"",
        ),
        secrets.path(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.key, "password_env");
}
