//! Simulated provinces: six provincial bureaus and the national bureau register a few hundred
//! seeded operations (drug routes, trafficking, fraud, laundering, raids) with planted
//! overlaps, among them those of the token spec's 2026-12-01 revision (a resident ID against
//! its 15-digit number, a permit with and without its renewal count, card separators, credit
//! codes, a Han name against its Pinyin in Latin letters); the broker must alert exactly the
//! pairs the ground truth names, to both sides, naming exactly the shared selectors and the
//! kinds of their tokens, and no alert may carry anything of another bureau. `SIM_SEED=N`
//! reruns another seed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use deconfliction_proto::v1::SelectorKind as WireKind;
use deconfliction_tests::sim::ident::Ident;
use deconfliction_tests::sim::overlap::{Overlap, planted_counts};
use deconfliction_tests::sim::{self, RunOptions, SimConfig, docs};
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

/// Each kind of overlap the spec's 2026-12-01 revision brought is planted at least once in a
/// pair that must match, and a Han name meeting its Latin spelling matches on the Han side
/// through a `PERSON_PINYIN` token only.
#[test]
fn the_seed_plants_every_overlap_of_the_revision() {
    let sim = sim::generate(&config());
    let truth = sim::expected(&sim).unwrap();
    let counts = planted_counts(&sim);
    println!("{counts:?}");
    for kind in Overlap::REVISION {
        assert!(
            sim.planted
                .iter()
                .any(|p| p.shared.contains(&kind) && p.should_match(true)),
            "seed {}: no matching pair shares a {} ({counts:?})",
            sim.config.seed,
            kind.tag()
        );
    }
    // The Han side of such a pair names a selector through its Pinyin token alone.
    let (pinyin, person) = (WireKind::PersonPinyin as i32, WireKind::Person as i32);
    let only_pinyin = |tokens: &sim::truth::NamedTokens| {
        tokens
            .iter()
            .any(|&(r, k)| k == pinyin && !tokens.contains(&(r, person)))
    };
    assert!(
        sim.planted
            .iter()
            .filter(|p| p.shared.contains(&Overlap::HanVsLatin) && p.should_match(true))
            .map(|p| &truth.pairs[&(p.earlier, p.later)])
            .any(|t| only_pinyin(&t.tokens_a) || only_pinyin(&t.tokens_b)),
        "no selector matched in Pinyin only"
    );
}

/// The generated documents are numbered as the standards say (the spec's own examples).
#[test]
fn documents_carry_the_standards_check_characters() {
    assert_eq!(docs::cnid_check("11010519491231002"), 'X');
    assert_eq!(
        docs::first_generation("11010519491231002X").as_deref(),
        Some("110105491231002")
    );
    assert_eq!(docs::first_generation("11010520011231002X"), None);
    assert_eq!(docs::org_code_check("M000100Y"), '4');
    assert_eq!(docs::uscc_check("91350100M000100Y4"), '3');
    // A bureau's own targets and companies are numbered in its province (GB/T 2260 code).
    let sim = sim::generate(&config());
    let followed: std::collections::HashSet<usize> = sim.planted.iter().map(|p| p.later).collect();
    let mut seen = 0;
    for (i, op) in sim.operations.iter().enumerate() {
        let Some(home) = sim.agencies[op.agency].province else {
            continue;
        };
        if followed.contains(&i) {
            continue;
        }
        let gb = format!("{:02}", home.gb_code());
        for ident in &op.idents {
            match ident {
                Ident::Cnid(id) => assert!(id.starts_with(&gb), "{id} from {}", home.key),
                Ident::Org(code) => assert_eq!(&code[2..4], gb, "{code} from {}", home.key),
                Ident::Card(pan) => {
                    assert!(
                        pan.starts_with("62") && (16..=19).contains(&pan.len()),
                        "{pan}"
                    )
                }
                _ => continue,
            }
            seen += 1;
        }
    }
    assert!(seen > 50, "only {seen} documents checked");
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
            incarnation: 1,
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
    // Both sides alerted with the shared selectors, but a token's kind not as registered
    // (a Pinyin-form token echoed as a plain person, say).
    let t = &truth.pairs[&(*a, *b)];
    let named = |tokens: &sim::truth::NamedTokens, wrong: bool| {
        tokens
            .iter()
            .enumerate()
            .map(|(i, &(local_ref, kind))| v1::MatchedToken {
                kind: if wrong && i == 0 { kind + 1 } else { kind },
                local_ref,
            })
            .collect::<Vec<_>>()
    };
    let with_tokens = |agency, id: &str, tokens| {
        let mut r = alert(agency, id, "m");
        if let Some(v1::alert::Event::Match(m)) = &mut r.alert.event {
            m.tokens = tokens;
        }
        r
    };
    for wrong in [false, true] {
        outcome.alerts = vec![
            with_tokens(oa.agency, &oa.operation_id, named(&t.tokens_a, false)),
            with_tokens(ob.agency, &ob.operation_id, named(&t.tokens_b, wrong)),
        ];
        let cmp = sim::compare(&sim, &truth, &outcome);
        assert_eq!(
            cmp.wrong_refs.len(),
            usize::from(wrong),
            "{:?}",
            cmp.wrong_refs
        );
    }
}
