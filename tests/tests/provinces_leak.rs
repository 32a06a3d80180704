//! No plaintext at the broker, proven on a simulated federation: after a run, the broker's
//! data folder and secrets, and everything the broker and its token service logged (captured
//! at debug level), hold no selector text, canonical form or raw token of any bureau; the
//! alerts are scanned by the simulation itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_tests::scan::LogCapture;
use deconfliction_tests::sim::{self, RunOptions, SimConfig};

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
    // The scanner itself finds a planted canonical form and a planted token.
    let mut planted = b"noise ".to_vec();
    planted.extend_from_slice(&truth.forms[0][0].bytes);
    planted.extend_from_slice(&outcome.tokens[0][0]);
    let found = sim::leak::scan_broker_bytes(&sim, &truth, &outcome, "planted", &planted);
    assert!(
        found.len() >= 2,
        "the scanner missed planted plaintext: {found:?}"
    );
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
