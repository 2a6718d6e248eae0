//! Group flushing: concurrent writers share one flush instead of each paying for their own.
//!
//! The Documents store writes a submission's items into a staging folder without syncing them
//! one by one, then asks for a flush of the whole filesystem (`syncfs`): every writer that
//! finished writing before a flush *started* is covered by it. While one flush runs, the
//! writers arriving meanwhile wait and share the next one. Eight deliveries in flight thus cost
//! about two flushes rather than thirty-two `fsync`s — the same idea as the spool's group
//! commit.

use std::io;
use std::sync::{Condvar, Mutex};

/// One kind of flush, shared by every thread that asks for it.
#[derive(Default)]
pub(crate) struct FlushGroup {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Flushes started so far; the running one (if any) has this number.
    started: u64,
    /// The highest flush number that has completed.
    finished: u64,
    running: bool,
    /// The last flush that failed, and why.
    failed: Option<(u64, String)>,
}

impl FlushGroup {
    /// Returns once a flush that started after this call has completed: everything the caller
    /// wrote before calling is then covered. The caller either runs `flush` itself (when no
    /// flush is running) or waits for the next one someone else runs. A failed flush fails
    /// everyone who waited for it.
    pub(crate) fn flush(&self, flush: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let mut flush = Some(flush);
        let mut state = self.lock()?;
        // A flush already running may have started before our writes: it does not count.
        let needed = state.started + 1;
        loop {
            if state.finished >= needed {
                return match &state.failed {
                    Some((number, why)) if *number >= needed => {
                        Err(io::Error::other(format!("flushing to disk failed: {why}")))
                    }
                    _ => Ok(()),
                };
            }
            if !state.running {
                if let Some(run) = flush.take() {
                    state.running = true;
                    state.started += 1;
                    let number = state.started;
                    drop(state);
                    let result = run();
                    state = self.lock()?;
                    state.running = false;
                    state.finished = number;
                    if let Err(e) = &result {
                        state.failed = Some((number, e.to_string()));
                    }
                    self.done.notify_all();
                    continue;
                }
            }
            state = self
                .done
                .wait(state)
                .map_err(|_| io::Error::other("a flushing thread panicked"))?;
        }
    }

    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| io::Error::other("a flushing thread panicked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    /// Each caller "writes" (bumps `written`) and flushes; a flush "persists" everything written
    /// when it starts. Every caller must find its write persisted when `flush` returns, and the
    /// callers must have shared flushes.
    #[test]
    fn every_caller_is_covered_by_a_flush_that_started_after_its_write() {
        let group = Arc::new(FlushGroup::default());
        let written = Arc::new(AtomicU64::new(0));
        let persisted = Arc::new(AtomicU64::new(0));
        let flushes = Arc::new(AtomicU64::new(0));
        let threads = 16;
        let rounds = 50;
        let start = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (group, written, persisted, flushes, start) = (
                    Arc::clone(&group),
                    Arc::clone(&written),
                    Arc::clone(&persisted),
                    Arc::clone(&flushes),
                    Arc::clone(&start),
                );
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..rounds {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .flush(|| {
                                let upto = written.load(Ordering::SeqCst);
                                flushes.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(1));
                                persisted.fetch_max(upto, Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                        assert!(persisted.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let calls = (threads * rounds) as u64;
        let flushes = flushes.load(Ordering::SeqCst);
        assert!(
            flushes >= 1 && flushes < calls,
            "{flushes} flushes for {calls} calls"
        );
    }

    #[test]
    fn a_failed_flush_fails_its_callers_and_the_next_one_can_succeed() {
        let group = FlushGroup::default();
        let err = group
            .flush(|| Err(io::Error::other("disk on fire")))
            .unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        group.flush(|| Ok(())).unwrap();
    }
}
