//! `secureform audit verify|export`, and recording what the command line reads and erases.
#![deny(clippy::print_stdout)]

use crate::audit::{cli_actor, NewEntry, Walker};
use crate::config::Config;
use crate::spool::AuditLog;

/// Entries read at a time.
const PAGE: i64 = 1000;

/// Records, durably, that the OS user running this command did `action` on `id` (before
/// anything is shown or removed).
pub async fn record(
    config: &Config,
    action: &str,
    id: &str,
    reason: Option<&str>,
    detail: Option<String>,
) -> anyhow::Result<()> {
    let log = AuditLog::open(config).await?;
    record_in(&log, action, id, reason, detail).await
}

/// Like [`record`], on a log already open.
pub async fn record_in(
    log: &AuditLog,
    action: &str,
    id: &str,
    reason: Option<&str>,
    detail: Option<String>,
) -> anyhow::Result<()> {
    let at_ms = crate::clock::service_clock().now_ms();
    log.append(&NewEntry {
        at_ms,
        actor: cli_actor(),
        action: action.to_owned(),
        id: id.to_owned(),
        reason: reason.map(str::to_owned),
        detail,
    })
    .await
    .map_err(|e| anyhow::anyhow!("recording the read in the audit log failed: {e}"))?;
    Ok(())
}

/// `audit verify`: walks the chain; fails naming the first entry that does not hold.
pub async fn verify(config: &Config, json: bool) -> anyhow::Result<()> {
    let log = AuditLog::open(config).await?;
    let mut walker = Walker::default();
    let mut after = 0;
    loop {
        let page = log.page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if let Err(broken) = walker.check(entry) {
                if json {
                    out!(
                        "{}",
                        serde_json::json!({"ok": false, "first_bad_seq": broken.seq, "why": broken.why})
                    )?;
                }
                anyhow::bail!("the audit log does not verify: {broken}");
            }
        }
    }
    let verified = walker.finish();
    if json {
        out!(
            "{}",
            serde_json::json!({"ok": true, "entries": verified.entries,
                "head_seq": verified.head_seq, "head_hash": verified.head_hash})
        )?;
    } else {
        out!("audit log: {} entries, chain intact", verified.entries)?;
        if let (Some(seq), Some(hash)) = (verified.head_seq, &verified.head_hash) {
            out!("head: entry {seq}, hash {hash} (keep it elsewhere to detect a cut tail)")?;
        }
    }
    Ok(())
}

/// `audit export`: every entry after `after` as JSON lines, oldest first.
pub async fn export(config: &Config, mut after: i64) -> anyhow::Result<()> {
    let log = AuditLog::open(config).await?;
    loop {
        let page = log.page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            out!("{}", serde_json::to_string(entry)?)?;
        }
    }
    Ok(())
}
