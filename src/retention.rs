//! Retention: a sweeper erases what has been kept for its form's `retain_days` (or `[retention]
//! default_days`): documents in the documents sinks' stores, by their `received_at`, and
//! submissions still in the spool whose deliveries are all done (delivered or dead), by their
//! acceptance time. Nothing is erased for a form kept forever (0 or absent). It runs once at
//! start, then every `[retention] sweep_secs`; each erasure is an audit entry (actor `service`,
//! reason `retention`). Time is the spool's clock (`crate::clock`).
//!
//! The same timer removes the idempotency keys past their 48-hour window (on both spool
//! backends), which would otherwise stay until the same key came again.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::Reason;
use crate::config::Config;
use crate::documents::DocumentStores;
use crate::spool::Spool;

const DAY_MS: i64 = 86_400_000;

/// What one sweep erased.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub documents: usize,
    pub submissions: usize,
}

/// Starts the sweeper; it runs for the life of the process.
pub fn start(
    spool: Arc<Spool>,
    documents: Arc<DocumentStores>,
    config: Arc<Config>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(config.retention.sweep_secs.max(1));
        loop {
            match sweep(&spool, &documents, &config).await {
                Ok(s) if s == Swept::default() => {}
                Ok(s) => tracing::info!(
                    documents = s.documents,
                    submissions = s.submissions,
                    "retention: erased what was kept long enough"
                ),
                Err(e) => tracing::error!(error = %e, "retention sweep failed; trying again later"),
            }
            match spool.purge_expired_keys().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "expired idempotency keys removed"),
                Err(e) => {
                    tracing::warn!(error = %e, "removing expired idempotency keys failed; trying again later")
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// Whether something received at `at_ms` of `form` is past its retention at `now_ms`.
fn expired(config: &Config, form: &str, at_ms: i64, now_ms: i64) -> bool {
    match config.retain_days(form) {
        None => false,
        Some(days) => at_ms.saturating_add(i64::from(days).saturating_mul(DAY_MS)) <= now_ms,
    }
}

fn rfc3339_ms(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// One sweep over every documents store and the spool.
pub async fn sweep(
    spool: &Spool,
    documents: &Arc<DocumentStores>,
    config: &Config,
) -> anyhow::Result<Swept> {
    let mut swept = Swept::default();
    let keeps_all = config.retention.default_days == 0
        && config
            .forms
            .values()
            .all(|f| f.retain_days.unwrap_or(0) == 0);
    if keeps_all {
        return Ok(swept);
    }
    let now_ms = spool.now_ms();
    let names: Vec<String> = documents.names().iter().map(|n| (*n).to_owned()).collect();
    for sink in names {
        let stores = Arc::clone(documents);
        let name = sink.clone();
        let listing = tokio::task::spawn_blocking(move || {
            let (_, store) = stores.pick(Some(&name))?;
            Ok::<_, anyhow::Error>(store.list(None)?)
        })
        .await??;
        for doc in listing.documents {
            let Some(at) = rfc3339_ms(&doc.received_at) else {
                continue;
            };
            if !expired(config, &doc.form, at, now_ms) {
                continue;
            }
            let stores = Arc::clone(documents);
            let (name, id) = (sink.clone(), doc.id.clone());
            let erased = tokio::task::spawn_blocking(move || {
                crate::erasure::erase_document(&stores, Some(&name), &id)
            })
            .await?;
            match erased {
                Ok(erased) => {
                    for (s, e) in &erased {
                        spool
                            .audit_entry(
                                "service",
                                crate::audit::Action::EraseDocument,
                                &doc.id,
                                Some(Reason::Retention.as_str()),
                                Some(crate::erasure::detail(s, e)),
                            )
                            .await?;
                    }
                    swept.documents += 1;
                    tracing::info!(document = %doc.id, sink = %sink, "retention: document erased");
                }
                // Erased meanwhile (by a request): nothing left to do.
                Err(crate::erasure::EraseError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for (id, form, accepted_ms) in spool.erasable().await? {
        if !expired(config, &form, accepted_ms, now_ms) {
            continue;
        }
        let ended = match spool.erase(&id).await {
            Ok(n) => n,
            // Erased meanwhile (by a request, or another instance on a shared spool).
            Err(crate::spool::SpoolError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        spool
            .audit_entry(
                "service",
                crate::audit::Action::EraseSubmission,
                &id,
                Some(Reason::Retention.as_str()),
                Some(format!("deliveries_ended={ended}")),
            )
            .await?;
        swept.submissions += 1;
        tracing::info!(submission = %id, "retention: spooled submission erased");
    }
    Ok(swept)
}

/// How a form's retention is stated to people (thank-you page, `GET /api/v1/forms`).
pub fn statement(days: Option<u32>) -> String {
    match days {
        None => "Submissions to this form are kept until they are deleted on request.".to_owned(),
        Some(1) => "Submissions to this form are deleted 1 day after they are received.".to_owned(),
        Some(d) => {
            format!("Submissions to this form are deleted {d} days after they are received.")
        }
    }
}
