//! Test ids: fixed ULID-shaped ones, and names and ids no other test (or earlier run) uses.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A ULID-shaped submission id, distinct for each `n` and the same on every run (so a
/// failure names the same id again).
pub fn ulid(n: u32) -> String {
    format!("01JD{n:022}")
}

/// A name no other test (or earlier run) uses: `prefix`, the process id, the clock, a counter
/// (e.g. a table in a shared database, or a canary to look for).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!(
        "{prefix}_{}_{}_{n}",
        std::process::id(),
        nanos() % 1_000_000_000
    )
}

/// A ULID-like, unique submission id (the clock and a counter).
pub fn new_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("01J{:016X}{n:07}", nanos() as u64)
}
