//! `GET /api/v1/erasures`: a deletion report (issue 17 item 4), built from the audit trail's
//! erasure entries and signed with the service's PGP signing key when one is configured.
//!
//! The answer carries the report as text (`report`) and an armored detached signature over
//! exactly those bytes (`signature`), so that anyone holding the service's public certificate
//! checks it with `gpg --verify report.json.asc report.json` (docs/retention.md).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::submissions::rfc3339_ms;
use super::{guard, internal, reply};
use crate::config::Scope;
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
