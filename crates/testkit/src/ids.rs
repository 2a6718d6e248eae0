//! Test ids.

/// A ULID-shaped submission id, distinct for each `n` and the same on every run (so a
/// failure names the same id again).
pub fn ulid(n: u32) -> String {
    format!("01JD{n:022}")
}
