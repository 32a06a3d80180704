//! Start-up step: the sockets. The mTLS port feeds authenticated connections to the gRPC
//! server; the optional metrics and plain health ports are for the machine's own monitoring.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::config::BrokerConfig;
use crate::ops::metrics::Metrics;
use crate::transport::listener::{TlsConn, accept_loop};
use crate::transport::tls::ReloadableTls;

use super::StartError;

/// The bound addresses, and the connections the mTLS port hands on.
pub(super) struct Listening {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub health_addr: Option<SocketAddr>,
    pub connections: mpsc::Receiver<Result<TlsConn, std::io::Error>>,
}

pub(super) async fn listen<H: Health>(
    config: &BrokerConfig,
    tls: &Arc<ReloadableTls>,
    metrics: &Arc<Metrics>,
    health: HealthServer<H>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<Listening, StartError> {
    let listener = bind(config.server.listen).await?;
    let addr = local_addr(&listener, config.server.listen)?;
    let (conn_tx, connections) = mpsc::channel(128);
    tasks.push(tokio::spawn(accept_loop(
        listener,
        tls.clone(),
        metrics.clone(),
        config.server.max_pending_handshakes,
        conn_tx,
        shutdown.clone(),
    )));
    let metrics_addr = match config.server.metrics_listen {
        Some(a) => {
            let l = bind(a).await?;
            let bound = local_addr(&l, a)?;
            tasks.push(tokio::spawn(crate::ops::metrics::serve(
                l,
                metrics.clone(),
                shutdown.clone(),
            )));
            Some(bound)
        }
        None => None,
    };
    let health_addr = match config.server.health_listen {
        Some(a) => {
            let l = bind(a).await?;
            let bound = local_addr(&l, a)?;
            tasks.push(tokio::spawn(serve_health(l, health, shutdown.clone())));
            Some(bound)
        }
        None => None,
    };
    Ok(Listening {
        addr,
        metrics_addr,
        health_addr,
        connections,
    })
}

/// Plain gRPC health on its own port, for load balancers that cannot present a certificate.
async fn serve_health<H: Health>(
    listener: TcpListener,
    health: HealthServer<H>,
    mut stop: watch::Receiver<bool>,
) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let _ = Server::builder()
        .add_service(health)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
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
