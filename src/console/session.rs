//! Server-side sessions of the console. The browser holds only a random session id (256 bits)
//! in an `HttpOnly`, `SameSite=Strict` cookie; the server keeps the SHA-256 of that id, so a
//! look at the server's memory does not yield a usable cookie. A session ends on sign-out, after
//! `idle` without a request, or `absolute` after sign-in, whichever comes first.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What the server knows of a signed-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    /// The name of the API token signed in with (its scopes are read from the configuration on
    /// every request, so a token removed or narrowed there stops working here too).
    pub token: String,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    created_ms: i64,
    seen_ms: i64,
}

#[cfg(test)]
impl Session {
    pub fn for_test(token: &str, csrf: &str) -> Session {
        Session {
            token: token.to_owned(),
            csrf: csrf.to_owned(),
            created_ms: 0,
            seen_ms: 0,
        }
    }
}

/// The signed-in sessions, keyed by the SHA-256 of their id.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

/// A fresh random value, 32 bytes from the OS, as 64 hex digits.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Equal strings, compared without an early exit on the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `token`; returns its id (for the cookie only: never logged).
    pub fn create(&self, token: &str, now_ms: i64) -> String {
        let id = random_hex();
        let session = Session {
            token: token.to_owned(),
            csrf: random_hex(),
            created_ms: now_ms,
            seen_ms: now_ms,
        };
        self.lock().insert(key(&id), session);
        id
    }

    /// The live session of `id`, its idle time restarted; an expired one is removed. Expired
    /// sessions of others are swept on the way.
    pub fn touch(&self, id: &str, now_ms: i64, idle_ms: i64, absolute_ms: i64) -> Option<Session> {
        let live =
            |s: &Session| now_ms - s.seen_ms < idle_ms && now_ms - s.created_ms < absolute_ms;
        let mut map = self.lock();
        map.retain(|_, s| live(s));
        let session = map.get_mut(&key(id))?;
        session.seen_ms = now_ms;
        Some(session.clone())
    }

    /// Ends the session of `id`.
    pub fn remove(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn a_session_lives_until_idle_or_absolute_timeout_or_sign_out() {
        let sessions = Sessions::default();
        let id = sessions.create("reader", 0);
        assert_eq!(id.len(), 64);
        let s = sessions.touch(&id, 10 * MIN, 30 * MIN, 60 * MIN).unwrap();
        assert_eq!(s.token, "reader");
        // Kept alive by use...
        assert!(sessions.touch(&id, 35 * MIN, 30 * MIN, 60 * MIN).is_some());
        assert!(sessions.touch(&id, 59 * MIN, 30 * MIN, 60 * MIN).is_some());
        // ...but not past the absolute limit.
        assert!(sessions.touch(&id, 60 * MIN, 30 * MIN, 60 * MIN).is_none());
        assert!(sessions.is_empty());

        let id = sessions.create("reader", 0);
        assert!(sessions.touch(&id, 30 * MIN, 30 * MIN, 600 * MIN).is_none());

        let id = sessions.create("reader", 0);
        sessions.remove(&id);
        assert!(sessions.touch(&id, 1, 30 * MIN, 60 * MIN).is_none());
        assert!(sessions.touch("guess", 1, 30 * MIN, 60 * MIN).is_none());
    }

    #[test]
    fn ids_and_csrf_tokens_are_fresh_and_distinct() {
        let sessions = Sessions::default();
        let a = sessions.create("t", 0);
        let b = sessions.create("t", 0);
        assert_ne!(a, b);
        let (sa, sb) = (
            sessions.touch(&a, 1, MIN, MIN).unwrap(),
            sessions.touch(&b, 1, MIN, MIN).unwrap(),
        );
        assert_ne!(sa.csrf, sb.csrf);
        assert_ne!(sa.csrf, a);
        assert!(same(&a, &a.clone()) && !same(&a, &b) && !same(&a, "x"));
    }
}
