//! Exercises beside the live federation, end to end: a drill served by the live broker
//! process, trainee desks that are real agencyd daemons, the halt, the purge, and the mistakes
//! a drill must refuse (a live configuration joining it, a drill configuration reaching live).
//! The controller playing scenarios is in `drill_controller.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::pb;
use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;
use deconfliction_tests::agencyd::{
    alert_views, control_client, deconflict, first_alert_of, register_synced,
};
use deconfliction_tests::drill::{
    ADMIN, drill_agencyd_config, drills_listed, federation, phone, start_drill,
};
use deconfliction_tests::{agencyd_config, eventually};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_and_drill_never_meet_and_the_drill_is_purged_at_its_end() {
    let mut fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let (mut controller, started, _) = start_drill(&fed, root.path(), "purge-1").await;

    // gd-psb live and in the drill, gx-psb only live: the same phone everywhere.
    let live_gd = agencyd_config(&fed, "gd-psb", &root.path().join("live-gd"));
    let live_gx = agencyd_config(&fed, "gx-psb", &root.path().join("live-gx"));
    let drill_gd = drill_agencyd_config(&fed, "gd-psb", &root.path().join("drill-gd"), &started);
    let drill_gx = drill_agencyd_config(&fed, "gx-psb", &root.path().join("drill-gx"), &started);
    let daemons = [
        agency_client::daemon::start(live_gd.clone()).await.unwrap(),
        agency_client::daemon::start(live_gx.clone()).await.unwrap(),
        agency_client::daemon::start(drill_gd.clone())
            .await
            .unwrap(),
    ];
    let (mut lgd, mut lgx, mut dgd) = (
        control_client(&live_gd).await,
        control_client(&live_gx).await,
        control_client(&drill_gd).await,
    );
    let number = "+86 139 1111 2222";
    register_synced(&mut dgd, "EXERCISE drill", vec![phone(number)], 24).await;
    register_synced(&mut lgd, "2026-114", vec![phone(number)], 24).await;
    // Live matches live...
    register_synced(&mut lgx, "GX-7", vec![phone(number)], 24).await;
    first_alert_of(&lgx, pb::AlertKind::Match, "the live match").await;
    // Both sides are told in one commit, but each daemon fetches its own alert in its time.
    first_alert_of(
        &lgd,
        pb::AlertKind::Match,
        "the live match, on the other side",
    )
    .await;
    // ...and the drill operation matched nothing live: the drill's agencyd has no alert, and
    // the live desks hold one match each (with each other), none exercise-marked.
    for c in [&mut lgd, &mut lgx] {
        let alerts = alert_views(c).await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert!(alerts[0].drill_id.is_empty());
    }
    assert!(alert_views(&mut dgd).await.is_empty());

    // The same selector's tokens differ between live and drill, by construction (own keys).
    let form = token_spec::normalize::canonical_forms(
        &token_spec::normalize::Selector::Phone {
            text: number.into(),
            region: Some("CN".into()),
        },
        &Default::default(),
    )
    .unwrap();
    let live_token = fed.deriver("gd-psb").await.tokens(&form).await.unwrap();
    let drill_channel = deconfliction_tests::connect(
        started.address.parse().unwrap(),
        &fed.ca_pem(),
        Some((&fed.agency_pem("gd-psb").0, &fed.agency_pem("gd-psb").1)),
    )
    .await
    .unwrap();
    let pin =
        token_spec::token::PinnedKey::from_hex(&started.public_key_hex, started.key_epoch).unwrap();
    let drill_token = token_spec::token::TokenDeriver::from_channel(drill_channel, pin)
        .tokens(&form)
        .await
        .unwrap();
    assert_ne!(live_token, drill_token);
    assert_ne!(
        deconfliction_tests::pinned_key(&fed.config).public_key(),
        pin.public_key()
    );

    // A restart of the live broker serves the drill again, on the same port.
    fed.restart().await;
    let dgx_daemon = agency_client::daemon::start(drill_gx.clone())
        .await
        .unwrap();
    let mut dgx = control_client(&drill_gx).await;
    register_synced(&mut dgx, "EXERCISE drill", vec![phone(number)], 24).await;
    let own = first_alert_of(&dgx, pb::AlertKind::Match, "the drill's own match").await;
    assert_eq!(own.drill_id, "purge-1");

    // The end: participants told, the drill's folder gone, live untouched and audited.
    let drill_dir = fed
        .config
        .drills
        .root(&fed.config.server.data_dir)
        .join("purge-1");
    assert!(drill_dir.exists());
    let purged = controller.end("purge-1").await.unwrap();
    assert!(purged > 0);
    assert!(!drill_dir.exists(), "the drill's data is purged");
    first_alert_of(&dgd, pb::AlertKind::DrillEnded, "the end announced").await;
    let live_ops = lgd
        .list_operations(pb::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operations;
    assert_eq!(live_ops.len(), 1);
    assert_eq!(
        live_ops[0].match_ids.len(),
        1,
        "the live match is untouched"
    );
    let list = drills_listed(&fed).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].port, 0, "no longer served");
    let mut admin = AdminClient::new(fed.channel(ADMIN).await.unwrap());
    // An ended drill's id is never reused.
    let again = admin
        .start_drill(v1::StartDrillRequest {
            drill_id: "purge-1".into(),
            duration_seconds: 60,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::AlreadyExists, "{again:?}");
    for d in daemons {
        d.shutdown().await;
    }
    dgx_daemon.shutdown().await;
    fed.stop_broker().await;
    // The live audit log holds the drill's life, never anything a drill held.
    let store = fed.open_store();
    let mut out = Vec::new();
    deconflict_broker::ledger::audit::export(store.as_ref(), 1, &mut out).unwrap();
    let log = String::from_utf8(out).unwrap();
    for want in ["drill_started", "drill_purged"] {
        assert!(log.contains(want), "{want} in {log}");
    }
    assert!(!log.contains(number) && !log.contains("EXERCISE drill"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_halt_reaches_every_participant_and_stops_the_drill() {
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let (mut controller, started, _) = start_drill(&fed, root.path(), "halt-1").await;
    let gd = drill_agencyd_config(&fed, "gd-psb", &root.path().join("gd"), &started);
    let gx = drill_agencyd_config(&fed, "gx-psb", &root.path().join("gx"), &started);
    let gd_daemon = agency_client::daemon::start(gd.clone()).await.unwrap();
    let gx_daemon = agency_client::daemon::start(gx.clone()).await.unwrap();
    let (mut cgd, cgx) = (control_client(&gd).await, control_client(&gx).await);
    register_synced(&mut cgd, "EXERCISE", vec![phone("+86 138 2222 3333")], 24).await;

    // A suspension at the live broker reaches the drill within seconds.
    let mut live_admin = AdminClient::new(fed.channel(ADMIN).await.unwrap());
    live_admin
        .suspend_agency(v1::SuspendAgencyRequest {
            agency_id: "gd-psb".into(),
            reason: "certificate under review".into(),
            close_operations: false,
        })
        .await
        .unwrap();
    let (gd_cert, gd_key) = fed.agency_pem("gd-psb");
    let gd_at_drill = deconfliction_proto::v1::broker_client::BrokerClient::new(
        deconfliction_tests::connect(
            started.address.parse().unwrap(),
            &fed.ca_pem(),
            Some((&gd_cert, &gd_key)),
        )
        .await
        .unwrap(),
    );
    eventually(WAIT, "the live suspension in the drill", || {
        let mut b = gd_at_drill.clone();
        async move {
            let e = b
                .list_operations(v1::ListOperationsRequest::default())
                .await
                .err()?;
            (e.code() == tonic::Code::PermissionDenied).then_some(())
        }
    })
    .await;
    live_admin
        .reinstate_agency(v1::ReinstateAgencyRequest {
            agency_id: "gd-psb".into(),
        })
        .await
        .unwrap();

    let reason = "real incident in Mengla: all units to live operations";
    controller.halt("halt-1", reason).await.unwrap();
    for (who, c) in [("gd", cgd.clone()), ("gx", cgx.clone())] {
        let halt = first_alert_of(
            &c,
            pb::AlertKind::DrillHalted,
            &format!("the halt at {who}"),
        )
        .await;
        assert!(halt.note.contains(reason), "{halt:?}");
        assert_eq!(halt.drill_id, "halt-1");
    }
    // Nothing new is taken: the broker refuses with the reason.
    let mut broker = deconfliction_proto::v1::broker_client::BrokerClient::new(
        deconfliction_tests::connect(
            started.address.parse().unwrap(),
            &fed.ca_pem(),
            Some((&fed.agency_pem("gx-psb").0, &fed.agency_pem("gx-psb").1)),
        )
        .await
        .unwrap(),
    );
    let refused = broker
        .register_operation(deconfliction_tests::registration(vec![
            deconfliction_tests::entry(&deconfliction_tests::token(), v1::SelectorKind::Phone, 1),
        ]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("halted"), "{refused:?}");
    let info = broker
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let drill = info.drill.unwrap();
    assert!(drill.halted && drill.halt_reason == reason);
    // `deconflict status` says so too.
    let status = deconflict(&gd.socket_path(), &["--drill", "halt-1", "status"]).await;
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("HALTED"),
        "{status:?}"
    );

    let metrics = &fed.broker.as_ref().unwrap().metrics;
    assert_eq!(metrics.drills_running.get(), 1);
    controller.end("halt-1").await.unwrap();
    assert_eq!(metrics.drills_running.get(), 0);
    gd_daemon.shutdown().await;
    gx_daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drill_and_the_live_federation_refuse_each_others_configuration() {
    let fed = federation().await;
    let root = tempfile::tempdir().unwrap();
    let (mut controller, started, _) = start_drill(&fed, root.path(), "mixup-1").await;

    // A live configuration pointed at the drill's port: nothing sent, the reason in status.
    let mut wrong = agencyd_config(&fed, "gd-psb", &root.path().join("wrong-live"));
    wrong.broker.address = started.address.clone();
    wrong.token_service.public_key = started.public_key_hex.clone();
    wrong.token_service.key_epoch = started.key_epoch;
    let daemon = agency_client::daemon::start(wrong.clone()).await.unwrap();
    let mut c = control_client(&wrong).await;
    c.register(pb::RegisterRequest {
        case_reference: "meant for live".into(),
        window: Some(deconfliction_tests::window_hours(24)),
        selectors: vec![phone("+86 138 4444 5555")],
        wait_ms: 2_000,
        ..Default::default()
    })
    .await
    .unwrap();
    let status = c.status(pb::StatusRequest {}).await.unwrap().into_inner();
    let said = format!(
        "{} {}",
        status.broker.unwrap_or_default().error,
        status.outbox_error
    );
    assert!(said.contains("serves drill mixup-1"), "{said}");
    assert!(said.contains("[drill] id = \"mixup-1\""), "{said}");
    assert_eq!(status.outbox_depth, 1, "nothing was sent to the drill");
    daemon.shutdown().await;
    let drill_matches = controller.matches(&started).await.unwrap();
    assert!(drill_matches.is_empty());

    // A drill configuration pointed at the live broker: refused the same way.
    let mut to_live = drill_agencyd_config(&fed, "gx-psb", &root.path().join("to-live"), &started);
    to_live.broker.address = fed.addr().to_string();
    let e = agency_client::daemon::fetch_federation_info(&to_live)
        .await
        .unwrap_err();
    assert!(e.contains("live federation"), "{e}");

    // A drill's data folder given to a live daemon: refused at start.
    let drill = drill_agencyd_config(&fed, "gx-psb", &root.path().join("drill-gx"), &started);
    agency_client::daemon::start(drill.clone())
        .await
        .unwrap()
        .shutdown()
        .await;
    let mut live_on_drill_data = agencyd_config(&fed, "gx-psb", &root.path().join("live-gx"));
    live_on_drill_data.daemon.data_dir = drill.daemon.data_dir.clone();
    let e = agency_client::daemon::start(live_on_drill_data)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("belongs to drill mixup-1"), "{e}");

    // The CLI's --drill against a live daemon.
    let live = agencyd_config(&fed, "gd-psb", &root.path().join("live-gd"));
    let live_daemon = agency_client::daemon::start(live.clone()).await.unwrap();
    let out = deconflict(&live.socket_path(), &["--drill", "mixup-1", "ops"]).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("serves the live federation"));
    live_daemon.shutdown().await;

    // Bad requests change nothing.
    let mut admin = AdminClient::new(fed.channel(ADMIN).await.unwrap());
    for (bad, why) in [
        (
            v1::StartDrillRequest {
                drill_id: "Bad Id".into(),
                duration_seconds: 60,
                ..Default::default()
            },
            "drill_id",
        ),
        (
            v1::StartDrillRequest {
                drill_id: "no-time".into(),
                ..Default::default()
            },
            "duration_seconds",
        ),
        (
            v1::StartDrillRequest {
                drill_id: "too-long".into(),
                duration_seconds: 100 * 86_400,
                ..Default::default()
            },
            "longer",
        ),
    ] {
        let e = admin.start_drill(bad).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(why), "{e:?}");
    }
    let e = admin
        .halt_drill(v1::HaltDrillRequest {
            drill_id: "mixup-1".into(),
            reason: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // An agency is not an admin.
    let mut agency = AdminClient::new(fed.channel("gd-psb").await.unwrap());
    let e = agency
        .end_drill(v1::EndDrillRequest {
            drill_id: "mixup-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert_eq!(drills_listed(&fed).await.len(), 1, "only the one started");
    controller.end("mixup-1").await.unwrap();
}
