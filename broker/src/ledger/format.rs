//! Upgrades a store written in an earlier format, in place, when the ledger opens it and
//! before anything reads it.
//!
//! 3: the agency index (`ag/`) and the expiry schedule (`ex/`) left the store for memory
//! (see [`super::op_index`]); audit records are written in a binary form (format-2 JSON
//! records still read and verify). The upgrade removes the `ag/` and `ex/` keys.
//!
//! The new version is recorded *first*, with [`UPGRADE_INCOMPLETE_KEY`]: an older broker
//! then refuses the store at once instead of running on a half-cleaned one, and a crash
//! part-way is finished at the next open.

use super::audit::{AuditEvent, AuditLog};
use super::keys;
use crate::store::{FORMAT_KEY, FORMAT_VERSION, Store, StoreError, WriteBatch};

/// Present while an upgrade is removing what the new format no longer keeps.
pub const UPGRADE_INCOMPLETE_KEY: &[u8] = b"meta/upgrade-incomplete";

/// Keys removed per batch.
const PAGE: usize = 4096;

/// What an upgrade did, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded {
    pub from: u32,
    pub to: u32,
    pub keys_removed: u64,
}

/// The format version the store records (1 if it records none: the first format had no key).
pub fn stored_version(store: &dyn Store) -> Result<u32, StoreError> {
    Ok(crate::store::recorded_format(store)?.unwrap_or(1))
}

/// Brings `store` to [`FORMAT_VERSION`]; `None` when it was there already.
pub fn upgrade(store: &dyn Store, now: i64) -> Result<Option<Upgraded>, StoreError> {
    let found = stored_version(store)?;
    let unfinished = store.get(UPGRADE_INCOMPLETE_KEY)?;
    let from = match (found >= FORMAT_VERSION, unfinished) {
        (true, None) => return Ok(None),
        // An upgrade that crashed part-way records where it came from.
        (true, Some(v)) => <[u8; 4]>::try_from(v.as_slice())
            .map(u32::from_be_bytes)
            .unwrap_or(found),
        (false, _) => {
            let mut start = WriteBatch::default();
            start.put(FORMAT_KEY.to_vec(), FORMAT_VERSION.to_be_bytes().to_vec());
            start.put(
                UPGRADE_INCOMPLETE_KEY.to_vec(),
                found.to_be_bytes().to_vec(),
            );
            store.apply(start)?;
            store.flush_blocking()?;
            found
        }
    };
    let mut removed = 0u64;
    for prefix in keys::LEGACY {
        let end = crate::store::prefix_end(prefix);
        loop {
            let page = store.range(prefix, &end, PAGE)?;
            if page.is_empty() {
                break;
            }
            let mut batch = WriteBatch::default();
            for (key, _) in page {
                batch.delete(key);
                removed += 1;
            }
            store.apply(batch)?;
        }
    }
    let mut last = WriteBatch::default();
    last.delete(UPGRADE_INCOMPLETE_KEY.to_vec());
    let event = AuditEvent::new("broker", "store_upgrade")
        .count("from_format", u64::from(from))
        .count("to_format", u64::from(FORMAT_VERSION))
        .count("keys_removed", removed);
    AuditLog::open(store)?.apply_with(store, last, vec![event], now)?;
    store.flush_blocking()?;
    Ok(Some(Upgraded {
        from,
        to: FORMAT_VERSION,
        keys_removed: removed,
    }))
}
