//! The HTTP interface: routes, shared state, and starting the server.

pub mod altcha;
mod api;
mod body;
mod cors;
mod fallback;
mod home;
pub(crate) mod item_stream;
pub mod multipart;
mod pace;
pub mod pages;
pub mod pdf_gate;
mod ratelimit;
pub mod refusal;
mod respond;
pub mod siteverify;
mod submit;

pub(crate) use api::{erase_documents_for, erase_spooled, Caller};
pub use api::{known_tokens, lookup_token, KnownToken};
pub use ratelimit::RateLimiter;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::metrics::Metrics;
use crate::spool::Spool;

/// What every handler shares.
pub struct AppState {
    pub config: Arc<Config>,
    pub spool: Arc<Spool>,
    pub dispatch: Dispatch,
    pub metrics: Arc<Metrics>,
    /// Each form's at-rest warnings, computed once from the configuration.
    pub form_warnings: BTreeMap<String, Vec<String>>,
    /// The documents sinks' stores, for the API.
    pub documents: Arc<crate::documents::DocumentStores>,
    /// The configured API tokens.
    pub tokens: Vec<api::KnownToken>,
    pub rate_limiter: RateLimiter,
    /// Each sink's last known health, for `/readyz`.
    pub sink_health: Arc<crate::health::SinkHealth>,
    /// Memory budget and threads of PDF-family parses.
    pub pdf_gate: Arc<pdf_gate::PdfGate>,
    /// The web console's signed-in sessions.
    pub console: crate::console::Sessions,
    /// The forms' proof-of-work keys and used challenges.
    pub altcha: Arc<altcha::Altcha>,
    /// The forms' third-party captcha verifiers (Turnstile, hCaptcha, reCAPTCHA).
    pub siteverify: Arc<siteverify::Siteverify>,
    /// The service's PGP signing key (`[storage] pgp_signing_key`): signs deletion reports.
    pub signer: Option<Arc<secureform_crypto::pgp::Signer>>,
}

impl AppState {
    /// The warnings of a form, for every JSON answer of that form.
    pub fn warnings(&self, form: &str) -> Vec<String> {
        self.form_warnings.get(form).cloned().unwrap_or_default()
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let writable = state.spool.writable().await;
    // Sinks that fail do not make the service unready: submissions wait, sealed, in the spool.
    if writable {
        HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "sinks": state.sink_health.snapshot(),
        }))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": {"code": "spool_unavailable", "message": "The spool is not writable."}
        }))
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let depth = state.spool.depth().await.unwrap_or(-1);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(depth) + &state.documents.render_metrics())
}

/// Registers the routes. Every path answers a method it does not take with 405 and `Allow`,
/// and a path nothing serves with 404, both in the error shape.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use fallback::not_allowed;
    cfg.configure(fallback::extractor_configs)
        .service(
            web::resource("/")
                .route(web::get().to(home::home))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/openapi.yaml")
                .route(web::get().to(home::openapi))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/f/{form}")
                .route(web::post().to(submit::submit))
                .route(web::method(actix_web::http::Method::OPTIONS).to(cors::preflight))
                .default_service(not_allowed("POST, OPTIONS")),
        )
        .service(
            web::resource("/f/{form}/challenge")
                .route(web::get().to(altcha::challenge))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/f/{form}/thanks")
                .route(web::get().to(submit::thanks))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(healthz))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/readyz")
                .route(web::get().to(readyz))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/metrics")
                .route(web::get().to(metrics))
                .default_service(not_allowed("GET")),
        )
        .configure(api::routes)
        .configure(crate::console::routes)
        .default_service(web::to(fallback::not_found));
}

/// Time for a client to send a request's head (line and headers).
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Time to drain a body answered before it was read whole.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Starts the HTTP server on `listener`; returns the server (to await) and its address.
pub fn start(
    state: AppState,
    listener: TcpListener,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let addr = listener.local_addr()?;
    let state = web::Data::new(state);
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
        // The request head must arrive within this (then actix answers 408 and closes); the
        // body's own deadline and minimum rate are `[limits]`' (see `pace`).
        .client_request_timeout(HEAD_TIMEOUT)
        // After an early answer (413, 408) the rest of the body is read and dropped this long,
        // so the client sees the answer instead of a reset connection.
        .client_disconnect_timeout(LINGER)
        .listen(listener)?
        .run();
    Ok((server, addr))
}
