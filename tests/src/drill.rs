//! An exercise beside a live federation, as tests set it up: a live broker whose registry
//! holds two trainee bureaus and an admin, the controller's configuration (the admin's
//! certificate, the simulated bureau's), and agencyd configurations that join the drill.

use std::path::Path;

use agency_client::control::pb;
use agency_client::daemon::DaemonConfig;
use deconflict_drill::controller::{Controller, ControllerConfig, Started};
use deconflict_drill::scenario::Scenario;

use crate::{Federation, agencyd_config, enrol_roles};

pub const TRAINEES: [&str; 2] = ["gd-psb", "gx-psb"];
/// The simulated bureau: certified by the federation CA, never enrolled in the live registry.
pub const PARTY: &str = "sim-yn";
pub const ADMIN: &str = "admin";

/// A live federation ready to serve drills.
pub async fn federation() -> Federation {
    Federation::start_with(&["gd-psb", "gx-psb", PARTY, ADMIN], |c| {
        enrol_roles(
            c,
            &[("gd-psb", "agency"), ("gx-psb", "agency"), (ADMIN, "admin")],
        );
        // Long enough for a subscribed desk to receive the end before the drill stops.
        c.drills.end_grace_seconds = 1;
    })
    .await
}

/// The controller's configuration: the live broker, the admin's certificate, the simulated
/// bureau's certificate (under the federation's agency folders), a work folder in `root`.
pub fn controller_config(fed: &Federation, root: &Path) -> ControllerConfig {
    let admin = fed.agency_dir(ADMIN);
    ControllerConfig {
        broker: format!("https://127.0.0.1:{}", fed.addr().port()),
        server_name: Some("localhost".into()),
        ca: fed.dir.path().join("pki/ca.pem"),
        cert: admin.join("cert.pem"),
        key: admin.join("key.pem"),
        parties_dir: fed.dir.path().join("agencies"),
        work_dir: root.join("work"),
    }
}

/// A second agencyd of `agency` that takes part in the drill: its own folder under `root`,
/// the drill's port and key, `[drill] id`.
pub fn drill_agencyd_config(
    fed: &Federation,
    agency: &str,
    root: &Path,
    started: &Started,
) -> DaemonConfig {
    let mut c = agencyd_config(fed, agency, root);
    c.broker.address = started.address.clone();
    c.token_service.public_key = started.public_key_hex.clone();
    c.token_service.key_epoch = started.key_epoch;
    c.drill = Some(agency_client::daemon::config::DrillSection {
        id: started.drill_id.clone(),
    });
    c
}

/// A drill with one simulated bureau (Yunnan) and two trainees (Guangdong, Guangxi): Yunnan
/// registers the courier's phone (Guangdong is expected to do everything about it) and the
/// truck's plate (Guangxi is expected to see and acknowledge it).
pub const SCENARIO: &str = r#"
[drill]
id = "route-1"
name = "Mekong route"
duration_minutes = 600
lead_minutes = 1
observe_minutes = 500

[[party]]
id = "sim-yn"
name = "Yunnan PSB (simulated)"
card = { unit_name = "Yunnan PSB narcotics (exercise)", phone = "+86 871 0000 0000" }
reply = "Yunnan here: we plan to search on the 9th."

[[trainee]]
id = "gd-psb"
name = "Guangdong PSB"

[[trainee]]
id = "gx-psb"
name = "Guangxi PSB"

[[inject]]
at_minutes = 1
party = "sim-yn"
action = "register"
operation = "courier"
brief = "Yunnan registers an operation on the courier's phone"
expect = ["seen", "acknowledge", "contact", "disclose", "resolve"]
expect_from = ["gd-psb"]
window = { days = 5 }
selectors = [{ kind = "phone", text = "+86 138 0013 8000" }]

[[inject]]
at_minutes = 2
party = "sim-yn"
action = "register"
operation = "truck"
brief = "Yunnan registers an operation on the truck"
expect = ["seen", "acknowledge"]
expect_from = ["gx-psb"]
window = { days = 5 }
selectors = [{ kind = "plate", country = "CN", text = "云A12345" }]
"#;

/// A phone selector of China, as the control API takes it.
pub fn phone(text: &str) -> pb::Selector {
    pb::Selector {
        kind: Some(pb::selector::Kind::Phone(pb::PhoneSelector {
            text: text.into(),
            region: "CN".into(),
        })),
        ..Default::default()
    }
}

/// A Chinese plate selector, as the control API takes it.
pub fn plate(text: &str) -> pb::Selector {
    pb::Selector {
        kind: Some(pb::selector::Kind::Plate(pb::CountryTextSelector {
            country: "CN".into(),
            text: text.into(),
        })),
        ..Default::default()
    }
}

/// Starts [`SCENARIO`]'s drill under `id` (served for 10 hours), as the controller does.
pub async fn start_drill(
    fed: &Federation,
    root: &std::path::Path,
    id: &str,
) -> (Controller, Started, Scenario) {
    let scenario = Scenario::parse(SCENARIO).unwrap();
    let mut c = Controller::connect(controller_config(fed, root))
        .await
        .unwrap();
    let started = c.start(&scenario, Some(id), 60.0, 0).await.unwrap();
    (c, started, scenario)
}

/// Every drill the live broker lists, ended ones included (its admin asks).
pub async fn drills_listed(fed: &Federation) -> Vec<deconfliction_proto::v1::DrillStatus> {
    deconfliction_proto::v1::admin_client::AdminClient::new(fed.channel(ADMIN).await.unwrap())
        .list_drills(deconfliction_proto::v1::ListDrillsRequest {})
        .await
        .unwrap()
        .into_inner()
        .drills
}
