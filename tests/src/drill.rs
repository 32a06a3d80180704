//! An exercise beside a live federation, as tests set it up: a live broker whose registry
//! holds two trainee bureaus and an admin, the controller's configuration (the admin's
//! certificate, the simulated bureau's), and agencyd configurations that join the drill.

use std::path::Path;

use agency_client::daemon::DaemonConfig;
use deconflict_drill::controller::{ControllerConfig, Started};

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
