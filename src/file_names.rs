//! Submitted file names made safe to show and to save: the console's downloads and its file
//! lists, and the files `secureform docs get` writes.
//!
//! A submitted name is whatever the client sent: a path (`../../etc/passwd`, `C:\x\a.pdf`),
//! control characters, characters special to shells, file systems or HTTP headers, invisible
//! bidirectional controls that make `cod.exe` display as `exe.doc`, or thousands of bytes. What
//! is kept is its last path component without any of those, at most [`MAX_NAME_BYTES`] bytes (cut
//! on a character boundary); `file-N` when nothing is left. The console's in-browser decryption
//! applies the same rules (`src/console/decrypt.mjs`, `sanitizeFilename`).

/// The longest sanitized name, in UTF-8 bytes: with an index prefix and a temporary suffix it
/// still fits the 255 bytes most file systems allow in one name.
pub const MAX_NAME_BYTES: usize = 200;

/// Characters dropped besides control characters: special in Windows file names, shells' globs
/// and `Content-Disposition` parameters.
const SPECIAL: &[char] = &['"', '<', '>', ':', '|', '?', '*', ';'];

/// Invisible formatting characters that change how a name reads without being seen: zero-width
/// characters, bidirectional embeddings, overrides and isolates, the byte-order mark.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The name file `n` of a submission is shown and downloaded under (see the module's rules).
pub fn sanitize(name: &str, n: usize) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|&c| !c.is_control() && !is_invisible_format(c) && !SPECIAL.contains(&c))
        .collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    if clean.is_empty() {
        return format!("file-{n}");
    }
    let mut end = clean.len().min(MAX_NAME_BYTES);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].trim_end().to_owned()
}

/// The name `docs get` saves file `n` under: its index, a dash, and the sanitized name
/// (`0-cv.pdf`), so two files with the same name stay apart and the order is the submission's.
pub fn save_as(name: &str, n: usize) -> String {
    format!("{n}-{}", sanitize(name, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_path_component_only() {
        assert_eq!(sanitize("../../etc/passwd", 0), "passwd");
        assert_eq!(sanitize("C:\\x\\a\"b<c>.pdf", 0), "abc.pdf");
        assert_eq!(sanitize("dir/", 4), "file-4");
    }

    #[test]
    fn drops_dots_at_the_start_and_what_is_left_empty() {
        assert_eq!(sanitize("..", 3), "file-3");
        assert_eq!(sanitize(".bashrc", 1), "bashrc");
        assert_eq!(sanitize("   ", 2), "file-2");
        assert_eq!(sanitize("", 0), "file-0");
    }

    #[test]
    fn drops_control_and_invisible_characters() {
        assert_eq!(sanitize("a\r\nb.txt", 0), "ab.txt");
        assert_eq!(sanitize("a\u{0}b\u{7f}c\u{85}.txt", 0), "abc.txt");
        // "invoice\u{202E}fdp.exe" displays as "invoiceexe.pdf".
        assert_eq!(sanitize("invoice\u{202E}fdp.exe", 0), "invoicefdp.exe");
        assert_eq!(sanitize("\u{FEFF}a\u{200B}b\u{2066}.pdf", 0), "ab.pdf");
    }

    #[test]
    fn keeps_letters_of_every_script() {
        assert_eq!(sanitize("Zoë 報告.pdf", 0), "Zoë 報告.pdf");
    }

    #[test]
    fn cuts_long_names_on_a_character_boundary() {
        let long = "報".repeat(100); // 300 bytes
        let cut = sanitize(&long, 0);
        assert!(cut.len() <= MAX_NAME_BYTES, "{}", cut.len());
        assert_eq!(cut, "報".repeat(66));
        assert_eq!(sanitize(&"a".repeat(5000), 0).len(), MAX_NAME_BYTES);
    }

    #[test]
    fn saved_names_carry_the_index() {
        assert_eq!(save_as("cv.pdf", 0), "0-cv.pdf");
        assert_eq!(save_as("../x", 12), "12-x");
        assert_eq!(save_as("..", 3), "3-file-3");
    }
}
