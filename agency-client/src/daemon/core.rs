//! The state every part of the daemon shares: configuration, store, broker link, wake-ups and
//! the event feed of `watch`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};

use super::config::DaemonConfig;
use super::link::Link;
use super::store::Store;
use crate::control::pb;

/// What the background tasks report for `status`.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Why the outbox's head is stuck (None when it moves or is empty).
    pub outbox_error: Option<String>,
    /// Whether the alert subscription is live.
    pub subscribed: bool,
}

/// Shared daemon state.
pub struct Core {
    /// The configuration it was started with.
    pub config: DaemonConfig,
    /// The local store.
    pub store: Arc<Store>,
    /// Broker and token service.
    pub link: Link,
    /// Wakes the outbox worker when something was queued.
    pub outbox_wake: Notify,
    /// The joint federations this agency takes part in.
    pub joints: Vec<Arc<super::joint_link::JointLink>>,
    /// The highest outbox seq dealt with (sent or refused); waiters on a change watch it.
    pub outbox_done: watch::Sender<u64>,
    /// The highest alert seq stored; the sinks watch it.
    pub alerts_stored: watch::Sender<u64>,
    /// Live events for `watch`.
    pub events: broadcast::Sender<pb::WatchEvent>,
    /// Reported by the background tasks.
    pub health: Mutex<Health>,
}

impl Core {
    /// Assembles the shared state.
    pub fn new(
        config: DaemonConfig,
        store: Arc<Store>,
        link: Link,
        joints: Vec<Arc<super::joint_link::JointLink>>,
        last_alert: u64,
    ) -> Self {
        Self {
            config,
            store,
            link,
            outbox_wake: Notify::new(),
            joints,
            outbox_done: watch::Sender::new(0),
            alerts_stored: watch::Sender::new(last_alert),
            events: broadcast::Sender::new(1024),
            health: Mutex::new(Health::default()),
        }
    }

    /// Changes the health report.
    pub fn set_health(&self, f: impl FnOnce(&mut Health)) {
        f(&mut self.health.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The health report.
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Publishes an event to `watch` clients (none listening is fine).
    pub fn publish(&self, event: pb::watch_event::Event) {
        let _ = self.events.send(pb::WatchEvent { event: Some(event) });
    }

    /// First wait between retries.
    pub fn retry_initial(&self) -> Duration {
        Duration::from_millis(self.config.daemon.retry_initial_ms.max(10))
    }

    /// Longest wait between retries.
    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.config.daemon.retry_max_ms.max(10))
    }

    /// Waits until outbox item `seq` has been dealt with, or `within` passed. True if dealt.
    pub async fn wait_outbox(&self, seq: u64, within: Duration) -> bool {
        let mut rx = self.outbox_done.subscribe();
        tokio::time::timeout(within, rx.wait_for(|done| *done >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}
