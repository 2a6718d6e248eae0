//! The fields of a submission as text, as HTML and as JSON, for the message's body parts.

use secureform_contract::Submission;

use crate::mime::safe_name;

/// Line breaks of any kind (CRLF, CR, LF) become CRLF, as text/plain requires.
fn crlf_lines(value: &str) -> Vec<&str> {
    value
        .split("\r\n")
        .flat_map(|l| l.split(['\r', '\n']))
        .collect()
}

/// The plain-text part: a short header, then one `name: value` per field in received order (a
/// value's further lines indented by two spaces), then the list of attached files.
pub fn text(s: &Submission) -> String {
    let mut out = format!(
        "Form: {}\r\nSubmission: {}\r\nReceived: {}\r\n\r\n",
        s.form, s.id, s.received_at
    );
    for (name, value) in s.fields.iter() {
        let name = crlf_lines(name).join(" ");
        let text = value.to_text();
        let mut lines = crlf_lines(&text).into_iter();
        out.push_str(&format!("{name}: {}\r\n", lines.next().unwrap_or_default()));
        for line in lines {
            out.push_str(&format!("  {line}\r\n"));
        }
    }
    if !s.files.is_empty() {
        out.push_str("\r\nAttached files:\r\n");
        for (i, f) in s.files.iter().enumerate() {
            out.push_str(&format!(
                "  {}: {} ({} bytes)\r\n",
                crlf_lines(&f.field).join(" "),
                safe_name(i, &f.filename),
                f.size
            ));
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn escape_lines(text: &str) -> String {
    crlf_lines(text)
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("<br>\r\n")
}

/// The HTML part: the same content as [`text`], every value escaped.
pub fn html(s: &Submission) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>Submission {id}</title>\
         </head>\r\n<body>\r\n<h1>Form {form}</h1>\r\n<p>Submission {id}, received {at}</p>\r\n\
         <table>\r\n",
        id = escape(&s.id),
        form = escape(&s.form),
        at = escape(&s.received_at),
    );
    for (name, value) in s.fields.iter() {
        out.push_str(&format!(
            "<tr><th align=\"left\" valign=\"top\">{}</th><td>{}</td></tr>\r\n",
            escape_lines(name),
            escape_lines(&value.to_text())
        ));
    }
    out.push_str("</table>\r\n");
    if !s.files.is_empty() {
        out.push_str("<h2>Attached files</h2>\r\n<ul>\r\n");
        for (i, f) in s.files.iter().enumerate() {
            out.push_str(&format!(
                "<li>{}: {} ({} bytes)</li>\r\n",
                escape_lines(&f.field),
                escape(&safe_name(i, &f.filename)),
                f.size
            ));
        }
        out.push_str("</ul>\r\n");
    }
    out.push_str("</body></html>\r\n");
    out
}

/// The normalized submission as JSON (docs/contract.md), so software reads every value exactly.
pub fn json(s: &Submission) -> Vec<u8> {
    serde_json::to_vec_pretty(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secureform_contract::{Fields, Source};

    #[test]
    fn html_is_escaped_and_text_keeps_order() {
        let mut fields = Fields::new();
        fields.push("b", "<script>alert('x')</script> & \"q\"");
        fields.push("a", "line1\nline2\r\nline3");
        let s = Submission {
            id: "01J".into(),
            form: "f".into(),
            received_at: "2026-11-27T10:00:00Z".into(),
            source: Source::Json,
            fields,
            files: vec![],
        };
        let h = html(&s);
        assert!(h.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
        assert!(!h.contains("<script>"));
        let t = text(&s);
        let b = t.find("b: <script>").unwrap();
        let a = t.find("a: line1\r\n  line2\r\n  line3\r\n").unwrap();
        assert!(b < a);
    }
}
