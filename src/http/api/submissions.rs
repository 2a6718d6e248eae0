//! Submitting through the API, delivery states, and retries.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{guard, internal, not_found, reply};
use crate::config::Scope;
use crate::error::ClientError;
use crate::http::body::read_all;
use crate::http::pace::Pace;
use crate::http::submit::{finish, parse_off_loop, Accepted};
use crate::http::AppState;
use crate::ingest;
use crate::normalize;
use crate::spool::DeliveryState;

/// Longest accepted Idempotency-Key.
const MAX_KEY: usize = 200;

/// Whether `key` is 1 to [`MAX_KEY`] visible ASCII characters with inner spaces allowed
/// (`^[!-~]([ -~]*[!-~])?$`, as openapi.yaml states).
fn is_idempotency_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let visible = |b: &u8| (b'!'..=b'~').contains(b);
    !bytes.is_empty()
        && bytes.len() <= MAX_KEY
        && bytes.iter().all(|b| (b' '..=b'~').contains(b))
        && bytes.first().is_some_and(visible)
        && bytes.last().is_some_and(visible)
}

/// `POST /api/v1/forms/{form}/submissions`: a JSON object in, `201 {id, form, warnings}` out.
/// The same `Idempotency-Key` from the same token within 48 hours returns the first id.
pub async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form_name = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Submit])?;
        let Some(form) = state.config.forms.get(&form_name) else {
            return Err(not_found("form"));
        };
        caller.check_form(&form_name)?;
        let key = match req.headers().get("idempotency-key") {
            None => None,
            Some(v) => {
                // The documented grammar exactly (openapi.yaml): visible ASCII and inner spaces,
                // nothing else — a tab or any control byte is refused, not carried into the key.
                let key = v.to_str().ok().map(str::trim).unwrap_or("");
                if !is_idempotency_key(key) {
                    return Err(ClientError::malformed(
                        "invalid_idempotency_key",
                        format!("Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters."),
                    ));
                }
                Some((caller.name.to_owned(), key.to_owned()))
            }
        };
        let limits = &state.config.limits;
        let body = read_all(&req, payload, limits.max_body_bytes, Pace::body(limits)).await?;
        let json_limits = limits.clone();
        let fields = parse_off_loop(body.freeze(), move |b| {
            ingest::json::parse(&b, &json_limits)
        })
        .await?;
        let id = normalize::new_id(state.spool.clock());
        let accepted = finish(
            &state,
            &form_name,
            form,
            &id,
            secureform_contract::Source::Json,
            fields.into(),
            Vec::new(),
            key,
            req.peer_addr().map(|a| a.ip()),
        )
        .await;
        let id = match accepted {
            Ok(Accepted::Stored {
                source, id: stored, ..
            }) => {
                // A repeated Idempotency-Key answers with the first id: `finish` logged it as
                // an idempotent repeat, and nothing new was accepted.
                if stored == id {
                    state.metrics.accepted(&form_name, source.as_str());
                    tracing::info!(submission = %id, form = %form_name, token = %caller.name, "accepted via the API");
                }
                stored
            }
            Ok(Accepted::Dropped) => id,
            Err(e) => {
                state.metrics.rejected(&form_name, e.code);
                return Err(e);
            }
        };
        Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/submissions/{id}")))
            .json(json!({"id": id, "form": form_name, "warnings": state.warnings(&form_name)})))
    };
    reply(result.await)
}

/// Looks up a submission's form and checks the caller may see it.
async fn submission_form(
    state: &AppState,
    caller: &super::Caller<'_>,
    id: &str,
) -> Result<(String, String), ClientError> {
    if ulid::Ulid::from_string(id).is_err() {
        return Err(not_found("submission"));
    }
    let found = state
        .spool
        .form_of(id)
        .await
        .map_err(|e| internal("reading the spool failed", e))?;
    let (form, received_at) = found.ok_or_else(|| not_found("submission"))?;
    // A submission of another form is as invisible as an unknown one.
    if !caller.token.allows_form(&form) {
        return Err(not_found("submission"));
    }
    Ok((form, received_at))
}

/// `GET /api/v1/submissions/{id}`: the delivery state per sink.
pub async fn status(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Read, Scope::Admin])?;
        let (form, received_at) = submission_form(&state, &caller, &id).await?;
        let rows = state
            .spool
            .deliveries(&id)
            .await
            .map_err(|e| internal("reading the spool failed", e))?;
        let deliveries = render(&rows);
        Ok(HttpResponse::Ok().json(json!({
            "id": id, "form": form, "received_at": received_at, "deliveries": deliveries
        })))
    };
    reply(result.await)
}

/// The machine-readable reason of a retrying or dead delivery (`other` when none was kept).
fn failure(r: &crate::spool::DeliveryRow) -> &'static str {
    r.failure_reason
        .unwrap_or(secureform_contract::FailureReason::Other)
        .as_str()
}

/// The delivery states as the API shows them.
fn render(rows: &[crate::spool::DeliveryRow]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let mut d = json!({"sink": r.sink, "state": r.state, "attempts": r.attempts});
            match r.state {
                DeliveryState::Delivered => {
                    d["receipt"] = json!({"kind": r.receipt_kind, "value": r.receipt_value});
                }
                DeliveryState::Retrying => {
                    d["next_attempt_at"] = json!(rfc3339_ms(r.next_attempt_ms));
                    d["last_error"] = json!(r.last_error);
                    d["failure_reason"] = json!(failure(r));
                }
                DeliveryState::Dead => {
                    d["reason"] = json!(r.last_error);
                    d["failure_reason"] = json!(failure(r));
                }
                DeliveryState::Pending => {}
            }
            d
        })
        .collect()
}

/// `POST /api/v1/submissions/{id}/retry`: puts dead deliveries back in their queues.
pub async fn retry(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Admin])?;
        submission_form(&state, &caller, &id).await?;
        // Recorded before anything changes, like every admin action.
        state
            .spool
            .audit_entry(caller.name, crate::audit::Action::Retry, &id, None, None)
            .await
            .map_err(|e| internal("recording the audit entry failed", e))?;
        let n = state
            .spool
            .requeue_dead(&id)
            .await
            .map_err(|e| internal("re-queueing failed", e))?;
        state.dispatch.notify_all();
        tracing::info!(submission = %id, requeued = n, token = %caller.name, "dead deliveries re-queued");
        Ok(HttpResponse::Ok().json(json!({"id": id, "requeued": n})))
    };
    reply(result.await)
}

/// `DELETE /api/v1/submissions/{id}`: erases a submission everywhere this service holds it
/// (scope `admin`): in the spool its open deliveries become dead with reason `erased` and its
/// sealed payload and files are removed; in every documents sink's store the document is
/// crypto-shredded. Each erasure is an audit entry (reason `request`). 200 with the final
/// delivery states; from then on the submission is 404 (its rows stay in the spool's
/// database, marked erased, so that no delivery attempt in flight can revive it).
pub async fn erase(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let caller = guard(&req, &state, &[Scope::Admin])?;
        submission_form(&state, &caller, &id).await?;
        let (ended, documents) =
            erase_one(&state, &caller, &id, crate::audit::Reason::Request).await?;
        let rows = state
            .spool
            .deliveries(&id)
            .await
            .map_err(|e| internal("reading the spool failed", e))?;
        tracing::info!(submission = %id, deliveries_ended = ended, documents, token = %caller.name, "submission erased");
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "id": id, "erased": true, "deliveries_ended": ended,
                "documents_erased": documents, "deliveries": render(&rows),
            })))
    };
    reply(result.await)
}

/// Erases one submission from the spool and the documents stores, with its audit entries;
/// returns the deliveries ended and the documents stores erased from.
async fn erase_one(
    state: &web::Data<AppState>,
    caller: &super::Caller<'_>,
    id: &str,
    reason: crate::audit::Reason,
) -> Result<(usize, usize), ClientError> {
    let Some(ended) = erase_spooled(state, caller, id, reason).await? else {
        return Err(not_found("submission"));
    };
    let documents = super::erasures::erase_documents_for(state, caller, None, id, reason).await?;
    Ok((ended, documents))
}

/// Erases one submission from the spool (its open deliveries end as dead with reason `erased`,
/// its payload and files are removed), with its audit entry (`erase_submission`); returns the
/// deliveries ended, `None` when the spool does not hold it (never did, or already erased).
pub(crate) async fn erase_spooled(
    state: &web::Data<AppState>,
    caller: &super::Caller<'_>,
    id: &str,
    reason: crate::audit::Reason,
) -> Result<Option<usize>, ClientError> {
    let ended = match state.spool.erase(id).await {
        Ok(n) => n,
        Err(crate::spool::SpoolError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(internal("erasing from the spool failed", e)),
    };
    state
        .spool
        .audit_entry(
            caller.name,
            crate::audit::Action::EraseSubmission,
            id,
            Some(reason.as_str()),
            Some(format!("deliveries_ended={ended}")),
        )
        .await
        .map_err(|e| internal("recording the audit entry failed", e))?;
    Ok(Some(ended))
}

#[derive(serde::Deserialize)]
pub struct SubjectQuery {
    field: String,
    value: String,
}

/// `DELETE /api/v1/subjects?field=F&value=V` (scope `admin`): erases every submission whose
/// subject field F (one of its form's `subject_fields`) holds V, found through the keyed blind
/// index (`crate::subjects`), as `DELETE /api/v1/submissions/{id}` does, with reason `subject`.
/// Submissions of forms the token may not touch are left alone. 200 with the ids erased (an
/// empty list when none matched). The value is never logged.
pub async fn erase_subject(
    req: HttpRequest,
    query: web::Query<SubjectQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = async {
        let caller = guard(&req, &state, &[Scope::Admin])?;
        if query.field.is_empty() || query.value.trim().is_empty() {
            return Err(ClientError::malformed(
                "invalid_query",
                "`field` and `value` must not be empty.",
            ));
        }
        let ids = state
            .spool
            .find_subject(&query.field, &query.value)
            .await
            .map_err(|e| internal("reading the subject index failed", e))?;
        let mut erased = Vec::new();
        for id in ids {
            let Some((form, _)) = state
                .spool
                .form_of(&id)
                .await
                .map_err(|e| internal("reading the spool failed", e))?
            else {
                continue;
            };
            if !caller.token.allows_form(&form) {
                continue;
            }
            erase_one(&state, &caller, &id, crate::audit::Reason::Subject).await?;
            erased.push(id);
        }
        tracing::info!(erased = erased.len(), token = %caller.name, "subject erased");
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({"erased": erased})))
    };
    reply(result.await)
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::is_idempotency_key;

    #[test]
    fn idempotency_keys_follow_the_documented_grammar() {
        assert!(is_idempotency_key("order-1042"));
        assert!(is_idempotency_key("a b"));
        assert!(is_idempotency_key(&"k".repeat(200)));
        assert!(!is_idempotency_key(""));
        assert!(!is_idempotency_key(&"k".repeat(201)));
        assert!(!is_idempotency_key("a\tb"));
        assert!(!is_idempotency_key(" a"));
        assert!(!is_idempotency_key("a\u{7f}"));
    }
}
