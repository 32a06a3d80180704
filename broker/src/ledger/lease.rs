//! Leases for the housekeeping that must run once, not once per replica (expiry, retention),
//! when several broker processes share one store. A lease is a record naming its holder and
//! until when it holds; it is taken and renewed under the writers' lock, so two replicas never
//! both believe they hold it. An embedded store has one process: every lease is its own.

use super::Ledger;
use crate::error::Result;
use crate::store::WriteBatch;

/// Where lease records live (`meta/lease/<task>`).
pub const PREFIX: &[u8] = b"meta/lease/";

fn key(task: &str) -> Vec<u8> {
    [PREFIX, task.as_bytes()].concat()
}

/// Holder (16 bytes) and end (i64 BE) of a lease record; None if it is not one.
fn parse(value: &[u8]) -> Option<(uuid::Uuid, i64)> {
    let holder = uuid::Uuid::from_slice(value.get(..16)?).ok()?;
    let until = i64::from_be_bytes(value.get(16..24)?.try_into().ok()?);
    Some((holder, until))
}

impl Ledger {
    /// This process's id among the replicas (new at every start).
    pub fn replica_id(&self) -> uuid::Uuid {
        self.replica
    }

    /// Whether this replica holds (or has just taken) the lease on `task` for the next
    /// `ttl` seconds. A holder renews when half its lease has run, so a lease changes hands
    /// only when its holder stopped for `ttl`.
    pub fn hold_lease(&self, task: &str, now: i64, ttl: i64) -> Result<bool> {
        if !self.store.shared() {
            return Ok(true);
        }
        let key = key(task);
        let decide = |current: Option<(uuid::Uuid, i64)>| match current {
            Some((holder, until)) if holder == self.replica => {
                if until - now > ttl / 2 {
                    Some(true)
                } else {
                    None
                }
            }
            Some((_, until)) if until > now => Some(false),
            _ => None,
        };
        let read =
            |ledger: &Self| -> Result<_> { Ok(ledger.store.get(&key)?.as_deref().and_then(parse)) };
        if let Some(answer) = decide(read(self)?) {
            return Ok(answer);
        }
        let _guard = self.lock()?;
        if let Some(answer) = decide(read(self)?) {
            return Ok(answer);
        }
        let mut value = self.replica.as_bytes().to_vec();
        value.extend_from_slice(&(now + ttl).to_be_bytes());
        let mut batch = WriteBatch::default();
        batch.put(key, value);
        self.store.apply(batch)?;
        Ok(true)
    }
}
