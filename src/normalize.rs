//! From parsed fields to the one normalized [`Submission`], applying the form's rules: the
//! honeypot (a filled one is accepted silently and dropped) and required fields (422).

use secureform_contract::{Fields, FileMeta, Source, Submission};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::FormConfig;
use crate::error::ClientError;

/// What the form's rules make of a submission.
#[derive(Debug)]
pub enum Verdict {
    /// Keep it.
    Accept(Submission),
    /// The honeypot was filled: answer as if accepted, keep nothing.
    Drop,
}

/// A new submission id: a ULID, sortable by time.
pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

/// Now as RFC 3339 UTC, whole seconds.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

/// Applies the form's rules and builds the submission.
pub fn normalize(
    id: String,
    form_name: &str,
    form: &FormConfig,
    source: Source,
    mut fields: Fields,
    files: Vec<FileMeta>,
) -> Result<Verdict, ClientError> {
    if let Some(trap) = &form.honeypot {
        if let Some(value) = fields.remove(trap) {
            if !value.to_text().is_empty() {
                return Ok(Verdict::Drop);
            }
        }
    }
    for name in &form.required {
        let present = fields
            .get(name)
            .is_some_and(|v| !v.to_text().trim().is_empty())
            || files.iter().any(|f| f.field == *name && f.size > 0);
        if !present {
            return Err(ClientError::invalid(
                "required_field_missing",
                format!("The field \u{201c}{name}\u{201d} is required."),
            ));
        }
    }
    Ok(Verdict::Accept(Submission {
        id,
        form: form_name.to_owned(),
        received_at: now_rfc3339(),
        source,
        fields,
        files,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> FormConfig {
        FormConfig {
            sinks: vec!["docs".into()],
            redirect: None,
            required: vec!["email".into()],
            honeypot: Some("_gotcha".into()),
            allowed_origins: vec![],
            charset: None,
            thanks_title: None,
            thanks_message: None,
            rate_per_minute: None,
        }
    }

    #[test]
    fn honeypot_and_required() {
        let mut f = Fields::new();
        f.push("email", "a@example.com");
        f.push("_gotcha", "");
        let Verdict::Accept(s) =
            normalize(new_id(), "c", &form(), Source::Json, f, vec![]).unwrap()
        else {
            panic!("dropped")
        };
        assert!(
            s.fields.get("_gotcha").is_none(),
            "the empty honeypot is not kept"
        );
        assert_eq!(s.id.len(), 26);
        assert!(s.received_at.ends_with('Z'));

        let mut f = Fields::new();
        f.push("email", "a@example.com");
        f.push("_gotcha", "bot");
        assert!(matches!(
            normalize(new_id(), "c", &form(), Source::Json, f, vec![]),
            Ok(Verdict::Drop)
        ));

        let mut f = Fields::new();
        f.push("email", "  ");
        let e = normalize(new_id(), "c", &form(), Source::Json, f, vec![]).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (422, "required_field_missing"));
        assert!(e.message.contains("email"));
    }
}
