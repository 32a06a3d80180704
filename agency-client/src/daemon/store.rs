//! agencyd's local store: sled 0.34.7, one tree, keys by prefix.
//!
//! | key                    | value                                   |
//! |------------------------|-----------------------------------------|
//! | `o/<operation id>`     | [`OpRecord`]                            |
//! | `s/<u64 BE>`           | [`SelRecord`] (local selector id)       |
//! | `q/<u64 BE>`           | [`OutboxItem`] (outbox order)           |
//! | `a/<u64 BE>`           | [`AlertRecord`] (local alert seq)       |
//! | `m/last_alert_seq`     | u64 BE: the highest local alert seq     |
//! | `m/broker_alert_seq`   | u64 BE: the broker's seq of the last alert stored |
//! | `m/broker_incarnation` | u64 BE: the broker queue's incarnation of that alert |
//! | `m/cursor/<sink>`      | u64 BE: the last alert seq a sink took  |
//! | `m/joint/<name>/broker_alert_seq`, `.../broker_incarnation` | as the two above, for a joint federation's broker |
//! | `j/<name>/<operation id>` | [`JointOpState`](super::records::JointOpState): what that joint broker was last told |
//! | `mf/<match id>`        | the joint federation whose broker holds the match (JSON string) |
//!
//! Local alert numbers are agencyd's own: the broker's may start over after it is restored
//! from a backup (a new queue incarnation), and the sinks, `watch` and the CLI must never see
//! a number twice. Stores written before the two broker keys existed used the broker's
//! numbers as local ones, so a missing `m/broker_alert_seq` reads as `m/last_alert_seq`.
//!
//! Every change is one atomic sled batch, made under the store's writer lock so that
//! read-modify-write sequences do not interleave. [`Store::flush`] makes it durable; callers
//! flush before they answer or acknowledge anything.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{AlertRecord, OpRecord, OutboxItem, SelRecord};

/// A store failure (disk, corruption): the daemon cannot go on safely.
#[derive(Debug, thiserror::Error)]
#[error("local store: {0}")]
pub struct StoreError(pub String);

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("undecodable record: {e}"))
    }
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    db: sled::Db,
    writer: Mutex<()>,
}

/// A batch of writes, applied atomically by [`Store::apply`].
#[derive(Default)]
pub struct Batch(sled::Batch);

impl Batch {
    /// Puts `value` as JSON under `key`.
    pub fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StoreError> {
        self.0.insert(key, serde_json::to_vec(value)?);
        Ok(())
    }

    /// Puts a u64 under `key`.
    pub fn put_u64(&mut self, key: Vec<u8>, value: u64) {
        self.0.insert(key, value.to_be_bytes().to_vec());
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: Vec<u8>) {
        self.0.remove(key);
    }
}

/// Key of an operation.
pub fn op_key(id: &str) -> Vec<u8> {
    [b"o/".as_slice(), id.as_bytes()].concat()
}

/// Key of a selector.
pub fn sel_key(id: u64) -> Vec<u8> {
    [b"s/".as_slice(), &id.to_be_bytes()].concat()
}

/// Key of an outbox item.
pub fn outbox_key(seq: u64) -> Vec<u8> {
    [b"q/".as_slice(), &seq.to_be_bytes()].concat()
}

/// Key of an alert.
pub fn alert_key(seq: u64) -> Vec<u8> {
    [b"a/".as_slice(), &seq.to_be_bytes()].concat()
}

/// Key of an entry of the duty desk's journal (who did what at the desk).
pub fn desk_key(seq: u64) -> Vec<u8> {
    [b"d/".as_slice(), &seq.to_be_bytes()].concat()
}

/// Prefix of the duty desk's journal.
pub const DESK_PREFIX: &[u8] = b"d/";

/// Key of the highest stored alert seq.
pub const LAST_ALERT_SEQ: &[u8] = b"m/last_alert_seq";

/// Key of what joint federation `federation`'s broker was last told of operation `op_id`.
pub fn joint_key(federation: &str, op_id: &str) -> Vec<u8> {
    format!("j/{federation}/{op_id}").into_bytes()
}

/// Key of the joint federation whose broker holds match `match_id` (absent: our own).
pub fn match_federation_key(match_id: &str) -> Vec<u8> {
    format!("mf/{match_id}").into_bytes()
}

/// Key of the broker's seq of the last alert stored.
pub const BROKER_ALERT_SEQ: &[u8] = b"m/broker_alert_seq";

/// Key of the broker queue's incarnation of the last alert stored (0: none yet).
pub const BROKER_INCARNATION: &[u8] = b"m/broker_incarnation";

/// Key of a sink's cursor.
pub fn cursor_key(sink: &str) -> Vec<u8> {
    [b"m/cursor/".as_slice(), sink.as_bytes()].concat()
}

impl Store {
    /// Opens (creating it mode 0700) the store folder `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        make_private_dir(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        let db = sled::Config::new().path(dir.join("store")).open()?;
        restrict_files(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        Ok(Self {
            db,
            writer: Mutex::new(()),
        })
    }

    /// Takes the writer lock: hold it across a read-modify-[`Store::apply`] sequence.
    pub fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `batch` atomically (not yet durable: see [`Store::flush`]).
    pub fn apply(&self, batch: Batch) -> Result<(), StoreError> {
        self.db.apply_batch(batch.0)?;
        Ok(())
    }

    /// Makes everything applied so far durable.
    pub async fn flush(self: &std::sync::Arc<Self>) -> Result<(), StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.db.flush().map(|_| ()))
            .await
            .map_err(|e| StoreError(format!("flush task failed: {e}")))??;
        Ok(())
    }

    /// A fresh id (never reused, also across restarts), starting at 1.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()? + 1)
    }

    /// The JSON value under `key`.
    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.db.get(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// The u64 under `key` (0 when absent).
    pub fn get_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(match self.db.get(key)? {
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError(format!("{}: not a u64", String::from_utf8_lossy(key))))?,
            None => 0,
        })
    }

    /// Where the broker's alert queue was left: (its seq, its incarnation) of the last alert
    /// stored.
    pub fn broker_cursor(&self) -> Result<(u64, u64), StoreError> {
        let seq = if self.db.contains_key(BROKER_ALERT_SEQ)? {
            self.get_u64(BROKER_ALERT_SEQ)?
        } else {
            self.get_u64(LAST_ALERT_SEQ)?
        };
        Ok((seq, self.get_u64(BROKER_INCARNATION)?))
    }

    /// Every JSON value under `prefix`, in key order, from `start` (a full key) on.
    fn scan<T: DeserializeOwned>(&self, prefix: &[u8], start: Option<Vec<u8>>) -> ScanIter<T> {
        let iter = match start {
            Some(from) => self.db.range(from..),
            None => self.db.range(prefix.to_vec()..),
        };
        ScanIter {
            iter,
            prefix: prefix.to_vec(),
            _t: std::marker::PhantomData,
        }
    }

    /// Every JSON value under `prefix`, in key order.
    pub fn values<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, StoreError> {
        self.scan(prefix, None).collect()
    }

    /// An operation.
    pub fn op(&self, id: &str) -> Result<Option<OpRecord>, StoreError> {
        self.get(&op_key(id))
    }

    /// Every operation.
    pub fn ops(&self) -> Result<Vec<OpRecord>, StoreError> {
        self.scan(b"o/", None).collect()
    }

    /// A selector.
    pub fn sel(&self, id: u64) -> Result<Option<SelRecord>, StoreError> {
        self.get(&sel_key(id))
    }

    /// The first outbox item.
    pub fn outbox_head(&self) -> Result<Option<OutboxItem>, StoreError> {
        self.scan(b"q/", None).next().transpose()
    }

    /// Every outbox item, in order.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.scan(b"q/", None).collect()
    }

    /// Number of outbox items.
    pub fn outbox_len(&self) -> usize {
        self.db.scan_prefix(b"q/").count()
    }

    /// An alert.
    pub fn alert(&self, seq: u64) -> Result<Option<AlertRecord>, StoreError> {
        self.get(&alert_key(seq))
    }

    /// Alerts with seq > `after`, in order, at most `limit`.
    pub fn alerts_after(&self, after: u64, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        let start = alert_key(after.saturating_add(1));
        self.scan(b"a/", Some(start)).take(limit).collect()
    }
}

struct ScanIter<T> {
    iter: sled::Iter,
    prefix: Vec<u8>,
    _t: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> Iterator for ScanIter<T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.iter.next()? {
            Ok((k, v)) if k.starts_with(&self.prefix) => {
                Some(serde_json::from_slice(&v).map_err(StoreError::from))
            }
            Ok(_) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

/// Creates `dir` (and parents) with mode 0700, and sets 0700 on it if it existed.
pub fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Files under `dir` to 0600, folders to 0700 (sled creates them with the process umask).
fn restrict_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
            restrict_files(&path)?;
        } else if entry.file_type()?.is_file() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::daemon::records::Action;
    use std::sync::Arc;

    #[tokio::test]
    async fn batches_scans_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        {
            let store = Arc::new(Store::open(&root).unwrap());
            let mut b = Batch::default();
            for seq in [3u64, 1, 2] {
                b.put(
                    outbox_key(seq),
                    &OutboxItem {
                        seq,
                        op_id: "x".into(),
                        action: Action::Close,
                        enqueued_unix: 0,
                    },
                )
                .unwrap();
            }
            b.put_u64(LAST_ALERT_SEQ.to_vec(), 9);
            store.apply(b).unwrap();
            store.flush().await.unwrap();
            assert_eq!(store.outbox_head().unwrap().unwrap().seq, 1);
            let seqs: Vec<u64> = store.outbox().unwrap().iter().map(|i| i.seq).collect();
            assert_eq!(seqs, [1, 2, 3]);
            assert_eq!(store.outbox_len(), 3);
            assert!(store.next_id().unwrap() >= 1);
            assert!(store.alerts_after(0, 10).unwrap().is_empty());
        }
        let store = Store::open(&root).unwrap();
        assert_eq!(store.get_u64(LAST_ALERT_SEQ).unwrap(), 9);
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let conf = std::fs::metadata(root.join("store/conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(conf & 0o777, 0o600);
    }
}
