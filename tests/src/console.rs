//! The watch centre's console as tests run it: a federation whose registry holds two
//! provincial bureaus (with display names in Han characters) and a watch centre, an officers
//! file with two watch officers, and the console itself on `127.0.0.1:0`.

use std::path::Path;

use deconflict_broker::config::AgencySection;
use deconflict_broker::console::config::{BrokerLink, ConsoleConfig, ConsoleSection};
use deconflict_broker::console::{RunningConsole, start};
use deconfliction_web::accounts::Accounts;

use crate::Federation;

pub const WATCH: &str = "watch-centre";
pub const BUREAUS: [(&str, &str); 2] = [
    ("gd-psb", "广东省公安厅"),
    ("gx-psb", "广西壮族自治区公安厅"),
];
/// Two watch officers: (sign-in name, display name, password).
pub const OFFICERS: [(&str, &str, &str); 2] = [
    ("liwei", "李伟", "night shift password 1"),
    ("wangfang", "王芳", "night shift password 2"),
];

pub async fn federation() -> Federation {
    Federation::start_with(&["gd-psb", "gx-psb", WATCH], |c| {
        c.agencies = BUREAUS
            .iter()
            .map(|(id, name)| AgencySection {
                id: (*id).into(),
                role: "agency".into(),
                display_name: (*name).into(),
            })
            .chain([AgencySection {
                id: WATCH.into(),
                role: "watch-centre".into(),
                display_name: "公安部指挥中心".into(),
            }])
            .collect();
    })
    .await
}

/// The console's configuration for `fed`, with its officers file in `root` (officers added).
pub fn console_config(fed: &Federation, root: &Path) -> ConsoleConfig {
    let officers = root.join("officers.toml");
    let accounts = Accounts::new(&officers);
    for (name, display, password) in OFFICERS {
        if accounts.officer(name).unwrap().is_none() {
            accounts.add(name, display, password).unwrap();
        }
    }
    let watch = fed.agency_dir(WATCH);
    ConsoleConfig {
        console: ConsoleSection {
            listen: "127.0.0.1:0".parse().unwrap(),
            officers,
            refresh_millis: 200,
            ..ConsoleSection::default()
        },
        broker: BrokerLink {
            address: format!("https://127.0.0.1:{}", fed.addr().port()),
            server_name: Some("localhost".into()),
            ca: fed.dir.path().join("pki/ca.pem"),
            cert: watch.join("cert.pem"),
            key: watch.join("key.pem"),
        },
    }
}

pub async fn start_console(fed: &Federation, root: &Path) -> RunningConsole {
    start(console_config(fed, root)).await.unwrap()
}
