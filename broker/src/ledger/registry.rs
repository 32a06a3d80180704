//! The agency registry (roles, suspension) and the watch centre's federation-wide view.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::coordination::Coordination;
use super::operations::end_operation;
use super::records::{AgencyEntry, MatchRecord, MatchState, OpRecord, OpState, QueueState, decode};
use super::views::{AgencyCounts, MatchSummary, Statistics};
use super::{Ledger, Notifications, keys};
use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;
use crate::ledger::audit::AuditEvent;

fn slot<'a>(per: &'a mut BTreeMap<String, AgencyCounts>, agency: &str) -> &'a mut AgencyCounts {
    per.entry(agency.to_owned())
        .or_insert_with(|| AgencyCounts {
            agency: agency.to_owned(),
            ..Default::default()
        })
}

/// What the watch centre may filter matches by.
#[derive(Debug, Clone, Default)]
pub struct MatchFilter {
    pub include_resolved: bool,
    pub unresolved_for_secs: i64,
    pub agency: Option<String>,
}

impl Ledger {
    pub fn agency_entry(&self, agency: &AgencyId) -> Result<Option<AgencyEntry>> {
        if self.store.shared() {
            // Another replica may have suspended or revoked the agency a moment ago: every
            // call reads the entry (one keyed read), so that takes effect everywhere at once.
            return self.stored_entry(agency);
        }
        if let Ok(cache) = self.registry_cache.read()
            && let Some(hit) = cache.get(agency)
        {
            return Ok(hit.clone());
        }
        let entry = self.stored_entry(agency)?;
        if let Ok(mut cache) = self.registry_cache.write() {
            // Never overwrite: a registry change that raced this read has already put the
            // newer entry there. Bounded by the number of certified agencies that ever called.
            return Ok(cache.entry(agency.clone()).or_insert(entry).clone());
        }
        Ok(entry)
    }

    fn stored_entry(&self, agency: &AgencyId) -> Result<Option<AgencyEntry>> {
        let key = keys::registry(agency);
        Ok(match self.store.get(&key)? {
            Some(bytes) => Some(decode(&key, &bytes)?),
            None => None,
        })
    }

    /// Called under the writer lock after a registry change was applied.
    fn cache_entry(&self, agency: &AgencyId, entry: &AgencyEntry) {
        if let Ok(mut cache) = self.registry_cache.write() {
            cache.insert(agency.clone(), Some(entry.clone()));
        }
    }

    /// Adds the configured agencies that the registry does not know yet; entries changed by
    /// an admin since are left alone.
    pub fn seed_registry(&self, entries: &[(AgencyId, i32, String)], now: i64) -> Result<usize> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let mut added = Vec::new();
        for (agency, role, name) in entries {
            let key = keys::registry(agency);
            if txn.get(&key)?.is_none() {
                let entry = AgencyEntry {
                    role: *role,
                    display_name: name.clone(),
                    suspended: false,
                    suspension_reason: String::new(),
                    updated: now,
                };
                txn.put_rec(key, &entry)?;
                added.push((agency.clone(), entry));
                txn.audit(
                    AuditEvent::new("broker", "enrol")
                        .id(agency)
                        .count("role", u64::try_from(*role).unwrap_or(0)),
                );
            }
        }
        let _ = txn.commit(&self.hub, &self.audit, now)?;
        for (agency, entry) in &added {
            self.cache_entry(agency, entry);
        }
        Ok(added.len())
    }

    /// Makes the registry say what the broker's says, for a stand-alone token service that
    /// mirrors it: entries are added or replaced, never removed (the broker removes none).
    /// Returns how many entries changed.
    pub fn mirror_registry(&self, entries: &[(AgencyId, AgencyEntry)], now: i64) -> Result<usize> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let mut changed = Vec::new();
        for (agency, entry) in entries {
            let key = keys::registry(agency);
            if txn.get_rec::<AgencyEntry>(&key)?.as_ref() != Some(entry) {
                txn.put_rec(key, entry)?;
                changed.push((agency, entry));
            }
        }
        if changed.is_empty() {
            // The usual refresh: nothing to write, not even an empty batch.
            return Ok(0);
        }
        txn.audit(
            AuditEvent::new("broker", "registry_mirror")
                .count("changed", changed.len() as u64)
                .count(
                    "suspended",
                    changed.iter().filter(|(_, e)| e.suspended).count() as u64,
                ),
        );
        let _ = txn.commit(&self.hub, &self.audit, now)?;
        for (agency, entry) in &changed {
            self.cache_entry(agency, entry);
        }
        Ok(changed.len())
    }

    /// Enters an admitted agency the registry does not know yet (enrolment not required) as an
    /// agency, so that the admin's levers (suspension) reach everyone who can call.
    pub fn enrol_on_first_contact(&self, agency: &AgencyId, now: i64) -> Result<()> {
        let role = deconfliction_proto::v1::Role::Agency as i32;
        self.seed_registry(&[(agency.clone(), role, String::new())], now)?;
        Ok(())
    }

    pub fn enrol(
        &self,
        admin: &AgencyId,
        agency: &AgencyId,
        role: i32,
        display_name: &str,
        now: i64,
    ) -> Result<(AgencyEntry, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let key = keys::registry(agency);
        let previous: Option<AgencyEntry> = txn.get_rec(&key)?;
        let entry = AgencyEntry {
            role,
            display_name: display_name.to_owned(),
            suspended: previous.as_ref().is_some_and(|p| p.suspended),
            suspension_reason: previous.map(|p| p.suspension_reason).unwrap_or_default(),
            updated: now,
        };
        txn.put_rec(key, &entry)?;
        txn.audit(
            AuditEvent::new(admin.as_str(), "enrol")
                .id(agency)
                .count("role", u64::try_from(role).unwrap_or(0)),
        );
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        self.cache_entry(agency, &entry);
        Ok((entry, notes))
    }

    /// Suspends or reinstates an agency; a suspension can close its open operations.
    pub fn set_suspended(
        &self,
        admin: &AgencyId,
        agency: &AgencyId,
        suspend: bool,
        reason: &str,
        close_operations: bool,
        now: i64,
    ) -> Result<(AgencyEntry, usize, Notifications)> {
        if admin == agency && suspend {
            return Err(BrokerError::SelfSuspension);
        }
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let key = keys::registry(agency);
        let mut entry: AgencyEntry = txn
            .get_rec(&key)?
            .ok_or_else(|| BrokerError::NotEnrolled(agency.clone()))?;
        entry.suspended = suspend;
        entry.suspension_reason = if suspend {
            reason.to_owned()
        } else {
            String::new()
        };
        entry.updated = now;
        txn.put_rec(key, &entry)?;
        let mut closed = 0;
        if suspend && close_operations {
            let ids =
                self.indexes
                    .agency_ops(self.store.as_ref(), agency.as_str(), None, usize::MAX)?;
            for id in ids {
                if let Some(mut op) = txn.get_rec::<OpRecord>(&keys::op(&id))?
                    && op.state == OpState::Open
                {
                    end_operation(&mut txn, &id, &mut op, OpState::Closed, now)?;
                    closed += 1;
                }
            }
        }
        let action = if suspend { "suspend" } else { "reinstate" };
        txn.audit(
            AuditEvent::new(admin.as_str(), action)
                .id(agency)
                .count("operations_closed", closed as u64),
        );
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        self.cache_entry(agency, &entry);
        Ok((entry, closed, notes))
    }

    pub fn list_agencies(&self) -> Result<Vec<(String, AgencyEntry)>> {
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(keys::REGISTRY)? {
            let id = String::from_utf8_lossy(&k[keys::REGISTRY.len()..]).into_owned();
            out.push((id, decode(&k, &v)?));
        }
        Ok(out)
    }

    /// Federation-wide counts, per agency. A full scan: for the watch centre, not hot paths.
    pub fn statistics(&self) -> Result<Statistics> {
        let mut per: BTreeMap<String, AgencyCounts> = BTreeMap::new();
        let mut stats = Statistics::default();
        crate::store::for_each_prefixed(self.store.as_ref(), keys::OP, |k, v| {
            let op: OpRecord = decode(k, v)?;
            if op.state == OpState::Open {
                stats.open_operations += 1;
                slot(&mut per, &op.agency).open_operations += 1;
            }
            Ok::<_, crate::store::StoreError>(())
        })?;
        for (k, v) in self.store.scan_prefix(keys::MATCH)? {
            let m: MatchRecord = decode(&k, &v)?;
            match m.state {
                MatchState::Open => {
                    stats.open_matches += 1;
                    let agencies: BTreeSet<&str> =
                        [m.a.agency.as_str(), m.b.agency.as_str()].into();
                    for a in agencies {
                        slot(&mut per, a).open_matches += 1;
                    }
                }
                MatchState::Resolved => stats.resolved_matches += 1,
            }
        }
        for (k, v) in self.store.scan_prefix(keys::QUEUE)? {
            let q: QueueState = decode(&k, &v)?;
            // Key: prefix, one length byte, the agency id.
            let a = String::from_utf8_lossy(k.get(keys::QUEUE.len() + 1..).unwrap_or_default())
                .into_owned();
            slot(&mut per, &a).queued_alerts = q.last_seq() - q.acked;
        }
        stats.agencies = per.into_values().collect();
        Ok(stats)
    }

    /// Match metadata for the watch centre: ids, times, kinds, state and agencies.
    pub fn list_matches(&self, filter: &MatchFilter, now: i64) -> Result<Vec<MatchSummary>> {
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(keys::MATCH)? {
            let m: MatchRecord = decode(&k, &v)?;
            if m.state == MatchState::Resolved && !filter.include_resolved {
                continue;
            }
            if filter.unresolved_for_secs > 0
                && (m.state != MatchState::Open || now - m.created < filter.unresolved_for_secs)
            {
                continue;
            }
            if let Some(a) = &filter.agency
                && m.a.agency != *a
                && m.b.agency != *a
            {
                continue;
            }
            let Some(id) = keys::match_id_of(&k) else {
                continue;
            };
            out.push(self.match_summary(&id, &m, None)?);
        }
        out.sort_by_key(|m| m.created);
        Ok(out)
    }

    /// One match as the watch centre sees it: the kinds shared, where the two windows
    /// overlap, both sides' progress and the watch centre's coordination (read unless given).
    pub(crate) fn match_summary(
        &self,
        id: &Uuid,
        m: &MatchRecord,
        coordination: Option<Coordination>,
    ) -> Result<MatchSummary> {
        let read_op = |op: [u8; 16]| -> Result<Option<OpRecord>> {
            let key = keys::op(&Uuid::from_bytes(op));
            Ok(self
                .store
                .get(&key)?
                .map(|b| decode(&key, &b))
                .transpose()?)
        };
        let (a, b) = (read_op(m.a.op)?, read_op(m.b.op)?);
        let kinds: BTreeSet<i32> = a
            .as_ref()
            .map(|op| {
                op.tokens
                    .iter()
                    .filter(|t| m.shared.contains(&t.stored))
                    .map(|t| t.kind)
                    .collect()
            })
            .unwrap_or_default();
        let overlap = match (&a, &b) {
            (Some(a), Some(b)) => {
                let (start, end) = (
                    a.window.start.max(b.window.start),
                    a.window.end.min(b.window.end),
                );
                Some((start, end.max(start)))
            }
            _ => None,
        };
        let earliest_start = [&a, &b]
            .into_iter()
            .flatten()
            .map(|op| op.window.start)
            .min()
            .unwrap_or(0);
        let coordination = match coordination {
            Some(c) => c,
            None => self.coordination(id)?,
        };
        Ok(MatchSummary {
            match_id: *id,
            created: m.created,
            updated: m.updated,
            state: m.state,
            outcome: m.outcome,
            kinds: kinds.into_iter().collect(),
            agencies: [m.a.agency.clone(), m.b.agency.clone()],
            shared_tokens: m.shared.len() as u32,
            progress: self.match_progress(id)?,
            overlap,
            earliest_start,
            coordination,
        })
    }

    /// Every agency in the registry with its counts, for the watch centre's agency board.
    /// A full scan, like [`Ledger::statistics`].
    pub fn agency_board(&self) -> Result<Vec<BoardRow>> {
        let stats = self.statistics()?;
        let mut rows: BTreeMap<String, BoardRow> = BTreeMap::new();
        for (id, entry) in self.list_agencies()? {
            rows.insert(
                id.clone(),
                BoardRow {
                    agency: id,
                    entry: Some(entry),
                    ..BoardRow::default()
                },
            );
        }
        for counts in stats.agencies {
            let r = rows
                .entry(counts.agency.clone())
                .or_insert_with(|| BoardRow {
                    agency: counts.agency.clone(),
                    ..BoardRow::default()
                });
            r.counts = counts;
        }
        // Only the open matches' progress is needed: no operation is read.
        for (k, v) in self.store.scan_prefix(keys::MATCH)? {
            let m: MatchRecord = decode(&k, &v)?;
            let Some(id) = keys::match_id_of(&k) else {
                continue;
            };
            if m.state != MatchState::Open {
                continue;
            }
            let progress = self.match_progress(&id)?;
            for (agency, side) in [(&m.a.agency, progress.a), (&m.b.agency, progress.b)] {
                if side.acknowledged == 0
                    && let Some(r) = rows.get_mut(agency)
                {
                    r.unacknowledged_matches += 1;
                }
            }
        }
        Ok(rows.into_values().collect())
    }
}

/// One line of the agency board: the registry entry (none for an agency that left records but
/// is no longer registered) and its counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardRow {
    pub agency: String,
    pub entry: Option<AgencyEntry>,
    pub counts: AgencyCounts,
    pub unacknowledged_matches: u64,
}
