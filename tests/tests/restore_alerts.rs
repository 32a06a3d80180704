//! A restore from a backup takes the alert queues back in time and gives sequence numbers out
//! again. Subscribers must notice, not skip: the queues carry an incarnation, a stale place is
//! refused with FAILED_PRECONDITION, and agencyd starts over by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agency_client::control::{self, pb};
use agency_client::daemon;
use deconflict_broker::identity::AgencyId;
use deconfliction_proto::v1;
use deconfliction_tests::agencyd::{
    ControlClient, control_client, match_alert_views, register_synced,
};
use deconfliction_tests::*;
use token_spec::normalize::Selector;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

fn phone(text: &str) -> pb::Selector {
    control::selector_to_proto(
        &Selector::Phone {
            text: text.into(),
            region: None,
        },
        0,
        "",
    )
}

fn restore(config: &Path, from: &Path) -> String {
    let out = Command::new(broker_binary())
        .args(["restore", "--config"])
        .arg(config)
        .arg("--from")
        .arg(from)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

/// Waits until the broker has had `agency`'s alerts acknowledged up to `seq`.
async fn wait_acked(fed: &Federation, agency: &str, seq: u64) {
    let ledger = fed.broker.as_ref().unwrap().core.ledger.clone();
    let agency = AgencyId::parse(agency).unwrap();
    eventually(WAIT, &format!("{agency} acknowledged #{seq}"), || {
        let state = ledger.queue_state(&agency).unwrap();
        async move { (state.acked >= seq).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agencyd_receives_the_alerts_of_a_restored_broker() {
    let mut fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let root = tempfile::tempdir().unwrap();
    let (yc, gc) = (
        agencyd_config(&fed, "yn-psb", &root.path().join("yn")),
        agencyd_config(&fed, "gd-psb", &root.path().join("gd")),
    );
    let (yd, gd) = (
        daemon::start(yc.clone()).await.unwrap(),
        daemon::start(gc.clone()).await.unwrap(),
    );
    let (mut y, mut g) = (control_client(&yc).await, control_client(&gc).await);
    let matches = |c: &ControlClient, n: usize| {
        let c = c.clone();
        async move {
            eventually(WAIT, &format!("{n} match alerts"), || {
                let mut c = c.clone();
                async move { (match_alert_views(&mut c).await.len() == n).then_some(()) }
            })
            .await;
        }
    };

    // Alert #1 for each, acknowledged, then the backup.
    register_synced(&mut y, "YN-1", vec![phone("+86 138 0013 8001")], 48).await;
    register_synced(&mut g, "GD-1", vec![phone("+86 138 0013 8001")], 48).await;
    matches(&y, 1).await;
    matches(&g, 1).await;
    wait_acked(&fed, "yn-psb", 1).await;
    wait_acked(&fed, "gd-psb", 1).await;
    let backup = fed.dir.path().join("backup");
    fed.broker
        .as_ref()
        .unwrap()
        .core
        .ledger
        .backup(&backup)
        .unwrap();

    // Alert #2 after the backup: received, stored, acknowledged.
    register_synced(&mut y, "YN-2", vec![phone("+86 138 0013 8002")], 48).await;
    register_synced(&mut g, "GD-2", vec![phone("+86 138 0013 8002")], 48).await;
    matches(&y, 2).await;
    wait_acked(&fed, "yn-psb", 2).await;

    // The broker is restored from the backup: its queue for Yunnan ends at #1 again.
    fed.stop_broker().await;
    fed.config.server.data_dir = fed.dir.path().join("restored");
    let config = fed.write_config();
    let said = restore(&config, &backup);
    assert!(said.contains("new incarnation"), "{said}");
    fed.start_broker().await;

    // The broker gives #2 out again, for a new match: agencyd must take it, not skip it as
    // one it has seen.
    register_synced(&mut y, "YN-3", vec![phone("+86 138 0013 8003")], 48).await;
    register_synced(&mut g, "GD-3", vec![phone("+86 138 0013 8003")], 48).await;
    matches(&y, 3).await;
    matches(&g, 3).await;
    let alerts = match_alert_views(&mut y).await;
    let mut seqs: Vec<u64> = alerts.iter().map(|a| a.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 3, "local numbers never repeat: {seqs:?}");
    assert!(
        alerts.iter().any(|a| a.case_reference == "YN-3"),
        "{alerts:?}"
    );
    yd.shutdown().await;
    gd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_not_in_the_queue_is_refused_with_what_to_do() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let (mut yn, mut gd) = (fed.client("yn-psb").await, fed.client("gd-psb").await);
    let mut s = subscribe(&mut yn).await;
    register_shared(&mut yn, &mut gd, SelectorKind::Phone).await;
    let got = next_alerts(&mut s, 1, WAIT).await;
    let incarnation = got[0].incarnation;
    assert_ne!(incarnation, 0, "every alert says its queue's incarnation");

    // After the queue's end: refused, not an empty stream that would wait forever.
    let e = yn
        .subscribe(v1::SubscribeRequest {
            after: 7,
            incarnation,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert!(
        e.message().contains("after #7") && e.message().contains("ends at #1"),
        "{e}"
    );
    assert!(e.message().contains("after = 0"), "says what to do: {e}");
    // Another incarnation: refused for subscriptions and acknowledgements alike.
    let e = yn
        .subscribe(v1::SubscribeRequest {
            after: 1,
            incarnation: incarnation ^ 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    let e = yn
        .ack(v1::AckRequest {
            upto: 1,
            incarnation: incarnation ^ 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    // Nothing was trimmed by the refused acknowledgement.
    let mut again = subscribe(&mut yn).await;
    assert_eq!(next_alerts(&mut again, 1, WAIT).await[0].seq, 1);
    // The right incarnation is accepted.
    yn.ack(v1::AckRequest {
        upto: 1,
        incarnation,
    })
    .await
    .unwrap();
}
