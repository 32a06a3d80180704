//! Background tasks: expiring operations at window end, watching TLS files, sampling the
//! store size.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::TlsSection;
use crate::core::Core;
use crate::transport::tls::ReloadableTls;

/// Operations expired per sweep round; more wait for the next round.
const SWEEP_LIMIT: usize = 10_000;

/// How long a replica's lease on a housekeeping task lasts (renewed at half time): another
/// replica takes over this long after the holder stopped.
const LEASE_SECONDS: i64 = 30;

/// Whether this replica runs `task` now (always, on an embedded store).
fn leased(core: &Core, task: &str) -> bool {
    match core.ledger.hold_lease(task, Core::now(), LEASE_SECONDS) {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, task, "cannot take the housekeeping lease; skipped");
            false
        }
    }
}

/// Wakes this replica's alert subscribers when other replicas sharing the store queued
/// alerts (a no-op task on an embedded store, which has no other writer).
pub async fn alert_wakeups(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    let Some(mut wakeups) = core.ledger.store().wakeups() else {
        return;
    };
    loop {
        tokio::select! {
            changed = wakeups.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        let ledger = core.ledger.clone();
        match tokio::task::spawn_blocking(move || ledger.refresh_alert_hub()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "alert wake-up: cannot read the queues"),
            Err(e) => tracing::error!(error = %e, "alert wake-up task failed"),
        }
    }
}

pub async fn expiry_sweeper(core: Arc<Core>, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if !leased(&core, "expiry") {
            continue;
        }
        loop {
            match core.ledger.sweep_expired(Core::now(), SWEEP_LIMIT) {
                Ok((count, notes)) => {
                    if let Err(e) = core.durable(notes).await {
                        tracing::error!(error = %e, "expiry sweep not flushed");
                        break;
                    }
                    if count > 0 {
                        core.metrics.operations_expired.inc_by(count as u64);
                        tracing::info!(expired = count, "operations expired");
                    }
                    if count < SWEEP_LIMIT {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "expiry sweep failed");
                    break;
                }
            }
        }
    }
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads TLS material when the CRL or a certificate file changes.
pub async fn tls_file_watcher(
    tls: Arc<ReloadableTls>,
    paths: TlsSection,
    every: Duration,
    metrics: Arc<crate::ops::metrics::Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    // A stale CRL is said again every minute (and shown by the metric all along).
    let mut said_stale: Option<std::time::Instant> = None;
    let files: Vec<std::path::PathBuf> = [
        Some(paths.ca_cert.clone()),
        Some(paths.server_cert.clone()),
        Some(paths.server_key.clone()),
        paths.crl.clone(),
    ]
    .into_iter()
    .flatten()
    .chain(
        paths
            .partner_cas
            .iter()
            .flat_map(|p| [Some(p.ca_cert.clone()), p.crl.clone()])
            .flatten(),
    )
    .collect();
    let mut seen: Vec<Option<SystemTime>> = files.iter().map(|f| mtime(f)).collect();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now: Vec<Option<SystemTime>> = files.iter().map(|f| mtime(f)).collect();
        if now != seen {
            seen = now;
            match tls.reload() {
                Ok(revoked) => tracing::info!(revoked, "TLS material reloaded"),
                Err(e) => tracing::error!(error = %e, "TLS reload failed; previous material kept"),
            }
        }
        let unix = time::OffsetDateTime::now_utc().unix_timestamp();
        let stale = tls.crl_stale_since(unix).is_some();
        metrics.crl_stale.set(i64::from(stale));
        if !stale {
            said_stale = None;
        } else if said_stale.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            tls.report_stale_crl(unix);
            said_stale = Some(std::time::Instant::now());
        }
    }
}

pub async fn store_size_gauge(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok(bytes) = core.ledger.store().size_on_disk() {
            core.metrics.store_bytes.set(bytes as i64);
        }
        core.metrics
            .token_filter_bytes
            .set(core.ledger.token_filter_bytes() as i64);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Flushes once a second, so audit records of reads (checks, evaluations), which do not wait
/// for a flush of their own, are on disk within a second even when nothing else is written.
pub async fn periodic_flush(core: Arc<Core>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = core.ledger.seal_check_tallies(Core::now()) {
            tracing::error!(error = %e, "check tallies not audited");
        }
        if let Err(e) = core.flusher.flush().await {
            tracing::error!(error = %e, "periodic flush failed");
        }
    }
}

/// Purges what the retention policy says is old enough, every `every`.
pub async fn retention_sweeper(
    core: Arc<Core>,
    retention: crate::ledger::Retention,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if !leased(&core, "retention") {
            continue;
        }
        match core.ledger.purge(&retention, Core::now()) {
            Ok((purged, notes)) => {
                if let Err(e) = core.durable(notes).await {
                    tracing::error!(error = %e, "retention purge not flushed");
                } else if purged != crate::ledger::Purged::default() {
                    tracing::info!(
                        operations = purged.operations,
                        matches = purged.matches,
                        alerts = purged.alerts,
                        "retention purge"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "retention purge failed"),
        }
    }
}

/// Logs the audit chain's head as a keyed checkpoint whenever it moved (at most every
/// `every`), so that a copy of it lives outside the store, in the log collector: a chain
/// later truncated or rewritten no longer holds it (`audit verify --expect-head`).
pub async fn audit_checkpoints(
    core: Arc<Core>,
    key: [u8; 32],
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = None;
    loop {
        let head = core.ledger.audit_head();
        if last != Some(head) {
            tracing::info!(
                checkpoint = %head.text(),
                mac = %hex::encode(head.mac(&key)),
                "audit checkpoint"
            );
            last = Some(head);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
