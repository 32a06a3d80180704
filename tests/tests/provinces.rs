//! Simulated provinces: six provincial bureaus and the national bureau register a few hundred
//! seeded operations (drug routes, trafficking, fraud, laundering, raids) with planted
//! overlaps; the broker must alert exactly the pairs the ground truth names, to both sides,
//! and no alert may carry anything of another bureau. `SIM_SEED=N` reruns another seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use deconfliction_tests::sim::{self, RunOptions, SimConfig};
use token_spec::normalize::Selector;

fn seed() -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_260_601)
}

fn config() -> SimConfig {
    SimConfig {
        provinces: 6,
        operations: 400,
        seed: seed(),
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_provinces_alert_exactly_the_expected_pairs() {
    let started = Instant::now();
    let sim = sim::generate(&config());
    let truth = sim::expected(&sim).unwrap();
    let seed = sim.config.seed;
    assert!(
        truth.pairs.len() >= 40,
        "seed {seed}: only {} expected pairs",
        truth.pairs.len()
    );

    let outcome = tokio::time::timeout(
        Duration::from_secs(90),
        sim::run(&sim, &truth, &RunOptions::default()),
    )
    .await
    .expect("the simulation took over 90 s")
    .unwrap();
    let cmp = sim::compare(&sim, &truth, &outcome);
    println!("{}", sim::summary(&sim, &truth, &outcome, &cmp));

    assert!(
        outcome.register_errors.is_empty(),
        "seed {seed}: registrations refused: {:#?}",
        outcome.register_errors
    );
    assert!(
        cmp.ok(),
        "seed {seed}: the broker disagrees with the ground truth\n{}",
        sim::differences(&sim, &cmp, 20)
    );
    assert_eq!(cmp.found, truth.pairs.len(), "seed {seed}");
    assert_eq!(
        cmp.match_alerts,
        2 * truth.pairs.len(),
        "seed {seed}: one alert per side"
    );
    assert_eq!(
        outcome.watch_open_matches,
        Some(truth.pairs.len() as u64),
        "seed {seed}: the watch centre's count of open matches"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "seed {seed}: took {:?}",
        started.elapsed()
    );
}

/// The seed exercises what the ground truth is about: respelled people, phones and plates;
/// places inside and outside the H3 radius; touching and overlapping windows; pairs within
/// one bureau and across bureaus.
#[test]
fn the_seed_plants_every_kind_of_overlap() {
    let sim = sim::generate(&config());
    let truth = sim::expected(&sim).unwrap();
    let p = &sim.planted;
    assert!(
        p.iter()
            .any(|p| p.geo_inside == Some(true) && p.windows_overlap)
    );
    assert!(
        p.iter()
            .any(|p| p.geo_inside == Some(false) && p.windows_overlap)
    );
    assert!(p.iter().any(|p| !p.windows_overlap && !p.shared.is_empty()));
    assert!(p.iter().any(|p| {
        let (a, b) = (
            &sim.operations[p.earlier].window,
            &sim.operations[p.later].window,
        );
        a.1 == b.0
    }));
    assert!(p.iter().any(|p| p.same_agency && p.should_match(true)));
    assert!(p.iter().any(|p| !p.same_agency && p.should_match(true)));
    // Some matching pair shares a person, a phone and a plate written differently on each side.
    let respelled = |want: fn(&Selector) -> bool| {
        truth.pairs.iter().any(|((a, b), t)| {
            let (oa, ob) = (&sim.operations[*a], &sim.operations[*b]);
            t.refs_a.iter().any(|&ra| {
                let sa = &oa.selectors[ra as usize];
                want(sa)
                    && t.refs_b
                        .iter()
                        .map(|&rb| &ob.selectors[rb as usize])
                        .any(|sb| sb.kind() == sa.kind() && sb != sa)
            })
        })
    };
    assert!(respelled(|s| matches!(s, Selector::Person { .. })));
    assert!(respelled(|s| matches!(s, Selector::Phone { .. })));
    assert!(respelled(|s| matches!(s, Selector::Plate { .. })));
    assert!(sim::truth::planted_disagreements(&sim, &truth).is_empty());
}

#[test]
fn a_seed_gives_the_same_simulation() {
    let (a, b) = (sim::generate(&config()), sim::generate(&config()));
    let ids = |s: &sim::Simulation| {
        s.operations
            .iter()
            .map(|o| {
                (
                    o.operation_id.clone(),
                    format!("{:?} {:?}", o.window, o.selectors),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
}

/// The checks themselves are not vacuous: a broker that alerted nothing, or that put another
/// bureau's operation id into an alert, is caught.
#[test]
fn the_comparison_catches_missing_matches_and_leaks() {
    use deconfliction_proto::v1;
    let sim = sim::generate(&config());
    let truth = sim::expected(&sim).unwrap();
    let ((a, b), _) = truth
        .pairs
        .iter()
        .find(|((a, b), _)| sim.operations[*a].agency != sim.operations[*b].agency)
        .unwrap();
    let (oa, ob) = (&sim.operations[*a], &sim.operations[*b]);
    let alert = |agency: usize, operation_id: &str, match_id: &str| sim::run::Received {
        agency,
        alert: v1::Alert {
            seq: 1,
            at_unix: 0,
            event: Some(v1::alert::Event::Match(v1::MatchAlert {
                match_id: match_id.into(),
                operation_id: operation_id.into(),
                created: true,
                tokens: Vec::new(),
                new_tokens: 0,
            })),
        },
    };
    let mut outcome = sim::Outcome {
        alerts: Vec::new(),
        register_errors: Vec::new(),
        tokens: vec![Vec::new(); sim.operations.len()],
        timings: sim::run::Timings::default(),
        watch_open_matches: None,
        broker_files: Vec::new(),
    };
    let cmp = sim::compare(&sim, &truth, &outcome);
    assert_eq!(cmp.missing.len(), truth.pairs.len());
    assert!(!cmp.ok());

    // A match id that spells out the other side's operation id and case reference.
    let leaky = format!("{} {}", ob.operation_id, ob.case_reference);
    outcome.alerts = vec![alert(oa.agency, &oa.operation_id, &leaky)];
    let cmp = sim::compare(&sim, &truth, &outcome);
    assert_eq!(cmp.leaks.len(), 2, "{:?}", cmp.leaks);
    assert_eq!(cmp.one_sided.len(), 1);
    // An alert to A about B's operation.
    outcome.alerts = vec![alert(oa.agency, &ob.operation_id, "m")];
    let cmp = sim::compare(&sim, &truth, &outcome);
    assert_eq!(cmp.misdelivered.len(), 1);
}
