//! `secureform token new`: a fresh API token, printed once, and the configuration lines that
//! grant it (the SHA-256 of the token: the file grants nothing by itself). With `--write FILE`
//! the lines are also added to FILE, which is created when it does not exist yet.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use sha2::Digest;

use crate::config::{valid_name, Config};

/// A configuration file equal to the embedded default (`Config::embedded_default`): what
/// `token new --write` starts from when its file does not exist, so that `serve` keeps serving
/// the same forms from the same data folder once the file is there.
pub const EMBEDDED_DEFAULT_TOML: &str = r#"# SecureForm configuration: the embedded default, written by `secureform token new --write`.
# Every key is explained in examples/secureform.toml.

[storage]
data_dir = "./secureform-data"     # master.key is created there on first start

[forms.contact]
sinks = ["docs"]
honeypot = "_gotcha"

[sinks.docs]
type = "documents"
"#;

/// Makes a token, prints it and its configuration lines, and adds them to `write` if given.
pub fn new(name: &str, scopes: &str, forms: &str, write: Option<&Path>) -> anyhow::Result<()> {
    if !valid_name(name) {
        anyhow::bail!("a token name is 1-64 letters, digits, '_' or '-'");
    }
    let scopes = list(scopes);
    for s in &scopes {
        if !matches!(s.as_str(), "submit" | "read" | "admin") {
            anyhow::bail!("unknown scope `{s}`: use submit, read or admin");
        }
    }
    let forms = list(forms);
    if let Some(bad) = forms.iter().find(|f| *f != "*" && !valid_name(f)) {
        anyhow::bail!("`{bad}` is not a form name: use names from [forms], or *");
    }
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let token = zeroize::Zeroizing::new(format!(
        "sf_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())
    ));
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let lines = format!(
        "[tokens.{name}]\nsha256 = \"{hash}\"\nscopes = [{}]\nforms = [{}]\n",
        quoted(&scopes),
        quoted(&forms)
    );
    out!(
        "token (give it to the integrator; it is shown only once):\n{}\n",
        token.as_str()
    )?;
    match write {
        None => out!("configuration (paste into secureform.toml):\n{lines}")?,
        Some(path) => {
            let created = add_to_file(path, name, &lines)?;
            let what = if created { "created" } else { "updated" };
            out!(
                "{what} {} with [tokens.{name}]; restart `secureform serve` to use it",
                path.display()
            )?;
        }
    }
    Ok(())
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|x| format!("\"{x}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Appends the token's table to the file (or writes a new file from the embedded default),
/// checking that the result is a valid configuration before it replaces the file. Returns
/// whether the file was created.
fn add_to_file(path: &Path, name: &str, lines: &str) -> anyhow::Result<bool> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if let Some(text) = &existing {
        let config = Config::from_file(path)?;
        if config.tokens.contains_key(name) {
            anyhow::bail!(
                "{} already has [tokens.{name}]: choose another name, or remove it first",
                path.display()
            );
        }
        if !text.is_empty() && !text.ends_with('\n') {
            anyhow::bail!("{} does not end with a line break", path.display());
        }
    }
    let base = existing.as_deref().unwrap_or(EMBEDDED_DEFAULT_TOML);
    let text = format!("{base}\n{lines}");
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let shown = path.display().to_string();
    let base_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Config::from_str(&text, &shown, &base_dir)?;
    // Written beside the file and renamed over it: a crash leaves the old file or the new one.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(existing.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_default_is_the_embedded_default() {
        let dir = tempfile::tempdir().unwrap();
        let written = Config::from_str(EMBEDDED_DEFAULT_TOML, "written", dir.path()).unwrap();
        let embedded = Config::embedded_default();
        assert_eq!(
            written.forms.keys().collect::<Vec<_>>(),
            embedded.forms.keys().collect::<Vec<_>>()
        );
        assert_eq!(
            written.forms["contact"].sinks,
            embedded.forms["contact"].sinks
        );
        assert_eq!(
            written.forms["contact"].honeypot,
            embedded.forms["contact"].honeypot
        );
        assert_eq!(written.sinks.len(), embedded.sinks.len());
        assert_eq!(written.data_dir, dir.path().join("secureform-data"));
        assert_eq!(written.listen, embedded.listen);
    }
}
