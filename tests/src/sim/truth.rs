//! Ground truth, computed without the broker: which pairs of operations must match, from
//! their canonical forms (token spec dcf1) and their windows alone. A Han name's Pinyin form
//! is one of its canonical forms like any other: a Latin spelling matches it there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deconfliction_proto::v1;
use token_spec::normalize::{
    CanonicalForm, FederationParams, Form as FormTag, SelectorKind, canonical_forms_tagged,
};

use crate::wire_kind;

use super::generate::{SimOperation, Simulation};

/// One canonical form an operation registers, with the `local_ref` (selector index) its token
/// entry carries.
#[derive(Debug, Clone)]
pub struct Form {
    pub bytes: Vec<u8>,
    pub local_ref: u64,
    pub kind: SelectorKind,
    /// The kind its token entry carries (as agencyd assigns it: a person's Pinyin form is
    /// `PERSON_PINYIN`, under the same `local_ref` as the name as written).
    pub wire: v1::SelectorKind,
}

/// The wire kind of one canonical form of a selector of `kind` (agencyd's rule).
pub fn form_wire_kind(kind: SelectorKind, form: FormTag) -> v1::SelectorKind {
    match (kind, form) {
        (SelectorKind::Person, FormTag::Pinyin) => v1::SelectorKind::PersonPinyin,
        _ => wire_kind(kind),
    }
}

/// The tokens a side's alert names: `local_ref` and wire kind of each.
pub type NamedTokens = BTreeSet<(u64, i32)>;

/// What a pair of operations must produce: one match, and on each side an alert naming
/// exactly these of its own selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairTruth {
    /// Selector indices of the first (lower-index) operation that the pair shares (a
    /// selector sharing two forms, a Han name's as written and in Pinyin, is one).
    pub refs_a: BTreeSet<u64>,
    pub refs_b: BTreeSet<u64>,
    /// The shared tokens of each side as its alert names them: `local_ref` and wire kind.
    pub tokens_a: NamedTokens,
    pub tokens_b: NamedTokens,
}

#[derive(Debug, Clone)]
pub struct Truth {
    /// Per operation, its canonical forms, each once (a repeat keeps the first selector).
    pub forms: Vec<Vec<Form>>,
    /// Unordered pairs (lower index first) that must match.
    pub pairs: BTreeMap<(usize, usize), PairTruth>,
    pub distinct_forms: usize,
}

impl Truth {
    pub fn token_count(&self) -> usize {
        self.forms.iter().map(Vec::len).sum()
    }
}

/// The canonical forms of one operation, repeats removed.
pub fn operation_forms(op: &SimOperation) -> anyhow::Result<Vec<Form>> {
    let params = FederationParams::default();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, s) in op.selectors.iter().enumerate() {
        let forms = canonical_forms_tagged(s, &params)
            .map_err(|e| anyhow::anyhow!("{} selector {i} {s:?}: {e}", op.case_reference))?;
        for CanonicalForm { bytes, form } in forms {
            if seen.insert(bytes.clone()) {
                out.push(Form {
                    bytes,
                    local_ref: i as u64,
                    kind: s.kind(),
                    wire: form_wire_kind(s.kind(), form),
                });
            }
        }
    }
    Ok(out)
}

pub fn overlap(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Computes the expected matches of `sim`.
pub fn expected(sim: &Simulation) -> anyhow::Result<Truth> {
    let ops = &sim.operations;
    let forms: Vec<Vec<Form>> = ops.iter().map(operation_forms).collect::<Result<_, _>>()?;
    let mut index: HashMap<&[u8], Vec<(usize, &Form)>> = HashMap::new();
    for (op, fs) in forms.iter().enumerate() {
        for f in fs {
            index.entry(&f.bytes).or_default().push((op, f));
        }
    }
    let mut pairs: BTreeMap<(usize, usize), PairTruth> = BTreeMap::new();
    for holders in index.values() {
        for (i, &(a, fa)) in holders.iter().enumerate() {
            for &(b, fb) in &holders[i + 1..] {
                let (oa, ob) = (&ops[a], &ops[b]);
                if !overlap(oa.window, ob.window) {
                    continue;
                }
                if oa.agency == ob.agency && !sim.config.match_same_agency {
                    continue;
                }
                // Holders are pushed in operation order, so a < b.
                let p = pairs.entry((a, b)).or_default();
                p.refs_a.insert(fa.local_ref);
                p.refs_b.insert(fb.local_ref);
                p.tokens_a.insert((fa.local_ref, fa.wire as i32));
                p.tokens_b.insert((fb.local_ref, fb.wire as i32));
            }
        }
    }
    Ok(Truth {
        distinct_forms: index.len(),
        forms,
        pairs,
    })
}

/// Planted pairs whose intent (the generator's idea of "same target" / "next door" / "a few
/// km off") disagrees with the canonical forms: a normalization or H3 surprise.
pub fn planted_disagreements(sim: &Simulation, truth: &Truth) -> Vec<String> {
    sim.planted
        .iter()
        .filter_map(|p| {
            let want = p.should_match(sim.config.match_same_agency);
            let got = truth.pairs.contains_key(&(p.earlier, p.later));
            (want != got).then(|| {
                let (a, b) = (&sim.operations[p.earlier], &sim.operations[p.later]);
                format!(
                    "planted {} -> {} (shared {:?}, geo inside {:?}, overlap {}): intended {}, canonical forms say {}\n    {:?}\n    {:?}",
                    a.case_reference,
                    b.case_reference,
                    p.shared,
                    p.geo_inside,
                    p.windows_overlap,
                    if want { "match" } else { "no match" },
                    if got { "match" } else { "no match" },
                    a.selectors,
                    b.selectors,
                )
            })
        })
        .collect()
}
