//! The console's inbox: a form's submissions a page at a time, one submission with its fields,
//! files and delivery history, and file downloads. Submissions are read from the Documents
//! stores. Every page that shows plaintext and every download is first recorded, durably, in the
//! audit log with the token's name (as the API's document reads are); only then is it served.
//! A submission of a form the token may not read is a 404, as is one that does not exist.

use std::io::Read;
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use secureform_documents::{DocumentItem, DocumentMeta, DocumentStore};
use serde::Deserialize;

use super::session::Session;
use super::{current, html, not_found_page, page, secured};
use crate::http::item_stream::{serve_item, Shape};
use crate::http::pages::escape;
use crate::http::AppState;

/// Submissions per page of the list.
const PAGE: usize = 25;

pub(super) fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Session, Box<HttpResponse>> {
    if !state.config.console.enabled {
        return Err(Box::new(not_found_page()));
    }
    match current(req, state) {
        Some((_, s)) => Ok(s),
        None => Err(Box::new(
            secured(StatusCode::SEE_OTHER)
                .insert_header((header::LOCATION, "/console/"))
                .finish(),
        )),
    }
}

pub(super) fn allows(state: &AppState, session: &Session, form: &str) -> bool {
    state
        .tokens
        .iter()
        .find(|t| t.name == session.token)
        .is_some_and(|t| t.config.allows_form(form))
}

fn is_admin(state: &AppState, session: &Session) -> bool {
    state
        .tokens
        .iter()
        .find(|t| t.name == session.token)
        .is_some_and(|t| t.config.scopes.contains(&crate::config::Scope::Admin))
}

/// `POST /console/submissions/{sink}/{id}/retry` (scope `admin`): re-queues the submission's
/// dead deliveries, then back to its page.
pub async fn retry(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    form: web::Form<super::Csrf>,
) -> HttpResponse {
    let (sink, id) = path.into_inner();
    let session = match admin_action(&req, &state, &form, &sink, &id, "retry").await {
        Ok((session, _)) => session,
        Err(resp) => return *resp,
    };
    // Recorded before anything changes, like every admin action.
    let recorded = state
        .spool
        .audit_entry(
            &session.token,
            crate::audit::Action::Retry,
            &id,
            None,
            Some(format!("sink={sink}")),
        )
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "console: recording the audit entry failed");
        return server_error();
    }
    match state.spool.requeue_dead(&id).await {
        Ok(n) => {
            state.dispatch.notify_all();
            tracing::info!(submission = %id, requeued = n, token = %session.token, "console: dead deliveries re-queued");
        }
        Err(e) => {
            tracing::error!(error = %e, "console: re-queueing failed");
            return server_error();
        }
    }
    secured(StatusCode::SEE_OTHER)
        .insert_header((
            header::LOCATION,
            format!("/console/submissions/{}/{}", sink, id),
        ))
        .finish()
}

/// `GET /console/submissions/{sink}/{id}/delete` (scope `admin`): the confirmation step of
/// "Delete" (works without script): what will happen, the POST form with the session's CSRF
/// token, and a way back. Shows no field of the submission, so it reads nothing.
pub async fn confirm_delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = match signed_in(&req, &state) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let (sink, id) = path.into_inner();
    let Some((_, meta)) = readable(&state, &session, &sink, &id).await else {
        return not_found_page();
    };
    if !is_admin(&state, &session) {
        return super::forbidden_page();
    }
    let back = format!("/console/submissions/{}/{}", escape(&sink), escape(&id));
    let body = format!(
        "<p><a href=\"{back}\">Back to the submission</a></p>\
<h1 id=\"confirm-title\">Delete this submission?</h1>\
<p class=\"alert\" id=\"warning\">Delete this submission? This cannot be undone.</p>\
<p>Submission <code>{id}</code> of form <strong>{form}</strong>, received {received} UTC, \
is erased from the Documents sink <strong>{sink}</strong> (its key is destroyed, so no copy \
of it can be read again), and from the spool with any deliveries still pending. The erasure \
is recorded in the audit log with your token's name.</p>\
<form method=\"post\" action=\"{back}/delete\" id=\"delete\" aria-labelledby=\"confirm-title\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" class=\"danger\">Delete permanently</button></form>\
<p><a href=\"{back}\" id=\"cancel\">Cancel</a></p>",
        id = escape(&id),
        form = escape(&meta.form),
        received = escape(&meta.received_at),
        sink = escape(&sink),
        csrf = escape(&session.csrf),
    );
    html(
        StatusCode::OK,
        page("Delete this submission?", Some(&session), &body),
    )
}

/// `POST /console/submissions/{sink}/{id}/delete` (scope `admin`): erases the document from
/// that Documents sink as `DELETE /api/v1/documents/{id}?sink=SINK` does and, when the spool
/// still holds the submission, from the spool as `DELETE /api/v1/submissions/{id}` does; each
/// erasure is an audit entry with the token's name and the reason `console`. Then to the
/// form's list, which says the submission was deleted.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    form: web::Form<super::Csrf>,
) -> HttpResponse {
    let (sink, id) = path.into_inner();
    let (session, meta) = match admin_action(&req, &state, &form, &sink, &id, "delete").await {
        Ok(checked) => checked,
        Err(resp) => return *resp,
    };
    let Some(token) = state.tokens.iter().find(|t| t.name == session.token) else {
        return super::forbidden_page();
    };
    let caller = crate::http::Caller {
        name: &token.name,
        token: &token.config,
    };
    let reason = crate::audit::Reason::Console;
    let ended = match crate::http::erase_spooled(&state, &caller, &id, reason).await {
        Ok(ended) => ended,
        Err(e) => {
            tracing::error!(submission = %id, status = %e.status, "console: erasing from the spool failed");
            return server_error();
        }
    };
    let documents = match crate::http::erase_documents_for(
        &state,
        &caller,
        Some(sink.clone()),
        &id,
        reason,
    )
    .await
    {
        Ok(n) => n,
        Err(e) if e.status == StatusCode::NOT_FOUND => 0,
        Err(e) => {
            tracing::error!(document = %id, status = %e.status, "console: erasing the document failed");
            return server_error();
        }
    };
    tracing::info!(
        submission = %id,
        deliveries_ended = ended.unwrap_or(0),
        documents,
        token = %session.token,
        "console: submission deleted"
    );
    secured(StatusCode::SEE_OTHER)
        .insert_header((
            header::LOCATION,
            format!("/console/forms/{}?deleted=1", meta.form),
        ))
        .finish()
}

pub(super) fn server_error() -> HttpResponse {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        page(
            "Something went wrong",
            None,
            "<h1>Something went wrong</h1><p role=\"alert\">The server could not do this; it has \
been logged. Try again later.</p><p><a href=\"/console/\">Back to the inbox</a></p>",
        ),
    )
}

#[derive(Deserialize)]
pub struct ListQuery {
    /// Submissions older than this id (the "older" link of the previous page).
    before: Option<String>,
    /// Set by the redirect after a console "Delete": the page says the submission was deleted.
    deleted: Option<String>,
}

/// `GET /console/forms/{form}`: the form's submissions, newest first, from every Documents store.
pub async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = match signed_in(&req, &state) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let form = path.into_inner();
    if !state.config.forms.contains_key(&form) || !allows(&state, &session, &form) {
        return not_found_page();
    }
    let stores: Vec<(String, Arc<DocumentStore>)> = state
        .documents
        .all()
        .map(|(n, s)| (n.to_owned(), Arc::clone(s)))
        .collect();
    let owned = form.clone();
    let listed = web::block(move || {
        let mut all: Vec<(String, DocumentMeta)> = Vec::new();
        for (name, store) in stores {
            let listing = store.list(Some(&owned))?;
            all.extend(listing.documents.into_iter().map(|d| (name.clone(), d)));
        }
        all.sort_by(|a, b| b.1.id.cmp(&a.1.id));
        Ok::<_, secureform_documents::StoreError>(all)
    })
    .await;
    let all = match listed {
        Ok(Ok(all)) => all,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "console: listing documents failed");
            return server_error();
        }
        Err(e) => {
            tracing::error!(error = %e, "console: store task failed");
            return server_error();
        }
    };
    let total = all.len();
    let mut shown: Vec<_> = all
        .into_iter()
        .filter(|(_, d)| query.before.as_ref().is_none_or(|b| d.id < *b))
        .take(PAGE + 1)
        .collect();
    let older = (shown.len() > PAGE).then(|| {
        shown.truncate(PAGE);
        shown.last().map(|(_, d)| d.id.clone())
    });
    let summarize = state.config.console.list_summary;
    let summaries = if summarize {
        match summaries(&state, &session, &shown).await {
            Some(s) => s,
            None => return server_error(),
        }
    } else {
        Vec::new()
    };
    let mut rows = String::new();
    for (k, (sink, d)) in shown.iter().enumerate() {
        let deliveries = state.spool.deliveries(&d.id).await.unwrap_or_default();
        let states: Vec<String> = deliveries
            .iter()
            .map(|r| format!("{}: {}", escape(&r.sink), state_word(r.state)))
            .collect();
        let summary = match summaries.get(k) {
            Some(s) => format!("<td class=\"summary\" data-label=\"Summary\">{s}</td>"),
            None => String::new(),
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"/console/submissions/{sink}/{id}\">{received}</a></td>\
{summary}<td data-label=\"Reference\"><code>{id}</code></td><td data-label=\"Files\">{files}</td>\
<td data-label=\"Encryption\">{mode}</td><td data-label=\"Deliveries\">{states}</td></tr>",
            sink = escape(sink),
            id = escape(&d.id),
            received = escape(&d.received_at),
            files = d.files,
            mode = if d.pgp { "OpenPGP" } else { "Service key" },
            states = states.join("<br>"),
        ));
    }
    if rows.is_empty() {
        rows = format!(
            "<tr><td colspan=\"{}\">No submissions yet.</td></tr>",
            if summarize { 6 } else { 5 }
        );
    }
    let next = match older.flatten() {
        Some(id) => format!(
            "<p><a id=\"older\" href=\"/console/forms/{}?before={}\">Older submissions</a></p>",
            escape(&form),
            escape(&id)
        ),
        None => String::new(),
    };
    let notice = if query.deleted.is_some() {
        "<p class=\"notice\" role=\"status\" id=\"notice\">The submission was deleted.</p>"
    } else {
        ""
    };
    html(
        StatusCode::OK,
        page(
            &format!("Form {form}"),
            Some(&session),
            &format!(
                "<p><a href=\"/console/\">Inbox</a></p><h1>Form {f}</h1>{notice}<p>{total} submission(s) \
in the Documents store.</p><table id=\"submissions\"><caption>Submissions, newest first\
</caption><thead><tr><th scope=\"col\">Received (UTC)</th>{summary_head}\
<th scope=\"col\">Reference</th><th scope=\"col\">Files</th><th scope=\"col\">Encryption</th><th scope=\"col\">Deliveries</th>\
</tr></thead><tbody>{rows}</tbody></table>{next}\
<h2>Export</h2><form method=\"get\" action=\"/console/forms/{f}/export\" id=\"export\">\
<label for=\"from\">First day (UTC)</label><input id=\"from\" name=\"from\" type=\"date\" required>\
<label for=\"to\">Last day (UTC)</label><input id=\"to\" name=\"to\" type=\"date\" required>\
<label for=\"format\">Format</label><select id=\"format\" name=\"format\">\
<option value=\"csv\">CSV (spreadsheets)</option><option value=\"jsonl\">JSON lines</option></select>\
<button type=\"submit\">Download export</button></form>\
<p>Submissions encrypted for OpenPGP recipients are not exported.</p>",
                f = escape(&form),
                summary_head = if summarize {
                    "<th scope=\"col\">Summary</th>"
                } else {
                    ""
                },
            ),
        ),
    )
}

/// Fields a list's summary shows, and how many characters of each name and value.
const SUMMARY_FIELDS: usize = 3;
const SUMMARY_NAME: usize = 32;
const SUMMARY_VALUE: usize = 40;

/// `text` cut to `max` characters, with "…" when cut.
fn truncate(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// The summary cell of one submission, escaped HTML: its first fields as `name: value` lines.
pub(super) fn summary_html(submission: &secureform_contract::Submission) -> String {
    let lines: Vec<String> = submission
        .fields
        .iter()
        .take(SUMMARY_FIELDS)
        .map(|(name, v)| {
            format!(
                "<span class=\"field\">{}:</span> {}",
                escape(&truncate(name, SUMMARY_NAME)),
                escape(&truncate(&v.to_text(), SUMMARY_VALUE))
            )
        })
        .collect();
    if lines.is_empty() {
        "<em>No fields.</em>".to_owned()
    } else {
        lines.join("<br>")
    }
}

/// The summary cells of a list page, in its order: each submission not encrypted to OpenPGP
/// recipients is first recorded in the audit log (`console_read_submission`, detail
/// `sink=NAME summary`, one entry per submission shown, as exports are), then read. `None`
/// when an entry could not be recorded (then nothing is shown).
async fn summaries(
    state: &AppState,
    session: &Session,
    shown: &[(String, DocumentMeta)],
) -> Option<Vec<String>> {
    let readable: Vec<&(String, DocumentMeta)> = shown.iter().filter(|(_, d)| !d.pgp).collect();
    // Recorded together: the spool's writer commits concurrent entries in one transaction.
    let recorded = futures_util::future::join_all(readable.iter().map(|(sink, d)| {
        state.spool.audit_entry(
            &session.token,
            crate::audit::Action::ConsoleReadSubmission,
            &d.id,
            None,
            Some(format!("sink={sink} summary")),
        )
    }))
    .await;
    if let Some(Err(e)) = recorded.into_iter().find(|r| r.is_err()) {
        tracing::error!(error = %e, "console: recording the audit entry failed");
        return None;
    }
    if !readable.is_empty() {
        tracing::info!(documents = readable.len(), token = %session.token, "console read (list summaries)");
    }
    let stores: Vec<(String, Arc<DocumentStore>)> = state
        .documents
        .all()
        .map(|(n, s)| (n.to_owned(), Arc::clone(s)))
        .collect();
    let items: Vec<(String, String, bool)> = shown
        .iter()
        .map(|(sink, d)| (sink.clone(), d.id.clone(), d.pgp))
        .collect();
    let cells = web::block(move || {
        items
            .into_iter()
            .map(|(sink, id, pgp)| {
                if pgp {
                    return "<em>Encrypted to PGP recipients</em>".to_owned();
                }
                let read = stores
                    .iter()
                    .find(|(n, _)| *n == sink)
                    .ok_or_else(|| "no such store".to_owned())
                    .and_then(|(_, store)| read_all(store, &id, DocumentItem::Submission))
                    .and_then(|bytes| {
                        serde_json::from_slice::<secureform_contract::Submission>(&bytes)
                            .map_err(|e| e.to_string())
                    });
                match read {
                    Ok(sub) => summary_html(&sub),
                    Err(e) => {
                        tracing::error!(document = %id, error = %e, "console: summary unreadable");
                        "<em>Unreadable</em>".to_owned()
                    }
                }
            })
            .collect::<Vec<String>>()
    })
    .await;
    match cells {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "console: store task failed");
            None
        }
    }
}

fn state_word(s: crate::spool::DeliveryState) -> &'static str {
    use crate::spool::DeliveryState::*;
    match s {
        Pending => "pending",
        Retrying => "retrying",
        Delivered => "delivered",
        Dead => "failed",
    }
}

/// The store `sink` names, and the metadata of `id` in it when the session may read it.
/// The checks of an admin action on a submission, in this order: signed in, the CSRF token and
/// the same origin (403), a submission this session may read (404), the `admin` scope (403).
async fn admin_action(
    req: &HttpRequest,
    state: &AppState,
    form: &super::Csrf,
    sink: &str,
    id: &str,
    action: &str,
) -> Result<(Session, DocumentMeta), Box<HttpResponse>> {
    let session = signed_in(req, state)?;
    if !super::session::same(&session.csrf, &form.csrf) || !super::same_origin(req) {
        tracing::warn!(token = %session.token, action, "console action refused: CSRF check failed");
        return Err(Box::new(super::forbidden_page()));
    }
    let Some((_, meta)) = readable(state, &session, sink, id).await else {
        return Err(Box::new(not_found_page()));
    };
    if !is_admin(state, &session) {
        return Err(Box::new(super::forbidden_page()));
    }
    Ok((session, meta))
}

async fn readable(
    state: &AppState,
    session: &Session,
    sink: &str,
    id: &str,
) -> Option<(Arc<DocumentStore>, DocumentMeta)> {
    ulid::Ulid::from_string(id).ok()?;
    let store = state
        .documents
        .all()
        .find(|(n, _)| *n == sink)
        .map(|(_, s)| Arc::clone(s))?;
    let (s, owned) = (Arc::clone(&store), id.to_owned());
    let meta = web::block(move || s.meta(&owned)).await.ok()?.ok()?;
    allows(state, session, &meta.form).then_some((store, meta))
}

/// Records the read in the audit log; false when that failed (then nothing is served).
async fn audit(
    state: &AppState,
    session: &Session,
    action: crate::audit::Action,
    id: &str,
) -> bool {
    match state.spool.audit(&session.token, action, id).await {
        Ok(()) => {
            tracing::info!(document = %id, token = %session.token, %action, "console read");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "console: recording the audit entry failed");
            false
        }
    }
}

pub(super) fn read_all(
    store: &DocumentStore,
    id: &str,
    item: DocumentItem,
) -> Result<Vec<u8>, String> {
    let mut reader = store.open_item(id, item).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// `GET /console/submissions/{sink}/{id}`: every field (escaped), the files, the deliveries.
pub async fn show(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = match signed_in(&req, &state) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let (sink, id) = path.into_inner();
    let Some((store, meta)) = readable(&state, &session, &sink, &id).await else {
        return not_found_page();
    };
    let deliveries = state.spool.deliveries(&id).await.unwrap_or_default();
    let mut history = String::new();
    for r in &deliveries {
        history.push_str(&format!(
            "<tr><td data-label=\"Sink\">{}</td><td data-label=\"State\">{}</td>\
<td data-label=\"Attempts\">{}</td><td data-label=\"Last error\">{}</td></tr>",
            escape(&r.sink),
            state_word(r.state),
            r.attempts,
            error_cell(r),
        ));
    }
    let header = format!(
        "<p><a href=\"/console/forms/{form}\">Back to form {form}</a></p>\
<h1>Submission <code>{id}</code></h1><p>Form <strong>{form}</strong>, received {received} UTC.</p>",
        form = escape(&meta.form),
        id = escape(&id),
        received = escape(&meta.received_at),
    );
    let any_dead = deliveries
        .iter()
        .any(|r| r.state == crate::spool::DeliveryState::Dead);
    let retry = if any_dead && is_admin(&state, &session) {
        format!(
            "<form method=\"post\" action=\"/console/submissions/{}/{}/retry\" id=\"retry\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Retry failed \
deliveries</button></form>",
            escape(&sink),
            escape(&id),
            escape(&session.csrf)
        )
    } else {
        String::new()
    };
    let delete = if is_admin(&state, &session) {
        format!(
            "<h2>Delete</h2><form method=\"get\" action=\"/console/submissions/{}/{}/delete\" \
id=\"delete\"><button type=\"submit\" class=\"danger\">Delete this submission…</button></form>",
            escape(&sink),
            escape(&id),
        )
    } else {
        String::new()
    };
    let deliveries_html = format!(
        "<h2>Deliveries</h2><table id=\"deliveries\"><thead><tr><th scope=\"col\">Sink</th>\
<th scope=\"col\">State</th><th scope=\"col\">Attempts</th><th scope=\"col\">Last error</th>\
</tr></thead><tbody>{history}</tbody></table>{retry}{delete}"
    );
    if meta.pgp {
        let body = format!(
            "{header}{}{deliveries_html}",
            pgp_decrypt_section(&sink, &id, meta.files)
        );
        return super::secured_with(StatusCode::OK, super::DECRYPT_CSP)
            .content_type("text/html; charset=utf-8")
            .body(super::page_with_head(
                "Submission",
                Some(&session),
                &body,
                &super::decrypt_scripts(),
            ));
    }
    if !audit(
        &state,
        &session,
        crate::audit::Action::ConsoleReadSubmission,
        &id,
    )
    .await
    {
        return server_error();
    }
    let owned = id.clone();
    let read = web::block(move || read_all(&store, &owned, DocumentItem::Submission)).await;
    let submission: secureform_contract::Submission = match read {
        Ok(Ok(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(document = %id, error = %e, "console: submission is not readable");
                return server_error();
            }
        },
        _ => {
            tracing::error!(document = %id, "console: reading a submission failed");
            return server_error();
        }
    };
    // In the order received.
    let mut fields = String::new();
    for (name, v) in submission.fields.iter() {
        let shown = v
            .values()
            .iter()
            .map(|i| escape(&i.to_text()))
            .collect::<Vec<_>>()
            .join("<br>");
        fields.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td class=\"value\">{shown}</td></tr>",
            escape(name)
        ));
    }
    let mut files = String::new();
    for (n, f) in submission.files.iter().enumerate() {
        files.push_str(&format!(
            "<li><a class=\"download\" href=\"/console/submissions/{sink}/{id}/files/{n}\" \
download>{}</a> ({size} bytes, field {})</li>",
            escape(&crate::file_names::sanitize(&f.filename, n)),
            escape(&f.field),
            size = f.size,
            sink = escape(&sink),
            id = escape(&id),
        ));
    }
    if files.is_empty() {
        files = "<li>No files.</li>".to_owned();
    }
    let body = format!(
        "{header}<p class=\"mode\" id=\"mode\">Decrypted on the server with the service key.</p>\
<table id=\"fields\"><caption>Fields</caption><tbody>{fields}</tbody></table>\
<h2>Files</h2><ul id=\"files\">{files}</ul>{deliveries_html}"
    );
    html(StatusCode::OK, page("Submission", Some(&session), &body))
}

/// The decryption part of a PGP submission's page. Its controls belong to no `<form>`: nothing
/// the reader types or chooses here can be submitted to the server. The page's script
/// (`decrypt.mjs`) enables the button once OpenPGP.js has loaded and passed its integrity check.
fn pgp_decrypt_section(sink: &str, id: &str, files: usize) -> String {
    let base = format!("/console/submissions/{}/{}/pgp", escape(sink), escape(id));
    format!(
        "<p class=\"mode\" id=\"mode\">This document is encrypted to your PGP key; it is \
decrypted in this browser; the key is not sent. The server keeps it encrypted to the form's \
OpenPGP recipients and cannot read it: it sends this page the encrypted message, and this page \
opens it with the private key you give below.</p>\
<section id=\"decrypt\" aria-labelledby=\"decrypt-title\" data-submission=\"{base}/submission\" \
data-files=\"{base}/files/\" data-count=\"{files}\">\
<h2 id=\"decrypt-title\">Decrypt in this browser</h2>\
<p>Give the private key of one of the form's recipients (a file, or pasted as ASCII armor, \
e.g. from <code>gpg --armor --export-secret-keys YOU</code>). It is read by this page only, \
is sent nowhere and is forgotten when you close this tab.</p>\
<label for=\"key-file\">Private key file</label>\
<input type=\"file\" id=\"key-file\" accept=\".asc,.gpg,.key,.pgp,.txt\">\
<label for=\"key-text\">Or paste the private key</label>\
<textarea id=\"key-text\" rows=\"5\" autocomplete=\"off\" autocapitalize=\"off\" \
spellcheck=\"false\" placeholder=\"-----BEGIN PGP PRIVATE KEY BLOCK-----\"></textarea>\
<label for=\"passphrase\">Passphrase (if the key has one)</label>\
<input type=\"password\" id=\"passphrase\" autocomplete=\"off\">\
<button type=\"button\" id=\"decrypt-button\" disabled>Decrypt in this browser</button>\
<p id=\"decrypt-status\" role=\"status\">Loading the decryption code (OpenPGP.js)… If this \
message stays, it did not load: it runs only when it matches the hash this server recorded. \
You can still open the document with <code>secureform docs get --pgp-key</code>.</p>\
<p id=\"decrypt-problem\" class=\"alert\" role=\"alert\" hidden></p>\
<noscript><p class=\"alert\">Decrypting in this browser needs JavaScript. Use \
<code>secureform docs get --pgp-key</code> instead.</p></noscript>\
</section>\
<div id=\"plaintext\" hidden><table id=\"fields\" tabindex=\"-1\"><caption>Fields (decrypted \
in this browser)</caption><tbody></tbody></table><h2>Files</h2><ul id=\"files\"></ul>\
<button type=\"button\" id=\"forget\" hidden>Forget the key</button></div>"
    )
}

/// `GET /console/submissions/{sink}/{id}/pgp/submission`: the submission of a document encrypted
/// to OpenPGP recipients, as the OpenPGP message stored inside the service's own seal (which is
/// opened here). Only the recipients' keys open it: the page decrypts it in the browser.
pub async fn pgp_submission(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (sink, id) = path.into_inner();
    pgp_message(&req, &state, sink, id, None).await
}

/// `GET /console/submissions/{sink}/{id}/pgp/files/{n}`: file `n`'s OpenPGP message.
pub async fn pgp_file(
    req: HttpRequest,
    path: web::Path<(String, String, usize)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (sink, id, n) = path.into_inner();
    pgp_message(&req, &state, sink, id, Some(n)).await
}

/// The OpenPGP message of one item of a PGP document: same session, scope and form rules as the
/// other reads, recorded in the audit log first (`console_read_submission` or
/// `console_read_file`, detail `sink=NAME openpgp`), a 404 for a document without recipients.
async fn pgp_message(
    req: &HttpRequest,
    state: &AppState,
    sink: String,
    id: String,
    file: Option<usize>,
) -> HttpResponse {
    let session = match signed_in(req, state) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let Some((store, meta)) = readable(state, &session, &sink, &id).await else {
        return not_found_page();
    };
    if !meta.pgp || file.is_some_and(|n| n >= meta.files) {
        return not_found_page();
    }
    let (action, item, name) = match file {
        None => (
            crate::audit::Action::ConsoleReadSubmission,
            DocumentItem::Submission,
            format!("{id}-submission.json.pgp"),
        ),
        Some(n) => (
            crate::audit::Action::ConsoleReadFile,
            DocumentItem::File(n),
            format!("{id}-file-{n}.pgp"),
        ),
    };
    let recorded = state
        .spool
        .audit_entry(
            &session.token,
            action,
            &id,
            None,
            Some(format!("sink={sink} openpgp")),
        )
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "console: recording the audit entry failed");
        return server_error();
    }
    tracing::info!(document = %id, token = %session.token, %action, "console read (OpenPGP message)");
    let served = serve_item(&store, &id, item, Shape::AsSealed).await;
    downloaded(served, &id, &format!("attachment; filename=\"{name}\""))
}

/// A streamed item as a console download: the console's security headers, an attachment
/// disposition and `application/octet-stream`; a document erased meanwhile is the not-found
/// page, a damaged one the error page (logged).
fn downloaded(
    served: Result<HttpResponse, crate::error::ClientError>,
    id: &str,
    disposition: &str,
) -> HttpResponse {
    let mut resp = match served {
        Ok(resp) => resp,
        Err(e) if e.status == StatusCode::NOT_FOUND => return not_found_page(),
        Err(_) => {
            tracing::error!(document = %id, "console: reading a document item failed");
            return server_error();
        }
    };
    let headers = resp.headers_mut();
    for (name, value) in super::SECURITY_HEADERS {
        headers.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(super::CSP),
    );
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = header::HeaderValue::from_str(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /console/submissions/{sink}/{id}/files/{n}`: one file, as an attachment.
pub async fn file(
    req: HttpRequest,
    path: web::Path<(String, String, usize)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let session = match signed_in(&req, &state) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let (sink, id, n) = path.into_inner();
    let Some((store, meta)) = readable(&state, &session, &sink, &id).await else {
        return not_found_page();
    };
    if n >= meta.files || meta.pgp {
        return not_found_page();
    }
    if !audit(&state, &session, crate::audit::Action::ConsoleReadFile, &id).await {
        return server_error();
    }
    // The submitted name is in the submission (small); the file itself is streamed.
    let (reader, owned) = (Arc::clone(&store), id.clone());
    let name = web::block(move || {
        let sub = read_all(&reader, &owned, DocumentItem::Submission)?;
        let value: serde_json::Value = serde_json::from_slice(&sub).map_err(|e| e.to_string())?;
        Ok::<_, String>(
            value
                .get("files")
                .and_then(|f| f.get(n))
                .and_then(|f| f.get("filename"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
        )
    })
    .await;
    let name = match name {
        Ok(Ok(name)) => name,
        _ => {
            // Gone meanwhile (erased) is not found; anything else is damage, logged.
            if matches!(
                store.meta(&id),
                Err(secureform_documents::StoreError::NotFound(_))
            ) || store.is_being_erased(&id)
            {
                return not_found_page();
            }
            tracing::error!(document = %id, file = n, "console: reading a file failed");
            return server_error();
        }
    };
    let served = serve_item(&store, &id, DocumentItem::File(n), Shape::AsSealed).await;
    downloaded(served, &id, &disposition(&name, n))
}

/// `attachment` with an ASCII `filename` and the exact (sanitized) name in `filename*` (RFC 6266).
fn disposition(name: &str, n: usize) -> String {
    let clean = crate::file_names::sanitize(name, n);
    let ascii: String = clean
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in clean.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The last error of a delivery, with its machine-readable reason first (escaped).
fn error_cell(r: &crate::spool::DeliveryRow) -> String {
    let error = escape(r.last_error.as_deref().unwrap_or(""));
    match (r.state, r.failure_reason) {
        (
            crate::spool::DeliveryState::Retrying | crate::spool::DeliveryState::Dead,
            Some(reason),
        ) => format!("<code>{}</code> {error}", reason.as_str()),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_show_three_fields_cut_and_escaped() {
        let long = "é".repeat(41);
        let json = format!(
            r#"{{"id":"01J00000000000000000000000","form":"f","received_at":"2026-01-01T00:00:00Z",
            "source":"json","fields":{{"<b>":"<img src=x>","long":"{long}","n":[1,true],
            "fourth":"hidden"}},"files":[]}}"#
        );
        let sub: secureform_contract::Submission = serde_json::from_str(&json).unwrap();
        let html = summary_html(&sub);
        assert!(
            html.contains("&lt;b&gt;:</span> &lt;img src=x&gt;"),
            "{html}"
        );
        assert!(html.contains(&format!("{}…", "é".repeat(40))), "{html}");
        assert!(html.contains("n:</span> 1, true"), "{html}");
        assert!(!html.contains("hidden") && !html.contains("<img"), "{html}");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
    }

    #[test]
    fn file_names_are_sanitized() {
        let d = disposition("Zoë \"x\".pdf", 0);
        assert!(d.starts_with("attachment; filename=\"Zo_ x.pdf\""), "{d}");
        assert!(d.ends_with("filename*=UTF-8''Zo%C3%AB%20x.pdf"), "{d}");
        assert!(!d.contains('\n') && !d.contains('\r'));
    }
}
