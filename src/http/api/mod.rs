//! The integrator API under `/api/v1/`: bearer tokens with scopes and forms, submissions with
//! idempotency keys, delivery states, retries, the Documents store and its audit log.
//!
//! Tokens are configured as the SHA-256 of the token (`[tokens.NAME] sha256 = "..."`), so the
//! configuration holds nothing that grants access. A presented token is hashed and compared
//! with every configured hash in constant time. No token or a wrong one is 401; a token outside
//! its scope or forms is 403.

mod audit;
mod documents;
mod erasures;
mod submissions;

pub(crate) use erasures::erase_documents_for;
pub(crate) use submissions::erase_spooled;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AppState;
use crate::config::{Scope, TokenConfig};
use crate::error::ClientError;

/// A token configured in the service (its hash decoded when the configuration was loaded).
pub struct KnownToken {
    pub name: String,
    pub config: TokenConfig,
}

/// The configured tokens.
pub fn known_tokens(config: &crate::config::Config) -> Vec<KnownToken> {
    config
        .tokens
        .iter()
        .map(|(name, t)| KnownToken {
            name: name.clone(),
            config: t.clone(),
        })
        .collect()
}

/// The caller, once authenticated.
pub struct Caller<'a> {
    pub name: &'a str,
    pub token: &'a TokenConfig,
}

impl Caller<'_> {
    /// 403 unless the token may touch `form`.
    pub fn check_form(&self, form: &str) -> Result<(), ClientError> {
        if self.token.allows_form(form) {
            Ok(())
        } else {
            Err(forbidden("This token may not touch that form."))
        }
    }
}

fn forbidden(message: &str) -> ClientError {
    ClientError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn unauthorized() -> ClientError {
    ClientError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "A valid bearer token is required (Authorization: Bearer <token>).",
    )
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is matched without regard
/// to case (RFC 9110 11.1: `bearer`, `BEARER` are the same scheme); spaces around the token are
/// ignored.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The configured token whose hash matches `presented` (every hash compared, in constant time).
pub fn lookup_token<'a>(tokens: &'a [KnownToken], presented: &str) -> Option<&'a KnownToken> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for known in tokens {
        if known.config.sha256.matches(&digest) {
            found = Some(known);
        }
    }
    found
}

/// Authenticates the request, applies the API rate limit, and checks that the token has one of
/// `scopes`.
pub fn guard<'a>(
    req: &HttpRequest,
    state: &'a AppState,
    scopes: &[Scope],
) -> Result<Caller<'a>, ClientError> {
    if let Some(addr) = req.peer_addr().map(|a| a.ip()) {
        state
            .rate_limiter
            .check(addr, "api", state.config.limits.api_rate_per_minute)
            .map_err(ClientError::rate_limited)?;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or_else(unauthorized)?;
    let known = lookup_token(&state.tokens, presented).ok_or_else(unauthorized)?;
    if !scopes.iter().any(|s| known.config.scopes.contains(s)) {
        return Err(forbidden(
            "This token does not have the scope this call needs.",
        ));
    }
    Ok(Caller {
        name: &known.name,
        token: &known.config,
    })
}

/// The JSON error answer of the API.
pub fn error(err: &ClientError) -> HttpResponse {
    let mut resp = HttpResponse::build(err.status);
    if err.status == StatusCode::UNAUTHORIZED {
        resp.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    if let Some(secs) = err.retry_after_secs {
        resp.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    resp.insert_header((header::CACHE_CONTROL, "no-store"))
        .json(crate::http::respond::error_body(err))
}

/// Turns a handler's result into an answer.
pub fn reply(result: Result<HttpResponse, ClientError>) -> HttpResponse {
    result.unwrap_or_else(|e| error(&e))
}

/// A 404 in the API's shape.
pub fn not_found(what: &str) -> ClientError {
    ClientError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No such {what}."),
    )
}

/// A 500 whose detail stays in the log.
pub fn internal(context: &str, e: impl std::fmt::Display) -> ClientError {
    tracing::error!(error = %e, "{context}");
    ClientError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Something went wrong on the server; it has been logged.",
    )
}

/// `GET /api/v1/forms`: the token's forms, their sinks and each sink's at-rest status.
async fn forms(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    reply((|| {
        let caller = guard(&req, &state, &[Scope::Read, Scope::Submit, Scope::Admin])?;
        let config = &state.config;
        let forms: Vec<_> = config
            .forms
            .iter()
            .filter(|(name, _)| caller.token.allows_form(name))
            .map(|(name, form)| {
                let sinks: Vec<_> = config
                    .form_at_rest(form)
                    .into_iter()
                    .map(|(sink, at_rest)| {
                        let kind = config.sinks.get(&sink).map(|s| s.kind()).unwrap_or("");
                        json!({"name": sink, "type": kind, "at_rest": at_rest})
                    })
                    .collect();
                let levels: Vec<_> = config
                    .form_at_rest(form)
                    .into_iter()
                    .map(|(_, a)| a)
                    .collect();
                let retain_days = config.retain_days(name);
                json!({
                    "name": name,
                    "sinks": sinks,
                    "retain_days": retain_days,
                    "retention": crate::retention::statement(retain_days),
                    "at_rest": secureform_contract::AtRest::weakest(&levels),
                    "warnings": state.warnings(name),
                })
            })
            .collect();
        Ok(HttpResponse::Ok().json(json!({ "forms": forms })))
    })())
}

/// Registers the API's routes; a method a path does not take is 405 with `Allow`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use super::fallback::not_allowed;
    let get = |path: &str, route: actix_web::Route| {
        web::resource(path)
            .route(route)
            .default_service(not_allowed("GET"))
    };
    cfg.service(
        web::scope("/api/v1")
            .service(get("/forms", web::get().to(forms)))
            .service(
                web::resource("/forms/{form}/submissions")
                    .route(web::post().to(submissions::create))
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/submissions/{id}")
                    .route(web::get().to(submissions::status))
                    .route(web::delete().to(submissions::erase))
                    .default_service(not_allowed("GET, DELETE")),
            )
            .service(
                web::resource("/submissions/{id}/retry")
                    .route(web::post().to(submissions::retry))
                    .default_service(not_allowed("POST")),
            )
            .service(get("/documents", web::get().to(documents::list)))
            .service(
                web::resource("/documents/{id}")
                    .route(web::get().to(documents::get))
                    .route(web::delete().to(erasures::delete))
                    .default_service(not_allowed("GET, DELETE")),
            )
            .service(get(
                "/documents/{id}/files/{n}",
                web::get().to(documents::file),
            ))
            .service(get("/audit", web::get().to(audit::audit)))
            .service(get("/erasures", web::get().to(erasures::report)))
            .service(
                web::resource("/subjects")
                    .route(web::delete().to(submissions::erase_subject))
                    .default_service(not_allowed("DELETE")),
            )
            .default_service(web::to(|| async { error(&not_found("API endpoint")) })),
    );
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR   abc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "abc"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
