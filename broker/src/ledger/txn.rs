//! A write transaction under the ledger's writer lock: reads see its own pending writes,
//! and everything is applied as one atomic batch (or not at all, if the caller returns an
//! error before [`Txn::commit`]).

use std::collections::HashMap;

use serde::{Serialize, de::DeserializeOwned};

use super::op_index::{IndexChange, Indexes};
use super::records::{QueueState, StoredToken, decode, encode};
use super::{AlertHub, Notifications, keys};
use crate::identity::AgencyId;
use crate::ledger::audit::{AuditEvent, AuditLog};
use crate::store::{Store, StoreError, WriteBatch};

pub(crate) struct Txn<'a> {
    store: &'a dyn Store,
    indexes: &'a Indexes,
    batch: WriteBatch,
    index_changes: Vec<IndexChange>,
    overlay: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Values read ahead in one batch (a shared store: one round trip for many keys). Valid
    /// for the transaction: the writers' lock is held, so nobody else changes them.
    read_ahead: HashMap<Vec<u8>, Option<Vec<u8>>>,
    audit: Vec<AuditEvent>,
    pub(crate) notifications: Notifications,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(store: &'a dyn Store, indexes: &'a Indexes) -> Self {
        Self {
            store,
            indexes,
            batch: WriteBatch::default(),
            index_changes: Vec::new(),
            overlay: HashMap::new(),
            read_ahead: HashMap::new(),
            audit: Vec::new(),
            notifications: Notifications::default(),
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(key).or_else(|| self.read_ahead.get(key)) {
            Some(known) => Ok(known.clone()),
            None => self.store.get(key),
        }
    }

    /// Reads `keys` ahead in one batch where the store is a database shared by replicas
    /// (an embedded store reads each key in place faster than it could copy them all).
    pub(crate) fn read_ahead(&mut self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        if !self.store.shared() {
            return Ok(());
        }
        let wanted: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| !self.overlay.contains_key(k) && !self.read_ahead.contains_key(k))
            .collect();
        let values = self.store.get_many(&wanted)?;
        self.read_ahead.extend(wanted.into_iter().zip(values));
        Ok(())
    }

    pub(crate) fn get_rec<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.get(key)? {
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.overlay.insert(key.clone(), Some(value.clone()));
        self.batch.put(key, value);
    }

    pub(crate) fn put_rec<T: Serialize>(
        &mut self,
        key: Vec<u8>,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = encode(value)?;
        self.put(key, bytes);
        Ok(())
    }

    pub(crate) fn delete(&mut self, key: Vec<u8>) {
        self.overlay.insert(key.clone(), None);
        self.batch.delete(key);
    }

    /// Whether a stored token may be in the index (false: certainly not, no read needed).
    pub(crate) fn may_hold(&self, stored: &StoredToken) -> bool {
        self.indexes.tokens.may_hold(stored)
    }

    /// Enters a stored token into the token filter at once: bits set before the batch is
    /// applied, so no reader can find the token in the store but not in the filter (a batch
    /// that then fails leaves a bit too many, which costs a read, never a miss).
    pub(crate) fn note_token(&self, stored: &StoredToken) {
        self.indexes.tokens.insert(stored);
    }

    /// An index change, made once the batch is applied.
    pub(crate) fn index(&mut self, change: IndexChange) {
        self.index_changes.push(change);
    }

    /// Records an audit event, sealed into the chain in the same batch.
    pub(crate) fn audit(&mut self, event: AuditEvent) {
        self.audit.push(event);
    }

    /// Applies the batch atomically. Alert subscribers are registered with the hub *before*
    /// the apply, so the hub never starts from a sequence number that is not yet durable.
    pub(crate) fn commit(
        self,
        hub: &AlertHub,
        audit: &AuditLog,
        at: i64,
    ) -> Result<Notifications, StoreError> {
        for q in &self.notifications.queued {
            hub.ensure(&q.agency, || durable_last_seq(self.store, &q.agency))?;
        }
        let mut batch = self.batch;
        if !self.notifications.queued.is_empty() {
            batch.wake_others();
        }
        if self.indexes.in_store() {
            self.indexes.write(self.index_changes, &mut batch);
            audit.apply_with(self.store, batch, self.audit, at)?;
        } else {
            audit.apply_with(self.store, batch, self.audit, at)?;
            self.indexes.apply(self.index_changes);
        }
        Ok(self.notifications)
    }
}

/// The last alert sequence of `agency` as the store holds it, outside any transaction.
pub(crate) fn durable_last_seq(store: &dyn Store, agency: &AgencyId) -> Result<u64, StoreError> {
    let key = keys::queue_state(agency);
    Ok(match store.get(&key)? {
        Some(bytes) => decode::<QueueState>(&key, &bytes)?.last_seq(),
        None => 0,
    })
}
