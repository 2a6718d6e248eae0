//! The web console under `/console/` (issue 18): people who read submissions sign in with an
//! API token that has the `read` scope, exchanged for a server-side session (see [`session`]).
//!
//! Off unless `[console] enabled = true`; while off, every `/console/` path is a 404. Pages are
//! rendered on the server and carry a strict Content-Security-Policy: no script at all, styles
//! only from the console's own static file, no framing (`frame-ancestors 'none'`), forms posting
//! only to this origin. The one exception is the page of a submission encrypted to OpenPGP
//! recipients, which runs two module scripts from this origin, both integrity-checked (OpenPGP.js
//! and the page's own, see [`assets`]) and no inline script ([`DECRYPT_CSP`]). Every page is
//! `Cache-Control: no-store`. Every state-changing request (sign-in, sign-out, retry, delete) carries a CSRF
//! token and must come from this origin (`Origin`, and `Sec-Fetch-Site` when the browser sends
//! it).

mod assets;
mod export;
mod inbox;
pub mod session;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use serde::Deserialize;

use crate::config::Scope;
use crate::http::pages::escape;
use crate::http::AppState;
pub use session::Sessions;
use session::{random_hex, same, Session};

/// `[console]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console at `/console/`.
    #[serde(default)]
    pub enabled: bool,
    /// A session without a request for this long ends.
    #[serde(default = "default_idle")]
    pub idle_minutes: u32,
    /// A session ends this long after sign-in, used or not.
    #[serde(default = "default_absolute")]
    pub absolute_minutes: u32,
    /// A form's list shows the first fields of each submission (decrypted with the service key;
    /// each one so read is recorded in the audit log). Documents encrypted to OpenPGP recipients
    /// are never summarized.
    #[serde(default = "default_true")]
    pub list_summary: bool,
}

fn default_true() -> bool {
    true
}

fn default_idle() -> u32 {
    30
}

fn default_absolute() -> u32 {
    12 * 60
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            idle_minutes: default_idle(),
            absolute_minutes: default_absolute(),
            list_summary: true,
        }
    }
}

/// The session cookie.
const COOKIE: &str = "sf_console";
/// The sign-in form's CSRF cookie (set with the sign-in page, before any session exists).
const LOGIN_COOKIE: &str = "sf_console_login";

/// Nothing but this origin's stylesheet; no script, no frames, no plugins.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page of a submission encrypted to OpenPGP recipients: [`CSP`], and module scripts from
/// this origin (the page loads exactly two, each with its `integrity`), `fetch()` of this origin
/// only (the encrypted messages), Trusted Types required with no policy allowed (so no string
/// ever becomes markup or code, even by mistake). No `'unsafe-inline'`, no `'unsafe-eval'`, no
/// `'wasm-unsafe-eval'`: OpenPGP.js needs WebAssembly only for keys protected with Argon2
/// (RFC 9580), which GnuPG does not make.
pub(crate) const DECRYPT_CSP: &str = "default-src 'none'; script-src 'self'; \
connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

const STYLE: &str = include_str!("console.css");

/// Registers `/console/` and its paths (each a 404 while the console is off).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("/", web::get().to(inbox))
            .route("", web::get().to(to_slash))
            .route("/sign-in", web::post().to(sign_in))
            .route("/sign-out", web::post().to(sign_out))
            .route("/forms/{form}", web::get().to(inbox::list))
            .route("/forms/{form}/export", web::get().to(export::export))
            .route("/submissions/{sink}/{id}", web::get().to(inbox::show))
            .route(
                "/submissions/{sink}/{id}/retry",
                web::post().to(inbox::retry),
            )
            .route(
                "/submissions/{sink}/{id}/delete",
                web::get().to(inbox::confirm_delete),
            )
            .route(
                "/submissions/{sink}/{id}/delete",
                web::post().to(inbox::delete),
            )
            .route(
                "/submissions/{sink}/{id}/files/{n}",
                web::get().to(inbox::file),
            )
            .route(
                "/submissions/{sink}/{id}/pgp/submission",
                web::get().to(inbox::pgp_submission),
            )
            .route(
                "/submissions/{sink}/{id}/pgp/files/{n}",
                web::get().to(inbox::pgp_file),
            )
            .route("/static/console.css", web::get().to(style))
            .route("/static/{file}", web::get().to(script))
            .default_service(web::to(not_found)),
    );
}

fn minutes_ms(m: u32) -> i64 {
    i64::from(m) * 60_000
}

/// Every console answer: the headers that keep its pages private and unframed.
fn secured(status: StatusCode) -> HttpResponseBuilder {
    secured_with(status, CSP)
}

/// [`secured`] with another Content-Security-Policy.
fn secured_with(status: StatusCode, csp: &str) -> HttpResponseBuilder {
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CONTENT_SECURITY_POLICY, csp));
    for header in SECURITY_HEADERS {
        resp.insert_header(header);
    }
    resp
}

/// Every console answer's headers besides its Content-Security-Policy (names in lowercase).
const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-store"),
];

fn html(status: StatusCode, body: String) -> HttpResponse {
    secured(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

async fn to_slash(state: web::Data<AppState>) -> HttpResponse {
    if !state.config.console.enabled {
        return not_found_page();
    }
    secured(StatusCode::SEE_OTHER)
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

async fn not_found() -> HttpResponse {
    not_found_page()
}

fn not_found_page() -> HttpResponse {
    html(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            None,
            "<h1>Not found</h1><p>There is nothing here.</p>\
<p><a href=\"/console/\">Go to the inbox</a></p>",
        ),
    )
}

async fn style(state: web::Data<AppState>) -> HttpResponse {
    if !state.config.console.enabled {
        return not_found_page();
    }
    secured(StatusCode::OK)
        .content_type("text/css; charset=utf-8")
        .body(STYLE)
}

/// `GET /console/static/NAME.HASH.mjs`: OpenPGP.js or the decryption page's script. Named by
/// content, so cached for a year; no session needed (they hold no data).
async fn script(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !state.config.console.enabled {
        return not_found_page();
    }
    match assets::find(req.path()) {
        Some(asset) => secured(StatusCode::OK)
            .content_type("text/javascript; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(asset.bytes.clone()),
        None => not_found_page(),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
}

/// Whether the request was made over TLS (directly, as the connection info says).
fn over_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// A `Set-Cookie` value for the console's path; `max_age_secs == 0` clears it.
fn set_cookie(req: &HttpRequest, name: &str, value: &str, max_age_secs: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/console/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age_secs {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if over_tls(req) {
        c.push_str("; Secure");
    }
    c
}

/// A state-changing request must come from this very origin: an `Origin` header, when present,
/// is `scheme://host` of this request, and `Sec-Fetch-Site`, when present, is `same-origin`.
pub(super) fn same_origin(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let fetch_site_ok = match headers.get("sec-fetch-site").map(|v| v.to_str()) {
        None => true,
        Some(Ok(site)) => site == "same-origin",
        Some(Err(_)) => false,
    };
    let origin_ok = match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => true,
        Some(Ok(origin)) => {
            let info = req.connection_info();
            origin.eq_ignore_ascii_case(&format!("{}://{}", info.scheme(), info.host()))
        }
        Some(Err(_)) => false,
    };
    // Without either header (an old browser, or not a browser), the CSRF token alone decides.
    fetch_site_ok && origin_ok
}

/// The live session of the request, with its token still configured and still holding `read`.
fn current(req: &HttpRequest, state: &AppState) -> Option<(String, Session)> {
    let id = cookie(req, COOKIE)?;
    let console = &state.config.console;
    let session = state.console.touch(
        &id,
        state.spool.now_ms(),
        minutes_ms(console.idle_minutes),
        minutes_ms(console.absolute_minutes),
    )?;
    let token = state.tokens.iter().find(|t| t.name == session.token)?;
    if !token.config.scopes.contains(&Scope::Read) {
        state.console.remove(&id);
        return None;
    }
    Some((id, session))
}

/// `GET /console/`: the inbox when signed in, else the sign-in page.
async fn inbox(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !state.config.console.enabled {
        return not_found_page();
    }
    match current(&req, &state) {
        Some((_, session)) => html(StatusCode::OK, forms_page(&state, &session)),
        None => sign_in_page(&req, StatusCode::OK, None),
    }
}

/// The sign-in page, with a fresh CSRF token in a cookie and in the form.
fn sign_in_page(req: &HttpRequest, status: StatusCode, problem: Option<&str>) -> HttpResponse {
    let csrf = random_hex();
    let alert = problem
        .map(|p| {
            format!(
                "<p class=\"alert\" role=\"alert\" id=\"problem\">{}</p>",
                escape(p)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1>{alert}<p>Paste an API token that may read submissions (scope \
<code>read</code>). The token is exchanged for a session; it is not stored in the browser.</p>\
<form method=\"post\" action=\"/console/sign-in\" id=\"sign-in\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"token\">API token</label>\
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>\
<button type=\"submit\">Sign in</button></form>"
    );
    secured(status)
        .insert_header((
            header::SET_COOKIE,
            set_cookie(req, LOGIN_COOKIE, &csrf, None),
        ))
        .content_type("text/html; charset=utf-8")
        .body(page("Sign in", None, &body))
}

#[derive(Deserialize)]
pub struct SignIn {
    csrf: String,
    token: String,
}

/// `POST /console/sign-in`: a token with `read` becomes a session.
async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignIn>,
) -> HttpResponse {
    if !state.config.console.enabled {
        return not_found_page();
    }
    if let Some(addr) = req.peer_addr().map(|a| a.ip()) {
        if state
            .rate_limiter
            .check(addr, "console", state.config.limits.api_rate_per_minute)
            .is_err()
        {
            return sign_in_page(
                &req,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many attempts. Wait a minute and try again."),
            );
        }
    }
    let csrf_ok = cookie(&req, LOGIN_COOKIE).is_some_and(|c| same(&c, &form.csrf));
    if !csrf_ok || !same_origin(&req) {
        tracing::warn!("console sign-in refused: cross-site or without its CSRF token");
        return forbidden_page();
    }
    let Some(known) = crate::http::lookup_token(&state.tokens, form.token.trim()) else {
        tracing::info!("console sign-in refused: unknown token");
        return sign_in_page(
            &req,
            StatusCode::UNAUTHORIZED,
            Some("That token was not accepted. Check it and try again."),
        );
    };
    if !known.config.scopes.contains(&Scope::Read) {
        tracing::info!(token = %known.name, "console sign-in refused: no read scope");
        return sign_in_page(
            &req,
            StatusCode::FORBIDDEN,
            Some("That token may not read submissions (it lacks the read scope)."),
        );
    }
    let id = state.console.create(&known.name, state.spool.now_ms());
    tracing::info!(token = %known.name, "console sign-in");
    secured(StatusCode::SEE_OTHER)
        .insert_header((header::LOCATION, "/console/"))
        .append_header((header::SET_COOKIE, set_cookie(&req, COOKIE, &id, None)))
        .append_header((
            header::SET_COOKIE,
            set_cookie(&req, LOGIN_COOKIE, "", Some(0)),
        ))
        .finish()
}

#[derive(Deserialize)]
pub struct Csrf {
    pub(super) csrf: String,
}

/// `POST /console/sign-out`: ends the session (its cookie no longer works anywhere).
async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Csrf>,
) -> HttpResponse {
    if !state.config.console.enabled {
        return not_found_page();
    }
    let Some((id, session)) = current(&req, &state) else {
        return secured(StatusCode::SEE_OTHER)
            .insert_header((header::LOCATION, "/console/"))
            .finish();
    };
    if !same(&session.csrf, &form.csrf) || !same_origin(&req) {
        tracing::warn!(token = %session.token, "console sign-out refused: CSRF check failed");
        return forbidden_page();
    }
    state.console.remove(&id);
    tracing::info!(token = %session.token, "console sign-out");
    secured(StatusCode::SEE_OTHER)
        .insert_header((header::LOCATION, "/console/"))
        .insert_header((header::SET_COOKIE, set_cookie(&req, COOKIE, "", Some(0))))
        .finish()
}

pub(super) fn forbidden_page() -> HttpResponse {
    html(
        StatusCode::FORBIDDEN,
        page(
            "Request refused",
            None,
            "<h1>Request refused</h1><p role=\"alert\" id=\"problem\">This request did not come \
from the console's own page (its security check failed), so nothing was done.</p>\
<p><a href=\"/console/\">Back to the console</a></p>",
        ),
    )
}

/// The inbox's first page: the forms the token may read, with their at-rest status.
fn forms_page(state: &AppState, session: &Session) -> String {
    let config = &state.config;
    let Some(token) = state.tokens.iter().find(|t| t.name == session.token) else {
        return page("Inbox", Some(session), "<h1>Inbox</h1>");
    };
    let mut rows = String::new();
    for (name, form) in config
        .forms
        .iter()
        .filter(|(n, _)| token.config.allows_form(n))
    {
        let at_rest = config.form_at_rest(form);
        let weakest = secureform_contract::AtRest::weakest(at_rest.iter().map(|(_, a)| a));
        let (class, label) = match weakest {
            secureform_contract::AtRestLevel::Encrypted => ("ok", "Encrypted at rest"),
            secureform_contract::AtRestLevel::Weak => ("warn", "Weakly encrypted at rest"),
            secureform_contract::AtRestLevel::Plaintext => ("bad", "Not encrypted at rest"),
        };
        rows.push_str(&format!(
            "<tr><th scope=\"row\" class=\"form-name\"><a href=\"/console/forms/{name}\">{name}</a></th><td>{}</td>\
<td><span class=\"badge {class}\">{label}</span><br><small>{}</small></td></tr>",
            escape(&form.sinks.join(", ")),
            at_rest
                .iter()
                .map(|(sink, a)| format!("{}: {}", escape(sink), escape(&a.detail)))
                .collect::<Vec<_>>()
                .join("<br>"),
            name = escape(name),
        ));
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"3\">This token may read no form.</td></tr>".to_owned();
    }
    page(
        "Inbox",
        Some(session),
        &format!(
            "<h1>Inbox</h1><p>Signed in with the token <strong id=\"token-name\">{}</strong>.</p>\
<table id=\"forms\"><caption>Forms you may read</caption><thead><tr><th scope=\"col\">Form</th>\
<th scope=\"col\">Delivers to</th><th scope=\"col\">At rest</th></tr></thead>\
<tbody>{rows}</tbody></table>",
            escape(&session.token)
        ),
    )
}

/// A console page: the shared head, a header with sign-out when signed in, and `body`.
fn page(title: &str, session: Option<&Session>, body: &str) -> String {
    page_with_head(title, session, body, "")
}

/// The `<script>` elements of the decryption page: OpenPGP.js first, then the page's script
/// (which imports it: the import finds the module the first element fetched and checked), each
/// with its `integrity`. To be served under [`DECRYPT_CSP`].
fn decrypt_scripts() -> String {
    let a = assets::assets();
    [&a.openpgp, &a.decrypt]
        .iter()
        .map(|s| {
            format!(
                "<script type=\"module\" src=\"{}\" integrity=\"{}\"></script>",
                escape(&s.path),
                escape(&s.integrity)
            )
        })
        .collect()
}

/// [`page`] with more elements in its `<head>`.
fn page_with_head(title: &str, session: Option<&Session>, body: &str, head: &str) -> String {
    let nav = match session {
        Some(s) => format!(
            "<form method=\"post\" action=\"/console/sign-out\" id=\"sign-out\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
            escape(&s.csrf)
        ),
        None => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><meta name=\"referrer\" content=\"same-origin\">\
<title>{} · SecureForm console</title><link rel=\"stylesheet\" href=\"/console/static/console.css\">\
{head}</head><body><a class=\"skip\" href=\"#main\">Skip to content</a><header><span class=\"brand\">\
SecureForm console</span>{nav}</header><main id=\"main\">{body}</main></body></html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_run_no_script_and_load_only_the_stylesheet() {
        let session = Session::for_test("<b>", "\"><script>");
        for html in [
            page("<script>alert(1)</script>", None, "x"),
            page("t", Some(&session), "y"),
        ] {
            assert!(!html.contains("<script"), "{html}");
            for src in html.split("href=\"").skip(1) {
                assert!(src.starts_with('/') || src.starts_with('#'), "{src}");
            }
        }
        assert!(CSP.contains("frame-ancestors 'none'") && !CSP.contains("unsafe"));
    }

    #[test]
    fn the_decryption_page_runs_only_its_two_checked_module_scripts() {
        let html = page_with_head("t", None, "x", &decrypt_scripts());
        let tags: Vec<&str> = html.split("<script").skip(1).collect();
        assert_eq!(tags.len(), 2, "{html}");
        for tag in tags {
            let tag = tag.split('>').next().unwrap();
            assert!(tag.contains(" type=\"module\""), "{tag}");
            assert!(tag.contains(" src=\"/console/static/"), "{tag}");
            assert!(tag.contains(" integrity=\"sha384-"), "{tag}");
        }
        // Exactly this origin's scripts; nothing inline, nothing evaluated, no WebAssembly.
        assert!(DECRYPT_CSP.contains("script-src 'self';"));
        assert!(!DECRYPT_CSP.contains("unsafe"), "{DECRYPT_CSP}");
        assert!(DECRYPT_CSP.contains("require-trusted-types-for 'script'"));
        assert!(DECRYPT_CSP.contains("frame-ancestors 'none'"));
        assert!(!CSP.contains("script-src"));
    }

    #[test]
    fn the_config_is_off_by_default() {
        let c: ConsoleConfig = toml::from_str("").unwrap();
        assert!(!c.enabled);
        assert_eq!((c.idle_minutes, c.absolute_minutes), (30, 720));
        assert!(c.list_summary);
        let c: ConsoleConfig = toml::from_str("list_summary = false").unwrap();
        assert!(!c.list_summary);
        assert!(toml::from_str::<ConsoleConfig>("enabled = true\nbogus = 1").is_err());
    }
}
