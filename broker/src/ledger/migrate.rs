//! Moves a stopped broker's ledger between backends (sled to a shared database, and back),
//! offline, and proves the copy: every record arrived, and the audit chain verifies and ends
//! where the source's does.
//!
//! The target must be empty. [`INCOMPLETE_KEY`] is written into it first and removed last, so
//! a target left by an interrupted migration is refused by a broker (it would serve half a
//! ledger) and emptied by the next run of the migration.

use super::audit::{self, AuditEvent, AuditLog, Verdict};
use super::op_index::stored;
use super::records::{OpRecord, decode};
use super::{format, keys};
use crate::store::{FORMAT_KEY, FORMAT_VERSION, Store, StoreError, WriteBatch, for_each_prefixed};

/// Present in a target while a migration writes it.
pub const INCOMPLETE_KEY: &[u8] = b"meta/migrate-incomplete";

const PAGE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the target already holds {0} records; migrate into an empty database or folder")]
    TargetNotEmpty(u64),
    #[error(
        "the source is in store format {found}, this broker migrates format {FORMAT_VERSION}: \
         start a broker of this version on it once (it upgrades the store), stop it, migrate"
    )]
    SourceFormat { found: u32 },
    #[error("the copy differs from the source: {0}; the target is left marked incomplete")]
    CopyDiffers(String),
}

/// What a migration copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// Records of the ledger (index keys of a shared store not counted).
    pub records: u64,
    pub operations: u64,
    pub audit_records: u64,
    /// Whether the target had been left by an interrupted migration, and was emptied first.
    pub resumed: bool,
}

/// Keys that only one kind of store keeps: the operation index a shared store holds.
fn backend_own(key: &[u8]) -> bool {
    stored::ALL.iter().any(|p| key.starts_with(p))
}

/// Copies the ledger in `from` into the empty `to`; `now` stamps the audit record of it.
pub fn migrate(from: &dyn Store, to: &dyn Store, now: i64) -> Result<Migrated, MigrateError> {
    let found = format::stored_version(from)?;
    if found != FORMAT_VERSION || from.get(format::UPGRADE_INCOMPLETE_KEY)?.is_some() {
        return Err(MigrateError::SourceFormat { found });
    }
    if from.get(INCOMPLETE_KEY)?.is_some() {
        return Err(MigrateError::CopyDiffers(
            "the source is itself the target of an interrupted migration".into(),
        ));
    }
    let resumed = to.get(INCOMPLETE_KEY)?.is_some();
    if resumed {
        empty(to)?;
    } else {
        let held = count(to, |k| k != FORMAT_KEY)?;
        if held > 0 {
            return Err(MigrateError::TargetNotEmpty(held));
        }
    }
    let mut mark = WriteBatch::default();
    mark.put(INCOMPLETE_KEY, b"1".to_vec());
    to.apply(mark)?;
    to.flush_blocking()?;

    let index_in_target = to.shared();
    let (mut records, mut operations, mut pending) = (0u64, 0u64, 0u64);
    let mut batch = WriteBatch::default();
    for_each_prefixed(from, b"", |k, v| {
        if backend_own(k) || k == INCOMPLETE_KEY {
            return Ok(());
        }
        batch.put(k.to_vec(), v.to_vec());
        records += 1;
        pending += 1;
        if index_in_target
            && k.starts_with(keys::OP)
            && let Some(id) = k
                .get(keys::OP.len()..)
                .and_then(|b| uuid::Uuid::from_slice(b).ok())
        {
            let record: OpRecord = decode(k, v)?;
            for key in stored::keys_of(&id, &record) {
                batch.put(key, Vec::new());
            }
            operations += 1;
        } else if k.starts_with(keys::OP) {
            operations += 1;
        }
        if pending >= PAGE {
            to.apply(std::mem::take(&mut batch))?;
            pending = 0;
        }
        Ok::<_, StoreError>(())
    })?;
    to.apply(batch)?;
    to.flush_blocking()?;

    let copied = count(to, |k| !backend_own(k) && k != INCOMPLETE_KEY)?;
    if copied != records {
        return Err(MigrateError::CopyDiffers(format!(
            "{records} records copied, {copied} found in the target"
        )));
    }
    let audit_records = match audit::verify(to)? {
        Verdict::Intact { records } => records,
        Verdict::Broken { seq, reason } => {
            return Err(MigrateError::CopyDiffers(format!(
                "audit chain broken at record {seq}: {reason}"
            )));
        }
    };
    let (head_from, head_to) = (audit::stored_head(from)?, audit::stored_head(to)?);
    if head_from != head_to {
        return Err(MigrateError::CopyDiffers(format!(
            "audit head {} in the source, {} in the target",
            head_from.text(),
            head_to.text()
        )));
    }
    // The migration leaves its trace in the chain it moved, and the mark goes with it.
    let mut done = WriteBatch::default();
    done.delete(INCOMPLETE_KEY.to_vec());
    let event = AuditEvent::new("broker", "store_migrate")
        .count("records", records)
        .count("to_shared", u64::from(index_in_target));
    AuditLog::open(to)?.apply_with(to, done, vec![event], now)?;
    to.flush_blocking()?;
    Ok(Migrated {
        records,
        operations,
        audit_records,
        resumed,
    })
}

fn count(store: &dyn Store, keep: impl Fn(&[u8]) -> bool) -> Result<u64, StoreError> {
    let mut n = 0;
    for_each_prefixed(store, b"", |k, _| {
        if keep(k) {
            n += 1;
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(n)
}

/// Removes everything but the mark from a target an interrupted migration left.
fn empty(store: &dyn Store) -> Result<(), StoreError> {
    loop {
        let page = store.range(b"", &[0xff; 8], PAGE as usize)?;
        let doomed: Vec<Vec<u8>> = page
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.as_slice() != INCOMPLETE_KEY && k.as_slice() != FORMAT_KEY)
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for k in doomed {
            batch.delete(k);
        }
        store.apply(batch)?;
    }
}

/// Refuses a store an interrupted migration left (serving it would serve half a ledger).
pub(super) fn refuse_incomplete(store: &dyn Store) -> Result<(), StoreError> {
    if store.get(INCOMPLETE_KEY)?.is_some() {
        return Err(StoreError::Refused(
            "this store is the target of a migration that did not finish; run `deconflict-broker \
             store migrate` again (it empties the target and starts over)"
                .into(),
        ));
    }
    Ok(())
}
