//! A drill's configuration, derived from the live broker's: the same TLS files (agencies take
//! part with their normal certificates) and policy, and everything that makes tokens and
//! stored values differ from live ones made fresh in the drill's own folder: its token-service
//! seed, its pepper, its audit key and its store. Nothing of the live secrets is reused, so a
//! drill token cannot equal a live token of the same selector, by construction.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use deconfliction_proto::v1;

use crate::config::{
    AgencySection, BrokerConfig, DrillIdentity, SecretsSection, TokenServiceSection,
};
use crate::ledger::drills::DrillRecord;
use crate::ledger::records::AgencyEntry;

/// The drill's token key epoch. The key is new for every drill; the epoch only keeps a drill's
/// tokens apart in agencyd's cache from any other epoch it holds.
pub const DRILL_KEY_EPOCH: u32 = 1;

/// The folder of drill `id` (store, seed, pepper, audit key), removed when it ends.
pub fn drill_dir(live: &BrokerConfig, id: &str) -> PathBuf {
    live.drills.root(&live.server.data_dir).join(id)
}

pub fn seed_path(dir: &Path) -> PathBuf {
    dir.join("token-service.seed")
}

/// Who takes part: every agency of the live registry that is not suspended (with its role, so
/// that the live watch centre and admins keep theirs) and the drill's simulated bureaus.
pub fn participants(live: &[(String, AgencyEntry)], drill: &DrillRecord) -> Vec<AgencySection> {
    let role = |r: i32| match v1::Role::try_from(r) {
        Ok(v1::Role::WatchCentre) => "watch-centre",
        Ok(v1::Role::Admin) => "admin",
        Ok(v1::Role::TokenService) => "token-service",
        _ => "agency",
    };
    let mut out: Vec<AgencySection> = live
        .iter()
        .filter(|(_, e)| !e.suspended)
        .map(|(id, e)| AgencySection {
            id: id.clone(),
            role: role(e.role).into(),
            display_name: e.display_name.clone(),
        })
        .collect();
    for (id, name) in &drill.simulated {
        if !out.iter().any(|a| &a.id == id) {
            out.push(AgencySection {
                id: id.clone(),
                role: "agency".into(),
                display_name: name.clone(),
            });
        }
    }
    out
}

pub fn drill_config(
    live: &BrokerConfig,
    drill: &DrillRecord,
    agencies: Vec<AgencySection>,
) -> BrokerConfig {
    let dir = drill_dir(live, &drill.id);
    let mut c = live.clone();
    c.server.listen = SocketAddr::new(live.server.listen.ip(), drill.port);
    c.server.metrics_listen = None;
    c.server.health_listen = None;
    c.server.backup_root = None;
    c.server.data_dir = dir.join("data");
    // A drill's ledger is its own embedded store in its folder, whatever the live broker
    // uses: a drill must never write into the live database.
    c.store = crate::config::StoreSection {
        cache_mib: live.store.cache_mib,
        ..crate::config::StoreSection::default()
    };
    c.secrets = SecretsSection {
        pepper: dir.join("pepper"),
        pepper_rekeys: Vec::new(),
        audit_key: dir.join("audit-checkpoint.key"),
    };
    c.token_service = TokenServiceSection {
        enabled: true,
        seed: seed_path(&dir),
        key_epoch: DRILL_KEY_EPOCH,
        quota_per_minute: live.token_service.quota_per_minute,
        quota_per_day: live.token_service.quota_per_day,
        ..TokenServiceSection::default()
    };
    c.agencies = agencies;
    // Only the live registry's agencies and the simulated ones take part.
    c.policy.require_enrolment = true;
    c.joint_shares = Vec::new();
    c.drills.enabled = false;
    c.drill = Some(DrillIdentity {
        id: drill.id.clone(),
        name: drill.name.clone(),
        starts: drill.starts,
        ends: drill.ends,
    });
    c
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_shares_no_secret_and_no_folder_with_live() {
        let live = BrokerConfig::default();
        let drill = DrillRecord {
            id: "route-1".into(),
            name: "Route".into(),
            starts: 0,
            ends: 100,
            port: 0,
            simulated: vec![("sim-yn".into(), "Yunnan (simulated)".into())],
            halted: None,
            purged: None,
        };
        let c = drill_config(&live, &drill, participants(&[], &drill));
        assert_ne!(c.secrets.pepper, live.secrets.pepper);
        assert_ne!(c.secrets.audit_key, live.secrets.audit_key);
        assert_ne!(c.token_service.seed, live.token_service.seed);
        assert!(
            c.server
                .data_dir
                .starts_with(live.server.data_dir.join("drills/route-1"))
        );
        assert!(c.token_service.enabled && !c.drills.enabled);
        assert!(c.policy.require_enrolment);
        assert_eq!(c.agencies.len(), 1);
        assert_eq!(c.drill.unwrap().id, "route-1");
    }
}
