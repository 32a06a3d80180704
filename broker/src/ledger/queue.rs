//! Durable per-agency alert queues and the hub that wakes live subscribers.
//!
//! An alert is stored under the recipient's next sequence number in the same batch as the
//! change that caused it. Subscribers are woken only once that batch is durable, so an alert
//! once seen is never lost and a sequence number is never reused within one incarnation.
//!
//! A restore from a backup takes the queues back in time: sequence numbers a subscriber has
//! already seen are given out again. So the queues carry an incarnation, new at every
//! restore; every alert is delivered with it, and a subscriber that resumes with another
//! incarnation, or after the queue's end, is told to start over instead of silently skipping.

use std::collections::HashMap;
use std::sync::Mutex;

use deconfliction_proto::v1;
use prost::Message;
use tokio::sync::watch;

use super::records::{QueueState, decode};
use super::txn::{Txn, durable_last_seq};
use super::{Ledger, Notifications, Queued, keys};
use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;
use crate::ledger::audit::AuditEvent;
use crate::store::{Store, StoreError, WriteBatch};

/// Per agency, the highest durable alert sequence, as a watch channel.
#[derive(Debug, Default)]
pub struct AlertHub {
    agencies: Mutex<HashMap<AgencyId, watch::Sender<u64>>>,
}

impl AlertHub {
    /// The agency's channel, created from `init()` (read under the hub lock) if it has none.
    fn with_channel<T>(
        &self,
        agency: &AgencyId,
        init: impl FnOnce() -> Result<u64, StoreError>,
        then: impl FnOnce(&watch::Sender<u64>) -> T,
    ) -> Result<T, StoreError> {
        let mut map = self.agencies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(agency) {
            return Ok(then(tx));
        }
        let (tx, _) = watch::channel(init()?);
        let out = then(&tx);
        map.insert(agency.clone(), tx);
        Ok(out)
    }

    /// Makes sure `agency` has a channel before a batch with alerts for it is applied.
    pub(crate) fn ensure(
        &self,
        agency: &AgencyId,
        init: impl FnOnce() -> Result<u64, StoreError>,
    ) -> Result<(), StoreError> {
        self.with_channel(agency, init, |_| ())
    }

    /// Announces that alerts up to `seq` are durable.
    pub(crate) fn publish(&self, agency: &AgencyId, seq: u64) {
        let map = self.agencies.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(agency) {
            tx.send_if_modified(|current| {
                let newer = seq > *current;
                if newer {
                    *current = seq;
                }
                newer
            });
        }
    }

    /// Agencies someone is subscribed to now.
    fn watched(&self) -> Vec<AgencyId> {
        let map = self.agencies.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(a, _)| a.clone())
            .collect()
    }

    pub(crate) fn subscribe(
        &self,
        agency: &AgencyId,
        init: impl FnOnce() -> Result<u64, StoreError>,
    ) -> Result<watch::Receiver<u64>, StoreError> {
        self.with_channel(agency, init, watch::Sender::subscribe)
    }
}

/// Appends an alert for `agency` to the transaction and returns its sequence number.
pub(crate) fn enqueue(
    txn: &mut Txn<'_>,
    agency: &AgencyId,
    at: i64,
    event: v1::alert::Event,
) -> Result<u64> {
    let state_key = keys::queue_state(agency);
    let mut state: QueueState = txn.get_rec(&state_key)?.unwrap_or_default();
    let seq = state.next_seq.max(1);
    state.next_seq = seq + 1;
    let alert = v1::Alert {
        seq,
        at_unix: at,
        event: Some(event),
        // Given on delivery (`read_alerts`), so that a restore can renew it.
        incarnation: 0,
    };
    txn.put(keys::alert(agency, seq), alert.encode_to_vec());
    txn.put_rec(state_key, &state)?;
    let depth = state.last_seq() - state.acked;
    let queued = &mut txn.notifications.queued;
    match queued.iter_mut().find(|q| q.agency == *agency) {
        // Sequences only grow within a transaction, so the latest entry is the newest.
        Some(q) => {
            q.last_seq = seq;
            q.depth = depth;
        }
        None => queued.push(Queued {
            agency: agency.clone(),
            last_seq: seq,
            depth,
        }),
    }
    Ok(seq)
}

fn read_incarnation(store: &dyn Store) -> Result<Option<u64>, StoreError> {
    let Some(bytes) = store.get(keys::INCARNATION)? else {
        return Ok(None);
    };
    <[u8; 8]>::try_from(bytes.as_slice())
        .map(|b| Some(u64::from_be_bytes(b)))
        .map_err(|_| StoreError::Corrupt {
            key: "meta/incarnation".into(),
            reason: format!("{} bytes, not a u64", bytes.len()),
        })
}

fn fresh_incarnation() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0.max(1)
}

/// The store's queue incarnation, created (and made durable) on the first open.
pub(crate) fn open_incarnation(store: &dyn Store) -> Result<u64, StoreError> {
    if let Some(found) = read_incarnation(store)? {
        return Ok(found);
    }
    let incarnation = fresh_incarnation();
    let mut batch = WriteBatch::default();
    batch.put(
        keys::INCARNATION.to_vec(),
        incarnation.to_be_bytes().to_vec(),
    );
    store.apply(batch)?;
    store.flush_blocking()?;
    Ok(incarnation)
}

/// Gives a restored store's queues a new incarnation, recorded in its audit log, so that no
/// subscriber mistakes the sequence numbers the restore gives out again for ones it has seen.
pub fn renew_incarnation(store: &dyn Store, now: i64) -> Result<u64, StoreError> {
    let incarnation = fresh_incarnation();
    let mut batch = WriteBatch::default();
    batch.put(
        keys::INCARNATION.to_vec(),
        incarnation.to_be_bytes().to_vec(),
    );
    let event = AuditEvent::new("broker", "restore").count("incarnation", incarnation);
    super::audit::AuditLog::open(store)?.apply_with(store, batch, vec![event], now)?;
    store.flush_blocking()?;
    Ok(incarnation)
}

impl Ledger {
    /// The incarnation every alert is delivered with (see the module comment).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Where a subscription that asks for alerts after `after`, last seen in `incarnation`
    /// (0: none seen yet), starts; refused if that place is not in this queue.
    pub fn resume_point(&self, agency: &AgencyId, after: u64, incarnation: u64) -> Result<u64> {
        let state = self.queue_state(agency)?;
        let current = self.incarnation;
        if incarnation != 0 && incarnation != current {
            return Err(BrokerError::QueueRestarted {
                detail: format!(
                    "you last received alerts of queue incarnation {incarnation}, this queue is \
                     incarnation {current}"
                ),
                incarnation: current,
            });
        }
        if after > state.last_seq() {
            return Err(BrokerError::QueueRestarted {
                detail: format!(
                    "you asked for alerts after #{after} but this queue ends at #{}",
                    state.last_seq()
                ),
                incarnation: current,
            });
        }
        Ok(after.max(state.acked))
    }

    /// A receiver of the agency's highest durable alert sequence.
    pub fn watch_alerts(&self, agency: &AgencyId) -> Result<watch::Receiver<u64>> {
        let store = self.store.clone();
        Ok(self
            .hub
            .subscribe(agency, || durable_last_seq(store.as_ref(), agency))?)
    }

    /// Wakes this replica's subscribers for alerts other replicas queued: the sequence in the
    /// store is the truth, whatever notification brought us here. Returns how many agencies
    /// were looked at.
    pub fn refresh_alert_hub(&self) -> Result<usize> {
        let watched = self.hub.watched();
        for agency in &watched {
            let seq = durable_last_seq(self.store.as_ref(), agency)?;
            self.hub.publish(agency, seq);
        }
        Ok(watched.len())
    }

    /// Up to `limit` queued alerts with `after < seq <= upto`, in order.
    pub fn read_alerts(
        &self,
        agency: &AgencyId,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Vec<v1::Alert>> {
        if after >= upto {
            return Ok(Vec::new());
        }
        let start = keys::alert(agency, after.saturating_add(1));
        let end = keys::alert(agency, upto.saturating_add(1));
        let mut out = Vec::new();
        for (key, value) in self.store.range(&start, &end, limit)? {
            let mut alert =
                v1::Alert::decode(value.as_slice()).map_err(|e| StoreError::Corrupt {
                    key: "aq/".into(),
                    reason: format!("{e} ({} bytes)", key.len()),
                })?;
            // Not stored with the alert: a restored alert belongs to the new incarnation.
            alert.incarnation = self.incarnation;
            out.push(alert);
        }
        Ok(out)
    }

    pub fn queue_state(&self, agency: &AgencyId) -> Result<QueueState> {
        let key = keys::queue_state(agency);
        Ok(match self.store.get(&key)? {
            Some(bytes) => decode(&key, &bytes)?,
            None => QueueState::default(),
        })
    }

    /// Trims the agency's queue up to and including `upto`, alerts the caller received in
    /// `incarnation` (0: not said). Returns the alerts left.
    pub fn ack(
        &self,
        agency: &AgencyId,
        upto: u64,
        incarnation: u64,
        now: i64,
    ) -> Result<(u64, Notifications)> {
        if incarnation != 0 && incarnation != self.incarnation {
            // Trimming by an old incarnation's numbers would drop alerts never delivered.
            return Err(BrokerError::QueueRestarted {
                detail: format!(
                    "you acknowledged alerts of queue incarnation {incarnation}, this queue is \
                     incarnation {}",
                    self.incarnation
                ),
                incarnation: self.incarnation,
            });
        }
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let state_key = keys::queue_state(agency);
        let mut state: QueueState = txn.get_rec(&state_key)?.unwrap_or_default();
        let last = state.last_seq();
        if upto > last {
            return Err(BrokerError::Invalid(format!(
                "cannot acknowledge up to alert {upto}: the last alert is {last}"
            )));
        }
        if upto > state.acked {
            let start = keys::alert(agency, state.acked.saturating_add(1));
            let end = keys::alert(agency, upto.saturating_add(1));
            let mut acked = Vec::new();
            for (key, value) in self.store.range(&start, &end, usize::MAX)? {
                txn.delete(key);
                acked.push(value);
            }
            super::progress::record_seen(&mut txn, agency, &acked, now)?;
            state.acked = upto;
            txn.put_rec(state_key, &state)?;
            txn.audit(AuditEvent::new(agency.as_str(), "ack").count("upto", upto));
        }
        let remaining = last - state.acked;
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((remaining, notes))
    }
}
