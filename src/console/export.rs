//! `GET /console/forms/{form}/export`: a form's submissions received in a date range, as CSV or
//! JSON lines, streamed. Each exported submission is first recorded in the audit log (action
//! `console_export`, with the token's name). Documents encrypted for OpenPGP recipients are left
//! out (the server cannot read them); the page says so.
//!
//! CSV (RFC 4180): a header row `id`, `form`, `received_at`, then every field name met in the
//! range, in the order first met; several values of one field are joined with ", "; rows end with
//! CRLF. Cells are guarded as the SFTP sink's are: one starting with `=`, `+`, `-`, `@`, TAB or
//! CR is prefixed with `'` so that a spreadsheet does not run a formula a sender typed.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use secureform_contract::Submission;
use secureform_documents::{DocumentItem, DocumentMeta, DocumentStore};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::inbox::{allows, read_all, server_error, signed_in};
use super::{html, not_found_page, page, secured};
use crate::http::AppState;

#[derive(Deserialize)]
pub struct ExportQuery {
    format: String,
    /// First day (UTC), `YYYY-MM-DD`, included.
    from: String,
    /// Last day (UTC), `YYYY-MM-DD`, included.
    to: String,
}

/// One CSV cell: formula-guarded, then quoted when needed.
pub fn csv_cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains(['"', ',', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn csv_line(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn valid_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn bad_request(message: &str) -> HttpResponse {
    html(
        StatusCode::BAD_REQUEST,
        page(
            "Export",
            None,
            &format!(
                "<h1>The export could not be made</h1><p role=\"alert\" id=\"problem\">{}</p>",
                crate::http::pages::escape(message)
            ),
        ),
    )
}

fn load(store: &DocumentStore, id: &str) -> Result<Submission, String> {
    let bytes = read_all(store, id, DocumentItem::Submission)?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ExportQuery>,
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
    let csv = match query.format.as_str() {
        "csv" => true,
        "jsonl" => false,
        _ => return bad_request("The format must be CSV or JSON lines."),
    };
    if !valid_day(&query.from) || !valid_day(&query.to) || query.from > query.to {
        return bad_request(
            "Give a first and a last day (YYYY-MM-DD), the first not after the last.",
        );
    }
    let (from, to) = (query.from.clone(), query.to.clone());
    let stores: Vec<Arc<DocumentStore>> =
        state.documents.all().map(|(_, s)| Arc::clone(s)).collect();
    let owned = form.clone();
    let listed = web::block(move || {
        let mut all: Vec<(Arc<DocumentStore>, DocumentMeta)> = Vec::new();
        for store in stores {
            let listing = store.list(Some(&owned)).map_err(|e| e.to_string())?;
            for d in listing.documents {
                let day = d.received_at.get(..10).unwrap_or("");
                if !d.pgp && day >= from.as_str() && day <= to.as_str() {
                    all.push((Arc::clone(&store), d));
                }
            }
        }
        all.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        Ok::<_, String>(all)
    })
    .await;
    let docs = match listed {
        Ok(Ok(d)) => d,
        _ => {
            tracing::error!(form = %form, "console: listing for an export failed");
            return server_error();
        }
    };
    for (_, d) in &docs {
        if let Err(e) = state
            .spool
            .audit(&session.token, crate::audit::Action::ConsoleExport, &d.id)
            .await
        {
            tracing::error!(error = %e, "console: recording the audit entry failed");
            return server_error();
        }
    }
    tracing::info!(form = %form, token = %session.token, count = docs.len(), "console export");
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let send = |text: String| tx.blocking_send(Ok(Bytes::from(text))).is_ok();
        let fail = |id: &str, e: String| {
            tracing::error!(document = %id, error = %e, "console: export stream failed");
            let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
        };
        if csv {
            // First pass: the columns (every field name met, in the order first met).
            let mut names: Vec<String> = Vec::new();
            for (store, d) in &docs {
                match load(store, &d.id) {
                    Ok(s) => {
                        for (name, _) in s.fields.iter() {
                            if !names.iter().any(|n| n == name) {
                                names.push(name.to_owned());
                            }
                        }
                    }
                    Err(e) => return fail(&d.id, e),
                }
            }
            let mut header = vec!["id".to_owned(), "form".to_owned(), "received_at".to_owned()];
            header.extend(names.iter().cloned());
            if !send(csv_line(&header)) {
                return;
            }
            for (store, d) in &docs {
                let s = match load(store, &d.id) {
                    Ok(s) => s,
                    Err(e) => return fail(&d.id, e),
                };
                let mut row = vec![s.id.clone(), s.form.clone(), s.received_at.clone()];
                for name in &names {
                    let value = s
                        .fields
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.to_text());
                    row.push(value.unwrap_or_default());
                }
                if !send(csv_line(&row)) {
                    return;
                }
            }
        } else {
            for (store, d) in &docs {
                let line = load(store, &d.id)
                    .and_then(|s| serde_json::to_string(&s).map_err(|e| e.to_string()));
                match line {
                    Ok(mut l) => {
                        l.push('\n');
                        if !send(l) {
                            return;
                        }
                    }
                    Err(e) => return fail(&d.id, e),
                }
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let (mime, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "jsonl")
    };
    secured(StatusCode::OK)
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{form}-{}-{}.{ext}\"",
                query.from, query.to
            ),
        ))
        .streaming(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_guarded_and_quoted() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("-5"), "'-5");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert!(valid_day("2026-12-05") && !valid_day("2026-1-05") && !valid_day("x"));
    }
}
