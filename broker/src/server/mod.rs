//! Assembles a running broker (or a stand-alone token service) from its configuration, in
//! named steps: TLS, token keys, store and pepper, registry seed, routes, background tasks,
//! listeners. Each step lives in its own module; [`start`] reads as the list of them.

mod keys;
mod listeners;
mod router;
mod running;
mod store;
mod tasks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;

use crate::config::BrokerConfig;
use crate::ops::metrics::Metrics;
use crate::ops::registry_mirror;
use crate::store::StoreError;
use crate::tokens::TokenKeyError;
use crate::transport::access::Gate;
use crate::transport::tls::{ReloadableTls, TlsError, TlsPaths};

pub use running::RunningBroker;
pub use store::{open_store, postgres_options};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] crate::secrets::file::SecretFileError),
    #[error(transparent)]
    TokenKey(#[from] TokenKeyError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot create data folder {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Pepper(#[from] crate::secrets::pepper::PepperError),
}

/// A stand-alone token service's registry mirror: its source and its health.
type Mirror = (
    registry_mirror::MirrorSource,
    Arc<registry_mirror::MirrorHealth>,
);

/// Which services this process serves on its mTLS port. (Not to be confused with an agency's
/// role in the registry: this is what the *process* is.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The broker, with the token service unless the configuration disables it.
    Broker,
    /// Only the token service (`deconflict-broker token-service`).
    TokenServiceOnly,
}

/// Starts serving according to `config`. A start that fails leaves nothing behind: a data
/// folder it created is removed again.
pub async fn start(config: &BrokerConfig, mode: Mode) -> Result<RunningBroker, StartError> {
    let data = &config.server.data_dir;
    let created_data = !data.exists();
    let started = start_steps(config, mode).await;
    if started.is_err() && created_data {
        // Everything that held the store was dropped with the error.
        if let Err(e) = std::fs::remove_dir_all(data) {
            tracing::warn!(path = %data.display(), error = %e, "could not remove the data folder of a failed start");
        }
    }
    started
}

fn tls_paths(config: &BrokerConfig) -> TlsPaths {
    TlsPaths {
        ca_cert: config.tls.ca_cert.clone(),
        server_cert: config.tls.server_cert.clone(),
        server_key: config.tls.server_key.clone(),
        crl: config.tls.crl.clone(),
        allow_tls12: config.tls.allow_tls12,
        stale_crl: config.tls.stale_crl,
        namespace: Some(config.tls.namespace.clone()).filter(|ns| !ns.is_empty()),
        partners: config.tls.partner_cas.clone(),
    }
}

/// The audit checkpoints' MAC key: a broker's (created on first start); a token service has
/// no ledger to checkpoint.
fn audit_key(config: &BrokerConfig, mode: Mode) -> Result<Option<[u8; 32]>, StartError> {
    Ok(match mode {
        Mode::Broker => Some(crate::secrets::file::load_or_create_secret(
            &config.secrets.audit_key,
            "audit checkpoint key",
        )?),
        Mode::TokenServiceOnly => None,
    })
}

/// A stand-alone token service's mirror of the broker's registry, if configured; a broker
/// holds the registry itself and refuses the setting.
fn registry_mirror(config: &BrokerConfig, mode: Mode) -> Result<Option<Mirror>, StartError> {
    match mode {
        Mode::TokenServiceOnly => registry_mirror::configured(config).map_err(StartError::Config),
        Mode::Broker if config.token_service.registry_broker.is_some() => Err(StartError::Config(
            "[token_service] registry_broker is for a stand-alone token service; the \
                 broker holds the registry itself"
                .into(),
        )),
        Mode::Broker => Ok(None),
    }
}

async fn start_steps(config: &BrokerConfig, mode: Mode) -> Result<RunningBroker, StartError> {
    let metrics = Arc::new(Metrics::new());
    let tls = ReloadableTls::load(tls_paths(config))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let keys = keys::TokenKeys::load(config, mode)?;
    let pepper = store::load_pepper(config, mode)?;
    let audit_key = audit_key(config, mode)?;
    let mirror = registry_mirror(config, mode)?;
    let (core, store) = store::open_core(config, pepper.as_ref(), &metrics)?;
    if mode == Mode::Broker {
        // A drill's store is never served as live, nor live data as a drill.
        core.ledger
            .bind_drill(config.drill.as_ref().map(|d| d.id.as_str()))
            .map_err(|e| StartError::Config(e.to_string()))?;
    }
    let drills = match mode {
        Mode::Broker => crate::drills::DrillHost::new(config, core.clone()),
        Mode::TokenServiceOnly => None,
    };
    let gate = Arc::new(Gate::new(
        tls.clone(),
        core.ledger.clone(),
        metrics.clone(),
        config.policy.require_enrolment,
    ));
    store::seed_registry(config, &core).await?;

    let (mut health, health_service) = tonic_health::server::health_reporter();
    let routes = router::routes(
        router::RouteParts {
            config,
            core: &core,
            gate: &gate,
            pepper,
            keys: &keys,
            shutdown: &shutdown_rx,
            audit_key,
            registry: mirror.as_ref().map(|(_, health)| health.clone()),
            drills: drills.clone(),
        },
        &mut health,
    )
    .await?;

    let mut tasks = tasks::spawn(config, mode, &core, &tls, audit_key, &shutdown_rx);
    if let Some((source, health)) = mirror {
        tasks.push(tokio::spawn(registry_mirror::run(
            source,
            core.clone(),
            health,
            shutdown_rx.clone(),
        )));
    }
    let listening = listeners::listen(
        config,
        &tls,
        &metrics,
        health_service.clone(),
        &shutdown_rx,
        &mut tasks,
    )
    .await?;

    if let Some(host) = &drills {
        tasks.push(crate::drills::spawn_runner(
            host.clone(),
            shutdown_rx.clone(),
        ));
    }
    let mut stop = shutdown_rx.clone();
    let server = tokio::spawn(
        Server::builder()
            .timeout(std::time::Duration::from_secs(
                config.server.request_timeout_seconds.max(1),
            ))
            .max_concurrent_streams(config.server.max_streams_per_connection.max(1))
            .layer(crate::grpc::oversize::ResourceExhaustedOnOversizeLayer)
            .add_routes(routes)
            .add_service(health_service)
            .serve_with_incoming_shutdown(ReceiverStream::new(listening.connections), async move {
                let _ = stop.wait_for(|s| *s).await;
            }),
    );
    tracing::info!(addr = %listening.addr, ?mode, "serving");
    Ok(RunningBroker {
        addr: listening.addr,
        metrics_addr: listening.metrics_addr,
        health_addr: listening.health_addr,
        tls,
        core,
        metrics,
        store: Some(store),
        shutdown: shutdown_tx,
        tasks,
        server,
        drills,
    })
}
