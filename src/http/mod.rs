//! The HTTP interface: routes, shared state, and starting the server.

mod api;
mod body;
mod cors;
pub mod multipart;
pub mod pages;
mod ratelimit;
mod respond;
mod submit;

pub use api::known_tokens;
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
    /// The Documents store, for the API.
    pub documents: Arc<secureform_documents::DocumentStore>,
    /// The configured API tokens.
    pub tokens: Vec<api::KnownToken>,
    pub rate_limiter: RateLimiter,
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
    let spool = Arc::clone(&state.spool);
    let writable = web::block(move || spool.writable()).await.unwrap_or(false);
    if writable {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": {"code": "spool_unavailable", "message": "The spool is not writable."}
        }))
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let spool = Arc::clone(&state.spool);
    let depth = web::block(move || spool.depth().unwrap_or(-1))
        .await
        .unwrap_or(-1);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(depth))
}

/// Registers the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/f/{form}", web::post().to(submit::submit))
        .route(
            "/f/{form}",
            web::method(actix_web::http::Method::OPTIONS).to(cors::preflight),
        )
        .route("/f/{form}/thanks", web::get().to(submit::thanks))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .configure(api::routes);
}

/// Starts the HTTP server on `listener`; returns the server (to await) and its address.
pub fn start(
    state: AppState,
    listener: TcpListener,
) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let addr = listener.local_addr()?;
    let state = web::Data::new(state);
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
        .listen(listener)?
        .run();
    Ok((server, addr))
}
