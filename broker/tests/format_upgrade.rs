//! A store written by the format-2 broker opens in the format-3 one: upgraded in place, the
//! in-memory indexes rebuilt from it, the audit chain unbroken across both record forms.
//!
//! `fixtures/format2-store.kv` is every key and value (hex, tab-separated) of a store that the
//! broker at commit c3d19b4 (format 2) wrote through its ledger: agencies `yn-psb` and `gd-psb`
//! enrolled at t0 = 1,800,000,000; operations 1 (yn: tokens 0x11.., 0x12.., 0x13.., one day),
//! 2 (gd: 0x11.., 0x21.., two days: matches 1), 3 (gd: 0x31.., one hour) and 4 (yn: 0x41..,
//! 0x42.., closed at t0+10); a check by gd of 0x12.. at t0+20 (tells yn). Stored tokens are
//! the byte repeated 32 times.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use deconflict_broker::identity::AgencyId;
use deconflict_broker::ledger::audit::{self, Verdict};
use deconflict_broker::ledger::format::{UPGRADE_INCOMPLETE_KEY, Upgraded};
use deconflict_broker::ledger::records::{TokenRec, Window};
use deconflict_broker::ledger::{Ledger, NewOperation, Policy};
use deconflict_broker::store::{FORMAT_KEY, FORMAT_VERSION, SledStore, Store, WriteBatch};
use uuid::Uuid;

const T0: i64 = 1_800_000_000;
/// Audit records the format-2 broker wrote (2 enrolments, 4 registrations, a match, a close,
/// a check).
const FORMAT2_AUDIT_RECORDS: u64 = 9;

fn format2_pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
    include_str!("fixtures/format2-store.kv")
        .lines()
        .map(|line| {
            let (k, v) = line.split_once('\t').unwrap();
            (hex::decode(k).unwrap(), hex::decode(v).unwrap())
        })
        .collect()
}

/// A sled store holding exactly what the format-2 broker left.
fn format2_store(dir: &std::path::Path) -> Arc<dyn Store> {
    let store = SledStore::open(dir).unwrap();
    let mut batch = WriteBatch::default();
    for (k, v) in format2_pairs() {
        batch.put(k, v);
    }
    store.apply(batch).unwrap();
    store.flush_blocking().unwrap();
    Arc::new(store)
}

fn legacy_keys(store: &dyn Store) -> usize {
    store.scan_prefix(b"ag/").unwrap().len() + store.scan_prefix(b"ex/").unwrap().len()
}

fn ids(page: &[(Uuid, deconflict_broker::ledger::records::OpRecord)]) -> Vec<u128> {
    page.iter().map(|(id, _)| id.as_u128()).collect()
}

#[test]
fn fixture_is_what_format_2_wrote() {
    let pairs = format2_pairs();
    let format = pairs.iter().find(|(k, _)| k == FORMAT_KEY).unwrap();
    assert_eq!(format.1, 2u32.to_be_bytes());
    // Four agency-index keys, three expiry keys (operation 4 was closed), JSON audit records.
    assert_eq!(
        pairs.iter().filter(|(k, _)| k.starts_with(b"ag/")).count(),
        4
    );
    assert_eq!(
        pairs.iter().filter(|(k, _)| k.starts_with(b"ex/")).count(),
        3
    );
    let audit: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k.starts_with(b"au/"))
        .collect();
    assert_eq!(audit.len() as u64, FORMAT2_AUDIT_RECORDS);
    assert!(audit.iter().all(|(_, v)| v.first() == Some(&b'{')));
}

#[test]
fn a_format_2_store_is_upgraded_and_serves_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = format2_store(dir.path());
    let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();

    let opened = ledger.opened();
    assert_eq!(
        opened.upgraded,
        Some(Upgraded {
            from: 2,
            to: FORMAT_VERSION,
            keys_removed: 7
        })
    );
    assert_eq!(opened.indexes.operations, 4);
    assert_eq!(opened.indexes.open_operations, 3);
    assert_eq!(opened.indexes.open_tokens, 6);
    assert_eq!(legacy_keys(store.as_ref()), 0);
    assert_eq!(
        store.get(FORMAT_KEY).unwrap().unwrap(),
        FORMAT_VERSION.to_be_bytes()
    );
    assert!(store.get(UPGRADE_INCOMPLETE_KEY).unwrap().is_none());

    // The agency index, rebuilt from the records, lists what the ag/ keys listed.
    let yn = AgencyId::parse("yn-psb").unwrap();
    let gd = AgencyId::parse("gd-psb").unwrap();
    assert_eq!(ids(&ledger.list(&yn, true, None, 10).unwrap().0), [1, 4]);
    assert_eq!(ids(&ledger.list(&yn, false, None, 10).unwrap().0), [1]);
    assert_eq!(ids(&ledger.list(&gd, true, None, 1).unwrap().0), [2]);
    let (page, next) = ledger.list(&gd, true, Some(Uuid::from_u128(2)), 1).unwrap();
    assert_eq!((ids(&page), next), (vec![3], Some(Uuid::from_u128(3))));

    // The token filter, rebuilt: the stored tokens of open operations still hit.
    let window = Window {
        start: T0,
        end: T0 + 100,
    };
    let (outcome, _) = ledger
        .check(&gd, window, &[[0x13; 32], [0x41; 32], [0x99; 32]], T0 + 30)
        .unwrap();
    assert_eq!(
        outcome.hits,
        [true, false, false],
        "0x41 is closed, 0x99 never held"
    );

    // A new registration on an old token matches the old operation.
    let hb = AgencyId::parse("hb-psb").unwrap();
    let new = NewOperation {
        id: Uuid::from_u128(5),
        window: Window {
            start: T0,
            end: T0 + 86_400,
        },
        tokens: vec![TokenRec {
            stored: [0x21; 32],
            kind: 2,
            local_ref: 0,
        }],
        case_reference: String::new(),
        earlier_digests: Vec::new(),
    };
    let (registered, _) = ledger.register(&hb, new, T0 + 40).unwrap();
    assert_eq!(registered.matches_touched, 1);

    // The expiry schedule, rebuilt: operation 3 (one hour) expires first, and only it.
    let (expired, _) = ledger.sweep_expired(T0 + 3_600, 100).unwrap();
    assert_eq!(expired, 1);
    assert_eq!(ids(&ledger.list(&gd, false, None, 10).unwrap().0), [2]);

    // One chain over JSON records (format 2) and binary ones (format 3).
    let verdict = audit::verify(store.as_ref()).unwrap();
    // + the upgrade, the check that told yn, the match, the registration, the expiry.
    assert_eq!(
        verdict,
        Verdict::Intact {
            records: FORMAT2_AUDIT_RECORDS + 5
        }
    );
    let mut out = Vec::new();
    audit::export(store.as_ref(), 1, &mut out).unwrap();
    let lines: Vec<serde_json::Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, FORMAT2_AUDIT_RECORDS + 5);
    let upgrade = &lines[FORMAT2_AUDIT_RECORDS as usize];
    assert_eq!(upgrade["action"], "store_upgrade");
    assert_eq!(upgrade["counts"]["from_format"], 2);

    // Opening again finds nothing to upgrade.
    drop(ledger);
    let again = Ledger::open(store, Policy::default()).unwrap();
    assert_eq!(again.opened().upgraded, None);
    assert_eq!(again.opened().indexes.open_operations, 3);
}

#[test]
fn an_upgrade_cut_short_is_finished_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = format2_store(dir.path());
    // What the upgrade writes first, then a crash: the version is already 3 (an older broker
    // refuses the store), the legacy keys are still there.
    let mut first = WriteBatch::default();
    first.put(FORMAT_KEY.to_vec(), FORMAT_VERSION.to_be_bytes().to_vec());
    first.put(UPGRADE_INCOMPLETE_KEY.to_vec(), 2u32.to_be_bytes().to_vec());
    store.apply(first).unwrap();
    let mut part = WriteBatch::default();
    part.delete(store.scan_prefix(b"ag/").unwrap()[0].0.clone());
    store.apply(part).unwrap();

    let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();
    assert_eq!(
        ledger.opened().upgraded,
        Some(Upgraded {
            from: 2,
            to: FORMAT_VERSION,
            keys_removed: 6
        })
    );
    assert_eq!(legacy_keys(store.as_ref()), 0);
    assert!(store.get(UPGRADE_INCOMPLETE_KEY).unwrap().is_none());
    assert_eq!(
        audit::verify(store.as_ref()).unwrap(),
        Verdict::Intact {
            records: FORMAT2_AUDIT_RECORDS + 1
        }
    );
}

#[test]
fn a_store_of_a_newer_format_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = format2_store(dir.path());
        let mut b = WriteBatch::default();
        b.put(
            FORMAT_KEY.to_vec(),
            (FORMAT_VERSION + 1).to_be_bytes().to_vec(),
        );
        store.apply(b).unwrap();
        store.flush_blocking().unwrap();
    }
    let err = SledStore::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}
