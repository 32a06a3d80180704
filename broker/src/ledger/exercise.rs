//! The ledger of a drill (an exercise federation, see `crate::drills`): the drill's id is
//! written into its store when it is created, so that a drill's store is never served as a
//! live one nor a live store as a drill; a halt is recorded there and refuses everything new
//! from then on, and every participant is told through its alert queue.

use deconfliction_proto::v1;

use super::audit::AuditEvent;
use super::records::{AgencyEntry, decode};
use super::{Ledger, Notifications, keys, queue};
use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;
use crate::store::StoreError;

impl Ledger {
    /// Binds the store to what the process serves: `Some(id)` for a drill, `None` for the
    /// live federation. A fresh store takes the drill's id; a store of another drill, a drill
    /// store served as live or a live store served as a drill is refused.
    pub fn bind_drill(&self, drill: Option<&str>) -> Result<()> {
        let _guard = self.lock()?;
        let recorded = self.store.get(keys::DRILL_ID)?;
        let recorded = recorded.as_deref().map(String::from_utf8_lossy);
        match (recorded.as_deref(), drill) {
            (None, None) => Ok(()),
            (Some(have), Some(want)) if have == want => {
                self.load_halt()?;
                Ok(())
            }
            // The index rebuild at open has counted the operation records already.
            (None, Some(want)) if self.opened.indexes.operations == 0 => {
                let mut batch = crate::store::WriteBatch::default();
                batch.put(keys::DRILL_ID.to_vec(), want.as_bytes().to_vec());
                self.store.apply(batch)?;
                self.store.flush_blocking()?;
                Ok(())
            }
            (None, Some(want)) => Err(BrokerError::DrillStore(format!(
                "this store holds live data; drill {want} needs a store of its own"
            ))),
            (Some(have), None) => Err(BrokerError::DrillStore(format!(
                "this store is drill {have}'s; a live broker cannot serve it"
            ))),
            (Some(have), Some(want)) => Err(BrokerError::DrillStore(format!(
                "this store is drill {have}'s, not drill {want}'s"
            ))),
        }
    }

    fn load_halt(&self) -> Result<(), StoreError> {
        let reason = self
            .store
            .get(keys::DRILL_HALTED)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if let Ok(mut halted) = self.drill_halted.write() {
            *halted = reason;
        }
        Ok(())
    }

    /// Why this drill was halted (None: running, or not a drill).
    pub fn drill_halt_reason(&self) -> Option<String> {
        self.drill_halted.read().ok().and_then(|h| h.clone())
    }

    /// Refuses anything new once the drill was halted.
    pub fn refuse_if_halted(&self) -> Result<()> {
        match self.drill_halt_reason() {
            Some(reason) => Err(BrokerError::DrillHalted(reason)),
            None => Ok(()),
        }
    }

    /// Halts the drill: recorded, and a halt alert queued for every agency of its registry.
    /// Halting again keeps the first reason and tells nobody twice.
    pub fn halt_drill(
        &self,
        actor: &str,
        drill_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<Notifications> {
        let _guard = self.lock()?;
        if self.store.get(keys::DRILL_HALTED)?.is_some() {
            return Ok(Notifications::default());
        }
        let mut txn = self.txn();
        txn.put(keys::DRILL_HALTED.to_vec(), reason.as_bytes().to_vec());
        let told = self.tell_participants(&mut txn, drill_id, true, reason, now)?;
        txn.audit(
            AuditEvent::new(actor, "drill_halted")
                .id(drill_id)
                .count("told", told),
        );
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        if let Ok(mut halted) = self.drill_halted.write() {
            *halted = Some(reason.to_owned());
        }
        Ok(notes)
    }

    /// Tells every participant the drill has ended (just before its store is purged).
    pub fn announce_drill_end(
        &self,
        actor: &str,
        drill_id: &str,
        now: i64,
    ) -> Result<Notifications> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let told = self.tell_participants(&mut txn, drill_id, false, "", now)?;
        txn.audit(
            AuditEvent::new(actor, "drill_ended")
                .id(drill_id)
                .count("told", told),
        );
        Ok(txn.commit(&self.hub, &self.audit, now)?)
    }

    fn tell_participants(
        &self,
        txn: &mut super::txn::Txn<'_>,
        drill_id: &str,
        halted: bool,
        reason: &str,
        now: i64,
    ) -> Result<u64> {
        let mut told = 0;
        for (k, v) in self.store.scan_prefix(keys::REGISTRY)? {
            let entry: AgencyEntry = decode(&k, &v)?;
            if entry.role != v1::Role::Agency as i32 {
                continue;
            }
            let Some(agency) = k
                .get(keys::REGISTRY.len()..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| AgencyId::parse(s).ok())
            else {
                continue;
            };
            let event = v1::alert::Event::Drill(v1::DrillAlert {
                drill_id: drill_id.to_owned(),
                halted,
                ended: !halted,
                reason: reason.to_owned(),
            });
            queue::enqueue(txn, &agency, now, event)?;
            told += 1;
        }
        Ok(told)
    }
}
