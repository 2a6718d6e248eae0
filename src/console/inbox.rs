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
    let session = match signed_in(&req, &state) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let (sink, id) = path.into_inner();
    if !super::session::same(&session.csrf, &form.csrf) || !super::same_origin(&req) {
        tracing::warn!(token = %session.token, "console retry refused: CSRF check failed");
        return super::forbidden_page();
    }
    if readable(&state, &session, &sink, &id).await.is_none() {
        return not_found_page();
    }
    if !is_admin(&state, &session) {
        return super::forbidden_page();
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
    let mut rows = String::new();
    for (sink, d) in &shown {
        let deliveries = state.spool.deliveries(&d.id).await.unwrap_or_default();
        let states: Vec<String> = deliveries
            .iter()
            .map(|r| format!("{}: {}", escape(&r.sink), state_word(r.state)))
            .collect();
        rows.push_str(&format!(
            "<tr><td><a href=\"/console/submissions/{sink}/{id}\">{received}</a></td>\
<td><code>{id}</code></td><td>{files}</td><td>{mode}</td><td>{states}</td></tr>",
            sink = escape(sink),
            id = escape(&d.id),
            received = escape(&d.received_at),
            files = d.files,
            mode = if d.pgp { "OpenPGP" } else { "Service key" },
            states = states.join("<br>"),
        ));
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"5\">No submissions yet.</td></tr>".to_owned();
    }
    let next = match older.flatten() {
        Some(id) => format!(
            "<p><a id=\"older\" href=\"/console/forms/{}?before={}\">Older submissions</a></p>",
            escape(&form),
            escape(&id)
        ),
        None => String::new(),
    };
    html(
        StatusCode::OK,
        page(
            &format!("Form {form}"),
            Some(&session),
            &format!(
                "<p><a href=\"/console/\">Inbox</a></p><h1>Form {f}</h1><p>{total} submission(s) \
in the Documents store.</p><table id=\"submissions\"><caption>Submissions, newest first\
</caption><thead><tr><th scope=\"col\">Received (UTC)</th><th scope=\"col\">Reference</th>\
<th scope=\"col\">Files</th><th scope=\"col\">Encryption</th><th scope=\"col\">Deliveries</th>\
</tr></thead><tbody>{rows}</tbody></table>{next}\
<h2>Export</h2><form method=\"get\" action=\"/console/forms/{f}/export\" id=\"export\">\
<label for=\"from\">First day (UTC)</label><input id=\"from\" name=\"from\" type=\"date\" required>\
<label for=\"to\">Last day (UTC)</label><input id=\"to\" name=\"to\" type=\"date\" required>\
<label for=\"format\">Format</label><select id=\"format\" name=\"format\">\
<option value=\"csv\">CSV (spreadsheets)</option><option value=\"jsonl\">JSON lines</option></select>\
<button type=\"submit\">Download export</button></form>\
<p>Submissions encrypted for OpenPGP recipients are not exported.</p>",
                f = escape(&form),
            ),
        ),
    )
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
async fn audit(state: &AppState, session: &Session, action: &str, id: &str) -> bool {
    match state.spool.audit(&session.token, action, id).await {
        Ok(()) => {
            tracing::info!(document = %id, token = %session.token, action, "console read");
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
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
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
    let deliveries_html = format!(
        "<h2>Deliveries</h2><table id=\"deliveries\"><thead><tr><th scope=\"col\">Sink</th>\
<th scope=\"col\">State</th><th scope=\"col\">Attempts</th><th scope=\"col\">Last error</th>\
</tr></thead><tbody>{history}</tbody></table>{retry}"
    );
    if meta.pgp {
        let body = format!(
            "{header}<p class=\"mode\" id=\"mode\">This submission is encrypted for its \
recipients' OpenPGP keys: the server cannot read it, and this console cannot yet decrypt it in \
the browser. Use <code>secureform docs get --pgp-key</code>.</p>{deliveries_html}"
        );
        return html(StatusCode::OK, page("Submission", Some(&session), &body));
    }
    if !audit(&state, &session, "console_read_submission", &id).await {
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
            escape(&sanitize_filename(&f.filename, n)),
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
    if !audit(&state, &session, "console_read_file", &id).await {
        return server_error();
    }
    let owned = id.clone();
    let read = web::block(move || {
        let sub = read_all(&store, &owned, DocumentItem::Submission)?;
        let value: serde_json::Value = serde_json::from_slice(&sub).map_err(|e| e.to_string())?;
        let name = value
            .get("files")
            .and_then(|f| f.get(n))
            .and_then(|f| f.get("filename"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let bytes = read_all(&store, &owned, DocumentItem::File(n))?;
        Ok::<_, String>((name, bytes))
    })
    .await;
    let (name, bytes) = match read {
        Ok(Ok(v)) => v,
        _ => {
            tracing::error!(document = %id, file = n, "console: reading a file failed");
            return server_error();
        }
    };
    secured(StatusCode::OK)
        .insert_header((header::CONTENT_TYPE, "application/octet-stream"))
        .insert_header((header::CONTENT_DISPOSITION, disposition(&name, n)))
        .body(bytes)
}

/// A file name safe to show and to save: its last path component, without control characters
/// or characters that are special in file systems or headers; `file-N` when nothing is left.
pub fn sanitize_filename(name: &str, n: usize) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*' | ';'))
        .collect();
    let clean = clean.trim().trim_start_matches('.').trim().to_owned();
    if clean.is_empty() {
        format!("file-{n}")
    } else {
        clean.chars().take(200).collect()
    }
}

/// `attachment` with an ASCII `filename` and the exact (sanitized) name in `filename*` (RFC 6266).
fn disposition(name: &str, n: usize) -> String {
    let clean = sanitize_filename(name, n);
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
    fn file_names_are_sanitized() {
        assert_eq!(sanitize_filename("../../etc/passwd", 0), "passwd");
        assert_eq!(sanitize_filename("C:\\x\\a\"b<c>.pdf", 0), "abc.pdf");
        assert_eq!(sanitize_filename("..", 3), "file-3");
        assert_eq!(sanitize_filename("a\r\nb.txt", 0), "ab.txt");
        assert_eq!(sanitize_filename("Zoë 報告.pdf", 0), "Zoë 報告.pdf");
        let d = disposition("Zoë \"x\".pdf", 0);
        assert!(d.starts_with("attachment; filename=\"Zo_ x.pdf\""), "{d}");
        assert!(d.ends_with("filename*=UTF-8''Zo%C3%AB%20x.pdf"), "{d}");
        assert!(!d.contains('\n') && !d.contains('\r'));
    }
}
