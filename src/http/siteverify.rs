//! Third-party captchas (Turnstile, hCaptcha, reCAPTCHA v2 and v3), checked on this server
//! before a submission is accepted: the token the provider's widget put in the form is POSTed,
//! with the secret key and the client's address, to the provider's siteverify API
//! (`application/x-www-form-urlencoded` `secret`, `response`, `remoteip`), and its JSON reply
//! (`success`, `hostname`, `action`, `score`, `error-codes`, `challenge_ts`) is checked:
//! success, an expected host name, the expected action, reCAPTCHA v3's score.
//!
//! It fails closed: a missing token, a refusal, a mismatch or a low score is 422
//! `captcha_failed`; a verifier that cannot be reached, times out, answers an HTTP error or
//! something that is not its JSON, or refuses the secret key, is 503 `captcha_unavailable`
//! with Retry-After (the person did nothing wrong; nothing was kept). Either way the `reason`
//! says which (never the token). The token's field (and hCaptcha's `g-recaptcha-response`
//! twin) is removed from the submission whatever the outcome, so it is never stored.
//!
//! The token and the secret are never logged. The call is async I/O under a timeout, with no
//! lock held; redirects are not followed (a 307 would re-send the secret elsewhere) and no proxy
//! is used.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use actix_web::http::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use secureform_contract::{FieldValue, Fields, Scalar};
use serde::Deserialize;

use crate::config::{CaptchaProvider, CaptchaSetupError, Config, SiteverifyConfig};
use crate::error::ClientError;

/// The longest token sent on (Turnstile's are at most 2048 characters; hCaptcha's and
/// reCAPTCHA's are longer, but nowhere near this): a longer one is refused unsent.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The most bytes of a reply read (a siteverify reply is a few hundred bytes).
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Retry-After of a 503 `captcha_unavailable`, in seconds.
pub const RETRY_AFTER_SECS: u64 = 10;

/// Each third-party-protected form's verifier.
#[derive(Default)]
pub struct Siteverify {
    forms: BTreeMap<String, Verifier>,
}

/// One form's settings, its secret and its HTTP client.
struct Verifier {
    provider: CaptchaProvider,
    url: reqwest::Url,
    secret: SecretString,
    client: reqwest::Client,
    /// Lowercase; empty: any host.
    hostnames: Vec<String>,
    action: Option<String>,
    /// reCAPTCHA: the lowest score, and whether a reply must carry one.
    min_score: Option<(f64, bool)>,
    field: String,
}

/// Whether the secret must be found now (`serve`), or may be missing from this environment
/// (`check`, run where the service's environment variables are not set).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Required,
    IfPresent,
}

impl Siteverify {
    /// Reads each form's secret (environment or file) and CA file and builds its client. Errors
    /// name the form and the key.
    pub fn from_config(config: &Config, secrets: Secrets) -> Result<Siteverify, CaptchaSetupError> {
        let mut forms = BTreeMap::new();
        for (name, form) in &config.forms {
            let Some(captcha) = &form.captcha else {
                continue;
            };
            let Some(c) = captcha.siteverify() else {
                continue;
            };
            let provider = captcha.provider();
            let bad = |key: &str, msg: String| CaptchaSetupError::new(name, key, msg);
            let url = c
                .parsed_verify_url(provider)
                .map_err(|(key, msg)| bad(key, msg))?;
            let secret = match load_secret(c, &config.base_dir) {
                Ok(secret) => secret,
                Err((key, msg)) if secrets == Secrets::IfPresent && key == "secret_env" => {
                    tracing::debug!(form = %name, "{msg}; not checked here");
                    SecretString::from("unset")
                }
                Err((key, msg)) => return Err(bad(key, msg)),
            };
            let client = client(c, &config.base_dir).map_err(|(key, msg)| bad(key, msg))?;
            let hostnames = if c.any_hostname() {
                Vec::new()
            } else {
                c.hostnames.iter().map(|h| h.to_ascii_lowercase()).collect()
            };
            forms.insert(
                name.clone(),
                Verifier {
                    provider,
                    url,
                    secret,
                    client,
                    hostnames,
                    action: c.action.clone(),
                    min_score: c.min_score(provider),
                    field: c.field(provider).to_owned(),
                },
            );
        }
        Ok(Siteverify { forms })
    }

    /// Checks and removes the token in `fields` for a form with a third-party captcha (others:
    /// nothing to do). `remote_ip` is the client's address as the service sees it (the peer
    /// address; the one the rate limit counts).
    pub async fn verify(
        &self,
        form_name: &str,
        fields: &mut Fields,
        remote_ip: Option<IpAddr>,
    ) -> Result<(), ClientError> {
        let Some(v) = self.forms.get(form_name) else {
            return Ok(());
        };
        let posted = fields.remove(&v.field);
        for twin in v.provider.companion_fields() {
            fields.remove(twin);
        }
        let outcome = match token(posted) {
            Ok(token) => v.check(&token, remote_ip).await,
            Err(reason) => Err(Refusal::Failed(reason)),
        };
        outcome.map_err(|refusal| {
            tracing::info!(
                form = %form_name,
                provider = v.provider.as_str(),
                reason = refusal.reason(),
                "captcha refused"
            );
            refusal.into_error()
        })
    }
}

/// The token from its field: one non-empty text value of a sane size.
fn token(posted: Option<FieldValue>) -> Result<String, &'static str> {
    match posted {
        None => Err("token_missing"),
        Some(FieldValue::One(Scalar::Text(text))) => {
            let text = text.trim();
            if text.is_empty() {
                Err("token_missing")
            } else if text.len() > MAX_TOKEN_BYTES || text.chars().any(char::is_control) {
                Err("token_malformed")
            } else {
                Ok(text.to_owned())
            }
        }
        Some(_) => Err("token_malformed"),
    }
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// 422 `captcha_failed`: the token, or what the provider says of it.
    Failed(&'static str),
    /// 503 `captcha_unavailable`: no usable answer from the verifier.
    Unavailable(&'static str),
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Failed(r) | Refusal::Unavailable(r) => r,
        }
    }

    fn into_error(self) -> ClientError {
        match self {
            Refusal::Failed(reason) => ClientError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "captcha_failed",
                "The anti-spam check failed; please try again.",
            )
            .with_reason(reason),
            Refusal::Unavailable(reason) => {
                let mut err = ClientError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "captcha_unavailable",
                    "The anti-spam check could not be completed right now; nothing was kept. Please try again in a moment.",
                )
                .with_reason(reason);
                err.retry_after_secs = Some(RETRY_AFTER_SECS);
                err
            }
        }
    }
}

/// A siteverify reply, as the three providers document it (other keys ignored).
#[derive(Debug, Deserialize)]
struct Reply {
    success: bool,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default, rename = "error-codes")]
    error_codes: Option<Vec<String>>,
    /// When the challenge was solved. Not checked: each provider refuses an expired token
    /// itself (`timeout-or-duplicate`, `expired-input-response`).
    #[serde(default)]
    #[allow(dead_code)]
    challenge_ts: Option<String>,
}

impl Verifier {
    /// One siteverify call and the checks of its reply.
    async fn check(&self, token: &str, remote_ip: Option<IpAddr>) -> Result<(), Refusal> {
        let ip = remote_ip.map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        });
        let ip = ip.map(|ip| ip.to_string());
        let mut form: Vec<(&str, &str)> =
            vec![("secret", self.secret.expose_secret()), ("response", token)];
        if let Some(ip) = &ip {
            form.push(("remoteip", ip));
        }
        let sent = self.client.post(self.url.clone()).form(&form).send().await;
        let response = sent.map_err(|e| {
            let reason = if e.is_timeout() {
                "verifier_timeout"
            } else {
                "verifier_unreachable"
            };
            // reqwest's error names the URL (no secret: that is in the body) and the cause.
            tracing::warn!(provider = self.provider.as_str(), url = %self.url, error = %without_url(&e), "siteverify call failed");
            Refusal::Unavailable(reason)
        })?;
        let status = response.status();
        let body = read_bounded(response).await.map_err(|e| {
            let reason = if e.is_timeout() {
                "verifier_timeout"
            } else {
                "verifier_unreachable"
            };
            tracing::warn!(provider = self.provider.as_str(), url = %self.url, error = %without_url(&e), "reading the siteverify reply failed");
            Refusal::Unavailable(reason)
        })?;
        if !status.is_success() {
            tracing::warn!(provider = self.provider.as_str(), url = %self.url, status = status.as_u16(), "siteverify answered an HTTP error");
            return Err(Refusal::Unavailable("verifier_http_error"));
        }
        let reply: Reply = match body.and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(reply) => reply,
            None => {
                tracing::warn!(provider = self.provider.as_str(), url = %self.url, "siteverify's reply is not its JSON");
                return Err(Refusal::Unavailable("verifier_reply_malformed"));
            }
        };
        self.judge(&reply)
    }

    /// The checks of a reply.
    fn judge(&self, reply: &Reply) -> Result<(), Refusal> {
        let codes = reply.error_codes.as_deref().unwrap_or_default();
        if !reply.success {
            let refusal = refusal_of(codes);
            let shown = shown_codes(codes);
            match refusal {
                Refusal::Unavailable(_) => tracing::error!(
                    provider = self.provider.as_str(),
                    error_codes = %shown,
                    "siteverify refused the request itself (is the secret key right?)"
                ),
                Refusal::Failed(_) => tracing::debug!(
                    provider = self.provider.as_str(),
                    error_codes = %shown,
                    "siteverify refused the token"
                ),
            }
            return Err(refusal);
        }
        if !self.hostnames.is_empty() {
            let host = reply.hostname.as_deref().unwrap_or_default();
            if !self.hostnames.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return Err(Refusal::Failed("hostname_mismatch"));
            }
        }
        if let Some(action) = &self.action {
            if reply.action.as_deref() != Some(action.as_str()) {
                return Err(Refusal::Failed("action_mismatch"));
            }
        }
        if let Some((min, required)) = self.min_score {
            match reply.score {
                Some(score) if !score.is_finite() || score < min => {
                    return Err(Refusal::Failed("score_too_low"))
                }
                None if required => return Err(Refusal::Failed("score_missing")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// What a reply with `success: false` means, from its documented error codes: the token's
/// fault (422), or the request's (the secret key, a malformed call, the provider's own error:
/// 503, as no token could pass).
fn refusal_of(codes: &[String]) -> Refusal {
    let has = |c: &str| codes.iter().any(|code| code == c);
    if has("missing-input-secret")
        || has("invalid-input-secret")
        || has("sitekey-secret-mismatch")
        || has("invalid-keys")
    {
        return Refusal::Unavailable("verifier_refused_secret");
    }
    if has("internal-error") || has("bad-request") {
        return Refusal::Unavailable("verifier_error");
    }
    if has("timeout-or-duplicate") || has("already-seen-response") || has("expired-input-response")
    {
        return Refusal::Failed("token_expired_or_reused");
    }
    Refusal::Failed("token_rejected")
}

/// The provider's error codes for the log: the documented shape only (lowercase letters,
/// digits, `-`, `_`), at most 8, each at most 64 bytes.
fn shown_codes(codes: &[String]) -> String {
    codes
        .iter()
        .take(8)
        .map(|c| {
            if !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                c.as_str()
            } else {
                "?"
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A reqwest error's text without the URL (logged on its own) — and so without any query.
fn without_url(e: &reqwest::Error) -> String {
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if !cause.is_empty() {
            cause.push_str(": ");
        }
        cause.push_str(&s.to_string());
        source = s.source();
    }
    if cause.is_empty() {
        e.to_string()
    } else {
        cause
    }
}

/// The reply's body, or `None` past [`MAX_REPLY_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The secret key from `secret_env` or `secret_file`, by the rules of every secret of the
/// service (see `secureform_secrets`); white space around it is ignored.
fn load_secret(
    c: &SiteverifyConfig,
    base_dir: &Path,
) -> Result<SecretString, (&'static str, String)> {
    let key = if c.secret_env.is_some() {
        "secret_env"
    } else {
        "secret_file"
    };
    let text = secureform_secrets::SecretSource {
        env: c.secret_env.as_deref(),
        file: c.secret_file.as_deref(),
        keys: secureform_secrets::Keys {
            env: "secret_env",
            file: "secret_file",
        },
    }
    .load_text(base_dir)
    .map_err(|e| (key, e.message))?
    .ok_or(("secret_env", "no secret key configured".to_owned()))?;
    let secret = text.expose_secret().trim();
    if secret.is_empty() {
        return Err((key, "holds an empty secret".to_owned()));
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// The form's HTTP client: its timeout for the whole call, no redirects, no proxy, and with
/// `ca_file` only those roots.
fn client(
    c: &SiteverifyConfig,
    base_dir: &Path,
) -> Result<reqwest::Client, (&'static str, String)> {
    let timeout = Duration::from_millis(c.timeout_ms);
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("SecureForm/", env!("CARGO_PKG_VERSION")));
    if let Some(file) = &c.ca_file {
        let path = base_dir.join(file);
        let shown = path.display();
        let pem = std::fs::read(&path).map_err(|e| ("ca_file", format!("{shown}: {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ("ca_file", format!("{shown}: {e}")))?;
        if certs.is_empty() {
            return Err(("ca_file", format!("{shown}: holds no PEM certificate")));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| {
        (
            "verify_url",
            format!("the HTTP client cannot be built: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(provider: CaptchaProvider, min_score: Option<(f64, bool)>) -> Verifier {
        Verifier {
            provider,
            url: reqwest::Url::parse("https://verify.example/").unwrap(),
            secret: SecretString::from("s"),
            client: reqwest::Client::new(),
            hostnames: vec!["forms.example.com".into()],
            action: Some("contact".into()),
            min_score,
            field: provider.default_field().into(),
        }
    }

    fn reply(json: &str) -> Reply {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn replies_are_judged() {
        let v = verifier(CaptchaProvider::Turnstile, None);
        let ok = r#"{"success":true,"hostname":"Forms.Example.com","action":"contact","error-codes":[],"challenge_ts":"2026-01-01T00:00:00Z","cdata":"x"}"#;
        assert_eq!(v.judge(&reply(ok)), Ok(()));
        let judged = |v: &Verifier, json: &str| v.judge(&reply(json)).unwrap_err().reason();
        assert_eq!(
            judged(
                &v,
                r#"{"success":true,"hostname":"evil.example","action":"contact"}"#
            ),
            "hostname_mismatch"
        );
        assert_eq!(
            judged(&v, r#"{"success":true,"action":"contact"}"#),
            "hostname_mismatch"
        );
        assert_eq!(
            judged(
                &v,
                r#"{"success":true,"hostname":"forms.example.com","action":"login"}"#
            ),
            "action_mismatch"
        );
        assert_eq!(
            judged(
                &v,
                r#"{"success":false,"error-codes":["invalid-input-response"]}"#
            ),
            "token_rejected"
        );
        assert_eq!(
            judged(
                &v,
                r#"{"success":false,"error-codes":["timeout-or-duplicate"]}"#
            ),
            "token_expired_or_reused"
        );
        assert_eq!(
            judged(&v, r#"{"success":false,"error-codes":null}"#),
            "token_rejected"
        );
        assert_eq!(
            v.judge(&reply(
                r#"{"success":false,"error-codes":["invalid-input-secret"]}"#
            )),
            Err(Refusal::Unavailable("verifier_refused_secret"))
        );
        assert_eq!(
            v.judge(&reply(
                r#"{"success":false,"error-codes":["internal-error"]}"#
            )),
            Err(Refusal::Unavailable("verifier_error"))
        );

        let v3 = verifier(CaptchaProvider::Recaptcha, Some((0.5, false)));
        let at = |score: &str| {
            format!(
                r#"{{"success":true,"hostname":"forms.example.com","action":"contact","score":{score}}}"#
            )
        };
        assert_eq!(v3.judge(&reply(&at("0.9"))), Ok(()));
        assert_eq!(v3.judge(&reply(&at("0.5"))), Ok(()));
        assert_eq!(judged(&v3, &at("0.3")), "score_too_low");
        let mut v2 = verifier(CaptchaProvider::Recaptcha, Some((0.5, false)));
        v2.action = None;
        assert_eq!(
            v2.judge(&reply(r#"{"success":true,"hostname":"forms.example.com"}"#)),
            Ok(()),
            "a v2 reply has no score"
        );
        v2.min_score = Some((0.5, true));
        assert_eq!(
            judged(&v2, r#"{"success":true,"hostname":"forms.example.com"}"#),
            "score_missing"
        );
        v2.hostnames.clear();
        v2.min_score = None;
        assert_eq!(
            v2.judge(&reply(r#"{"success":true,"hostname":"any.example"}"#)),
            Ok(())
        );
    }

    #[test]
    fn tokens_are_taken_from_one_text_value() {
        assert_eq!(token(None), Err("token_missing"));
        assert_eq!(
            token(Some(FieldValue::One("  ".into()))),
            Err("token_missing")
        );
        assert_eq!(
            token(Some(FieldValue::One(" abc ".into()))),
            Ok("abc".to_owned())
        );
        assert_eq!(
            token(Some(FieldValue::Many(vec!["a".into(), "b".into()]))),
            Err("token_malformed")
        );
        assert_eq!(
            token(Some(FieldValue::One(Scalar::Bool(true)))),
            Err("token_malformed")
        );
        assert_eq!(
            token(Some(FieldValue::One(
                "x".repeat(MAX_TOKEN_BYTES + 1).into()
            ))),
            Err("token_malformed")
        );
        assert_eq!(
            token(Some(FieldValue::One("a\nb".into()))),
            Err("token_malformed")
        );
    }

    #[test]
    fn logged_codes_are_plain() {
        let codes = vec![
            "invalid-input-response".to_owned(),
            "<script>".to_owned(),
            "x".repeat(65),
        ];
        assert_eq!(shown_codes(&codes), "invalid-input-response,?,?");
    }

    #[test]
    fn refuses_a_secret_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, " s3cret \n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c: SiteverifyConfig =
            toml::from_str("secret_file = \"secret\"\nhostnames = [\"*\"]").unwrap();
        let (key, msg) = load_secret(&c, dir.path()).unwrap_err();
        assert_eq!(key, "secret_file");
        assert!(msg.contains("chmod 600"), "{msg}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load_secret(&c, dir.path()).unwrap().expose_secret(),
            "s3cret"
        );
    }
}
