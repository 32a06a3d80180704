//! Register, amend, close, read and expire operations.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::op_index::IndexChange;
use super::postings;
use super::records::{OpRecord, OpState, Posting, StoredToken, TokenRec, Window};
use super::txn::Txn;
use super::{Ledger, Notifications, keys, owned_by};
use crate::error::{BrokerError, Result, invalid};
use crate::identity::AgencyId;
use crate::ledger::audit::AuditEvent;

/// A validated registration: tokens are already peppered.
#[derive(Debug, Clone)]
pub struct NewOperation {
    pub id: Uuid,
    pub window: Window,
    pub tokens: Vec<TokenRec>,
    pub case_reference: String,
    /// The digest this registration had under each earlier pepper generation, as the re-keys
    /// since then rewrote it (see [`crate::secrets::pepper::Pepper::lift`]): a repeat of a registration
    /// made before a re-key is still recognised as a repeat. Empty for a pepper never rotated.
    pub earlier_digests: Vec<[u8; 32]>,
}

impl NewOperation {
    fn digest(&self) -> [u8; 32] {
        registration_digest(&self.window, &self.tokens, &self.case_reference)
    }
}

/// Identifies the content of a registration independently of token order.
pub fn registration_digest(window: &Window, tokens: &[TokenRec], case_reference: &str) -> [u8; 32] {
    let mut tokens: Vec<&TokenRec> = tokens.iter().collect();
    tokens.sort_by_key(|a| a.stored);
    let mut h = Sha256::new();
    h.update(window.start.to_be_bytes());
    h.update(window.end.to_be_bytes());
    for t in tokens {
        h.update(t.stored);
        h.update(t.kind.to_be_bytes());
        h.update(t.local_ref.to_be_bytes());
    }
    h.update((case_reference.len() as u64).to_be_bytes());
    h.update(case_reference.as_bytes());
    h.finalize().into()
}

/// A validated amendment: tokens already peppered.
#[derive(Debug, Clone, Default)]
pub struct Amendment {
    pub add: Vec<TokenRec>,
    pub remove: Vec<StoredToken>,
    pub window: Option<Window>,
}

#[derive(Debug)]
pub struct Registered {
    pub record: OpRecord,
    pub created: bool,
    pub matches_touched: u32,
}

/// A Unix time as a person reads it in a refusal (`2026-12-05 08:00 UTC`).
fn date_text(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// One page of an agency's operations: each with its id.
pub type OperationPage = Vec<(Uuid, OpRecord)>;

impl Ledger {
    fn check_window(&self, window: &Window, now: i64) -> Result<()> {
        if window.end <= window.start {
            return Err(invalid(format!(
                "window ends ({}) before it starts ({}): end must be after start",
                date_text(window.end),
                date_text(window.start)
            )));
        }
        let length = window.end.saturating_sub(window.start);
        if length > self.policy.max_window_seconds {
            return Err(invalid(format!(
                "window is {} days long; the federation allows at most {} days",
                length / 86_400,
                self.policy.max_window_seconds / 86_400
            )));
        }
        if window.end <= now {
            return Err(invalid(format!(
                "window already ended ({} is in the past): nothing to deconflict",
                date_text(window.end)
            )));
        }
        Ok(())
    }

    fn check_token_count(&self, count: usize) -> Result<()> {
        if count == 0 {
            return Err(invalid(
                "an operation needs at least one token (close it instead of removing them all)",
            ));
        }
        if count > self.policy.max_tokens_per_operation {
            return Err(invalid(format!(
                "{count} tokens is more than the {} allowed per operation; split the operation",
                self.policy.max_tokens_per_operation
            )));
        }
        Ok(())
    }

    pub fn register(
        &self,
        agency: &AgencyId,
        new: NewOperation,
        now: i64,
    ) -> Result<(Registered, Notifications)> {
        self.check_token_count(new.tokens.len())?;
        let digest = new.digest();
        let _guard = self.lock()?;
        let mut txn = self.txn();
        // The record and every token's postings in one read (on a database: one round trip).
        txn.read_ahead(
            std::iter::once(keys::op(&new.id))
                .chain(new.tokens.iter().map(|t| keys::token(&t.stored)))
                .collect(),
        )?;
        if let Some(existing) = txn.get_rec::<OpRecord>(&keys::op(&new.id))? {
            if existing.agency != agency.as_str() {
                return Err(BrokerError::IdTaken(new.id));
            }
            let repeat = existing.registration_digest == digest
                || new.earlier_digests.contains(&existing.registration_digest);
            if !repeat {
                return Err(BrokerError::ChangedRegistration(new.id));
            }
            txn.audit(
                AuditEvent::new(agency.as_str(), "register_repeat")
                    .id(new.id)
                    .count("tokens", new.tokens.len() as u64),
            );
            let notes = txn.commit(&self.hub, &self.audit, now)?;
            let registered = Registered {
                record: existing,
                created: false,
                matches_touched: 0,
            };
            return Ok((registered, notes));
        }
        self.check_window(&new.window, now)?;
        let mut record = OpRecord {
            agency: agency.as_str().to_owned(),
            window: new.window,
            state: OpState::Open,
            case_reference: new.case_reference,
            created: now,
            updated: now,
            registration_digest: digest,
            tokens: new.tokens,
            match_ids: Vec::new(),
        };
        let all: Vec<StoredToken> = record.tokens.iter().map(|t| t.stored).collect();
        let touched = self.match_tokens(&mut txn, &new.id, &mut record, &all, now)?;
        for t in &record.tokens {
            let posting = Posting {
                op: *new.id.as_bytes(),
                agency: record.agency.clone(),
                window: record.window,
            };
            postings::upsert(&mut txn, &t.stored, posting)?;
        }
        txn.index(IndexChange::Registered {
            agency: record.agency.clone(),
            id: new.id,
            end: record.window.end,
        });
        txn.put_rec(keys::op(&new.id), &record)?;
        txn.audit(
            AuditEvent::new(agency.as_str(), "register")
                .id(new.id)
                .count("tokens", record.tokens.len() as u64)
                .count("matches", u64::from(touched)),
        );
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((
            Registered {
                record,
                created: true,
                matches_touched: touched,
            },
            notes,
        ))
    }

    fn own_open_op(&self, txn: &Txn<'_>, agency: &AgencyId, id: &Uuid) -> Result<OpRecord> {
        let record: OpRecord = txn
            .get_rec(&keys::op(id))?
            .ok_or(BrokerError::NoSuchOperation(*id))?;
        owned_by(&record.agency, agency, id)?;
        Ok(record)
    }

    pub fn amend(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        amendment: Amendment,
        now: i64,
    ) -> Result<(OpRecord, u32, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let mut record = self.own_open_op(&txn, agency, id)?;
        if record.state != OpState::Open {
            return Err(BrokerError::OperationEnded {
                id: *id,
                state: state_word(record.state),
            });
        }
        // Removing an absent token or adding a present one is a no-op, so a retried
        // amendment gives the same result.
        let remove: HashSet<StoredToken> = amendment.remove.into_iter().collect();
        let removed: Vec<StoredToken> = record
            .tokens
            .iter()
            .filter(|t| remove.contains(&t.stored))
            .map(|t| t.stored)
            .collect();
        record.tokens.retain(|t| !remove.contains(&t.stored));
        let mut present: HashSet<StoredToken> = record.tokens.iter().map(|t| t.stored).collect();
        let mut added = Vec::new();
        for t in amendment.add {
            if present.insert(t.stored) {
                added.push(t.stored);
                record.tokens.push(t);
            }
        }
        self.check_token_count(record.tokens.len())?;
        let window_moved = match amendment.window {
            Some(w) if w != record.window => {
                self.check_window(&w, now)?;
                txn.index(IndexChange::WindowMoved {
                    id: *id,
                    from: record.window.end,
                    to: w.end,
                });
                record.window = w;
                true
            }
            _ => false,
        };
        for stored in &removed {
            postings::remove(&mut txn, stored, id)?;
        }
        // A moved window can create matches on tokens the operation already had.
        let candidates: Vec<StoredToken> = if window_moved {
            record.tokens.iter().map(|t| t.stored).collect()
        } else {
            added.clone()
        };
        let touched = self.match_tokens(&mut txn, id, &mut record, &candidates, now)?;

        let added_count = added.len() as u64;
        let rewrite: Vec<StoredToken> = if window_moved { candidates } else { added };
        for stored in &rewrite {
            let posting = Posting {
                op: *id.as_bytes(),
                agency: record.agency.clone(),
                window: record.window,
            };
            postings::upsert(&mut txn, stored, posting)?;
        }
        record.updated = now;
        txn.put_rec(keys::op(id), &record)?;
        txn.audit(
            AuditEvent::new(agency.as_str(), "amend")
                .id(id)
                .count("added", added_count)
                .count("removed", removed.len() as u64)
                .count("window_moved", u64::from(window_moved))
                .count("matches", u64::from(touched)),
        );
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((record, touched, notes))
    }

    /// Closes an operation; closing a closed or expired one is a no-op, so retries are safe.
    pub fn close(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        now: i64,
    ) -> Result<(OpRecord, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let mut record = self.own_open_op(&txn, agency, id)?;
        if record.state == OpState::Open {
            end_operation(&mut txn, id, &mut record, OpState::Closed, now)?;
            txn.audit(AuditEvent::new(agency.as_str(), "close").id(id));
        }
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((record, notes))
    }

    pub fn get(&self, agency: &AgencyId, id: &Uuid) -> Result<OpRecord> {
        let txn = self.txn();
        self.own_open_op(&txn, agency, id)
    }

    /// One page of the agency's operations in id order, after `after` (exclusive), at most
    /// `limit`; and the id to continue after when there may be more.
    pub fn list(
        &self,
        agency: &AgencyId,
        include_ended: bool,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<(OperationPage, Option<Uuid>)> {
        let txn = self.txn();
        let limit = limit.max(1);
        let mut after = after;
        let mut out = Vec::new();
        loop {
            let ids =
                self.indexes
                    .agency_ops(self.store.as_ref(), agency.as_str(), after, limit)?;
            for id in &ids {
                if let Some(record) = txn.get_rec::<OpRecord>(&keys::op(id))?
                    && (include_ended || record.state == OpState::Open)
                {
                    out.push((*id, record));
                    if out.len() == limit {
                        // There may be more after this one.
                        return Ok((out, Some(*id)));
                    }
                }
            }
            match ids.last() {
                Some(last) if ids.len() == limit => after = Some(*last),
                _ => return Ok((out, None)),
            }
        }
    }

    /// Expires open operations whose window has ended, at most `limit` per call.
    pub fn sweep_expired(&self, now: i64, limit: usize) -> Result<(usize, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let due = self.indexes.due(self.store.as_ref(), now, limit)?;
        let mut count = 0;
        for (end, id) in due {
            match txn.get_rec::<OpRecord>(&keys::op(&id))? {
                Some(mut record) if record.state == OpState::Open && record.window.end <= now => {
                    end_operation(&mut txn, &id, &mut record, OpState::Expired, now)?;
                    txn.audit(AuditEvent::new("broker", "expire").id(id));
                    count += 1;
                }
                // Not open any more: only the schedule's entry is left to remove.
                _ => txn.index(IndexChange::Unscheduled { id, end }),
            }
        }
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((count, notes))
    }
}

/// Closes or expires: the tokens leave the index at once.
pub(super) fn end_operation(
    txn: &mut Txn<'_>,
    id: &Uuid,
    record: &mut OpRecord,
    state: OpState,
    now: i64,
) -> Result<()> {
    for t in &record.tokens {
        postings::remove(txn, &t.stored, id)?;
    }
    txn.index(IndexChange::Ended {
        id: *id,
        end: record.window.end,
        at: now,
    });
    record.state = state;
    record.updated = now;
    txn.put_rec(keys::op(id), record)?;
    Ok(())
}

pub(crate) fn state_word(state: OpState) -> &'static str {
    match state {
        OpState::Open => "open",
        OpState::Closed => "closed",
        OpState::Expired => "expired",
    }
}
