//! A cross-border case with real agency daemons: a Yunnan bureau (China's federation) and a
//! Lao police unit (Laos's federation) each release one operation to the joint federation
//! "mekong". Their daemons derive joint tokens through both countries' token services and
//! register at the joint broker; both are alerted once, marked as the joint federation's; the
//! relay works there through agencyd; an operation not released never reaches the joint
//! broker, and home matching goes on beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use agency_client::control::{self, pb};
use agency_client::daemon::config::{JointSection, JointShareSection};
use agency_client::daemon::{self, DaemonConfig};
use deconflict_broker::config::{BrokerConfig, JointShareSection as BrokerShare};
use deconflict_broker::pki::dir::PkiDir;
use deconflict_broker::server::{Mode, RunningBroker, start};
use deconflict_broker::transport::tls::PartnerTrust;
use deconfliction_proto::v1;
use deconfliction_tests::agencyd::{ControlClient, alert_views, control_client, register_synced};
use deconfliction_tests::*;
use token_spec::normalize::Selector;
use token_spec::token::{TOKEN_SERVICE_INFO, derive_keypair_from_seed};

const WAIT: Duration = Duration::from_secs(30);
const SEED_CN: [u8; 32] = [0x0a; 32];
const SEED_LA: [u8; 32] = [0x0b; 32];

fn ca_path(fed: &Federation) -> std::path::PathBuf {
    fed.dir.path().join("pki/ca.pem")
}

fn partner(fed: &Federation, namespace: &str) -> PartnerTrust {
    PartnerTrust {
        namespace: namespace.into(),
        ca_cert: ca_path(fed),
        crl: Some(fed.pki.crl_path()),
    }
}

/// A server certificate of `fed`'s CA for localhost, saved under `name`.
fn server_cert(fed: &Federation, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let c = fed
        .pki
        .issue_server(
            name,
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            2,
        )
        .unwrap();
    let (cert, key) = (
        fed.dir.path().join(format!("{name}.pem")),
        fed.dir.path().join(format!("{name}.key")),
    );
    PkiDir::save(&c, &cert, &key).unwrap();
    (cert, key)
}

fn base_config(fed: &Federation, name: &str) -> BrokerConfig {
    let (cert, key) = server_cert(fed, name);
    let mut c = BrokerConfig::default();
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.data_dir = fed.dir.path().join(format!("{name}-data"));
    c.tls.ca_cert = ca_path(fed);
    c.tls.crl = Some(fed.pki.crl_path());
    c.tls.server_cert = cert;
    c.tls.server_key = key;
    c.tls.reload_poll_seconds = 0;
    c.secrets.pepper = fed.dir.path().join(format!("{name}-secrets/pepper"));
    c.secrets.audit_key = fed.dir.path().join(format!("{name}-secrets/audit.key"));
    c
}

/// `home`'s token service serving its share of the joint key, to the partner's agencies too.
async fn share_service(
    home: &Federation,
    other: &Federation,
    ns: &str,
    seed: [u8; 32],
) -> RunningBroker {
    let mut c = base_config(home, "share");
    c.tls.partner_cas = vec![partner(other, ns)];
    c.token_service.seed = home.dir.path().join("share-secrets/share.seed");
    write_token_seed(&c, &seed);
    start(&c, Mode::TokenServiceOnly).await.unwrap()
}

fn public_hex(seed: &[u8; 32]) -> String {
    hex::encode(
        derive_keypair_from_seed(seed, TOKEN_SERVICE_INFO)
            .unwrap()
            .public_key(),
    )
}

/// The joint broker, run by a body both trust (here with a certificate of China's CA).
async fn joint_broker(cn: &Federation, la: &Federation) -> RunningBroker {
    let mut c = base_config(cn, "joint");
    c.tls.namespace = "cn".into();
    c.tls.partner_cas = vec![partner(la, "la")];
    c.token_service.enabled = false;
    c.joint_shares = vec![
        BrokerShare {
            name: "China".into(),
            public_key: public_hex(&SEED_CN),
            key_epoch: 1,
        },
        BrokerShare {
            name: "Lao PDR".into(),
            public_key: public_hex(&SEED_LA),
            key_epoch: 1,
        },
    ];
    start(&c, Mode::Broker).await.unwrap()
}

struct Joint<'a> {
    cn: &'a Federation,
    la: &'a Federation,
    broker: &'a RunningBroker,
    share_a: &'a RunningBroker,
    share_b: &'a RunningBroker,
}

fn with_joint(mut c: DaemonConfig, j: &Joint<'_>) -> DaemonConfig {
    c.joint = vec![JointSection {
        name: "mekong".into(),
        broker: j.broker.addr.to_string(),
        broker_ca: Some(ca_path(j.cn)),
        tls_domain: Some("localhost".into()),
        share_a: JointShareSection {
            address: j.share_a.addr.to_string(),
            ca: Some(ca_path(j.cn)),
            tls_domain: Some("localhost".into()),
            public_key: public_hex(&SEED_CN),
            key_epoch: 1,
        },
        share_b: JointShareSection {
            address: j.share_b.addr.to_string(),
            ca: Some(ca_path(j.la)),
            tls_domain: Some("localhost".into()),
            public_key: public_hex(&SEED_LA),
            key_epoch: 1,
        },
    }];
    c
}

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

async fn register_released(
    c: &mut ControlClient,
    case: &str,
    selectors: Vec<pb::Selector>,
) -> String {
    c.register(pb::RegisterRequest {
        case_reference: case.into(),
        window: Some(window_hours(48)),
        selectors,
        wait_ms: 20_000,
        release_to: vec!["mekong".into()],
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .operation
    .unwrap()
    .operation_id
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
    let cn = Federation::start_named("China test CA", &["yn-psb", "gx-psb"], |_| {}).await;
    let la = Federation::start_named("Lao test CA", &["vte-police"], |_| {}).await;
    let share_a = share_service(&cn, &la, "la", SEED_CN).await;
    let share_b = share_service(&la, &cn, "cn", SEED_LA).await;
    let broker = joint_broker(&cn, &la).await;
    let joint = Joint {
        cn: &cn,
        la: &la,
        broker: &broker,
        share_a: &share_a,
        share_b: &share_b,
    };
    let root = tempfile::tempdir().unwrap();
    let yc = with_joint(
        agencyd_config(&cn, "yn-psb", &root.path().join("yn")),
        &joint,
    );
    let vc = with_joint(
        agencyd_config(&la, "vte-police", &root.path().join("vte")),
        &joint,
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
    let released =
        register_released(&mut y, "YN-MEKONG", vec![passport(), person(&["张小明"])]).await;
    let lao = register_released(
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

    // Home matching goes on beside it: Guangxi registers the passport at home.
    let gx_token = fed_token(&cn, "gx-psb", "dcf1\0passport\0CN\0E12345678").await;
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
    broker.shutdown().await;
    share_a.shutdown().await;
    share_b.shutdown().await;
}

/// The home token of one canonical form, derived as `agency` at its own federation.
async fn fed_token(fed: &Federation, agency: &str, form: &str) -> [u8; 32] {
    fed.deriver(agency)
        .await
        .token(form.as_bytes())
        .await
        .unwrap()
}
