//! `POST /f/{form}`: ingest, normalize, seal and spool, then answer the client.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secureform_contract::{Fields, FileMeta, Source};

use super::body::{read_all, read_multipart};
use super::respond::{self, client_kind, ClientKind};
use super::{cors, AppState};
use crate::config::FormConfig;
use crate::error::ClientError;
use crate::ingest::pdf::{self, PdfKind, PdfLimits};
use crate::ingest::{self, check_field_limits, text};
use crate::normalize::{self, Verdict};
use crate::spool::Acceptance;

/// The handler.
pub async fn submit(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form_name = path.into_inner();
    let mut kind = client_kind(&req);
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
    let origin = cors::allowed_origin(&req, form);
    let mut resp = match rate_limit(&req, &state, &form_name, form) {
        Err(err) => {
            state.metrics.rejected(&form_name, err.code);
            respond::error(kind, &err)
        }
        Ok(()) => {
            let id = normalize::new_id(state.spool.clock());
            // Dropped with this future, however the request ends (see `UploadGuard`).
            let upload = state.spool.upload_guard(&id);
            let result = accept(&req, payload, &state, &form_name, form, &id, &mut kind).await;
            if matches!(&result, Ok(Accepted::Stored { id: stored, .. }) if *stored == id) {
                upload.keep();
            }
            answer(&state, kind, &form_name, form, &id, result)
        }
    };
    cors::decorate(&mut resp, origin);
    resp
}

/// Shapes the outcome of one submission for its client, and counts and logs it.
pub fn answer(
    state: &AppState,
    kind: ClientKind,
    form_name: &str,
    form: &FormConfig,
    id: &str,
    result: Result<Accepted, ClientError>,
) -> HttpResponse {
    match result {
        Ok(Accepted::Stored { source, id }) => {
            state.metrics.accepted(form_name, source.as_str());
            tracing::info!(submission = %id, form = %form_name, source = source.as_str(), "accepted");
            respond::accepted(kind, form_name, form, &id, &state.warnings(form_name))
        }
        Ok(Accepted::Dropped) => {
            tracing::info!(form = %form_name, "honeypot filled; submission dropped");
            respond::accepted(kind, form_name, form, id, &state.warnings(form_name))
        }
        Err(err) => {
            state.metrics.rejected(form_name, err.code);
            tracing::info!(form = %form_name, status = err.status.as_u16(), code = err.code, "refused");
            respond::error(kind, &err)
        }
    }
}

/// The form's rate limit for the client's address.
fn rate_limit(
    req: &HttpRequest,
    state: &AppState,
    form_name: &str,
    form: &FormConfig,
) -> Result<(), ClientError> {
    let per_minute = form
        .rate_per_minute
        .unwrap_or(state.config.limits.rate_per_minute);
    let Some(addr) = req.peer_addr().map(|a| a.ip()) else {
        return Ok(());
    };
    state
        .rate_limiter
        .check(addr, &format!("f/{form_name}"), per_minute)
        .map_err(ClientError::rate_limited)
}

/// What became of an accepted request.
pub enum Accepted {
    /// Stored under `id` (an earlier id when an Idempotency-Key was repeated).
    Stored { source: Source, id: String },
    /// The honeypot was filled: nothing was kept.
    Dropped,
}

/// Checks the Origin header against the form's `allowed_origins`. Browsers send Origin on every
/// cross-origin POST (and modern ones on same-origin POSTs too); a request without one is not
/// from a browser page, and is let through.
fn check_origin(req: &HttpRequest, form: &FormConfig) -> Result<(), ClientError> {
    if form.allowed_origins.is_empty() {
        return Ok(());
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(()),
        Some(origin) if form.allowed_origins.iter().any(|o| o == origin) => Ok(()),
        Some(_) => Err(ClientError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "This form does not accept submissions from this site.",
        )),
    }
}

/// Reads, parses and spools one submission. A PDF-family body recognised by its bytes makes the
/// client Acrobat (answered with an FDF) unless it asked for JSON.
async fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    form_name: &str,
    form: &FormConfig,
    id: &str,
    kind: &mut ClientKind,
) -> Result<Accepted, ClientError> {
    check_origin(req, form)?;
    let limits = &state.config.limits;
    let charset = text::encoding_for(form.charset.as_deref());
    let ct = respond::content_type(req);
    let (source, fields, files): (Source, Fields, Vec<FileMeta>) = if ct == "multipart/form-data" {
        let parts = read_multipart(req, payload, limits, charset, &state.spool, id).await?;
        (Source::Multipart, parts.fields, parts.files)
    } else {
        let body = read_all(req, payload, limits.max_body_bytes)
            .await?
            .freeze();
        // Clients mislabel bodies: what the bytes say wins for the PDF family.
        if let Some(pdf) = pdf_kind(&ct, &body) {
            if *kind == ClientKind::Browser {
                *kind = ClientKind::Acrobat;
            }
            return accept_pdf_family(state, form_name, form, id, pdf, body).await;
        }
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
    finish(state, form_name, form, id, source, fields, files, None).await
}

/// Normalizes, applies the form's rules, and spools durably.
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    state: &AppState,
    form_name: &str,
    form: &FormConfig,
    id: &str,
    source: Source,
    fields: Fields,
    files: Vec<FileMeta>,
    idempotency: Option<(String, String)>,
) -> Result<Accepted, ClientError> {
    let verdict = normalize::normalize(
        id.to_owned(),
        form_name,
        form,
        source,
        fields,
        files,
        state.spool.clock(),
    )?;
    let submission = match verdict {
        Verdict::Drop => return Ok(Accepted::Dropped),
        Verdict::Accept(s) => s,
    };
    let acceptance = state
        .spool
        .accept(&submission, &form.sinks, idempotency)
        .await
        .map_err(|e| {
            tracing::error!(submission = %id, error = %e, "spooling failed");
            ClientError::unavailable()
        })?;
    match acceptance {
        Acceptance::Stored => {}
        Acceptance::Repeat(first) => {
            tracing::info!(submission = %first, form = %form_name, "idempotent repeat; nothing stored");
            return Ok(Accepted::Stored { source, id: first });
        }
        Acceptance::KeyReused => {
            return Err(ClientError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request to this form in the last 48 hours; use a new key for a new submission.",
            ))
        }
    }
    state.dispatch.notify(&form.sinks);
    Ok(Accepted::Stored {
        source,
        id: id.to_owned(),
    })
}

/// The PDF-family kind of a body: sniffed from the bytes first, else from the declared type.
fn pdf_kind(content_type: &str, body: &[u8]) -> Option<PdfKind> {
    if let Some(kind) = pdf::sniff(body) {
        return Some(kind);
    }
    match content_type {
        "application/vnd.fdf" => Some(PdfKind::Fdf),
        "application/vnd.adobe.xfdf" => Some(PdfKind::Xfdf),
        "application/pdf" => Some(PdfKind::Pdf),
        _ => None,
    }
}

/// FDF, XFDF and whole-PDF bodies: parsed off the event loop under a time limit. A whole PDF is
/// also kept, sealed, as file 0 of the submission.
async fn accept_pdf_family(
    state: &AppState,
    form_name: &str,
    form: &FormConfig,
    id: &str,
    kind: PdfKind,
    body: bytes::Bytes,
) -> Result<Accepted, ClientError> {
    let limits = &state.config.limits;
    let pdf_limits = PdfLimits {
        max_bytes: limits.max_body_bytes,
        max_fields: limits.max_fields,
        max_parse_time: std::time::Duration::from_secs(limits.pdf_parse_secs),
        ..PdfLimits::default()
    };
    let parse_body = body.clone();
    let task = tokio::task::spawn_blocking(move || match kind {
        PdfKind::Fdf => pdf::parse_fdf(&parse_body, &pdf_limits),
        PdfKind::Xfdf => pdf::parse_xfdf(&parse_body, &pdf_limits),
        PdfKind::Pdf => pdf::parse_pdf(&parse_body, &pdf_limits),
    });
    // The parser checks its own clock; this bounds the answer even if a step inside a library
    // runs long (the thread then finishes on its own, its result discarded).
    let budget = std::time::Duration::from_secs(limits.pdf_parse_secs + 1);
    let parsed = match tokio::time::timeout(budget, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => {
            return Err(ClientError::malformed(
                "pdf_malformed",
                "The PDF could not be read.",
            ))
        }
        Err(_) => {
            return Err(ClientError::malformed(
                "pdf_timeout",
                "The PDF took too long to read.",
            ))
        }
    };
    let fields = parsed.map_err(|e| {
        let status = actix_web::http::StatusCode::from_u16(e.status())
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
        ClientError::new(status, e.code(), e.message())
    })?;
    check_field_limits(&fields, limits)?;
    let (source, files) = match kind {
        PdfKind::Fdf => (Source::Fdf, Vec::new()),
        PdfKind::Xfdf => (Source::Xfdf, Vec::new()),
        PdfKind::Pdf => (Source::Pdf, vec![keep_pdf(state, id, body).await?]),
    };
    finish(state, form_name, form, id, source, fields, files, None).await
}

/// Seals the submitted PDF into the spool as the submission's file 0.
async fn keep_pdf(state: &AppState, id: &str, body: bytes::Bytes) -> Result<FileMeta, ClientError> {
    let mut writer = state.spool.file_writer(id, 0).map_err(|e| {
        tracing::error!(submission = %id, error = %e, "cannot create a spool file");
        ClientError::unavailable()
    })?;
    let (size, sha256) = web::block(move || {
        writer.write_chunk(&body)?;
        writer.finish()
    })
    .await
    .map_err(|_| ClientError::unavailable())?
    .map_err(|e| {
        tracing::error!(submission = %id, error = %e, "cannot write a spool file");
        ClientError::unavailable()
    })?;
    Ok(FileMeta {
        field: "pdf".to_owned(),
        filename: "form.pdf".to_owned(),
        content_type: "application/pdf".to_owned(),
        size,
        sha256,
    })
}

/// `GET /f/{form}/thanks`: the built-in thank-you page. The query is read leniently: a
/// well-formed `id` is shown, anything else is ignored.
pub async fn thanks(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form_name = path.into_inner();
    let Some(form) = state.config.forms.get(&form_name) else {
        return respond::error(
            ClientKind::Browser,
            &ClientError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "unknown_form",
                "There is no such form.",
            ),
        );
    };
    let id = req
        .query_string()
        .split('&')
        .filter_map(|pair| pair.strip_prefix("id="))
        .find(|id| ulid::Ulid::from_string(id).is_ok());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(super::pages::thanks(
            form.thanks_title.as_deref(),
            form.thanks_message.as_deref(),
            id,
        ))
}
