//! Identity is the certificate: who is refused at the door, and what an agency may touch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconflict_broker::pki::{self, Validity};
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_tests::*;

/// Tries one call with the given identity; returns the error text if refused.
async fn call_with(fed: &Federation, identity: Option<(&str, &str)>) -> Result<(), String> {
    let channel = connect(fed.addr(), &fed.ca_pem(), identity)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    BrokerClient::new(channel)
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_unrevoked_federation_certificates_get_in() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let dir = fed.agency_dir("yn-psb");
    let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
    call_with(&fed, Some((&cert, &key))).await.unwrap();

    // No client certificate.
    assert!(
        call_with(&fed, None).await.is_err(),
        "no certificate accepted"
    );

    // A certificate from another CA, even naming a real agency.
    let rogue_ca = pki::create_ca("Rogue CA", Validity::days_from_now(1)).unwrap();
    let rogue = agency_cert_with(&rogue_ca, "yn-psb", Validity::days_from_now(1));
    assert!(
        call_with(&fed, Some((&rogue.cert_pem, &rogue.key_pem)))
            .await
            .is_err()
    );

    // An expired certificate from the right CA.
    let now = time::OffsetDateTime::now_utc();
    let expired = agency_cert_with(
        fed.pki.ca(),
        "yn-psb",
        Validity {
            not_before: now - time::Duration::days(10),
            not_after: now - time::Duration::days(1),
        },
    );
    assert!(
        call_with(&fed, Some((&expired.cert_pem, &expired.key_pem)))
            .await
            .is_err()
    );

    // A certificate without an agency id.
    let server_cert = fed
        .pki
        .issue_server("not-an-agency", &["x".into()], &[], 1)
        .unwrap();
    assert!(
        call_with(&fed, Some((&server_cert.cert_pem, &server_cert.key_pem)))
            .await
            .is_err()
    );

    // Revocation: an open connection is cut off at its next call, an open alert stream ends
    // (no alert needed to wake it), and new handshakes fail.
    let channel = fed.channel("gd-psb").await.unwrap();
    let mut open = BrokerClient::new(channel);
    open.get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap();
    let mut stream = subscribe(&mut open).await;
    let gd_cert = std::fs::read_to_string(fed.agency_dir("gd-psb").join("cert.pem")).unwrap();
    let gd_key = std::fs::read_to_string(fed.agency_dir("gd-psb").join("key.pem")).unwrap();
    fed.pki.revoke(&gd_cert).unwrap();
    let revoked = fed.broker.as_ref().unwrap().reload_tls().unwrap();
    assert_eq!(revoked, 1);
    let err = open
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the open alert stream was not ended by the revocation");
    let err = ended.expect_err("the stream ended without saying why");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    assert!(err.message().contains("revoked"), "{err}");
    assert!(call_with(&fed, Some((&gd_cert, &gd_key))).await.is_err());
    // Yunnan is unaffected.
    call_with(&fed, Some((&cert, &key))).await.unwrap();

    let refused = fed.broker.as_ref().unwrap().metrics.render();
    assert!(refused.contains("refused_connections"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_file_changes_are_picked_up_without_restart() {
    let fed = Federation::start_with(&["yn-psb"], |c| c.tls.reload_poll_seconds = 1).await;
    let dir = fed.agency_dir("yn-psb");
    let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
    call_with(&fed, Some((&cert, &key))).await.unwrap();
    // mtime granularity: make sure the rewrite is seen as a change.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fed.pki.revoke(&cert).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if call_with(&fed, Some((&cert, &key))).await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "revocation not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agencies_touch_only_their_own_operations() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let op = registration(vec![entry(&token(), SelectorKind::Person, 1)]);
    yn.register_operation(op.clone()).await.unwrap();
    let id = op.operation_id.clone();

    // Another agency's operation answers exactly as one that does not exist.
    let absent = uuid::Uuid::new_v4().to_string();
    for probe in [id.clone(), absent.clone()] {
        let e = gd
            .get_operation(v1::GetOperationRequest {
                operation_id: probe.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
        assert_eq!(e.message(), format!("no operation {probe}"));
        let e = gd
            .amend_operation(v1::AmendOperationRequest {
                operation_id: probe.clone(),
                add_tokens: vec![entry(&token(), SelectorKind::Person, 2)],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
        assert_eq!(e.message(), format!("no operation {probe}"));
        let e = gd
            .close_operation(v1::CloseOperationRequest {
                operation_id: probe.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
        assert_eq!(e.message(), format!("no operation {probe}"));
    }
    // Re-registering another agency's id does not reveal or change anything.
    let mut stolen = op.clone();
    stolen.tokens = vec![entry(&token(), SelectorKind::Person, 3)];
    let e = gd.register_operation(stolen).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e}");
    assert!(!e.message().contains("yn-psb"));
    // Listing shows only one's own.
    let listed = gd
        .list_operations(v1::ListOperationsRequest {
            include_ended: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.operations.is_empty());
    // Yunnan's operation is untouched.
    let got = yn
        .get_operation(v1::GetOperationRequest { operation_id: id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.state, v1::OperationState::Open as i32);
    assert_eq!(got.token_count, 1);
}

/// A raw TLS handshake with the broker offering only `version`, with a valid agency identity.
async fn handshake_with(
    fed: &Federation,
    version: &'static rustls::SupportedProtocolVersion,
) -> bool {
    use rustls_pki_types::pem::PemObject;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pki_types::CertificateDer::pem_slice_iter(fed.ca_pem().as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let (cert, key) = fed.agency_pem("yn-psb");
    let chain: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(fed.addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .is_ok_and(|r| r.is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_3_only_unless_1_2_is_allowed() {
    let fed = Federation::start(&["yn-psb"]).await;
    assert!(handshake_with(&fed, &rustls::version::TLS13).await);
    assert!(
        !handshake_with(&fed, &rustls::version::TLS12).await,
        "a TLS 1.2 client was admitted by default"
    );
    let fed = Federation::start_with(&["yn-psb"], |c| c.tls.allow_tls12 = true).await;
    assert!(handshake_with(&fed, &rustls::version::TLS12).await);
}

/// A CRL past its next-update time is said loudly (log and metric); `tls.stale_crl = refuse`
/// refuses the agencies it covers until it is re-signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_crl_is_reported_and_refused_when_told() {
    let mut fed = Federation::start_with(&["yn-psb"], |c| c.tls.reload_poll_seconds = 1).await;
    let (cert, key) = fed.agency_pem("yn-psb");
    fed.stop_broker().await;
    let now = time::OffsetDateTime::now_utc();
    let stale = pki::write_crl_between(
        fed.pki.ca(),
        &[],
        now - time::Duration::days(10),
        now - time::Duration::days(1),
    )
    .unwrap();
    std::fs::write(fed.pki.crl_path(), stale).unwrap();

    // warn (the default): still serving, and the metric says so.
    fed.start_broker().await;
    call_with(&fed, Some((&cert, &key))).await.unwrap();
    let broker = fed.broker.as_ref().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !broker
        .metrics
        .render()
        .contains("deconfliction_crl_stale 1")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stale-CRL metric"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fed.stop_broker().await;

    // refuse: every agency is refused until the CRL is re-signed, then served again.
    fed.config.tls.stale_crl = deconflict_broker::transport::tls::StaleCrl::Refuse;
    fed.start_broker().await;
    assert!(call_with(&fed, Some((&cert, &key))).await.is_err());
    fed.pki.write_crl().unwrap();
    fed.broker.as_ref().unwrap().reload_tls().unwrap();
    call_with(&fed, Some((&cert, &key))).await.unwrap();
}
