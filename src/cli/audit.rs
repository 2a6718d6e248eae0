//! `secureform audit verify|export`, and recording what the command line reads and erases.
#![deny(clippy::print_stdout)]

use crate::audit::{cli_actor, Action, NewEntry, Walker};
use crate::config::Config;
use crate::spool::AuditLog;

/// Entries read at a time.
const PAGE: i64 = 1000;

/// Records, durably, that the OS user running this command did `action` on `id` (before
/// anything is shown or removed).
pub async fn record(
    config: &Config,
    action: Action,
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
    action: Action,
    id: &str,
    reason: Option<&str>,
    detail: Option<String>,
) -> anyhow::Result<()> {
    let at_ms = crate::clock::service_clock().now_ms();
    log.append(&NewEntry {
        at_ms,
        actor: cli_actor(),
        action: action.as_str().to_owned(),
        id: id.to_owned(),
        reason: reason.map(str::to_owned),
        detail,
    })
    .await
    .map_err(|e| anyhow::anyhow!("recording the read in the audit log failed: {e}"))?;
    Ok(())
}

/// `audit verify`: walks the chain; fails naming the first entry that does not hold, or when
/// `head` (SEQ:HASH, kept from an earlier run) is not in the chain any more.
pub async fn verify(config: &Config, json: bool, head: Option<&str>) -> anyhow::Result<()> {
    let kept = head.map(parse_head).transpose()?;
    let log = AuditLog::open(config).await?;
    let mut walker = Walker::default();
    let mut kept_found = None;
    let mut after = 0;
    loop {
        let page = log.page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if let Some((seq, _)) = &kept {
                if entry.seq == *seq {
                    kept_found = entry.hash.clone();
                }
            }
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
    if let Some((seq, hash)) = &kept {
        if kept_found.as_deref() != Some(hash.as_str()) {
            let why = match &kept_found {
                None => format!("entry {seq} is gone: the newest entries were cut off"),
                Some(_) => format!("entry {seq} has another hash: the chain was rebuilt"),
            };
            if json {
                out!(
                    "{}",
                    serde_json::json!({"ok": false, "first_bad_seq": seq, "why": why})
                )?;
            }
            anyhow::bail!("the audit log does not hold the head you kept: {why}");
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
            out!("check it later with: secureform audit verify --head {seq}:{hash}")?;
        }
    }
    Ok(())
}

/// A kept head, `SEQ:HASH` (the hash as 64 hex digits).
fn parse_head(text: &str) -> anyhow::Result<(i64, String)> {
    let parsed = text.split_once(':').and_then(|(seq, hash)| {
        let hash = hash.trim().to_ascii_lowercase();
        let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        Some((seq.trim().parse::<i64>().ok()?, hash)).filter(|_| ok)
    });
    parsed.ok_or_else(|| {
        anyhow::anyhow!("--head takes SEQ:HASH as `audit verify` prints it, e.g. 42:3f9a…")
    })
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
