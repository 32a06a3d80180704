//! Duty desks as tests run them: an in-process agencyd per bureau with `[desk]` enabled on
//! `127.0.0.1:0` and one duty officer in its officers file.

use std::path::Path;

use agency_client::daemon::{Daemon, DaemonConfig, start};
use deconfliction_web::accounts::Accounts;

use crate::{Federation, agencyd_config};

/// Each bureau's duty officer: (agency, sign-in name, display name, password).
pub const DUTY: [(&str, &str, &str, &str); 2] = [
    ("gd-psb", "zhangsan", "张三", "duty desk password 1"),
    ("gx-psb", "lisi", "李四", "duty desk password 2"),
];

/// An agencyd configuration for `agency` with its duty desk on, its officer added.
pub fn desk_config(fed: &Federation, agency: &str, root: &Path) -> DaemonConfig {
    let mut c = agencyd_config(fed, agency, root);
    c.desk.enabled = true;
    c.desk.listen = "127.0.0.1:0".parse().unwrap();
    let accounts = Accounts::new(c.desk_officers_path());
    for (a, name, display, password) in DUTY {
        if a == agency && accounts.officer(name).unwrap().is_none() {
            accounts.add(name, display, password).unwrap();
        }
    }
    c
}

/// Starts `agency`'s agencyd with its desk; the daemon and the desk's base URL.
pub async fn start_desk(fed: &Federation, agency: &str, root: &Path) -> (Daemon, String) {
    let daemon = start(desk_config(fed, agency, root)).await.unwrap();
    let base = format!("http://{}", daemon.desk_addr().unwrap());
    (daemon, base)
}

/// The duty officer of `agency`: (name, password).
pub fn officer_of(agency: &str) -> (&'static str, &'static str) {
    DUTY.iter()
        .find(|(a, ..)| *a == agency)
        .map(|(_, n, _, p)| (*n, *p))
        .unwrap()
}
