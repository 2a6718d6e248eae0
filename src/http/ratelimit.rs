//! Rate limits per client address: a token bucket per (address, scope), where the scope is a
//! form (`/f/...`) or the API. The table is bounded: past [`MAX_ENTRIES`] addresses, idle
//! buckets are dropped first, then all of them (a flood of addresses cannot grow memory).
//!
//! The address is the TCP peer's. Behind a reverse proxy every client shares the proxy's
//! address: rate-limit at the proxy instead, or leave these limits off (the default).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_ENTRIES: usize = 100_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The limiter shared by all workers.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(IpAddr, String), Bucket>>,
}

impl RateLimiter {
    /// Takes one request from the bucket of (`addr`, `scope`), which holds `per_minute` and
    /// refills continuously. `Err(wait)` says how long until the next request is allowed.
    pub fn check(&self, addr: IpAddr, scope: &str, per_minute: u32) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        if buckets.len() >= MAX_ENTRIES {
            buckets.retain(|_, b| now.duration_since(b.last) < Duration::from_secs(60));
            if buckets.len() >= MAX_ENTRIES {
                buckets.clear();
            }
        }
        let bucket = buckets.entry((addr, scope.to_owned())).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_with_a_wait() {
        let limiter = RateLimiter::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(limiter.check(a, "f", 3).is_ok());
        }
        let wait = limiter.check(a, "f", 3).unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            limiter.check(b, "f", 3).is_ok(),
            "another address has its own bucket"
        );
        assert!(
            limiter.check(a, "api", 3).is_ok(),
            "another scope has its own bucket"
        );
        assert!(limiter.check(a, "f", 0).is_ok(), "0 is no limit");
    }
}
