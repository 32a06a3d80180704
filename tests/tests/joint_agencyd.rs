//! A cross-border case with real agency daemons: a Yunnan bureau (China's federation) and a
//! Lao police unit (Laos's federation) each release one operation to the joint federation
//! "mekong". Their daemons derive joint tokens through both countries' token services and
//! register at the joint broker; both are alerted once, marked as the joint federation's; the
//! relay works there through agencyd; an operation not released never reaches the joint
//! broker, and home matching goes on beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::{self, pb};
use agency_client::daemon;
use deconfliction_proto::v1;
use deconfliction_tests::agencyd::{ControlClient, alert_views, control_client, register_synced};
use deconfliction_tests::joint::{Joint, release};
use deconfliction_tests::*;
use token_spec::normalize::Selector;

const WAIT: Duration = Duration::from_secs(30);

fn sel(s: Selector) -> pb::Selector {
    control::selector_to_proto(&s, 0, "")
}

fn passport() -> pb::Selector {
    sel(Selector::Passport {
        country: "cn".into(),
        text: "E1234 5678".into(),
    })
}

fn person(names: &[&str]) -> pb::Selector {
    sel(Selector::Person {
        names: names.iter().map(|n| n.to_string()).collect(),
        dob: "1985-03-02".into(),
    })
}

async fn joint_matches(c: &mut ControlClient) -> Vec<pb::AlertView> {
    alert_views(c)
        .await
        .into_iter()
        .filter(|a| a.kind == pb::AlertKind::Match as i32 && a.federation == "mekong")
        .collect()
}

async fn wait_for(c: &ControlClient, what: &str, want: impl Fn(&[pb::AlertView]) -> bool) {
    let want = &want;
    eventually(WAIT, what, move || {
        let mut c = c.clone();
        async move { want(&alert_views(&mut c).await).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yunnan_bureau_and_a_lao_unit_find_their_common_target_at_the_joint_broker() {
    let joint = Joint::start(&["yn-psb", "gx-psb"], &["vte-police"]).await;
    let (cn, broker) = (&joint.cn, &joint.broker);
    let root = tempfile::tempdir().unwrap();
    let yc = joint.agencyd(cn, "yn-psb", &root.path().join("yn"), Joint::first_pin());
    let vc = joint.agencyd(
        &joint.la,
        "vte-police",
        &root.path().join("vte"),
        Joint::first_pin(),
    );
    let (yd, vd) = (
        daemon::start(yc.clone()).await.unwrap(),
        daemon::start(vc.clone()).await.unwrap(),
    );
    let (mut y, mut v) = (control_client(&yc).await, control_client(&vc).await);

    // A release to a federation agencyd does not know is refused, and nothing is kept.
    let e = y
        .register(pb::RegisterRequest {
            window: Some(window_hours(48)),
            selectors: vec![passport()],
            release_to: vec!["danube".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        e.message().contains("no joint federation \"danube\""),
        "{e}"
    );

    // Yunnan: one operation kept at home, one released; Laos: one released, the person written
    // as the passport spells it.
    let home_only = register_synced(&mut y, "YN-HOME", vec![passport()], 48).await;
    let released = release(&mut y, "YN-MEKONG", vec![passport(), person(&["张小明"])]).await;
    let lao = release(
        &mut v,
        "LA-1",
        vec![passport(), person(&["ZHANG", "Xiaoming"])],
    )
    .await;

    wait_for(&y, "Yunnan's joint match", |a| {
        a.iter()
            .any(|a| a.federation == "mekong" && a.kind == pb::AlertKind::Match as i32)
    })
    .await;
    wait_for(&v, "the Lao unit's joint match", |a| {
        a.iter()
            .any(|a| a.federation == "mekong" && a.kind == pb::AlertKind::Match as i32)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ym, vm) = (joint_matches(&mut y).await, joint_matches(&mut v).await);
    assert_eq!(
        (ym.len(), vm.len()),
        (1, 1),
        "one alert each: {ym:?} {vm:?}"
    );
    assert_eq!(ym[0].operation_id, released);
    assert_eq!(vm[0].operation_id, lao);
    // Both selectors matched, the name through its Pinyin form.
    assert_eq!(ym[0].selectors.len(), 2, "{:?}", ym[0]);
    assert_eq!(ym[0].pinyin_only.len(), 1, "{:?}", ym[0]);

    // The officer sees where the operation went.
    let view = y
        .get_operation(pb::GetOperationRequest {
            operation_id: released.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.joint.len(), 1, "{view:?}");
    assert_eq!(
        (
            view.joint[0].federation.as_str(),
            view.joint[0].state.as_str()
        ),
        ("mekong", "registered")
    );
    let home_view = y
        .get_operation(pb::GetOperationRequest {
            operation_id: home_only.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(home_view.joint.is_empty());

    // The joint broker holds only the released operation of Yunnan's, as cn/yn-psb.
    let (cert, key) = cn.agency_pem("yn-psb");
    let mut at_joint = v1::broker_client::BrokerClient::new(
        connect(broker.addr, &cn.ca_pem(), Some((&cert, &key)))
            .await
            .unwrap(),
    );
    let listed: Vec<String> = at_joint
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operations
        .into_iter()
        .map(|o| o.operation_id)
        .collect();
    assert_eq!(listed, vec![released.clone()]);
    assert!(!listed.contains(&home_only));

    // The relay goes through the joint broker: Yunnan writes, the Lao unit reads.
    y.send_message(pb::SendMessageRequest {
        match_id: ym[0].match_id.clone(),
        text: "Same passport on the Boten crossing?".into(),
    })
    .await
    .unwrap();
    wait_for(&v, "the message at the Lao unit", |a| {
        a.iter().any(|a| {
            a.federation == "mekong"
                && a.kind == pb::AlertKind::Message as i32
                && a.text.contains("Boten")
        })
    })
    .await;

    // Cards across the border on mutual consent, then the resolution: both through the
    // joint broker, both marked as the joint federation's.
    let m = ym[0].match_id.clone();
    v.disclose(pb::DiscloseRequest {
        match_id: vm[0].match_id.clone(),
        card: Some(contact_card("Souksavanh")),
    })
    .await
    .unwrap();
    y.disclose(pb::DiscloseRequest {
        match_id: m.clone(),
        card: Some(contact_card("Li")),
    })
    .await
    .unwrap();
    wait_for(&y, "the Lao officer's card at Yunnan", |a| {
        a.iter().any(|a| {
            a.federation == "mekong" && a.card.as_ref().is_some_and(|c| c.officer == "Souksavanh")
        })
    })
    .await;
    let view = y
        .resolve_match(pb::ResolveMatchRequest {
            match_id: m.clone(),
            outcome: v1::MatchOutcome::JointOperation as i32,
            note: "joint patrol at Boten".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.state, v1::MatchState::Resolved as i32);
    wait_for(&v, "the resolution at the Lao unit", |a| {
        a.iter()
            .any(|a| a.federation == "mekong" && a.kind == pb::AlertKind::MatchState as i32)
    })
    .await;

    // Home matching goes on beside it: Guangxi registers the passport at home.
    let gx_token = fed_token(cn, "gx-psb", "dcf1\0passport\0CN\0E12345678").await;
    let mut gx = cn.client("gx-psb").await;
    gx.register_operation(registration(vec![entry(
        &gx_token,
        SelectorKind::Passport,
        1,
    )]))
    .await
    .unwrap();
    wait_for(&y, "Yunnan's home match", |a| {
        a.iter()
            .any(|a| a.federation.is_empty() && a.kind == pb::AlertKind::Match as i32)
    })
    .await;
    // Closing at home closes at the joint broker too.
    y.close(pb::CloseRequest {
        operation_id: released.clone(),
        wait_ms: 10_000,
    })
    .await
    .unwrap();
    joint
        .wait_operation("yn-psb", &released, "the close at the joint broker", |op| {
            op.state == v1::OperationState::Closed as i32
        })
        .await;
    let lao_home = alert_views(&mut v)
        .await
        .into_iter()
        .filter(|a| a.federation.is_empty())
        .count();
    assert_eq!(
        lao_home, 0,
        "nothing of China's home federation reaches Laos"
    );

    yd.shutdown().await;
    vd.shutdown().await;
    joint.shutdown().await;
}

/// The home token of one canonical form, derived as `agency` at its own federation.
async fn fed_token(fed: &Federation, agency: &str, form: &str) -> [u8; 32] {
    fed.deriver(agency)
        .await
        .token(form.as_bytes())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pinned_share_registers_nothing_and_says_which() {
    let joint = Joint::start(&["yn-psb"], &["vte-police"]).await;
    let root = tempfile::tempdir().unwrap();
    let mut c = joint.agencyd(&joint.cn, "yn-psb", root.path(), Joint::first_pin());
    // Share B pinned with China's key: Laos's service's proofs cannot verify against it.
    c.joint[0].share_b.public_key =
        deconfliction_tests::joint::public_hex(&deconfliction_tests::joint::SEED_CN);
    let d = daemon::start(c.clone()).await.unwrap();
    let mut y = control_client(&c).await;
    let id = release(&mut y, "YN-1", vec![passport()]).await;
    let client = y.clone();
    let why = eventually(WAIT, "the reason the release waits", move || {
        let mut c = client.clone();
        let id = id.clone();
        async move {
            let op = c
                .get_operation(pb::GetOperationRequest { operation_id: id })
                .await
                .ok()?
                .into_inner();
            let j = op.joint.first()?;
            (!j.error.is_empty()).then(|| (j.state.clone(), j.error.clone()))
        }
    })
    .await;
    assert_eq!(why.0, "waiting");
    assert!(why.1.contains("share B"), "{}", why.1);
    // Nothing reached the joint broker.
    let (cert, key) = joint.cn.agency_pem("yn-psb");
    let listed = v1::broker_client::BrokerClient::new(
        connect(joint.broker.addr, &joint.cn.ca_pem(), Some((&cert, &key)))
            .await
            .unwrap(),
    )
    .list_operations(v1::ListOperationsRequest::default())
    .await
    .unwrap()
    .into_inner()
    .operations;
    assert!(listed.is_empty(), "{listed:?}");
    d.shutdown().await;
    joint.shutdown().await;
}
