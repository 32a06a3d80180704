//! Start-up step: the background work a broker does beside its calls (flushing read-only
//! audit records, expiry and retention sweeps, TLS file reloads, the store-size gauge).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::BrokerConfig;
use crate::core::Core;
use crate::ops::background;
use crate::transport::tls::ReloadableTls;

use super::Mode;

pub(super) fn spawn(
    config: &BrokerConfig,
    mode: Mode,
    core: &Arc<Core>,
    tls: &Arc<ReloadableTls>,
    audit_key: Option<[u8; 32]>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(background::periodic_flush(core.clone(), shutdown.clone())),
        tokio::spawn(background::store_size_gauge(core.clone(), shutdown.clone())),
    ];
    if let Some(key) = audit_key {
        tasks.push(tokio::spawn(background::audit_checkpoints(
            core.clone(),
            key,
            Duration::from_secs(60),
            shutdown.clone(),
        )));
    }
    // Operations and matches exist only in a broker; a token service keeps just its audit log.
    if mode == Mode::Broker {
        tasks.push(tokio::spawn(background::retention_sweeper(
            core.clone(),
            config.retention.to_policy(),
            Duration::from_secs(config.retention.sweep_seconds.max(1)),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(background::alert_wakeups(
            core.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(background::expiry_sweeper(
            core.clone(),
            Duration::from_secs(config.server.expiry_sweep_seconds.max(1)),
            shutdown.clone(),
        )));
    }
    if config.tls.reload_poll_seconds > 0 {
        tasks.push(tokio::spawn(background::tls_file_watcher(
            tls.clone(),
            config.tls.clone(),
            Duration::from_secs(config.tls.reload_poll_seconds),
            core.metrics.clone(),
            shutdown.clone(),
        )));
    }
    tasks
}
