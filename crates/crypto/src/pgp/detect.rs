//! Recognising an encrypted OpenPGP message, armored or binary.

/// Whether binary OpenPGP data starts with a packet that opens an encrypted message: a public-key
/// or symmetric-key encrypted session key, or encrypted data, with a known version.
fn binary_looks_encrypted(bytes: &[u8]) -> bool {
    let Some(&first) = bytes.first() else {
        return false;
    };
    if first & 0x80 == 0 {
        return false;
    }
    let (tag, body_start) = if first & 0x40 != 0 {
        // New format: the length's first octet tells how many octets it has.
        let tag = first & 0x3f;
        let len_octets = match bytes.get(1) {
            Some(&l) if l < 192 => 1,
            Some(&l) if l < 224 => 2,
            Some(&255) => 5,
            Some(_) => 1, // partial body length
            None => return false,
        };
        (tag, 1 + len_octets)
    } else {
        let tag = (first >> 2) & 0x0f;
        let len_octets = match first & 0x03 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 0, // indeterminate length
        };
        (tag, 1 + len_octets)
    };
    let version = bytes.get(body_start).copied();
    match tag {
        1 => matches!(version, Some(3 | 6)),  // PKESK
        3 => matches!(version, Some(4..=6)),  // SKESK
        18 => matches!(version, Some(1 | 2)), // SEIPD
        20 => matches!(version, Some(1)),     // OCB encrypted data (LibrePGP)
        9 => bytes.len() > body_start,        // legacy symmetrically encrypted data
        _ => false,
    }
}

/// Quick check whether bytes already look like an OpenPGP message (armored or binary), used to skip double work.
///
/// Only an *encrypted* message counts: an armored or binary message that is merely signed or
/// compressed returns `false`, so it still gets encrypted.
pub fn looks_encrypted(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let trimmed = &bytes[start..];
    const BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
    if !trimmed.starts_with(BEGIN) {
        return binary_looks_encrypted(trimmed);
    }
    // Armored: skip the header lines ("Key: value") and decode the start of the body.
    let text = String::from_utf8_lossy(&trimmed[BEGIN.len()..]);
    let mut lines = text.lines().map(str::trim);
    if lines.next().is_some_and(|rest| !rest.is_empty()) {
        return false; // something after the BEGIN line on the same line
    }
    let mut b64 = String::new();
    for line in lines {
        if b64.is_empty() && (line.is_empty() || line.contains(':')) {
            continue;
        }
        if line.starts_with('=') || line.starts_with("-----") {
            break;
        }
        b64.push_str(line);
        if b64.len() >= 64 {
            break;
        }
    }
    let usable = b64.len() / 4 * 4;
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(&b64[..usable]) {
        Ok(raw) => binary_looks_encrypted(&raw),
        Err(_) => false,
    }
}
