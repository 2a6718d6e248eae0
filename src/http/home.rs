//! `GET /` and `GET /openapi.yaml`: what a person or a program finds at the service's root.
//! Nothing here reads the configuration or the data: the service's name and version only.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// The HTTP interface, as the repository describes it.
const OPENAPI: &str = include_str!("../../openapi.yaml");

/// `GET /`: a small page naming the service, or JSON for a client that asks for it.
pub async fn home(req: HttpRequest) -> HttpResponse {
    let version = env!("CARGO_PKG_VERSION");
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    if wants_json {
        return HttpResponse::Ok().json(serde_json::json!({
            "service": "secureform",
            "version": version,
            "links": {"health": "/healthz", "ready": "/readyz", "openapi": "/openapi.yaml"},
        }));
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(super::pages::home(version))
}

/// `GET /openapi.yaml`: the HTTP interface this binary implements.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml; charset=utf-8")
        .body(OPENAPI)
}
