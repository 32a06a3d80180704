//! What kind of overlap a planted follow-up carries, read off the two ways its shared
//! identifier was written (so that a test can ask that the seed plants each kind the spec
//! revision is about, and a run can say how many of each it planted).

use std::collections::BTreeMap;

use token_spec::normalize::{Selector, SelectorKind};

use super::generate::Simulation;

/// How the two sides of a planted overlap wrote the identifier they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Overlap {
    /// Of this kind, written alike or respelled as the spec allows.
    Respelled(SelectorKind),
    /// A Han name on one side, its Pinyin in Latin letters on the other (the foreign
    /// partner's spelling): equal in the name's second canonical form only.
    HanVsLatin,
    /// A resident ID as 18 characters on one side, as its 15-digit first-generation number
    /// on the other.
    CnidFirstGeneration,
    /// A travel permit with its renewal count on one side only.
    PermitRenewal,
    /// A card number written with spaces or dashes on one side, otherwise on the other.
    CardSeparators,
}

impl Overlap {
    /// The kinds the spec's 2026-12-01 revision brought, each a seed should plant.
    pub const REVISION: [Overlap; 7] = [
        Self::HanVsLatin,
        Self::CnidFirstGeneration,
        Self::PermitRenewal,
        Self::CardSeparators,
        Self::Respelled(SelectorKind::Cnid),
        Self::Respelled(SelectorKind::Org),
        Self::Respelled(SelectorKind::Passport),
    ];

    pub fn tag(self) -> &'static str {
        match self {
            Self::Respelled(kind) => kind.as_str(),
            Self::HanVsLatin => "han_vs_latin",
            Self::CnidFirstGeneration => "cnid_15_vs_18",
            Self::PermitRenewal => "permit_renewal",
            Self::CardSeparators => "card_separators",
        }
    }
}

/// Whether every name part is written in Han ideographs.
fn han(names: &[String]) -> bool {
    names
        .iter()
        .flat_map(|n| n.chars())
        .filter(|c| !c.is_whitespace())
        .all(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c))
}

/// The number of characters other than white space.
fn compact_len(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

fn separator(text: &str) -> Option<char> {
    text.chars().find(|c| matches!(c, ' ' | '-'))
}

/// The overlap that `a` and `b`, two spellings of one identifier, make.
pub fn classify(a: &Selector, b: &Selector) -> Overlap {
    match (a, b) {
        (Selector::Person { names: na, .. }, Selector::Person { names: nb, .. })
            if han(na) != han(nb) =>
        {
            Overlap::HanVsLatin
        }
        (Selector::Cnid { text: ta }, Selector::Cnid { text: tb })
            if compact_len(ta) != compact_len(tb) =>
        {
            Overlap::CnidFirstGeneration
        }
        (Selector::Permit { text: ta, .. }, Selector::Permit { text: tb, .. })
            if compact_len(ta) != compact_len(tb) =>
        {
            Overlap::PermitRenewal
        }
        (Selector::Card { text: ta }, Selector::Card { text: tb })
            if separator(ta) != separator(tb) =>
        {
            Overlap::CardSeparators
        }
        _ => Overlap::Respelled(a.kind()),
    }
}

/// How many planted follow-ups share an identifier in each way.
pub fn planted_counts(sim: &Simulation) -> BTreeMap<Overlap, usize> {
    let mut counts = BTreeMap::new();
    for o in sim.planted.iter().flat_map(|p| &p.shared) {
        *counts.entry(*o).or_default() += 1;
    }
    counts
}
