//! Rate limits per client address: a token bucket per (address, scope), where the scope is a
//! form (`/f/...`) or the API.
//!
//! The table is bounded at [`MAX_ENTRIES`] buckets. A bucket that has refilled is the same as no
//! bucket, so when the table is full the bucket that will be full again soonest is dropped
//! first: idle and barely used addresses go, and an address that is being refused (an empty
//! bucket, full again only after a whole minute) is the last to go. A flood of new addresses
//! therefore cannot free an address that is at 429, and memory stays bounded.
//!
//! The limiter fails closed: a lock poisoned by a panic elsewhere is taken over (the table is
//! rebuilt from its buckets), never skipped.
//!
//! The address is the TCP peer's. Behind a reverse proxy every client shares the proxy's
//! address: rate-limit at the proxy instead, or leave these limits off (the default).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most buckets kept (about 100 bytes each).
pub const MAX_ENTRIES: usize = 100_000;

type Key = (IpAddr, Box<str>);

struct Bucket {
    tokens: f64,
    last: Instant,
    /// When the bucket will have refilled: the order of eviction.
    full_at: Instant,
}

#[derive(Default)]
struct Table {
    buckets: HashMap<Key, Bucket>,
    /// (full_at, key) of every bucket, soonest first.
    by_full_at: BTreeSet<(Instant, Key)>,
}

impl Table {
    /// Drops buckets, soonest-full first, until one more fits under `max`.
    fn make_room(&mut self, max: usize) {
        while self.buckets.len() >= max {
            let Some((_, key)) = self.by_full_at.pop_first() else {
                // The index lost track (only after a panic mid-update): start it afresh.
                self.rebuild();
                continue;
            };
            self.buckets.remove(&key);
        }
    }

    /// Makes the index agree with the buckets again.
    fn rebuild(&mut self) {
        self.by_full_at = self
            .buckets
            .iter()
            .map(|(k, b)| (b.full_at, k.clone()))
            .collect();
    }
}

/// The limiter shared by all workers.
pub struct RateLimiter {
    table: Mutex<Table>,
    max_entries: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

impl RateLimiter {
    /// A limiter that keeps at most `max_entries` buckets.
    pub fn with_capacity(max_entries: usize) -> Self {
        RateLimiter {
            table: Mutex::new(Table::default()),
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|poisoned| {
            let mut table = poisoned.into_inner();
            table.rebuild();
            self.table.clear_poison();
            table
        })
    }

    /// Takes one request from the bucket of (`addr`, `scope`), which holds `per_minute` and
    /// refills continuously. `Err(wait)` says how long until the next request is allowed.
    pub fn check(&self, addr: IpAddr, scope: &str, per_minute: u32) -> Result<(), Duration> {
        if per_minute == 0 {
            return Ok(());
        }
        self.check_at(addr, scope, per_minute, Instant::now())
    }

    fn check_at(
        &self,
        addr: IpAddr,
        scope: &str,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut table = self.lock();
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let key: Key = (addr, scope.into());
        let bucket = match table.buckets.remove(&key) {
            Some(b) => {
                table.by_full_at.remove(&(b.full_at, key.clone()));
                b
            }
            None => {
                table.make_room(self.max_entries);
                Bucket {
                    tokens: capacity,
                    last: now,
                    full_at: now,
                }
            }
        };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        let mut tokens = (bucket.tokens + elapsed * rate).min(capacity);
        let verdict = if tokens >= 1.0 {
            tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - tokens) / rate))
        };
        let full_at = now + Duration::from_secs_f64((capacity - tokens) / rate);
        table.by_full_at.insert((full_at, key.clone()));
        table.buckets.insert(
            key,
            Bucket {
                tokens,
                last: now,
                full_at,
            },
        );
        verdict
    }

    /// How many buckets are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().buckets.len()
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

    /// Issue 15 item 8: the table used to be wiped whole at 100k entries, letting an address at
    /// 429 through again.
    #[test]
    fn an_address_at_429_stays_limited_after_100k_other_addresses() {
        let limiter = RateLimiter::default();
        let hot: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..5 {
            assert!(limiter.check(hot, "f/contact", 5).is_ok());
        }
        assert!(limiter.check(hot, "f/contact", 5).is_err());
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) + 1));
            let _ = limiter.check(addr, "f/contact", 5);
        }
        assert!(limiter.len() <= MAX_ENTRIES, "{}", limiter.len());
        // Five more tries: the bucket refills one request in 12 s, far longer than this test.
        for _ in 0..5 {
            assert!(
                limiter.check(hot, "f/contact", 5).is_err(),
                "the limited address was let through"
            );
        }
    }

    #[test]
    fn refilled_buckets_go_first_and_the_table_stays_bounded() {
        let limiter = RateLimiter::with_capacity(3);
        let t0 = Instant::now();
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        // 1 and 2 spend all their tokens; 3 only one of 60.
        assert!(limiter.check_at(ip(1), "f", 1, t0).is_ok());
        assert!(limiter.check_at(ip(2), "f", 1, t0).is_ok());
        assert!(limiter.check_at(ip(3), "f", 60, t0).is_ok());
        assert!(limiter.check_at(ip(4), "f", 1, t0).is_ok());
        assert_eq!(limiter.len(), 3);
        assert!(limiter.check_at(ip(1), "f", 1, t0).is_err(), "1 was kept");
        assert!(limiter.check_at(ip(2), "f", 1, t0).is_err(), "2 was kept");
    }

    #[test]
    fn a_poisoned_lock_fails_closed() {
        let limiter = std::sync::Arc::new(RateLimiter::default());
        let a: IpAddr = [127, 0, 0, 1].into();
        assert!(limiter.check(a, "api", 1).is_ok());
        assert!(limiter.check(a, "api", 1).is_err());
        let l = std::sync::Arc::clone(&limiter);
        let _ = std::thread::spawn(move || {
            let _guard = l.table.lock();
            panic!("poison the lock");
        })
        .join();
        assert!(limiter.table.is_poisoned());
        assert!(limiter.check(a, "api", 1).is_err(), "still limited");
        assert!(!limiter.table.is_poisoned());
    }
}
