//! Compares what the broker alerted with the ground truth, and writes the summary. A side's
//! shared selectors are counted by `local_ref` (a Han name sharing both its forms is one
//! selector); its shared tokens, by `local_ref` and kind, must be exactly the truth's too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::time::Duration;

use deconfliction_proto::v1::alert::Event;

use super::generate::{Scenario, Simulation};
use super::overlap::planted_counts;
use super::run::Outcome;
use super::truth::{NamedTokens, Truth, planted_disagreements};

type Pair = (usize, usize);

#[derive(Debug, Default)]
pub struct Comparison {
    pub expected: usize,
    pub expected_same_agency: usize,
    /// Pairs of operations alerted on both sides under one match id.
    pub found: usize,
    pub missing: Vec<Pair>,
    pub unexpected: Vec<Pair>,
    /// Match ids alerted to one operation only.
    pub one_sided: Vec<String>,
    /// Pairs alerted under more than one match id.
    pub duplicates: Vec<Pair>,
    /// Alerts naming other selectors of their operation than the pair shares, or other
    /// kinds of their tokens.
    pub wrong_refs: Vec<String>,
    /// Alerts naming an operation that is not the recipient's.
    pub misdelivered: Vec<String>,
    pub match_alerts: usize,
    pub other_alerts: usize,
    pub leaks: Vec<String>,
    pub planted_disagreements: Vec<String>,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.one_sided.is_empty()
            && self.duplicates.is_empty()
            && self.wrong_refs.is_empty()
            && self.misdelivered.is_empty()
            && self.leaks.is_empty()
            && self.planted_disagreements.is_empty()
    }
}

pub fn compare(sim: &Simulation, truth: &Truth, outcome: &Outcome) -> Comparison {
    let by_id: HashMap<&str, usize> = sim
        .operations
        .iter()
        .enumerate()
        .map(|(i, op)| (op.operation_id.as_str(), i))
        .collect();
    let mut c = Comparison {
        expected: truth.pairs.len(),
        expected_same_agency: truth
            .pairs
            .keys()
            .filter(|(a, b)| sim.operations[*a].agency == sim.operations[*b].agency)
            .count(),
        ..Comparison::default()
    };
    // match id -> operation -> its tokens (local ref, kind) named so far
    let mut matches: BTreeMap<&str, BTreeMap<usize, NamedTokens>> = BTreeMap::new();
    for r in &outcome.alerts {
        let Some(Event::Match(m)) = &r.alert.event else {
            c.other_alerts += 1;
            continue;
        };
        c.match_alerts += 1;
        match by_id.get(m.operation_id.as_str()) {
            Some(&op) if sim.operations[op].agency == r.agency => {
                let refs = matches
                    .entry(&m.match_id)
                    .or_default()
                    .entry(op)
                    .or_default();
                refs.extend(m.tokens.iter().map(|t| (t.local_ref, t.kind)));
            }
            _ => c.misdelivered.push(format!(
                "alert seq {} to {} names operation {}",
                r.alert.seq, sim.agencies[r.agency].id, m.operation_id
            )),
        }
    }
    let mut found: BTreeMap<Pair, Vec<&str>> = BTreeMap::new();
    let mut refs: HashMap<Pair, [NamedTokens; 2]> = HashMap::new();
    for (id, sides) in &matches {
        let ops: Vec<usize> = sides.keys().copied().collect();
        match ops[..] {
            [a, b] => {
                found.entry((a, b)).or_default().push(id);
                refs.insert((a, b), [sides[&a].clone(), sides[&b].clone()]);
            }
            [a] => c
                .one_sided
                .push(format!("match {id} alerted only to {}", describe(sim, a))),
            _ => c
                .misdelivered
                .push(format!("match {id} spans operations {ops:?}")),
        }
    }
    c.found = found.len();
    for (pair, ids) in &found {
        if ids.len() > 1 {
            c.duplicates.push(*pair);
        }
        match truth.pairs.get(pair) {
            None => c.unexpected.push(*pair),
            Some(t) => {
                let [ta, tb] = &refs[pair];
                let selectors =
                    |ts: &NamedTokens| -> BTreeSet<u64> { ts.iter().map(|t| t.0).collect() };
                let (ra, rb) = (selectors(ta), selectors(tb));
                if ra != t.refs_a || rb != t.refs_b {
                    c.wrong_refs.push(format!(
                        "{}: alerts name selectors {ra:?} / {rb:?}, the pair shares {:?} / {:?}",
                        describe_pair(sim, *pair),
                        t.refs_a,
                        t.refs_b
                    ));
                } else if *ta != t.tokens_a || *tb != t.tokens_b {
                    c.wrong_refs.push(format!(
                        "{}: alerts name tokens (selector, kind) {ta:?} / {tb:?}, the pair shares {:?} / {:?}",
                        describe_pair(sim, *pair),
                        t.tokens_a,
                        t.tokens_b
                    ));
                }
            }
        }
    }
    c.missing = truth
        .pairs
        .keys()
        .filter(|p| !found.contains_key(p))
        .copied()
        .collect();
    c.leaks = super::leak::scan(sim, truth, outcome);
    c.planted_disagreements = planted_disagreements(sim, truth);
    c
}

fn describe(sim: &Simulation, op: usize) -> String {
    let o = &sim.operations[op];
    format!(
        "{} ({}, {})",
        o.case_reference, sim.agencies[o.agency].id, o.operation_id
    )
}

/// Both operations of a pair, with their windows and selectors (for failure messages).
pub fn describe_pair(sim: &Simulation, (a, b): Pair) -> String {
    let d = |i: usize| {
        let o = &sim.operations[i];
        format!(
            "{} window {:?} {:?}",
            describe(sim, i),
            o.window,
            o.selectors
        )
    };
    format!("\n    {}\n    {}", d(a), d(b))
}

/// Everything that differs, for a failing test (at most `limit` lines of each kind).
pub fn differences(sim: &Simulation, c: &Comparison, limit: usize) -> String {
    let mut out = String::new();
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            let _ = writeln!(out, "{title} ({}):", lines.len());
            for l in lines.iter().take(limit) {
                let _ = writeln!(out, "  {l}");
            }
        }
    };
    let pairs = |ps: &[Pair]| {
        ps.iter()
            .map(|p| describe_pair(sim, *p))
            .collect::<Vec<_>>()
    };
    section("missing matches", pairs(&c.missing));
    section("unexpected matches", pairs(&c.unexpected));
    section("duplicate matches", pairs(&c.duplicates));
    section("one-sided matches", c.one_sided.clone());
    section("wrong local refs", c.wrong_refs.clone());
    section("misdelivered alerts", c.misdelivered.clone());
    section("leaks", c.leaks.clone());
    section(
        "planted intent vs canonical forms",
        c.planted_disagreements.clone(),
    );
    out
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// The summary a person reads after a run.
pub fn summary(sim: &Simulation, truth: &Truth, outcome: &Outcome, c: &Comparison) -> String {
    let mut s = String::new();
    let n = sim.operations.len();
    let provinces = sim.agencies.len() - 1;
    let mix: Vec<String> = Scenario::ALL
        .iter()
        .map(|sc| {
            let k = sim.operations.iter().filter(|o| o.scenario == *sc).count();
            format!("{} {k}", sc.tag())
        })
        .collect();
    let should = sim
        .planted
        .iter()
        .filter(|p| p.should_match(sim.config.match_same_agency))
        .count();
    let selectors: usize = sim.operations.iter().map(|o| o.selectors.len()).sum();
    let t = &outcome.timings;
    let _ = writeln!(s, "Simulated provinces: seed {}", sim.config.seed);
    let _ = writeln!(
        s,
        "  federation        {provinces} provincial bureaus + national bureau + watch centre"
    );
    let _ = writeln!(s, "  operations        {n} ({})", mix.join(", "));
    let _ = writeln!(
        s,
        "  planted           {} follow-ups ({should} should match, {} should not)",
        sim.planted.len(),
        sim.planted.len() - should
    );
    let overlaps: Vec<String> = planted_counts(sim)
        .into_iter()
        .map(|(o, k)| format!("{} {k}", o.tag()))
        .collect();
    let _ = writeln!(s, "  shared by         {}", overlaps.join(", "));
    let _ = writeln!(
        s,
        "  selectors         {selectors}, tokens {} ({} distinct canonical forms)",
        truth.token_count(),
        truth.distinct_forms
    );
    let _ = writeln!(
        s,
        "  matches expected  {} ({} across bureaus, {} within one bureau)",
        c.expected,
        c.expected - c.expected_same_agency,
        c.expected_same_agency
    );
    let _ = writeln!(s, "          found     {}", c.found);
    let _ = writeln!(s, "          missing   {}", c.missing.len());
    let _ = writeln!(s, "          unexpected {}", c.unexpected.len());
    let _ = writeln!(
        s,
        "          one-sided {}, duplicate {}, wrong selectors {}",
        c.one_sided.len(),
        c.duplicates.len(),
        c.wrong_refs.len()
    );
    if let Some(m) = outcome.watch_open_matches {
        let _ = writeln!(s, "  watch centre      {m} open matches");
    }
    let _ = writeln!(
        s,
        "  alerts            {} match alerts, {} other; misdelivered {}, leaks {}",
        c.match_alerts,
        c.other_alerts,
        c.misdelivered.len(),
        c.leaks.len()
    );
    let _ = writeln!(s, "  registration errors {}", outcome.register_errors.len());
    let _ = writeln!(
        s,
        "  time              setup {}, derive {} ({:.0} tokens/s), register {} ({:.0} ops/s), alert delivery +{}, total {}",
        secs(t.setup),
        secs(t.derive),
        rate(truth.token_count(), t.derive),
        secs(t.register),
        rate(n, t.register),
        secs(t.delivery),
        secs(t.total)
    );
    let ok = c.ok() && outcome.register_errors.is_empty();
    let _ = writeln!(
        s,
        "  result            {}",
        if ok { "OK" } else { "MISMATCH" }
    );
    s
}
