//! Indexes the ledger keeps in memory instead of in the store: each agency's operations, the
//! expiry schedule of open operations, when each ended operation ended (what retention
//! purges), and the [`TokenFilter`]. All three follow from the
//! operation records, so they are rebuilt from them at start and never written: a
//! registration writes two keys fewer, and a store holds about one key per stored token.
//!
//! They change only through [`Txn`](super::txn::Txn), which applies its [`IndexChange`]s once
//! its batch is in the store, under the ledger's writer lock.
//!
//! A store that other processes write too ([`Store::shared`], the database that broker
//! replicas share) cannot be indexed in one process's memory: there the operation index is
//! kept in the store itself, written in the same batch as the change (keys `xa/`, `xe/`,
//! `xd/`, see [`super::keys`]), and the token filter is off (every lookup reads the store).

use std::collections::{BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::keys;
use super::records::{OpRecord, OpState, decode};
use super::token_filter::TokenFilter;
use crate::store::{Store, StoreError};

/// What a committed transaction changed in the indexes.
#[derive(Debug)]
pub(crate) enum IndexChange {
    Registered {
        agency: String,
        id: Uuid,
        end: i64,
    },
    WindowMoved {
        id: Uuid,
        from: i64,
        to: i64,
    },
    /// Closed or expired at `at`: off the expiry schedule, still listed for its agency.
    Ended {
        id: Uuid,
        end: i64,
        at: i64,
    },
    /// A schedule entry whose operation is not open any more.
    Unscheduled {
        id: Uuid,
        end: i64,
    },
    /// Purged by retention (it had ended at `ended_at`): gone from every index.
    Purged {
        agency: String,
        id: Uuid,
        ended_at: i64,
    },
}

#[derive(Debug, Default)]
pub(crate) struct OpIndex {
    by_agency: HashMap<String, BTreeSet<Uuid>>,
    /// (window end, operation) of every open operation.
    expiry: BTreeSet<(i64, Uuid)>,
    /// (time it ended, operation) of every closed or expired operation.
    ended: BTreeSet<(i64, Uuid)>,
}

impl OpIndex {
    fn note(&mut self, id: Uuid, record: &OpRecord) {
        self.by_agency
            .entry(record.agency.clone())
            .or_default()
            .insert(id);
        if record.state == OpState::Open {
            self.expiry.insert((record.window.end, id));
        } else {
            self.ended.insert((record.updated, id));
        }
    }

    fn apply(&mut self, change: IndexChange) {
        match change {
            IndexChange::Registered { agency, id, end } => {
                self.by_agency.entry(agency).or_default().insert(id);
                self.expiry.insert((end, id));
            }
            IndexChange::WindowMoved { id, from, to } => {
                if self.expiry.remove(&(from, id)) {
                    self.expiry.insert((to, id));
                }
            }
            IndexChange::Ended { id, end, at } => {
                self.expiry.remove(&(end, id));
                self.ended.insert((at, id));
            }
            IndexChange::Unscheduled { id, end } => {
                self.expiry.remove(&(end, id));
            }
            IndexChange::Purged {
                agency,
                id,
                ended_at,
            } => {
                self.ended.remove(&(ended_at, id));
                if let Some(ops) = self.by_agency.get_mut(&agency) {
                    ops.remove(&id);
                    if ops.is_empty() {
                        self.by_agency.remove(&agency);
                    }
                }
            }
        }
    }

    /// The agency's operations in id order after `after` (exclusive), at most `limit`.
    pub(crate) fn agency_ops(&self, agency: &str, after: Option<Uuid>, limit: usize) -> Vec<Uuid> {
        let Some(ops) = self.by_agency.get(agency) else {
            return Vec::new();
        };
        match after {
            Some(after) => ops
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .take(limit)
                .copied()
                .collect(),
            None => ops.iter().take(limit).copied().collect(),
        }
    }

    /// Operations that ended at or before `cutoff`, earliest first.
    pub(crate) fn ended_by(&self, cutoff: i64) -> Vec<(i64, Uuid)> {
        self.ended
            .iter()
            .take_while(|(at, _)| *at <= cutoff)
            .copied()
            .collect()
    }

    /// Open operations whose window ended at or before `now`, earliest first, at most `limit`.
    pub(crate) fn due(&self, now: i64, limit: usize) -> Vec<(i64, Uuid)> {
        self.expiry
            .iter()
            .take_while(|(end, _)| *end <= now)
            .take(limit)
            .copied()
            .collect()
    }
}

/// What rebuilding the indexes found, for the start-up log.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexReport {
    /// The index is in the (shared) store: nothing was rebuilt, the counts are not taken.
    pub in_store: bool,
    pub operations: u64,
    pub open_operations: u64,
    pub open_tokens: u64,
    pub filter_bytes: usize,
    pub took: Duration,
}

#[derive(Debug)]
pub(crate) struct Indexes {
    pub(crate) tokens: TokenFilter,
    ops: RwLock<OpIndex>,
    /// The operation index is in the store (a shared store), not in `ops`.
    in_store: bool,
}

impl Indexes {
    /// Rebuilds every index from the operation records (a shared store keeps them itself).
    pub(crate) fn build(store: &dyn Store) -> Result<(Self, IndexReport), StoreError> {
        if store.shared() {
            let report = IndexReport {
                in_store: true,
                operations: store
                    .range(keys::OP, &crate::store::prefix_end(keys::OP), 1)?
                    .len() as u64,
                ..IndexReport::default()
            };
            return Ok((
                Self {
                    tokens: TokenFilter::off(),
                    ops: RwLock::default(),
                    in_store: true,
                },
                report,
            ));
        }
        let started = Instant::now();
        let mut ops = OpIndex::default();
        let mut report = IndexReport::default();
        let tokens = TokenFilter::default();
        crate::store::for_each_prefixed(store, keys::OP, |key, value| {
            let Some(id) = key
                .get(keys::OP.len()..)
                .and_then(|b| Uuid::from_slice(b).ok())
            else {
                return Ok(());
            };
            let record: OpRecord = decode(key, value)?;
            report.operations += 1;
            if record.state == OpState::Open {
                report.open_operations += 1;
                for t in &record.tokens {
                    tokens.insert(&t.stored);
                }
                report.open_tokens += record.tokens.len() as u64;
            }
            ops.note(id, &record);
            Ok::<_, StoreError>(())
        })?;
        report.filter_bytes = tokens.bytes();
        report.took = started.elapsed();
        Ok((
            Self {
                tokens,
                ops: RwLock::new(ops),
                in_store: false,
            },
            report,
        ))
    }

    pub(crate) fn in_store(&self) -> bool {
        self.in_store
    }

    /// The agency's operations in id order after `after` (exclusive), at most `limit`.
    pub(crate) fn agency_ops(
        &self,
        store: &dyn Store,
        agency: &str,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError> {
        if !self.in_store {
            return Ok(self.ops().agency_ops(agency, after, limit));
        }
        let prefix = stored::agency_prefix(agency);
        let start = match after {
            Some(after) => [prefix.as_slice(), after.as_bytes(), &[0]].concat(),
            None => prefix.clone(),
        };
        stored::ids(store.range(&start, &crate::store::prefix_end(&prefix), limit)?)
    }

    /// Operations that ended at or before `cutoff`, earliest first.
    pub(crate) fn ended_by(
        &self,
        store: &dyn Store,
        cutoff: i64,
    ) -> Result<Vec<(i64, Uuid)>, StoreError> {
        if !self.in_store {
            return Ok(self.ops().ended_by(cutoff));
        }
        stored::timed(store, stored::ENDED, cutoff, usize::MAX)
    }

    /// Open operations whose window ended at or before `now`, earliest first, at most `limit`.
    pub(crate) fn due(
        &self,
        store: &dyn Store,
        now: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Uuid)>, StoreError> {
        if !self.in_store {
            return Ok(self.ops().due(now, limit));
        }
        stored::timed(store, stored::EXPIRY, now, limit)
    }

    /// A shared store's index changes, written in the transaction's own batch.
    pub(crate) fn write(&self, changes: Vec<IndexChange>, batch: &mut crate::store::WriteBatch) {
        for change in changes {
            stored::write(change, batch);
        }
    }

    pub(crate) fn ops(&self) -> RwLockReadGuard<'_, OpIndex> {
        // Index changes are whole (each apply is one insert/remove), so a panic elsewhere
        // cannot have left a half-done change behind.
        self.ops.read().unwrap_or_else(|p| p.into_inner())
    }

    fn ops_mut(&self) -> RwLockWriteGuard<'_, OpIndex> {
        self.ops.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn apply(&self, changes: Vec<IndexChange>) {
        if changes.is_empty() {
            return;
        }
        let mut ops = self.ops_mut();
        for change in changes {
            ops.apply(change);
        }
    }
}

/// The operation index as keys of a shared store. Times are stored with the sign bit flipped
/// so that byte order is numeric order.
pub(crate) mod stored {
    use uuid::Uuid;

    use super::IndexChange;
    use crate::ledger::records::{OpRecord, OpState};
    use crate::store::{KvPair, Store, StoreError, WriteBatch};

    /// Agency (length-prefixed) + operation id: each agency's operations.
    pub(crate) const AGENCY: &[u8] = b"xa/";
    /// Window end + operation id: the expiry schedule of open operations.
    pub(crate) const EXPIRY: &[u8] = b"xe/";
    /// Time it ended + operation id: what retention purges.
    pub(crate) const ENDED: &[u8] = b"xd/";
    pub(crate) const ALL: [&[u8]; 3] = [AGENCY, EXPIRY, ENDED];

    fn time(t: i64) -> [u8; 8] {
        ((t as u64) ^ (1 << 63)).to_be_bytes()
    }

    pub(super) fn agency_prefix(agency: &str) -> Vec<u8> {
        let bytes = agency.as_bytes();
        [AGENCY, &[bytes.len() as u8], bytes].concat()
    }

    fn agency_key(agency: &str, id: &Uuid) -> Vec<u8> {
        [agency_prefix(agency).as_slice(), id.as_bytes()].concat()
    }

    fn timed_key(prefix: &[u8], t: i64, id: &Uuid) -> Vec<u8> {
        [prefix, &time(t), id.as_bytes()].concat()
    }

    pub(super) fn ids(pairs: Vec<KvPair>) -> Result<Vec<Uuid>, StoreError> {
        pairs
            .iter()
            .map(|(k, _)| {
                k.len()
                    .checked_sub(16)
                    .and_then(|at| Uuid::from_slice(&k[at..]).ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        key: "xa/".into(),
                        reason: "no operation id".into(),
                    })
            })
            .collect()
    }

    /// (time, id) entries under `prefix` with time at or before `upto`.
    pub(super) fn timed(
        store: &dyn Store,
        prefix: &[u8],
        upto: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Uuid)>, StoreError> {
        let end = match upto.checked_add(1) {
            Some(next) => [prefix, &time(next)].concat(),
            None => crate::store::prefix_end(prefix),
        };
        store
            .range(prefix, &end, limit)?
            .iter()
            .map(|(k, _)| {
                let t = k.get(3..11).and_then(|b| <[u8; 8]>::try_from(b).ok());
                let id = k.get(11..).and_then(|b| Uuid::from_slice(b).ok());
                match (t, id) {
                    (Some(t), Some(id)) => Ok(((u64::from_be_bytes(t) ^ (1 << 63)) as i64, id)),
                    _ => Err(StoreError::Corrupt {
                        key: String::from_utf8_lossy(prefix).into_owned(),
                        reason: "not a time and an operation id".into(),
                    }),
                }
            })
            .collect()
    }

    pub(super) fn write(change: IndexChange, batch: &mut WriteBatch) {
        match change {
            IndexChange::Registered { agency, id, end } => {
                batch.put(agency_key(&agency, &id), Vec::new());
                batch.put(timed_key(EXPIRY, end, &id), Vec::new());
            }
            IndexChange::WindowMoved { id, from, to } => {
                batch.delete(timed_key(EXPIRY, from, &id));
                batch.put(timed_key(EXPIRY, to, &id), Vec::new());
            }
            IndexChange::Ended { id, end, at } => {
                batch.delete(timed_key(EXPIRY, end, &id));
                batch.put(timed_key(ENDED, at, &id), Vec::new());
            }
            IndexChange::Unscheduled { id, end } => batch.delete(timed_key(EXPIRY, end, &id)),
            IndexChange::Purged {
                agency,
                id,
                ended_at,
            } => {
                batch.delete(timed_key(ENDED, ended_at, &id));
                batch.delete(agency_key(&agency, &id));
            }
        }
    }

    /// The index keys of one operation record (a store moved to a shared backend).
    pub(crate) fn keys_of(id: &Uuid, record: &OpRecord) -> Vec<Vec<u8>> {
        let mut out = vec![agency_key(&record.agency, id)];
        if record.state == OpState::Open {
            out.push(timed_key(EXPIRY, record.window.end, id));
        } else {
            out.push(timed_key(ENDED, record.updated, id));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn agency_pages_and_the_schedule_follow_changes() {
        let mut index = OpIndex::default();
        let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
        for (i, id) in ids.iter().enumerate() {
            index.apply(IndexChange::Registered {
                agency: "yn".into(),
                id: *id,
                end: 100 + i as i64,
            });
        }
        assert_eq!(index.agency_ops("yn", None, 2), ids[..2]);
        assert_eq!(index.agency_ops("yn", Some(ids[1]), 5), ids[2..]);
        assert!(index.agency_ops("gd", None, 5).is_empty());
        index.apply(IndexChange::WindowMoved {
            id: ids[0],
            from: 100,
            to: 500,
        });
        assert_eq!(index.due(101, 10), vec![(101, ids[1])]);
        index.apply(IndexChange::Ended {
            id: ids[1],
            end: 101,
            at: 150,
        });
        assert!(index.due(101, 10).is_empty());
        assert_eq!(index.due(1_000, 1), vec![(102, ids[2])]);
        assert!(index.ended_by(149).is_empty());
        assert_eq!(index.ended_by(150), vec![(150, ids[1])]);
        index.apply(IndexChange::Purged {
            agency: "yn".into(),
            id: ids[1],
            ended_at: 150,
        });
        assert_eq!(index.agency_ops("yn", None, 5), vec![ids[0], ids[2]]);
        assert!(index.ended_by(1_000).is_empty());
    }
}
