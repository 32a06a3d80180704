//! A stand-alone token service's copy of the broker's registry. The admin suspends agencies
//! and changes roles at the broker; a token service that knew only its own configuration and
//! the CRL would go on evaluating for a suspended agency, which could then build a dictionary
//! of tokens offline. So the token service reads the broker's registry (`ListAgencies`, with a
//! certificate enrolled there in the token-service role) every few seconds into its own, where
//! the gate finds it, and refuses evaluations once it has not managed to for too long.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::BrokerConfig;
use crate::core::Core;
use crate::error::BrokerError;
use crate::identity::AgencyId;
use crate::ledger::records::AgencyEntry;

/// Whether the mirror is fresh enough to trust.
#[derive(Debug)]
pub struct MirrorHealth {
    /// Unix seconds of the last complete refresh (0: none yet).
    last_ok: AtomicI64,
    stale_after: i64,
}

impl MirrorHealth {
    fn new(stale_after: Duration) -> Self {
        Self {
            last_ok: AtomicI64::new(0),
            stale_after: i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// Refuses while the registry has not been refreshed within the allowed age.
    pub fn check(&self, now: i64) -> Result<(), BrokerError> {
        let last = self.last_ok.load(Ordering::Acquire);
        if last == 0 {
            return Err(BrokerError::RegistryStale(
                "has not yet read the broker's registry".into(),
            ));
        }
        let age = now - last;
        if age > self.stale_after {
            return Err(BrokerError::RegistryStale(format!(
                "could not read the broker's registry for {age} s (allowed: {} s)",
                self.stale_after
            )));
        }
        Ok(())
    }
}

/// Where the registry comes from, read from the configuration at start.
pub struct MirrorSource {
    url: String,
    channel: Channel,
    every: Duration,
}

impl std::fmt::Debug for MirrorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorSource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The configured mirror (`[token_service] registry_*`), if any: its source for the refresh
/// task and its health for the token service. Errors name the key at fault.
pub fn configured(
    config: &BrokerConfig,
) -> Result<Option<(MirrorSource, Arc<MirrorHealth>)>, String> {
    let ts = &config.token_service;
    let Some(url) = ts.registry_broker.clone() else {
        return Ok(None);
    };
    let (Some(cert), Some(key)) = (&ts.registry_cert, &ts.registry_key) else {
        return Err(
            "[token_service] registry_broker needs registry_cert and registry_key: the \
             token service's certificate at the broker (role token-service)"
                .into(),
        );
    };
    let read = |what: &str, p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{what} {}: {e}", p.display()))
    };
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split([':', '/']).next())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            format!("[token_service] registry_broker {url:?} is not an https://host:port URL")
        })?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(
            "[tls] ca_cert",
            &config.tls.ca_cert,
        )?))
        .identity(Identity::from_pem(
            read("[token_service] registry_cert", cert)?,
            read("[token_service] registry_key", key)?,
        ))
        .domain_name(host.to_owned());
    let channel = Endpoint::from_shared(url.clone())
        .map_err(|e| format!("[token_service] registry_broker {url:?}: {e}"))?
        .tls_config(tls)
        .map_err(|e| format!("[token_service] registry_broker {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    let health = Arc::new(MirrorHealth::new(Duration::from_secs(
        ts.registry_stale_seconds.max(1),
    )));
    let source = MirrorSource {
        url,
        channel,
        every: Duration::from_secs(ts.registry_refresh_seconds.max(1)),
    };
    Ok(Some((source, health)))
}

/// Refreshes the mirror until shutdown; logs only when it starts or stops failing.
pub async fn run(
    source: MirrorSource,
    core: Arc<Core>,
    health: Arc<MirrorHealth>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        match refresh(&source, &core).await {
            Ok(changed) => {
                health.last_ok.store(Core::now(), Ordering::Release);
                if failing || changed > 0 {
                    tracing::info!(changed, broker = %source.url, "registry mirror refreshed");
                }
                failing = false;
            }
            Err(reason) => {
                if !failing {
                    tracing::warn!(broker = %source.url, %reason, "registry mirror: cannot read the broker's registry; evaluations stop when it is stale");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(source.every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Reads every page of the broker's registry into the local one, durably.
async fn refresh(source: &MirrorSource, core: &Core) -> Result<usize, String> {
    let mut client = AdminClient::new(source.channel.clone());
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_agencies(v1::ListAgenciesRequest {
                page_size: 0,
                page_token,
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        for a in page.agencies {
            let id = AgencyId::parse(&a.agency_id)
                .map_err(|e| format!("the broker listed {:?}: {e}", a.agency_id))?;
            entries.push((
                id,
                AgencyEntry {
                    role: a.role,
                    display_name: a.display_name,
                    suspended: a.suspended,
                    suspension_reason: a.suspension_reason,
                    updated: a.updated_unix,
                },
            ));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let changed = core
        .ledger
        .mirror_registry(&entries, Core::now())
        .map_err(|e| e.to_string())?;
    if changed > 0 {
        core.flusher.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(changed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stale_or_never_read_registries_refuse() {
        let h = MirrorHealth::new(Duration::from_secs(60));
        assert!(matches!(h.check(1_000), Err(BrokerError::RegistryStale(_))));
        h.last_ok.store(1_000, Ordering::Release);
        assert!(h.check(1_060).is_ok());
        let e = h.check(1_061).unwrap_err().to_string();
        assert!(e.contains("61 s") && e.contains("60 s"), "{e}");
    }
}
