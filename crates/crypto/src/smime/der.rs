//! The little DER that S/MIME needs: writing a few definite-length structures, and reading a
//! certificate just far enough to copy its issuer and serial number byte-exact.

pub const TAG_INTEGER: u8 = 0x02;
pub const TAG_OCTET_STRING: u8 = 0x04;
pub const TAG_SEQUENCE: u8 = 0x30;
pub const TAG_SET: u8 = 0x31;

/// End-of-contents octets closing an indefinite length.
pub const END: &[u8] = &[0x00, 0x00];
/// ASN.1 NULL (the parameters of rsaEncryption).
pub const NULL: &[u8] = &[0x05, 0x00];

/// id-data, 1.2.840.113549.1.7.1
pub const OID_DATA: &[u8] = &[
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01,
];
/// id-envelopedData, 1.2.840.113549.1.7.3
pub const OID_ENVELOPED_DATA: &[u8] = &[
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03,
];
/// id-ct-authEnvelopedData, 1.2.840.113549.1.9.16.1.23
pub const OID_AUTH_ENVELOPED_DATA: &[u8] = &[
    0x06, 0x0B, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x17,
];
/// rsaEncryption, 1.2.840.113549.1.1.1
pub const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
];
/// id-aes256-CBC, 2.16.840.1.101.3.4.1.42
pub const OID_AES256_CBC: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A,
];
/// id-aes256-GCM, 2.16.840.1.101.3.4.1.46
pub const OID_AES256_GCM: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2E,
];

/// A tag and a definite length.
pub fn header(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out
}

/// A whole TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = header(tag, content.len());
    out.extend_from_slice(content);
    out
}

pub fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SET, &parts.concat())
}

pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, bytes)
}

/// A non-negative INTEGER below 128.
pub fn integer_small(value: u8) -> Vec<u8> {
    tlv(TAG_INTEGER, &[value & 0x7F])
}

/// Reads one TLV at the start of `input`: (tag, whole TLV, content). Definite lengths only, as
/// DER requires; `None` for anything truncated or malformed.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header_len) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let len = input
            .get(2..2 + count)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    let end = header_len.checked_add(len)?;
    Some((tag, input.get(..end)?, input.get(header_len..end)?))
}

/// The DER `IssuerAndSerialNumber` of a DER certificate, copied from its TBSCertificate.
pub fn issuer_and_serial(cert: &[u8]) -> Option<Vec<u8>> {
    let (tag, _, certificate) = read_tlv(cert)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let (tag, _, mut tbs) = read_tlv(certificate)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let (tag, whole, _) = read_tlv(tbs)?;
    if tag == 0xA0 {
        // [0] EXPLICIT version
        tbs = tbs.get(whole.len()..)?;
    }
    let (tag, serial, _) = read_tlv(tbs)?;
    if tag != TAG_INTEGER {
        return None;
    }
    tbs = tbs.get(serial.len()..)?;
    let (tag, signature_algorithm, _) = read_tlv(tbs)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    tbs = tbs.get(signature_algorithm.len()..)?;
    let (tag, issuer, _) = read_tlv(tbs)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    Some(sequence(&[issuer.to_vec(), serial.to_vec()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(header(0x04, 5), vec![0x04, 5]);
        assert_eq!(header(0x04, 127), vec![0x04, 127]);
        assert_eq!(header(0x04, 128), vec![0x04, 0x81, 128]);
        assert_eq!(header(0x04, 65536), vec![0x04, 0x83, 1, 0, 0]);
    }

    #[test]
    fn truncated_input_is_refused() {
        assert!(issuer_and_serial(&[]).is_none());
        assert!(issuer_and_serial(&[0x30, 0x82, 0x01]).is_none());
        assert!(issuer_and_serial(&[0x30, 0x03, 0x30, 0x01]).is_none());
        assert!(read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_none());
    }
}
