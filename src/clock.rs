//! The time the data path reads: the system clock in the service, a clock tests move by hand.
//!
//! Everything that decides by time — a submission's `received_at` and the time in its id, when a
//! delivery is due, when it has been failing too long, when an idempotency key expires, the audit
//! log's times — asks the spool's clock rather than `SystemTime::now`, so tests can cross 48 hours
//! without waiting for them.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;

    /// Milliseconds since the Unix epoch (0 before it).
    fn now_ms(&self) -> i64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Now as RFC 3339 UTC, whole seconds.
    fn now_rfc3339(&self) -> String {
        let now = OffsetDateTime::from(self.now());
        let now = now.replace_nanosecond(0).unwrap_or(now);
        now.format(&Rfc3339).unwrap_or_default()
    }
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The environment variable that shifts the service's clock by a number of seconds (negative:
/// into the past). For black-box tests of time-driven behaviour (retention) only; the service
/// warns at start when it is set.
pub const OFFSET_ENV: &str = "SECUREFORM_TEST_CLOCK_OFFSET_SECS";

/// The system's clock shifted by a fixed number of seconds.
pub struct ShiftedClock(i64);

impl Clock for ShiftedClock {
    fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        let by = std::time::Duration::from_secs(self.0.unsigned_abs());
        if self.0 >= 0 {
            now.checked_add(by).unwrap_or(now)
        } else {
            now.checked_sub(by).unwrap_or(now)
        }
    }
}

/// The service's clock: the system's, shifted when [`OFFSET_ENV`] is set to a whole number.
pub fn service_clock() -> std::sync::Arc<dyn Clock> {
    match std::env::var(OFFSET_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        Some(secs) if secs != 0 => {
            tracing::warn!(
                offset_secs = secs,
                "the clock is shifted ({OFFSET_ENV}): for tests only"
            );
            std::sync::Arc::new(ShiftedClock(secs))
        }
        _ => std::sync::Arc::new(SystemClock),
    }
}

/// A clock that stands still until a test moves it.
#[cfg(test)]
pub struct ManualClock(std::sync::Mutex<SystemTime>);

#[cfg(test)]
impl ManualClock {
    pub fn at(start: SystemTime) -> Self {
        ManualClock(std::sync::Mutex::new(start))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_and_counts_from_the_epoch() {
        let clock = ManualClock::at(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        assert_eq!(clock.now_ms(), 1_700_000_000_123);
        assert_eq!(clock.now_rfc3339(), "2023-11-14T22:13:20Z");
        clock.advance(Duration::from_secs(48 * 3600));
        assert_eq!(clock.now_rfc3339(), "2023-11-16T22:13:20Z");
    }
}
