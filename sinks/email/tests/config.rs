//! The sink's configuration: parsed from TOML as the service does, checked without I/O.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secureform_contract::AtRestLevel;
use secureform_email::config::Endpoint;
use secureform_email::Config;

const BASE: &str = "smtp_url = \"smtp://mail.example.com\"\nfrom = \"forms@example.com\"\n\
                    to = [\"alice@example.com\"]\n";

fn parse(extra: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(&format!("{BASE}{extra}"))
}

fn invalid(extra: &str) -> (String, String) {
    let e = parse(extra).unwrap().validate().unwrap_err();
    (e.key, e.message)
}

#[test]
fn valid_configurations_and_their_at_rest_status() {
    let pgp = parse("mode = \"pgp\"\nrecipient_keys = [\"a.asc\", \"b.asc\"]\n").unwrap();
    pgp.validate().unwrap();
    assert_eq!(pgp.at_rest().level, AtRestLevel::Encrypted);
    assert!(pgp.at_rest().detail.contains("PGP/MIME"));
    assert_eq!(
        pgp.endpoint().unwrap(),
        Endpoint {
            host: "mail.example.com".into(),
            port: 587,
            implicit_tls: false
        }
    );

    let smime = parse(
        "mode = \"smime\"\nrecipient_keys = [\"a.pem\"]\nsmime_cipher = \"aes256-gcm\"\n\
                       username = \"u\"\npassword_env = \"P\"\nsubject = \"{form}: {topic}\"\n\
                       subject_fields = [\"topic\"]\ntimeout_secs = 5\nattach_json = false\n",
    )
    .unwrap();
    smime.validate().unwrap();
    assert!(smime.at_rest().detail.contains("AES-256-GCM"));

    let tls: Config = toml::from_str(
        "mode = \"tls\"\nsmtp_url = \"smtps://[::1]:2465\"\nfrom = \"f@example.com\"\nto = [\"t@example.com\"]\n",
    )
    .unwrap();
    tls.validate().unwrap();
    assert_eq!(tls.endpoint().unwrap().port, 2465);
    assert!(tls.endpoint().unwrap().implicit_tls);
    let at_rest = tls.at_rest();
    assert_eq!(at_rest.level, AtRestLevel::Plaintext);
    assert_eq!(
        at_rest.detail,
        "delivered over TLS but stored in plaintext in the recipient's mailbox"
    );
}

#[test]
fn mistakes_are_named_by_key() {
    let keys = "recipient_keys = [\"a.asc\"]\n";
    let cases = [
        ("mode = \"pgp\"\n".to_owned(), "recipient_keys"),
        (format!("mode = \"tls\"\n{keys}"), "recipient_keys"),
        (format!("mode = \"pgp\"\n{keys}smime_cipher = \"aes256-cbc\"\n"), "smime_cipher"),
        (format!("mode = \"pgp\"\n{keys}username = \"u\"\n"), "username"),
        (format!("mode = \"pgp\"\n{keys}password_env = \"P\"\n"), "username"),
        (format!("mode = \"pgp\"\n{keys}username = \"u\"\npassword_env = \"P\"\npassword_file = \"f\"\n"), "password_env"),
        (format!("mode = \"pgp\"\n{keys}subject = \"From {{email}}\"\n"), "subject"),
        (format!("mode = \"pgp\"\n{keys}subject = \"{{id\"\n"), "subject"),
        (format!("mode = \"pgp\"\n{keys}timeout_secs = 0\n"), "timeout_secs"),
    ];
    for (extra, key) in cases {
        assert_eq!(invalid(&extra).0, key, "{extra}");
    }
    let (_, why) = invalid(&format!(
        "mode = \"pgp\"\n{keys}subject = \"From {{email}}\"\n"
    ));
    assert!(why.contains("subject_fields"));
}

#[test]
fn smtp_urls_offer_no_plaintext_and_carry_no_credentials() {
    for (url, needle) in [
        ("http://mail.example.com", "plaintext SMTP is not offered"),
        (
            "smtp://user:pw@mail.example.com",
            "must not carry credentials",
        ),
        (
            "smtp://mail.example.com/x?tls=none",
            "nothing after the port",
        ),
        ("not a url", "not a valid URL"),
    ] {
        let cfg: Config = toml::from_str(&format!(
            "mode = \"tls\"\nsmtp_url = \"{url}\"\nfrom = \"f@example.com\"\nto = [\"t@example.com\"]\n"
        ))
        .unwrap();
        let e = cfg.validate().unwrap_err();
        assert_eq!(e.key, "smtp_url");
        assert!(e.message.contains(needle), "{url}: {e}");
    }
}

#[test]
fn addresses_and_unknown_keys_are_refused() {
    let cfg: Config = toml::from_str(
        "mode = \"tls\"\nsmtp_url = \"smtp://h\"\nfrom = \"not an address\"\nto = [\"t@example.com\"]\n",
    )
    .unwrap();
    assert_eq!(cfg.validate().unwrap_err().key, "from");
    let cfg: Config = toml::from_str(
        "mode = \"tls\"\nsmtp_url = \"smtp://h\"\nfrom = \"f@example.com\"\nto = []\n",
    )
    .unwrap();
    assert_eq!(cfg.validate().unwrap_err().key, "to");
    assert!(parse("mode = \"tls\"\nbcc = [\"x@example.com\"]\n").is_err());
    assert!(parse("mode = \"plain\"\n").is_err());
    assert!(parse("mode = \"smime\"\nsmime_cipher = \"des\"\n").is_err());
}
