//! From parsed fields to the one normalized [`Submission`], applying the form's rules: the
//! honeypot (a filled one is accepted silently and dropped) and required fields. A refusal is a
//! [`NormalizeError`]; the HTTP layer answers it (422, `src/http/refusal.rs`).

use crate::clock::Clock;
use crate::config::FormConfig;
use secureform_contract::{Fields, FileMeta, Source, Submission};

/// Why the form's rules refused a well-formed submission.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// A field the form requires is missing or empty (the name is the form's own, never a
    /// submitted value).
    #[error("The field \u{201c}{field}\u{201d} is required.")]
    RequiredFieldMissing {
        /// The required field's name, as configured.
        field: String,
    },
}

impl NormalizeError {
    /// The stable, machine-readable reason (the `code` of the error answer).
    pub fn code(&self) -> &'static str {
        match self {
            NormalizeError::RequiredFieldMissing { .. } => "required_field_missing",
        }
    }
}

/// What the form's rules make of a submission.
#[derive(Debug)]
pub enum Verdict {
    /// Keep it.
    Accept(Submission),
    /// The honeypot was filled: answer as if accepted, keep nothing.
    Drop,
}

/// A new submission id: a ULID, sortable by time (the clock's).
pub fn new_id(clock: &dyn Clock) -> String {
    ulid::Ulid::from_datetime(clock.now()).to_string()
}

/// Applies the form's rules and builds the submission.
pub fn normalize(
    id: String,
    form_name: &str,
    form: &FormConfig,
    source: Source,
    mut fields: Fields,
    files: Vec<FileMeta>,
    clock: &dyn Clock,
) -> Result<Verdict, NormalizeError> {
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
            return Err(NormalizeError::RequiredFieldMissing {
                field: name.clone(),
            });
        }
    }
    Ok(Verdict::Accept(Submission {
        id,
        form: form_name.to_owned(),
        received_at: clock.now_rfc3339(),
        source,
        fields,
        files,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::{Duration, UNIX_EPOCH};

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
            captcha: None,
            min_submit_secs: None,
            retain_days: None,
            subject_fields: Vec::new(),
        }
    }

    #[test]
    fn honeypot_and_required() {
        let mut f = Fields::new();
        f.push("email", "a@example.com");
        f.push("_gotcha", "");
        let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let id = new_id(&clock);
        let Verdict::Accept(s) =
            normalize(id.clone(), "c", &form(), Source::Json, f, vec![], &clock).unwrap()
        else {
            panic!("dropped")
        };
        assert!(
            s.fields.get("_gotcha").is_none(),
            "the empty honeypot is not kept"
        );
        assert_eq!(s.id, id);
        assert_eq!(s.id.len(), 26);
        assert_eq!(
            s.received_at, "2023-11-14T22:13:20Z",
            "received_at is the clock's"
        );
        let in_id = ulid::Ulid::from_string(&s.id).unwrap().datetime();
        assert_eq!(in_id, clock.now(), "the id's time is the clock's too");

        let mut f = Fields::new();
        f.push("email", "a@example.com");
        f.push("_gotcha", "bot");
        assert!(matches!(
            normalize(
                new_id(&clock),
                "c",
                &form(),
                Source::Json,
                f,
                vec![],
                &clock
            ),
            Ok(Verdict::Drop)
        ));

        let mut f = Fields::new();
        f.push("email", "  ");
        let e = normalize(
            new_id(&clock),
            "c",
            &form(),
            Source::Json,
            f,
            vec![],
            &clock,
        )
        .unwrap_err();
        assert_eq!(e.code(), "required_field_missing");
        assert_eq!(
            e.to_string(),
            "The field \u{201c}email\u{201d} is required."
        );
    }
}
