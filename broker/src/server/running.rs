//! A broker once started: its addresses and shared state, and the orderly way to stop it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::core::Core;
use crate::ops::metrics::Metrics;
use crate::store::Store;
use crate::transport::tls::{ReloadableTls, TlsError};

/// A running broker. Dropping it does not stop it: call [`RunningBroker::shutdown`].
pub struct RunningBroker {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub health_addr: Option<SocketAddr>,
    pub tls: Arc<ReloadableTls>,
    pub core: Arc<Core>,
    pub metrics: Arc<Metrics>,
    /// To wait, on shutdown, until every holder of the store has let go (sled's file lock).
    pub(super) store: Option<std::sync::Weak<dyn Store>>,
    pub(super) shutdown: watch::Sender<bool>,
    pub(super) tasks: Vec<JoinHandle<()>>,
    pub(super) server: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The drills served beside this broker, stopped with it (not ended).
    pub(super) drills: Option<Arc<crate::drills::DrillHost>>,
}

impl std::fmt::Debug for RunningBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningBroker")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningBroker {
    /// Stops accepting, ends alert streams, lets in-flight calls finish, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        // The drill host holds this broker's core (and so its store): stopped and let go
        // first, or the wait for the store below would never end.
        if let Some(drills) = self.drills.take() {
            drills.stop_all().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        // Everything acknowledged is already durable; this flush covers audit records of
        // reads, which do not wait for one.
        if let Err(e) = self.core.ledger.seal_check_tallies(Core::now()) {
            tracing::error!(error = %e, "check tallies not audited at shutdown");
        }
        let _ = self.core.flusher.flush().await;
        drop(self.core);
        // Alert streams and the flusher thread let go of the store shortly after the signal.
        if let Some(store) = self.store {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while store.strong_count() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if store.strong_count() > 0 {
                tracing::warn!("store still in use after shutdown");
            }
        }
        tracing::info!("broker stopped");
    }

    /// Re-reads the CRL and certificates (what SIGHUP does).
    pub fn reload_tls(&self) -> Result<usize, TlsError> {
        self.tls.reload()
    }
}
