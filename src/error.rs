//! The one error a client sees: an HTTP status, a stable machine-readable code, and a message
//! for a person. Messages may name a field (names are part of the form's design) but never carry
//! a value, a file name or file content.

use actix_web::http::StatusCode;

/// A refusal of a request, shaped later as JSON, an HTML page or an FDF `/Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 429 and some 503s: seconds until a retry may succeed (the Retry-After header).
    pub retry_after_secs: Option<u64>,
    /// A finer machine-readable reason under `code` (e.g. `hostname_mismatch` under
    /// `captcha_failed`), sent as `error.reason` in JSON answers. Never carries submitted data.
    pub reason: Option<&'static str>,
}

impl ClientError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ClientError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            reason: None,
        }
    }

    /// The same error with a finer reason (`error.reason`).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// 400: the body is not what its type says.
    pub fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 413: over a configured limit.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 422: well-formed, but fails the form's rules.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429: over the rate limit; `retry_after` goes into the Retry-After header.
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + 1;
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests from this address; try again in {secs} s."),
        );
        err.retry_after_secs = Some(secs);
        err
    }

    /// 503: the spool cannot take the submission now; nothing was accepted.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "spool_unavailable",
            "The submission could not be stored safely right now; nothing was kept. Please try again.",
        )
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}
