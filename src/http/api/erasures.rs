//! Erasing documents over the API (`DELETE /api/v1/documents/{id}`, and the documents part of
//! the submission and subject erasures), and `GET /api/v1/erasures`: a deletion report built
//! from the audit trail's erasure entries, signed with the service's PGP signing key when one
//! is configured.
//!
//! The answer carries the report as text (`report`) and an armored detached signature over
//! exactly those bytes (`signature`), so that anyone holding the service's public certificate
//! checks it with `gpg --verify report.json.asc report.json` (docs/retention.md).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::documents::ItemQuery;
use super::submissions::rfc3339_ms;
use super::{guard, internal, not_found, reply, Caller};
use crate::config::Scope;
use crate::documents::PickError;
use crate::error::ClientError;
use crate::http::AppState;

/// Most audit entries one report looks through.
const MAX_SCANNED: usize = 100_000;
const PAGE: usize = 1000;

#[derive(Deserialize)]
pub struct ReportQuery {
    /// Erasures recorded after this audit sequence number.
    after: Option<i64>,
    /// Most erasures in the report (1 to 1000, default 1000).
    limit: Option<usize>,
}

/// `GET /api/v1/erasures?after=SEQ&limit=N` (scope `admin`).
pub async fn report(
    req: HttpRequest,
    query: web::Query<ReportQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = async {
        guard(&req, &state, &[Scope::Admin])?;
        let after = query.after.unwrap_or(0);
        let limit = query.limit.unwrap_or(PAGE);
        if after < 0 || !(1..=PAGE).contains(&limit) {
            return Err(ClientError::malformed(
                "invalid_query",
                "`after` must be 0 or more and `limit` 1 to 1000.",
            ));
        }
        let mut erasures = Vec::new();
        let (mut cursor, mut scanned, mut complete) = (after, 0, false);
        while erasures.len() < limit && scanned < MAX_SCANNED {
            let page = state
                .spool
                .audit_after(cursor, PAGE)
                .await
                .map_err(|e| internal("reading the audit log failed", e))?;
            scanned += page.len();
            if page.is_empty() {
                complete = true;
                break;
            }
            for e in page {
                cursor = e.seq;
                if e.action.starts_with("erase_") {
                    erasures.push(json!({
                        "seq": e.seq, "at": rfc3339_ms(e.at_ms), "actor": e.actor,
                        "action": e.action, "id": e.id, "reason": e.reason, "detail": e.detail,
                        "entry_hash": e.hash,
                    }));
                    if erasures.len() == limit {
                        break;
                    }
                }
            }
        }
        let report = json!({
            "service": "secureform",
            "generated_at": rfc3339_ms(state.spool.now_ms()),
            "after": after,
            "next_after": if complete { None } else { Some(cursor) },
            "erasures": erasures,
        });
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| internal("writing the report failed", e))?;
        let (signature, signer) = match &state.signer {
            None => (None, None),
            Some(signer) => {
                let signature = signer
                    .sign_detached(text.as_bytes())
                    .map_err(|e| internal("signing the report failed", e))?;
                (Some(signature), Some(signer.fingerprint()))
            }
        };
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({"report": text, "signature": signature, "signer": signer})))
    };
    reply(result.await)
}

/// `DELETE /api/v1/documents/{id}`: erases a document (scope `admin`) from the documents sink
/// named by `sink`, or from every one holding it. 204; 404 when no store holds it (so a second
/// delete is 404). Each store's erasure is an audit entry (reason `request`).
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ItemQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Admin])?;
        if ulid::Ulid::from_string(&id).is_err() {
            return Err(not_found("document"));
        }
        let erased = erase_documents(&state, &caller, query.sink.clone(), &id).await?;
        if erased == 0 {
            return Err(not_found("document"));
        }
        Ok(HttpResponse::NoContent()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish())
    };
    reply(result.await)
}

/// Erases `id` from the chosen documents stores for `caller`, one audit entry per store;
/// returns how many stores held it (0: none, or not a form the token may touch).
pub(super) async fn erase_documents(
    state: &web::Data<AppState>,
    caller: &Caller<'_>,
    sink: Option<String>,
    id: &str,
) -> Result<usize, ClientError> {
    erase_documents_for(state, caller, sink, id, crate::audit::Reason::Request).await
}

/// [`erase_documents`], for `reason` (also the console's "Delete", with one `sink`).
pub(crate) async fn erase_documents_for(
    state: &web::Data<AppState>,
    caller: &Caller<'_>,
    sink: Option<String>,
    id: &str,
    reason: crate::audit::Reason,
) -> Result<usize, ClientError> {
    use crate::erasure::{self, EraseError};
    let (stores, owned, chosen) = (Arc::clone(&state.documents), id.to_owned(), sink.clone());
    let form = web::block(move || erasure::form_of(&stores, chosen.as_deref(), &owned))
        .await
        .map_err(|e| internal("store task failed", e))?;
    let form = match form {
        Ok(Some(form)) => form,
        Ok(None) => return Ok(0),
        Err(EraseError::Pick(PickError::Unknown(_))) => return Err(not_found("documents sink")),
        Err(e) => return Err(internal("erasing a document failed", e)),
    };
    // A damaged document (form unknown) is erased only by a token for every form.
    if !caller.token.allows_form(&form) {
        return Ok(0);
    }
    let (stores, owned) = (Arc::clone(&state.documents), id.to_owned());
    let erased = web::block(move || erasure::erase_document(&stores, sink.as_deref(), &owned))
        .await
        .map_err(|e| internal("store task failed", e))?;
    let erased = match erased {
        Ok(erased) => erased,
        Err(EraseError::NotFound(_)) => return Ok(0),
        Err(e) => return Err(internal("erasing a document failed", e)),
    };
    for (sink, e) in &erased {
        state
            .spool
            .audit_entry(
                caller.name,
                crate::audit::Action::EraseDocument,
                id,
                Some(reason.as_str()),
                Some(erasure::detail(sink, e)),
            )
            .await
            .map_err(|e| internal("recording the audit entry failed", e))?;
        tracing::info!(document = %id, sink = %sink, token = %caller.name, shredded = e.shredded, "document erased");
    }
    Ok(erased.len())
}
