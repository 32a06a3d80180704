//! Accepts TCP connections, performs the mutual-TLS handshake with the current
//! [`ReloadableTls`] configuration and hands authenticated connections to tonic.
//!
//! A connection whose certificate does not chain to the federation CA, is revoked, expired or
//! names no agency never reaches a gRPC handler.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

use crate::identity::{PeerInfo, agency_from_cert_der, cert_ref_from_der};
use crate::ops::metrics::Metrics;
use crate::transport::tls::ReloadableTls;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An authenticated TLS connection.
pub struct TlsConn {
    inner: TlsStream<TcpStream>,
    peer: PeerInfo,
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Runs the accept loop until `shutdown` turns true. Authenticated connections go to `out`.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ReloadableTls>,
    metrics: Arc<Metrics>,
    max_pending_handshakes: usize,
    out: mpsc::Sender<Result<TlsConn, io::Error>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(max_pending_handshakes.max(1)));
    let mut flood = FloodLog::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Typically EMFILE: back off briefly rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Bounded: a flood of connections that never finish their handshake is closed at
        // once rather than queued, and the agencies already connected are not affected.
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            // Counted every time, logged at most every few seconds: a flood must not flood
            // the log too.
            metrics.connection_refused("handshake_cap");
            flood.refused(remote, std::time::Instant::now());
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.server_config());
        let out = out.clone();
        let metrics = metrics.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            match handshake {
                Err(_) => refuse(
                    &metrics,
                    remote,
                    "handshake_timeout",
                    "TLS handshake timed out",
                ),
                Ok(Err(e)) => refuse(&metrics, remote, classify(&e), &e.to_string()),
                Ok(Ok(stream)) => match peer_info(&stream, remote, &tls) {
                    Err(reason) => refuse(&metrics, remote, "no_agency_id", &reason),
                    Ok(peer) if tls.is_revoked(&peer.cert) => {
                        refuse(&metrics, remote, "revoked", "certificate is revoked")
                    }
                    Ok(peer) => {
                        tracing::debug!(agency = %peer.agency, %remote, "connection accepted");
                        let _ = out
                            .send(Ok(TlsConn {
                                inner: stream,
                                peer,
                            }))
                            .await;
                    }
                },
            }
        });
    }
}

/// Connections refused at the handshake cap: the first of a burst is logged at once, the rest
/// as one line with their count every [`FloodLog::EVERY`].
#[derive(Debug, Default)]
struct FloodLog {
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl FloodLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn refused(&mut self, remote: std::net::SocketAddr, now: std::time::Instant) {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            %remote,
            refused_since_last_line = self.suppressed,
            "connection refused: too many TLS handshakes in progress (handshake_cap)"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

fn refuse(metrics: &Metrics, remote: std::net::SocketAddr, reason: &'static str, detail: &str) {
    metrics.connection_refused(reason);
    tracing::info!(%remote, reason, detail, "connection refused");
}

fn classify(e: &io::Error) -> &'static str {
    let text = e.to_string();
    if text.contains("Revoked") {
        "revoked"
    } else if text.contains("Expired") || text.contains("NotValidYet") {
        "expired"
    } else if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        "unknown_issuer"
    } else if text.contains("NoCertificatesPresented") || text.contains("peer sent no certificates")
    {
        "no_certificate"
    } else {
        "handshake_failed"
    }
}

fn peer_info(
    stream: &TlsStream<TcpStream>,
    remote: std::net::SocketAddr,
    tls: &ReloadableTls,
) -> Result<PeerInfo, String> {
    let (_, conn) = stream.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| "no client certificate".to_string())?;
    let local = agency_from_cert_der(leaf).map_err(|e| e.to_string())?;
    let cert = cert_ref_from_der(leaf).map_err(|e| e.to_string())?;
    // The namespace is the issuing CA's, from our trust configuration.
    let agency = tls.agency_for(local, &cert.issuer)?;
    Ok(PeerInfo {
        agency,
        cert,
        remote: Some(remote),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_one_line_per_interval() {
        let mut log = FloodLog::default();
        let remote = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let t0 = std::time::Instant::now();
        log.refused(remote, t0);
        for i in 1..=100 {
            log.refused(remote, t0 + Duration::from_millis(i));
        }
        assert_eq!(
            log.suppressed, 100,
            "within the interval: counted, not logged"
        );
        log.refused(remote, t0 + FloodLog::EVERY);
        assert_eq!((log.suppressed, log.last), (0, Some(t0 + FloodLog::EVERY)));
    }
}
