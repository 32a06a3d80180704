//! agencyd end to end: a real broker and two in-process agencyd instances with real mTLS,
//! driven through the inbox and the control socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::{self, pb, selector_from_proto};
use agency_client::daemon;
use deconfliction_proto::v1;
use deconfliction_tests::agencyd::{
    ControlClient, alert_views, control_client, match_alert_views, sink_seqs,
};
use deconfliction_tests::{Federation, agencyd_config, drop_file, eventually, window_hours};
use token_spec::normalize::Selector;

const WAIT: Duration = Duration::from_secs(30);

type Client = ControlClient;

fn phone(text: &str) -> pb::Selector {
    control::selector_to_proto(
        &Selector::Phone {
            text: text.into(),
            region: Some("CN".into()),
        },
        0,
        "suspect's mobile",
    )
}

fn email(text: &str) -> pb::Selector {
    control::selector_to_proto(&Selector::Email { text: text.into() }, 0, "")
}

fn register_request(selectors: Vec<pb::Selector>, wait_ms: u32) -> pb::RegisterRequest {
    pb::RegisterRequest {
        operation_id: String::new(),
        case_reference: "CASE-1".into(),
        window: Some(window_hours(24)),
        selectors,
        wait_ms,
        source: String::new(),
        release_to: Vec::new(),
    }
}

/// Waits until `c` holds at least `n` alerts of kind match, and returns them.
async fn match_alerts(c: &mut Client, n: usize) -> Vec<pb::AlertView> {
    eventually(WAIT, "match alerts", || {
        let mut c = c.clone();
        async move {
            let got = match_alert_views(&mut c).await;
            (got.len() >= n).then_some(got)
        }
    })
    .await
}

fn phone_text(sel: &pb::Selector) -> String {
    match selector_from_proto(sel).unwrap().0 {
        Selector::Phone { text, .. } => text,
        other => panic!("not a phone: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_file_and_control_register_alert_both_sides_in_their_own_terms() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let (ra, rb) = (root.path().join("a"), root.path().join("b"));
    let (ca, cb) = (
        agencyd_config(&fed, "yn-psb", &ra),
        agencyd_config(&fed, "gd-psb", &rb),
    );
    let a = daemon::start(ca.clone()).await.unwrap();
    let b = daemon::start(cb.clone()).await.unwrap();

    // Yunnan drops a file; Guangdong registers through the control API; the phone is written
    // differently but normalizes alike.
    drop_file(
        &ca.inbox_path(),
        "op.json",
        r#"{"case_reference": "YN-42", "window": {"days": 30},
            "selectors": [{"kind": "phone", "text": "138 0013 8000", "region": "CN", "label": "mobile"},
                          {"kind": "email", "text": "only-yunnan@example.com"}]}"#,
    );
    let mut ka = control_client(&ca).await;
    let mut kb = control_client(&cb).await;
    eventually(WAIT, "the inbox file to be registered", || {
        let mut ka = ka.clone();
        async move {
            let ops = ka
                .list_operations(pb::ListOperationsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .operations;
            ops.into_iter()
                .find(|o| o.sync == pb::SyncState::Synced as i32)
        }
    })
    .await;
    assert!(ca.inbox_path().join("done/op.json").exists());

    let reply = kb
        .register(register_request(
            vec![phone("+86 138-0013-8000"), email("x@example.cn")],
            10_000,
        ))
        .await
        .unwrap()
        .into_inner();
    let op_b = reply.operation.unwrap();
    assert_eq!(op_b.sync, pb::SyncState::Synced as i32, "{op_b:?}");

    let alerts_a = match_alerts(&mut ka, 1).await;
    let alerts_b = match_alerts(&mut kb, 1).await;
    assert_eq!(alerts_a.len(), 1);
    assert_eq!(alerts_b.len(), 1);
    assert_eq!(alerts_a[0].match_id, alerts_b[0].match_id);
    // Each side sees only its own selector, as it wrote it.
    assert_eq!(alerts_a[0].selectors.len(), 1);
    assert_eq!(phone_text(&alerts_a[0].selectors[0]), "138 0013 8000");
    assert_eq!(alerts_a[0].selectors[0].label, "mobile");
    assert_eq!(alerts_a[0].case_reference, "YN-42");
    assert_eq!(alerts_b[0].selectors.len(), 1);
    assert_eq!(phone_text(&alerts_b[0].selectors[0]), "+86 138-0013-8000");
    assert_eq!(alerts_b[0].operation_id, op_b.operation_id);

    // Both sinks hold it; the operation knows its match.
    eventually(WAIT, "the sink files", || {
        let (ra, rb) = (ra.clone(), rb.clone());
        async move {
            (!sink_seqs(&ra.join("alerts.jsonl")).is_empty()
                && !sink_seqs(&rb.join("alerts.jsonl")).is_empty())
            .then_some(())
        }
    })
    .await;
    let op = kb
        .get_operation(pb::GetOperationRequest {
            operation_id: op_b.operation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(op.match_ids, vec![alerts_b[0].match_id.clone()]);

    // Relay: a message from B reaches A as a message alert, seen by watch.
    let mut watch = ka
        .watch(pb::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    kb.send_message(pb::SendMessageRequest {
        match_id: alerts_b[0].match_id.clone(),
        text: "call me".into(),
    })
    .await
    .unwrap();
    let event = tokio::time::timeout(WAIT, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event.event {
        Some(pb::watch_event::Event::Alert(al)) => {
            assert_eq!(al.kind, pb::AlertKind::Message as i32);
            assert_eq!(al.text, "call me");
        }
        other => panic!("unexpected {other:?}"),
    }

    // Status tells the agency who it is and that all is well.
    let status = ka.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.agency_id, "yn-psb");
    assert!(status.broker.unwrap().reachable);
    assert!(status.token_service.unwrap().reachable);
    assert!(status.key_matches);
    assert_eq!(status.outbox_depth, 0);

    // Check: hit for the shared phone, none for the other.
    let results = kb
        .check(pb::CheckRequest {
            window: None,
            selectors: vec![phone("13800138000"), email("nobody@example.org")],
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(
        results.iter().map(|r| r.hit).collect::<Vec<_>>(),
        [true, false]
    );

    drop(watch);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_keeps_registrations_while_the_broker_is_down_and_delivers_once() {
    let mut fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let ca = agencyd_config(&fed, "yn-psb", &root.path().join("a"));
    let a = daemon::start(ca.clone()).await.unwrap();
    let mut ka = control_client(&ca).await;

    fed.stop_broker().await;
    let first = ka
        .register(register_request(vec![phone("139 1111 2222")], 300))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(first.sync, pb::SyncState::Queued as i32);
    let second = ka
        .register(register_request(vec![email("queued@example.com")], 0))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let closed = ka
        .close(pb::CloseRequest {
            operation_id: second.operation_id.clone(),
            wait_ms: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert!(closed.closed);
    let status = ka.status(pb::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.outbox_depth, 3);
    assert!(!status.broker.unwrap().reachable);

    // The daemon restarts while the broker is still down: the outbox survives.
    a.shutdown().await;
    let a = daemon::start(ca.clone()).await.unwrap();
    let mut ka = control_client(&ca).await;
    assert_eq!(
        ka.status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .outbox_depth,
        3
    );

    fed.start_broker().await;
    eventually(WAIT, "the outbox to drain", || {
        let mut ka = ka.clone();
        async move {
            let s = ka.status(pb::StatusRequest {}).await.unwrap().into_inner();
            (s.outbox_depth == 0).then_some(())
        }
    })
    .await;
    let mut broker = fed.client("yn-psb").await;
    let ops = broker
        .list_operations(v1::ListOperationsRequest {
            include_ended: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert_eq!(ops.len(), 2, "{ops:?}");
    let first_at_broker = ops
        .iter()
        .find(|o| o.operation_id == first.operation_id)
        .unwrap();
    assert_eq!(first_at_broker.state, v1::OperationState::Open as i32);
    assert_eq!(first_at_broker.token_count, 1);
    let second_at_broker = ops
        .iter()
        .find(|o| o.operation_id == second.operation_id)
        .unwrap();
    assert_eq!(second_at_broker.state, v1::OperationState::Closed as i32);

    // Exactly once: another agency's matching registration gives exactly one match alert.
    let cb = agencyd_config(&fed, "gd-psb", &root.path().join("b"));
    let b = daemon::start(cb.clone()).await.unwrap();
    let mut kb = control_client(&cb).await;
    kb.register(register_request(vec![phone("+8613911112222")], 10_000))
        .await
        .unwrap();
    let got = match_alerts(&mut ka, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alert_views(&mut ka).await.len(), got.len());
    assert_eq!(got.len(), 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_restart_loses_and_duplicates_no_alert() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let (ra, rb) = (root.path().join("a"), root.path().join("b"));
    let (ca, cb) = (
        agencyd_config(&fed, "yn-psb", &ra),
        agencyd_config(&fed, "gd-psb", &rb),
    );
    let a = daemon::start(ca.clone()).await.unwrap();
    let b = daemon::start(cb.clone()).await.unwrap();
    let mut ka = control_client(&ca).await;
    let mut kb = control_client(&cb).await;
    ka.register(register_request(
        vec![phone("137 0000 0001"), email("a@example.com")],
        10_000,
    ))
    .await
    .unwrap();
    kb.register(register_request(vec![phone("13700000001")], 10_000))
        .await
        .unwrap();
    match_alerts(&mut ka, 1).await;
    eventually(WAIT, "alert 1 in the sink", || {
        let ra = ra.clone();
        async move { (sink_seqs(&ra.join("alerts.jsonl")).len() == 1).then_some(()) }
    })
    .await;

    // A is down while two more matches happen.
    a.shutdown().await;
    kb.register(register_request(vec![email("A@Example.com")], 10_000))
        .await
        .unwrap();
    kb.register(register_request(vec![phone("+86 137 0000 0001")], 10_000))
        .await
        .unwrap();

    let a = daemon::start(ca.clone()).await.unwrap();
    let mut ka = control_client(&ca).await;
    let got = match_alerts(&mut ka, 3).await;
    eventually(WAIT, "three alerts in the sink", || {
        let ra = ra.clone();
        async move { (sink_seqs(&ra.join("alerts.jsonl")).len() >= 3).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seqs = sink_seqs(&ra.join("alerts.jsonl"));
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(seqs, unique, "duplicated alerts in the sink");
    assert_eq!(seqs.len(), 3, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(got.len(), 3);
    // Three distinct matches, one per B operation.
    let mut matches: Vec<_> = got.iter().map(|a| a.match_id.clone()).collect();
    matches.sort();
    matches.dedup();
    assert_eq!(matches.len(), 3);

    // Officers acknowledge locally.
    let acked = ka
        .ack_alerts(pb::AckAlertsRequest {
            seqs: vec![],
            upto: seqs[1],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((acked.acked, acked.unacked), (2, 1));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_inbox_file_fails_with_a_reason_and_sends_nothing() {
    let fed = Federation::start(&["yn-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let ca = agencyd_config(&fed, "yn-psb", &root.path().join("a"));
    let a = daemon::start(ca.clone()).await.unwrap();
    let inbox = ca.inbox_path();
    // A file still being written (a .tmp name) is left alone.
    std::fs::write(inbox.join("pending.json.tmp"), "{").unwrap();
    drop_file(
        &inbox,
        "bad.json",
        r#"{"window": {"days": 3}, "selectors": [{"kind": "vin", "text": "SHORTVIN"}]}"#,
    );
    drop_file(&inbox, "broken.toml", "window = [");
    drop_file(&inbox, "notes.txt", "hello");
    let failed = inbox.join("failed");
    let reason = eventually(WAIT, "the error files", || {
        let failed = failed.clone();
        async move {
            let bad = std::fs::read_to_string(failed.join("bad.json.error.txt")).ok()?;
            let broken = std::fs::read_to_string(failed.join("broken.toml.error.txt")).ok()?;
            let notes = std::fs::read_to_string(failed.join("notes.txt.error.txt")).ok()?;
            Some((bad, broken, notes))
        }
    })
    .await;
    assert!(
        reason.0.contains("selectors[0]: vin: text: "),
        "{}",
        reason.0
    );
    assert!(reason.1.contains("not valid TOML"), "{}", reason.1);
    assert!(reason.2.contains(".json or .toml"), "{}", reason.2);
    assert!(failed.join("bad.json").exists());
    assert!(inbox.join("pending.json.tmp").exists());

    let mut ka = control_client(&ca).await;
    let ops = ka
        .list_operations(pb::ListOperationsRequest {
            include_closed: true,
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert!(ops.is_empty());
    let mut broker = fed.client("yn-psb").await;
    let at_broker = broker
        .list_operations(v1::ListOperationsRequest {
            include_ended: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert!(at_broker.is_empty());

    // Bad input over the control API: INVALID_ARGUMENT naming the problem, nothing stored.
    let err = ka
        .register(register_request(vec![email("not an address")], 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().starts_with("selectors[0]: email: "),
        "{}",
        err.message()
    );
    a.shutdown().await;
}
