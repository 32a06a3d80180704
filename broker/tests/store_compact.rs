//! Offline compaction: the store comes back with every record and an intact audit chain, and a compaction cut short at any point is neither mistaken for an empty store nor
//! left unfinished.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use deconflict_broker::identity::AgencyId;
use deconflict_broker::ledger::audit::{self, Verdict};
use deconflict_broker::ledger::compact::{CompactError, compact, interrupted};
use deconflict_broker::ledger::records::{TokenRec, Window};
use deconflict_broker::ledger::{Ledger, NewOperation, Policy};
use deconflict_broker::store::{SledStore, Store};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const T0: i64 = 1_800_000_000;
const OPERATIONS: u64 = 2_000;

/// A store written in place, as a broker writes it: operations of 8 random-looking tokens.
fn write_store(data: &Path) -> u64 {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data.join("store")).unwrap());
    let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();
    let agency = AgencyId::parse("yn-psb").unwrap();
    for i in 0..OPERATIONS {
        let tokens = (0..8u64)
            .map(|k| TokenRec {
                stored: Sha256::digest((i * 8 + k).to_be_bytes()).into(),
                kind: 2,
                local_ref: k,
            })
            .collect();
        let op = NewOperation {
            id: Uuid::from_u128(u128::from(i) + 1),
            window: Window {
                start: T0,
                end: T0 + 86_400,
            },
            tokens,
            case_reference: String::new(),
            earlier_digests: Vec::new(),
        };
        let _ = ledger.register(&agency, op, T0).unwrap();
    }
    store.flush_blocking().unwrap();
    match audit::verify(store.as_ref()).unwrap() {
        Verdict::Intact { records } => records,
        v => panic!("{v:?}"),
    }
}

fn open_ledger(data: &Path) -> (Arc<dyn Store>, Ledger) {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&data.join("store")).unwrap());
    let ledger = Ledger::open(store.clone(), Policy::default()).unwrap();
    (store, ledger)
}

#[test]
fn a_compacted_store_holds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let audit_records = write_store(dir.path());

    let done = compact(dir.path(), false, T0 + 60).unwrap();
    // How much smaller is measured at scale by deconflict-bench (a store this small is mostly
    // sled's fixed segments); here, what must hold at any size.
    assert!(!done.resumed);
    assert!(done.bytes_before > 0 && done.bytes_after > 0);
    assert_eq!(done.records, audit_records + OPERATIONS * 9 + 2);
    assert!(!dir.path().join("store.old").exists());
    assert!(!dir.path().join("store.compacting").exists());

    let (store, ledger) = open_ledger(dir.path());
    assert_eq!(ledger.opened().indexes.open_operations, OPERATIONS);
    assert_eq!(ledger.opened().indexes.open_tokens, OPERATIONS * 8);
    let agency = AgencyId::parse("yn-psb").unwrap();
    let (page, _) = ledger.list(&agency, false, None, 5).unwrap();
    assert_eq!(page.len(), 5);
    // The compaction's own record follows the copied chain.
    assert_eq!(
        audit::verify(store.as_ref()).unwrap(),
        Verdict::Intact {
            records: audit_records + 1
        }
    );
    let mut out = Vec::new();
    audit::export(store.as_ref(), audit_records + 1, &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("store_compact"));
}

#[test]
fn a_copy_cut_short_is_made_again_and_the_store_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    // What a crash during the copy leaves: a partial folder, no mark.
    let work = dir.path().join("store.compacting");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("db"), b"half a copy").unwrap();
    assert_eq!(interrupted(dir.path()), None, "the store is still there");

    let done = compact(dir.path(), true, T0).unwrap();
    assert!(!done.resumed);
    assert!(dir.path().join("store.old").exists(), "kept as asked");
    let (_, ledger) = open_ledger(dir.path());
    assert_eq!(ledger.opened().indexes.open_operations, OPERATIONS);
    drop(ledger);

    // A second compaction will not overwrite the kept copy.
    let err = compact(dir.path(), false, T0).unwrap_err();
    assert!(matches!(err, CompactError::OldInTheWay(_)), "{err}");
}

#[test]
fn a_swap_cut_short_stops_the_broker_until_it_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    // Compact keeping the old store, then undo the second rename: the state a crash between
    // the two renames leaves (the checked copy, marked, beside the parked original).
    compact(dir.path(), true, T0).unwrap();
    let work = dir.path().join("store.compacting");
    std::fs::rename(dir.path().join("store"), &work).unwrap();
    std::fs::write(work.join("COMPLETE"), b"checked\n").unwrap();

    let reason = interrupted(dir.path()).expect("a missing store must stop the broker");
    assert!(reason.contains("store compact"), "{reason}");

    let done = compact(dir.path(), false, T0).unwrap();
    assert!(done.resumed);
    assert_eq!(interrupted(dir.path()), None);
    assert!(!dir.path().join("store.old").exists());
    let (_, ledger) = open_ledger(dir.path());
    assert_eq!(ledger.opened().indexes.open_operations, OPERATIONS);
}

#[test]
fn nothing_to_compact_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let err = compact(dir.path(), false, T0).unwrap_err();
    assert!(matches!(err, CompactError::NoStore(_)));
    assert!(err.to_string().contains("nothing to compact"), "{err}");
}

#[test]
fn the_command_compacts_a_stopped_broker_and_refuses_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_store(&data);
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!("[server]\ndata_dir = {:?}\n", data.to_str().unwrap()),
    )
    .unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_deconflict-broker"))
            .args(["store", "compact", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    {
        // A store held open (here by this process, as by a running broker): refused, untouched.
        let (_store, _ledger) = open_ledger(&data);
        let (ok, text) = run();
        assert!(!ok, "{text}");
        assert!(text.contains("stop it first"), "{text}");
        assert!(!data.join("store.compacting").exists());
    }
    let (ok, text) = run();
    assert!(ok, "{text}");
    assert!(
        text.contains("compacted") && text.contains("audit chain intact"),
        "{text}"
    );
    let (_, ledger) = open_ledger(&data);
    assert_eq!(ledger.opened().indexes.open_operations, OPERATIONS);
}
