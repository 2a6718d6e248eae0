//! CORS for `/f/{form}`, so that a page on an allowed origin can post with `fetch()` and read the
//! JSON answer. Only origins in the form's `allowed_origins` get an allowance; any other origin
//! gets no CORS headers at all, so its script cannot read the answer. Plain HTML form posts
//! (navigations) need no CORS.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use super::AppState;
use crate::config::FormConfig;

/// The request's Origin, when the form allows it.
pub fn allowed_origin<'a>(req: &'a HttpRequest, form: &FormConfig) -> Option<&'a str> {
    let origin = req.headers().get(header::ORIGIN)?.to_str().ok()?;
    form.allowed_origins
        .iter()
        .any(|o| o.matches(origin))
        .then_some(origin)
}

/// Adds the allowance for an allowed origin to an answer.
pub fn decorate(resp: &mut HttpResponse, origin: Option<&str>) {
    let headers = resp.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Location"),
        );
    }
}

/// `OPTIONS /f/{form}`: the preflight. An allowed origin gets the methods and headers a
/// `fetch()` post needs; any other gets a 204 with no allowance.
pub async fn preflight(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut resp = HttpResponse::NoContent().finish();
    let Some(form) = state.config.forms.get(path.as_str()) else {
        return resp;
    };
    let origin = allowed_origin(&req, form);
    decorate(&mut resp, origin);
    if origin.is_some() {
        let headers = resp.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Accept, Idempotency-Key"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    resp
}
