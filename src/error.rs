//! The one error a client sees: an HTTP status, a stable machine-readable code, and a message
//! for a person. Messages may name a field (names are part of the form's design) but never carry
//! a value, a file name or file content.

use actix_web::http::StatusCode;

/// Every `code` the service answers with: (code, HTTP status, one-line meaning). The single
/// source of the catalogue: `openapi.yaml` (the `Error` schema's `code` enum and table) and the
/// README's "Error codes" table are checked against it by this module's tests, and so is every
/// code literal handed to a [`ClientError`] constructor in `src/`.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "body_too_large",
        413,
        "The body is larger than `max_body_bytes`.",
    ),
    (
        "body_incomplete",
        400,
        "The body ended before its declared length, or the connection failed mid-upload.",
    ),
    (
        "body_timeout",
        408,
        "The body arrived too slowly (under the minimum upload pace).",
    ),
    (
        "multipart_malformed",
        400,
        "The multipart body could not be parsed.",
    ),
    (
        "file_too_large",
        413,
        "An uploaded file is larger than the form's per-file limit.",
    ),
    (
        "too_many_files",
        413,
        "The submission carries more files than the form allows.",
    ),
    (
        "too_many_fields",
        413,
        "The submission has more values than the form allows.",
    ),
    (
        "field_too_large",
        413,
        "A field value is larger than the form allows.",
    ),
    (
        "field_name_too_large",
        413,
        "A field name is longer than the form allows.",
    ),
    (
        "fields_too_large",
        413,
        "The fields together are larger than the form allows.",
    ),
    (
        "malformed_json",
        400,
        "The JSON body is not well-formed JSON.",
    ),
    (
        "invalid_json_value",
        400,
        "The JSON body is not one object of strings, numbers, booleans or arrays of them.",
    ),
    (
        "invalid_charset",
        400,
        "The body is not valid text in its charset.",
    ),
    (
        "unsupported_media_type",
        415,
        "The body's Content-Type is not one the service reads.",
    ),
    (
        "required_field_missing",
        422,
        "A field the form requires is missing or empty.",
    ),
    ("unknown_form", 404, "There is no form of that name."),
    (
        "origin_not_allowed",
        403,
        "The form does not accept submissions from the request's Origin.",
    ),
    (
        "invalid_idempotency_key",
        400,
        "The Idempotency-Key header is not a valid key.",
    ),
    (
        "idempotency_key_reused",
        422,
        "The Idempotency-Key was used with a different request in the last 48 hours.",
    ),
    (
        "captcha_not_configured",
        404,
        "The form has no proof-of-work (ALTCHA) challenge to issue.",
    ),
    ("captcha_expired", 422, "The captcha challenge has expired."),
    (
        "captcha_replayed",
        422,
        "The captcha solution was already used.",
    ),
    (
        "captcha_failed",
        422,
        "The captcha was missing or refused (see `reason`).",
    ),
    (
        "captcha_unavailable",
        503,
        "The captcha verifier could not be reached; nothing was kept.",
    ),
    (
        "submitted_too_fast",
        422,
        "The form was submitted sooner after its challenge than a person could.",
    ),
    ("pdf_malformed", 400, "The PDF could not be read."),
    ("fdf_malformed", 400, "The FDF body could not be read."),
    ("xfdf_malformed", 400, "The XFDF body could not be read."),
    (
        "xfdf_dtd_forbidden",
        400,
        "The XFDF body carries a DTD, which is refused.",
    ),
    (
        "xfa_malformed",
        400,
        "The PDF's XFA form data could not be read.",
    ),
    (
        "pdf_too_large",
        413,
        "The PDF is larger than the PDF limits allow.",
    ),
    (
        "pdf_too_many_objects",
        413,
        "The PDF has more objects than the PDF limits allow.",
    ),
    (
        "pdf_too_deep",
        400,
        "The PDF nests objects deeper than the PDF limits allow.",
    ),
    (
        "pdf_decompression_limit",
        413,
        "A PDF stream decompresses to more than the PDF limits allow.",
    ),
    (
        "pdf_reference_loop",
        400,
        "The PDF's object references form a loop.",
    ),
    (
        "pdf_timeout",
        400,
        "The PDF took longer to read than the PDF limits allow.",
    ),
    ("pdf_encrypted", 422, "The PDF is password-protected."),
    ("no_acroform", 422, "The PDF holds no AcroForm fields."),
    (
        "xfa_only",
        422,
        "The PDF is an XFA-only form with no filled-in data.",
    ),
    (
        "pdf_busy",
        503,
        "The server is reading other PDF forms; try again (Retry-After).",
    ),
    (
        "rate_limited",
        429,
        "Too many requests from this address; try again (Retry-After).",
    ),
    (
        "spool_unavailable",
        503,
        "The spool cannot store the submission now; nothing was kept.",
    ),
    (
        "unauthorized",
        401,
        "No bearer token, or one that is not configured.",
    ),
    (
        "forbidden",
        403,
        "The token lacks the scope or form the call needs.",
    ),
    (
        "not_found",
        404,
        "There is nothing at this path, or no such item.",
    ),
    (
        "method_not_allowed",
        405,
        "The path does not accept this method.",
    ),
    (
        "invalid_query",
        400,
        "A query parameter is unknown, repeated or malformed.",
    ),
    ("invalid_since", 400, "`since` is not an RFC 3339 time."),
    (
        "sink_required",
        400,
        "More than one Documents sink is configured; name one with `sink`.",
    ),
    (
        "document_damaged",
        500,
        "The stored item failed its integrity check.",
    ),
    (
        "internal",
        500,
        "An unexpected server-side failure; the message names no data.",
    ),
];

/// The catalogue's entry for `code`: its status and meaning.
pub fn error_code(code: &str) -> Option<(u16, &'static str)> {
    ERROR_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|&(_, status, meaning)| (status, meaning))
}

/// A refusal of a request, shaped later as JSON, an HTML page or an FDF `/Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 429 and some 503s: seconds until a retry may succeed (the Retry-After header).
    pub retry_after_secs: Option<u64>,
    /// A finer machine-readable reason under `code` (e.g. `hostname_mismatch` under
    /// `captcha_failed`), sent as `error.reason` in JSON answers. Never carries submitted data.
    pub reason: Option<&'static str>,
}

impl ClientError {
    /// An error with `code`, which must be in [`ERROR_CODES`] with this `status` (checked in
    /// debug builds; the unit tests check every literal code in `src/`).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        debug_assert_eq!(
            error_code(code).map(|(s, _)| s),
            Some(status.as_u16()),
            "error code `{code}` is not in ERROR_CODES with status {status}"
        );
        ClientError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            reason: None,
        }
    }

    /// The same error with a finer reason (`error.reason`).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// 400: the body is not what its type says.
    pub fn malformed(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 413: over a configured limit.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 422: well-formed, but fails the form's rules.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429: over the rate limit; `retry_after` goes into the Retry-After header.
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs() + 1;
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests from this address; try again in {secs} s."),
        );
        err.retry_after_secs = Some(secs);
        err
    }

    /// 503: the spool cannot take the submission now; nothing was accepted.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "spool_unavailable",
            "The submission could not be stored safely right now; nothing was kept. Please try again.",
        )
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    //! The catalogue is kept true: every code in `src/` is in [`ERROR_CODES`] with the status it
    //! is answered with, and `openapi.yaml` and the README list exactly the catalogue.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::*;

    fn catalogue() -> BTreeMap<String, (u16, String)> {
        ERROR_CODES
            .iter()
            .map(|&(c, s, m)| (c.to_owned(), (s, m.to_owned())))
            .collect()
    }

    /// Every `.rs` file under `dir`, sorted.
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| unreachable!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }

    /// The string literal at the start of `s` (after whitespace), if there is one.
    fn literal(s: &str) -> Option<&str> {
        let s = s.trim_start().strip_prefix('"')?;
        s.find('"').map(|end| &s[..end])
    }

    /// The status an actix `StatusCode::NAME` expression stands for.
    fn status_of(expr: &str) -> Option<u16> {
        let name = expr.trim().rsplit("::").next()?;
        Some(match name {
            "BAD_REQUEST" => 400,
            "UNAUTHORIZED" => 401,
            "FORBIDDEN" => 403,
            "NOT_FOUND" => 404,
            "METHOD_NOT_ALLOWED" => 405,
            "REQUEST_TIMEOUT" => 408,
            "PAYLOAD_TOO_LARGE" => 413,
            "UNSUPPORTED_MEDIA_TYPE" => 415,
            "UNPROCESSABLE_ENTITY" => 422,
            "TOO_MANY_REQUESTS" => 429,
            "INTERNAL_SERVER_ERROR" => 500,
            "SERVICE_UNAVAILABLE" => 503,
            _ => return None,
        })
    }

    /// A code found in `src/`: the code, its status when the source states it, and where.
    type Found = (String, Option<u16>, String);

    /// Each code found in `src/` (outside this file) with the status it is sent with when the
    /// source states one, and where it was found.
    fn codes_in_source() -> (Vec<Found>, Vec<String>) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        rust_files(&root.join("src"), &mut files);
        let mut found = Vec::new();
        let mut problems = Vec::new();
        let constructors = [
            ("ClientError::new(", None),
            ("ClientError::malformed(", Some(400)),
            ("ClientError::too_large(", Some(413)),
            ("ClientError::invalid(", Some(422)),
        ];
        for path in files {
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            if name == "src/error.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let at = |offset: usize| format!("{name}:{}", text[..offset].lines().count());
            for (needle, fixed) in constructors {
                for (offset, _) in text.match_indices(needle) {
                    let mut args = &text[offset + needle.len()..];
                    let mut status = fixed;
                    if fixed.is_none() {
                        let comma = args.find(',').unwrap_or(0);
                        status = status_of(&args[..comma]);
                        args = &args[comma + 1..];
                    }
                    match literal(args) {
                        Some(code) => found.push((code.to_owned(), status, at(offset))),
                        // A code computed by a `code()` method, whose literals are read below.
                        None if args.trim_start().starts_with("e.code()") => {}
                        None => problems.push(format!(
                            "{}: the code given to {needle}…) is not a string literal",
                            at(offset)
                        )),
                    }
                }
            }
            // `fn code(&self) -> &'static str` methods (the parsers' and rules' errors): their arms;
            // their statuses are checked in src/http/refusal.rs.
            for (offset, _) in text.match_indices("fn code(&self) -> &'static str") {
                let body = &text[offset..];
                let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
                for (arm, _) in body.match_indices("=> \"") {
                    if let Some(code) = literal(&body[arm + 2..]) {
                        found.push((code.to_owned(), None, at(offset + arm)));
                    }
                }
            }
            // Error bodies written as JSON by hand (`/readyz`).
            for (offset, _) in text.match_indices("\"code\": \"") {
                if let Some(code) = literal(&text[offset + "\"code\":".len()..]) {
                    found.push((code.to_owned(), None, at(offset)));
                }
            }
        }
        let own = [
            ClientError::rate_limited(std::time::Duration::ZERO),
            ClientError::unavailable(),
        ];
        for err in own {
            found.push((
                err.code.to_owned(),
                Some(err.status.as_u16()),
                "src/error.rs".to_owned(),
            ));
        }
        (found, problems)
    }

    #[test]
    fn the_catalogue_is_well_formed() {
        let mut seen = BTreeSet::new();
        for &(code, status, meaning) in ERROR_CODES {
            assert!(seen.insert(code), "`{code}` is listed twice in ERROR_CODES");
            assert!(
                !code.is_empty()
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "`{code}` is not snake_case"
            );
            assert!(
                (400..600).contains(&status),
                "`{code}`: {status} is not an error status"
            );
            assert!(
                !meaning.is_empty() && !meaning.contains('|') && !meaning.contains('\n'),
                "`{code}`: the meaning must be one line without `|`"
            );
        }
    }

    #[test]
    fn every_code_in_the_source_is_in_the_catalogue_and_every_listed_code_is_used() {
        let (found, mut problems) = codes_in_source();
        let catalogue = catalogue();
        for (code, status, at) in &found {
            match (catalogue.get(code), status) {
                (None, _) => problems.push(format!("{at}: `{code}` is not in ERROR_CODES")),
                (Some((listed, _)), Some(status)) if listed != status => problems.push(format!(
                    "{at}: `{code}` is sent with {status} but ERROR_CODES says {listed}"
                )),
                _ => {}
            }
        }
        let used: BTreeSet<&str> = found.iter().map(|(c, _, _)| c.as_str()).collect();
        for code in catalogue.keys() {
            if !used.contains(code.as_str()) {
                problems.push(format!(
                    "`{code}` is in ERROR_CODES but no code in src/ sends it"
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    fn read(relative: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| unreachable!("{}: {e}", path.display()))
    }

    /// The rows of a `| code | status | meaning |` Markdown table in `text`.
    fn table_rows(text: &str) -> Vec<(String, u16, String)> {
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                let [code, status, meaning] = cells[..] else {
                    return None;
                };
                Some((
                    code.trim_matches('`').to_owned(),
                    status.parse().ok()?,
                    meaning.to_owned(),
                ))
            })
            .collect()
    }

    /// Missing and extra codes, and rows that differ, of `rows` against the catalogue.
    fn compare(what: &str, rows: &[(String, u16, String)]) -> Vec<String> {
        let catalogue = catalogue();
        let mut problems = Vec::new();
        let listed: BTreeMap<&str, (u16, &str)> = rows
            .iter()
            .map(|(c, s, m)| (c.as_str(), (*s, m.as_str())))
            .collect();
        if listed.len() != rows.len() {
            problems.push(format!("{what}: a code is listed more than once"));
        }
        let missing: Vec<&str> = catalogue
            .keys()
            .map(String::as_str)
            .filter(|c| !listed.contains_key(c))
            .collect();
        let extra: Vec<&str> = listed
            .keys()
            .copied()
            .filter(|c| !catalogue.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("{what} lacks {missing:?}"));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "{what} lists {extra:?}, which ERROR_CODES does not"
            ));
        }
        for (code, (status, meaning)) in &listed {
            if let Some((s, m)) = catalogue.get(*code) {
                if s != status || m != meaning {
                    problems.push(format!(
                        "{what}: `{code}` is `{status} | {meaning}`, ERROR_CODES has `{s} | {m}`"
                    ));
                }
            }
        }
        problems
    }

    #[test]
    fn openapi_lists_exactly_the_catalogue() {
        let yaml = read("openapi.yaml");
        let schema = &yaml[yaml
            .find("\n    Error:\n")
            .unwrap_or_else(|| unreachable!("openapi.yaml has no `Error` schema"))..];
        let code = &schema[schema
            .find("\n            code:\n")
            .unwrap_or_else(|| unreachable!("the Error schema has no `code`"))..];
        let code = &code[..code.find("\n            message:").unwrap_or(code.len())];
        let open = code
            .find("enum: [")
            .unwrap_or_else(|| unreachable!("the Error schema's `code` has no `enum: [`"));
        let list = &code[open + "enum: [".len()..];
        let list = &list[..list.find(']').unwrap_or(list.len())];
        let enum_codes: Vec<String> = list
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        let enum_set: BTreeSet<&str> = enum_codes.iter().map(String::as_str).collect();
        let listed: BTreeSet<&str> = ERROR_CODES.iter().map(|(c, _, _)| *c).collect();
        let mut problems = Vec::new();
        if enum_set.len() != enum_codes.len() {
            problems.push("openapi.yaml's `code` enum lists a code twice".to_owned());
        }
        let missing: Vec<&&str> = listed.difference(&enum_set).collect();
        let extra: Vec<&&str> = enum_set.difference(&listed).collect();
        if !missing.is_empty() {
            problems.push(format!("openapi.yaml's `code` enum lacks {missing:?}"));
        }
        if !extra.is_empty() {
            problems.push(format!(
                "openapi.yaml's `code` enum lists {extra:?}, which ERROR_CODES does not"
            ));
        }
        problems.extend(compare(
            "openapi.yaml's `code` description table",
            &table_rows(code),
        ));
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_readme_lists_exactly_the_catalogue() {
        let readme = read("README.md");
        let start = readme
            .find("\n## Error codes\n")
            .unwrap_or_else(|| unreachable!("the README has no `## Error codes` section"));
        let section = &readme[start + 1..];
        let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
        let problems = compare("README's Error codes table", &table_rows(section));
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
