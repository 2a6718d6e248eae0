//! SecureForm's webhook sink: POSTs each submission to an integrator's HTTPS endpoint.
//!
//! # Design
//! - **Standard Webhooks.** Every request carries `webhook-id` (the submission id, the same on
//!   every redelivery, so a receiver drops duplicates), `webhook-timestamp` (Unix seconds, fresh
//!   on each attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256>` of
//!   `{id}.{timestamp}.{body}` for each configured `whsec_` secret, space-separated, so secrets
//!   rotate without a flag day. The body signed is exactly the bytes sent.
//! - **Body.** The normalized submission as JSON (`application/json`); each file's metadata
//!   gains `content_base64` (files up to `inline_file_bytes`) or `url` (larger ones, from
//!   `api_file_url`). With `pgp_recipients` the body is that JSON as an ASCII-armored OpenPGP
//!   message (`application/pgp-encrypted`), signed with the service's key when one is
//!   configured: only then is the sink reported as encrypted at rest.
//! - **Transport.** rustls, certificates verified (against `ca_file` alone when set), no
//!   redirects, no proxy, a connect timeout and an overall `timeout_secs`.
//! - **SSRF guard.** The client's DNS resolver keeps only public unicast addresses (see
//!   [`guard`]), and the connection goes to those very addresses, so DNS rebinding cannot slip in
//!   between check and connect. IP literals in `url` are checked by [`Config::validate`].
//!   `allow_private = true` lifts the guard (tests, a receiver on the same host).
//! - **Classification.** 2xx: delivered, the receipt keeps the status and up to 512 printable
//!   bytes of the answer. 408, 429, 5xx, connection failures, timeouts: retryable, with the
//!   answer's `Retry-After` (delta-seconds or an HTTP date, at most a day) carried in
//!   [`DeliveryError::retry_after`] for the dispatcher, and shown as "retry after N s" in the
//!   message. 3xx (never followed), other 4xx, and the guard's refusal: permanent. Each failure
//!   has its [`secureform_contract::FailureReason`] (see `send::status_class`). Messages never
//!   carry field values or the request body.

#![warn(missing_docs)]

pub mod guard;

mod body;
mod config;
mod send;
mod sign;

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Client, Url};
use secureform_contract::{
    AtRest, BuildContext, ConfigError, Delivery, DeliveryError, FailureReason, Receipt, Sink,
    SinkSpec,
};
use secureform_crypto::pgp::{Recipients, Signer};

pub use config::{
    Config, DEFAULT_INLINE_FILE_BYTES, DEFAULT_TIMEOUT_SECS, MAX_INLINE_FILE_BYTES,
    MAX_TIMEOUT_SECS,
};
pub use send::EXCERPT_BYTES;

use body::{Pgp, Render};
use sign::Keys;

/// The webhook sink, built from its [`Config`].
pub struct WebhookSink {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    url: Url,
    keys: Keys,
    client: Client,
    render: Render,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.inner.name)
            .field("host", &self.inner.url.host_str())
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// Loads the secrets, certificates and CA file (relative paths resolved against `base_dir`,
    /// the config file's folder), checks them (errors name the key), resolves the host once to
    /// refuse a name that points only at internal addresses, and prepares the client. No request
    /// is sent. A host that does not resolve now is not an error (it is checked again on every
    /// delivery).
    pub async fn build(
        sink_name: &str,
        config: &Config,
        base_dir: &Path,
        signer: Option<Arc<Signer>>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let url = config.parsed_url()?;
        let keys = Keys::load(config, base_dir)?;
        let pgp = match &config.pgp_recipients {
            Some(paths) => {
                let paths: Vec<_> = paths.iter().map(|p| sign::resolve(base_dir, p)).collect();
                let recipients = Recipients::load(&paths)
                    .map_err(|e| ConfigError::new("pgp_recipients", e.to_string()))?;
                Some(Pgp { recipients, signer })
            }
            None => None,
        };
        let ca = config.ca_file.as_ref().map(|p| sign::resolve(base_dir, p));
        let client = send::client(ca.as_deref(), config.timeout(), config.allow_private)?;
        if let Some(host) = url.domain() {
            match guard::resolve(host, config.allow_private).await {
                Ok(_) => {}
                Err(e) => match guard::refusal(e.as_ref()) {
                    Some(refused) => return Err(ConfigError::new("url", refused.to_string())),
                    None => tracing::warn!(sink = %sink_name, error = %e,
                        "the webhook host does not resolve now; it is checked again on delivery"),
                },
            }
        }
        Ok(WebhookSink {
            inner: Arc::new(Inner {
                name: sink_name.to_owned(),
                url,
                keys,
                client,
                render: Render {
                    inline_file_bytes: config.inline_file_bytes,
                    api_file_url: config.api_file_url.clone(),
                    pgp,
                },
            }),
        })
    }

    /// The sink's name in the configuration.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
}

/// `type = "webhook"`.
pub struct Spec;

impl SinkSpec for Spec {
    type Config = Config;
    type Sink = WebhookSink;

    fn validate(config: &Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn at_rest(config: &Config) -> AtRest {
        config.at_rest()
    }

    // `check_offline` is `validate`: building resolves the receiver's host name.

    async fn build(config: &Config, context: BuildContext<'_>) -> Result<WebhookSink, ConfigError> {
        WebhookSink::build(context.name, config, context.base_dir, context.signer).await
    }
}

impl Sink for WebhookSink {
    /// Resolves the host through the guard, connects, verifies TLS and sends `HEAD` to the URL,
    /// with no submission and no signature: any HTTP answer (even 405) means reachable. For the
    /// start-up report, `secureform check --online` and `/readyz`.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        send::probe(&self.inner.client, &self.inner.url).await
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
        let inner = Arc::clone(&self.inner);
        let submission = Arc::clone(d.submission);
        let files = Arc::clone(d.files);
        let (body, content_type) =
            tokio::task::spawn_blocking(move || inner.render.render(&submission, files.as_ref()))
                .await
                .map_err(|_| {
                    DeliveryError::retryable(
                        FailureReason::Internal,
                        "rendering the webhook body was lost",
                    )
                })??;
        let id = d.submission.id.as_str();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let bytes = body.len();
        let request = send::Request {
            url: &self.inner.url,
            id,
            timestamp,
            signature: self.inner.keys.signature(id, timestamp, &body),
            content_type,
            body,
        };
        let outcome = send::post(&self.inner.client, request).await;
        match &outcome {
            Ok(receipt) => tracing::info!(sink = %self.inner.name, submission = %id, bytes,
                status = %receipt.value.split(':').next().unwrap_or(""), "delivered to the webhook"),
            Err(e) => tracing::debug!(sink = %self.inner.name, submission = %id,
                retryable = e.is_retryable(), reason = %e.reason(), "webhook attempt failed"),
        }
        outcome
    }
}
