//! The S/MIME writer (crates/crypto/src/smime.rs and its hand-written DER, smime/der.rs), read
//! back by OpenSSL's CMS parser. Each input chooses the recipients' certificates (1 to 3, with
//! fuzzer-chosen serial numbers and subject names of up to 300 bytes, so that the copied
//! issuer-and-serial and the SET OF cross DER's length forms and orderings), the cipher, the
//! plaintext (repeated to span segments) and the sizes of the reads that feed the encryptor.
//! Properties: OpenSSL parses the output and every recipient decrypts the plaintext; the output
//! is at most the plaintext plus a fixed overhead per segment and per recipient.
#![no_main]

use std::io::{self, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::cms::CmsContentInfo;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::KeyUsage;
use openssl::x509::{X509Name, X509};
use secureform_crypto::smime::{encrypt, ContentCipher, Recipients};
use secureform_fuzz::Input;

fn keys() -> &'static [PKey<Private>] {
    static KEYS: OnceLock<Vec<PKey<Private>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..3)
            .map(|_| PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("key"))
            .collect()
    })
}

fn certificate(key: &PKey<Private>, serial: &[u8], name: &str) -> X509 {
    // A common name is at most 64 characters: a long name is several units of 64.
    let mut subject = X509Name::builder().expect("name");
    let chars: Vec<char> = name.chars().collect();
    for unit in chars.chunks(64) {
        let unit: String = unit.iter().collect();
        subject
            .append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, &unit)
            .expect("unit name");
    }
    let subject = subject.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let serial = BigNum::from_slice(serial).expect("serial");
    b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
        .expect("serial");
    b.set_subject_name(&subject).expect("subject");
    b.set_issuer_name(&subject).expect("issuer");
    b.set_pubkey(key).expect("key");
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 - 3600);
    b.set_not_before(&Asn1Time::from_unix(hour_ago).expect("time"))
        .expect("time");
    b.set_not_after(&Asn1Time::days_from_now(2).expect("time"))
        .expect("time");
    let usage = KeyUsage::new().key_encipherment().build().expect("usage");
    b.append_extension(usage).expect("usage");
    b.sign(key, MessageDigest::sha256()).expect("sign");
    b.build()
}

/// Gives its bytes in reads of the chosen sizes.
struct Trickle<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    i: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self
            .sizes
            .get(self.i % self.sizes.len().max(1))
            .copied()
            .unwrap_or(255);
        self.i += 1;
        let n = (usize::from(size) * 521 + 1)
            .min(buf.len())
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let cipher = if flags & 1 == 0 {
        ContentCipher::Aes256Cbc
    } else {
        ContentCipher::Aes256Gcm
    };
    let count = usize::from(flags >> 1) % 3 + 1;
    let mut certs = Vec::new();
    for (index, key) in keys()[..count].iter().enumerate() {
        let mut serial = input.bytes(20).to_vec();
        serial.retain(|b| *b != 0);
        serial.insert(0, 1); // positive, non-zero
        let len = input.in_range(300);
        // Distinct per recipient: OpenSSL finds a recipient by issuer and serial number.
        let name: String = std::iter::once(char::from(b'0' + index as u8))
            .chain((1..len).map(|i| char::from(b'a' + (i % 26) as u8)))
            .collect();
        certs.push(certificate(key, &serial, &name));
    }
    let times = usize::from(input.byte() % 24) + 1;
    let sizes = input.bytes(8).to_vec();
    let plain = input.rest().repeat(times);

    let der: Vec<Vec<u8>> = certs.iter().map(|c| c.to_der().expect("der")).collect();
    let refs: Vec<&[u8]> = der.iter().map(Vec::as_slice).collect();
    let recipients = Recipients::from_bytes("fuzz", &refs).expect("recipients");
    let mut out = Vec::new();
    let mut reader = Trickle {
        data: &plain,
        sizes: &sizes,
        i: 0,
    };
    let written = encrypt(&recipients, cipher, &mut reader, &mut out).expect("encrypt");
    assert_eq!(written, out.len() as u64, "reported size");
    // Per read a segment header (5 bytes) and up to a block held back; per recipient its
    // certificate's issuer and serial plus a 256-byte encrypted key and framing.
    let reads = reader.i as usize + 1;
    let recipients_bytes: usize = der.iter().map(|d| d.len() + 300).sum();
    let bound = plain.len() + reads * 5 + 16 + recipients_bytes + 200;
    assert!(
        out.len() <= bound,
        "{} bytes out for {} in",
        out.len(),
        plain.len()
    );

    let cms = CmsContentInfo::from_der(&out).expect("OpenSSL parses the CMS");
    for (cert, key) in certs.iter().zip(keys()) {
        let back = cms.decrypt(key, cert).expect("OpenSSL decrypts");
        assert_eq!(back, plain, "decrypted content differs");
    }
});
