//! Rendering a submission as the file `<id>.<format>`: JSON, CSV or XML.
//!
//! - **JSON**: the normalized submission of docs/contract.md, pretty-printed.
//! - **CSV** (RFC 4180): a header row (`id`, `form`, `received_at`, then each field name in the
//!   order received) and one data row; several values of one field are joined with ", "; rows end
//!   with CRLF; a cell is quoted when it holds `"`, `,`, CR or LF. To keep a spreadsheet from
//!   running a formula a client typed, a cell starting with `=`, `+`, `-`, `@`, TAB or CR is
//!   prefixed with a single quote `'` (OWASP's advice), so `-5` arrives as `'-5`.
//! - **XML**: `<submission>` with the metadata as attributes, `<fields>` holding one
//!   `<field name="...">` per field with one `<value>` per value (`type="number"` or
//!   `type="boolean"` for JSON scalars), and `<files>` with one empty `<file .../>` per file. Field
//!   names are never used as element names. Text XML 1.0 cannot carry (most control characters)
//!   is written base64-encoded: `<value encoding="base64">`, or an attribute `name-base64="..."`
//!   in place of `name="..."`.

use std::fmt::Write as _;

use base64::Engine;
use secureform_contract::{Scalar, Submission};

use crate::config::Format;

/// The submission's own file in the configured format.
pub(crate) fn render(
    submission: &Submission,
    format: Format,
) -> Result<Vec<u8>, serde_json::Error> {
    Ok(match format {
        Format::Json => {
            let mut out = serde_json::to_vec_pretty(submission)?;
            out.push(b'\n');
            out
        }
        Format::Csv => csv(submission).into_bytes(),
        Format::Xml => xml(submission).into_bytes(),
    })
}

fn csv(s: &Submission) -> String {
    let mut header = vec!["id".to_owned(), "form".to_owned(), "received_at".to_owned()];
    let mut row = vec![s.id.clone(), s.form.clone(), s.received_at.clone()];
    for (name, value) in s.fields.iter() {
        header.push(name.to_owned());
        row.push(value.to_text());
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .map(|c| csv_cell(c))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!("{}\r\n{}\r\n", line(&header), line(&row))
}

/// One CSV cell: formula-guarded, then quoted when needed (RFC 4180).
fn csv_cell(text: &str) -> String {
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

fn xml(s: &Submission) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<submission");
    attr(&mut out, "id", &s.id);
    attr(&mut out, "form", &s.form);
    attr(&mut out, "received_at", &s.received_at);
    attr(&mut out, "source", s.source.as_str());
    out.push_str(">\n  <fields>\n");
    for (name, value) in s.fields.iter() {
        out.push_str("    <field");
        attr(&mut out, "name", name);
        out.push('>');
        for v in value.values() {
            out.push_str("<value");
            match v {
                Scalar::Bool(_) => out.push_str(" type=\"boolean\""),
                Scalar::Number(_) => out.push_str(" type=\"number\""),
                Scalar::Text(_) => {}
            }
            text(&mut out, &v.to_text(), "value");
        }
        out.push_str("</field>\n");
    }
    out.push_str("  </fields>\n  <files>\n");
    for (index, f) in s.files.iter().enumerate() {
        out.push_str("    <file");
        attr(&mut out, "index", &index.to_string());
        attr(&mut out, "field", &f.field);
        attr(&mut out, "filename", &f.filename);
        attr(&mut out, "content_type", &f.content_type);
        attr(&mut out, "size", &f.size.to_string());
        attr(&mut out, "sha256", &f.sha256);
        out.push_str("/>\n");
    }
    out.push_str("  </files>\n</submission>\n");
    out
}

/// Whether XML 1.0 can carry `c` at all (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn b64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// ` name="value"`, escaped so that attribute normalization gives back exactly `value`.
fn attr(out: &mut String, name: &str, value: &str) {
    if !value.chars().all(xml_char) {
        let _ = write!(out, " {name}-base64=\"{}\"", b64(value));
        return;
    }
    let _ = write!(out, " {name}=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Closes the open start tag, writes `value` as escaped text and the end tag `</element>`.
fn text(out: &mut String, value: &str, element: &str) {
    if !value.chars().all(xml_char) {
        let _ = write!(out, " encoding=\"base64\">{}</{element}>", b64(value));
        return;
    }
    out.push('>');
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A parser turns a raw CR (or CRLF) into LF; a reference keeps it.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    let _ = write!(out, "</{element}>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use secureform_contract::{Fields, Source};

    fn submission() -> Submission {
        let mut fields = Fields::new();
        fields.push("name", "Doe, \"J\"");
        fields.push("sum", "=1+2");
        fields.push("bad<name> 1", "a\u{1}b");
        fields.push("topic", "x");
        fields.push("topic", "y");
        Submission {
            id: "01JD0000000000000000000000".into(),
            form: "contact".into(),
            received_at: "2026-11-27T10:00:00Z".into(),
            source: Source::Json,
            fields,
            files: vec![],
        }
    }

    #[test]
    fn csv_quotes_and_guards() {
        let out = csv(&submission());
        assert_eq!(
            out,
            "id,form,received_at,name,sum,bad<name> 1,topic\r\n\
             01JD0000000000000000000000,contact,2026-11-27T10:00:00Z,\"Doe, \"\"J\"\"\",'=1+2,a\u{1}b,\"x, y\"\r\n"
        );
    }

    #[test]
    fn xml_names_go_in_attributes_and_control_characters_in_base64() {
        let out = xml(&submission());
        assert!(
            out.contains(
                "<field name=\"bad&lt;name&gt; 1\"><value encoding=\"base64\">YQFi</value></field>"
            ),
            "{out}"
        );
        assert!(out.contains("<value>Doe, \"J\"</value>"), "{out}");
        assert!(out.contains("<value>x</value><value>y</value>"), "{out}");
    }
}
