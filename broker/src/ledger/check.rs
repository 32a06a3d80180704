//! Hit/no-hit checks. The answer is one bit per token; the owners of the operations a check
//! touched are told (symmetric notice deters fishing).

use std::collections::{BTreeMap, HashMap};

use deconfliction_proto::v1;
use uuid::Uuid;

use super::postings;
use super::records::{OpRecord, StoredToken, Window};
use super::txn::Txn;
use super::{Ledger, Notifications, keys, queue};
use crate::error::Result;
use crate::identity::AgencyId;
use crate::ledger::audit::AuditEvent;

#[derive(Debug)]
pub struct CheckOutcome {
    pub hits: Vec<bool>,
    /// Operations of other agencies that were touched and told.
    pub operations_notified: usize,
}

/// Checks that told nobody, per agency, since the last seal.
#[derive(Debug, Default)]
pub(super) struct CheckTallies {
    by_agency: HashMap<AgencyId, (u64, u64, u64)>,
}

/// Other agencies' operations a check hit, each with the checked tokens it holds.
type HitsByOperation = BTreeMap<Uuid, Vec<StoredToken>>;

impl Ledger {
    fn tally_check(&self, agency: &AgencyId, tokens: u64, hits: u64) {
        let mut t = self.check_tallies.lock().unwrap_or_else(|p| p.into_inner());
        let e = t.by_agency.entry(agency.clone()).or_default();
        e.0 += 1;
        e.1 += tokens;
        e.2 += hits;
    }

    /// Seals the tallied checks into the audit chain: one record per agency with the number
    /// of checks, tokens and hits since the last seal. Durable with the next flush.
    pub fn seal_check_tallies(&self, now: i64) -> Result<usize> {
        let tallies = {
            let mut t = self.check_tallies.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut t.by_agency)
        };
        if tallies.is_empty() {
            return Ok(0);
        }
        let mut events: Vec<AuditEvent> = tallies
            .into_iter()
            .map(|(agency, (checks, tokens, hits))| {
                AuditEvent::new(agency.as_str(), "checks")
                    .count("checks", checks)
                    .count("tokens", tokens)
                    .count("hits", hits)
            })
            .collect();
        events.sort_by(|a, b| a.actor.cmp(&b.actor));
        let n = events.len();
        self.audit_only(events, now)?;
        Ok(n)
    }

    pub fn check(
        &self,
        agency: &AgencyId,
        window: Window,
        tokens: &[StoredToken],
        now: i64,
    ) -> Result<(CheckOutcome, Notifications)> {
        let (hits, touched) = self.look_up(agency, &window, tokens, now)?;
        let hit_count = hits.iter().filter(|h| **h).count() as u64;
        if touched.is_empty() {
            // A check that told nobody still leaves a trace, summed per agency and sealed into
            // the audit chain once a second (see `seal_check_tallies`): a write per read would
            // make checks as costly as registrations.
            self.tally_check(agency, tokens.len() as u64, hit_count);
            return Ok((
                CheckOutcome {
                    hits,
                    operations_notified: 0,
                },
                Notifications::default(),
            ));
        }
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let notified = notify_owners(&mut txn, touched, now)?;
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

    /// Which tokens hit an open operation in the window (one flag per token, in order), and
    /// the other agencies' operations hit, with the tokens that hit each.
    fn look_up(
        &self,
        agency: &AgencyId,
        window: &Window,
        tokens: &[StoredToken],
        now: i64,
    ) -> Result<(Vec<bool>, HitsByOperation)> {
        let mut hits = Vec::with_capacity(tokens.len());
        let mut touched = HitsByOperation::new();
        let held = postings::read_each(self.store.as_ref(), &self.indexes.tokens, tokens)?;
        for (stored, held) in tokens.iter().zip(held) {
            let mut hit = false;
            for posting in held {
                if posting.window.end <= now || !posting.window.overlaps(window) {
                    continue;
                }
                let own = posting.agency == agency.as_str();
                if own && !self.policy.match_same_agency {
                    continue;
                }
                hit = true;
                if !own {
                    touched
                        .entry(Uuid::from_bytes(posting.op))
                        .or_default()
                        .push(*stored);
                }
            }
            hits.push(hit);
        }
        Ok((hits, touched))
    }
}

/// Queues a "checked" alert for the owner of each operation hit, naming only the owner's own
/// tokens. Returns how many owners were told.
fn notify_owners(txn: &mut Txn<'_>, touched: HitsByOperation, now: i64) -> Result<usize> {
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
        queue::enqueue(txn, &owner, now, event)?;
        notified += 1;
    }
    Ok(notified)
}
