//! Assembles a running broker (or a stand-alone token service) from its configuration:
//! store, flusher, TLS, gRPC services, background tasks, and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deconfliction_proto::v1::broker_server::BrokerServer;
use deconfliction_proto::v1::token_service_server::TokenServiceServer;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;

use crate::access::Gate;
use crate::admin_service::AdminService;
use crate::config::BrokerConfig;
use crate::core::Core;
use crate::identity::AgencyId;
use crate::ledger::{Ledger, Policy};
use crate::listener::accept_loop;
use crate::metrics::Metrics;
use crate::oversight_service::OversightService;
use crate::pepper::Pepper;
use crate::ratelimit::RateLimiter;
use crate::service::{BrokerService, FederationParams};
use crate::store::{Flusher, SledStore, Store, StoreError};
use crate::tls::{ReloadableTls, TlsError, TlsPaths};
use crate::token_service::{PreviousKey, Quota, TokenKey, TokenKeyError, TokenServiceImpl};
use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_server::AdminServer;
use deconfliction_proto::v1::oversight_server::OversightServer;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] crate::secret_file::SecretFileError),
    #[error(transparent)]
    TokenKey(#[from] TokenKeyError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot create data folder {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Pepper(#[from] crate::pepper::PepperError),
}

/// Which services this process serves on its mTLS port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The broker, with the token service unless the configuration disables it.
    Broker,
    /// Only the token service (`deconflict-broker token-service`).
    TokenServiceOnly,
}

/// A running broker. Dropping it does not stop it: call [`RunningBroker::shutdown`].
pub struct RunningBroker {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub health_addr: Option<SocketAddr>,
    pub tls: Arc<ReloadableTls>,
    pub core: Arc<Core>,
    pub metrics: Arc<Metrics>,
    /// To wait, on shutdown, until every holder of the store has let go (sled's file lock).
    store: Option<std::sync::Weak<dyn Store>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
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
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
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

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen {
            addr,
            reason: e.to_string(),
        })
}

fn local_addr(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|e| StartError::Listen {
        addr,
        reason: e.to_string(),
    })
}

/// Enters the agencies named in the configuration into the registry (first start only for
/// each: an admin's later changes win).
async fn seed_registry(config: &BrokerConfig, core: &Core) -> Result<(), StartError> {
    let mut entries = Vec::new();
    for a in &config.agencies {
        let id = AgencyId::parse(&a.id).map_err(|e| StartError::Config(e.to_string()))?;
        let role = match a.role.as_str() {
            "agency" => v1::Role::Agency,
            "watch-centre" | "watch_centre" => v1::Role::WatchCentre,
            "admin" => v1::Role::Admin,
            other => {
                return Err(StartError::Config(format!(
                    "agency {id}: role {other:?} is not agency, watch-centre or admin"
                )));
            }
        };
        entries.push((id, role as i32, a.display_name.clone()));
    }
    if !entries.is_empty() {
        core.ledger
            .seed_registry(&entries, Core::now())
            .map_err(|e| StartError::Config(e.to_string()))?;
        core.flusher.flush().await?;
    }
    Ok(())
}

/// The previous epoch's key during a rotation, if configured and not yet retired.
fn previous_token_key(config: &BrokerConfig) -> Result<Option<PreviousKey>, StartError> {
    let ts = &config.token_service;
    let Some(seed) = &ts.previous_seed else {
        return Ok(None);
    };
    let until = ts.previous_valid_until.as_deref().ok_or_else(|| {
        StartError::Config(
            "token_service.previous_seed needs previous_valid_until (RFC 3339): when the \
             overlap ends"
                .into(),
        )
    })?;
    let until = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            StartError::Config(format!(
                "token_service.previous_valid_until {until:?} is not RFC 3339: {e}"
            ))
        })?
        .unix_timestamp();
    if ts.previous_key_epoch == 0 || ts.previous_key_epoch == ts.key_epoch {
        return Err(StartError::Config(format!(
            "token_service.previous_key_epoch must be set and differ from key_epoch ({})",
            ts.key_epoch
        )));
    }
    // Never create a previous seed: it must be the file the old epoch used.
    let bytes = crate::secret_file::load_secret(seed, "previous token-service seed")?;
    let key = TokenKey::from_seed(&bytes, ts.previous_key_epoch)?;
    Ok(Some(PreviousKey {
        key: Arc::new(key),
        until,
    }))
}

/// Starts serving according to `config`.
pub async fn start(config: &BrokerConfig, role: Role) -> Result<RunningBroker, StartError> {
    let metrics = Arc::new(Metrics::new());
    let tls = ReloadableTls::load(TlsPaths {
        ca_cert: config.tls.ca_cert.clone(),
        server_cert: config.tls.server_cert.clone(),
        server_key: config.tls.server_key.clone(),
        crl: config.tls.crl.clone(),
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let serve_tokens = role == Role::TokenServiceOnly || config.token_service.enabled;
    let previous_key = if serve_tokens {
        previous_token_key(config)?
    } else {
        None
    };
    let token_key = if serve_tokens {
        Some(Arc::new(TokenKey::load_or_create(
            &config.token_service.seed,
            config.token_service.key_epoch,
        )?))
    } else {
        None
    };
    let (public_key, epoch) = match (&token_key, &config.token_service.external_public_key) {
        (Some(key), _) => (key.public_key().to_vec(), key.epoch()),
        (None, Some(hex_key)) => (
            hex::decode(hex_key).map_err(|_| {
                StartError::Config("token_service.external_public_key is not hex".into())
            })?,
            config.token_service.key_epoch,
        ),
        (None, None) => (Vec::new(), 0),
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(deconfliction_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Config(format!("reflection: {e}")))?;

    let max_message = config.policy.max_message_bytes;
    let mut router = Server::builder()
        .layer(crate::status_map::ResourceExhaustedOnOversizeLayer)
        .add_service(health_service.clone())
        .add_service(reflection);

    // A wrong pepper would make every stored token unmatchable: it is checked against the
    // fingerprints the store records before anything is served.
    // The token service alone has no use for a pepper (and must not create one).
    let pepper = match role {
        Role::Broker => Some(Pepper::load(
            &config.secrets.pepper,
            &config.secrets.pepper_rekeys,
        )?),
        Role::TokenServiceOnly => None,
    };
    // Both roles keep a store: the broker for its ledger, the token service for its audit log.
    let (core, store_weak) = {
        let data = &config.server.data_dir;
        std::fs::create_dir_all(data).map_err(|e| StartError::DataDir {
            path: data.clone(),
            reason: e.to_string(),
        })?;
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&data.join("store"))?);
        if let Some(pepper) = &pepper {
            pepper.bind(store.as_ref(), &config.secrets.pepper_paths())?;
        }
        let store_weak = Arc::downgrade(&store);
        let flush_metrics = metrics.clone();
        let flusher = Flusher::start(
            store.clone(),
            Some(Arc::new(move |n, took| {
                flush_metrics.flush_seconds.observe(took.as_secs_f64());
                flush_metrics.flush_group_size.observe(n as f64);
            })),
        );
        let policy = Policy {
            max_tokens_per_operation: config.policy.max_tokens_per_operation,
            max_window_seconds: config.policy.max_window_days.saturating_mul(86_400),
            match_same_agency: config.policy.match_same_agency,
            ..Policy::default()
        };
        let c = Arc::new(Core {
            ledger: Arc::new(Ledger::open(store, policy)?),
            flusher,
            metrics: metrics.clone(),
            check_limiter: RateLimiter::new(
                config.policy.check_rate_per_second,
                config.policy.check_burst,
            ),
        });
        (c, Some(store_weak))
    };
    tasks.push(tokio::spawn(crate::background::periodic_flush(
        core.clone(),
        shutdown_rx.clone(),
    )));
    let gate = Arc::new(Gate::new(
        tls.clone(),
        core.ledger.clone(),
        metrics.clone(),
        config.policy.require_enrolment,
    ));
    seed_registry(config, &core).await?;
    if let Some(pepper) = pepper {
        let c = core.clone();
        router = router
            .add_service(OversightServer::new(OversightService::new(gate.clone())))
            .add_service(AdminServer::new(AdminService::new(c.clone(), gate.clone())));
        let federation = FederationParams {
            h3_resolution: config.federation.h3_resolution,
            h3_disk_radius: config.federation.h3_disk_radius,
            token_service_public_key: public_key,
            token_service_key_epoch: epoch,
            max_message_bytes: max_message,
            previous_key: previous_key.clone(),
        };
        let svc = BrokerService::new(
            c.clone(),
            pepper,
            gate.clone(),
            federation,
            shutdown_rx.clone(),
        );
        router = router.add_service(
            BrokerServer::new(svc)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        );
        health_reporter
            .set_serving::<BrokerServer<BrokerService>>()
            .await;
        tasks.push(tokio::spawn(crate::background::retention_sweeper(
            c.clone(),
            config.retention.to_policy(),
            Duration::from_secs(config.retention.sweep_seconds.max(1)),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(crate::background::expiry_sweeper(
            c.clone(),
            Duration::from_secs(config.server.expiry_sweep_seconds.max(1)),
            shutdown_rx.clone(),
        )));
    }
    if let Some(key) = token_key {
        let svc = TokenServiceImpl::new(
            key,
            Quota {
                per_minute: config.token_service.quota_per_minute,
                per_day: config.token_service.quota_per_day,
            },
            metrics.clone(),
            gate.clone(),
        )
        .with_previous(previous_key.clone());
        router = router.add_service(
            TokenServiceServer::new(svc)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        );
        health_reporter
            .set_serving::<TokenServiceServer<TokenServiceImpl>>()
            .await;
    }

    let listener = bind(config.server.listen).await?;
    let addr = local_addr(&listener, config.server.listen)?;
    let (conn_tx, conn_rx) = mpsc::channel(128);
    tasks.push(tokio::spawn(accept_loop(
        listener,
        tls.clone(),
        metrics.clone(),
        conn_tx,
        shutdown_rx.clone(),
    )));

    let metrics_addr = match config.server.metrics_listen {
        Some(a) => {
            let l = bind(a).await?;
            let bound = local_addr(&l, a)?;
            tasks.push(tokio::spawn(crate::metrics::serve(
                l,
                metrics.clone(),
                shutdown_rx.clone(),
            )));
            Some(bound)
        }
        None => None,
    };
    let health_addr = match config.server.health_listen {
        Some(a) => {
            let l = bind(a).await?;
            let bound = local_addr(&l, a)?;
            let mut stop = shutdown_rx.clone();
            let health = health_service.clone();
            tasks.push(tokio::spawn(async move {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
                let _ = Server::builder()
                    .add_service(health)
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            }));
            Some(bound)
        }
        None => None,
    };
    if config.tls.reload_poll_seconds > 0 {
        tasks.push(tokio::spawn(crate::background::tls_file_watcher(
            tls.clone(),
            config.tls.clone(),
            Duration::from_secs(config.tls.reload_poll_seconds),
            shutdown_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::background::store_size_gauge(
        core.clone(),
        shutdown_rx.clone(),
    )));

    let mut stop = shutdown_rx.clone();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(
        ReceiverStream::new(conn_rx),
        async move {
            let _ = stop.wait_for(|s| *s).await;
        },
    ));
    tracing::info!(%addr, ?role, "serving");
    Ok(RunningBroker {
        addr,
        metrics_addr,
        health_addr,
        tls,
        core,
        metrics,
        store: store_weak,
        shutdown: shutdown_tx,
        tasks,
        server,
    })
}
