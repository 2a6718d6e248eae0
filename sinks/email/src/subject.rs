//! The Subject: a template over the submission, rendered into one header line that no value can
//! break out of.
//!
//! The Subject is the one part of the message that is never encrypted, so a template may name
//! only the fields the owner listed in `subject_fields`. Every substituted value has its control
//! characters (CR, LF, tab, NEL, line and paragraph separators, ...) replaced by spaces and is
//! length-capped; the whole is then written as printable ASCII or as RFC 2047 encoded-words, so
//! the header can never gain a line break other than a folding one that starts with a space.

use base64::Engine;
use secureform_contract::{ConfigError, Submission};

/// Longest rendered value of one placeholder, in characters.
const MAX_VALUE_CHARS: usize = 100;
/// Longest rendered Subject, in characters.
const MAX_SUBJECT_CHARS: usize = 250;
/// Bytes of UTF-8 per encoded-word: 45 bytes give 60 base64 characters, 72 with the markers.
const WORD_BYTES: usize = 45;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Id,
    Form,
    ReceivedAt,
    Field(String),
}

/// A parsed Subject template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; a `{NAME}` must be `id`, `form`, `received_at` or one of `allowed`.
    pub fn parse(text: &str, allowed: &[String]) -> Result<Template, ConfigError> {
        let err = |m: String| ConfigError::new("subject", m);
        if let Some(bad) = allowed
            .iter()
            .find(|f| f.is_empty() || f.contains(['{', '}']))
        {
            return Err(ConfigError::new(
                "subject_fields",
                format!("{bad:?} is not a field name"),
            ));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(err("a lone '}' (write '}}' for a brace)".to_owned())),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(err(format!("unterminated placeholder {{{name}")));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(match name.as_str() {
                        "id" => Piece::Id,
                        "form" => Piece::Form,
                        "received_at" => Piece::ReceivedAt,
                        field if allowed.iter().any(|a| a == field) => {
                            Piece::Field(field.to_owned())
                        }
                        other => {
                            return Err(err(format!(
                                "{{{other}}} names a field not listed in subject_fields (the \
                                 Subject is never encrypted, so only fields marked safe may \
                                 appear in it)"
                            )))
                        }
                    });
                }
                c if c.is_control() => {
                    return Err(err("must not contain control characters".to_owned()))
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template { pieces })
    }

    /// The Subject text for `s`: one line, capped, with every control character replaced.
    pub fn render(&self, s: &Submission) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Id => out.push_str(&clean(&s.id)),
                Piece::Form => out.push_str(&clean(&s.form)),
                Piece::ReceivedAt => out.push_str(&clean(&s.received_at)),
                Piece::Field(name) => {
                    if let Some(value) = s.fields.get(name) {
                        out.push_str(&clean(&value.to_text()));
                    }
                }
            }
        }
        let trimmed = out.trim();
        trimmed.chars().take(MAX_SUBJECT_CHARS).collect()
    }
}

/// One value for a header: control characters become spaces, runs of spaces collapse, capped.
fn clean(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        let c = if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            ' '
        } else {
            c
        };
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    out.chars().take(MAX_VALUE_CHARS).collect()
}

/// A header value (unstructured text) as it goes on the wire: printable ASCII as is, anything
/// else as RFC 2047 base64 encoded-words folded onto continuation lines. Never contains CR or LF
/// except as `CRLF SP` folding.
pub fn encode_unstructured(text: &str) -> String {
    let plain = text.bytes().all(|b| (0x20..0x7F).contains(&b)) && !text.contains("=?");
    if plain {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if chunk.len() + c.len_utf8() > WORD_BYTES {
            words.push(encoded_word(&chunk));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(encoded_word(&chunk));
    }
    words.join("\r\n ")
}

fn encoded_word(text: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("=?UTF-8?B?{b64}?=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use secureform_contract::{Fields, Source};

    fn submission(fields: Fields) -> Submission {
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
    fn only_listed_fields_may_appear() {
        let allowed = vec!["topic".to_owned()];
        assert!(Template::parse("New {topic} ({id})", &allowed).is_ok());
        let err = Template::parse("From {email}", &allowed).unwrap_err();
        assert_eq!(err.key, "subject");
        assert!(err.message.contains("subject_fields"));
        assert!(Template::parse("{id", &allowed).is_err());
        assert!(Template::parse("a } b", &allowed).is_err());
        assert!(Template::parse("a\r\nBcc: x", &allowed).is_err());
        let t = Template::parse("{{literal}} {form}", &allowed).unwrap();
        assert_eq!(t.render(&submission(Fields::new())), "{literal} contact");
    }

    #[test]
    fn values_cannot_break_the_line() {
        let mut f = Fields::new();
        f.push("topic", "x\r\nBcc: victim@example.com\u{2028}\u{85}y");
        let t = Template::parse("{topic}", &["topic".to_owned()]).unwrap();
        let subject = t.render(&submission(f));
        assert_eq!(subject, "x Bcc: victim@example.com y");
        assert!(!encode_unstructured(&subject).contains(['\r', '\n']));
    }

    #[test]
    fn non_ascii_becomes_folded_encoded_words() {
        let text = "Anfrage zu Größe und Gewicht — ".repeat(5);
        let encoded = encode_unstructured(&text);
        for line in encoded.split("\r\n") {
            assert!(line.len() <= 76, "{line}");
            assert!(line.trim_start().starts_with("=?UTF-8?B?"));
        }
        assert!(encoded.is_ascii());
        assert_eq!(encode_unstructured("plain text"), "plain text");
    }
}
