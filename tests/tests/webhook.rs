//! The webhook sink carries plaintext selectors and contact cards: it speaks HTTPS to a
//! receiver whose CA agencyd pins, and plain HTTP only to this host unless explicitly allowed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use agency_client::control::{self, pb};
use agency_client::daemon;
use deconfliction_tests::agencyd::control_client;
use deconfliction_tests::{Federation, agencyd_config, eventually, window_hours};
use rustls_pki_types::pem::PemObject;
use token_spec::normalize::Selector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTPS receiver with a certificate from `fed`'s CA for localhost: every request body it
/// reads is sent on the channel, and each is answered 200.
async fn receiver(fed: &Federation) -> (u16, tokio::sync::mpsc::Receiver<String>) {
    let pair = fed
        .pki
        .issue_server(
            "receiver",
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            2,
        )
        .unwrap();
    let chain: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = tls.read(&mut buf).await {
                got.extend_from_slice(&buf[..n]);
                if n == 0 || got.ends_with(b"}") {
                    break;
                }
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            let _ = tls.shutdown().await;
            let _ = tx.send(String::from_utf8_lossy(&got).into_owned()).await;
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_an_https_receiver_whose_ca_is_pinned() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let (port, mut bodies) = receiver(&fed).await;
    let root = tempfile::tempdir().unwrap();
    let mut ca = agencyd_config(&fed, "yn-psb", &root.path().join("a"));
    ca.sinks.webhook = Some(format!("https://localhost:{port}/alerts"));
    ca.sinks.webhook_ca = Some(fed.dir.path().join("pki/ca.pem"));
    let cb = agencyd_config(&fed, "gd-psb", &root.path().join("b"));
    let a = daemon::start(ca.clone()).await.unwrap();
    let b = daemon::start(cb.clone()).await.unwrap();
    let phone = control::selector_to_proto(
        &Selector::Phone {
            text: "+86 138 0013 8000".into(),
            region: None,
        },
        0,
        "",
    );
    for config in [&ca, &cb] {
        let mut c = control_client(config).await;
        c.register(pb::RegisterRequest {
            operation_id: String::new(),
            case_reference: "CASE".into(),
            window: Some(window_hours(24)),
            selectors: vec![phone.clone()],
            wait_ms: 20_000,
            source: String::new(),
            release_to: Vec::new(),
        })
        .await
        .unwrap();
    }
    let body = eventually(Duration::from_secs(30), "the alert at the receiver", || {
        let got = bodies.try_recv().ok();
        async move { got.filter(|b| b.contains("\"kind\":\"match\"")) }
    })
    .await;
    assert!(body.starts_with("POST /alerts HTTP/1.1"), "{body}");
    assert!(body.contains("+86 138 0013 8000"), "{body}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_would_send_plaintext_over_the_network_is_refused_at_start() {
    let fed = Federation::start(&["yn-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let mut config = agencyd_config(&fed, "yn-psb", root.path());
    config.sinks.webhook = Some("http://10.20.30.40:8088/alerts".into());
    let e = daemon::start(config.clone()).await.map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("in clear over the network"), "{e}");
    config.sinks.webhook = Some("https://receiver.example/alerts".into());
    let e = daemon::start(config.clone()).await.map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("set [sinks] webhook_ca"), "{e}");
    // Explicitly allowed (a segment the agency trusts): accepted.
    config.sinks.webhook = Some("http://10.20.30.40:8088/alerts".into());
    config.sinks.webhook_allow_plain_http = true;
    let d = daemon::start(config).await.unwrap();
    d.shutdown().await;
}
