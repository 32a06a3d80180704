//! Retention: closed and expired operations, resolved matches (with their contact cards) and
//! unread alerts (which carry relay messages) are purged after configurable periods. The audit
//! log is kept: it holds only ids and counts.

use deconfliction_proto::v1;
use prost::Message;
use uuid::Uuid;

use super::op_index::IndexChange;
use super::records::{MatchRecord, MatchState, OpRecord, OpState, QueueState, decode};
use super::txn::Txn;
use super::{Ledger, Notifications, keys, queue};
use crate::error::Result;
use crate::identity::AgencyId;
use crate::ledger::audit::AuditEvent;

/// Ages (in seconds) after which things are purged; `None` keeps them forever.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    pub ended_operations: Option<i64>,
    pub resolved_matches: Option<i64>,
    pub alerts: Option<i64>,
}

/// How much one retention pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub operations: u64,
    pub matches: u64,
    pub alerts: u64,
}

impl Ledger {
    pub fn purge(&self, retention: &Retention, now: i64) -> Result<(Purged, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let mut purged = Purged::default();
        if let Some(age) = retention.ended_operations {
            purged.operations = self.purge_ended_operations(&mut txn, age, now)?;
        }
        if let Some(age) = retention.resolved_matches {
            purged.matches = self.purge_resolved_matches(&mut txn, age, now)?;
        }
        if let Some(age) = retention.alerts {
            purged.alerts = self.purge_unread_alerts(&mut txn, age, now)?;
        }
        if purged != Purged::default() {
            txn.audit(
                AuditEvent::new("broker", "retention_purge")
                    .count("operations", purged.operations)
                    .count("matches", purged.matches)
                    .count("alerts", purged.alerts),
            );
        }
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((purged, notes))
    }

    /// Closed and expired operations ended more than `age` ago.
    fn purge_ended_operations(&self, txn: &mut Txn<'_>, age: i64, now: i64) -> Result<u64> {
        let mut n = 0;
        // Only what is due is read: the index knows when each operation ended.
        let due = self
            .indexes
            .ended_by(self.store.as_ref(), now.saturating_sub(age))?;
        for (ended_at, id) in due {
            let key = keys::op(&id);
            let agency = match txn.get_rec::<OpRecord>(&key)? {
                Some(op) if op.state == OpState::Open || now - op.updated < age => continue,
                Some(op) => {
                    txn.delete(key);
                    n += 1;
                    op.agency
                }
                // Gone already: only the index entry is left.
                None => String::new(),
            };
            txn.index(IndexChange::Purged {
                agency,
                id,
                ended_at,
            });
        }
        Ok(n)
    }

    /// Resolved matches (with their cards and progress) untouched for `age`.
    fn purge_resolved_matches(&self, txn: &mut Txn<'_>, age: i64, now: i64) -> Result<u64> {
        let mut n = 0;
        for (k, v) in self.store.scan_prefix(keys::MATCH)? {
            let m: MatchRecord = decode(&k, &v)?;
            if m.state != MatchState::Resolved || now - m.updated < age {
                continue;
            }
            txn.delete(k.clone());
            if let Some(id) = keys::match_id_of(&k) {
                txn.delete(keys::progress(&id));
                txn.delete(keys::coordination(&id));
            }
            txn.delete(keys::pair(
                &Uuid::from_bytes(m.a.op),
                &Uuid::from_bytes(m.b.op),
            ));
            n += 1;
        }
        Ok(n)
    }

    /// Alerts nobody acknowledged for `age`; each agency that lost some is told how many.
    fn purge_unread_alerts(&self, txn: &mut Txn<'_>, age: i64, now: i64) -> Result<u64> {
        let mut n = 0;
        for (k, v) in self.store.scan_prefix(keys::QUEUE)? {
            let mut q: QueueState = decode(&k, &v)?;
            let Some(agency) = k
                .get(keys::QUEUE.len() + 1..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| AgencyId::parse(s).ok())
            else {
                continue;
            };
            // Alerts are in time order: trim from the oldest until one is young enough.
            let start = keys::alert(&agency, q.acked.saturating_add(1));
            let end = keys::alert(&agency, u64::MAX);
            let mut trimmed_to = q.acked;
            let first = q.acked.saturating_add(1);
            // Earlier markers go silently: a marker about a marker would never end.
            let mut unread = 0;
            for (ak, av) in self.store.range(&start, &end, usize::MAX)? {
                let Ok(alert) = v1::Alert::decode(av.as_slice()) else {
                    break;
                };
                if now - alert.at_unix < age {
                    break;
                }
                txn.delete(ak);
                trimmed_to = alert.seq;
                n += 1;
                if !matches!(alert.event, Some(v1::alert::Event::AlertsPurged(_))) {
                    unread += 1;
                }
            }
            if trimmed_to > q.acked {
                q.acked = trimmed_to;
                txn.put_rec(k.clone(), &q)?;
            }
            if unread > 0 {
                // The agency is told, in the place it reads: a marker in its queue.
                let marker = v1::alert::Event::AlertsPurged(v1::AlertsPurgedAlert {
                    count: unread,
                    first_seq: first,
                    last_seq: trimmed_to,
                    older_than_seconds: age,
                });
                queue::enqueue(txn, &agency, now, marker)?;
            }
        }
        Ok(n)
    }
}
