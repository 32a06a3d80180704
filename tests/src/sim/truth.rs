//! Ground truth, computed without the broker: which pairs of operations must match, from
//! their canonical forms (token spec dcf1) and their windows alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use token_spec::normalize::{FederationParams, SelectorKind, canonical_forms};

use super::generate::{SimOperation, Simulation};

/// One canonical form an operation registers, with the `local_ref` (selector index) its token
/// entry carries.
#[derive(Debug, Clone)]
pub struct Form {
    pub bytes: Vec<u8>,
    pub local_ref: u64,
    pub kind: SelectorKind,
}

/// What a pair of operations must produce: one match, and on each side an alert naming
/// exactly these of its own selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairTruth {
    /// Selector indices of the first (lower-index) operation that the pair shares.
    pub refs_a: BTreeSet<u64>,
    pub refs_b: BTreeSet<u64>,
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
        let forms = canonical_forms(s, &params)
            .map_err(|e| anyhow::anyhow!("{} selector {i} {s:?}: {e}", op.case_reference))?;
        for bytes in forms {
            if seen.insert(bytes.clone()) {
                out.push(Form {
                    bytes,
                    local_ref: i as u64,
                    kind: s.kind(),
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
    let mut index: HashMap<&[u8], Vec<(usize, u64)>> = HashMap::new();
    for (op, fs) in forms.iter().enumerate() {
        for f in fs {
            index.entry(&f.bytes).or_default().push((op, f.local_ref));
        }
    }
    let mut pairs: BTreeMap<(usize, usize), PairTruth> = BTreeMap::new();
    for holders in index.values() {
        for (i, &(a, ref_a)) in holders.iter().enumerate() {
            for &(b, ref_b) in &holders[i + 1..] {
                let (oa, ob) = (&ops[a], &ops[b]);
                if !overlap(oa.window, ob.window) {
                    continue;
                }
                if oa.agency == ob.agency && !sim.config.match_same_agency {
                    continue;
                }
                // Holders are pushed in operation order, so a < b.
                let p = pairs.entry((a, b)).or_default();
                p.refs_a.insert(ref_a);
                p.refs_b.insert(ref_b);
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
