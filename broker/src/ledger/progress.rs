//! What each side of a match has done about it, and when: its agencyd received an alert about
//! the match, an officer acknowledged one, it wrote to the other party, disclosed its card,
//! resolved the match. Times only, never content. The watch centre sees this beside each
//! match (who has not reacted yet), and an exercise's after-action report is built from it.
//!
//! Kept under its own key (`mp/` + match id) rather than in the match record, so that stores
//! written before it existed read unchanged: a match without one has seen nothing recorded.

use deconfliction_proto::v1;
use prost::Message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::audit::AuditEvent;
use super::records::MatchRecord;
use super::txn::Txn;
use super::{Ledger, Notifications, keys};
use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;

/// One side's times (unix seconds; 0: not yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideProgress {
    pub seen: i64,
    pub acknowledged: i64,
    pub first_message: i64,
    pub messages: u32,
    pub disclosed: i64,
    pub resolved: i64,
}

/// Both sides, in the match record's order (`a` holds the lower operation id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchProgress {
    pub a: SideProgress,
    pub b: SideProgress,
}

/// What happened, to be recorded on the side(s) it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Seen,
    Acknowledged,
    Message,
    Disclosed,
    Resolved,
    Reopened,
}

impl SideProgress {
    /// Records `step` at `now`; false when it changed nothing (a repeat).
    fn record(&mut self, step: Step, now: i64) -> bool {
        let first = |at: &mut i64| {
            let fresh = *at == 0;
            if fresh {
                *at = now;
            }
            fresh
        };
        match step {
            Step::Seen => first(&mut self.seen),
            Step::Acknowledged => first(&mut self.acknowledged),
            Step::Message => {
                first(&mut self.first_message);
                self.messages = self.messages.saturating_add(1);
                true
            }
            Step::Disclosed => first(&mut self.disclosed),
            Step::Resolved => {
                self.resolved = now;
                true
            }
            Step::Reopened => std::mem::take(&mut self.resolved) != 0,
        }
    }
}

/// Records `step` on the sides of `m` that `agency` holds (only the one holding `op` when
/// given: within one agency, the operation tells the sides apart). Reopening clears both.
pub(crate) fn record(
    txn: &mut Txn<'_>,
    id: &Uuid,
    m: &MatchRecord,
    agency: &str,
    op: Option<[u8; 16]>,
    step: Step,
    now: i64,
) -> Result<bool> {
    let key = keys::progress(id);
    let mut p: MatchProgress = txn.get_rec(&key)?.unwrap_or_default();
    let mut changed = false;
    for (side, progress) in [(&m.a, &mut p.a), (&m.b, &mut p.b)] {
        let holds = side.agency == agency && op.is_none_or(|op| op == side.op);
        if holds || step == Step::Reopened {
            changed |= progress.record(step, now);
        }
    }
    if changed {
        txn.put_rec(key, &p)?;
    }
    Ok(changed)
}

/// Alerts about matches among those an agency's daemon just acknowledged: each match is then
/// seen by that side.
pub(crate) fn record_seen(
    txn: &mut Txn<'_>,
    agency: &AgencyId,
    acked: &[Vec<u8>],
    now: i64,
) -> Result<()> {
    for bytes in acked {
        let Ok(alert) = v1::Alert::decode(bytes.as_slice()) else {
            continue;
        };
        let Some(v1::alert::Event::Match(m)) = alert.event else {
            continue;
        };
        let (Ok(id), Ok(op)) = (
            Uuid::parse_str(&m.match_id),
            Uuid::parse_str(&m.operation_id),
        ) else {
            continue;
        };
        // A match purged meanwhile has nothing left to record against.
        if let Some(record) = txn.get_rec::<MatchRecord>(&keys::match_record(&id))? {
            self::record(
                txn,
                &id,
                &record,
                agency.as_str(),
                Some(*op.as_bytes()),
                Step::Seen,
                now,
            )?;
        }
    }
    Ok(())
}

impl Ledger {
    /// An officer of `agency` acknowledged an alert about match `id`: recorded the first
    /// time, a no-op after. A match the agency is not a party to is not found.
    pub fn acknowledge_match(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        now: i64,
    ) -> Result<Notifications> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let m: MatchRecord = txn
            .get_rec(&keys::match_record(id))?
            .filter(|m: &MatchRecord| {
                m.a.agency == agency.as_str() || m.b.agency == agency.as_str()
            })
            .ok_or(BrokerError::NotParty(*id))?;
        if record(
            &mut txn,
            id,
            &m,
            agency.as_str(),
            None,
            Step::Acknowledged,
            now,
        )? {
            txn.audit(AuditEvent::new(agency.as_str(), "acknowledge_match").id(id));
        }
        Ok(txn.commit(&self.hub, &self.audit, now)?)
    }

    /// The progress recorded for match `id` (all zero when nothing was).
    pub fn match_progress(&self, id: &Uuid) -> Result<MatchProgress> {
        let key = keys::progress(id);
        Ok(match self.store.get(&key)? {
            Some(bytes) => super::records::decode(&key, &bytes)?,
            None => MatchProgress::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_times_stay_and_reopening_clears_resolution() {
        let mut s = SideProgress::default();
        assert!(s.record(Step::Seen, 10));
        assert!(!s.record(Step::Seen, 20));
        assert_eq!(s.seen, 10);
        assert!(s.record(Step::Message, 30));
        assert!(s.record(Step::Message, 40));
        assert_eq!((s.first_message, s.messages), (30, 2));
        assert!(s.record(Step::Resolved, 50));
        assert!(s.record(Step::Reopened, 60));
        assert_eq!(s.resolved, 0);
        assert!(!s.record(Step::Reopened, 70));
    }
}
