//! The webhook sink: each alert POSTed as JSON to an `http://` URL by a minimal HTTP/1.1
//! client (one connection per request, `Connection: close`). No TLS in this version: point it
//! at a receiver on the same host or a trusted segment. Delivery is at least once; receivers
//! deduplicate on the `seq` field.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::daemon::records::AlertRecord;

/// Largest response head read.
const MAX_HEAD: usize = 16 * 1024;

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

/// POSTs alerts to one URL.
pub struct WebhookSink {
    url: HttpUrl,
    timeout: Duration,
}

impl WebhookSink {
    /// A sink posting to `url`, each attempt bounded by `timeout`.
    pub fn new(url: HttpUrl, timeout: Duration) -> Self {
        Self { url, timeout }
    }

    /// One attempt; Ok only for a 2xx answer.
    pub async fn post(&self, alert: &AlertRecord) -> Result<(), String> {
        let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        let status = tokio::time::timeout(self.timeout, post(&self.url, &body))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))??;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {status}"))
        }
    }
}

/// Sends one POST and returns the status code.
pub async fn post(url: &HttpUrl, body: &[u8]) -> Result<u16, String> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connect {}:{}: {e}", url.host, url.port))?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: agencyd\r\n\r\n",
        url.path,
        url.host,
        url.port,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < MAX_HEAD {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    parse_status(&buf)
}

fn parse_status(head: &[u8]) -> Result<u16, String> {
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(format!("not an HTTP answer: {line:?}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n").unwrap(), 204);
        assert!(parse_status(b"hello").is_err());
    }

    #[tokio::test]
    async fn posts_to_a_local_receiver() {
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
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/a")).unwrap();
        assert_eq!(post(&url, b"{\"seq\":1}").await.unwrap(), 200);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /a HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("Content-Length: 9\r\n"), "{request}");
    }
}
