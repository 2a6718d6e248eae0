//! `GET /api/v1/audit`: the hash-chained audit trail, newest first or paged from a sequence
//! number (see `crate::audit`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::documents::page_size;
use super::submissions::rfc3339_ms;
use super::{guard, internal, reply};
use crate::config::Scope;
use crate::error::ClientError;
use crate::http::AppState;

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<usize>,
    /// Entries after this sequence number, oldest first (the `next_after` of the last page).
    after: Option<i64>,
}

/// `GET /api/v1/audit`: without `after`, the newest entries, newest first; with `after=SEQ`,
/// the entries after SEQ, oldest first, and `next_after` for the next page (null at the end).
pub async fn audit(
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = async {
        guard(&req, &state, &[Scope::Admin])?;
        let limit = page_size(query.limit, 100, 1000)?;
        if query.after.is_some_and(|a| a < 0) {
            return Err(ClientError::malformed(
                "invalid_query",
                "`after` must be a sequence number (0 or more).",
            ));
        }
        let entries = match query.after {
            None => state.spool.audit_log(limit).await,
            Some(after) => state.spool.audit_after(after, limit).await,
        }
        .map_err(|e| internal("reading the audit log failed", e))?;
        let next_after = match query.after {
            Some(_) if entries.len() == limit => entries.last().map(|e| e.seq),
            _ => None,
        };
        let entries: Vec<_> = entries
            .into_iter()
            .map(|e| {
                json!({
                    "seq": e.seq, "at": rfc3339_ms(e.at_ms), "actor": e.actor, "token": e.actor,
                    "action": e.action, "document_id": e.id, "reason": e.reason,
                    "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash,
                })
            })
            .collect();
        let mut body = json!({ "entries": entries });
        if query.after.is_some() {
            body["next_after"] = json!(next_after);
        }
        Ok(HttpResponse::Ok().json(body))
    };
    reply(result.await)
}
