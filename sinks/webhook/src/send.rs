//! The HTTP side: the client (TLS verified, no redirects, no proxy, guarded DNS), one signed
//! POST, and the classification of what came back.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Response, StatusCode};
use secureform_contract::{ConfigError, DeliveryError, FailureReason, Receipt};

use crate::guard::{self, GuardedResolver};

/// The most bytes of a response body kept in a receipt or an error.
pub const EXCERPT_BYTES: usize = 512;
/// The longest connect (TCP and TLS) wait, within the overall timeout.
const CONNECT_SECS: u64 = 10;
/// The longest `Retry-After` taken from a receiver (the dispatcher bounds it further).
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(86_400);

/// Builds the one client the sink reuses. With `ca_file`, only its certificates are trusted.
pub fn client(
    ca_file: Option<&Path>,
    timeout: Duration,
    allow_private: bool,
) -> Result<Client, ConfigError> {
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(CONNECT_SECS)))
        .https_only(!allow_private)
        .user_agent(concat!("SecureForm-Webhook/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }));
    if let Some(path) = ca_file {
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| ConfigError::new("ca_file", format!("{shown}: {e}")))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ConfigError::new("ca_file", format!("{shown}: {e}")))?;
        if certs.is_empty() {
            return Err(ConfigError::new(
                "ca_file",
                format!("{shown}: holds no PEM certificate"),
            ));
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| ConfigError::new("url", format!("the HTTP client cannot be built: {e}")))
}

/// One signed request.
pub struct Request<'a> {
    pub url: &'a reqwest::Url,
    pub id: &'a str,
    pub timestamp: u64,
    pub signature: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// POSTs the request and classifies the outcome.
pub async fn post(client: &Client, r: Request<'_>) -> Result<Receipt, DeliveryError> {
    let sent = client
        .post(r.url.clone())
        .header(CONTENT_TYPE, r.content_type)
        .header("webhook-id", r.id)
        .header("webhook-timestamp", r.timestamp.to_string())
        .header("webhook-signature", r.signature)
        .body(r.body)
        .send()
        .await;
    match sent {
        Ok(response) => classify(response).await,
        Err(e) => Err(transport(&e)),
    }
}

/// Sends `HEAD` to the URL: any HTTP answer means the receiver is reachable over verified TLS.
pub async fn probe(client: &Client, url: &reqwest::Url) -> Result<(), DeliveryError> {
    client
        .head(url.clone())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| transport(&e))
}

/// 2xx delivered; 408, 429 and 5xx retryable (with `Retry-After` kept, see [`retry_after`]);
/// others (3xx: redirects are not followed; 4xx) permanent. See [`status_class`].
async fn classify(response: Response) -> Result<Receipt, DeliveryError> {
    let status = response.status();
    let retry_after = retry_after(response.headers(), SystemTime::now());
    let location =
        response.status().is_redirection() && response.headers().contains_key("location");
    let excerpt = excerpt(response).await;
    let shown = shown_status(status);
    let Some((retryable, reason)) = status_class(status) else {
        return Ok(Receipt::new("http_status", format!("{shown}{excerpt}")));
    };
    if retryable {
        let after = retry_after
            .map(|d| format!(" (retry after {} s)", d.as_secs()))
            .unwrap_or_default();
        let error = DeliveryError::retryable(
            reason,
            format!("the receiver answered {shown}{after}{excerpt}"),
        );
        return Err(match retry_after {
            Some(d) => error.with_retry_after(d),
            None => error,
        });
    }
    let note = if status.is_redirection() {
        if location {
            "; redirects are not followed: configure the final URL"
        } else {
            "; redirects are not followed"
        }
    } else {
        ""
    };
    Err(DeliveryError::permanent(
        reason,
        format!("the receiver answered {shown}{note}{excerpt}"),
    ))
}

/// How an HTTP status is classified: `None` for 2xx (delivered), else whether it is retryable
/// and why.
///
/// | status | retryable | reason |
/// | --- | --- | --- |
/// | 408 | yes | `timeout` |
/// | 429 | yes | `quota` |
/// | 507 | yes | `quota` |
/// | other 5xx | yes | `peer_error` |
/// | 401, 403, 407 | no | `auth` |
/// | 3xx (never followed) | no | `bad_config` |
/// | other 4xx | no | `rejected_by_peer` |
/// | 1xx and anything else | no | `peer_error` |
pub fn status_class(status: StatusCode) -> Option<(bool, FailureReason)> {
    let code = status.as_u16();
    Some(match code {
        200..=299 => return None,
        408 => (true, FailureReason::Timeout),
        429 | 507 => (true, FailureReason::Quota),
        500..=599 => (true, FailureReason::PeerError),
        401 | 403 | 407 => (false, FailureReason::Auth),
        300..=399 => (false, FailureReason::BadConfig),
        400..=499 => (false, FailureReason::RejectedByPeer),
        _ => (false, FailureReason::PeerError),
    })
}

fn shown_status(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

/// A transport failure: the guard's refusal is permanent (`bad_config`), and so is a request
/// that cannot be built; everything else is retryable: timeouts (`timeout`), TLS failures that a
/// fixed certificate would cure (`tls`), refused or reset connections and the rest
/// (`connection`).
fn transport(e: &reqwest::Error) -> DeliveryError {
    if let Some(refused) = guard::refusal(e) {
        return DeliveryError::permanent(
            FailureReason::BadConfig,
            format!("SSRF guard: {refused}"),
        );
    }
    if e.is_builder() {
        return DeliveryError::permanent(
            FailureReason::BadConfig,
            format!("the request cannot be built: {}", chain(e)),
        );
    }
    let (what, reason) = if e.is_timeout() {
        ("timed out", FailureReason::Timeout)
    } else if is_tls(e) {
        ("TLS failed", FailureReason::Tls)
    } else if e.is_connect() {
        ("could not connect", FailureReason::Connection)
    } else {
        ("the request failed", FailureReason::Connection)
    };
    DeliveryError::retryable(reason, format!("{what}: {}", chain(e)))
}

/// Whether a transport failure is TLS's (see [`secureform_contract::caused_by_tls`]).
fn is_tls(e: &reqwest::Error) -> bool {
    secureform_contract::caused_by_tls(e)
}

/// The error and its sources, without the URL (which may carry a token in its query).
fn chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut current: Option<&(dyn Error + 'static)> = e.source();
    while let Some(err) = current {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = err.source();
    }
    if parts.is_empty() {
        return printable(&e.to_string(), EXCERPT_BYTES);
    }
    printable(&parts.join(": "), EXCERPT_BYTES)
}

/// `Retry-After` as a wait from `now`: delta-seconds or an HTTP date (a date in the past is no
/// wait), at most [`RETRY_AFTER_MAX`]; `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: a number too large for u64 is "very long", not unreadable.
        Duration::from_secs(text.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        httpdate::parse_http_date(text)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(RETRY_AFTER_MAX))
}

/// Up to [`EXCERPT_BYTES`] of the response body, printable, as `: <text>` (empty when none).
async fn excerpt(mut response: Response) -> String {
    let mut kept = Vec::with_capacity(EXCERPT_BYTES);
    while kept.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = EXCERPT_BYTES - kept.len();
                kept.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
            }
            Ok(None) | Err(_) => break,
        }
    }
    let text = printable(&String::from_utf8_lossy(&kept), EXCERPT_BYTES);
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim())
    }
}

/// `text` with control characters replaced by spaces, cut to at most `max` bytes on a character
/// boundary.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, SystemTime::now()), None);
        let secs = |n| Some(Duration::from_secs(n));
        h.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(retry_after(&h, SystemTime::now()), secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 0 "));
        assert_eq!(retry_after(&h, SystemTime::now()), secs(0));
        h.insert(RETRY_AFTER, HeaderValue::from_static("99999999"));
        assert_eq!(retry_after(&h, SystemTime::now()), secs(86_400));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("99999999999999999999999999"),
        );
        assert_eq!(retry_after(&h, SystemTime::now()), secs(86_400));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_717);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h, now), secs(60));
        // A date already past: no wait.
        let later = now + Duration::from_secs(3600);
        assert_eq!(retry_after(&h, later), secs(0));
        // A date years ahead: bounded.
        let long_before = SystemTime::UNIX_EPOCH;
        assert_eq!(retry_after(&h, long_before), secs(86_400));
        for unreadable in ["soon", "-5", "1.5", ""] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(unreadable));
            assert_eq!(retry_after(&h, now), None, "{unreadable:?}");
        }
    }

    #[test]
    fn statuses_are_classified() {
        use FailureReason::*;
        let class = |code: u16| status_class(StatusCode::from_u16(code).unwrap());
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(class(ok), None, "{ok}");
        }
        assert_eq!(class(408), Some((true, Timeout)));
        assert_eq!(class(429), Some((true, Quota)));
        assert_eq!(class(507), Some((true, Quota)));
        for code in [500, 502, 503, 504, 599] {
            assert_eq!(class(code), Some((true, PeerError)), "{code}");
        }
        for code in [401, 403, 407] {
            assert_eq!(class(code), Some((false, Auth)), "{code}");
        }
        for code in [301, 302, 303, 307, 308] {
            assert_eq!(class(code), Some((false, BadConfig)), "{code}");
        }
        for code in [400, 404, 405, 409, 410, 413, 415, 422, 451] {
            assert_eq!(class(code), Some((false, RejectedByPeer)), "{code}");
        }
        assert_eq!(class(101), Some((false, PeerError)));
    }

    #[test]
    fn excerpts_are_printable_and_bounded() {
        assert_eq!(printable("a\r\nb\u{1b}[31m", 100), "a  b [31m");
        let long = "é".repeat(400);
        let cut = printable(&long, EXCERPT_BYTES);
        assert!(cut.len() <= EXCERPT_BYTES && cut.len() >= EXCERPT_BYTES - 1);
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    /// At delivery time the client's own resolver refuses a name resolving to loopback, before
    /// any connection, and the refusal is permanent.
    #[tokio::test]
    async fn the_client_refuses_a_name_resolving_to_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let client = client(None, Duration::from_secs(5), false).unwrap();
        let url: reqwest::Url = format!("https://localhost:{port}/hook").parse().unwrap();
        let err = post(
            &client,
            Request {
                url: &url,
                id: "01J",
                timestamp: 1,
                signature: "v1,x".into(),
                content_type: "application/json",
                body: b"{}".to_vec(),
            },
        )
        .await
        .unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert_eq!(err.reason(), FailureReason::BadConfig, "{err}");
        assert!(err.message().starts_with("SSRF guard:"), "{err}");
        assert!(listener.accept().is_err(), "no connection was made");
        // Plain http is refused by the client too without allow_private.
        let url: reqwest::Url = format!("http://localhost:{port}/hook").parse().unwrap();
        assert!(probe(&client, &url).await.is_err());
    }
}
