//! Operations of a simulated federation, from a seed: realistic mixes per scenario, and
//! planted follow-ups (the same target worked by a second unit, written another way, or, in a
//! border province, known from a foreign partner by the Latin spelling of a Han name; a raid
//! next door or a few kilometres off; a window that overlaps or does not).

use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand::rngs::StdRng;
use token_spec::normalize::Selector;

use super::ident::{self, Ident};
use super::overlap::{Overlap, classify};
use super::provinces::{self, Province};
pub use super::scenario::Scenario;
use super::scenario::fresh_idents;

pub const DAY: i64 = 86_400;

/// A participant: a provincial bureau or the national bureau.
#[derive(Debug, Clone)]
pub struct Agency {
    pub id: String,
    pub province: Option<&'static Province>,
}

impl Agency {
    pub(super) fn code(&self) -> &'static str {
        self.province.map_or("nb", |p| p.code)
    }
}

/// One operation as its owning bureau holds it (plaintext never leaves the simulation's
/// agency side; only tokens go to the broker).
#[derive(Debug, Clone)]
pub struct SimOperation {
    pub agency: usize,
    pub operation_id: String,
    pub case_reference: String,
    pub scenario: Scenario,
    /// `[start, end)` in seconds relative to the moment the run starts.
    pub window: (i64, i64),
    pub idents: Vec<Ident>,
    pub selectors: Vec<Selector>,
}

/// A follow-up the generator planted on purpose, with what it should lead to.
#[derive(Debug, Clone)]
pub struct Planted {
    pub earlier: usize,
    pub later: usize,
    /// How each identifier copied from the earlier operation was written on each side.
    pub shared: Vec<Overlap>,
    /// For a planted nearby place: whether it lies inside the H3 radius.
    pub geo_inside: Option<bool>,
    pub windows_overlap: bool,
    pub same_agency: bool,
}

impl Planted {
    /// What the spec says must happen for this pair.
    pub fn should_match(&self, match_same_agency: bool) -> bool {
        self.windows_overlap
            && (!self.shared.is_empty() || self.geo_inside == Some(true))
            && (match_same_agency || !self.same_agency)
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many provinces take part (1..=34), taken in [`PROVINCES`] order.
    pub provinces: usize,
    pub operations: usize,
    pub seed: u64,
    /// Share of operations that follow up an earlier one.
    pub plant_rate: f64,
    pub match_same_agency: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            provinces: 6,
            operations: 400,
            seed: 1,
            plant_rate: 0.35,
            match_same_agency: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Simulation {
    pub config: SimConfig,
    pub agencies: Vec<Agency>,
    pub operations: Vec<SimOperation>,
    pub planted: Vec<Planted>,
}

/// Generates a simulation; the same configuration always gives the same simulation.
pub fn generate(config: &SimConfig) -> Simulation {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut agencies: Vec<Agency> = provinces::first(config.provinces.clamp(1, 34))
        .into_iter()
        .map(|p| Agency {
            id: p.agency_id(),
            province: Some(p),
        })
        .collect();
    agencies.push(Agency {
        id: provinces::NATIONAL_BUREAU.into(),
        province: None,
    });
    let mut sim = Simulation {
        config: config.clone(),
        agencies,
        operations: Vec::with_capacity(config.operations),
        planted: Vec::new(),
    };
    for i in 0..config.operations {
        let op = if i > 0 && rng.gen_bool(config.plant_rate) {
            follow_up(&mut sim, &mut rng, i)
        } else {
            let scenario = *Scenario::ALL.choose(&mut rng).unwrap_or(&Scenario::Raid);
            let agency = pick_agency(&mut rng, &sim.agencies, scenario.hotspots());
            let window = fresh_window(&mut rng);
            let idents = fresh_idents(&mut rng, &sim.agencies[agency], scenario);
            new_operation(&mut rng, &sim, i, agency, scenario, window, idents)
        };
        sim.operations.push(op);
    }
    sim
}

fn new_operation(
    rng: &mut StdRng,
    sim: &Simulation,
    index: usize,
    agency: usize,
    scenario: Scenario,
    window: (i64, i64),
    idents: Vec<Ident>,
) -> SimOperation {
    let selectors = idents.iter().map(|id| id.spell(rng)).collect();
    let code = sim.agencies[agency].code().to_uppercase();
    SimOperation {
        agency,
        operation_id: uuid::Builder::from_random_bytes(rng.r#gen())
            .into_uuid()
            .to_string(),
        case_reference: format!("{code}-2026-{}-{index:05}", scenario.tag().to_uppercase()),
        scenario,
        window,
        idents,
        selectors,
    }
}

fn pick_agency(rng: &mut StdRng, agencies: &[Agency], hotspots: &[(&str, f64)]) -> usize {
    let weights: Vec<f64> = agencies
        .iter()
        .map(|a| {
            let w = hotspots
                .iter()
                .find(|(c, _)| *c == a.code())
                .map_or(1.0, |h| h.1);
            if a.province.is_none() { 0.5 } else { w }
        })
        .collect();
    WeightedIndex::new(&weights).map_or(0, |d| d.sample(rng))
}

fn fresh_window(rng: &mut StdRng) -> (i64, i64) {
    let start = rng.gen_range(-60 * DAY..30 * DAY);
    let len = rng.gen_range(7 * DAY..120 * DAY);
    (start, (start + len).max(2 * DAY + rng.gen_range(0..DAY)))
}

/// A window that overlaps `w` (by at least an hour) or lies wholly after it (touching its
/// end exactly half of the time, since windows are half-open).
fn planted_window(rng: &mut StdRng, w: (i64, i64), overlap: bool) -> (i64, i64) {
    let len = rng.gen_range(7 * DAY..90 * DAY);
    if overlap {
        let start = rng.gen_range(w.0 - len + 3600..w.1 - 3600);
        (start, (start + len).max(2 * DAY))
    } else {
        let gap = if rng.gen_bool(0.5) {
            0
        } else {
            rng.gen_range(1..30 * DAY)
        };
        (w.1 + gap, w.1 + gap + len)
    }
}

/// Where a follow-up of an operation of `scenario` owned by `from` is likely to be.
fn follow_agency(rng: &mut StdRng, agencies: &[Agency], from: usize, scenario: Scenario) -> usize {
    let route: &[&str] = match (scenario, agencies[from].code()) {
        (Scenario::Drug, "yn") => &["gx", "gz", "gd"],
        (Scenario::Drug, "gx" | "gz") => &["hn", "gd"],
        (Scenario::Drug, _) => &["gd", "fj", "yn"],
        (Scenario::Trafficking, "yn" | "gx") => &["ha", "sd", "fj", "ah", "hn"],
        (Scenario::Trafficking, _) => &["yn", "gx"],
        (Scenario::Laundering, _) => &["hk", "mo", "sh", "gd"],
        _ => &[],
    };
    if rng.gen_bool(0.1) {
        return agencies.len() - 1; // the national bureau
    }
    if scenario == Scenario::Raid && rng.gen_bool(0.4) {
        return from; // another unit of the same bureau
    }
    let on_route: Vec<usize> = (0..agencies.len())
        .filter(|&a| route.contains(&agencies[a].code()))
        .collect();
    match on_route.choose(rng) {
        Some(&a) if rng.gen_bool(0.7) => a,
        _ => rng.gen_range(0..agencies.len()),
    }
}

fn follow_up(sim: &mut Simulation, rng: &mut StdRng, index: usize) -> SimOperation {
    let earlier = rng.gen_range(0..index);
    let prev = sim.operations[earlier].clone();
    let agency = follow_agency(rng, &sim.agencies, prev.agency, prev.scenario);
    let mut idents = Vec::new();
    // Indices into the earlier operation's identifiers of those copied, in order.
    let mut copied = Vec::new();
    let mut geo_inside = None;
    let prev_geo = prev.idents.iter().find_map(|i| match i {
        Ident::Geo { lat, lng } => Some((*lat, *lng)),
        _ => None,
    });
    match prev_geo {
        Some((lat, lng)) if rng.gen_bool(0.6) => {
            let inside = rng.gen_bool(0.5);
            let metres = if inside {
                rng.gen_range(0.0..120.0)
            } else {
                rng.gen_range(2_500.0..8_000.0)
            };
            idents.push(ident::geo_near(rng, lat, lng, metres));
            geo_inside = Some(inside);
        }
        _ => {
            let mut candidates: Vec<usize> = (0..prev.idents.len())
                .filter(|&k| !matches!(prev.idents[k], Ident::Geo { .. }))
                .collect();
            candidates.shuffle(rng);
            let abroad = from_partner(rng, &sim.agencies[agency], prev.scenario);
            if abroad {
                // The partner's case is about a suspect they know by name.
                candidates.sort_by_key(|&k| prev.idents[k].known_abroad().is_none());
            } else if rng.gen_bool(0.5) {
                // Found again by an identity document, a card or a company.
                candidates.sort_by_key(|&k| !prev.idents[k].is_document());
            }
            for k in candidates.into_iter().take(rng.gen_range(1..=2)) {
                let ident = &prev.idents[k];
                idents.push(match ident.known_abroad() {
                    Some(latin) if abroad && family_first(ident, &prev.selectors[k]) => latin,
                    _ => ident.clone(),
                });
                copied.push(k);
            }
        }
    }
    let fresh = fresh_idents(rng, &sim.agencies[agency], prev.scenario);
    let keep = rng.gen_range(1..=fresh.len());
    idents.extend(
        fresh
            .into_iter()
            .take(keep)
            .filter(|i| geo_inside.is_none() || !matches!(i, Ident::Geo { .. })),
    );
    let overlap = rng.gen_bool(0.7);
    let window = planted_window(rng, prev.window, overlap);
    let op = new_operation(rng, sim, index, agency, prev.scenario, window, idents);
    // Copied identifiers come first in the new operation, in order.
    let shared = copied
        .iter()
        .zip(&op.selectors)
        .map(|(&k, later)| classify(&prev.selectors[k], later))
        .collect();
    sim.planted.push(Planted {
        earlier,
        later: index,
        shared,
        geo_inside,
        windows_overlap: window.0 < prev.window.1 && prev.window.0 < window.1,
        same_agency: agency == prev.agency,
    });
    op
}

/// Whether a follow-up by `agency` is a case shared with a foreign partner, who knows a
/// Chinese suspect only by the Latin spelling of their name: drug and trafficking cases of
/// the border provinces (Yunnan and Guangxi on Vietnam, Laos and Myanmar; Guangdong on Hong
/// Kong and Macao, where foreign police forces ask too).
fn from_partner(rng: &mut StdRng, agency: &Agency, scenario: Scenario) -> bool {
    matches!(scenario, Scenario::Drug | Scenario::Trafficking)
        && matches!(agency.code(), "yn" | "gx" | "gd")
        && rng.gen_bool(0.4)
}

/// Whether a Han name was written family name first (as Han names are, and as the Pinyin
/// form reads it): a clerk who put the given name first wrote a name no passport spells.
fn family_first(ident: &Ident, written: &Selector) -> bool {
    match (ident, written) {
        (
            Ident::Person {
                han: Some(name), ..
            },
            Selector::Person { names, .. },
        ) => *names != [name.given.clone(), name.family.clone()],
        _ => false,
    }
}
