//! The Documents store over the API. Every read of a document is first recorded, durably, in
//! the audit log (token name, document id, time); only then is anything served.
//!
//! With several documents sinks, `?sink=NAME` names the store to read. Items are served by
//! [`crate::http::item_stream`]: read through once before anything is sent (a damaged item is a
//! 500, a document erased meanwhile a 404), then streamed with their `Content-Length`.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use secureform_documents::{DocumentItem, DocumentMeta, DocumentStore};
use serde::Deserialize;
use serde_json::json;

use super::submissions::rfc3339_ms;
use super::{guard, internal, not_found, reply, Caller};
use crate::config::Scope;
use crate::documents::PickError;
use crate::error::ClientError;
use crate::http::item_stream::{serve_item, Shape};
use crate::http::AppState;

/// The API serves a PGP document's items as armored OpenPGP messages.
fn shape(pgp: bool) -> Shape {
    if pgp {
        Shape::Armored
    } else {
        Shape::AsSealed
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    form: Option<String>,
    /// Only documents received at or after this RFC 3339 time.
    since: Option<String>,
    /// Documents after this id (the `next_cursor` of the previous page).
    cursor: Option<String>,
    limit: Option<usize>,
    /// The documents sink to read; needed only when there are several.
    sink: Option<String>,
}

/// The query of a document read.
#[derive(Deserialize)]
pub struct ItemQuery {
    /// The documents sink to read; needed only when there are several.
    pub(super) sink: Option<String>,
}

/// The store the request names (or the only one).
fn pick(state: &AppState, sink: Option<&str>) -> Result<Arc<DocumentStore>, ClientError> {
    match state.documents.pick(sink) {
        Ok((_, store)) => Ok(Arc::clone(store)),
        Err(PickError::Ambiguous(_)) => Err(ClientError::malformed(
            "sink_required",
            "There are several documents sinks: name the one to read with `sink`.",
        )),
        Err(PickError::Unknown(_)) => Err(not_found("documents sink")),
        Err(PickError::NoSink) => Err(not_found("document")),
    }
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// A `limit` query parameter: `default` when absent, 400 outside 1 to `max` (as `openapi.yaml`
/// says: a silently shortened page would look like the last one).
pub(super) fn page_size(
    limit: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ClientError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ClientError::malformed(
            "invalid_query",
            format!("`limit` must be between 1 and {max}."),
        )),
    }
}

/// `GET /api/v1/documents`: metadata, oldest first, a page at a time.
pub async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = async {
        let caller = guard(&req, &state, &[Scope::Read])?;
        if let Some(form) = &query.form {
            caller.check_form(form)?;
        }
        let since = match &query.since {
            None => None,
            Some(s) => {
                use time::format_description::well_known::Rfc3339;
                let t = time::OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                    ClientError::malformed("invalid_since", "`since` must be an RFC 3339 time.")
                })?;
                Some(rfc3339_ms((t.unix_timestamp_nanos() / 1_000_000) as i64))
            }
        };
        let limit = page_size(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
        let store = match pick(&state, query.sink.as_deref()) {
            Ok(store) => store,
            // No documents sink: nothing to list.
            Err(_) if state.documents.names().is_empty() && query.sink.is_none() => {
                return Ok(HttpResponse::Ok().json(json!({"documents": [], "next_cursor": null})))
            }
            Err(e) => return Err(e),
        };
        let form = query.form.clone();
        // Damaged documents are skipped (logged, counted in the metrics): the rest still lists.
        let listing = web::block(move || store.list(form.as_deref()))
            .await
            .map_err(|e| internal("store task failed", e))?
            .map_err(|e| internal("listing documents failed", e))?;
        let mut page: Vec<DocumentMeta> = listing
            .documents
            .into_iter()
            .filter(|d| caller.token.allows_form(&d.form))
            .filter(|d| {
                since
                    .as_ref()
                    .is_none_or(|s| canonical(&d.received_at) >= *s)
            })
            .filter(|d| query.cursor.as_ref().is_none_or(|c| d.id > *c))
            .take(limit + 1)
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|d| d.id.clone())
        } else {
            None
        };
        Ok(HttpResponse::Ok().json(json!({"documents": page, "next_cursor": next})))
    };
    reply(result.await)
}

/// received_at is written as RFC 3339 with whole seconds; compare at millisecond precision.
fn canonical(received_at: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(received_at, &Rfc3339)
        .map(|t| rfc3339_ms((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .unwrap_or_default()
}

/// Checks the caller may read `id`, then records the read before anything is served.
async fn audited(
    state: &AppState,
    store: &Arc<DocumentStore>,
    caller: &Caller<'_>,
    id: &str,
    action: crate::audit::Action,
) -> Result<DocumentMeta, ClientError> {
    if ulid::Ulid::from_string(id).is_err() {
        return Err(not_found("document"));
    }
    let store = Arc::clone(store);
    let owned = id.to_owned();
    let meta = web::block(move || store.meta(&owned))
        .await
        .map_err(|e| internal("store task failed", e))?
        .map_err(|_| not_found("document"))?;
    if !caller.token.allows_form(&meta.form) {
        return Err(not_found("document"));
    }
    state
        .spool
        .audit(caller.name, action, id)
        .await
        .map_err(|e| internal("recording the audit entry failed", e))?;
    tracing::info!(document = %id, token = %caller.name, %action, "document read");
    Ok(meta)
}

/// `GET /api/v1/documents/{id}`: the submission.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ItemQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Read])?;
        let store = pick(&state, query.sink.as_deref())?;
        let meta = audited(
            &state,
            &store,
            &caller,
            &id,
            crate::audit::Action::ReadSubmission,
        )
        .await?;
        serve_item(&store, &id, DocumentItem::Submission, shape(meta.pgp)).await
    };
    reply(result.await)
}

/// `GET /api/v1/documents/{id}/files/{n}`: one file of the submission.
pub async fn file(
    req: HttpRequest,
    path: web::Path<(String, usize)>,
    query: web::Query<ItemQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (id, n) = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Read])?;
        let store = pick(&state, query.sink.as_deref())?;
        let meta = audited(&state, &store, &caller, &id, crate::audit::Action::ReadFile).await?;
        if n >= meta.files {
            return Err(not_found("file"));
        }
        let mut resp = serve_item(&store, &id, DocumentItem::File(n), shape(meta.pgp)).await?;
        // Never the client's file name: a fixed one.
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"file-{n}\""))
        {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(resp)
    };
    reply(result.await)
}
