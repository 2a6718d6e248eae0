//! The gate every PDF-family parse (PDF, FDF, XFDF) passes: it bounds their memory per request
//! and overall.
//!
//! Loading a PDF with lopdf costs many times the body (a dictionary entry of a few bytes becomes
//! a key and an object of about 100), and a parse on a fresh thread makes glibc give that
//! thread its own heap arena, which keeps its pages after the parse. Unbounded, 32 parallel
//! posts of a 3.4 MB tax form held 1.9 GB. So:
//! - each parse first **reserves** an estimate of what it will hold (the body plus
//!   [`PARSE_BYTES_PER_BODY_BYTE`] times the body, measured) from the budget
//!   `[limits] pdf_parse_memory_bytes`. When the declared Content-Type is of the PDF family the
//!   reservation is made *before* the body is read, from its Content-Length (or
//!   `max_body_bytes` when there is none), so bodies waiting their turn are not held in memory
//!   either; a body recognised as a PDF only by its bytes reserves once it has been read;
//! - a request waits at most [`PdfGate::max_wait`] for its reservation, in arrival order, then
//!   gets `503 pdf_busy` with Retry-After; one reservation never exceeds the whole budget, so a
//!   body as large as `max_body_bytes` can always run alone;
//! - parses run on a small pool of dedicated threads, so at most that many heap arenas ever
//!   hold parse memory, and each freed arena is reused by the next parse;
//! - the parse's share of the reservation is returned when the parse thread finishes (not when
//!   the request gives up waiting), the body's share when the request is done.

use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::ClientError;

/// Peak memory of one parse per byte of body, beyond the body itself. Measured with the
/// black-box test `pdf_forms::parallel` (a 4.5 MB form of 42,700 objects): the server's peak
/// rose by 42 MiB for one parse, 9.8 bytes per byte, once the loader keeps only what the form
/// is read from (113 MiB, 25 per byte, before); 12 leaves a margin.
pub const PARSE_BYTES_PER_BODY_BYTE: u64 = 12;
/// Memory every parse is assumed to need whatever its size (buffers, the parse thread's stack).
const PARSE_BASE_BYTES: u64 = 1 << 20;

/// Parse threads: half the host's cores, one to four. Each may keep a heap arena of its own,
/// and parses that share a core each take twice as long, against `pdf_parse_secs`.
pub fn parse_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    (cores / 2).clamp(1, 4)
}

/// What a refused request is told to wait before it tries again.
const RETRY_AFTER_SECS: u64 = 5;

type Job = Box<dyn FnOnce() + Send>;

/// Memory budget and threads for PDF-family parses; one per server.
pub struct PdfGate {
    memory: Arc<Semaphore>,
    /// The budget in KiB (the semaphore's unit).
    total_kib: u32,
    /// One permit per idle parse thread.
    threads: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    /// How long a request waits for memory, and then for a thread.
    pub max_wait: Duration,
}

/// Memory reserved for one request: the body's share and the parse's share.
pub struct Reservation {
    _body: OwnedSemaphorePermit,
    parse: OwnedSemaphorePermit,
}

impl PdfGate {
    /// A gate over `budget_bytes`, with `threads` parse threads (at least one).
    pub fn new(budget_bytes: u64, threads: usize, max_wait: Duration) -> std::io::Result<Self> {
        // Two KiB at least, so a body share and a parse share always fit.
        let total_kib = u32::try_from(budget_bytes / 1024)
            .unwrap_or(u32::MAX)
            .max(2);
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("pdf-parse-{i}"))
                .spawn(move || worker(&queue))?;
        }
        Ok(PdfGate {
            memory: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            threads: Arc::new(Semaphore::new(threads)),
            jobs,
            max_wait,
        })
    }

    /// Reserves what parsing a body of `body_bytes` needs, waiting at most `max_wait`.
    pub async fn reserve(&self, body_bytes: u64) -> Result<Reservation, ClientError> {
        let kib = |bytes: u64| u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        let parse_bytes = body_bytes
            .saturating_mul(PARSE_BYTES_PER_BODY_BYTE)
            .saturating_add(PARSE_BASE_BYTES);
        let body = kib(body_bytes).min(self.total_kib - 1).max(1);
        let parse = kib(parse_bytes).min(self.total_kib - body).max(1);
        let wait = self.memory.clone().acquire_many_owned(body + parse);
        let mut permit = match tokio::time::timeout(self.max_wait, wait).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(self.busy()),
        };
        let parse = permit.split(parse as usize).ok_or_else(|| self.busy())?;
        Ok(Reservation {
            _body: permit,
            parse,
        })
    }

    /// Runs `parse` on a parse thread once one is free (waiting at most `max_wait`). The
    /// reservation's parse share goes with it and is returned when `parse` ends; the caller
    /// keeps `reservation` (the body's share) until it no longer holds the body.
    pub async fn run<T: Send + 'static>(
        &self,
        reservation: &mut Reservation,
        parse: impl FnOnce() -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, ClientError> {
        let wait = self.threads.clone().acquire_owned();
        let thread = match tokio::time::timeout(self.max_wait, wait).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(self.busy()),
        };
        let memory = reservation.parse.split(reservation.parse.num_permits());
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let result = parse();
            // Memory and thread go back once the work is really over, even when the request
            // stopped waiting for it.
            drop(memory);
            drop(thread);
            let _ = tx.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| ClientError::unavailable())?;
        Ok(rx)
    }

    /// 503 `pdf_busy`: the budget stayed spent for `max_wait`.
    fn busy(&self) -> ClientError {
        let mut err = ClientError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "pdf_busy",
            "The server is reading other PDF forms right now; nothing was kept. Please try again shortly.",
        );
        err.retry_after_secs = Some(RETRY_AFTER_SECS);
        err
    }
}

/// A parse thread: runs jobs until the gate is dropped. A panic in a job (which the parsers
/// never mean to raise) ends that job, not the thread.
fn worker(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[tokio::test]
    async fn a_spent_budget_makes_the_next_post_wait_then_503_and_is_returned_after_use() {
        let gate = PdfGate::new(8 * MIB, 1, Duration::from_millis(200)).unwrap();
        // 1 MiB of body asks for 1 + 12 + 1 MiB: more than the budget, so all of it.
        let mut first = gate.reserve(MIB).await.unwrap();
        let busy = gate.reserve(1024).await.err().unwrap();
        assert_eq!((busy.status.as_u16(), busy.code), (503, "pdf_busy"));
        assert_eq!(busy.retry_after_secs, Some(RETRY_AFTER_SECS));
        // The parse's share comes back when the parse ends; the body's when `first` goes.
        let parsed = gate.run(&mut first, || 7).await.unwrap().await.unwrap();
        assert_eq!(parsed, 7);
        let small = gate.reserve(1024).await.unwrap();
        drop(small);
        drop(first);
        let all_again = gate.reserve(MIB).await.unwrap();
        drop(all_again);
    }

    #[tokio::test]
    async fn a_panicking_parse_ends_its_job_not_the_thread() {
        let gate = PdfGate::new(64 * MIB, 1, Duration::from_secs(30)).unwrap();
        let mut r = gate.reserve(1024).await.unwrap();
        let rx = gate
            .run(&mut r, || -> u8 { panic!("a parser bug") })
            .await
            .unwrap();
        assert!(rx.await.is_err());
        let mut r = gate.reserve(1024).await.unwrap();
        assert_eq!(gate.run(&mut r, || 1).await.unwrap().await.unwrap(), 1);
    }
}
