//! The webhook sink: each alert POSTed as JSON to an `http://` URL, through hyper-util's
//! client over HTTP/1 (one connection per request, `Connection: close`). No TLS in this version:
//! point it at a receiver on the same host or a trusted segment. Delivery is at least once;
//! receivers deduplicate on the `seq` field.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::daemon::records::AlertRecord;

/// A parsed `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address.
    pub host: String,
    /// Port (80 by default).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses an `http://` URL; `https://` is refused with an explanation.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("https://") {
            return Err(
                "https is not supported for the webhook in this version; use http:// \
                        to a receiver on this host or a trusted network"
                    .into(),
            );
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
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
            _ => (authority, 80),
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(format!("{url:?}: bad host"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// How connections are made: plain TCP. An `https://` webhook would wrap this connector in a
/// rustls one (ring provider) here; requests and answers are handled the same either way.
type Connector = HttpConnector;

fn connector() -> Connector {
    HttpConnector::new()
}

/// POSTs alerts to one URL.
pub struct WebhookSink {
    url: HttpUrl,
    timeout: Duration,
    client: Client<Connector, Full<Bytes>>,
}

impl WebhookSink {
    /// A sink posting to `url`, each attempt bounded by `timeout`.
    pub fn new(url: HttpUrl, timeout: Duration) -> Self {
        let client = Client::builder(TokioExecutor::new())
            // Header names as the hand-written client sent them (`Content-Length`), for
            // receivers stricter than they should be.
            .http1_title_case_headers(true)
            // One connection per request, as before: nothing stays open between alerts.
            .pool_max_idle_per_host(0)
            .build(connector());
        Self {
            url,
            timeout,
            client,
        }
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
    Request::builder()
        .method(Method::POST)
        .uri(format!("http://{authority}{}", url.path))
        .header(header::HOST, &authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CONNECTION, "close")
        .header(header::USER_AGENT, "agencyd")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("http://{authority}{}: {e}", url.path))
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
        assert!(
            HttpUrl::parse("https://x")
                .unwrap_err()
                .contains("not supported")
        );
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
        WebhookSink::new(url, Duration::from_secs(5))
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
        let sink = WebhookSink::new(url, Duration::from_millis(200));
        let err = sink.post_json(b"{}".to_vec()).await.unwrap_err();
        assert_eq!(err, "no answer within 200ms");
        drop(listener);
    }
}
