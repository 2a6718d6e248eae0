//! `[forms.NAME] captcha = { provider = …, … }`: the spam check a form's posts must pass,
//! checked on this server before anything is kept (docs/captcha.md).
//!
//! - `altcha`: proof of work issued and verified here, no third party (`crate::http::altcha`).
//! - `turnstile`, `hcaptcha`, `recaptcha`: the provider's widget puts a token in the form, and
//!   the service asks the provider's siteverify API whether it is good
//!   (`crate::http::siteverify`).
//!
//! Each provider's table has its own keys (`deny_unknown_fields`); [`CaptchaConfig::validate`]
//! is pure (no I/O), so `check` runs it; secrets and CA files are read when the service starts.

use std::path::PathBuf;

use serde::Deserialize;

/// A form's captcha, by `provider`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum CaptchaConfig {
    /// Proof of work, compatible with the ALTCHA widget (no third party).
    Altcha(AltchaConfig),
    /// Cloudflare Turnstile.
    Turnstile(SiteverifyConfig),
    /// hCaptcha.
    Hcaptcha(SiteverifyConfig),
    /// Google reCAPTCHA, v2 (checkbox, invisible) or v3 (score).
    Recaptcha(SiteverifyConfig),
}

/// The provider, without its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptchaProvider {
    Altcha,
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl CaptchaProvider {
    /// As written in `provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptchaProvider::Altcha => "altcha",
            CaptchaProvider::Turnstile => "turnstile",
            CaptchaProvider::Hcaptcha => "hcaptcha",
            CaptchaProvider::Recaptcha => "recaptcha",
        }
    }

    /// The provider's documented siteverify endpoint (none for altcha).
    pub fn default_verify_url(self) -> Option<&'static str> {
        match self {
            CaptchaProvider::Altcha => None,
            CaptchaProvider::Turnstile => {
                Some("https://challenges.cloudflare.com/turnstile/v0/siteverify")
            }
            CaptchaProvider::Hcaptcha => Some("https://api.hcaptcha.com/siteverify"),
            CaptchaProvider::Recaptcha => Some("https://www.google.com/recaptcha/api/siteverify"),
        }
    }

    /// The form field the provider's widget posts its token (or solution) in.
    pub fn default_field(self) -> &'static str {
        match self {
            CaptchaProvider::Altcha => "altcha",
            CaptchaProvider::Turnstile => "cf-turnstile-response",
            CaptchaProvider::Hcaptcha => "h-captcha-response",
            CaptchaProvider::Recaptcha => "g-recaptcha-response",
        }
    }

    /// Other fields the widget fills with the same token: removed from stored submissions too.
    /// (hCaptcha's widget also writes `g-recaptcha-response`, for reCAPTCHA compatibility.)
    pub fn companion_fields(self) -> &'static [&'static str] {
        match self {
            CaptchaProvider::Hcaptcha => &["g-recaptcha-response"],
            _ => &[],
        }
    }
}

/// `provider = "altcha"`: challenges are issued by `GET /f/{form}/challenge`, HMAC-signed with
/// the key in `secret_env`, expiring, single use.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AltchaConfig {
    /// The environment variable holding the HMAC key (at least 32 bytes).
    pub secret_env: String,
    /// The largest number a challenge hides (the work is about half of it, in SHA-256 hashes).
    #[serde(default = "default_max_number")]
    pub max_number: u64,
    /// How long a challenge may be solved and posted.
    #[serde(default = "default_challenge_secs")]
    pub expires_secs: u64,
    /// The form field the widget posts its solution in.
    #[serde(default = "default_altcha_field")]
    pub field: String,
}

fn default_max_number() -> u64 {
    100_000
}
fn default_challenge_secs() -> u64 {
    1_200
}
fn default_altcha_field() -> String {
    "altcha".to_owned()
}

/// How long one verification may take by default (connect, TLS, request, answer).
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// The shortest and longest `timeout_ms` accepted: a person is waiting for the answer.
pub const TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=30_000;
/// reCAPTCHA v3's `min_score` when none is configured (Google's suggested threshold).
pub const DEFAULT_MIN_SCORE: f64 = 0.5;

/// `provider = "turnstile" | "hcaptcha" | "recaptcha"`: the token the widget posts is checked
/// with the provider's siteverify API.
///
/// Secrets are never stored here, only where to find them (`secret_env`, `secret_file`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteverifyConfig {
    /// The environment variable holding the provider's secret key. Exactly one of
    /// `secret_env`, `secret_file` is required.
    pub secret_env: Option<String>,
    /// A file holding the secret key (surrounding white space ignored); it must not be readable
    /// by group or others.
    pub secret_file: Option<PathBuf>,
    /// The siteverify endpoint; default: the provider's. `https://`, or `http://` to a loopback
    /// address only (a local verifier, as the tests run).
    pub verify_url: Option<String>,
    /// A PEM file of CA certificates: when set, the verifier's certificate must chain to one of
    /// them, and the system's roots are not used.
    pub ca_file: Option<PathBuf>,
    /// The host names the widget may be served on: the reply's `hostname` must be one of them
    /// (ASCII case ignored). `["*"]` accepts any (e.g. with the providers' test keys, whose
    /// replies name a placeholder host).
    pub hostnames: Vec<String>,
    /// The widget's `action` (Turnstile `data-action`, reCAPTCHA v3 `grecaptcha.execute(…,
    /// {action})`): when set, the reply's `action` must be exactly this.
    pub action: Option<String>,
    /// reCAPTCHA v3 only: the lowest `score` accepted (0.0 to 1.0; default 0.5). Set, it also
    /// requires a score (a v2 token, which has none, is refused).
    pub min_score: Option<f64>,
    /// How long, in milliseconds, one verification may take (default 5000, 100 to 30000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The form field the widget posts its token in; default: the widget's own name.
    pub field: Option<String>,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl CaptchaConfig {
    /// The provider.
    pub fn provider(&self) -> CaptchaProvider {
        match self {
            CaptchaConfig::Altcha(_) => CaptchaProvider::Altcha,
            CaptchaConfig::Turnstile(_) => CaptchaProvider::Turnstile,
            CaptchaConfig::Hcaptcha(_) => CaptchaProvider::Hcaptcha,
            CaptchaConfig::Recaptcha(_) => CaptchaProvider::Recaptcha,
        }
    }

    /// The ALTCHA settings, when that is the provider.
    pub fn altcha(&self) -> Option<&AltchaConfig> {
        match self {
            CaptchaConfig::Altcha(c) => Some(c),
            _ => None,
        }
    }

    /// The siteverify settings, when the provider is a third party.
    pub fn siteverify(&self) -> Option<&SiteverifyConfig> {
        match self {
            CaptchaConfig::Altcha(_) => None,
            CaptchaConfig::Turnstile(c)
            | CaptchaConfig::Hcaptcha(c)
            | CaptchaConfig::Recaptcha(c) => Some(c),
        }
    }

    /// Pure checks (no I/O). An error is `(key, message)`; the key is inside `captcha`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            CaptchaConfig::Altcha(c) => {
                if !(1..=10_000_000).contains(&c.max_number) {
                    return Err(("max_number", "must be 1 to 10000000".into()));
                }
                if !(60..=86_400).contains(&c.expires_secs) {
                    return Err(("expires_secs", "must be 60 to 86400".into()));
                }
                if c.secret_env.is_empty() || c.field.is_empty() {
                    return Err((
                        "secret_env",
                        "secret_env and field must not be empty".into(),
                    ));
                }
                Ok(())
            }
            CaptchaConfig::Turnstile(c)
            | CaptchaConfig::Hcaptcha(c)
            | CaptchaConfig::Recaptcha(c) => c.validate(self.provider()),
        }
    }
}

impl SiteverifyConfig {
    /// The token's field: `field`, else the widget's.
    pub fn field(&self, provider: CaptchaProvider) -> &str {
        self.field
            .as_deref()
            .unwrap_or_else(|| provider.default_field())
    }

    /// The verify URL as written, else the provider's.
    pub fn verify_url(&self, provider: CaptchaProvider) -> &str {
        self.verify_url
            .as_deref()
            .or_else(|| provider.default_verify_url())
            .unwrap_or_default()
    }

    /// The score a reCAPTCHA reply must reach, and whether a reply must carry one.
    pub fn min_score(&self, provider: CaptchaProvider) -> Option<(f64, bool)> {
        let score = match self.min_score {
            Some(score) => (score, true),
            None => (DEFAULT_MIN_SCORE, false),
        };
        (provider == CaptchaProvider::Recaptcha).then_some(score)
    }

    /// Whether `hostnames` is `["*"]`.
    pub fn any_hostname(&self) -> bool {
        self.hostnames.iter().any(|h| h == "*")
    }

    /// The verify URL, checked: `https://`, or `http://` to a loopback address; a host; no user
    /// name or password; no fragment.
    pub fn parsed_verify_url(
        &self,
        provider: CaptchaProvider,
    ) -> Result<reqwest::Url, (&'static str, String)> {
        let bad = |why: &str| ("verify_url", why.to_owned());
        let url = reqwest::Url::parse(self.verify_url(provider))
            .map_err(|e| bad(&format!("not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry a user name or password"));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a #fragment"));
        }
        let host = url.host_str().ok_or_else(|| bad("has no host"))?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = match literal.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
            Ok(std::net::IpAddr::V6(ip)) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        };
        match url.scheme() {
            "https" => Ok(url),
            "http" if loopback => Ok(url),
            "http" => Err(bad(
                "must be https:// (plain http:// only to a loopback address: 127.0.0.1, [::1], localhost)",
            )),
            _ => Err(bad("must be an https:// URL")),
        }
    }

    fn validate(&self, provider: CaptchaProvider) -> Result<(), (&'static str, String)> {
        match (&self.secret_env, &self.secret_file) {
            (None, None) => {
                return Err((
                    "secret_env",
                    "no secret key: set secret_env or secret_file".into(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err((
                    "secret_file",
                    "set only one of secret_env, secret_file".into(),
                ))
            }
            (Some(name), None) if name.is_empty() || name.contains(['=', '\0']) => {
                return Err(("secret_env", "must name an environment variable".into()))
            }
            (None, Some(path)) if path.as_os_str().is_empty() => {
                return Err(("secret_file", "must name a file".into()))
            }
            _ => {}
        }
        self.parsed_verify_url(provider)?;
        if self.hostnames.is_empty() {
            return Err((
                "hostnames",
                "list the host names your form's page is served on, e.g. [\"www.example.com\"] ([\"*\"] accepts any)".into(),
            ));
        }
        if self.any_hostname() && self.hostnames.len() > 1 {
            return Err(("hostnames", "\"*\" accepts any host: list it alone".into()));
        }
        for host in &self.hostnames {
            let plain = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if host != "*" && !plain {
                return Err((
                    "hostnames",
                    format!(
                        "`{host}` is not a host name (no scheme, path or port: www.example.com)"
                    ),
                ));
            }
        }
        if let Some(action) = &self.action {
            if provider == CaptchaProvider::Hcaptcha {
                return Err((
                    "action",
                    "hCaptcha's siteverify reply has no action; remove the key".into(),
                ));
            }
            if action.is_empty() || action.len() > 100 || action.chars().any(char::is_control) {
                return Err(("action", "must be 1 to 100 characters".into()));
            }
        }
        if let Some(score) = self.min_score {
            if provider != CaptchaProvider::Recaptcha {
                return Err((
                    "min_score",
                    "applies to reCAPTCHA v3 only (provider = \"recaptcha\")".into(),
                ));
            }
            if !(0.0..=1.0).contains(&score) {
                return Err(("min_score", "must be between 0.0 and 1.0".into()));
            }
        }
        if !TIMEOUT_MS_RANGE.contains(&self.timeout_ms) {
            return Err((
                "timeout_ms",
                format!(
                    "must be {} to {}",
                    TIMEOUT_MS_RANGE.start(),
                    TIMEOUT_MS_RANGE.end()
                ),
            ));
        }
        if self.field.as_deref().is_some_and(str::is_empty) {
            return Err(("field", "must not be empty".into()));
        }
        Ok(())
    }
}

/// A form's captcha that cannot be set up: a secret that is not there or too short, a CA or
/// secret file that does not load, a verify URL that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("[forms.{form}] captcha: {key}: {message}")]
pub struct CaptchaSetupError {
    /// The form's name (its `[forms.NAME]` table).
    pub form: String,
    /// The captcha key at fault, e.g. `secret_env`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl CaptchaSetupError {
    /// An error of form `form`'s captcha key `key`.
    pub fn new(form: &str, key: &str, message: impl Into<String>) -> Self {
        CaptchaSetupError {
            form: form.to_owned(),
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(inline: &str) -> Result<CaptchaConfig, String> {
        #[derive(Deserialize)]
        struct Form {
            captcha: CaptchaConfig,
        }
        toml::from_str::<Form>(&format!("captcha = {{ {inline} }}"))
            .map(|f| f.captcha)
            .map_err(|e| e.to_string())
    }

    fn key(inline: &str) -> &'static str {
        parse(inline).unwrap().validate().unwrap_err().0
    }

    const OK: &str = r#"secret_env = "S", hostnames = ["forms.example.com"]"#;

    #[test]
    fn defaults_per_provider() {
        for (provider, field, url) in [
            (
                "turnstile",
                "cf-turnstile-response",
                "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            ),
            (
                "hcaptcha",
                "h-captcha-response",
                "https://api.hcaptcha.com/siteverify",
            ),
            (
                "recaptcha",
                "g-recaptcha-response",
                "https://www.google.com/recaptcha/api/siteverify",
            ),
        ] {
            let c = parse(&format!("provider = \"{provider}\", {OK}")).unwrap();
            c.validate().unwrap();
            let p = c.provider();
            assert_eq!(p.as_str(), provider);
            let s = c.siteverify().unwrap();
            assert_eq!(s.field(p), field);
            assert_eq!(s.verify_url(p), url);
            assert_eq!(s.timeout_ms, 5000);
            assert_eq!(
                s.min_score(p),
                (provider == "recaptcha").then_some((0.5, false))
            );
        }
        let c = parse(&format!("provider = \"recaptcha\", min_score = 0.7, {OK}")).unwrap();
        let s = c.siteverify().unwrap();
        assert_eq!(s.min_score(c.provider()), Some((0.7, true)));
        let c = parse(r#"provider = "altcha", secret_env = "K""#).unwrap();
        assert_eq!(c.altcha().unwrap().field, "altcha");
        assert!(c.siteverify().is_none());
    }

    #[test]
    fn unknown_keys_and_providers_are_refused() {
        let e = parse(&format!("provider = \"turnstile\", max_number = 5, {OK}")).unwrap_err();
        assert!(e.contains("unknown field `max_number`"), "{e}");
        let e = parse(r#"provider = "altcha", secret_env = "K", hostnames = []"#).unwrap_err();
        assert!(e.contains("unknown field `hostnames`"), "{e}");
        let e = parse(&format!("provider = \"friendlycaptcha\", {OK}")).unwrap_err();
        assert!(e.contains("unknown variant"), "{e}");
        let e = parse(r#"provider = "turnstile", secret_env = "S""#).unwrap_err();
        assert!(e.contains("missing field `hostnames`"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let t = |extra: &str| key(&format!("provider = \"turnstile\", {extra}"));
        assert_eq!(t(r#"hostnames = ["a.example"]"#), "secret_env");
        assert_eq!(
            t(r#"secret_env = "S", secret_file = "f", hostnames = ["a.example"]"#),
            "secret_file"
        );
        assert_eq!(
            t(r#"secret_env = "", hostnames = ["a.example"]"#),
            "secret_env"
        );
        assert_eq!(t(r#"secret_env = "S", hostnames = []"#), "hostnames");
        assert_eq!(
            t(r#"secret_env = "S", hostnames = ["*", "a.example"]"#),
            "hostnames"
        );
        assert_eq!(
            t(r#"secret_env = "S", hostnames = ["https://a.example/"]"#),
            "hostnames"
        );
        assert_eq!(
            t(r#"secret_env = "S", hostnames = ["a.example:8443"]"#),
            "hostnames"
        );
        assert_eq!(t(&format!("{OK}, timeout_ms = 0")), "timeout_ms");
        assert_eq!(t(&format!("{OK}, timeout_ms = 60000")), "timeout_ms");
        assert_eq!(t(&format!("{OK}, field = \"\"")), "field");
        assert_eq!(t(&format!("{OK}, action = \"\"")), "action");
        assert_eq!(t(&format!("{OK}, min_score = 0.5")), "min_score");
        assert_eq!(
            key(&format!(
                "provider = \"hcaptcha\", {OK}, action = \"login\""
            )),
            "action"
        );
        assert_eq!(
            key(&format!("provider = \"recaptcha\", {OK}, min_score = 1.5")),
            "min_score"
        );
        assert_eq!(
            key(&format!("provider = \"recaptcha\", {OK}, min_score = -0.1")),
            "min_score"
        );
        parse(&format!(
            "provider = \"recaptcha\", {OK}, min_score = 1, action = \"submit\""
        ))
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(
            key(r#"provider = "altcha", secret_env = "K", max_number = 0"#),
            "max_number"
        );
    }

    #[test]
    fn verify_url_is_https_or_loopback_http() {
        let url = |u: &str| {
            parse(&format!(
                "provider = \"hcaptcha\", {OK}, verify_url = \"{u}\""
            ))
            .unwrap()
            .validate()
        };
        for good in [
            "https://verify.example.com/siteverify",
            "https://127.0.0.1:8443/siteverify",
            "http://127.0.0.1:8080/siteverify",
            "http://127.8.9.10/siteverify",
            "http://[::1]:8080/siteverify",
            "http://localhost:8080/siteverify",
        ] {
            url(good).unwrap_or_else(|e| panic!("{good}: {e:?}"));
        }
        for bad in [
            "http://verify.example.com/siteverify",
            "http://10.0.0.1/siteverify",
            "http://0.0.0.0:8080/siteverify",
            "ftp://127.0.0.1/siteverify",
            "https://user:pw@verify.example.com/",
            "https://verify.example.com/#x",
            "not a url",
            "",
        ] {
            assert_eq!(url(bad).unwrap_err().0, "verify_url", "{bad}");
        }
    }
}
