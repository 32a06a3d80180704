//! Start-up step: open the store, bind the pepper to it, start the group-commit flusher, and
//! build the shared [`Core`] over them.

use std::sync::{Arc, Weak};

use crate::config::{BrokerConfig, PostgresSection, StoreBackend};
use crate::core::Core;
use crate::identity::AgencyId;
use crate::ledger::{Ledger, Policy};
use crate::ops::metrics::Metrics;
use crate::secrets::pepper::Pepper;
use crate::store::postgres::PgOptions;
use crate::store::{Flusher, PgStore, SledStore, Store};
use crate::transport::ratelimit::RateLimiter;
use deconfliction_proto::v1;

use super::{Mode, StartError};

/// The pepper a broker serves with (none for a stand-alone token service, which has no use
/// for one and must not create one).
pub(super) fn load_pepper(config: &BrokerConfig, mode: Mode) -> Result<Option<Pepper>, StartError> {
    match mode {
        Mode::Broker => Ok(Some(Pepper::load(
            &config.secrets.pepper,
            &config.secrets.pepper_rekeys,
        )?)),
        Mode::TokenServiceOnly => Ok(None),
    }
}

/// Below this, sled's cache cannot even hold the tree's inner nodes of a small store.
const MIN_CACHE_MIB: u64 = 16;

/// Opens the store (both modes keep one: the broker for its ledger, the token service for its
/// audit log). A wrong pepper would make every stored token unmatchable, so it is checked
/// against the fingerprints the store records before anything is served.
pub(super) fn open_core(
    config: &BrokerConfig,
    pepper: Option<&Pepper>,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<Core>, Weak<dyn Store>), StartError> {
    let data = &config.server.data_dir;
    // The store holds every agency's peppered tokens and the relay's messages: owner only.
    crate::secrets::file::create_private_dir(data).map_err(|e| StartError::DataDir {
        path: data.clone(),
        reason: e.to_string(),
    })?;
    let store = open_store(config)?;
    if let Some(pepper) = pepper {
        pepper.bind(store.as_ref(), &config.secrets.pepper_paths())?;
    }
    build_core(config, store, metrics)
}

/// The configured store: the sled folder under the data directory, or the shared database.
pub fn open_store(config: &BrokerConfig) -> Result<Arc<dyn Store>, StartError> {
    let data = &config.server.data_dir;
    if config.store.backend == StoreBackend::Postgres {
        let options = postgres_options(&config.store.postgres)?;
        let store = PgStore::open(&options)?;
        tracing::info!(
            pool = options.pool_size,
            tls = options.ca_cert.is_some(),
            "store: the shared PostgreSQL database"
        );
        return Ok(Arc::new(store));
    }
    if config.store.cache_mib < MIN_CACHE_MIB {
        return Err(StartError::Config(format!(
            "store.cache_mib = {} is too small: give at least {MIN_CACHE_MIB} (the default is 256)",
            config.store.cache_mib
        )));
    }
    if let Some(reason) = crate::ledger::compact::interrupted(data) {
        return Err(StartError::Config(reason));
    }
    let cache = config.store.cache_mib.saturating_mul(1024 * 1024);
    Ok(Arc::new(SledStore::open_with_cache(
        &data.join("store"),
        cache,
    )?))
}

/// Where the connection string comes from: a file or an environment variable, exactly one.
/// It holds a password, so it is never on the command line or in broker.toml.
pub fn postgres_options(section: &PostgresSection) -> Result<PgOptions, StartError> {
    let url = match (&section.url_file, &section.url_env) {
        (Some(path), None) => std::fs::read_to_string(path).map_err(|e| {
            StartError::Config(format!(
                "store.postgres.url_file {}: {e}; it must hold the database connection string",
                path.display()
            ))
        })?,
        (None, Some(var)) => std::env::var(var).map_err(|_| {
            StartError::Config(format!(
                "store.postgres.url_env names {var}, which is not set (or not UTF-8); set it to                  the database connection string"
            ))
        })?,
        (Some(_), Some(_)) => {
            return Err(StartError::Config(
                "store.postgres: give url_file or url_env, not both".into(),
            ));
        }
        (None, None) => {
            return Err(StartError::Config(
                "store.backend = \"postgres\" needs store.postgres.url_file (a 0600 file) or \
                 store.postgres.url_env (an environment variable) with the connection string"
                    .into(),
            ));
        }
    };
    if url.trim().is_empty() {
        return Err(StartError::Config(
            "the database connection string is empty".into(),
        ));
    }
    if section.pool_size == 0 || section.pool_size > 256 {
        return Err(StartError::Config(format!(
            "store.postgres.pool_size = {} is out of range: give 1 to 256",
            section.pool_size
        )));
    }
    Ok(PgOptions {
        url: url.trim().to_string(),
        ca_cert: section.ca_cert.clone(),
        pool_size: section.pool_size,
        connect_timeout: std::time::Duration::from_secs(section.connect_timeout_seconds.max(1)),
    })
}

fn build_core(
    config: &BrokerConfig,
    store: Arc<dyn Store>,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<Core>, Weak<dyn Store>), StartError> {
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
    };
    let ledger = Ledger::open(store, policy)?;
    log_opened(&ledger.opened());
    metrics
        .index_rebuild_seconds
        .set(ledger.opened().indexes.took.as_secs_f64());
    let core = Arc::new(Core {
        ledger: Arc::new(ledger),
        flusher,
        metrics: metrics.clone(),
        check_limiter: RateLimiter::new(
            config.policy.check_rate_per_second,
            config.policy.check_burst,
        ),
        register_limiter: RateLimiter::new(
            config.policy.registration_rate_per_second,
            config.policy.registration_burst,
        ),
    });
    Ok((core, store_weak))
}

fn log_opened(opened: &crate::ledger::Opened) {
    if let Some(u) = opened.upgraded {
        tracing::info!(
            from = u.from,
            to = u.to,
            keys_removed = u.keys_removed,
            "store upgraded to the current format"
        );
    }
    let i = opened.indexes;
    tracing::info!(
        operations = i.operations,
        open_operations = i.open_operations,
        open_tokens = i.open_tokens,
        token_filter_mib = i.filter_bytes >> 20,
        took_ms = i.took.as_millis() as u64,
        "indexes rebuilt from the operation records"
    );
}

/// Enters the agencies named in the configuration into the registry (first start only for
/// each: an admin's later changes win).
pub(super) async fn seed_registry(config: &BrokerConfig, core: &Core) -> Result<(), StartError> {
    let mut entries = Vec::new();
    for a in &config.agencies {
        let id = AgencyId::parse(&a.id).map_err(|e| StartError::Config(e.to_string()))?;
        let role = match a.role.as_str() {
            "agency" => v1::Role::Agency,
            "watch-centre" | "watch_centre" => v1::Role::WatchCentre,
            "admin" => v1::Role::Admin,
            "token-service" | "token_service" => v1::Role::TokenService,
            other => {
                return Err(StartError::Config(format!(
                    "agency {id}: role {other:?} is not agency, watch-centre, admin or \
                     token-service"
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
