//! The three shapes of an answer: a browser gets a redirect or an HTML page, an integrator gets
//! JSON, Acrobat gets an FDF whose `/Status` it shows the user.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::pages;
use crate::config::FormConfig;
use crate::error::ClientError;

/// Who is asking, which decides the shape of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Browser,
    Integrator,
    Acrobat,
}

fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The request's media type, lowercase, without parameters.
pub fn content_type(req: &HttpRequest) -> String {
    media_type(req)
}

/// Decides the client from the body's type and the Accept header.
pub fn client_kind(req: &HttpRequest) -> ClientKind {
    let ct = media_type(req);
    if matches!(
        ct.as_str(),
        "application/vnd.fdf" | "application/vnd.adobe.xfdf" | "application/pdf"
    ) {
        return ClientKind::Acrobat;
    }
    if ct == "application/json" {
        return ClientKind::Integrator;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if accept.contains("application/json") && !accept.contains("text/html") {
        ClientKind::Integrator
    } else {
        ClientKind::Browser
    }
}

/// The answer to a refused request.
pub fn error(kind: ClientKind, err: &ClientError) -> HttpResponse {
    let mut resp = HttpResponse::build(err.status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(secs) = err.retry_after_secs {
        resp.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    match kind {
        ClientKind::Integrator => resp.json(error_body(err)),
        ClientKind::Browser => resp
            .content_type("text/html; charset=utf-8")
            .body(pages::error(err.status.as_u16(), &err.message)),
        ClientKind::Acrobat => {
            resp.content_type("application/vnd.fdf")
                .body(crate::ingest::fdf_answer(&format!(
                    "{} ({})",
                    err.message, err.code
                )))
        }
    }
}

/// The JSON shape of an error: `{"error": {"code", "message"[, "reason"]}}`.
pub fn error_body(err: &ClientError) -> serde_json::Value {
    let mut error = json!({"code": err.code, "message": err.message});
    if let Some(reason) = err.reason {
        error["reason"] = json!(reason);
    }
    json!({ "error": error })
}

/// The answer to an accepted submission (also to a dropped honeypot one, which must look the
/// same).
pub fn accepted(
    kind: ClientKind,
    form_name: &str,
    form: &FormConfig,
    id: &str,
    warnings: &[String],
) -> HttpResponse {
    match kind {
        ClientKind::Integrator => HttpResponse::Created().json(json!({
            "id": id, "form": form_name, "warnings": warnings
        })),
        ClientKind::Browser => {
            let mut resp = HttpResponse::SeeOther();
            match &form.redirect {
                Some(url) => resp.insert_header((header::LOCATION, url.header_value())),
                None => {
                    resp.insert_header((header::LOCATION, format!("/f/{form_name}/thanks?id={id}")))
                }
            };
            resp.finish()
        }
        ClientKind::Acrobat => {
            HttpResponse::Ok()
                .content_type("application/vnd.fdf")
                .body(crate::ingest::fdf_answer(&format!(
                    "Thank you. Your form was received securely. Reference: {id}"
                )))
        }
    }
}
