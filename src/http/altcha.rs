//! Spam protection checked on this server, with no third party: proof-of-work challenges in the
//! format of the ALTCHA widget (its "v1" challenge, which the npm widget `altcha` 3.x still
//! solves): `GET /f/{form}/challenge` answers
//! `{algorithm, challenge, maxnumber, salt, signature}` where
//! `challenge = hex(SHA-256(salt ‖ decimal(number)))` for a random `number ≤ maxnumber`, and
//! `signature = hex(HMAC-SHA-256(key, challenge))`. The salt carries `?expires=…&issued=…`
//! (Unix seconds), bound into the hash and so into the signature. The widget finds `number`
//! and posts `base64(JSON {algorithm, challenge, number, salt, signature, took})` in the form's
//! captcha field; `verify` checks it, refuses one already used (single use), and removes the
//! field so it is never stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use rand::Rng as _;
use ring::hmac;
use secureform_contract::{FieldValue, Fields, Scalar};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::respond::{self, ClientKind};
use super::{cors, AppState};
use crate::config::{CaptchaSetupError, Config, FormConfig};
use crate::error::ClientError;

/// The smallest HMAC key accepted, in bytes.
const MIN_KEY_BYTES: usize = 32;

/// Each protected form's key, and the challenges already used (until they expire).
#[derive(Default)]
pub struct Altcha {
    keys: BTreeMap<String, hmac::Key>,
    /// Used challenge (hex) → its expiry (Unix seconds).
    used: Mutex<HashMap<String, u64>>,
}

impl Altcha {
    /// Reads each protected form's key from its environment variable.
    pub fn from_config(config: &Config) -> Result<Altcha, CaptchaSetupError> {
        let mut keys = BTreeMap::new();
        for (name, form) in &config.forms {
            let Some(captcha) = form.captcha.as_ref().and_then(|c| c.altcha()) else {
                continue;
            };
            let secret = std::env::var(&captcha.secret_env).map_err(|_| {
                CaptchaSetupError::new(
                    name,
                    "secret_env",
                    format!("the environment variable {} is not set", captcha.secret_env),
                )
            })?;
            if secret.len() < MIN_KEY_BYTES {
                return Err(CaptchaSetupError::new(
                    name,
                    "secret_env",
                    format!(
                        "the key in {} is shorter than {MIN_KEY_BYTES} bytes",
                        captcha.secret_env
                    ),
                ));
            }
            keys.insert(
                name.clone(),
                hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            );
        }
        Ok(Altcha {
            keys,
            used: Mutex::default(),
        })
    }

    /// A new challenge for `form`, or None when the form has no captcha.
    pub fn challenge(&self, form_name: &str, form: &FormConfig, now: u64) -> Option<Challenge> {
        let captcha = form.captcha.as_ref()?.altcha()?;
        let key = self.keys.get(form_name)?;
        let mut rng = rand::thread_rng();
        let nonce: [u8; 12] = rng.gen();
        let expires = now.saturating_add(captcha.expires_secs);
        let salt = format!("{}?expires={expires}&issued={now}", hex::encode(nonce));
        let number = rng.gen_range(0..=captcha.max_number);
        let challenge = hash(&salt, number);
        let signature = hex::encode(hmac::sign(key, challenge.as_bytes()).as_ref());
        Some(Challenge {
            algorithm: "SHA-256",
            challenge,
            maxnumber: captcha.max_number,
            salt,
            signature,
        })
    }

    /// Checks and removes the solution in `fields`: a missing, malformed, forged or wrong one
    /// is `captcha_failed`, an expired one `captcha_expired`, one posted sooner than
    /// `min_submit_secs` after its challenge `submitted_too_fast`, and one already used
    /// `captcha_replayed` (all 422).
    pub fn verify(
        &self,
        form_name: &str,
        form: &FormConfig,
        fields: &mut Fields,
        now: u64,
    ) -> Result<(), ClientError> {
        let Some(captcha) = form.captcha.as_ref().and_then(|c| c.altcha()) else {
            return Ok(());
        };
        let posted = fields.remove(&captcha.field);
        let key = self.keys.get(form_name).ok_or_else(failed)?;
        let payload = match posted {
            Some(FieldValue::One(Scalar::Text(text))) => text,
            _ => return Err(failed()),
        };
        let json = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|_| failed())?;
        let solution: Solution = serde_json::from_slice(&json).map_err(|_| failed())?;
        if solution.algorithm != "SHA-256" {
            return Err(failed());
        }
        let (expires, issued) = salt_times(&solution.salt).ok_or_else(failed)?;
        let signature = hex::decode(&solution.signature).map_err(|_| failed())?;
        hmac::verify(key, solution.challenge.as_bytes(), &signature).map_err(|_| failed())?;
        if hash(&solution.salt, solution.number) != solution.challenge {
            return Err(failed());
        }
        if now > expires {
            return Err(ClientError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "captcha_expired",
                "The anti-spam check expired; please try again.",
            ));
        }
        if let Some(min) = form.min_submit_secs {
            if now < issued.saturating_add(min) {
                return Err(ClientError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "submitted_too_fast",
                    "The form was sent faster than a person can fill it in; please try again.",
                ));
            }
        }
        let mut used = self.used.lock().map_err(|_| ClientError::unavailable())?;
        used.retain(|_, exp| *exp >= now);
        if used.insert(solution.challenge, expires).is_some() {
            return Err(ClientError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "captcha_replayed",
                "This anti-spam solution was already used; please try again.",
            ));
        }
        Ok(())
    }
}

fn failed() -> ClientError {
    ClientError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "captcha_failed",
        "The anti-spam check failed; please try again.",
    )
}

/// `hex(SHA-256(salt ‖ decimal(number)))`, as the widget computes it.
fn hash(salt: &str, number: u64) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(number.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// `expires` and `issued` from the salt's query part.
fn salt_times(salt: &str) -> Option<(u64, u64)> {
    let (_, query) = salt.split_once('?')?;
    let mut expires = None;
    let mut issued = None;
    for pair in query.split('&') {
        match pair.split_once('=')? {
            ("expires", v) => expires = v.parse().ok(),
            ("issued", v) => issued = v.parse().ok(),
            _ => {}
        }
    }
    Some((expires?, issued?))
}

/// A challenge, as the widget reads it.
#[derive(serde::Serialize)]
pub struct Challenge {
    pub algorithm: &'static str,
    pub challenge: String,
    pub maxnumber: u64,
    pub salt: String,
    pub signature: String,
}

/// A solution, as the widget posts it (base64 of this JSON).
#[derive(Deserialize)]
struct Solution {
    algorithm: String,
    challenge: String,
    number: u64,
    salt: String,
    signature: String,
}

/// `GET /f/{form}/challenge`.
pub async fn challenge(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form_name = path.into_inner();
    let Some(form) = state.config.forms.get(&form_name) else {
        return respond::error(
            ClientKind::Integrator,
            &ClientError::new(
                StatusCode::NOT_FOUND,
                "unknown_form",
                "There is no such form.",
            ),
        );
    };
    let origin = cors::allowed_origin(&req, form);
    let per_minute = form
        .rate_per_minute
        .unwrap_or(state.config.limits.rate_per_minute);
    let limited = match req.peer_addr().map(|a| a.ip()) {
        Some(addr) => state
            .rate_limiter
            .check(addr, &format!("c/{form_name}"), per_minute)
            .map_err(ClientError::rate_limited),
        None => Ok(()),
    };
    let now = unix_secs(state.spool.clock().now());
    let mut resp = match limited {
        Err(err) => respond::error(ClientKind::Integrator, &err),
        Ok(()) => match state.altcha.challenge(&form_name, form, now) {
            Some(c) => HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(c),
            None => respond::error(
                ClientKind::Integrator,
                &ClientError::new(
                    StatusCode::NOT_FOUND,
                    "captcha_not_configured",
                    "This form has no proof-of-work challenge.",
                ),
            ),
        },
    };
    cors::decorate(&mut resp, origin);
    resp
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AltchaConfig, CaptchaConfig};

    fn form(min: Option<u64>) -> FormConfig {
        let mut f = crate::config::Config::embedded_default().forms["contact"].clone();
        f.captcha = Some(CaptchaConfig::Altcha(AltchaConfig {
            secret_env: "X".into(),
            max_number: 1000,
            expires_secs: 600,
            field: "altcha".into(),
        }));
        f.min_submit_secs = min;
        f
    }

    fn altcha() -> Altcha {
        let mut keys = BTreeMap::new();
        keys.insert(
            "contact".to_owned(),
            hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]),
        );
        Altcha {
            keys,
            used: Mutex::default(),
        }
    }

    fn solve(c: &Challenge) -> String {
        let number = (0..=c.maxnumber)
            .find(|n| hash(&c.salt, *n) == c.challenge)
            .unwrap();
        let json = serde_json::json!({"algorithm": c.algorithm, "challenge": c.challenge,
            "number": number, "salt": c.salt, "signature": c.signature, "took": 5});
        base64::engine::general_purpose::STANDARD.encode(json.to_string())
    }

    fn post(a: &Altcha, f: &FormConfig, payload: &str, now: u64) -> Result<Fields, &'static str> {
        let mut fields = Fields::new();
        fields.push("email", "a@example.com");
        fields.push("altcha", payload);
        a.verify("contact", f, &mut fields, now)
            .map(|()| fields)
            .map_err(|e| e.code)
    }

    #[test]
    fn solved_once_then_replayed_expired_forged_too_fast() {
        let a = altcha();
        let f = form(Some(3));
        let c = a.challenge("contact", &f, 1000).unwrap();
        let p = solve(&c);
        assert_eq!(post(&a, &f, &p, 1001), Err("submitted_too_fast"));
        let kept = post(&a, &f, &p, 1003).unwrap();
        assert!(!kept.contains("altcha"), "the solution is not stored");
        assert_eq!(post(&a, &f, &p, 1004), Err("captcha_replayed"));
        let c = a.challenge("contact", &f, 1000).unwrap();
        assert_eq!(post(&a, &f, &solve(&c), 1601), Err("captcha_expired"));
        // Another key's signature, a wrong number, garbage, nothing.
        let mut other = altcha();
        other.keys.insert(
            "contact".into(),
            hmac::Key::new(hmac::HMAC_SHA256, &[8u8; 32]),
        );
        let c = other.challenge("contact", &f, 1000).unwrap();
        assert_eq!(post(&a, &f, &solve(&c), 1010), Err("captcha_failed"));
        let c = a.challenge("contact", &f, 1000).unwrap();
        let wrong = serde_json::json!({"algorithm": "SHA-256", "challenge": c.challenge,
            "number": 1001, "salt": c.salt, "signature": c.signature});
        let wrong = base64::engine::general_purpose::STANDARD.encode(wrong.to_string());
        assert_eq!(post(&a, &f, &wrong, 1010), Err("captcha_failed"));
        assert_eq!(post(&a, &f, "%%%", 1010), Err("captcha_failed"));
        let mut fields = Fields::new();
        assert_eq!(
            a.verify("contact", &f, &mut fields, 1010)
                .map_err(|e| e.code),
            Err("captcha_failed")
        );
    }
}
