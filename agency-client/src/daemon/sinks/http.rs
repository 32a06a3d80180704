//! The webhook sink: each alert POSTed as JSON through hyper-util's client over HTTP/1 (one
//! connection per request, `Connection: close`). The payload holds the agency's own selectors
//! and contact cards in clear, so it goes over HTTPS with the receiver's CA pinned, or as
//! plain HTTP only to this host (unless the configuration explicitly allows otherwise).
//! Delivery is at least once; receivers deduplicate on the `seq` field.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::daemon::records::AlertRecord;

/// A parsed `http[s]://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Whether the connection is TLS.
    pub https: bool,
    /// Host name or address.
    pub host: String,
    /// Port (80 or 443 by default).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return Err(format!("{url:?} is not an http:// or https:// URL")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| format!("{url:?}: bad port {p:?}"))?,
            ),
            _ => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(format!("{url:?}: bad host"));
        }
        Ok(Self {
            https,
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// Whether the host is this machine (loopback), where plain HTTP never crosses a network.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// How connections are made: TCP, with TLS (rustls, ring provider) for `https://`; requests
/// and answers are handled the same either way.
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The connector for a sink: TLS trusting only `pinned_ca` (the receiver's CA).
fn connector(pinned_ca: Option<&rustls::RootCertStore>) -> Result<Connector, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let roots = pinned_ca
        .cloned()
        .unwrap_or_else(rustls::RootCertStore::empty);
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// The CA certificates (PEM) the webhook's receiver must chain to.
pub fn pinned_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a usable CA: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(roots)
}

/// POSTs alerts to one URL.
pub struct WebhookSink {
    url: HttpUrl,
    timeout: Duration,
    client: Client<Connector, Full<Bytes>>,
}

impl WebhookSink {
    /// A sink posting to `url`, each attempt bounded by `timeout`; an `https://` receiver's
    /// certificate must chain to `pinned_ca`.
    pub fn new(
        url: HttpUrl,
        timeout: Duration,
        pinned_ca: Option<&rustls::RootCertStore>,
    ) -> Result<Self, String> {
        let client = Client::builder(TokioExecutor::new())
            // Header names as the hand-written client sent them (`Content-Length`), for
            // receivers stricter than they should be.
            .http1_title_case_headers(true)
            // One connection per request, as before: nothing stays open between alerts.
            .pool_max_idle_per_host(0)
            .build(connector(pinned_ca)?);
        Ok(Self {
            url,
            timeout,
            client,
        })
    }

    /// One attempt; Ok only for a 2xx answer.
    pub async fn post(&self, alert: &AlertRecord) -> Result<(), String> {
        let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        self.post_json(body).await
    }

    /// One attempt with a JSON `body`: Ok only for a 2xx answer within the timeout.
    async fn post_json(&self, body: Vec<u8>) -> Result<(), String> {
        let status = tokio::time::timeout(self.timeout, self.send(body))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))??;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {status}"))
        }
    }

    /// Sends one POST and returns the status code (the answer's body is not read).
    async fn send(&self, body: Vec<u8>) -> Result<u16, String> {
        let response = self
            .client
            .request(post_request(&self.url, body)?)
            .await
            .map_err(|e| describe(&self.url, &e))?;
        Ok(response.status().as_u16())
    }
}

/// The POST of `body` to `url`, with the headers the hand-written client sent.
fn post_request(url: &HttpUrl, body: Vec<u8>) -> Result<Request<Full<Bytes>>, String> {
    let authority = authority(url);
    let scheme = if url.https { "https" } else { "http" };
    Request::builder()
        .method(Method::POST)
        .uri(format!("{scheme}://{authority}{}", url.path))
        .header(header::HOST, &authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CONNECTION, "close")
        .header(header::USER_AGENT, "agencyd")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{scheme}://{authority}{}: {e}", url.path))
}

/// `host:port`, with an IPv6 address in brackets.
fn authority(url: &HttpUrl) -> String {
    if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    }
}

/// A failed request in one line: what failed (`connect host:port` when no connection could be
/// made) and the innermost cause.
fn describe(url: &HttpUrl, e: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    if e.is_connect() {
        format!("connect {}: {cause}", authority(url))
    } else {
        format!("{e}: {cause}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/hooks/alerts?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/hooks/alerts?x=1")
        );
        let u = HttpUrl::parse("http://receiver").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert!(!u.is_loopback());
        let u = HttpUrl::parse("https://receiver.example/alerts").unwrap();
        assert_eq!((u.https, u.port), (true, 443));
        assert!(HttpUrl::parse("http://localhost:9/").unwrap().is_loopback());
        assert!(HttpUrl::parse("http://[::1]:9/").unwrap().is_loopback());
        assert!(HttpUrl::parse("ftp://x").is_err());
        assert!(HttpUrl::parse("http://x:port").is_err());
    }

    /// A receiver on a free port that reads one request (up to the end of its JSON body),
    /// answers `answer`, and returns what it read.
    async fn receiver(answer: &'static [u8]) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                if n == 0 || got.ends_with(b"}") {
                    break;
                }
            }
            s.write_all(answer).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        (port, server)
    }

    fn sink(port: u16) -> WebhookSink {
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/a")).unwrap();
        WebhookSink::new(url, Duration::from_secs(5), None).unwrap()
    }

    #[tokio::test]
    async fn posts_to_a_local_receiver() {
        let (port, server) = receiver(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(sink(port).send(b"{\"seq\":1}".to_vec()).await.unwrap(), 200);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /a HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("Content-Length: 9\r\n"), "{request}");
        assert!(
            request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
        assert!(
            request.contains("Content-Type: application/json\r\n"),
            "{request}"
        );
        assert!(request.contains("Connection: close\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\n{\"seq\":1}"), "{request}");
    }

    #[tokio::test]
    async fn a_non_2xx_or_non_http_answer_is_an_error() {
        let (port, server) = receiver(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n").await;
        let err = sink(port).post_json(b"{}".to_vec()).await.unwrap_err();
        assert_eq!(err, "the receiver answered HTTP 503");
        server.await.unwrap();
        let (port, server) = receiver(b"hello\r\n\r\n").await;
        assert!(sink(port).post_json(b"{}".to_vec()).await.is_err());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn no_receiver_is_a_connect_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = sink(port).post_json(b"{}".to_vec()).await.unwrap_err();
        assert!(
            err.starts_with(&format!("connect 127.0.0.1:{port}: ")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let sink = WebhookSink::new(url, Duration::from_millis(200), None).unwrap();
        let err = sink.post_json(b"{}".to_vec()).await.unwrap_err();
        assert_eq!(err, "no answer within 200ms");
        drop(listener);
    }
}
