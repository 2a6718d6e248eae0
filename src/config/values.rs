//! The configuration's typed values: each is parsed once, when the file is loaded, and used as
//! is by every request ("parse, don't validate"). Each type has a `parse` constructor with the
//! rules the loader applies, and deserializes through it, so an invalid value is reported by the
//! loader with its table and key.
//!
//! A refusal's message starts with the key it belongs to (`charset: ...`): the loader turns it
//! into `[TABLE] KEY: ...` (see [`KEYS`]).

use std::fmt;
use std::net::SocketAddr;

use actix_web::http::header::HeaderValue;
use serde::de::{self, Deserialize, Deserializer};

/// The keys whose values are parsed here; their refusals start with `KEY: `.
pub(crate) const KEYS: [&str; 5] = ["redirect", "charset", "allowed_origins", "listen", "sha256"];

/// A refusal of a value of `key`, in the form the loader recognises.
fn refused<E: de::Error>(key: &str, message: &str) -> E {
    E::custom(format_args!("{key}: {message}"))
}

/// Deserializes a string and parses it with `parse`, whose refusal is reported under `key`.
fn parsed<'de, D, T>(
    deserializer: D,
    key: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(|message| refused(key, &message))
}

/// `[forms.NAME] redirect`: where browsers are sent after a submission (the `Location` of the
/// 303). An `https://` or `http://` URL, or a path on this service starting with `/`, with no
/// control characters. Kept as the header value it becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUrl {
    text: String,
    header: HeaderValue,
}

impl RedirectUrl {
    pub fn parse(text: &str) -> Result<RedirectUrl, String> {
        let refused = || "must be an http(s) URL or a path starting with /".to_owned();
        // `//host/…` (and `/\host/…`, which browsers read alike) is a URL on another host without
        // a scheme, not a path: refused, so that only a written-out URL leaves this site.
        let other_host = text.starts_with("//") || text.starts_with("/\\");
        if !(text.starts_with("https://") || text.starts_with("http://") || text.starts_with('/'))
            || other_host
            || text.chars().any(char::is_control)
        {
            return Err(refused());
        }
        // Without control characters, every string is a valid header value.
        let header = HeaderValue::from_str(text).map_err(|_| refused())?;
        Ok(RedirectUrl {
            text: text.to_owned(),
            header,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value of the `Location` header.
    pub fn header_value(&self) -> HeaderValue {
        self.header.clone()
    }
}

impl<'de> Deserialize<'de> for RedirectUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, "redirect", RedirectUrl::parse)
    }
}

/// `[forms.NAME] charset`: the encoding of urlencoded and multipart bodies, from any label the
/// WHATWG Encoding Standard knows (`windows-1252`, `latin1`, `gbk`, `shift_jis`, …; case and
/// surrounding whitespace do not matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charset(pub &'static encoding_rs::Encoding);

impl Charset {
    pub fn parse(label: &str) -> Result<Charset, String> {
        encoding_rs::Encoding::for_label(label.as_bytes())
            .map(Charset)
            .ok_or_else(|| {
                format!(
                    "unknown charset `{label}`: expected an encoding label such as utf-8, \
                     windows-1252 or gbk"
                )
            })
    }

    pub fn encoding(self) -> &'static encoding_rs::Encoding {
        self.0
    }
}

impl<'de> Deserialize<'de> for Charset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, "charset", Charset::parse)
    }
}

/// One of `[forms.NAME] allowed_origins`: a value that starts with `https://` or `http://` and
/// does not end with `/`. It is compared with a request's `Origin` header byte for byte, with no
/// normalization: write it as browsers send it (`https://example.com`, `http://localhost:8000`:
/// lower-case scheme and host, a port only when it is not the scheme's default, no path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    pub fn parse(text: &str) -> Result<Origin, String> {
        if !(text.starts_with("https://") || text.starts_with("http://")) || text.ends_with('/') {
            return Err(format!(
                "`{text}` is not an origin like https://example.com (scheme and host, no path)"
            ));
        }
        Ok(Origin(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a request's `Origin` header is this origin.
    pub fn matches(&self, header: &str) -> bool {
        self.0 == header
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, "allowed_origins", Origin::parse)
    }
}

/// `[server] listen` and `serve --listen`: `HOST:PORT`, where HOST is an IPv4 address, an IPv6
/// address in brackets, or a name looked up when the service starts (`localhost:8080`), as the
/// standard library reads an address to bind (the port after the last `:`). Port 0 picks a free
/// port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// An address.
    Socket(SocketAddr),
    /// A host name and a port.
    Named { host: String, port: u16 },
}

impl ListenAddr {
    pub fn parse(text: &str) -> Result<ListenAddr, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(ListenAddr::Socket(addr));
        }
        let refused = || {
            format!(
                "`{text}` is not an address to listen on like 127.0.0.1:8080, [::1]:8080 or \
                 localhost:8080"
            )
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(refused)?;
        let port: u16 = port.parse().map_err(|_| refused())?;
        // A host that no lookup can find (empty, with a space or a `/`) is refused here rather
        // than when the service starts.
        let unusable = |c: char| c.is_whitespace() || c.is_control() || c == '/';
        if host.is_empty() || host.chars().any(unusable) {
            return Err(refused());
        }
        Ok(ListenAddr::Named {
            host: host.to_owned(),
            port,
        })
    }

    /// Binds a listener to it (a name: to the first of its addresses that can be bound).
    pub fn bind(&self) -> std::io::Result<std::net::TcpListener> {
        match self {
            ListenAddr::Socket(addr) => std::net::TcpListener::bind(addr),
            ListenAddr::Named { host, port } => std::net::TcpListener::bind((host.as_str(), *port)),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Socket(addr) => addr.fmt(f),
            ListenAddr::Named { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ListenAddr::parse(text)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, "listen", ListenAddr::parse)
    }
}

/// `[tokens.NAME] sha256`: the SHA-256 of an API token, written as 64 hex digits (either case;
/// surrounding whitespace is ignored).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn parse(text: &str) -> Result<TokenHash, String> {
        let refused = || {
            "must be the SHA-256 of the token, 64 hex digits (see `secureform token new`)"
                .to_owned()
        };
        let text = text.trim();
        if text.len() != 64 {
            return Err(refused());
        }
        let mut hash = [0u8; 32];
        hex::decode_to_slice(text, &mut hash).map_err(|_| refused())?;
        Ok(TokenHash(hash))
    }

    /// Whether `digest` (the SHA-256 of a presented token) is this hash, compared without an
    /// early exit.
    pub fn matches(&self, digest: &[u8; 32]) -> bool {
        self.0
            .iter()
            .zip(digest)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(deserializer, "sha256", TokenHash::parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_urls() {
        for good in [
            "https://example.com/thanks",
            "http://localhost:8000/done",
            "/thanks",
            "/",
            "https://example.com/merci?é=1",
        ] {
            let r = RedirectUrl::parse(good).unwrap();
            assert_eq!(r.as_str(), good);
            assert_eq!(r.header_value().as_bytes(), good.as_bytes());
        }
        for bad in [
            "",
            "example.com/thanks",
            "thanks",
            "ftp://example.com/",
            "javascript:alert(1)",
            "HTTPS://example.com/",
            "https://example.com/\r\nSet-Cookie: a=b",
            "/thanks\t",
            "/a\u{85}b",
            "//elsewhere.example/",
            "/\\elsewhere.example/",
        ] {
            let e = RedirectUrl::parse(bad).unwrap_err();
            assert_eq!(
                e, "must be an http(s) URL or a path starting with /",
                "{bad}"
            );
        }
    }

    #[test]
    fn charsets() {
        for (label, name) in [
            ("windows-1252", "windows-1252"),
            ("latin1", "windows-1252"),
            ("GBK", "GBK"),
            (" utf-8 ", "UTF-8"),
            ("shift_jis", "Shift_JIS"),
            ("iso-8859-2", "ISO-8859-2"),
        ] {
            assert_eq!(Charset::parse(label).unwrap().encoding().name(), name);
        }
        for bad in ["", "klingon", "utf8mb4", "windows-1252;"] {
            let e = Charset::parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("unknown charset `{bad}`")), "{e}");
        }
    }

    #[test]
    fn origins() {
        for good in [
            "https://example.com",
            "http://localhost:8000",
            "http://127.0.0.1:8000",
            // Accepted as today, though no browser sends such an Origin: it never matches.
            "https://example.com/path",
        ] {
            let o = Origin::parse(good).unwrap();
            assert!(o.matches(good));
            assert_eq!(o.as_str(), good);
        }
        for bad in [
            "",
            "example.com",
            "https://example.com/",
            "ftp://example.com",
            "null",
            "HTTPS://example.com",
        ] {
            let e = Origin::parse(bad).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "`{bad}` is not an origin like https://example.com (scheme and host, no path)"
                )
            );
        }
        // Compared byte for byte, as browsers send it.
        let o = Origin::parse("https://example.com").unwrap();
        assert!(!o.matches("https://EXAMPLE.com"));
        assert!(!o.matches("https://example.com:443"));
        assert!(!o.matches("http://example.com"));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            ListenAddr::parse("127.0.0.1:8080").unwrap(),
            ListenAddr::Socket("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("[::1]:0").unwrap(),
            ListenAddr::Socket("[::1]:0".parse().unwrap())
        );
        assert_eq!(
            ListenAddr::parse("localhost:8080").unwrap(),
            ListenAddr::Named {
                host: "localhost".to_owned(),
                port: 8080
            }
        );
        assert_eq!(
            ListenAddr::parse("localhost:8080").unwrap().to_string(),
            "localhost:8080"
        );
        assert_eq!(
            ListenAddr::parse("0.0.0.0:80").unwrap().to_string(),
            "0.0.0.0:80"
        );
        for bad in [
            "",
            "8080",
            "localhost",
            ":8080",
            "localhost:",
            "localhost:65536",
            "localhost:http",
            "local host:80",
            "https://localhost:8080",
        ] {
            assert!(ListenAddr::parse(bad).is_err(), "{bad}");
        }
        // The host before the last ':' is looked up, as the standard library does.
        assert_eq!(
            ListenAddr::parse("::1:8080").unwrap(),
            ListenAddr::Named {
                host: "::1".to_owned(),
                port: 8080
            }
        );
        let listener = ListenAddr::parse("localhost:0").unwrap().bind().unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
    }

    #[test]
    fn token_hashes() {
        let hex_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let h = TokenHash::parse(hex_hash).unwrap();
        assert_eq!(TokenHash::parse(&hex_hash.to_uppercase()).unwrap(), h);
        assert_eq!(TokenHash::parse(&format!("  {hex_hash}\n")).unwrap(), h);
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_hash, &mut digest).unwrap();
        assert!(h.matches(&digest));
        digest[31] ^= 1;
        assert!(!h.matches(&digest));
        for bad in [
            "",
            &hex_hash[..63],
            &format!("{hex_hash}0"),
            &hex_hash.replace('9', "g"),
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f0",
            "+f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ] {
            assert_eq!(
                TokenHash::parse(bad).unwrap_err(),
                "must be the SHA-256 of the token, 64 hex digits (see `secureform token new`)",
                "{bad}"
            );
        }
    }
}
