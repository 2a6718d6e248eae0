//! The dispatcher: one independent queue per sink, at-least-once delivery.
//!
//! Each sink has its own worker task that takes the deliveries due for it from the spool, hands
//! them to the sink (a few at a time), and records each outcome durably. Sinks only *classify*
//! failures; this is the one place that decides what happens next:
//!
//! - delivered: the receipt is kept;
//! - retryable: tried again after an exponential backoff with full jitter (half to all of
//!   `base × 2^attempts`, capped), until `max_attempts` or `max_age_secs` is reached: then dead.
//!   When the sink reports that the peer asked for a wait (`Retry-After`, see
//!   [`DeliveryError::retry_after`]), the next attempt waits the longer of the backoff and that
//!   wait, the wait being capped at [`RETRY_AFTER_MAX`] (an hour): a peer can slow its own
//!   queue down, never hurry it, nor park it for a day;
//! - permanent: dead at once, with the sink's reason kept.
//!
//! A slow or failing sink only holds back its own queue: ingestion never waits for delivery, and
//! the other sinks' workers run on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use secureform_contract::{Delivery, DeliveryError, FailureReason, FileSource};
use tokio::sync::Notify;

use crate::config::DispatchConfig;
use crate::metrics::Metrics;
use crate::registry::BuiltSink;
use crate::spool::{DeliveryRow, Outcome, Spool, SpoolError};

/// This many submissions arriving while a worker delivered its last batch means ingestion is
/// busy.
const INGEST_BUSY: u64 = 64;
/// How long a sink worker waits before a batch once ingestion has been busy during the last
/// one; the wait doubles while ingestion stays busy, up to [`YIELD_TO_INGEST_MAX`].
const YIELD_TO_INGEST: Duration = Duration::from_millis(100);
/// The longest wait: under sustained overload, delivery keeps a floor of one batch
/// (`concurrency × 4` rows) per second and sink, and drains the backlog once the burst is over.
const YIELD_TO_INGEST_MAX: Duration = Duration::from_secs(1);

/// The first wait after the spool could not be read; it doubles up to [`SPOOL_RETRY_MAX`] while
/// the spool stays unreadable (a database outage), and is back to this after a read.
const SPOOL_RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest wait between reads of an unreadable spool.
const SPOOL_RETRY_MAX: Duration = Duration::from_secs(8);

/// The longest wait a peer's `Retry-After` can impose on the next attempt (the backoff itself
/// may be longer: it is never shortened).
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Wakes the sink workers when new work arrives.
#[derive(Clone, Default)]
pub struct Dispatch {
    wakers: BTreeMap<String, Arc<Notify>>,
}

impl Dispatch {
    /// Tells the workers of these sinks that there is new work.
    pub fn notify(&self, sinks: &[String]) {
        for sink in sinks {
            if let Some(n) = self.wakers.get(sink) {
                n.notify_one();
            }
        }
    }

    /// Wakes every worker (after a retry request, for instance).
    pub fn notify_all(&self) {
        for n in self.wakers.values() {
            n.notify_one();
        }
    }
}

/// Starts one worker per sink on the current Tokio runtime.
pub fn start(
    spool: Arc<Spool>,
    sinks: &BTreeMap<String, Arc<BuiltSink>>,
    config: DispatchConfig,
    metrics: Arc<Metrics>,
) -> Dispatch {
    let mut wakers = BTreeMap::new();
    for (name, sink) in sinks {
        let notify = Arc::new(Notify::new());
        wakers.insert(name.clone(), Arc::clone(&notify));
        let worker = Worker {
            name: name.clone(),
            sink: Arc::clone(sink),
            spool: Arc::clone(&spool),
            config: config.clone(),
            metrics: Arc::clone(&metrics),
        };
        tokio::spawn(worker.run(notify));
    }
    let dispatch = Dispatch { wakers };
    // A shared spool announces work accepted by other instances.
    if let Some(mut wakeups) = spool.wakeups() {
        let dispatch = dispatch.clone();
        tokio::spawn(async move {
            loop {
                match wakeups.recv().await {
                    Ok(sink) if sink.is_empty() => dispatch.notify_all(),
                    Ok(sink) => dispatch.notify(&[sink]),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        dispatch.notify_all()
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    dispatch
}

struct Worker {
    name: String,
    sink: Arc<BuiltSink>,
    spool: Arc<Spool>,
    config: DispatchConfig,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, notify: Arc<Notify>) {
        let this = Arc::new(self);
        let mut arrivals = this.spool.arrivals();
        let mut pause = YIELD_TO_INGEST;
        // While the spool cannot be read (its database is away), wait longer each time.
        let mut unavailable = SPOOL_RETRY_MIN;
        loop {
            // Accepting comes first: while submissions pour in, pause before each batch, longer
            // the longer the burst lasts, so delivery (its fsyncs and its CPU) takes a bounded
            // share of the machine. A trickle is delivered at once, and a backlog at full speed
            // once the burst is over.
            if this.spool.arrivals().wrapping_sub(arrivals) >= INGEST_BUSY {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(YIELD_TO_INGEST_MAX);
            } else {
                pause = YIELD_TO_INGEST;
            }
            arrivals = this.spool.arrivals();
            let due = match this
                .spool
                .due(&this.name, this.config.concurrency * 4)
                .await
            {
                Ok(rows) => {
                    unavailable = SPOOL_RETRY_MIN;
                    rows
                }
                Err(e) => {
                    tracing::error!(sink = %this.name, error = %e,
                        retry_in_ms = unavailable.as_millis() as u64, "reading due deliveries failed");
                    tokio::time::sleep(unavailable).await;
                    unavailable = (unavailable * 2).min(SPOOL_RETRY_MAX);
                    continue;
                }
            };
            if due.is_empty() {
                let wait = this.idle_wait().await;
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            futures_util::stream::iter(due)
                .for_each_concurrent(this.config.concurrency, |row| {
                    let this = Arc::clone(&this);
                    async move { this.deliver_one(row).await }
                })
                .await;
        }
    }

    /// How long to sleep when nothing is due: until the next retry is due, at most a minute.
    async fn idle_wait(&self) -> Duration {
        let next = self.spool.next_due_ms(&self.name).await.ok().flatten();
        let ms = next
            .map(|t| (t - self.spool.now_ms()).clamp(5, 60_000))
            .unwrap_or(60_000);
        Duration::from_millis(ms as u64)
    }

    async fn deliver_one(&self, row: DeliveryRow) {
        let started = std::time::Instant::now();
        let outcome = match self.attempt(&row).await {
            Ok(receipt) => Outcome::Delivered {
                kind: receipt.kind,
                value: receipt.value,
            },
            Err(e) => self.after_failure(&row, e),
        };
        let label = match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Retry { .. } => "retrying",
            Outcome::Dead { .. } => "dead",
        };
        self.metrics
            .delivery(&self.name, label, started.elapsed().as_secs_f64());
        match &outcome {
            Outcome::Delivered { .. } => tracing::info!(
                submission = %row.submission_id, sink = %self.name, attempts = row.attempts + 1,
                "delivered"
            ),
            Outcome::Retry {
                error,
                failure,
                next_attempt_ms,
            } => tracing::warn!(
                submission = %row.submission_id, sink = %self.name, attempts = row.attempts + 1,
                error = %error, failure_reason = %failure, retry_in_ms = next_attempt_ms - self.spool.now_ms(),
                "delivery failed; will retry"
            ),
            Outcome::Dead { reason, failure } => tracing::error!(
                submission = %row.submission_id, sink = %self.name, attempts = row.attempts + 1,
                reason = %reason, failure_reason = %failure, "delivery is dead"
            ),
        }
        if let Err(e) = self
            .spool
            .record(&row.submission_id, &self.name, outcome)
            .await
        {
            // Not recorded: the delivery stays due and will be attempted again (at least once).
            tracing::error!(submission = %row.submission_id, sink = %self.name, error = %e,
                "recording a delivery outcome failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn attempt(
        &self,
        row: &DeliveryRow,
    ) -> Result<secureform_contract::Receipt, DeliveryError> {
        let loaded = self.spool.load(&row.submission_id).await;
        let submission = match loaded {
            Ok(s) => Arc::new(s),
            Err(SpoolError::NotFound(_)) => {
                return Err(DeliveryError::permanent(
                    FailureReason::Payload,
                    "the submission's payload is no longer in the spool",
                ))
            }
            Err(e) => {
                return Err(DeliveryError::retryable(
                    FailureReason::Internal,
                    e.to_string(),
                ))
            }
        };
        let files: Arc<dyn FileSource> = Arc::new(self.spool.files(&row.submission_id));
        self.sink.deliver(&Delivery::new(&submission, &files)).await
    }

    fn after_failure(&self, row: &DeliveryRow, error: DeliveryError) -> Outcome {
        let attempts = row.attempts + 1;
        let age_secs = (self.spool.now_ms() - row.accepted_ms).max(0) as u64 / 1000;
        // Giving up keeps the last failure's reason: it says why the delivery never got through.
        let failure = error.reason();
        if !error.is_retryable() {
            return Outcome::Dead {
                reason: error.into_message(),
                failure,
            };
        }
        if attempts >= self.config.max_attempts {
            return Outcome::Dead {
                reason: format!(
                    "gave up after {attempts} attempts; last error: {}",
                    error.message()
                ),
                failure,
            };
        }
        if age_secs >= self.config.max_age_secs {
            return Outcome::Dead {
                reason: format!(
                    "gave up after {age_secs} s; last error: {}",
                    error.message()
                ),
                failure,
            };
        }
        let delay = retry_delay_ms(backoff_ms(&self.config, attempts), error.retry_after());
        Outcome::Retry {
            error: error.into_message(),
            failure,
            next_attempt_ms: self
                .spool
                .now_ms()
                .saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)),
        }
    }
}

/// The wait before the next attempt: the backoff, or the peer's `retry_after` (capped at
/// [`RETRY_AFTER_MAX`]) when that is longer.
pub fn retry_delay_ms(backoff_ms: u64, retry_after: Option<Duration>) -> u64 {
    let asked = retry_after
        .map(|d| d.min(RETRY_AFTER_MAX).as_millis())
        .map(|ms| u64::try_from(ms).unwrap_or(u64::MAX))
        .unwrap_or(0);
    backoff_ms.max(asked)
}

/// Full-jitter exponential backoff: a random delay between half and all of
/// `base × 2^(attempts-1)`, capped at `backoff_max_ms`.
pub fn backoff_ms(config: &DispatchConfig, attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(32);
    let ceiling = config
        .backoff_base_ms
        .saturating_mul(1u64 << exp)
        .min(config.backoff_max_ms)
        .max(1);
    rand::thread_rng().gen_range(ceiling / 2..=ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let c = DispatchConfig {
            backoff_base_ms: 100,
            backoff_max_ms: 1_000,
            ..DispatchConfig::default()
        };
        for _ in 0..100 {
            let first = backoff_ms(&c, 1);
            assert!((50..=100).contains(&first));
            let third = backoff_ms(&c, 3);
            assert!((200..=400).contains(&third));
            assert!(backoff_ms(&c, 40) <= 1_000);
        }
    }

    #[test]
    fn retry_after_lengthens_the_backoff_never_shortens_it_and_is_capped() {
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(retry_delay_ms(500, None), 500);
        assert_eq!(retry_delay_ms(500, secs(3)), 3_000, "the peer's wait wins");
        assert_eq!(retry_delay_ms(8_000, secs(3)), 8_000, "the backoff wins");
        assert_eq!(retry_delay_ms(500, secs(0)), 500);
        assert_eq!(
            retry_delay_ms(500, secs(86_400)),
            3_600_000,
            "capped at an hour"
        );
        assert_eq!(
            retry_delay_ms(7_200_000, secs(86_400)),
            7_200_000,
            "a longer backoff stays"
        );
        assert_eq!(retry_delay_ms(500, Some(Duration::MAX)), 3_600_000);
    }
}
