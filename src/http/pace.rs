//! Slow clients: a request body must arrive whole before a deadline, and at a minimum rate
//! meanwhile, or it is cut off and answered 408 `body_timeout`.
//!
//! actix bounds the time to send the request head (`client_request_timeout`, see
//! `http::start`) but not the body: without this, a client that sends one byte every few
//! seconds holds a connection and a worker's buffers for ever.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::StatusCode;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::ClientError;
use crate::limits::Limits;

/// The rate is measured over windows of this length: each must bring `min_rate × WINDOW` bytes.
pub const WINDOW: Duration = Duration::from_secs(10);

/// How fast a body must arrive.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// The whole body must have arrived within this time of the first read.
    pub total: Duration,
    /// Bytes per second, averaged over each [`WINDOW`]; 0 turns the rate check off.
    pub min_bytes_per_sec: u64,
}

impl Pace {
    /// The pace of bodies that are not multipart.
    pub fn body(limits: &Limits) -> Self {
        Pace {
            total: Duration::from_secs(limits.body_read_secs),
            min_bytes_per_sec: limits.min_body_bytes_per_sec,
        }
    }

    /// The pace of multipart bodies (uploads).
    pub fn upload(limits: &Limits) -> Self {
        Pace {
            total: Duration::from_secs(limits.upload_read_secs),
            min_bytes_per_sec: limits.min_body_bytes_per_sec,
        }
    }
}

/// The 408 answer to a body that came too slowly.
pub fn too_slow(pace: &Pace) -> ClientError {
    ClientError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_timeout",
        format!(
            "The request body arrived too slowly (it must arrive within {} s, at {} bytes/s at least).",
            pace.total.as_secs(),
            pace.min_bytes_per_sec
        ),
    )
}

/// Set once a [`Paced`] stream has cut its body off, so a reader that turns every stream error
/// into its own (the multipart reader) can still be answered 408.
#[derive(Clone, Default)]
pub struct SlowFlag(Arc<AtomicBool>);

impl SlowFlag {
    /// Whether the body was cut off for being too slow.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a [`Paced`] stream yields instead of its inner error.
#[derive(Debug)]
pub enum PacedError<E> {
    /// The inner stream failed.
    Inner(E),
    /// The deadline passed, or a window brought too few bytes.
    TooSlow,
}

/// A body stream cut off when it is too slow.
pub struct Paced<S> {
    inner: S,
    pace: Pace,
    deadline: Instant,
    window_end: Instant,
    window_bytes: u64,
    timer: Pin<Box<Sleep>>,
    flag: SlowFlag,
}

impl<S> Paced<S> {
    /// Starts the clocks now.
    pub fn new(inner: S, pace: Pace) -> Self {
        let now = Instant::now();
        // A configured deadline past a year is no deadline; capping it keeps the sum in range.
        let deadline = now + pace.total.min(Duration::from_secs(365 * 24 * 3600));
        Paced {
            inner,
            pace,
            deadline,
            window_end: now + WINDOW,
            window_bytes: 0,
            timer: Box::pin(tokio::time::sleep_until(deadline.min(now + WINDOW))),
            flag: SlowFlag::default(),
        }
    }

    /// The flag set when this stream cuts its body off.
    pub fn flag(&self) -> SlowFlag {
        self.flag.clone()
    }

    /// Whether the body is too slow at `now`; moves on to the next window when one is over.
    fn too_slow(&mut self, now: Instant) -> bool {
        if now >= self.deadline {
            return true;
        }
        while now >= self.window_end {
            let needed = self.pace.min_bytes_per_sec.saturating_mul(WINDOW.as_secs());
            if self.window_bytes < needed {
                return true;
            }
            self.window_bytes = 0;
            self.window_end += WINDOW;
        }
        false
    }

    fn cut_off<E>(&mut self) -> Poll<Option<Result<Bytes, PacedError<E>>>> {
        self.flag.0.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(PacedError::TooSlow)))
    }
}

impl<S, E> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, PacedError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.flag.is_set() {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.window_bytes = this.window_bytes.saturating_add(chunk.len() as u64);
                    if this.too_slow(Instant::now()) {
                        return this.cut_off();
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(PacedError::Inner(e)))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
            // Waiting for the client: wake at the next check, the deadline or a window's end.
            if this.too_slow(Instant::now()) {
                return this.cut_off();
            }
            let next_check = this.deadline.min(this.window_end);
            this.timer.as_mut().reset(next_check);
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    type Chunk = Result<Bytes, std::convert::Infallible>;

    fn pace(total: u64, rate: u64) -> Pace {
        Pace {
            total: Duration::from_secs(total),
            min_bytes_per_sec: rate,
        }
    }

    /// One byte every `gap`, `n` times.
    fn dribble(gap: Duration, n: usize) -> impl Stream<Item = Chunk> + Unpin {
        Box::pin(futures_util::stream::unfold(0, move |i| async move {
            if i == n {
                return None;
            }
            tokio::time::sleep(gap).await;
            Some((Ok(Bytes::from_static(b"x")), i + 1))
        }))
    }

    async fn drain<
        S: Stream<Item = Result<Bytes, PacedError<std::convert::Infallible>>> + Unpin,
    >(
        mut s: S,
    ) -> Result<usize, ()> {
        let mut n = 0;
        while let Some(chunk) = s.next().await {
            n += chunk.map_err(|_| ())?.len();
        }
        Ok(n)
    }

    #[tokio::test(start_paused = true)]
    async fn a_byte_every_five_seconds_is_cut_off_by_the_rate() {
        let paced = Paced::new(dribble(Duration::from_secs(5), 1000), pace(3600, 1));
        let flag = paced.flag();
        let started = Instant::now();
        assert_eq!(drain(paced).await, Err(()));
        assert!(flag.is_set());
        assert!(started.elapsed() <= WINDOW * 2, "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_cut_off_at_the_deadline_even_without_a_rate() {
        let paced = Paced::new(dribble(Duration::from_secs(100_000), 1), pace(30, 0));
        let started = Instant::now();
        assert_eq!(drain(paced).await, Err(()));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_passes() {
        // 1000 bytes at 100 bytes/s against a minimum of 50.
        let paced = Paced::new(dribble(Duration::from_millis(10), 1000), pace(60, 50));
        let flag = paced.flag();
        assert_eq!(drain(paced).await, Ok(1000));
        assert!(!flag.is_set());
    }
}
