//! Register / check / alert end to end, restart persistence, subscription resume, races.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_tests::*;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agencies_register_check_and_alert() {
    let fed = Federation::start(&["yn-psb", "gd-psb", "gx-psb"]).await;
    let (mut yn, mut gd, mut gx) = (
        fed.client("yn-psb").await,
        fed.client("gd-psb").await,
        fed.client("gx-psb").await,
    );
    let mut yn_alerts = subscribe(&mut yn).await;
    let mut gd_alerts = subscribe(&mut gd).await;
    let mut gx_alerts = subscribe(&mut gx).await;

    let (phone, plate, other) = (token(), token(), token());
    let yn_op = registration(vec![
        entry(&phone, SelectorKind::Phone, 11),
        entry(&plate, SelectorKind::Plate, 12),
    ]);
    let r = yn
        .register_operation(yn_op.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(r.created);
    assert_eq!(r.matches_touched, 0);
    let gx_op = registration(vec![entry(&other, SelectorKind::Iban, 31)]);
    gx.register_operation(gx_op).await.unwrap();

    // Guangdong works the same phone: one match, both sides told, Guangxi not.
    let gd_op = registration(vec![entry(&phone, SelectorKind::Phone, 21)]);
    let r = gd
        .register_operation(gd_op.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.matches_touched, 1);
    let yn_alert = next_alerts(&mut yn_alerts, 1, WAIT).await;
    let gd_alert = next_alerts(&mut gd_alerts, 1, WAIT).await;
    let (ym, gm) = (match_of(&yn_alert[0]), match_of(&gd_alert[0]));
    assert_eq!(ym.match_id, gm.match_id, "one match, seen from both sides");
    assert!(ym.created && gm.created);
    assert_eq!(ym.operation_id, yn_op.operation_id, "own operation only");
    assert_eq!(gm.operation_id, gd_op.operation_id);
    assert_eq!(
        ym.tokens,
        vec![v1::MatchedToken {
            kind: SelectorKind::Phone as i32,
            local_ref: 11
        }]
    );
    assert_eq!(
        gm.tokens,
        vec![v1::MatchedToken {
            kind: SelectorKind::Phone as i32,
            local_ref: 21
        }]
    );
    no_alert(&mut gx_alerts, QUIET).await;

    // The match grows when Guangdong adds the plate.
    gd.amend_operation(v1::AmendOperationRequest {
        operation_id: gd_op.operation_id.clone(),
        add_tokens: vec![entry(&plate, SelectorKind::Plate, 22)],
        ..Default::default()
    })
    .await
    .unwrap();
    let grown = next_alerts(&mut yn_alerts, 1, WAIT).await;
    let g = match_of(&grown[0]);
    assert!(!g.created);
    assert_eq!(g.match_id, ym.match_id);
    assert_eq!(g.tokens.len(), 2);
    assert_eq!(g.new_tokens, 1);
    next_alerts(&mut gd_alerts, 1, WAIT).await;

    // Guangxi checks: hit on the phone, no hit on its own fresh token; owners hear of it.
    let check = gx
        .check(v1::CheckRequest {
            window: Some(window_hours(1)),
            tokens: vec![
                entry(&phone, SelectorKind::Phone, 0),
                entry(&token(), SelectorKind::Vin, 0),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.hits, vec![true, false]);
    for stream in [&mut yn_alerts, &mut gd_alerts] {
        let a = next_alerts(stream, 1, WAIT).await;
        assert!(
            matches!(a[0].event, Some(v1::alert::Event::Checked(_))),
            "{a:?}"
        );
    }
    no_alert(&mut gx_alerts, QUIET).await;

    // A check outside the windows does not hit.
    let past = gx
        .check(v1::CheckRequest {
            window: Some(v1::Window {
                start_unix: now() - 90 * 86400,
                end_unix: now() - 80 * 86400,
            }),
            tokens: vec![entry(&phone, SelectorKind::Phone, 0)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(past.hits, vec![false]);

    // GetOperation shows the owner its match ids; closing purges the tokens.
    let op = yn
        .get_operation(v1::GetOperationRequest {
            operation_id: yn_op.operation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(op.match_ids, vec![ym.match_id.clone()]);
    assert_eq!(op.token_count, 2);
    yn.close_operation(v1::CloseOperationRequest {
        operation_id: yn_op.operation_id.clone(),
    })
    .await
    .unwrap();
    gd.close_operation(v1::CloseOperationRequest {
        operation_id: gd_op.operation_id.clone(),
    })
    .await
    .unwrap();
    let after = gx
        .check(v1::CheckRequest {
            window: Some(window_hours(1)),
            tokens: vec![entry(&phone, SelectorKind::Phone, 0)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.hits, vec![false], "closed operations leave the index");
    let listed = yn
        .list_operations(v1::ListOperationsRequest {
            include_ended: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.operations.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_idempotent_and_survives_restart_with_queue_positions() {
    let mut fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let shared = token();
    let mut ops = Vec::new();
    {
        let mut yn = fed.client("yn-psb").await;
        let mut gd = fed.client("gd-psb").await;
        // Three matches for Yunnan: three alerts in its queue.
        for i in 0..3 {
            let t = if i == 0 { shared.clone() } else { token() };
            let a = registration(vec![entry(&t, SelectorKind::Email, i)]);
            let b = registration(vec![entry(&t, SelectorKind::Email, 100 + i)]);
            yn.register_operation(a.clone()).await.unwrap();
            gd.register_operation(b).await.unwrap();
            ops.push(a);
        }
        // The same registration again is OK and creates nothing.
        let again = yn
            .register_operation(ops[0].clone())
            .await
            .unwrap()
            .into_inner();
        assert!(!again.created);
        // The same id with other content is refused.
        let mut changed = ops[0].clone();
        changed.window = Some(window_hours(48));
        let err = yn.register_operation(changed).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err}");
        let mut s = subscribe(&mut yn).await;
        let first = next_alerts(&mut s, 3, WAIT).await;
        assert_eq!(
            first.iter().map(|a| a.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        yn.ack(v1::AckRequest {
            upto: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    }

    fed.restart().await;

    let mut yn = fed.client("yn-psb").await;
    for op in &ops {
        let got = yn
            .get_operation(v1::GetOperationRequest {
                operation_id: op.operation_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.state, v1::OperationState::Open as i32);
        assert_eq!(got.match_ids.len(), 1);
    }
    // The queue resumes where it was: alert 1 was acknowledged, 2 and 3 remain.
    let mut s = subscribe(&mut yn).await;
    let rest = next_alerts(&mut s, 2, WAIT).await;
    assert_eq!(rest.iter().map(|a| a.seq).collect::<Vec<_>>(), vec![2, 3]);
    no_alert(&mut s, QUIET).await;
    // Sequence numbers continue after the restart; they are never reused.
    let mut gd = fed.client("gd-psb").await;
    gd.register_operation(registration(vec![entry(&shared, SelectorKind::Email, 9)]))
        .await
        .unwrap();
    let next = next_alerts(&mut s, 1, WAIT).await;
    assert_eq!(next[0].seq, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_resumes_exactly_after_reconnect() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    for i in 0..5 {
        let t = token();
        yn.register_operation(registration(vec![entry(&t, SelectorKind::Imei, i)]))
            .await
            .unwrap();
        gd.register_operation(registration(vec![entry(&t, SelectorKind::Imei, i)]))
            .await
            .unwrap();
    }
    let mut s = subscribe(&mut yn).await;
    let got = next_alerts(&mut s, 2, WAIT).await;
    drop(s);
    // A new connection, resuming after the last alert seen.
    let mut yn2 = fed.client("yn-psb").await;
    let mut s2 = yn2
        .subscribe(v1::SubscribeRequest {
            after: got[1].seq,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rest = drain(&mut s2, QUIET).await;
    assert_eq!(
        rest.iter().map(|a| a.seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let ack = yn2
        .ack(v1::AckRequest {
            upto: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.remaining, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_make_exactly_one_match_per_pair() {
    let agencies = ["a1", "a2", "a3", "a4", "a5"];
    let fed = Federation::start(&agencies).await;
    let mut clients = Vec::new();
    for a in agencies {
        clients.push(fed.client(a).await);
    }
    let rounds = 20u64;
    for round in 0..rounds {
        let shared = token();
        let mut tasks = Vec::new();
        for (i, c) in clients.iter().enumerate() {
            let mut c = c.clone();
            let req = registration(vec![entry(
                &shared,
                SelectorKind::Wallet,
                round * 10 + i as u64,
            )]);
            tasks.push(tokio::spawn(async move {
                c.register_operation(req).await.unwrap().into_inner()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    // Every agency sees one match per other agency per round, no more, no less.
    let mut all_matches: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let mut s = subscribe(c).await;
        let alerts = drain(&mut s, Duration::from_millis(500)).await;
        let ids: Vec<&str> = alerts
            .iter()
            .map(|a| match_of(a).match_id.as_str())
            .collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(
            ids.len(),
            unique.len(),
            "{} got a duplicate alert",
            agencies[i]
        );
        assert_eq!(
            unique.len() as u64,
            rounds * (agencies.len() as u64 - 1),
            "{} saw the wrong number of matches",
            agencies[i]
        );
        for a in &alerts {
            let m = match_of(a);
            assert!(m.created);
            all_matches
                .entry(m.match_id.clone())
                .or_default()
                .insert(agencies[i].into());
        }
    }
    // Each match has exactly two sides, both alerted.
    assert_eq!(all_matches.len() as u64, rounds * 10);
    assert!(all_matches.values().all(|sides| sides.len() == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_agency_matching_follows_policy() {
    for allowed in [true, false] {
        let fed =
            Federation::start_with(&["yn-psb"], |c| c.policy.match_same_agency = allowed).await;
        let mut yn = fed.client("yn-psb").await;
        let t = token();
        yn.register_operation(registration(vec![entry(&t, SelectorKind::Vin, 1)]))
            .await
            .unwrap();
        let r = yn
            .register_operation(registration(vec![entry(&t, SelectorKind::Vin, 2)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.matches_touched,
            u32::from(allowed),
            "match_same_agency = {allowed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_must_overlap_and_operations_expire() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let t = token();
    let soon = v1::RegisterOperationRequest {
        window: Some(v1::Window {
            start_unix: now() - 10,
            end_unix: now() + 2,
        }),
        ..registration(vec![entry(&t, SelectorKind::Address, 1)])
    };
    yn.register_operation(soon.clone()).await.unwrap();
    // Later, non-overlapping window: no match.
    let later = v1::RegisterOperationRequest {
        window: Some(v1::Window {
            start_unix: now() + 3600,
            end_unix: now() + 7200,
        }),
        ..registration(vec![entry(&t, SelectorKind::Address, 2)])
    };
    let r = gd.register_operation(later).await.unwrap().into_inner();
    assert_eq!(r.matches_touched, 0);
    // After the window ends, the sweeper expires the operation and purges its tokens.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = yn
        .get_operation(v1::GetOperationRequest {
            operation_id: soon.operation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.state, v1::OperationState::Expired as i32);
    let check = gd
        .check(v1::CheckRequest {
            window: Some(v1::Window {
                start_unix: now() - 100,
                end_unix: now() + 100,
            }),
            tokens: vec![entry(&t, SelectorKind::Address, 0)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.hits, vec![false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_and_federation_info() {
    let fed = Federation::start(&["yn-psb"]).await;
    let channel = fed.channel("yn-psb").await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "deconfliction.v1.Broker".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut yn = fed.client("yn-psb").await;
    let info = yn
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.spec_version, "dcf1");
    assert_eq!(
        info.agency_id, "yn-psb",
        "identity comes from the certificate"
    );
    assert_eq!(info.h3_resolution, 9);
    assert_eq!(info.h3_disk_radius, 1);
    assert_eq!(info.token_service_public_key.len(), 32);
    assert_eq!(info.max_tokens_per_operation, 10_000);
}
