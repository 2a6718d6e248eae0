//! `POST /f/{form}`: ingest, normalize, seal and spool, then answer the client.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secureform_contract::{Fields, FileMeta, Source};

use super::body::{read_all, read_multipart};
use super::pace::Pace;
use super::pdf_gate::Reservation;
use super::respond::{self, client_kind, ClientKind};
use super::{cors, AppState};
use crate::config::FormConfig;
use crate::error::ClientError;
use crate::ingest::bounded::{IngestWarning, Ingested, OutputLimits};
use crate::ingest::pdf::{self, PdfKind, PdfLimits};
use crate::ingest::{self, check_field_limits, IngestError};
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
        Ok(Accepted::Stored {
            source,
            id,
            warnings,
        }) => {
            state.metrics.accepted(form_name, source.as_str());
            tracing::info!(submission = %id, form = %form_name, source = source.as_str(), warnings = warnings.len(), "accepted");
            let mut all = state.warnings(form_name);
            all.extend(warnings.iter().map(|w| w.message().to_owned()));
            respond::accepted(kind, form_name, form, &id, &all)
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
    /// Stored under `id` (an earlier id when an Idempotency-Key was repeated), with what the
    /// client should know about how its body was read.
    Stored {
        source: Source,
        id: String,
        warnings: Vec<IngestWarning>,
    },
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
        Some(origin) if form.allowed_origins.iter().any(|o| o.matches(origin)) => Ok(()),
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
    let charset = form.charset.map(|c| c.encoding());
    let ct = respond::content_type(req);
    let (source, fields, files): (Source, Ingested, Vec<FileMeta>) = if ct == "multipart/form-data"
    {
        let parts = read_multipart(req, payload, limits, charset, &state.spool, id).await?;
        (Source::Multipart, parts.fields.into(), parts.files)
    } else {
        // A declared PDF-family body reserves its parse memory before it is read, so that
        // bodies waiting their turn are not held either (see `pdf_gate`).
        let mut reservation = None;
        if declared_pdf_kind(&ct).is_some() {
            let declared = declared_length(req).unwrap_or(limits.max_body_bytes as u64);
            let size = declared.min(limits.max_body_bytes as u64);
            reservation = Some(state.pdf_gate.reserve(size).await?);
        }
        let body = read_all(req, payload, limits.max_body_bytes, Pace::body(limits))
            .await?
            .freeze();
        // Clients mislabel bodies: what the bytes say wins for the PDF family.
        if let Some(pdf) = pdf_kind(&ct, &body) {
            if *kind == ClientKind::Browser {
                *kind = ClientKind::Acrobat;
            }
            let reservation = match reservation {
                Some(r) => r,
                None => state.pdf_gate.reserve(body.len() as u64).await?,
            };
            let client = req.peer_addr().map(|a| a.ip());
            return accept_pdf_family(state, form_name, form, id, pdf, body, reservation, client)
                .await;
        }
        drop(reservation);
        let (source, fields) = match ct.as_str() {
            "application/json" => {
                let limits = limits.clone();
                let fields = parse_off_loop(body, move |b| ingest::json::parse(&b, &limits));
                (Source::Json, fields.await?)
            }
            "application/x-www-form-urlencoded" => {
                let limits = limits.clone();
                let fields = parse_off_loop(body, move |b| {
                    ingest::urlencoded::parse(&b, charset, &limits)
                });
                (Source::Urlencoded, fields.await?)
            }
            _ => {
                return Err(ClientError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the form as application/x-www-form-urlencoded, multipart/form-data, application/json, application/vnd.fdf, application/vnd.adobe.xfdf or application/pdf.",
                ))
            }
        };
        (source, fields.into(), Vec::new())
    };
    let client = req.peer_addr().map(|a| a.ip());
    finish(
        state, form_name, form, id, source, fields, files, None, client,
    )
    .await
}

/// Bodies up to this size are parsed on the event loop (well under a millisecond); larger
/// ones on a blocking thread, so no parse holds up other requests for long.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

/// Runs `parse` over `body`, on a blocking thread when the body is large.
pub async fn parse_off_loop<F>(body: bytes::Bytes, parse: F) -> Result<Fields, ClientError>
where
    F: FnOnce(bytes::Bytes) -> Result<Fields, IngestError> + Send + 'static,
{
    if body.len() <= PARSE_INLINE_BYTES {
        return Ok(parse(body)?);
    }
    Ok(web::block(move || parse(body))
        .await
        .map_err(|_| ClientError::unavailable())??)
}

/// Checks the form's captcha, normalizes, applies the form's rules, and spools durably.
/// `client` is the client's address (for a third-party captcha's `remoteip`).
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    state: &AppState,
    form_name: &str,
    form: &FormConfig,
    id: &str,
    source: Source,
    mut parsed: Ingested,
    files: Vec<FileMeta>,
    idempotency: Option<(String, String)>,
    client: Option<std::net::IpAddr>,
) -> Result<Accepted, ClientError> {
    // Spam is refused before anything is kept (counted by the caller under its code). Either
    // check removes its field from the submission, whatever the outcome.
    let now = super::altcha::unix_secs(state.spool.clock().now());
    state
        .altcha
        .verify(form_name, form, &mut parsed.fields, now)?;
    state
        .siteverify
        .verify(form_name, &mut parsed.fields, client)
        .await?;
    let verdict = normalize::normalize(
        id.to_owned(),
        form_name,
        form,
        source,
        parsed.fields,
        files,
        state.spool.clock(),
    )?;
    let submission = match verdict {
        Verdict::Drop => return Ok(Accepted::Dropped),
        Verdict::Accept(s) => s,
    };
    let acceptance = state
        .spool
        .accept_indexed(&submission, &form.sinks, idempotency, &form.subject_fields)
        .await
        .map_err(|e| {
            tracing::error!(submission = %id, error = %e, "spooling failed");
            ClientError::unavailable()
        })?;
    match acceptance {
        Acceptance::Stored => {}
        Acceptance::Repeat(first) => {
            tracing::info!(submission = %first, form = %form_name, "idempotent repeat; nothing stored");
            return Ok(Accepted::Stored {
                source,
                id: first,
                warnings: parsed.warnings,
            });
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
        warnings: parsed.warnings,
    })
}

/// The PDF-family kind of a body: sniffed from the bytes first, else from the declared type.
fn pdf_kind(content_type: &str, body: &[u8]) -> Option<PdfKind> {
    pdf::sniff(body).or_else(|| declared_pdf_kind(content_type))
}

/// The body's Content-Length, when it declares one.
fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The PDF-family kind a Content-Type declares.
fn declared_pdf_kind(content_type: &str) -> Option<PdfKind> {
    match content_type {
        "application/vnd.fdf" => Some(PdfKind::Fdf),
        "application/vnd.adobe.xfdf" => Some(PdfKind::Xfdf),
        "application/pdf" => Some(PdfKind::Pdf),
        _ => None,
    }
}

/// FDF, XFDF and whole-PDF bodies: parsed on a parse thread under a time limit, with memory
/// reserved from the parse budget. A whole PDF is also kept, sealed, as file 0 of the submission.
#[allow(clippy::too_many_arguments)]
async fn accept_pdf_family(
    state: &AppState,
    form_name: &str,
    form: &FormConfig,
    id: &str,
    kind: PdfKind,
    body: bytes::Bytes,
    mut reservation: Reservation,
    client: Option<std::net::IpAddr>,
) -> Result<Accepted, ClientError> {
    let limits = &state.config.limits;
    let pdf_limits = PdfLimits {
        max_bytes: limits.max_body_bytes,
        max_fields: limits.max_fields,
        max_parse_time: std::time::Duration::from_secs(limits.pdf_parse_secs),
        output: OutputLimits::from_limits(limits),
        ..PdfLimits::default()
    };
    let parse_body = body.clone();
    let task = state
        .pdf_gate
        .run(&mut reservation, move || match kind {
            PdfKind::Fdf => pdf::read_fdf(&parse_body, &pdf_limits),
            PdfKind::Xfdf => pdf::read_xfdf(&parse_body, &pdf_limits),
            PdfKind::Pdf => pdf::read_pdf(&parse_body, &pdf_limits),
        })
        .await?;
    // The parser checks its own clock; this bounds the answer even if a step inside a library
    // runs long (the thread then finishes on its own, its result discarded).
    let budget = std::time::Duration::from_secs(limits.pdf_parse_secs + 1);
    let parsed = match tokio::time::timeout(budget, task).await {
        Ok(Ok(result)) => result,
        // The reader's thread ended without an answer (it panicked): the PDF could not be read.
        Ok(Err(_)) => return Err(pdf::PdfFormError::PdfMalformed.into()),
        Err(_) => return Err(pdf::PdfFormError::Timeout.into()),
    };
    let read = parsed?;
    check_field_limits(&read.fields, limits)?;
    let (source, files) = match kind {
        PdfKind::Fdf => (Source::Fdf, Vec::new()),
        PdfKind::Xfdf => (Source::Xfdf, Vec::new()),
        PdfKind::Pdf => (Source::Pdf, vec![keep_pdf(state, id, body).await?]),
    };
    // The body is sealed in the spool (or was never kept): its share goes back.
    drop(reservation);
    finish(
        state, form_name, form, id, source, read, files, None, client,
    )
    .await
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
/// well-formed `id` is shown, anything else is ignored. When the form's page is on this origin
/// (the browser's `Referer`, which a redirect after the post keeps), the page links back to it.
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
    let info = req.connection_info();
    let back = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|referer| super::pages::same_origin_referer(referer, info.scheme(), info.host()));
    let retention = crate::retention::statement(state.config.retain_days(&form_name));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(super::pages::thanks(
            form.thanks_title.as_deref(),
            form.thanks_message.as_deref(),
            id,
            back,
            Some(&retention),
        ))
}
