//! A joint federation for tests (token spec section 5): China's and Laos's home federations,
//! each country's stand-alone token service holding one key share and serving the other's
//! agencies under a namespace, and a joint broker trusting both CAs. Agency daemons join it
//! as "mekong".

use std::path::{Path, PathBuf};

use agency_client::daemon::DaemonConfig;
use agency_client::daemon::config::{JointSection, JointShareSection};
use deconflict_broker::config::{BrokerConfig, JointShareSection as BrokerShare};
use deconflict_broker::server::{Mode, RunningBroker, start};
use deconflict_broker::transport::tls::PartnerTrust;
use token_spec::token::{TOKEN_SERVICE_INFO, derive_keypair_from_seed};

use crate::{Federation, agencyd_config, write_secret};

/// China's share seed (epoch 1) and Laos's.
pub const SEED_CN: [u8; 32] = [0x0a; 32];
pub const SEED_LA: [u8; 32] = [0x0b; 32];

/// A share key: its seed and epoch.
#[derive(Debug, Clone, Copy)]
pub struct ShareKey {
    pub seed: [u8; 32],
    pub epoch: u32,
}

/// A share's token service keys: the current one and, during a rotation, the previous one
/// with the end of its overlap (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct ShareKeys {
    pub current: ShareKey,
    pub previous: Option<(ShareKey, i64)>,
}

impl ShareKeys {
    pub fn one(seed: [u8; 32]) -> Self {
        Self {
            current: ShareKey { seed, epoch: 1 },
            previous: None,
        }
    }
}

/// The public key (hex) of a share seed.
pub fn public_hex(seed: &[u8; 32]) -> String {
    hex::encode(
        derive_keypair_from_seed(seed, TOKEN_SERVICE_INFO)
            .unwrap()
            .public_key(),
    )
}

pub fn ca_path(fed: &Federation) -> PathBuf {
    fed.dir.path().join("pki/ca.pem")
}

fn partner(fed: &Federation, namespace: &str) -> PartnerTrust {
    PartnerTrust {
        namespace: namespace.into(),
        ca_cert: ca_path(fed),
        crl: Some(fed.pki.crl_path()),
    }
}

/// A configuration for a server of `fed`'s, with a certificate for localhost of its CA.
fn base_config(fed: &Federation, name: &str) -> BrokerConfig {
    let (cert, key) = fed.server_cert(fed.dir.path(), name);
    let mut config = BrokerConfig::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = fed.dir.path().join(format!("{name}-data"));
    config.tls.ca_cert = ca_path(fed);
    config.tls.crl = Some(fed.pki.crl_path());
    config.tls.server_cert = cert;
    config.tls.server_key = key;
    config.tls.reload_poll_seconds = 0;
    config.secrets.pepper = fed.dir.path().join(format!("{name}-secrets/pepper"));
    config.secrets.audit_key = fed.dir.path().join(format!("{name}-secrets/audit.key"));
    config
}

/// `home`'s token service serving its share, to the partner's agencies too (under `ns`).
/// `listen` keeps the port of an earlier start (a restart for a rotation).
pub async fn share_service(
    home: &Federation,
    other: &Federation,
    ns: &str,
    keys: ShareKeys,
    listen: Option<std::net::SocketAddr>,
) -> RunningBroker {
    let mut c = base_config(home, "share");
    if let Some(addr) = listen {
        c.server.listen = addr;
    }
    c.tls.partner_cas = vec![partner(other, ns)];
    let secrets = home.dir.path().join("share-secrets");
    let file = |k: ShareKey| secrets.join(format!("share-{}.seed", k.epoch));
    write_secret(&file(keys.current), &keys.current.seed);
    c.token_service.seed = file(keys.current);
    c.token_service.key_epoch = keys.current.epoch;
    if let Some((previous, until)) = keys.previous {
        write_secret(&file(previous), &previous.seed);
        c.token_service.previous_seed = Some(file(previous));
        c.token_service.previous_key_epoch = previous.epoch;
        c.token_service.previous_valid_until = Some(
            time::OffsetDateTime::from_unix_timestamp(until)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        );
    }
    start(&c, Mode::TokenServiceOnly).await.unwrap()
}

/// The joint broker, run by a body both trust (here with a certificate of China's CA).
pub async fn joint_broker(cn: &Federation, la: &Federation) -> RunningBroker {
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

/// Registers an operation through agencyd, released to "mekong"; its id.
pub async fn release(
    c: &mut crate::agencyd::ControlClient,
    case: &str,
    selectors: Vec<agency_client::control::pb::Selector>,
) -> String {
    c.register(agency_client::control::pb::RegisterRequest {
        case_reference: case.into(),
        window: Some(crate::window_hours(48)),
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

/// Everything of a joint federation but the agencies' daemons.
pub struct Joint {
    pub cn: Federation,
    pub la: Federation,
    pub share_a: RunningBroker,
    pub share_b: RunningBroker,
    pub broker: RunningBroker,
}

impl Joint {
    pub async fn start(cn_agencies: &[&str], la_agencies: &[&str]) -> Self {
        let cn = Federation::start_named("China test CA", cn_agencies, |_| {}).await;
        let la = Federation::start_named("Lao test CA", la_agencies, |_| {}).await;
        let share_a = share_service(&cn, &la, "la", ShareKeys::one(SEED_CN), None).await;
        let share_b = share_service(&la, &cn, "cn", ShareKeys::one(SEED_LA), None).await;
        let broker = joint_broker(&cn, &la).await;
        Self {
            cn,
            la,
            share_a,
            share_b,
            broker,
        }
    }

    /// agencyd's configuration for `agency` of `home` (one of the two federations), taking
    /// part in "mekong" with share A pinned as `share_a` (public key hex, epoch; and the
    /// previous pin during a rotation).
    pub fn agencyd(
        &self,
        home: &Federation,
        agency: &str,
        root: &Path,
        share_a: (String, u32, Option<(String, u32)>),
    ) -> DaemonConfig {
        let mut c = agencyd_config(home, agency, root);
        let (public_key, key_epoch, previous) = share_a;
        c.joint = vec![JointSection {
            name: "mekong".into(),
            broker: self.broker.addr.to_string(),
            broker_ca: Some(ca_path(&self.cn)),
            tls_domain: Some("localhost".into()),
            share_a: JointShareSection {
                address: self.share_a.addr.to_string(),
                ca: Some(ca_path(&self.cn)),
                tls_domain: Some("localhost".into()),
                public_key,
                key_epoch,
                previous_public_key: previous.as_ref().map(|p| p.0.clone()),
                previous_key_epoch: previous.map_or(0, |p| p.1),
            },
            share_b: JointShareSection {
                address: self.share_b.addr.to_string(),
                ca: Some(ca_path(&self.la)),
                tls_domain: Some("localhost".into()),
                public_key: public_hex(&SEED_LA),
                key_epoch: 1,
                ..Default::default()
            },
        }];
        c
    }

    /// Waits until the joint broker's view of China's `agency`'s operation `id` satisfies
    /// `want`.
    pub async fn wait_operation(
        &self,
        agency: &str,
        id: &str,
        what: &str,
        want: impl Fn(&deconfliction_proto::v1::Operation) -> bool,
    ) {
        use deconfliction_proto::v1;
        let (cert, key) = self.cn.agency_pem(agency);
        let channel = crate::connect(self.broker.addr, &self.cn.ca_pem(), Some((&cert, &key)))
            .await
            .unwrap();
        let client = v1::broker_client::BrokerClient::new(channel);
        let want = &want;
        crate::eventually(std::time::Duration::from_secs(30), what, move || {
            let mut c = client.clone();
            let id = id.to_owned();
            async move {
                let op = c
                    .get_operation(v1::GetOperationRequest { operation_id: id })
                    .await
                    .ok()?
                    .into_inner();
                want(&op).then_some(())
            }
        })
        .await;
    }

    /// Share A pinned as at the start.
    pub fn first_pin() -> (String, u32, Option<(String, u32)>) {
        (public_hex(&SEED_CN), 1, None)
    }

    pub async fn shutdown(self) {
        self.broker.shutdown().await;
        self.share_a.shutdown().await;
        self.share_b.shutdown().await;
    }
}
