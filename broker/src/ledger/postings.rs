//! The token index: one key per stored token, whose value lists the open operations holding
//! it. A check or a match lookup is then one point read per token (a sled range scan clones
//! whole leaf nodes and cost most of a check), and an absent key is an immediate "no hit".
//! Most absent keys are not even read: the [`TokenFilter`] in memory rules them out.

use uuid::Uuid;

use super::keys;
use super::records::{Posting, StoredToken, decode, encode};
use super::token_filter::TokenFilter;
use super::txn::Txn;
use crate::store::{Store, StoreError};

/// The open operations holding `stored`, as the store has them.
pub(super) fn read(
    store: &dyn Store,
    filter: &TokenFilter,
    stored: &StoredToken,
) -> Result<Vec<Posting>, StoreError> {
    if !filter.may_hold(stored) {
        return Ok(Vec::new());
    }
    let key = keys::token_array(stored);
    let mut postings = Ok(Vec::new());
    store.read_in_place(&key, &mut |bytes| postings = decode(&key, bytes))?;
    postings
}

/// The open operations holding each of `tokens`, in order: one by one where the filter spares
/// most reads (an embedded store), in one batch where it is off (a shared store: each read
/// would be a round trip to the database).
pub(super) fn read_each(
    store: &dyn Store,
    filter: &TokenFilter,
    tokens: &[StoredToken],
) -> Result<Vec<Vec<Posting>>, StoreError> {
    if !store.shared() {
        return tokens.iter().map(|t| read(store, filter, t)).collect();
    }
    let keys: Vec<Vec<u8>> = tokens.iter().map(keys::token).collect();
    let values = store.get_many(&keys)?;
    keys.iter()
        .zip(values)
        .map(|(key, value)| match value {
            Some(bytes) => decode(key, &bytes),
            None => Ok(Vec::new()),
        })
        .collect()
}

/// The same, seeing the transaction's own pending writes.
pub(super) fn read_txn(txn: &Txn<'_>, stored: &StoredToken) -> Result<Vec<Posting>, StoreError> {
    if !txn.may_hold(stored) {
        return Ok(Vec::new());
    }
    Ok(txn.get_rec(&keys::token(stored))?.unwrap_or_default())
}

/// Adds `op` under `stored`, or updates its entry (a moved window).
pub(super) fn upsert(
    txn: &mut Txn<'_>,
    stored: &StoredToken,
    posting: Posting,
) -> Result<(), StoreError> {
    let mut list = read_txn(txn, stored)?;
    if list.is_empty() {
        // A new key: the filter learns of it (a token already listed is in it already).
        txn.note_token(stored);
    }
    match list.iter_mut().find(|p| p.op == posting.op) {
        Some(existing) => *existing = posting,
        None => list.push(posting),
    }
    txn.put(keys::token(stored), encode(&list)?);
    Ok(())
}

/// Removes `op` from under `stored`; the key goes when no operation holds the token.
pub(super) fn remove(txn: &mut Txn<'_>, stored: &StoredToken, op: &Uuid) -> Result<(), StoreError> {
    let mut list = read_txn(txn, stored)?;
    let before = list.len();
    list.retain(|p| p.op != *op.as_bytes());
    if list.len() == before {
        return Ok(());
    }
    if list.is_empty() {
        txn.delete(keys::token(stored));
    } else {
        txn.put(keys::token(stored), encode(&list)?);
    }
    Ok(())
}
