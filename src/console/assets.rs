//! The console's script files, embedded in the binary and served from `/console/static/`:
//! OpenPGP.js, vendored by `scripts/vendor-openpgp.sh` (see `vendor/`), and the page script of
//! in-browser decryption (`decrypt.mjs`). Each is named by its content's hash, so that it can be
//! cached for a year (`immutable`): a new build serves new names.
//!
//! The page loads both with `<script type="module" integrity="sha384-…">`. OpenPGP.js's
//! integrity is the one recorded by the vendoring script (`vendor/openpgp.min.mjs.sha384`), not
//! one computed here from the embedded bytes: a vendored file changed by hand without running the
//! script does not load in the browser (and fails the unit test below).

use std::sync::OnceLock;

use base64::Engine;
use sha2::{Digest, Sha384};

const OPENPGP: &[u8] = include_bytes!("vendor/openpgp.min.mjs");
const OPENPGP_RECORDED: &str = include_str!("vendor/openpgp.min.mjs.sha384");
/// The vendored OpenPGP.js's version, as recorded by the vendoring script.
pub const OPENPGP_VERSION_RECORDED: &str = include_str!("vendor/openpgp.version");
/// The page script, with [`OPENPGP_URL`] standing for OpenPGP.js's path until served.
const DECRYPT: &str = include_str!("decrypt.mjs");
const OPENPGP_URL: &str = "__OPENPGP_URL__";

/// One served file.
pub struct Asset {
    /// Its path, `/console/static/NAME`.
    pub path: String,
    /// `sha384-…` for the `integrity` attribute.
    pub integrity: String,
    pub bytes: Vec<u8>,
}

/// OpenPGP.js and the page script.
pub struct Assets {
    pub openpgp: Asset,
    pub decrypt: Asset,
}

fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha384::digest(bytes)[..8])
}

/// The two assets, built once.
pub fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let openpgp_path = format!(
            "/console/static/openpgp-{}.{}.min.mjs",
            OPENPGP_VERSION_RECORDED.trim(),
            short_hash(OPENPGP)
        );
        let decrypt = DECRYPT.replace(OPENPGP_URL, &openpgp_path).into_bytes();
        Assets {
            openpgp: Asset {
                path: openpgp_path,
                integrity: OPENPGP_RECORDED.trim().to_owned(),
                bytes: OPENPGP.to_vec(),
            },
            decrypt: Asset {
                path: format!("/console/static/decrypt.{}.mjs", short_hash(&decrypt)),
                integrity: sri(&decrypt),
                bytes: decrypt,
            },
        }
    })
}

/// The asset served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    let a = assets();
    [&a.openpgp, &a.decrypt]
        .into_iter()
        .find(|x| x.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_openpgp_is_the_one_the_vendoring_script_recorded() {
        assert_eq!(sri(OPENPGP), OPENPGP_RECORDED.trim());
        let version = OPENPGP_VERSION_RECORDED.trim();
        let head = String::from_utf8_lossy(&OPENPGP[..200]);
        assert!(
            head.contains(&format!("OpenPGP.js v{version} ")),
            "the vendored file is not OpenPGP.js {version}: {head}"
        );
        // The whole library in one file: nothing loaded later escapes the integrity check.
        let text = String::from_utf8_lossy(OPENPGP);
        assert!(
            !text.contains("import(\""),
            "OpenPGP.js imports other files"
        );
        let script = include_str!("../../scripts/vendor-openpgp.sh");
        assert!(script.contains(&format!("VERSION=\"{version}\"")));
    }

    #[test]
    fn assets_are_named_by_content_and_the_page_script_imports_openpgp() {
        let a = assets();
        assert_eq!(a.openpgp.integrity, sri(&a.openpgp.bytes));
        assert_eq!(a.decrypt.integrity, sri(&a.decrypt.bytes));
        let page = String::from_utf8_lossy(&a.decrypt.bytes);
        assert!(
            page.contains(&format!("from '{}'", a.openpgp.path)),
            "{page}"
        );
        assert!(!page.contains(OPENPGP_URL));
        assert!(find(&a.decrypt.path).is_some() && find(&a.openpgp.path).is_some());
        assert!(find("/console/static/console.css").is_none());
        // Page script: text only, never markup.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!page.contains(sink), "decrypt.mjs uses {sink}");
        }
    }
}
