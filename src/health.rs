//! Each sink's health: checked in the background when the service starts and every minute
//! after, never on the way of a request. A sink that cannot be reached does not stop the
//! service from accepting submissions (they wait, sealed, in the spool); it is reported in the
//! log (once per change), in `/readyz`'s detail and by `secureform check --online`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::registry::BuiltSink;

/// How long one sink's check may take before it counts as failing.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the checks run.
const INTERVAL: Duration = Duration::from_secs(60);

/// What is known of one sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Health {
    /// Not checked yet.
    Unknown,
    /// The last check passed.
    Ok,
    /// The last check failed; `reason` says why (a server's reply or a network error, never
    /// submitted data).
    Failing { reason: String },
}

/// The sinks' last known health, shared with `/readyz`.
#[derive(Default)]
pub struct SinkHealth {
    states: Mutex<BTreeMap<String, Health>>,
}

impl SinkHealth {
    /// Every sink's last known health.
    pub fn snapshot(&self) -> BTreeMap<String, Health> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Health>> {
        // A panic elsewhere cannot leave a half-written map: each update is one insert.
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a check's result; logs it when it differs from the last one.
    fn record(&self, sink: &str, health: Health) {
        let previous = self.lock().insert(sink.to_owned(), health.clone());
        if previous.as_ref() == Some(&health) {
            return;
        }
        match &health {
            Health::Ok => tracing::info!(sink, "sink reachable"),
            Health::Failing { reason } => {
                tracing::warn!(sink, reason = %reason, "sink failing its health check; submissions wait in the spool")
            }
            Health::Unknown => {}
        }
    }
}

/// Checks one sink within [`CHECK_TIMEOUT`].
pub async fn check(sink: &BuiltSink) -> Health {
    match tokio::time::timeout(CHECK_TIMEOUT, sink.healthcheck()).await {
        Ok(Ok(())) => Health::Ok,
        Ok(Err(e)) => Health::Failing {
            reason: e.into_message(),
        },
        Err(_) => Health::Failing {
            reason: format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
        },
    }
}

/// Checks every sink at once.
pub async fn check_all(sinks: &BTreeMap<String, Arc<BuiltSink>>) -> BTreeMap<String, Health> {
    let checks = sinks
        .iter()
        .map(|(name, sink)| async move { (name.clone(), check(sink).await) });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .collect()
}

/// Starts the background checks; returns the shared state at once (every sink `Unknown`).
pub fn start(sinks: &BTreeMap<String, Arc<BuiltSink>>) -> Arc<SinkHealth> {
    let health = Arc::new(SinkHealth::default());
    for name in sinks.keys() {
        health.lock().insert(name.clone(), Health::Unknown);
    }
    let sinks = sinks.clone();
    let shared = Arc::clone(&health);
    tokio::spawn(async move {
        loop {
            for (name, result) in check_all(&sinks).await {
                shared.record(&name, result);
            }
            tokio::time::sleep(INTERVAL).await;
        }
    });
    health
}
