//! Hit/no-hit checks. The answer is one bit per token; the owners of the operations a check
//! touched are told (symmetric notice deters fishing).

use std::collections::BTreeMap;

use deconfliction_proto::v1;
use uuid::Uuid;

use super::records::{OpRecord, Posting, StoredToken, Window, decode};
use super::txn::Txn;
use super::{Ledger, Notifications, keys, queue};
use crate::audit::AuditEvent;
use crate::error::Result;
use crate::identity::AgencyId;

#[derive(Debug)]
pub struct CheckOutcome {
    pub hits: Vec<bool>,
    /// Operations of other agencies that were touched and told.
    pub operations_notified: usize,
}

impl Ledger {
    pub fn check(
        &self,
        agency: &AgencyId,
        window: Window,
        tokens: &[StoredToken],
        now: i64,
    ) -> Result<(CheckOutcome, Notifications)> {
        let mut hits = Vec::with_capacity(tokens.len());
        let mut touched: BTreeMap<Uuid, Vec<StoredToken>> = BTreeMap::new();
        for stored in tokens {
            let mut hit = false;
            for (key, value) in self.store.scan_prefix(&keys::token_prefix(stored))? {
                let posting: Posting = decode(&key, &value)?;
                if posting.window.end <= now || !posting.window.overlaps(&window) {
                    continue;
                }
                let own = posting.agency == agency.as_str();
                if own && !self.policy.match_same_agency {
                    continue;
                }
                hit = true;
                if !own && let Some(op) = keys::posting_op(&key) {
                    touched.entry(op).or_default().push(*stored);
                }
            }
            hits.push(hit);
        }
        let hit_count = hits.iter().filter(|h| **h).count() as u64;
        if touched.is_empty() {
            // A check that told nobody still leaves a trace; it is durable with the next
            // group flush (the answer does not wait for it: nothing was changed).
            self.audit_only(
                vec![
                    AuditEvent::new(agency.as_str(), "check")
                        .count("tokens", tokens.len() as u64)
                        .count("hits", hit_count),
                ],
                now,
            )?;
            return Ok((
                CheckOutcome {
                    hits,
                    operations_notified: 0,
                },
                Notifications::default(),
            ));
        }
        let _guard = self.lock();
        let mut txn = Txn::new(self.store.as_ref());
        let mut notified = 0;
        for (op_id, stored) in touched {
            // The operation may have closed since the unlocked read: then nobody is told.
            let Some(op) = txn.get_rec::<OpRecord>(&keys::op(&op_id))? else {
                continue;
            };
            let Ok(owner) = AgencyId::parse(&op.agency) else {
                continue;
            };
            let tokens = op
                .tokens
                .iter()
                .filter(|t| stored.contains(&t.stored))
                .map(|t| v1::MatchedToken {
                    kind: t.kind,
                    local_ref: t.local_ref,
                })
                .collect();
            let event = v1::alert::Event::Checked(v1::CheckedAlert {
                operation_id: op_id.to_string(),
                tokens,
            });
            queue::enqueue(&mut txn, &owner, now, event)?;
            notified += 1;
        }
        txn.audit(
            AuditEvent::new(agency.as_str(), "check")
                .count("tokens", tokens.len() as u64)
                .count("hits", hit_count)
                .count("owners_notified", notified as u64),
        );
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((
            CheckOutcome {
                hits,
                operations_notified: notified,
            },
            notes,
        ))
    }
}
