//! Certificate renewal without downtime: a renewed broker certificate written over the old
//! files is served to new connections after a reload (SIGHUP, or the file watcher), while
//! connections already open keep working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use deconflict_broker::pki;
use deconflict_broker::pki::dir::PkiDir;
use deconfliction_proto::v1;
use deconfliction_tests::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The serial of the certificate the broker presents to a new TLS connection.
async fn presented_serial(fed: &Federation) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(fed.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let (cert, key) = fed.agency_pem("yn-psb");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(fed.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        deconfliction_tests::scan::base64(der.as_ref(), true)
    );
    pki::serial_of(&pem).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_broker_certificate_is_served_without_a_restart() {
    let fed = Federation::start(&["yn-psb"]).await;
    let mut open = fed.client("yn-psb").await;
    open.get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap();
    let old_serial = presented_serial(&fed).await;
    let pem = std::fs::read_to_string(fed.dir.path().join("pki/broker.pem")).unwrap();
    assert_eq!(old_serial, pki::serial_of(&pem).unwrap());

    // Renew: a new certificate and key written over the old files, then a reload.
    let renewed = fed
        .pki
        .issue_server(
            "broker",
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            30,
        )
        .unwrap();
    PkiDir::save(
        &renewed,
        &fed.dir.path().join("pki/broker.pem"),
        &fed.dir.path().join("pki/broker.key"),
    )
    .unwrap();
    fed.broker.as_ref().unwrap().reload_tls().unwrap();

    let new_serial = presented_serial(&fed).await;
    assert_eq!(new_serial, pki::serial_of(&renewed.cert_pem).unwrap());
    assert_ne!(new_serial, old_serial);
    // The connection opened before the renewal still works.
    open.get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap();
    // A broken renewal (a truncated file) is refused and the current certificate stays.
    std::fs::write(
        fed.dir.path().join("pki/broker.pem"),
        "-----BEGIN CERTIFICATE-----\ntrunc",
    )
    .unwrap();
    assert!(fed.broker.as_ref().unwrap().reload_tls().is_err());
    assert_eq!(presented_serial(&fed).await, new_serial);
}
