//! [`Store`] on sled 0.34.7: one tree, atomic batches, synchronous flush.

use std::path::Path;

use super::{KvPair, Store, StoreError, WriteBatch};

/// Bumped when the key layout or record encoding changes incompatibly.
///
/// 2: the pepper may be a chain of layers (`meta/pepper`). A format-1 broker would read a
/// re-keyed store with its one pepper and silently miss every match, so it must refuse it.
/// Format-1 stores are read as they are.
///
/// 3: the agency index and expiry schedule live in memory, audit records are binary. Earlier
/// stores are upgraded in place when the ledger opens them (see `ledger::format`).
pub const FORMAT_VERSION: u32 = 3;
/// Where the store records its format version.
pub const FORMAT_KEY: &[u8] = b"meta/format";

/// sled's page cache unless configured otherwise (offline tools, tests).
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

fn io(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the store in `dir` with the default page cache, refusing a store
    /// written by a newer format.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_BYTES)
    }

    /// The same, with a page cache of `cache_bytes` (`[store] cache_mib`).
    pub fn open_with_cache(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = open_with_lock_retry(dir, cache_bytes)?;
        let tree = db.open_tree("ledger").map_err(io)?;
        let store = Self { db, tree };
        super::adopt_format(&store)?;
        Ok(store)
    }

    /// Records a format version (tests of the upgrade and of its refusal).
    pub fn set_format_version(&self, version: u32) -> Result<(), StoreError> {
        self.tree
            .insert(FORMAT_KEY, &version.to_be_bytes())
            .map_err(io)?;
        self.flush_blocking()
    }
}

/// Store folders this process has opened: only for those is a held lock worth waiting for.
static OPENED_HERE: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

fn opened_here(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    OPENED_HERE
        .lock()
        .map(|seen| seen.contains(&dir))
        .unwrap_or(false)
}

fn remember_opened(dir: &Path) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Ok(mut seen) = OPENED_HERE.lock()
        && !seen.contains(&dir)
    {
        seen.push(dir);
    }
}

/// sled releases its file lock only once its background threads let go of the database,
/// shortly after the last handle is dropped; an in-process restart (tests, backup restore)
/// must wait for that rather than fail. A lock held by another process is reported at once.
fn open_with_lock_retry(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ours = opened_here(dir);
    loop {
        let opened = sled::Config::new()
            .path(dir)
            // Durability comes from our own group-commit flush, not from a timer.
            .flush_every_ms(None)
            .cache_capacity(cache_bytes)
            .open();
        match opened {
            Ok(db) => {
                remember_opened(dir);
                return Ok(db);
            }
            Err(sled::Error::Io(e))
                if ours && is_lock_error(&e) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                return Err(StoreError::Io(format!(
                    "the store at {} is locked by another process (is a broker running on it? \
                     stop it first)",
                    dir.display()
                )));
            }
            Err(e) => return Err(io(e)),
        }
    }
}

/// sled reports a held lock as an `Other` error wrapping the OS's `WouldBlock`.
fn is_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key).map_err(io)?.map(|v| v.to_vec()))
    }

    fn read_in_place(&self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, StoreError> {
        // sled hands out a reference-counted view of its cached value: no copy.
        Ok(match self.tree.get(key).map_err(io)? {
            Some(v) => {
                visit(&v);
                true
            }
            None => false,
        })
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<KvPair>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io))
            .collect()
    }

    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<KvPair>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.tree
            .range(start..end)
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(io))
            .collect()
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<KvPair>, StoreError> {
        Ok(self
            .tree
            .scan_prefix(prefix)
            .next_back()
            .transpose()
            .map_err(io)?
            .map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut sled_batch = sled::Batch::default();
        for (key, value) in batch.into_ops() {
            match value {
                Some(v) => sled_batch.insert(key, v),
                None => sled_batch.remove(key),
            }
        }
        self.tree.apply_batch(sled_batch).map_err(io)
    }

    fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(io)
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(io)
    }

    fn export_to(&self, dir: &Path) -> Result<u64, StoreError> {
        // A copy key by key (sled's own import panics on I/O errors). The caller makes it
        // consistent by holding the ledger's writer lock meanwhile.
        let target = sled::Config::new().path(dir).open().map_err(io)?;
        let tree = target.open_tree("ledger").map_err(io)?;
        let mut n = 0;
        for pair in self.tree.iter() {
            let (k, v) = pair.map_err(io)?;
            tree.insert(k, v).map_err(io)?;
            n += 1;
        }
        target.flush().map_err(io)?;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_applied_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            let mut batch = WriteBatch::default();
            batch.put(b"a/1".to_vec(), b"x".to_vec());
            batch.put(b"a/2".to_vec(), b"y".to_vec());
            batch.put(b"b/1".to_vec(), b"z".to_vec());
            batch.delete(b"b/1".to_vec());
            store.apply(batch).unwrap();
            store.flush_blocking().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.scan_prefix(b"a/").unwrap().len(), 2);
        assert!(store.scan_prefix(b"b/").unwrap().is_empty());
        assert_eq!(store.range(b"a/1", b"a/2", 10).unwrap().len(), 1);
    }

    #[test]
    fn newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.set_format_version(FORMAT_VERSION + 1).unwrap();
        }
        let err = SledStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
        assert!(err.to_string().contains("newer"));
    }
}
