//! Round trips through OpenSSL's own CMS decoder (a decoder nobody here wrote); the email sink's
//! tests go further and decrypt whole messages with `openssl cms -decrypt`.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::cms::CmsContentInfo;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509Name, X509};

use super::*;

struct Spec {
    key: PKey<Private>,
    not_before: i64,
    not_after: i64,
    key_usage: Option<KeyUsage>,
    eku_server_only: bool,
}

fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn valid(key: PKey<Private>) -> Spec {
    let mut usage = KeyUsage::new();
    usage.key_encipherment().digital_signature();
    Spec {
        key,
        not_before: now() - 3600,
        not_after: now() + 86400,
        key_usage: Some(usage),
        eku_server_only: false,
    }
}

fn certificate(spec: Spec, serial: u32) -> (X509, PKey<Private>) {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "Recipient")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&spec.key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(spec.not_before).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(spec.not_after).unwrap())
        .unwrap();
    if let Some(usage) = spec.key_usage {
        b.append_extension(usage.build().unwrap()).unwrap();
    }
    if spec.eku_server_only {
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
            .unwrap();
    } else {
        b.append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
            .unwrap();
    }
    b.sign(&spec.key, MessageDigest::sha256()).unwrap();
    (b.build(), spec.key)
}

fn refused(spec: Spec) -> String {
    let (cert, _) = certificate(spec, 7);
    let pem = cert.to_pem().unwrap();
    match Recipients::from_bytes("bad.pem", &[&pem]) {
        Ok(_) => panic!("certificate accepted"),
        Err(e) => e.to_string(),
    }
}

fn round_trip(cipher: ContentCipher, plaintext: &[u8]) {
    let (alice, alice_key) = certificate(valid(rsa_key(2048)), 1);
    let (bob, bob_key) = certificate(valid(rsa_key(3072)), 0x00ff_ffff);
    let (a, b) = (alice.to_pem().unwrap(), bob.to_der().unwrap());
    let recipients = Recipients::from_bytes("test", &[&a, &b]).unwrap();
    let mut encrypted = Vec::new();
    let n = encrypt(&recipients, cipher, &mut &plaintext[..], &mut encrypted).unwrap();
    assert_eq!(n as usize, encrypted.len());
    assert!(!encrypted
        .windows(16)
        .any(|w| plaintext.windows(16).take(4).any(|p| p == w)));
    for (cert, key) in [(&alice, &alice_key), (&bob, &bob_key)] {
        let cms = CmsContentInfo::from_der(&encrypted).unwrap();
        let decrypted = cms.decrypt(key, cert).unwrap();
        assert_eq!(decrypted, plaintext);
    }
}

#[test]
fn cbc_round_trips_through_openssl_for_every_recipient() {
    let text: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    round_trip(ContentCipher::Aes256Cbc, &text);
    round_trip(ContentCipher::Aes256Cbc, b"");
    round_trip(ContentCipher::Aes256Cbc, &text[..SEGMENT]);
}

#[test]
fn gcm_round_trips_through_openssl_for_every_recipient() {
    let text: Vec<u8> = (0..150_000u32).map(|i| (i * 13 % 241) as u8).collect();
    round_trip(ContentCipher::Aes256Gcm, &text);
    round_trip(ContentCipher::Aes256Gcm, b"x");
}

#[test]
fn gcm_detects_a_flipped_bit() {
    let (cert, key) = certificate(valid(rsa_key(2048)), 3);
    let pem = cert.to_pem().unwrap();
    let recipients = Recipients::from_bytes("test", &[&pem]).unwrap();
    let mut encrypted = Vec::new();
    encrypt(
        &recipients,
        ContentCipher::Aes256Gcm,
        &mut &[42u8; 1000][..],
        &mut encrypted,
    )
    .unwrap();
    // The ciphertext sits just before the mac and the five end-of-contents pairs.
    let at = encrypted.len() - 2 * 5 - (2 + GCM_TAG_LEN) - 2 * 2 - 10;
    encrypted[at] ^= 1;
    let cms = CmsContentInfo::from_der(&encrypted).unwrap();
    assert!(cms.decrypt(&key, &cert).is_err());
}

#[test]
fn unusable_certificates_are_refused_with_the_reason() {
    let mut expired = valid(rsa_key(2048));
    expired.not_before = now() - 10 * 86400;
    expired.not_after = now() - 86400;
    assert!(refused(expired).contains("expired"));

    let mut future = valid(rsa_key(2048));
    future.not_before = now() + 86400;
    assert!(refused(future).contains("not valid before"));

    let mut signing_only = valid(rsa_key(2048));
    let mut usage = KeyUsage::new();
    usage.digital_signature();
    signing_only.key_usage = Some(usage);
    assert!(refused(signing_only).contains("key encipherment"));

    let mut server = valid(rsa_key(2048));
    server.eku_server_only = true;
    assert!(refused(server).contains("email protection"));

    assert!(refused(valid(rsa_key(1024))).contains("at least 2048"));

    let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    let mut ec = valid(PKey::from_ec_key(ec).unwrap());
    ec.key_usage = None;
    assert!(refused(ec).contains("only RSA"));

    let err = Recipients::from_bytes("junk.pem", &[b"-----BEGIN nonsense"]).unwrap_err();
    assert!(err.to_string().starts_with("junk.pem: not an X.509"));
    assert!(matches!(
        Recipients::load(&[]),
        Err(SmimeError::NoRecipients)
    ));
}
