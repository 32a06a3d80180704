//! Pepper re-keying, offline: copies a stopped broker's store into an empty one, applying a
//! new pepper layer on top of every stored value (`stored' = HMAC(new, stored)`). The broker
//! keeps no raw token, so this is the only way to rotate its pepper; the chain it leaves is
//! described in [`crate::secrets::pepper`].
//!
//! What holds a stored value, and is rewritten: the token index keys (`tk/`), each operation's
//! tokens and registration digest (`op/`), each match's shared tokens (`mt/`). Everything else
//! (postings, alert queues, registry, audit log) is copied as it is, but for the keys of an
//! earlier format that the current one no longer keeps (see [`super::format`]): the target is
//! written in the current format. The source is only read.
//!
//! A crash part-way leaves a target that no broker opens (it carries
//! [`REKEY_INCOMPLETE_KEY`] until the last batch, which also records the new fingerprints and
//! the audit record of the re-key).

use super::keys;
use super::records::{MatchRecord, OpRecord, decode, encode};
use crate::ledger::audit::{AuditEvent, AuditLog};
use crate::secrets::pepper::{
    FINGERPRINT_KEY, Pepper, PepperError, PepperLayer, REKEY_INCOMPLETE_KEY,
};
use crate::store::{KvPair, Store, StoreError, WriteBatch};

/// Records per batch written to the target.
const PAGE: usize = 4096;

/// What a re-key rewrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RekeyReport {
    /// Records copied (rewritten or not).
    pub records: u64,
    /// Token index entries rewritten.
    pub tokens: u64,
    pub operations: u64,
    pub matches: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pepper(#[from] PepperError),
    #[error("the target store is not empty: re-key into a new, empty folder")]
    TargetNotEmpty,
    #[error("the new pepper is already one of this store's layers: use a fresh pepper")]
    LayerReused,
}

/// Re-keys `source` (written with `old`) into the empty `target` with `layer` on top, and
/// returns what it rewrote. `target` ends up bound to `old` + `layer`.
pub fn rekey(
    source: &dyn Store,
    target: &dyn Store,
    old: &Pepper,
    layer: &PepperLayer,
    now: i64,
) -> Result<RekeyReport, RekeyError> {
    let new = old.with_layer(layer.clone());
    if old
        .layers()
        .iter()
        .any(|l| l.fingerprint() == layer.fingerprint())
    {
        return Err(RekeyError::LayerReused);
    }
    // A new sled store holds only its format version.
    let foreign = target
        .range(b"", &[0xff], 2)?
        .into_iter()
        .any(|(k, _)| k != crate::store::FORMAT_KEY);
    if foreign {
        return Err(RekeyError::TargetNotEmpty);
    }
    let mut marker = WriteBatch::default();
    marker.put(REKEY_INCOMPLETE_KEY.to_vec(), Vec::new());
    target.apply(marker)?;

    let mut report = RekeyReport::default();
    let mut start = Vec::new();
    loop {
        let page = source.range(&start, &[0xff], PAGE)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        start = [last.as_slice(), &[0]].concat();
        let mut batch = WriteBatch::default();
        for (key, value) in page {
            // Keys of an earlier format that the target's format keeps elsewhere.
            if key == FINGERPRINT_KEY
                || key == REKEY_INCOMPLETE_KEY
                || key == super::format::UPGRADE_INCOMPLETE_KEY
                || keys::LEGACY.iter().any(|p| key.starts_with(p))
            {
                continue;
            }
            let (key, value) = rewrite(key, value, layer, &mut report)?;
            batch.put(key, value);
            report.records += 1;
        }
        target.apply(batch)?;
    }

    let mut last = WriteBatch::default();
    let (k, v) = new.fingerprint_entry();
    last.put(k, v);
    // A chained pepper needs a broker that knows of chains: older ones refuse the store.
    last.put(
        crate::store::FORMAT_KEY.to_vec(),
        crate::store::FORMAT_VERSION.to_be_bytes().to_vec(),
    );
    last.delete(REKEY_INCOMPLETE_KEY.to_vec());
    let event = AuditEvent::new("broker", "pepper_rekey")
        .count("pepper_layers", new.generation() as u64)
        .count("tokens", report.tokens)
        .count("operations", report.operations)
        .count("matches", report.matches);
    // The copied audit records are the chain's head: the re-key's record follows them.
    AuditLog::open(target)?.apply_with(target, last, vec![event], now)?;
    target.flush_blocking()?;
    Ok(report)
}

/// One record as the new pepper layer makes it.
fn rewrite(
    key: Vec<u8>,
    value: Vec<u8>,
    layer: &PepperLayer,
    report: &mut RekeyReport,
) -> Result<KvPair, StoreError> {
    if let Some(stored) = key.strip_prefix(keys::TOKEN) {
        let stored = <[u8; 32]>::try_from(stored).map_err(|_| StoreError::Corrupt {
            key: "tk/".into(),
            reason: format!("a token index key holds {} bytes, not 32", stored.len()),
        })?;
        report.tokens += 1;
        return Ok((keys::token(&layer.hmac(&stored)), value));
    }
    if key.starts_with(keys::OP) {
        let mut op: OpRecord = decode(&key, &value)?;
        for t in &mut op.tokens {
            t.stored = layer.hmac(&t.stored);
        }
        op.registration_digest = layer.hmac(&op.registration_digest);
        report.operations += 1;
        return Ok((key, encode(&op)?));
    }
    if key.starts_with(keys::MATCH) {
        let mut m: MatchRecord = decode(&key, &value)?;
        for t in &mut m.shared {
            *t = layer.hmac(t);
        }
        report.matches += 1;
        return Ok((key, encode(&m)?));
    }
    Ok((key, value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::identity::AgencyId;
    use crate::ledger::records::{TokenRec, Window};
    use crate::ledger::{Ledger, NewOperation, Policy};
    use crate::store::SledStore;

    fn op(pepper: &Pepper, raw: &[[u8; 32]]) -> NewOperation {
        NewOperation {
            id: uuid::Uuid::new_v4(),
            window: Window {
                start: 0,
                end: 86_400,
            },
            tokens: raw
                .iter()
                .enumerate()
                .map(|(i, t)| TokenRec {
                    stored: pepper.stored(t),
                    kind: 2,
                    local_ref: i as u64,
                })
                .collect(),
            case_reference: String::new(),
            earlier_digests: Vec::new(),
        }
    }

    #[test]
    fn rekeyed_index_matches_new_registrations_and_refuses_half_written_targets() {
        let dir = tempfile::tempdir().unwrap();
        let old = Pepper::from_bytes([1; 32]);
        let a = AgencyId::parse("yn-psb").unwrap();
        let b = AgencyId::parse("gd-psb").unwrap();
        let shared = [5u8; 32];
        let first = op(&old, &[shared, [6; 32]]);
        {
            let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("a")).unwrap());
            old.bind(store.as_ref(), &[]).unwrap();
            let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();
            let _ = ledger.register(&a, first.clone(), 100).unwrap();
            store.flush_blocking().unwrap();
        }
        let source = SledStore::open(&dir.path().join("a")).unwrap();
        // Written by an older broker: the re-keyed copy must still be refused by one.
        source.set_format_version(1).unwrap();
        let target = SledStore::open(&dir.path().join("b")).unwrap();
        let layer = PepperLayer::from_bytes([2; 32]);
        let report = rekey(&source, &target, &old, &layer, 200).unwrap();
        assert_eq!((report.tokens, report.operations), (2, 1));
        let err = rekey(&source, &target, &old, &layer, 200).unwrap_err();
        assert!(matches!(err, RekeyError::TargetNotEmpty), "{err}");
        let err = rekey(&source, &target, &old, &PepperLayer::from_bytes([1; 32]), 0);
        assert!(matches!(err, Err(RekeyError::LayerReused)));
        // The old stored values are gone from the target's index.
        assert!(
            target
                .get(&keys::token(&old.stored(&shared)))
                .unwrap()
                .is_none()
        );
        drop(source);

        let new = old.with_layer(layer);
        new.bind(&target, &[]).unwrap();
        assert!(old.bind(&target, &[]).is_err());
        let store: Arc<dyn Store> = Arc::new(target);
        let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();
        // A new registration under the chain matches the re-keyed one.
        let (second, _) = ledger.register(&b, op(&new, &[shared]), 300).unwrap();
        assert_eq!(second.matches_touched, 1);
        // The original registration, repeated under the new chain, is still a repeat.
        let mut repeat = first.clone();
        for t in &mut repeat.tokens {
            t.stored = new.layers()[1].hmac(&t.stored);
        }
        repeat.earlier_digests = vec![new.lift(
            crate::ledger::registration_digest(&first.window, &first.tokens, ""),
            1,
        )];
        let (again, _) = ledger.register(&a, repeat.clone(), 400).unwrap();
        assert!(!again.created);
        repeat.earlier_digests.clear();
        assert!(ledger.register(&a, repeat, 400).is_err());
        assert!(matches!(
            crate::ledger::audit::verify(store.as_ref()).unwrap(),
            crate::ledger::audit::Verdict::Intact { .. }
        ));
        let mut log = Vec::new();
        crate::ledger::audit::export(store.as_ref(), 1, &mut log).unwrap();
        let log = String::from_utf8(log).unwrap();
        assert_eq!(log.matches("\"pepper_rekey\"").count(), 1, "{log}");

        // A target whose re-key did not finish is refused.
        let mut batch = WriteBatch::default();
        batch.put(REKEY_INCOMPLETE_KEY.to_vec(), Vec::new());
        store.apply(batch).unwrap();
        assert!(matches!(
            new.bind(store.as_ref(), &[]),
            Err(PepperError::RekeyIncomplete)
        ));
    }
}
