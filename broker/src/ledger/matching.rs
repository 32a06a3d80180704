//! Finding and recording matches: two open operations sharing a stored token with
//! overlapping windows. One match per pair of operations, growing as tokens join it.
//!
//! Tokens with the same `local_ref` are one selector of their owner. A match alerts when it is
//! created and when a selector new to it joins on either side; another token of a selector it
//! already holds on both sides (the same selector re-derived under a new token-service key
//! epoch) is recorded without an alert, so a key rotation does not wake every duty officer.

use std::collections::{BTreeMap, HashSet};

use deconfliction_proto::v1;
use uuid::Uuid;

use super::postings;
use super::records::{MatchRecord, MatchSide, MatchState, OpRecord, StoredToken};
use super::txn::Txn;
use super::{Ledger, keys, queue};
use crate::audit::AuditEvent;
use crate::error::Result;
use crate::identity::AgencyId;

impl Ledger {
    /// Matches `candidates` (stored tokens of `record`, operation `id`) against the index and
    /// creates or grows matches, queueing alerts for both sides. Returns how many matches
    /// were created or grew. The caller writes `record` afterwards.
    pub(super) fn match_tokens(
        &self,
        txn: &mut Txn<'_>,
        id: &Uuid,
        record: &mut OpRecord,
        candidates: &[StoredToken],
        now: i64,
    ) -> Result<u32> {
        let mut by_other: BTreeMap<Uuid, Vec<StoredToken>> = BTreeMap::new();
        for stored in candidates {
            for posting in postings::read_txn(txn, stored)? {
                let other = Uuid::from_bytes(posting.op);
                if other == *id {
                    continue;
                }
                if posting.window.end <= now || !posting.window.overlaps(&record.window) {
                    continue;
                }
                if posting.agency == record.agency && !self.policy.match_same_agency {
                    continue;
                }
                by_other.entry(other).or_default().push(*stored);
            }
        }
        let mut touched = 0;
        for (other_id, shared) in by_other {
            let Some(mut other) = txn.get_rec::<OpRecord>(&keys::op(&other_id))? else {
                // A posting without its operation cannot happen with atomic batches.
                tracing::warn!(operation = %other_id, "index entry without operation; skipped");
                continue;
            };
            let pair_key = keys::pair(id, &other_id);
            // `tells`: whether the sides hear of it (a re-derivation only is recorded silently).
            let (match_id, mut m, created, new_tokens, tells) = match txn.get(&pair_key)? {
                Some(raw) => {
                    let match_id =
                        Uuid::from_slice(&raw).map_err(|e| crate::store::StoreError::Corrupt {
                            key: "pr/".into(),
                            reason: e.to_string(),
                        })?;
                    let Some(m) = txn.get_rec::<MatchRecord>(&keys::match_record(&match_id))?
                    else {
                        continue;
                    };
                    if m.state == MatchState::Resolved {
                        // Resolved matches stop growing (and alerting) until reopened.
                        continue;
                    }
                    let known: HashSet<StoredToken> = m.shared.iter().copied().collect();
                    let new: Vec<StoredToken> =
                        shared.into_iter().filter(|s| !known.contains(s)).collect();
                    if new.is_empty() {
                        continue;
                    }
                    // More tokens of selectors the match already holds on both sides (their
                    // re-derivation under a new key epoch) are nothing to tell.
                    let fresh: HashSet<StoredToken> = new.iter().copied().collect();
                    let tells = joins_selector(record, &known, &fresh)
                        || joins_selector(&other, &known, &fresh);
                    (match_id, m, false, new, tells)
                }
                None => {
                    let match_id = Uuid::new_v4();
                    let (a, b) = if id.as_bytes() <= other_id.as_bytes() {
                        ((id, &record.agency), (&other_id, &other.agency))
                    } else {
                        ((&other_id, &other.agency), (id, &record.agency))
                    };
                    let m = MatchRecord {
                        a: MatchSide {
                            op: *a.0.as_bytes(),
                            agency: a.1.clone(),
                            card: None,
                        },
                        b: MatchSide {
                            op: *b.0.as_bytes(),
                            agency: b.1.clone(),
                            card: None,
                        },
                        shared: Vec::new(),
                        created: now,
                        updated: now,
                        state: MatchState::Open,
                        outcome: 0,
                        note: String::new(),
                        cards_exchanged: false,
                    };
                    txn.put(pair_key, match_id.as_bytes().to_vec());
                    record.match_ids.push(*match_id.as_bytes());
                    other.match_ids.push(*match_id.as_bytes());
                    txn.put_rec(keys::op(&other_id), &other)?;
                    (match_id, m, true, shared, true)
                }
            };
            m.shared.extend(new_tokens.iter().copied());
            if !tells {
                txn.put_rec(keys::match_record(&match_id), &m)?;
                txn.audit(
                    AuditEvent::new("broker", "match_rederived")
                        .id(match_id)
                        .count("shared_tokens", m.shared.len() as u64),
                );
                continue;
            }
            m.updated = now;
            txn.put_rec(keys::match_record(&match_id), &m)?;
            let new: HashSet<StoredToken> = new_tokens.into_iter().collect();
            let all: HashSet<StoredToken> = m.shared.iter().copied().collect();
            for (side_id, side) in [(id, &*record), (&other_id, &other)] {
                let agency = AgencyId::parse(&side.agency).map_err(|e| {
                    crate::store::StoreError::Corrupt {
                        key: "op/".into(),
                        reason: e.to_string(),
                    }
                })?;
                let alert = match_alert(&match_id, side_id, side, &all, &new, created);
                queue::enqueue(txn, &agency, now, v1::alert::Event::Match(alert))?;
            }
            txn.audit(
                AuditEvent::new(
                    "broker",
                    if created {
                        "match_created"
                    } else {
                        "match_grown"
                    },
                )
                .id(match_id)
                .id(id)
                .id(other_id)
                .count("shared_tokens", m.shared.len() as u64),
            );
            if created {
                txn.notifications.matches_created += 1;
            } else {
                txn.notifications.matches_grown += 1;
            }
            touched += 1;
        }
        Ok(touched)
    }
}

/// Whether the `new` shared tokens bring `side` a selector (`local_ref`) that the match did
/// not hold yet.
fn joins_selector(
    side: &OpRecord,
    known: &HashSet<StoredToken>,
    new: &HashSet<StoredToken>,
) -> bool {
    let held: HashSet<u64> = side
        .tokens
        .iter()
        .filter(|t| known.contains(&t.stored))
        .map(|t| t.local_ref)
        .collect();
    side.tokens
        .iter()
        .any(|t| new.contains(&t.stored) && !held.contains(&t.local_ref))
}

/// The alert for one side: only that side's own operation and tokens.
fn match_alert(
    match_id: &Uuid,
    op_id: &Uuid,
    op: &OpRecord,
    all: &HashSet<StoredToken>,
    new: &HashSet<StoredToken>,
    created: bool,
) -> v1::MatchAlert {
    let mut tokens = Vec::new();
    let mut new_tokens = 0;
    for t in &op.tokens {
        if all.contains(&t.stored) {
            tokens.push(v1::MatchedToken {
                kind: t.kind,
                local_ref: t.local_ref,
            });
            if new.contains(&t.stored) {
                new_tokens += 1;
            }
        }
    }
    v1::MatchAlert {
        match_id: match_id.to_string(),
        operation_id: op_id.to_string(),
        created,
        tokens,
        new_tokens,
    }
}
