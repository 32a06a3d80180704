//! No plaintext at the broker, proven on a simulated federation: after a run, the broker's
//! data folder and secrets, and everything the broker and its token service logged (captured
//! at debug level), hold no selector text, canonical form (nor its identifying fields alone:
//! a resident ID's 18 characters, a card's digits, a permit's number, a name in Pinyin) or raw
//! token of any bureau; the alerts are scanned by the simulation itself. The federation holds
//! every kind of the spec's 2026-12-01 revision, so the scan covers them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_tests::scan::LogCapture;
use deconfliction_tests::sim::{self, RunOptions, SimConfig};
use token_spec::normalize::SelectorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_federation_leaves_no_plaintext_at_the_broker() {
    let capture = LogCapture::install("debug,h2=info,hyper=info,rustls=info,tower=info,sled=info");
    let sim = sim::generate(&SimConfig {
        provinces: 5,
        operations: 200,
        seed: 7,
        ..SimConfig::default()
    });
    let truth = sim::expected(&sim).unwrap();
    let forms = || truth.forms.iter().flatten();
    for kind in [
        SelectorKind::Cnid,
        SelectorKind::Passport,
        SelectorKind::Permit,
        SelectorKind::Card,
        SelectorKind::Org,
    ] {
        assert!(forms().any(|f| f.kind == kind), "no {kind:?} to scan for");
    }
    let pinyin = forms()
        .filter(|f| f.wire == deconfliction_proto::v1::SelectorKind::PersonPinyin)
        // Shorter words than 8 bytes are left out of the broker's scan (chance matches).
        .find(|f| sim::leak::identifying_fields(&f.bytes)[0].len() >= 8)
        .expect("no name in Pinyin to scan for");
    let opts = RunOptions {
        collect_broker_files: true,
        ..RunOptions::default()
    };
    let outcome = tokio::time::timeout(Duration::from_secs(90), sim::run(&sim, &truth, &opts))
        .await
        .unwrap()
        .unwrap();
    assert!(
        outcome.register_errors.is_empty(),
        "{:?}",
        outcome.register_errors
    );
    assert!(!truth.pairs.is_empty());
    // The scanner itself finds a planted canonical form and a planted token, and the bare
    // words of a name in Pinyin and the bare 18 characters of a resident ID.
    let mut planted = b"noise ".to_vec();
    planted.extend_from_slice(&truth.forms[0][0].bytes);
    planted.extend_from_slice(&outcome.tokens[0][0]);
    let found = sim::leak::scan_broker_bytes(&sim, &truth, &outcome, "planted", &planted);
    assert!(
        found.len() >= 2,
        "the scanner missed planted plaintext: {found:?}"
    );
    let cnid = forms()
        .find(|f| f.kind == SelectorKind::Cnid)
        .map(|f| sim::leak::identifying_fields(&f.bytes)[0].to_vec())
        .unwrap();
    for bare in [
        sim::leak::identifying_fields(&pinyin.bytes)[0].to_vec(),
        cnid,
    ] {
        let mut hay = b"noise ".to_vec();
        hay.extend_from_slice(&bare);
        let found = sim::leak::scan_broker_bytes(&sim, &truth, &outcome, "planted", &hay);
        assert!(
            !found.is_empty(),
            "the scanner missed {:?}",
            String::from_utf8_lossy(&bare)
        );
    }
    let mut leaks = sim::leak::scan(&sim, &truth, &outcome);
    assert!(
        outcome
            .broker_files
            .iter()
            .any(|(name, _)| name.contains("store")),
        "no store files collected: the scan would prove nothing"
    );
    for (name, bytes) in &outcome.broker_files {
        leaks.extend(sim::leak::scan_broker_bytes(
            &sim, &truth, &outcome, name, bytes,
        ));
    }
    let logs = capture.bytes();
    assert!(
        logs.len() > 10_000,
        "the run logged little: the scan would prove little"
    );
    leaks.extend(sim::leak::scan_broker_bytes(
        &sim, &truth, &outcome, "the logs", &logs,
    ));
    assert!(
        leaks.is_empty(),
        "{} leaks, e.g.:\n{}",
        leaks.len(),
        leaks
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
