//! Joint federations across a border (token spec section 5), with real processes' parts: two
//! countries' token services, each holding one key share and trusting the other's CA under a
//! namespace, and a joint broker trusting both. Joint tokens come out as the vectors say,
//! through the full blinded flow over mTLS with both proofs verified; neither share alone
//! gives them; a partner's agencies are namespaced, rate-limited at our token service and
//! revoked by their own CA only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deconflict_broker::config::{AgencySection, BrokerConfig, JointShareSection};
use deconflict_broker::identity::AgencyId;
use deconflict_broker::pki::dir::PkiDir;
use deconflict_broker::server::{Mode, RunningBroker, start};
use deconflict_broker::transport::tls::PartnerTrust;
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_tests::*;
use serde_json::Value;
use token_spec::token::{JointDeriver, PinnedKey, Share, ShareService, TokenDeriver, TokenError};
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(10);

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agency-client/token-spec/data/joint-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn seed(v: &Value, share: &str) -> [u8; 32] {
    let bytes = hex::decode(v[share]["seed_hex"].as_str().unwrap()).unwrap();
    <[u8; 32]>::try_from(bytes.as_slice()).unwrap()
}

fn pin(v: &Value, share: &str) -> PinnedKey {
    PinnedKey::from_hex(v[share]["public_key_hex"].as_str().unwrap(), 1).unwrap()
}

/// One country's trust: its CA folder, and where its agencies' certificates are kept.
struct Country {
    pki: PkiDir,
    dir: PathBuf,
}

impl Country {
    fn create(root: &Path, name: &str, ca_name: &str) -> Self {
        let dir = root.join(name);
        let pki = PkiDir::create(&dir.join("pki"), ca_name, 2).unwrap();
        Self { pki, dir }
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.join("pki/ca.pem")
    }

    fn ca_pem(&self) -> String {
        self.pki.ca().cert_pem.clone()
    }

    fn trust(&self, namespace: &str) -> PartnerTrust {
        PartnerTrust {
            namespace: namespace.into(),
            ca_cert: self.ca_path(),
            crl: Some(self.pki.crl_path()),
        }
    }

    /// Issues an agency certificate (PEM cert and key).
    fn agency(&self, id: &str) -> (String, String) {
        let c = self
            .pki
            .issue_agency(&AgencyId::parse_local(id).unwrap(), 2)
            .unwrap();
        (c.cert_pem, c.key_pem)
    }

    /// A server certificate for localhost saved under `name`, for a service of this country.
    fn server(&self, name: &str) -> (PathBuf, PathBuf) {
        deconfliction_tests::localhost_server_cert(&self.pki, &self.dir, name)
    }
}

/// A country's token service serving one key share, to its own agencies and (under
/// `partner_ns`) to the partner's.
async fn share_service(
    home: &Country,
    partner: &Country,
    partner_ns: &str,
    seed: [u8; 32],
    quota_per_minute: u64,
) -> RunningBroker {
    let (cert, key) = home.server("token-service");
    let mut c = BrokerConfig::default();
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.data_dir = home.dir.join("token-service-data");
    c.tls.ca_cert = home.ca_path();
    c.tls.server_cert = cert;
    c.tls.server_key = key;
    c.tls.crl = Some(home.pki.crl_path());
    c.tls.reload_poll_seconds = 0;
    c.tls.partner_cas = vec![partner.trust(partner_ns)];
    c.token_service.seed = home.dir.join("secrets/share.seed");
    c.token_service.quota_per_minute = quota_per_minute;
    write_token_seed(&c, &seed);
    start(&c, Mode::TokenServiceOnly).await.unwrap()
}

async fn channel(addr: SocketAddr, server_ca: &str, id: &(String, String)) -> Channel {
    connect(addr, server_ca, Some((&id.0, &id.1)))
        .await
        .unwrap()
}

struct Setup {
    _root: tempfile::TempDir,
    cn: Country,
    la: Country,
    a: RunningBroker,
    b: RunningBroker,
    v: Value,
}

async fn setup(quota_a: u64) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let cn = Country::create(root.path(), "cn", "China test federation CA");
    let la = Country::create(root.path(), "la", "Lao test federation CA");
    let v = vectors();
    let a = share_service(&cn, &la, "la", seed(&v, "share_a"), quota_a).await;
    let b = share_service(&la, &cn, "cn", seed(&v, "share_b"), 100_000).await;
    Setup {
        _root: root,
        cn,
        la,
        a,
        b,
        v,
    }
}

impl Setup {
    /// A joint deriver for an agency with certificate `id`, pinning `pins`.
    async fn deriver(&self, id: &(String, String), pins: (PinnedKey, PinnedKey)) -> JointDeriver {
        JointDeriver::new(
            ShareService::from_channel(channel(self.a.addr, &self.cn.ca_pem(), id).await, pins.0),
            ShareService::from_channel(channel(self.b.addr, &self.la.ca_pem(), id).await, pins.1),
        )
        .with_call_timeout(WAIT)
    }

    fn pins(&self) -> (PinnedKey, PinnedKey) {
        (pin(&self.v, "share_a"), pin(&self.v, "share_b"))
    }
}

fn hexes(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joint_vectors_through_two_real_token_services() {
    let s = setup(100_000).await;
    let yn = s.cn.agency("yn-psb");
    let vte = s.la.agency("vte-police");
    let mut from_cn = s.deriver(&yn, s.pins()).await;
    let mut from_la = s.deriver(&vte, s.pins()).await;
    from_cn.check_published_keys().await.unwrap();
    assert_eq!(
        hex::encode(from_cn.joint_public_key().unwrap()),
        s.v["joint_public_key_hex"].as_str().unwrap()
    );
    let cases = s.v["cases"].as_array().unwrap();
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let forms: Vec<Vec<u8>> = hexes(&case["canonical_hex"])
            .iter()
            .map(|h| hex::decode(h).unwrap())
            .collect();
        let want = hexes(&case["joint_token_hex"]);
        for deriver in [&mut from_cn, &mut from_la] {
            let got: Vec<String> = deriver
                .tokens(&forms)
                .await
                .unwrap()
                .iter()
                .map(hex::encode)
                .collect();
            assert_eq!(got, want, "{id}");
        }
        // Share A's service alone gives other tokens: what one side could compute by itself.
        let mut alone = TokenDeriver::from_channel(
            channel(s.a.addr, &s.cn.ca_pem(), &yn).await,
            pin(&s.v, "share_a"),
        );
        let got: Vec<String> = alone
            .tokens(&forms)
            .await
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect();
        assert_eq!(got, hexes(&case["token_hex_under_share_a_alone"]), "{id}");
    }

    // A wrong pinned share: its proof does not verify, nothing is derived, and the error says
    // which service.
    let wrong = (pin(&s.v, "share_a"), pin(&s.v, "share_a"));
    let mut d = s.deriver(&yn, wrong).await;
    let e = d.tokens(&[b"dcf1\0phone\0+8613800138000".to_vec()]).await;
    match e {
        Err(TokenError::JointShare { share, source }) => {
            assert_eq!(share, Share::B);
            assert_eq!(*source, TokenError::ProofVerification);
        }
        other => panic!("{other:?}"),
    }
    s.a.shutdown().await;
    s.b.shutdown().await;
}

/// A joint broker trusting both countries' CAs, each under its namespace, publishing both
/// shares, with no token service of its own.
async fn joint_broker(s: &Setup, root: &Path) -> RunningBroker {
    let (cert, key) = s.cn.server("joint-broker");
    let mut c = BrokerConfig::default();
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.data_dir = root.join("joint-data");
    c.tls.ca_cert = s.cn.ca_path();
    c.tls.namespace = "cn".into();
    c.tls.crl = Some(s.cn.pki.crl_path());
    c.tls.server_cert = cert;
    c.tls.server_key = key;
    c.tls.reload_poll_seconds = 0;
    c.tls.partner_cas = vec![s.la.trust("la")];
    c.secrets.pepper = root.join("joint-secrets/pepper");
    c.secrets.audit_key = root.join("joint-secrets/audit.key");
    c.token_service.enabled = false;
    c.joint_shares = ["share_a", "share_b"]
        .iter()
        .map(|share| JointShareSection {
            name: (*share).into(),
            public_key: s.v[*share]["public_key_hex"].as_str().unwrap().into(),
            key_epoch: 1,
        })
        .collect();
    // The joint centre's watch officers: a namespaced id, as the registry knows it.
    c.agencies = vec![AgencySection {
        id: "cn/mekong-watch".into(),
        role: "watch-centre".into(),
        display_name: "Mekong joint centre".into(),
    }];
    start(&c, Mode::Broker).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_agencies_are_namespaced_limited_and_revoked_by_their_own_ca() {
    let s = setup(3).await;
    let root = tempfile::tempdir().unwrap();
    let yn = s.cn.agency("yn-psb");
    let vte = s.la.agency("vte-police");
    // A Lao certificate that names a Chinese bureau's id is still a Lao agency.
    let posing = s.la.agency("yn-psb");

    // Our token service keeps a brake on the partner's guessing: its own quota per agency.
    let luang_prabang = s.la.agency("lpq-police");
    let mut lao_at_a = TokenDeriver::from_channel(
        channel(s.a.addr, &s.cn.ca_pem(), &luang_prabang).await,
        pin(&s.v, "share_a"),
    )
    .with_max_cache_entries(0);
    for i in 0..3 {
        lao_at_a
            .token(format!("form {i}").as_bytes())
            .await
            .unwrap();
    }
    let e = lao_at_a.token(b"form 4").await.unwrap_err();
    assert!(e.is_resource_exhausted(), "{e}");
    let mut cn_at_a = TokenDeriver::from_channel(
        channel(s.a.addr, &s.cn.ca_pem(), &yn).await,
        pin(&s.v, "share_a"),
    );
    cn_at_a.token(b"form 4").await.unwrap();

    // The joint broker names each agency in its CA's namespace and publishes both shares.
    let broker = joint_broker(&s, root.path()).await;
    let client = |id: (String, String)| {
        let ca = s.cn.ca_pem();
        let addr = broker.addr;
        async move { BrokerClient::new(channel(addr, &ca, &id).await) }
    };
    let info = |mut c: BrokerClient<Channel>| async move {
        c.get_federation_info(v1::GetFederationInfoRequest {})
            .await
            .map(|r| r.into_inner())
    };
    let mut yn_joint = client(yn.clone()).await;
    let mut vte_joint = client(vte.clone()).await;
    let got = info(yn_joint.clone()).await.unwrap();
    assert_eq!(got.agency_id, "cn/yn-psb");
    assert!(got.token_service_public_key.is_empty(), "no key of its own");
    assert_eq!(got.joint_key_shares.len(), 2);
    assert_eq!(
        hex::encode(&got.joint_public_key),
        s.v["joint_public_key_hex"].as_str().unwrap()
    );
    assert_eq!(
        info(vte_joint.clone()).await.unwrap().agency_id,
        "la/vte-police"
    );
    assert_eq!(
        info(client(posing.clone()).await).await.unwrap().agency_id,
        "la/yn-psb"
    );

    // A common passport, shared both ways: one match, both alerted once.
    let passport = s.v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "joint-passport")
        .unwrap();
    let form = hex::decode(hexes(&passport["canonical_hex"])[0].clone()).unwrap();
    let mut yn_d = s.deriver(&yn, s.pins()).await;
    let mut vte_d = s.deriver(&vte, s.pins()).await;
    let t_yn = yn_d.tokens(std::slice::from_ref(&form)).await.unwrap()[0];
    let t_vte = vte_d.tokens(std::slice::from_ref(&form)).await.unwrap()[0];
    assert_eq!(t_yn, t_vte);
    let mut yn_s = subscribe(&mut yn_joint).await;
    let mut vte_s = subscribe(&mut vte_joint).await;
    yn_joint
        .register_operation(registration(vec![entry(&t_yn, SelectorKind::Passport, 1)]))
        .await
        .unwrap();
    vte_joint
        .register_operation(registration(vec![entry(&t_vte, SelectorKind::Passport, 7)]))
        .await
        .unwrap();
    for stream in [&mut yn_s, &mut vte_s] {
        let got = next_alerts(stream, 1, WAIT).await;
        assert!(matches!(got[0].event, Some(v1::alert::Event::Match(_))));
        no_alert(stream, Duration::from_millis(300)).await;
    }

    // Roles hold per namespaced id: China's joint-centre certificate is the watch centre and
    // sees the match (naming both agencies); a Lao certificate of the same local id is only an
    // agency, and the watch centre makes no agency call.
    let watch = s.cn.agency("mekong-watch");
    let oversight = |id: (String, String)| {
        let ca = s.cn.ca_pem();
        let addr = broker.addr;
        async move {
            deconfliction_proto::v1::oversight_client::OversightClient::new(
                channel(addr, &ca, &id).await,
            )
            .list_matches(v1::ListMatchesRequest::default())
            .await
        }
    };
    let seen = oversight(watch.clone()).await.unwrap().into_inner().matches;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let mut named = seen[0].agency_ids.clone();
    named.sort();
    assert_eq!(
        named,
        vec!["cn/yn-psb".to_string(), "la/vte-police".to_string()]
    );
    let e = oversight(s.la.agency("mekong-watch")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");
    let e = client(watch)
        .await
        .register_operation(registration(vec![entry(&t_yn, SelectorKind::Passport, 1)]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");

    // Laos revokes its unit's certificate: refused at the joint broker after the CRL reload;
    // China's bureau is untouched.
    s.la.pki.revoke(&vte.0).unwrap();
    broker.reload_tls().unwrap();
    let refused = info(vte_joint.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    info(yn_joint.clone()).await.unwrap();
    broker.shutdown().await;
    s.a.shutdown().await;
    s.b.shutdown().await;
}
