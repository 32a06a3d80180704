//! A stand-alone token service honours the admin's suspensions and role changes made at the
//! broker: it mirrors the broker's registry (with a certificate in the token-service role),
//! and stops evaluating when it cannot tell any more who is suspended.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use deconflict_broker::config::BrokerConfig;
use deconflict_broker::server::{Mode, RunningBroker, start};
use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;
use deconfliction_tests::*;
use token_spec::token::{PinnedKey, TOKEN_SERVICE_INFO, TokenDeriver, derive_keypair_from_seed};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);
const FORM: &[u8] = b"dcf1\0phone\0+8613800138000";

/// A stand-alone token service beside `fed`'s broker, mirroring its registry every second.
async fn token_service(fed: &Federation, root: &Path) -> (RunningBroker, BrokerConfig, PinnedKey) {
    let mut config = fed.service_config(root, "token-service");
    let client = fed.agency_dir("ts-mirror");
    config.token_service.registry_broker = Some(format!("https://{}", fed.addr()));
    config.token_service.registry_cert = Some(client.join("cert.pem"));
    config.token_service.registry_key = Some(client.join("key.pem"));
    config.token_service.registry_refresh_seconds = 1;
    config.token_service.registry_stale_seconds = 4;
    let seed = [7u8; 32];
    write_token_seed(&config, &seed);
    let service = start(&config, Mode::TokenServiceOnly).await.unwrap();
    let own = derive_keypair_from_seed(&seed, TOKEN_SERVICE_INFO).unwrap();
    let pin = PinnedKey::new(own.public_key(), config.token_service.key_epoch).unwrap();
    (service, config, pin)
}

/// The stand-alone token service as agencies reach it (without borrowing the federation,
/// whose broker the test stops and starts).
struct Probe {
    addr: std::net::SocketAddr,
    pin: PinnedKey,
    ca: String,
    agencies: std::path::PathBuf,
}

impl Probe {
    /// One evaluation for `agency`: Ok, or the refusal's code and message.
    async fn evaluate(&self, agency: &str) -> Result<(), (Code, String)> {
        let dir = self.agencies.join(agency);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let (cert, key) = (read("cert.pem"), read("key.pem"));
        let channel = connect(self.addr, &self.ca, Some((&cert, &key)))
            .await
            .unwrap();
        let mut d = TokenDeriver::from_channel(channel, self.pin).with_call_timeout(WAIT);
        match d.token(FORM).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.grpc_code().unwrap_or_else(|| panic!("{e:?}"));
                Err((code, e.to_string()))
            }
        }
    }

    /// Waits until an evaluation for `agency` gives what `want` accepts.
    async fn until(
        &self,
        agency: &str,
        what: &str,
        want: impl Fn(&Result<(), (Code, String)>) -> bool,
    ) {
        let want = &want;
        eventually(WAIT, what, move || async move {
            want(&self.evaluate(agency).await).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspensions_and_role_changes_at_the_broker_reach_the_token_service() {
    let mut fed =
        Federation::start_with(&["yn-psb", "gd-psb", "national-bureau", "ts-mirror"], |c| {
            enrol_roles(
                c,
                &[("national-bureau", "admin"), ("ts-mirror", "token-service")],
            )
        })
        .await;
    let root = fed.dir.path().join("token-service");
    let (service, _config, pin) = token_service(&fed, &root).await;
    let probe = Probe {
        addr: service.addr,
        pin,
        ca: fed.ca_pem(),
        agencies: fed.dir.path().join("agencies"),
    };
    probe.until("yn-psb", "Yunnan served", Result::is_ok).await;

    // The token-service role reads the registry and does nothing else at the broker.
    let mut as_ts = fed.client("ts-mirror").await;
    let e = as_ts
        .register_operation(registration(vec![entry(&token(), SelectorKind::Phone, 1)]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().contains("token service role"), "{e}");
    let mut admin_as_ts = AdminClient::new(fed.channel("ts-mirror").await.unwrap());
    let e = admin_as_ts
        .suspend_agency(v1::SuspendAgencyRequest {
            agency_id: "yn-psb".into(),
            reason: "not yours to do".into(),
            close_operations: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    // An agency may not read the registry.
    let e = AdminClient::new(fed.channel("yn-psb").await.unwrap())
        .list_agencies(v1::ListAgenciesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");

    // Suspended at the broker: refused at the token service too, with the reason.
    let mut admin = AdminClient::new(fed.channel("national-bureau").await.unwrap());
    admin
        .suspend_agency(v1::SuspendAgencyRequest {
            agency_id: "yn-psb".into(),
            reason: "certificate under review".into(),
            close_operations: false,
        })
        .await
        .unwrap();
    probe.until("yn-psb",
        "Yunnan refused",
        |r| matches!(r, Err((Code::PermissionDenied, m)) if m.contains("certificate under review")),
    )
    .await;
    assert!(probe.evaluate("gd-psb").await.is_ok());
    admin
        .reinstate_agency(v1::ReinstateAgencyRequest {
            agency_id: "yn-psb".into(),
        })
        .await
        .unwrap();
    probe
        .until("yn-psb", "Yunnan served again", Result::is_ok)
        .await;

    // A role change: an agency made watch centre gets no more tokens.
    admin
        .enrol_agency(v1::EnrolAgencyRequest {
            agency_id: "gd-psb".into(),
            role: v1::Role::WatchCentre as i32,
            display_name: "Guangdong watch".into(),
        })
        .await
        .unwrap();
    probe
        .until(
            "gd-psb",
            "Guangdong refused",
            |r| matches!(r, Err((Code::PermissionDenied, m)) if m.contains("watch centre")),
        )
        .await;

    // The broker gone: once the mirror is stale, nothing is evaluated (a suspension made
    // meanwhile could not be seen).
    fed.stop_broker().await;
    probe
        .until(
            "yn-psb",
            "stale registry refused",
            |r| matches!(r, Err((Code::Unavailable, m)) if m.contains("registry")),
        )
        .await;
    fed.start_broker().await;
    probe
        .until("yn-psb", "served after the broker is back", Result::is_ok)
        .await;
    service.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_without_its_certificate_is_a_configuration_error() {
    let fed = Federation::start(&["yn-psb"]).await;
    let mut config = fed.config.clone();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = fed.dir.path().join("ts-data");
    config.token_service.registry_broker = Some(format!("https://{}", fed.addr()));
    let e = start(&config, Mode::TokenServiceOnly).await.unwrap_err();
    assert!(e.to_string().contains("registry_cert"), "{e}");
    assert!(
        !config.server.data_dir.exists(),
        "a failed start leaves nothing"
    );
    // And a broker holds its registry itself.
    config.token_service.registry_cert = Some(fed.dir.path().join("none.pem"));
    config.token_service.registry_key = Some(fed.dir.path().join("none.key"));
    let e = start(&config, Mode::Broker).await.unwrap_err();
    assert!(e.to_string().contains("stand-alone token service"), "{e}");
}
