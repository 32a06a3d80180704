//! The Mekong scenario in a joint federation: Yunnan and Guangxi bureaus with Lao, Myanmar,
//! Thai and Vietnamese units share cases both ways, Chinese suspects known abroad by the Latin
//! spelling of their names; every operation is registered at the joint broker under tokens
//! made with both countries' key shares, and the broker must alert exactly the pairs the
//! ground truth names (computed from canonical forms and windows alone), to both sides, naming
//! exactly the shared selectors. `SIM_SEED=N` reruns another seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deconfliction_tests::sim::{self, RunOptions, mekong};

fn seed() -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_205)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_joint_broker_agrees_with_the_ground_truth_across_the_border() {
    let seed = seed();
    let sim = mekong::generate(seed, 150);
    let truth = sim::expected(&sim).unwrap();
    let cross_border = truth
        .pairs
        .keys()
        .filter(|(a, b)| {
            let china = |i: usize| sim.operations[i].agency < mekong::CHINA.len();
            china(*a) != china(*b)
        })
        .count();
    assert!(
        cross_border >= 30,
        "seed {seed}: only {cross_border} cross-border pairs of {}",
        truth.pairs.len()
    );
    // Some of them only through a Han name's Pinyin form meeting its Latin spelling.
    let pinyin = truth.pairs.values().any(|t| {
        t.tokens_a
            .iter()
            .chain(&t.tokens_b)
            .any(|(_, kind)| *kind == deconfliction_proto::v1::SelectorKind::PersonPinyin as i32)
    });
    assert!(pinyin, "seed {seed}: no pair through a Pinyin form");

    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        mekong::run(&sim, &truth, &RunOptions::default()),
    )
    .await
    .expect("the Mekong simulation took over 120 s")
    .unwrap();
    assert!(
        outcome.register_errors.is_empty(),
        "seed {seed}: registrations refused: {:#?}",
        outcome.register_errors
    );
    let cmp = sim::compare(&sim, &truth, &outcome);
    assert!(
        cmp.ok(),
        "seed {seed}: the joint broker disagrees with the ground truth\n{}",
        sim::differences(&sim, &cmp, 20)
    );
    assert_eq!(cmp.found, truth.pairs.len(), "seed {seed}");
    assert_eq!(cmp.match_alerts, 2 * truth.pairs.len(), "seed {seed}");
    // No alert carries anything of the other side: no selector text, no canonical form.
    let leaks = sim::leak::scan(&sim, &truth, &outcome);
    assert!(leaks.is_empty(), "seed {seed}: {leaks:#?}");
    println!(
        "seed {seed}: {} operations, {} pairs ({cross_border} across the border), {} tokens, {:.1} s",
        sim.operations.len(),
        truth.pairs.len(),
        truth.token_count(),
        outcome.timings.total.as_secs_f64()
    );
}
