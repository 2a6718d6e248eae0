//! The answers no handler gives: an unknown path (404 `not_found`), a known path with a method it
//! does not take (405 `method_not_allowed`, with `Allow`), and a path or query string that does
//! not parse. Each is in the documented error shape, never actix's empty or plain-text default.
//!
//! The shape follows the path: `/api/`, `/healthz`, `/readyz` and `/metrics` always answer
//! JSON; anything else (forms, unknown paths) is shaped for the client like a form's own errors
//! (JSON when asked for, an HTML page for browsers).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Route};

use super::{api, respond};
use crate::error::ClientError;

fn machine_path(path: &str) -> bool {
    path.starts_with("/api/") || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// `err` in the shape `req`'s path and client call for.
pub fn error(req: &HttpRequest, err: &ClientError) -> HttpResponse {
    if machine_path(req.path()) {
        api::error(err)
    } else {
        respond::error(respond::client_kind(req), err)
    }
}

/// The 404 of a path nothing serves.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    error(
        &req,
        &ClientError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing here."),
    )
}

/// A resource's default route: 405 with the methods it does take in `Allow`.
pub fn not_allowed(allow: &'static str) -> Route {
    web::to(move |req: HttpRequest| async move {
        let err = ClientError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("This address takes only {allow}."),
        );
        let mut resp = error(&req, &err);
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        resp
    })
}

/// Path and query extractors' errors, in the error shape. A path segment that does not parse
/// names nothing (404); a query string that does not parse is malformed (400).
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    let query = web::QueryConfig::default().error_handler(|e, req| {
        let err = ClientError::malformed(
            "invalid_query",
            format!("The query string is not valid: {e}."),
        );
        actix_web::error::InternalError::from_response(e, error(req, &err)).into()
    });
    let path = web::PathConfig::default().error_handler(|e, req| {
        let err = ClientError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing here.");
        actix_web::error::InternalError::from_response(e, error(req, &err)).into()
    });
    cfg.app_data(query).app_data(path);
}
