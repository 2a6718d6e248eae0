//! The `aes_gcm` value format (version 1), documented in `FORMAT.md`:
//!
//! ```text
//! value = 0x01 ‖ nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖ tag (16)
//! aad   = "secureform/mysql/v1" ‖ 0x00 ‖ table ‖ 0x00 ‖ column ‖ 0x00 ‖ row_key
//! ```
//!
//! `row_key` is the submission id for the submissions table, and `<submission id>:<index>` for
//! the files table (whose column is `content`). Binding each value to its table, column and row
//! means a value copied to another cell no longer opens.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The first byte of every value sealed by this version.
pub const VERSION: u8 = 1;
/// The AAD's fixed prefix.
pub const AAD_LABEL: &[u8] = b"secureform/mysql/v1";
const TAG_LEN: usize = 16;

/// Why a value could not be sealed or opened. Never carries key or value bytes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The stored bytes are not an `aes_gcm` value of a version this crate knows (see
    /// `FORMAT.md`).
    #[error("not an aes_gcm value of a known version")]
    Format,
    /// The GCM tag did not verify: the wrong key, or the value was altered or moved to another
    /// cell (table, column or row).
    #[error("authentication failed: wrong key, or the value was altered or moved to another cell")]
    Authentication,
    /// The operating system's random generator failed while making a nonce.
    #[error("the system random generator failed")]
    Random,
}

/// The associated data binding a value to its cell.
pub fn aad(table: &str, column: &str, row_key: &str) -> Vec<u8> {
    let mut aad =
        Vec::with_capacity(AAD_LABEL.len() + table.len() + column.len() + row_key.len() + 3);
    aad.extend_from_slice(AAD_LABEL);
    for part in [table, column, row_key] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// The `row_key` of file `index` of a submission in the files table.
pub fn file_row_key(submission_id: &str, index: usize) -> String {
    format!("{submission_id}:{index}")
}

/// Seals `plaintext` for the cell (`table`, `column`, `row_key`).
pub(crate) fn seal_value(
    key: &LessSafeKey,
    table: &str,
    column: &str,
    row_key: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, ValueError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| ValueError::Random)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let mut body = out.split_off(1 + NONCE_LEN);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(table, column, row_key)),
            &mut body,
        )
        .map_err(|_| ValueError::Random)?;
    out.extend_from_slice(&body);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a value of the cell (`table`, `column`, `row_key`) sealed under `key`.
///
/// This is the whole decryption: anyone with the key can do the same with any AES-GCM library
/// (the tests do it with Python's `cryptography`).
pub fn open_value(
    key: &[u8; 32],
    table: &str,
    column: &str,
    row_key: &str,
    value: &[u8],
) -> Result<Vec<u8>, ValueError> {
    let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| ValueError::Format)?;
    open_with(&LessSafeKey::new(unbound), table, column, row_key, value)
}

pub(crate) fn open_with(
    key: &LessSafeKey,
    table: &str,
    column: &str,
    row_key: &str,
    value: &[u8],
) -> Result<Vec<u8>, ValueError> {
    let (version, rest) = value.split_first().ok_or(ValueError::Format)?;
    if *version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(ValueError::Format);
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ValueError::Format)?;
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad(table, column, row_key)), &mut buf)
        .map_err(|_| ValueError::Authentication)?;
    let len = plain.len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap())
    }

    #[test]
    fn round_trips_and_has_the_documented_layout() {
        let sealed = seal_value(&key(), "t", "submission", "01J", b"hello").unwrap();
        assert_eq!(sealed[0], VERSION);
        assert_eq!(sealed.len(), 1 + 12 + 5 + 16);
        assert_eq!(
            open_value(&[7u8; 32], "t", "submission", "01J", &sealed).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn a_value_moved_to_another_cell_does_not_open() {
        let sealed = seal_value(&key(), "t", "submission", "01J", b"hello").unwrap();
        for (t, c, r) in [
            ("u", "submission", "01J"),
            ("t", "email", "01J"),
            ("t", "submission", "01K"),
        ] {
            assert_eq!(
                open_value(&[7u8; 32], t, c, r, &sealed),
                Err(ValueError::Authentication)
            );
        }
        assert_eq!(
            open_value(&[8u8; 32], "t", "submission", "01J", &sealed),
            Err(ValueError::Authentication)
        );
        assert_eq!(
            open_value(&[7u8; 32], "t", "submission", "01J", &sealed[..10]),
            Err(ValueError::Format)
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let a = seal_value(&key(), "t", "c", "r", b"same").unwrap();
        let b = seal_value(&key(), "t", "c", "r", b"same").unwrap();
        assert_ne!(a, b);
    }
}
