//! `agencyd`, the agency client daemon, as a library: [`start`] assembles a running daemon
//! from a [`DaemonConfig`] and returns a [`Daemon`] handle whose [`Daemon::shutdown`] stops it
//! cleanly (the binary calls it on SIGTERM; tests run several daemons in one process).
//!
//! Parts, one job each: `store` (sled), `ops` (accepting changes), `outbox` (sending them),
//! `tokenize` (selectors to tokens), `epochs` + `rotation` (key epochs: which to derive under,
//! re-deriving open operations when they change), `alerts` (the subscription), `sinks/` (file, webhook),
//! `ingest` (the drop folder), `service` + `watch` (the control API), `link` (mTLS channels),
//! `desk/` (the duty desk's web pages, a client of the control API in process).

mod alerts;
pub mod config;
mod core;
mod desk;
mod drill;
mod epochs;
mod failover;
mod ingest;
mod joint;
mod joint_link;
mod link;
mod ops;
mod outbox;
mod reach;
pub mod records;
mod rotation;
mod service;
mod sinks;
pub mod store;
mod timing;
mod tokenize;
mod views;
mod watch;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;

pub use self::config::DaemonConfig;
use self::core::Core;
pub use self::epochs::rfc3339;
pub use self::ingest::ignored as inbox_ignores;
use self::link::Link;
pub use self::link::fetch_federation_info;
pub use self::sinks::HttpUrl;
use self::store::{LAST_ALERT_SEQ, Store, make_private_dir};
use crate::control::pb::agency_control_server::AgencyControlServer;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The local store.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Certificates, addresses or the pinned key.
    #[error(transparent)]
    Link(#[from] link::LinkError),
    /// The control socket.
    #[error("control socket {path}: {reason}")]
    Socket {
        /// The socket path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A sink or the inbox folder.
    #[error("{0}")]
    Sink(String),
    /// A data folder of another federation (a drill's given to the live daemon, or the
    /// reverse).
    #[error("{0}")]
    Drill(String),
    /// The duty desk (its port, its certificate, its officers file).
    #[error("duty desk: {0}")]
    Desk(String),
}

impl StartError {
    /// Whether fixing the configuration (or the files it names) is what it takes.
    pub fn is_configuration(&self) -> bool {
        matches!(self, Self::Link(_) | Self::Drill(_) | Self::Desk(_))
    }
}

/// A running daemon.
pub struct Daemon {
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    socket: PathBuf,
    desk: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("socket", &self.socket)
            .finish()
    }
}

/// Starts a daemon: opens the store, prepares the broker link, binds the control socket, and
/// spawns the control server, outbox, alert subscription, sinks and inbox watcher.
pub async fn start(config: DaemonConfig) -> Result<Daemon, StartError> {
    let store = Arc::new(Store::open(&config.daemon.data_dir)?);
    drill::bind_store(
        &store,
        config.drill.as_ref().map(|d| d.id.as_str()),
        &config.daemon.data_dir.display().to_string(),
    )
    .map_err(StartError::Drill)?;
    let link = Link::new(&config)?;
    let last_alert = store.get_u64(LAST_ALERT_SEQ)?;
    let socket = config.socket_path();
    let joints = config
        .joint
        .iter()
        .map(|j| joint_link::JointLink::new(&config, j).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let core = Arc::new(Core::new(config, store, link, joints, last_alert));
    let sinks = sinks::configured(&core).map_err(StartError::Sink)?;
    let inbox = core.config.inbox_path();
    ingest::prepare(&inbox)
        .map_err(|e| StartError::Sink(format!("inbox {}: {e}", inbox.display())))?;
    let listener = bind(&socket).await?;
    let (shutdown, rx) = tokio::sync::watch::channel(false);

    let mut tasks = Vec::new();
    let service = service::ControlService::new(core.clone(), rx.clone());
    let mut stop = rx.clone();
    tasks.push(tokio::spawn(async move {
        let result = tonic::transport::Server::builder()
            .add_service(
                AgencyControlServer::new(service)
                    .max_decoding_message_size(64 * 1024 * 1024)
                    .max_encoding_message_size(64 * 1024 * 1024),
            )
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "control server stopped");
        }
    }));
    tasks.extend(spawn_workers(&core, sinks, &rx));
    let desk = if core.config.desk.enabled {
        let control = service::ControlService::new(core.clone(), rx.clone());
        match desk::start(core.clone(), control, rx.clone()).await {
            Ok(running) => {
                tasks.extend(running.tasks);
                Some(running.addr)
            }
            Err(e) => {
                let _ = shutdown.send(true);
                for task in tasks {
                    let _ = task.await;
                }
                return Err(StartError::Desk(e));
            }
        }
    } else {
        None
    };
    tracing::info!(
        socket = %socket.display(),
        broker = %core.link.address,
        inbox = %core.config.inbox_path().display(),
        outbox = core.store.outbox_len(),
        last_alert,
        "agencyd started"
    );
    Ok(Daemon {
        shutdown,
        tasks,
        socket,
        desk,
    })
}

/// The daemon's background work: replica failover, outbox, alert feeds (ours and each joint
/// federation's), joint workers, key rotation, the inbox and the sinks.
fn spawn_workers(
    core: &Arc<Core>,
    sinks: Vec<sinks::Sink>,
    rx: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(replicas) = &core.link.replicas {
        tasks.push(tokio::spawn(failover::run(
            replicas.clone(),
            std::time::Duration::from_secs(core.config.broker.failover_probe_seconds.max(1)),
            rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(outbox::run(core.clone(), rx.clone())));
    tasks.push(tokio::spawn(alerts::run(
        core.clone(),
        alerts::Feed::home(core),
        rx.clone(),
    )));
    for link in &core.joints {
        let feed = alerts::Feed {
            federation: link.name.clone(),
            broker: link.broker.clone(),
            call_timeout: link.call_timeout,
        };
        tasks.push(tokio::spawn(alerts::run(core.clone(), feed, rx.clone())));
        tasks.push(tokio::spawn(joint::run(
            core.clone(),
            link.clone(),
            rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(rotation::run(core.clone(), rx.clone())));
    tasks.push(tokio::spawn(ingest::run(core.clone(), rx.clone())));
    for sink in sinks {
        tasks.push(tokio::spawn(sinks::run(core.clone(), sink, rx.clone())));
    }
    tasks
}

/// Binds the socket (folder 0700, socket 0600), replacing a stale socket file but refusing to
/// take over one another daemon still listens on.
async fn bind(path: &Path) -> Result<UnixListener, StartError> {
    let fail = |reason: String| StartError::Socket {
        path: path.display().to_string(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        make_private_dir(dir).map_err(|e| fail(e.to_string()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(fail("another agencyd is listening on it".into()));
        }
        std::fs::remove_file(path).map_err(|e| fail(format!("cannot remove stale socket: {e}")))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(e.to_string()))?;
    Ok(listener)
}

impl Daemon {
    /// The control socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Where the duty desk listens, when it is enabled.
    pub fn desk_addr(&self) -> Option<std::net::SocketAddr> {
        self.desk
    }

    /// Stops everything: in-flight control calls finish, watch streams end, the outbox and
    /// the subscription stop between two steps (nothing half-done: every step is one atomic
    /// store batch), and the store is flushed and closed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a daemon task failed");
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        tracing::info!("agencyd stopped");
    }
}
