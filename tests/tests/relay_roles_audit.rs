//! After the hit: anonymous relay, contact on mutual consent, resolution; roles (watch
//! centre, admin, suspension). The audit log and retention are in audit_retention.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconflict_broker::config::AgencySection;
use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;
use deconfliction_proto::v1::oversight_client::OversightClient;
use deconfliction_tests::*;
use prost::Message;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);

fn roles(c: &mut deconflict_broker::config::BrokerConfig) {
    c.agencies = vec![
        AgencySection {
            id: "national-bureau".into(),
            role: "admin".into(),
            display_name: "National bureau".into(),
        },
        AgencySection {
            id: "watch".into(),
            role: "watch-centre".into(),
            display_name: "Watch centre".into(),
        },
    ];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_consent_and_resolution_between_anonymous_parties() {
    let fed = Federation::start_with(&["yn-psb", "gd-psb", "gx-psb"], roles).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let mut gx = fed.client("gx-psb").await;
    let mut yn_s = subscribe(&mut yn).await;
    let mut gd_s = subscribe(&mut gd).await;
    let t = token();
    let yn_op = registration(vec![entry(&t, SelectorKind::Plate, 1)]);
    let gd_op = registration(vec![entry(&t, SelectorKind::Plate, 2)]);
    yn.register_operation(yn_op.clone()).await.unwrap();
    gd.register_operation(gd_op.clone()).await.unwrap();
    let m = match &next_alerts(&mut yn_s, 1, WAIT).await[0].event {
        Some(v1::alert::Event::Match(m)) => m.match_id.clone(),
        e => panic!("{e:?}"),
    };
    next_alerts(&mut gd_s, 1, WAIT).await;

    // A message reaches the other party, addressed to its own operation, naming nobody.
    yn.send_message(v1::SendMessageRequest {
        match_id: m.clone(),
        text: "Are you on the Kunming route?".into(),
    })
    .await
    .unwrap();
    let got = next_alerts(&mut gd_s, 1, WAIT).await;
    match &got[0].event {
        Some(v1::alert::Event::Message(msg)) => {
            assert_eq!(msg.text, "Are you on the Kunming route?");
            assert_eq!(msg.operation_id, gd_op.operation_id);
        }
        e => panic!("{e:?}"),
    }
    assert!(!got[0].encode_to_vec().windows(6).any(|w| w == b"yn-psb"));
    no_alert(&mut yn_s, QUIET).await;

    // A third agency cannot touch the match, nor learn that it exists.
    let e = gx
        .send_message(v1::SendMessageRequest {
            match_id: m.clone(),
            text: "hello".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    let e = gx
        .get_match(v1::GetMatchRequest {
            match_id: m.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Bad relay input.
    let e = yn
        .send_message(v1::SendMessageRequest {
            match_id: m.clone(),
            text: " ".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = yn
        .send_message(v1::SendMessageRequest {
            match_id: m.clone(),
            text: "x".repeat(4001),
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("4000"),
        "{e}"
    );
    let e = yn
        .disclose(v1::DiscloseRequest {
            match_id: m.clone(),
            card: Some(v1::ContactCard {
                unit_name: "unit".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("no way to reach you"), "{e}");

    // One side discloses: the other receives nothing, not even that a card waits.
    let view = yn
        .disclose(v1::DiscloseRequest {
            match_id: m.clone(),
            card: Some(contact_card("Li")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(view.you_disclosed && !view.cards_exchanged);
    no_alert(&mut gd_s, QUIET).await;
    let gd_view = gd
        .get_match(v1::GetMatchRequest {
            match_id: m.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!gd_view.you_disclosed && !gd_view.cards_exchanged);
    // Withdrawing before the other side discloses is possible.
    let view = yn
        .withdraw_disclosure(v1::WithdrawDisclosureRequest {
            match_id: m.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!view.you_disclosed);
    // Guangdong discloses first now, then Yunnan: both receive the other's card.
    gd.disclose(v1::DiscloseRequest {
        match_id: m.clone(),
        card: Some(contact_card("Chen")),
    })
    .await
    .unwrap();
    no_alert(&mut yn_s, QUIET).await;
    yn.disclose(v1::DiscloseRequest {
        match_id: m.clone(),
        card: Some(contact_card("Li")),
    })
    .await
    .unwrap();
    for (stream, other) in [(&mut yn_s, "Chen"), (&mut gd_s, "Li")] {
        match &next_alerts(stream, 1, WAIT).await[0].event {
            Some(v1::alert::Event::Contact(c)) => {
                assert_eq!(c.card.as_ref().unwrap().officer, other)
            }
            e => panic!("{e:?}"),
        }
    }
    let e = yn
        .withdraw_disclosure(v1::WithdrawDisclosureRequest {
            match_id: m.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Resolution: both are told; a resolved match stops growing until reopened.
    yn.resolve_match(v1::ResolveMatchRequest {
        match_id: m.clone(),
        outcome: v1::MatchOutcome::JointOperation as i32,
        note: "joint raid on the 28th".into(),
    })
    .await
    .unwrap();
    for (stream, by_you) in [(&mut yn_s, true), (&mut gd_s, false)] {
        match &next_alerts(stream, 1, WAIT).await[0].event {
            Some(v1::alert::Event::MatchState(s)) => {
                assert_eq!(s.state, v1::MatchState::Resolved as i32);
                assert_eq!(s.by_you, by_you);
            }
            e => panic!("{e:?}"),
        }
    }
    let t2 = token();
    for (c, op) in [(&mut yn, &yn_op), (&mut gd, &gd_op)] {
        c.amend_operation(v1::AmendOperationRequest {
            operation_id: op.operation_id.clone(),
            add_tokens: vec![entry(&t2, SelectorKind::Vin, 9)],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    no_alert(&mut yn_s, QUIET).await;
    let e = gd
        .resolve_match(v1::ResolveMatchRequest {
            match_id: m.clone(),
            outcome: 0,
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    gd.reopen_match(v1::ReopenMatchRequest {
        match_id: m.clone(),
    })
    .await
    .unwrap();
    next_alerts(&mut yn_s, 1, WAIT).await;
    let t3 = token();
    for (c, op) in [(&mut yn, &yn_op), (&mut gd, &gd_op)] {
        c.amend_operation(v1::AmendOperationRequest {
            operation_id: op.operation_id.clone(),
            add_tokens: vec![entry(&t3, SelectorKind::Imei, 10)],
            ..Default::default()
        })
        .await
        .unwrap();
    }
    match &next_alerts(&mut yn_s, 1, WAIT).await[0].event {
        Some(v1::alert::Event::Match(g)) => assert!(!g.created && g.new_tokens == 1),
        e => panic!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_centre_sees_metadata_and_admin_suspends() {
    let fed =
        Federation::start_with(&["yn-psb", "gd-psb", "watch", "national-bureau"], roles).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let t = token();
    let gd_op = registration(vec![entry(&t, SelectorKind::Iban, 2)]);
    yn.register_operation(registration(vec![entry(&t, SelectorKind::Iban, 1)]))
        .await
        .unwrap();
    gd.register_operation(gd_op.clone()).await.unwrap();
    let m = first_match_id(&mut yn).await;
    yn.send_message(v1::SendMessageRequest {
        match_id: m.clone(),
        text: "secret words".into(),
    })
    .await
    .unwrap();
    yn.disclose(v1::DiscloseRequest {
        match_id: m.clone(),
        card: Some(contact_card("Li")),
    })
    .await
    .unwrap();

    let info = fed
        .client("watch")
        .await
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.role, v1::Role::WatchCentre as i32);
    let mut watch = OversightClient::new(fed.channel("watch").await.unwrap());
    let list = watch
        .list_matches(v1::ListMatchesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.matches.len(), 1);
    let meta = &list.matches[0];
    assert_eq!(meta.match_id, m);
    assert_eq!(meta.kinds, vec![SelectorKind::Iban as i32]);
    let mut agencies = meta.agency_ids.clone();
    agencies.sort();
    assert_eq!(agencies, vec!["gd-psb", "yn-psb"]);
    let bytes = list.encode_to_vec();
    for secret in [&b"secret words"[..], b"Li's unit", &t] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "the watch centre saw content"
        );
    }
    let stats = watch
        .get_statistics(v1::GetStatisticsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.open_operations, stats.open_matches), (2, 1));
    let old = watch
        .list_matches(v1::ListMatchesRequest {
            unresolved_for_hours: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        old.matches.is_empty(),
        "a match minutes old is not unresolved for an hour"
    );
    // An ordinary agency has no such view, and no admin powers.
    let e = OversightClient::new(fed.channel("yn-psb").await.unwrap())
        .list_matches(v1::ListMatchesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    let e = AdminClient::new(fed.channel("watch").await.unwrap())
        .list_agencies(v1::ListAgenciesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The admin suspends Guangdong: its calls are refused at once and its operations close.
    let mut admin = AdminClient::new(fed.channel("national-bureau").await.unwrap());
    admin
        .enrol_agency(v1::EnrolAgencyRequest {
            agency_id: "gd-psb".into(),
            role: v1::Role::Agency as i32,
            display_name: "Guangdong PSB".into(),
        })
        .await
        .unwrap();
    let mut gd_stream = subscribe(&mut gd).await;
    let rec = admin
        .suspend_agency(v1::SuspendAgencyRequest {
            agency_id: "gd-psb".into(),
            reason: "certificate compromise under investigation".into(),
            close_operations: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rec.suspended);
    let e = gd
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("suspended"), "{e}");
    // Its open stream ends at the next alert it would have received.
    yn.send_message(v1::SendMessageRequest {
        match_id: m.clone(),
        text: "still there?".into(),
    })
    .await
    .unwrap();
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match gd_stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the suspended agency's stream stayed open");
    let stats = watch
        .get_statistics(v1::GetStatisticsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stats.open_operations, 1,
        "the suspended agency's operation was closed"
    );
    admin
        .reinstate_agency(v1::ReinstateAgencyRequest {
            agency_id: "gd-psb".into(),
        })
        .await
        .unwrap();
    let op = gd
        .get_operation(v1::GetOperationRequest {
            operation_id: gd_op.operation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(op.state, v1::OperationState::Closed as i32);
    let e = admin
        .suspend_agency(v1::SuspendAgencyRequest {
            agency_id: "unknown-x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_can_be_required() {
    let fed = Federation::start_with(&["yn-psb", "national-bureau"], |c| {
        roles(c);
        c.policy.require_enrolment = true;
    })
    .await;
    let mut yn = fed.client("yn-psb").await;
    let e = yn
        .get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("not enrolled"), "{e}");
    AdminClient::new(fed.channel("national-bureau").await.unwrap())
        .enrol_agency(v1::EnrolAgencyRequest {
            agency_id: "yn-psb".into(),
            role: v1::Role::Agency as i32,
            display_name: String::new(),
        })
        .await
        .unwrap();
    yn.get_federation_info(v1::GetFederationInfoRequest {})
        .await
        .unwrap();
}

/// The attack that broke "never whose": the watch centre registers a token a bureau holds and
/// reads from its match list which bureau it is. Agency calls are for agencies only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_centre_and_the_admin_cannot_make_agency_calls() {
    let fed = Federation::start_with(&["yn-psb", "watch", "national-bureau"], roles).await;
    let mut yn = fed.client("yn-psb").await;
    let t = token();
    yn.register_operation(registration(vec![entry(&t, SelectorKind::Phone, 1)]))
        .await
        .unwrap();
    for (who, role) in [("watch", "watch centre"), ("national-bureau", "admin")] {
        let mut c = fed.client(who).await;
        let denied = |e: tonic::Status, call: &str| {
            assert_eq!(e.code(), Code::PermissionDenied, "{who} {call}: {e}");
            assert!(
                e.message().contains(&format!("has the {role} role")),
                "{who} {call}: {e}"
            );
        };
        let guess = registration(vec![entry(&t, SelectorKind::Phone, 1)]);
        denied(c.register_operation(guess).await.unwrap_err(), "register");
        denied(
            c.check(v1::CheckRequest {
                window: Some(window_hours(1)),
                tokens: vec![entry(&t, SelectorKind::Phone, 0)],
            })
            .await
            .unwrap_err(),
            "check",
        );
        denied(
            c.list_operations(v1::ListOperationsRequest::default())
                .await
                .unwrap_err(),
            "list operations",
        );
        denied(
            c.subscribe(v1::SubscribeRequest::default())
                .await
                .unwrap_err(),
            "subscribe",
        );
        denied(
            c.get_match(v1::GetMatchRequest {
                match_id: uuid::Uuid::new_v4().to_string(),
            })
            .await
            .unwrap_err(),
            "get match",
        );
        let mut tokens =
            v1::token_service_client::TokenServiceClient::new(fed.channel(who).await.unwrap());
        denied(
            tokens
                .evaluate(v1::EvaluateRequest {
                    blinded_elements: vec![vec![0u8; 32]],
                    key_epoch: 0,
                })
                .await
                .unwrap_err(),
            "evaluate",
        );
    }
    // So the watch centre's view names no agency for the guessed token: nothing matched.
    let matches = OversightClient::new(fed.channel("watch").await.unwrap())
        .list_matches(v1::ListMatchesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .matches;
    assert!(matches.is_empty(), "{matches:?}");
}

/// Every agency the broker admits can be suspended: without required enrolment, an agency
/// with a valid certificate is entered in the registry on first contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admitted_agency_can_be_suspended() {
    let fed = Federation::start_with(&["gd-psb", "national-bureau"], roles).await;
    let mut gd = fed.client("gd-psb").await;
    gd.list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap();
    let mut admin = AdminClient::new(fed.channel("national-bureau").await.unwrap());
    let listed = admin
        .list_agencies(v1::ListAgenciesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agencies;
    assert!(
        listed
            .iter()
            .any(|a| a.agency_id == "gd-psb" && a.role == v1::Role::Agency as i32),
        "{listed:?}"
    );
    admin
        .suspend_agency(v1::SuspendAgencyRequest {
            agency_id: "gd-psb".into(),
            reason: "lost laptop".into(),
            close_operations: false,
        })
        .await
        .unwrap();
    let e = gd
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("lost laptop"), "{e}");
}

/// A match resolved while its operations kept growing says, once reopened, what they share
/// now: the tokens they came to share join it, with one growth alert to each side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_match_catches_up_on_what_the_operations_came_to_share() {
    let fed = Federation::start(&["yn-psb", "gd-psb"]).await;
    let mut yn = fed.client("yn-psb").await;
    let mut gd = fed.client("gd-psb").await;
    let (t1, t2) = (token(), token());
    let a = registration(vec![entry(&t1, SelectorKind::Phone, 1)]);
    let b = registration(vec![entry(&t1, SelectorKind::Phone, 7)]);
    yn.register_operation(a.clone()).await.unwrap();
    gd.register_operation(b.clone()).await.unwrap();
    let m = first_match_id(&mut yn).await;
    yn.resolve_match(v1::ResolveMatchRequest {
        match_id: m.clone(),
        outcome: v1::MatchOutcome::NoConflict as i32,
        note: String::new(),
    })
    .await
    .unwrap();
    // While resolved, both come to hold t2 as well: the match does not grow (no alert).
    yn.amend_operation(v1::AmendOperationRequest {
        operation_id: a.operation_id.clone(),
        add_tokens: vec![entry(&t2, SelectorKind::Email, 2)],
        ..Default::default()
    })
    .await
    .unwrap();
    gd.amend_operation(v1::AmendOperationRequest {
        operation_id: b.operation_id.clone(),
        add_tokens: vec![entry(&t2, SelectorKind::Email, 8)],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut yn_s = subscribe(&mut yn).await;
    let mut gd_s = subscribe(&mut gd).await;
    let before_yn = drain(&mut yn_s, QUIET).await;
    let before_gd = drain(&mut gd_s, QUIET).await;
    let grew = |alerts: &[v1::Alert]| {
        alerts
            .iter()
            .filter(|a| matches!(&a.event, Some(v1::alert::Event::Match(x)) if !x.created))
            .count()
    };
    assert_eq!(
        grew(&before_yn) + grew(&before_gd),
        0,
        "a resolved match grew"
    );

    let view = gd
        .reopen_match(v1::ReopenMatchRequest {
            match_id: m.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let refs: Vec<u64> = view.tokens.iter().map(|t| t.local_ref).collect();
    assert!(refs.contains(&7) && refs.contains(&8), "{refs:?}");
    for (stream, own_ref) in [(&mut yn_s, 2u64), (&mut gd_s, 8u64)] {
        let got = drain(stream, QUIET).await;
        let growth: Vec<&v1::MatchAlert> = got
            .iter()
            .filter_map(|a| match &a.event {
                Some(v1::alert::Event::Match(x)) if !x.created => Some(x),
                _ => None,
            })
            .collect();
        assert_eq!(growth.len(), 1, "{got:?}");
        assert_eq!(growth[0].new_tokens, 1);
        assert!(growth[0].tokens.iter().any(|t| t.local_ref == own_ref));
    }
}
