//! The Documents store over the API. Every read of a document is first recorded, durably, in
//! the audit log (token name, document id, time); only then is anything served.

use std::io::Write;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use secureform_documents::{DocumentItem, DocumentMeta, DocumentStore};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::submissions::rfc3339_ms;
use super::{guard, internal, not_found, reply, Caller};
use crate::config::Scope;
use crate::error::ClientError;
use crate::http::AppState;

#[derive(Deserialize)]
pub struct ListQuery {
    form: Option<String>,
    /// Only documents received at or after this RFC 3339 time.
    since: Option<String>,
    /// Documents after this id (the `next_cursor` of the previous page).
    cursor: Option<String>,
    limit: Option<usize>,
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// A `limit` query parameter: `default` when absent, 400 outside 1 to `max` (as `openapi.yaml`
/// says: a silently shortened page would look like the last one).
fn page_size(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ClientError> {
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
        let store = Arc::clone(&state.documents);
        let form = query.form.clone();
        let all = web::block(move || store.list(form.as_deref()))
            .await
            .map_err(|e| internal("store task failed", e))?
            .map_err(|e| internal("listing documents failed", e))?;
        let mut page: Vec<DocumentMeta> = all
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
    caller: &Caller<'_>,
    id: &str,
    action: &str,
) -> Result<DocumentMeta, ClientError> {
    if ulid::Ulid::from_string(id).is_err() {
        return Err(not_found("document"));
    }
    let store = Arc::clone(&state.documents);
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
    tracing::info!(document = %id, token = %caller.name, action, "document read");
    Ok(meta)
}

/// Streams one item: plaintext for items sealed with the service key, the armored OpenPGP
/// message for double-encrypted ones (only a recipient can open it).
fn stream_item(
    store: Arc<DocumentStore>,
    id: String,
    item: DocumentItem,
    pgp: bool,
) -> HttpResponse {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { tx: tx.clone() };
        let result = store
            .open_item(&id, item)
            .map_err(|e| e.to_string())
            .and_then(|mut sealed| {
                if pgp {
                    secureform_crypto::pgp::armor_message(&mut sealed, &mut out)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                } else {
                    std::io::copy(&mut sealed, &mut out)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            });
        if let Err(e) = result {
            tracing::error!(document = %id, error = %e, "streaming a document failed");
            let _ = tx.blocking_send(Err(std::io::Error::other("document stream failed")));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .content_type(match (pgp, item) {
            (true, _) => "application/pgp-encrypted",
            (false, DocumentItem::Submission) => "application/json",
            (false, DocumentItem::File(_)) => "application/octet-stream",
        })
        .streaming(body)
}

struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /api/v1/documents/{id}`: the submission.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Read])?;
        let meta = audited(&state, &caller, &id, "read_submission").await?;
        Ok(stream_item(
            Arc::clone(&state.documents),
            id,
            DocumentItem::Submission,
            meta.pgp,
        ))
    };
    reply(result.await)
}

/// `GET /api/v1/documents/{id}/files/{n}`: one file of the submission.
pub async fn file(
    req: HttpRequest,
    path: web::Path<(String, usize)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (id, n) = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Read])?;
        let meta = audited(&state, &caller, &id, "read_file").await?;
        if n >= meta.files {
            return Err(not_found("file"));
        }
        let mut resp = stream_item(
            Arc::clone(&state.documents),
            id,
            DocumentItem::File(n),
            meta.pgp,
        );
        // Never the client's file name: a fixed one.
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"file-{n}\""))
        {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(resp)
    };
    reply(result.await)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/audit`: the newest document reads, newest first.
pub async fn audit(
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = async {
        guard(&req, &state, &[Scope::Admin])?;
        let limit = page_size(query.limit, 100, 1000)?;
        let spool = Arc::clone(&state.spool);
        let entries = web::block(move || spool.audit_log(limit))
            .await
            .map_err(|e| internal("spool task failed", e))?
            .map_err(|e| internal("reading the audit log failed", e))?;
        let entries: Vec<_> = entries
            .into_iter()
            .map(|e| {
                json!({"at": rfc3339_ms(e.at_ms), "token": e.token, "action": e.action, "document_id": e.document_id})
            })
            .collect();
        Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
    };
    reply(result.await)
}
