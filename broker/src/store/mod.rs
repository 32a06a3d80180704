//! Durable key-value storage behind a small trait, so the ledger never touches sled directly.
//!
//! The contract the ledger relies on:
//! - [`Store::apply`] applies a whole [`WriteBatch`] atomically: after a crash either all of
//!   it or none of it is there (no half-written record).
//! - Nothing is durable until a [`Flusher`] flush that *started after* the write has
//!   completed. Callers acknowledge a write only after that.
//! - Writers are serialized: within a process by the ledger's writer lock, across processes
//!   sharing one database by [`Store::lock_writers`]. Everything a writer reads under both
//!   locks is the last committed state.

mod flusher;
pub mod postgres;
mod sled_store;

pub use flusher::Flusher;
pub use postgres::PgStore;
pub use sled_store::{FORMAT_KEY, FORMAT_VERSION, SledStore};

/// The store's own error: always an I/O or corruption problem, never the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O failed: {0}")]
    Io(String),
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error(
        "store format version {found} is newer than this broker supports ({supported}); run a \
         newer broker"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("the group-commit flusher has stopped")]
    FlusherStopped,
    /// The database cannot be reached or refused the work: answered UNAVAILABLE, retried by
    /// the caller, never a half-applied change.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database cannot be served at all (start-up): what to fix is in the message.
    #[error("{0}")]
    Refused(String),
}

/// Ordered inserts and removals, applied all together by [`Store::apply`].
#[derive(Debug, Default)]
pub struct WriteBatch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    wake: bool,
}

impl WriteBatch {
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Asks a shared store to wake the other processes once the batch is committed (it queued
    /// alerts that their subscribers may be waiting for).
    pub fn wake_others(&mut self) {
        self.wake = true;
    }

    pub(crate) fn wakes(&self) -> bool {
        self.wake
    }

    pub(crate) fn into_ops(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.ops
    }
}

pub type KvPair = (Vec<u8>, Vec<u8>);

/// Bytes of every file below `dir` (a store's size on disk, a backup's size).
pub fn bytes_under(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        bytes_under(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The format version the store records at [`FORMAT_KEY`], if it records one.
pub fn recorded_format(store: &dyn Store) -> Result<Option<u32>, StoreError> {
    store
        .get(FORMAT_KEY)?
        .map(|v| {
            <[u8; 4]>::try_from(v.as_slice())
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    key: "meta/format".into(),
                    reason: "not a u32".into(),
                })
        })
        .transpose()
}

/// Records the current format in a new store, and refuses one written by a newer broker.
pub(crate) fn adopt_format(store: &dyn Store) -> Result<(), StoreError> {
    match recorded_format(store)? {
        None => {
            let mut batch = WriteBatch::default();
            batch.put(FORMAT_KEY, FORMAT_VERSION.to_be_bytes().to_vec());
            store.apply(batch)?;
            store.flush_blocking()
        }
        Some(found) if found > FORMAT_VERSION => Err(StoreError::TooNew {
            found,
            supported: FORMAT_VERSION,
        }),
        Some(_) => Ok(()),
    }
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Only 0xff bytes: no key is after them all but the end of the keyspace.
    vec![0xff; prefix.len() + 64]
}

/// How many records the store holds (a full pass, a page at a time: for offline tools and
/// purges, never a call path).
pub fn count_records(store: &dyn Store) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for_each_prefixed(store, b"", |_, _| {
        n += 1;
        Ok::<_, StoreError>(())
    })?;
    Ok(n)
}

/// Visits every pair whose key starts with `prefix`, in key order, a page at a time: memory
/// stays bounded whatever the store holds (ten million operations do not fit in one `Vec`).
pub fn for_each_prefixed<E: From<StoreError>>(
    store: &dyn Store,
    prefix: &[u8],
    mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    const PAGE: usize = 4096;
    let end = prefix_end(prefix);
    let mut start = prefix.to_vec();
    loop {
        let page = store.range(&start, &end, PAGE)?;
        for (k, v) in &page {
            visit(k, v)?;
        }
        match page.last() {
            Some((last, _)) if page.len() == PAGE => start = [last.as_slice(), &[0]].concat(),
            _ => return Ok(()),
        }
    }
}

/// Copies every pair of `from` into `to`, a page at a time (export, migration between
/// backends); returns how many.
pub fn copy_all(from: &dyn Store, to: &dyn Store) -> Result<u64, StoreError> {
    const PAGE: usize = 4096;
    let mut n = 0u64;
    let mut batch = WriteBatch::default();
    for_each_prefixed(from, b"", |k, v| {
        batch.put(k.to_vec(), v.to_vec());
        n += 1;
        if n.is_multiple_of(PAGE as u64) {
            to.apply(std::mem::take(&mut batch))?;
        }
        Ok::<_, StoreError>(())
    })?;
    to.apply(batch)?;
    to.flush_blocking()?;
    Ok(n)
}

/// A sorted, durable key-value store.
pub trait Store: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Hands the value of `key`, if there is one, to `visit` without copying it out of the
    /// store's cache (the check path reads this way); true if there was a value.
    fn read_in_place(&self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, StoreError> {
        Ok(match self.get(key)? {
            Some(v) => {
                visit(&v);
                true
            }
            None => false,
        })
    }
    /// The values of several keys at once, in order (one round trip to a database instead of
    /// one per key).
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    /// All pairs whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, StoreError>;
    /// Pairs with `start <= key < end`, in key order, at most `limit`.
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError>;
    /// The pair with the greatest key starting with `prefix`.
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KvPair>, StoreError>;
    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Blocks until everything applied so far is on disk.
    fn flush_blocking(&self) -> Result<(), StoreError>;
    fn size_on_disk(&self) -> Result<u64, StoreError>;
    /// Writes a consistent copy of the whole store into `dir`.
    fn export_to(&self, dir: &std::path::Path) -> Result<u64, StoreError>;
    /// Whether other processes write this store too: then nothing read from it may be cached
    /// in memory beyond one writer-locked transaction.
    fn shared(&self) -> bool {
        false
    }
    /// Serializes this writer against writers in other processes, until
    /// [`Store::unlock_writers`]. Called under the ledger's own writer lock; an embedded store
    /// has no other process to wait for.
    fn lock_writers(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn unlock_writers(&self) {}
    /// Ticks whenever another process may have queued alerts (and at least once a second), for
    /// stores that are [`Store::shared`].
    fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// What the store is, for logs and the health page (`sled`, `postgres`).
    fn backend(&self) -> &'static str {
        "sled"
    }
}
