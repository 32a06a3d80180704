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
use super::records::{MatchRecord, MatchSide, MatchState, OpRecord, OpState, StoredToken};
use super::txn::Txn;
use super::{Ledger, keys, queue};
use crate::error::Result;
use crate::identity::AgencyId;
use crate::ledger::audit::AuditEvent;

/// A match about to be written: new, or an existing one that `new_tokens` join.
struct Change {
    match_id: Uuid,
    record: MatchRecord,
    created: bool,
    new_tokens: Vec<StoredToken>,
    /// Whether the sides hear of it (a re-derivation only is recorded silently).
    tells: bool,
}

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
        let mut touched = 0;
        for (other_id, shared) in self.shared_by_operation(txn, id, record, candidates, now)? {
            let Some(mut other) = txn.get_rec::<OpRecord>(&keys::op(&other_id))? else {
                // A posting without its operation cannot happen with atomic batches.
                tracing::warn!(operation = %other_id, "index entry without operation; skipped");
                continue;
            };
            let pair_key = keys::pair(id, &other_id);
            let change = match txn.get(&pair_key)? {
                Some(raw) => match grow(txn, &raw, record, &other, shared)? {
                    Some(change) => change,
                    None => continue,
                },
                None => {
                    let change = create(id, record, &other_id, &other, shared, now);
                    txn.put(pair_key, change.match_id.as_bytes().to_vec());
                    record.match_ids.push(*change.match_id.as_bytes());
                    other.match_ids.push(*change.match_id.as_bytes());
                    txn.put_rec(keys::op(&other_id), &other)?;
                    change
                }
            };
            if write_change(txn, change, (id, record), (&other_id, &other), now)? {
                touched += 1;
            }
        }
        Ok(touched)
    }

    /// On reopen: the tokens the match's two operations came to share while it was resolved
    /// (and so did not grow) join it now, with one growth alert to each side as usual, so that
    /// the match again says what overlaps. Returns whether it grew.
    pub(super) fn catch_up(&self, txn: &mut Txn<'_>, match_id: &Uuid, now: i64) -> Result<bool> {
        let Some(m) = txn.get_rec::<MatchRecord>(&keys::match_record(match_id))? else {
            return Ok(false);
        };
        let (a_id, b_id) = (Uuid::from_bytes(m.a.op), Uuid::from_bytes(m.b.op));
        let a = txn.get_rec::<OpRecord>(&keys::op(&a_id))?;
        let b = txn.get_rec::<OpRecord>(&keys::op(&b_id))?;
        let (Some(a), Some(b)) = (a, b) else {
            return Ok(false);
        };
        let both_open = a.state == OpState::Open && b.state == OpState::Open;
        if m.state != MatchState::Open || !both_open || !a.window.overlaps(&b.window) {
            return Ok(false);
        }
        let known: HashSet<StoredToken> = m.shared.iter().copied().collect();
        let theirs: HashSet<StoredToken> = b.tokens.iter().map(|t| t.stored).collect();
        let mut taken: HashSet<StoredToken> = HashSet::new();
        let new: Vec<StoredToken> = a
            .tokens
            .iter()
            .map(|t| t.stored)
            .filter(|s| theirs.contains(s) && !known.contains(s) && taken.insert(*s))
            .collect();
        if new.is_empty() {
            return Ok(false);
        }
        let fresh: HashSet<StoredToken> = new.iter().copied().collect();
        let tells = joins_selector(&a, &known, &fresh) || joins_selector(&b, &known, &fresh);
        let change = Change {
            match_id: *match_id,
            record: m,
            created: false,
            new_tokens: new,
            tells,
        };
        write_change(txn, change, (&a_id, &a), (&b_id, &b), now)
    }

    /// The other open operations that hold any of `candidates` with a window overlapping
    /// `record`'s, and which of the candidates each holds.
    fn shared_by_operation(
        &self,
        txn: &Txn<'_>,
        id: &Uuid,
        record: &OpRecord,
        candidates: &[StoredToken],
        now: i64,
    ) -> Result<BTreeMap<Uuid, Vec<StoredToken>>> {
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
        Ok(by_other)
    }
}

/// The existing match of a pair (`raw` is its id) grown by the tokens of `shared` it does not
/// hold yet; `None` when there is nothing to change (resolved, or nothing new).
fn grow(
    txn: &Txn<'_>,
    raw: &[u8],
    record: &OpRecord,
    other: &OpRecord,
    shared: Vec<StoredToken>,
) -> Result<Option<Change>> {
    let match_id = Uuid::from_slice(raw).map_err(|e| crate::store::StoreError::Corrupt {
        key: "pr/".into(),
        reason: e.to_string(),
    })?;
    let Some(m) = txn.get_rec::<MatchRecord>(&keys::match_record(&match_id))? else {
        return Ok(None);
    };
    if m.state == MatchState::Resolved {
        // Resolved matches stop growing (and alerting) until reopened.
        return Ok(None);
    }
    let known: HashSet<StoredToken> = m.shared.iter().copied().collect();
    let new: Vec<StoredToken> = shared.into_iter().filter(|s| !known.contains(s)).collect();
    if new.is_empty() {
        return Ok(None);
    }
    // More tokens of selectors the match already holds on both sides (their re-derivation
    // under a new key epoch) are nothing to tell.
    let fresh: HashSet<StoredToken> = new.iter().copied().collect();
    let tells = joins_selector(record, &known, &fresh) || joins_selector(other, &known, &fresh);
    Ok(Some(Change {
        match_id,
        record: m,
        created: false,
        new_tokens: new,
        tells,
    }))
}

/// A new match for the pair, its sides ordered by operation id so that either registration
/// order gives the same record.
fn create(
    id: &Uuid,
    record: &OpRecord,
    other_id: &Uuid,
    other: &OpRecord,
    shared: Vec<StoredToken>,
    now: i64,
) -> Change {
    let (a, b) = if id.as_bytes() <= other_id.as_bytes() {
        ((id, &record.agency), (other_id, &other.agency))
    } else {
        ((other_id, &other.agency), (id, &record.agency))
    };
    let side = |(op, agency): (&Uuid, &String)| MatchSide {
        op: *op.as_bytes(),
        agency: agency.clone(),
        card: None,
    };
    Change {
        match_id: Uuid::new_v4(),
        record: MatchRecord {
            a: side(a),
            b: side(b),
            shared: Vec::new(),
            created: now,
            updated: now,
            state: MatchState::Open,
            outcome: 0,
            note: String::new(),
            cards_exchanged: false,
        },
        created: true,
        new_tokens: shared,
        tells: true,
    }
}

/// Writes the match, then either records a silent re-derivation or alerts both sides (each
/// about its own operation only) and audits. Returns whether the sides were told.
fn write_change(
    txn: &mut Txn<'_>,
    change: Change,
    ours: (&Uuid, &OpRecord),
    theirs: (&Uuid, &OpRecord),
    now: i64,
) -> Result<bool> {
    let Change {
        match_id,
        record: mut m,
        created,
        new_tokens,
        tells,
    } = change;
    m.shared.extend(new_tokens.iter().copied());
    if !tells {
        txn.put_rec(keys::match_record(&match_id), &m)?;
        txn.audit(
            AuditEvent::new("broker", "match_rederived")
                .id(match_id)
                .count("shared_tokens", m.shared.len() as u64),
        );
        return Ok(false);
    }
    m.updated = now;
    txn.put_rec(keys::match_record(&match_id), &m)?;
    let new: HashSet<StoredToken> = new_tokens.into_iter().collect();
    let all: HashSet<StoredToken> = m.shared.iter().copied().collect();
    for (side_id, side) in [ours, theirs] {
        let agency =
            AgencyId::parse(&side.agency).map_err(|e| crate::store::StoreError::Corrupt {
                key: "op/".into(),
                reason: e.to_string(),
            })?;
        let alert = match_alert(&match_id, side_id, side, &all, &new, created);
        queue::enqueue(txn, &agency, now, v1::alert::Event::Match(alert))?;
    }
    let action = if created {
        "match_created"
    } else {
        "match_grown"
    };
    txn.audit(
        AuditEvent::new("broker", action)
            .id(match_id)
            .id(ours.0)
            .id(theirs.0)
            .count("shared_tokens", m.shared.len() as u64),
    );
    if created {
        txn.notifications.matches_created += 1;
    } else {
        txn.notifications.matches_grown += 1;
    }
    Ok(true)
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
