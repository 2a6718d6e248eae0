//! `POST /f/{form}`: ingest, normalize, seal and spool, then answer the client.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secureform_contract::{Fields, FileMeta, Source};

use super::body::{read_all, read_multipart};
use super::respond::{self, client_kind, ClientKind};
use super::AppState;
use crate::config::FormConfig;
use crate::error::ClientError;
use crate::ingest::{self, text};
use crate::normalize::{self, Verdict};

/// The handler.
pub async fn submit(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form_name = path.into_inner();
    let kind = client_kind(&req);
    let Some(form) = state.config.forms.get(&form_name) else {
        state.metrics.rejected("unknown", "unknown_form");
        return respond::error(
            kind,
            &ClientError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "unknown_form",
                "There is no such form.",
            ),
        );
    };
    let id = normalize::new_id();
    match accept(&req, payload, &state, &form_name, form, &id).await {
        Ok(Accepted::Stored { source }) => {
            state.metrics.accepted(&form_name, source.as_str());
            tracing::info!(submission = %id, form = %form_name, source = source.as_str(), "accepted");
            respond::accepted(kind, &form_name, form, &id, &state.warnings(&form_name))
        }
        Ok(Accepted::Dropped) => {
            tracing::info!(form = %form_name, "honeypot filled; submission dropped");
            respond::accepted(kind, &form_name, form, &id, &state.warnings(&form_name))
        }
        Err(err) => {
            state.spool.discard_files(&id);
            state.metrics.rejected(&form_name, err.code);
            tracing::info!(form = %form_name, status = err.status.as_u16(), code = err.code, "refused");
            respond::error(kind, &err)
        }
    }
}

enum Accepted {
    Stored { source: Source },
    Dropped,
}

/// Checks the Origin header against the form's `allowed_origins`. Browsers send Origin on every
/// cross-origin POST (and modern ones on same-origin POSTs too); a request without one is not
/// from a browser page, and is let through.
fn check_origin(req: &HttpRequest, form: &FormConfig) -> Result<(), ClientError> {
    if form.allowed_origins.is_empty() {
        return Ok(());
    }
    match req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(origin) if form.allowed_origins.iter().any(|o| o == origin) => Ok(()),
        Some(_) => Err(ClientError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "This form does not accept submissions from this site.",
        )),
    }
}

async fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    form_name: &str,
    form: &FormConfig,
    id: &str,
) -> Result<Accepted, ClientError> {
    check_origin(req, form)?;
    let limits = &state.config.limits;
    let charset = text::encoding_for(form.charset.as_deref());
    let ct = respond::content_type(req);
    let (source, fields, files): (Source, Fields, Vec<FileMeta>) = if ct == "multipart/form-data" {
        let parts = read_multipart(req, payload, limits, charset, &state.spool, id).await?;
        (Source::Multipart, parts.fields, parts.files)
    } else {
        let body = read_all(req, payload, limits.max_body_bytes).await?;
        let (source, fields) = match ct.as_str() {
            "application/json" => (Source::Json, ingest::json::parse(&body, limits)?),
            "application/x-www-form-urlencoded" => (
                Source::Urlencoded,
                ingest::urlencoded::parse(&body, charset, limits)?,
            ),
            _ => {
                return Err(ClientError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the form as application/x-www-form-urlencoded, multipart/form-data, application/json, application/vnd.fdf, application/vnd.adobe.xfdf or application/pdf.",
                ))
            }
        };
        (source, fields, Vec::new())
    };
    let verdict = normalize::normalize(id.to_owned(), form_name, form, source, fields, files)?;
    let submission = match verdict {
        Verdict::Drop => return Ok(Accepted::Dropped),
        Verdict::Accept(s) => s,
    };
    state
        .spool
        .accept(&submission, &form.sinks)
        .await
        .map_err(|e| {
            tracing::error!(submission = %id, error = %e, "spooling failed");
            ClientError::unavailable()
        })?;
    state.dispatch.notify(&form.sinks);
    Ok(Accepted::Stored { source })
}

/// `GET /f/{form}/thanks`: the built-in thank-you page.
pub async fn thanks(
    path: web::Path<String>,
    query: web::Query<ThanksQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form_name = path.into_inner();
    let Some(form) = state.config.forms.get(&form_name) else {
        return respond::error(
            ClientKind::Browser,
            &ClientError::new(actix_web::http::StatusCode::NOT_FOUND, "unknown_form", "There is no such form."),
        );
    };
    // Only a well-formed id is shown back.
    let id = query
        .id
        .as_deref()
        .filter(|id| ulid::Ulid::from_string(id).is_ok());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(super::pages::thanks(
            form.thanks_title.as_deref(),
            form.thanks_message.as_deref(),
            id,
        ))
}

#[derive(serde::Deserialize)]
pub struct ThanksQuery {
    id: Option<String>,
}
