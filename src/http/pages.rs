//! The built-in pages for browsers: the thank-you page and the error page. Small, accessible and
//! self-contained (inline style, no external assets, no script). A Content-Security-Policy in
//! each page makes the browser hold it to that: nothing is loaded and no script runs, even if
//! some text escaped the escaping. The thank-you page's URL carries the submission id, so the
//! pages are kept out of search indexes and send no Referer.

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
background:#f6f7f9;color:#1b1f24;margin:0;padding:2rem 1rem;line-height:1.5}\
main{max-width:36rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem 2.25rem;\
box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.5rem;margin:0 0 .75rem}\
.ok h1{color:#1a6b3c}.err h1{color:#a4161a}code{background:#eef0f3;padding:.15rem .4rem;\
border-radius:4px;font-size:.95em;word-break:break-all;user-select:all}\
@media (prefers-color-scheme:dark){body{background:#16181c;color:#e6e8eb}\
main{background:#22252a;box-shadow:none}.ok h1{color:#7ad19b}.err h1{color:#ff8a8a}\
code{background:#33373e}}";

/// No script, nothing loaded from anywhere: only the inline style may apply.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

fn page(class: &str, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><style>{STYLE}</style></head>\
<body><main class=\"{class}\">{body}</main></body></html>\n",
        title = escape(title),
    )
}

/// The thank-you page, with the submission id as the person's receipt, and a link back to the
/// form's page when `back` names one (see [`same_origin_referer`]).
pub fn thanks(
    title: Option<&str>,
    message: Option<&str>,
    id: Option<&str>,
    back: Option<&str>,
    retention: Option<&str>,
) -> String {
    let title = title.unwrap_or("Thank you");
    let message = message.unwrap_or("Your submission was received and stored securely.");
    let receipt = match id {
        Some(id) => format!(
            "<p>Your reference: <code id=\"submission-id\">{}</code></p>\
<p>Keep it if you need to ask about your submission.</p>",
            escape(id)
        ),
        None => String::new(),
    };
    let back = match back {
        Some(url) => format!(
            "<p><a id=\"back-to-form\" href=\"{}\">Back to the form</a></p>",
            escape(url)
        ),
        None => String::new(),
    };
    let retention = match retention {
        Some(text) => format!("<p id=\"retention\">{}</p>", escape(text)),
        None => String::new(),
    };
    page(
        "ok",
        title,
        &format!(
            "<h1>{}</h1><p>{}</p>{receipt}{retention}{back}",
            escape(title),
            escape(message)
        ),
    )
}

/// The page a link back may point to: the `Referer` when it is an `http` or `https` URL of
/// this very origin (`scheme://host` as the request reached the service), else nothing. A page
/// on another origin is not linked: browsers send only the origin there, and a link to
/// anywhere a request names would make the thank-you page an open redirect.
pub fn same_origin_referer<'a>(referer: &'a str, scheme: &str, host: &str) -> Option<&'a str> {
    let rest = referer.strip_prefix(scheme)?.strip_prefix("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let same = rest.get(..authority_end)?.eq_ignore_ascii_case(host);
    let printable = referer.chars().all(|c| c.is_ascii_graphic());
    (same && printable && matches!(scheme, "http" | "https")).then_some(referer)
}

/// The service's home page: its name, version and where to go next. No data.
pub fn home(version: &str) -> String {
    page(
        "ok",
        "SecureForm",
        &format!(
            "<h1>SecureForm {}</h1><p>This service receives form submissions and keeps them \
encrypted at rest. Forms post to <code>/f/FORM</code>.</p><ul>\
<li><a href=\"/healthz\">/healthz</a>: is the service up</li>\
<li><a href=\"/readyz\">/readyz</a>: can it accept submissions</li>\
<li><a href=\"/openapi.yaml\">/openapi.yaml</a>: the HTTP interface</li></ul>",
            escape(version)
        ),
    )
}

/// The error page: what went wrong, in words a person can act on.
pub fn error(status: u16, message: &str) -> String {
    let (title, next) = if status >= 500 {
        (
            "Please try again later",
            "Nothing was stored. Go back to the form with your browser\u{2019}s Back button and \
send it again in a few minutes.",
        )
    } else {
        (
            "The form could not be sent",
            "Go back to the form with your browser\u{2019}s Back button (what you typed is \
usually still there), correct it, and send it again.",
        )
    };
    page(
        "err",
        title,
        &format!(
            "<h1>{title}</h1><p role=\"alert\" id=\"error-message\">{}</p><p>{next}</p>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_it_shows() {
        let html = thanks(
            Some("<T>"),
            Some("a & b"),
            Some("\"><script>"),
            Some("http://h/\"><script>"),
            Some("<kept>"),
        );
        assert!(html.contains("&lt;T&gt;") && html.contains("a &amp; b"));
        assert!(!html.contains("<script>"));
        assert!(error(422, "<x>").contains("&lt;x&gt;"));
    }

    #[test]
    fn pages_load_nothing_and_run_nothing() {
        for html in [
            thanks(None, None, None, None, None),
            error(422, "The field \u{201c}email\u{201d} is required."),
        ] {
            assert!(html.contains("default-src 'none'"));
            assert!(html.contains("<html lang=\"en\">") && html.contains("<main"));
            for banned in ["<script", "javascript:", "src=", "href=", "url("] {
                assert!(!html.contains(banned), "{banned} in {html}");
            }
        }
        let html = error(422, "x");
        assert!(html.contains("role=\"alert\" id=\"error-message\""));
    }

    #[test]
    fn only_a_referer_of_this_origin_is_linked() {
        let ok = "http://forms.example:8080/contact.html?x=1";
        assert_eq!(
            same_origin_referer(ok, "http", "forms.example:8080"),
            Some(ok)
        );
        for (referer, scheme, host) in [
            ("http://forms.example:8080/", "https", "forms.example:8080"),
            ("http://other.example/", "http", "forms.example"),
            ("http://forms.example.evil/", "http", "forms.example"),
            ("http://forms.example@evil/", "http", "forms.example"),
            (
                "javascript:alert(1)//forms.example",
                "http",
                "forms.example",
            ),
            ("http://forms.example/a b", "http", "forms.example"),
        ] {
            assert_eq!(
                same_origin_referer(referer, scheme, host),
                None,
                "{referer}"
            );
        }
    }

    #[test]
    fn the_home_page_links_only_to_the_service_itself() {
        let html = home("1.2.3");
        assert!(html.contains("SecureForm 1.2.3"));
        for href in html.split("href=\"").skip(1) {
            assert!(href.starts_with('/'), "{href}");
        }
        assert!(!html.contains("<script"));
    }
}
