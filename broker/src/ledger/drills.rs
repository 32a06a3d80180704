//! The drills a live broker serves beside itself (see `crate::drills`): one record each in the
//! live store, so that a restart serves them again on the same port, and one audit record
//! for each step of their lives (started, halted, ended and purged). The drills' own data
//! never enters this store.

use serde::{Deserialize, Serialize};

use super::audit::AuditEvent;
use super::records::decode;
use super::{Ledger, Notifications, keys};
use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;

/// A drill as the live broker keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub id: String,
    pub name: String,
    pub starts: i64,
    pub ends: i64,
    /// The port it listens on (chosen at its first start when asked for 0).
    pub port: u16,
    /// Agencies enrolled in the drill only (the controller's simulated bureaus): id, name.
    pub simulated: Vec<(String, String)>,
    /// Why it was halted (None: running).
    pub halted: Option<String>,
    /// Set once it has ended and its data was purged; the record stays so that its id is
    /// never reused (an agencyd still configured for it must not join a new drill by mistake).
    pub purged: Option<Purge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purge {
    pub at: i64,
    pub records: u64,
}

impl Ledger {
    /// Every drill ever started here, ended ones included, by id.
    pub fn drills(&self) -> Result<Vec<DrillRecord>> {
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(keys::DRILL)? {
            out.push(decode::<DrillRecord>(&k, &v)?);
        }
        Ok(out)
    }

    pub fn drill(&self, id: &str) -> Result<Option<DrillRecord>> {
        let key = keys::drill(id);
        Ok(match self.store.get(&key)? {
            Some(bytes) => Some(decode(&key, &bytes)?),
            None => None,
        })
    }

    /// Records a new drill; an id used before (even by an ended drill) is refused.
    pub fn record_drill_started(
        &self,
        admin: &AgencyId,
        drill: &DrillRecord,
        now: i64,
    ) -> Result<Notifications> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let key = keys::drill(&drill.id);
        if txn.get(&key)?.is_some() {
            return Err(BrokerError::DrillExists(drill.id.clone()));
        }
        txn.put_rec(key, drill)?;
        txn.audit(
            AuditEvent::new(admin.as_str(), "drill_started")
                .id(&drill.id)
                .count(
                    "seconds",
                    drill.ends.saturating_sub(drill.starts).max(0) as u64,
                )
                .count("simulated", drill.simulated.len() as u64),
        );
        Ok(txn.commit(&self.hub, &self.audit, now)?)
    }

    /// Replaces a drill's record (its port once known, its halt, its purge) with an audit
    /// record naming what happened.
    pub fn record_drill_change(
        &self,
        actor: &str,
        drill: &DrillRecord,
        action: &'static str,
        now: i64,
    ) -> Result<Notifications> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        txn.put_rec(keys::drill(&drill.id), drill)?;
        let mut event = AuditEvent::new(actor, action).id(&drill.id);
        if let Some(purge) = drill.purged {
            event = event.count("records_purged", purge.records);
        }
        txn.audit(event);
        Ok(txn.commit(&self.hub, &self.audit, now)?)
    }
}
