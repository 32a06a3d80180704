//! Overload and slow consumers: a subscriber that never reads holds at most a bounded buffer
//! (its stream is fed from the durable queue on demand), does not slow anybody else down, and
//! later receives everything in order; floods of checks are refused with RESOURCE_EXHAUSTED
//! while the broker keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_loses_nothing_and_blocks_nobody() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb", "gx-psb"], |c| {
        c.policy.check_rate_per_second = 50.0;
        c.policy.check_burst = 50.0;
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let mut gx = fed.client("gx-psb").await;
    // Yunnan subscribes and then does not read at all.
    let stalled = subscribe(&mut yn).await;
    // Enough that the alerts exceed the stream buffer and the HTTP/2 window many times over.
    let n = 2000u64;
    for i in 0..n {
        let t = token();
        yn.register_operation(registration(vec![entry(&t, SelectorKind::Phone, i)]))
            .await
            .unwrap();
        gd.register_operation(registration(vec![entry(&t, SelectorKind::Phone, i)]))
            .await
            .unwrap();
    }
    // Others are served meanwhile, and a check flood is refused, not queued.
    let mut refused = 0;
    for _ in 0..200 {
        let r = gx
            .check(v1::CheckRequest {
                window: Some(window_hours(1)),
                tokens: vec![entry(&token(), SelectorKind::Phone, 0)],
            })
            .await;
        match r {
            Ok(_) => {}
            Err(e) if e.code() == tonic::Code::ResourceExhausted => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(refused > 0, "a flood of checks was never refused");
    let mut s = subscribe(&mut gd).await;
    assert_eq!(
        next_alerts(&mut s, n as usize, Duration::from_secs(60))
            .await
            .len(),
        n as usize
    );
    // The stalled subscriber, read at last, gets every alert in order.
    let mut stalled = stalled;
    let alerts = next_alerts(&mut stalled, n as usize, Duration::from_secs(60)).await;
    let seqs: Vec<u64> = alerts.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
}

/// Bounded resources: streams per agency and TLS handshakes in progress are capped, each
/// refusal is clear, and the broker keeps serving everyone else meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_clearly_and_others_keep_being_served() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb"], |c| {
        c.policy.max_alert_streams_per_agency = 2;
        c.server.max_pending_handshakes = 3;
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;

    // Alert streams per agency.
    let first = subscribe(&mut yn).await;
    let _second = subscribe(&mut yn).await;
    let e = yn
        .subscribe(v1::SubscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("2 alert streams open"), "{e}");
    let _gd_stream = subscribe(&mut gd).await;
    drop(first);
    eventually(Duration::from_secs(10), "a freed stream slot", || {
        let mut yn = yn.clone();
        async move {
            yn.subscribe(v1::SubscribeRequest::default())
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;

    // TLS handshakes in progress: connections that never start one hold the slots; the next
    // connection is closed at once, and agencies already connected are served as before.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(tokio::net::TcpStream::connect(fed.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(fed.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut extra, &mut buf),
    )
    .await
    .expect("the connection over the cap was left open");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    gd.get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap();
    let refused = fed.broker.as_ref().unwrap().metrics.render();
    assert!(refused.contains("handshake_cap"), "{refused}");
    drop(stalled);
}
