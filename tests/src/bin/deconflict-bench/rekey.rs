//! The pepper re-key's cost, for the maintenance window it needs: records re-keyed per second
//! against a plain copy of the same store (what `admin backup` does), both in this process.

use std::time::Instant;

use deconflict_broker::ledger::rekey::rekey;
use deconflict_broker::secrets::pepper::{Pepper, PepperLayer};
use deconflict_broker::store::{SledStore, Store};

use crate::harness::{Row, preload};

pub(crate) fn bench_rekey(tokens: u64, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let pepper = Pepper::from_bytes([3; 32]);
    let _ = preload(dir.path(), &pepper, tokens);
    let source = SledStore::open(&dir.path().join("store")).unwrap();

    let started = Instant::now();
    let copied = source.export_to(&dir.path().join("copy")).unwrap();
    let copy_secs = started.elapsed().as_secs_f64();

    let target = SledStore::open(&dir.path().join("rekeyed")).unwrap();
    let started = Instant::now();
    let report = rekey(
        &source,
        &target,
        &pepper,
        &PepperLayer::from_bytes([4; 32]),
        0,
    )
    .unwrap();
    let rekey_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "    {tokens} stored tokens: copy {copied} records in {copy_secs:.2} s, re-key {} records \
         in {rekey_secs:.2} s",
        report.records
    );
    let (rate, base) = (
        report.records as f64 / rekey_secs,
        copied as f64 / copy_secs,
    );
    rows.push(Row::measured(
        format!("pepper re-key, {tokens} tokens (records/s vs store copy)"),
        1,
        rate,
        base,
        &[],
    ));
}
