//! The Mekong scenario: Yunnan and Guangxi bureaus and the partners' border units (Lao,
//! Myanmar, Thai, Vietnamese), in a joint federation (token spec section 5). Cases cross the
//! border both ways: a Chinese suspect is known abroad only by the Latin spelling of their name
//! (their passport's), by the same passport, phone and vehicle; a partner's suspect is known in
//! China by the same Latin name, phone and passport. Every operation here is one an officer
//! released to the joint federation; the ground truth ([`super::truth::expected`]) is computed
//! from canonical forms and windows alone, as at home, and the joint broker must agree with it
//! exactly.

use std::time::Instant;

use rand::prelude::*;
use rand::rngs::StdRng;
use token_spec::token::{JointDeriver, PinnedKey, ShareService};

use super::generate::{Agency, DAY, SimConfig, SimOperation, Simulation};
use super::ident::{self, Ident, PhoneCountry};
use super::provinces::PROVINCES;
use super::run::{Deriver, Endpoint, Outcome, RunOptions, drive};
use super::scenario::Scenario;
use super::truth::Truth;
use crate::connect;
use crate::joint::{Joint, SEED_CN, SEED_LA, public_hex};

/// China's bureaus in the joint federation.
pub const CHINA: [&str; 2] = ["yn", "gx"];
/// The partners' units (one federation of theirs, one CA): Vientiane, Muse, Chiang Rai, Lao Cai.
pub const PARTNERS: [&str; 4] = ["vte-police", "muse-police", "cri-police", "lca-police"];

fn chinese_passport(rng: &mut StdRng) -> Ident {
    Ident::Passport {
        country: "CN",
        number: format!("E{:08}", rng.gen_range(0..100_000_000u32)),
    }
}

/// A Chinese suspect as a Yunnan or Guangxi bureau knows them, and as a partner does.
fn chinese_target(rng: &mut StdRng, bureau: &str) -> (Vec<Ident>, Vec<Ident>) {
    let person = ident::han_person(rng);
    let abroad = person.known_abroad().unwrap_or_else(|| person.clone());
    let passport = chinese_passport(rng);
    let phone = ident::phone(rng, PhoneCountry::China);
    let plate = ident::cn_plate(rng, if bureau == "yn" { "云" } else { "桂" });
    let home = vec![person, passport.clone(), phone.clone(), plate.clone()];
    // Abroad: the Latin name, and whatever of the rest the partner has.
    let mut known = vec![abroad];
    for id in [passport, phone, plate] {
        if rng.gen_bool(0.5) {
            known.push(id);
        }
    }
    (home, known)
}

/// A partner's suspect as its unit knows them, and as a Chinese bureau does.
fn partner_target(rng: &mut StdRng, unit: usize) -> (Vec<Ident>, Vec<Ident>) {
    let vietnamese = unit == 3;
    let person = ident::foreign_person(rng, vietnamese);
    let phone = ident::phone(
        rng,
        if vietnamese {
            PhoneCountry::Vietnam
        } else {
            PhoneCountry::Myanmar
        },
    );
    let passport = super::docs::passport(rng, vietnamese);
    let mut own = vec![person.clone(), phone.clone(), passport.clone()];
    if vietnamese {
        own.push(ident::vn_plate(rng));
    }
    let mut known = vec![person];
    for id in [phone, passport] {
        if rng.gen_bool(0.6) {
            known.push(id);
        }
    }
    (own, known)
}

/// Started up to ten days ago or starting within twenty, never already over (the broker
/// refuses a window that ended).
fn window(rng: &mut StdRng) -> (i64, i64) {
    let start = rng.gen_range(-10 * DAY..20 * DAY);
    (start, start + rng.gen_range(14 * DAY..60 * DAY))
}

/// A window that overlaps `w`, or (one time in five) begins after it ends.
fn follow_window(rng: &mut StdRng, w: (i64, i64)) -> (i64, i64) {
    if rng.gen_bool(0.8) {
        let start = rng.gen_range(w.0..w.1 - 3600);
        (start, start + rng.gen_range(14 * DAY..60 * DAY))
    } else {
        let start = w.1 + rng.gen_range(0..10 * DAY);
        (start, start + rng.gen_range(7 * DAY..30 * DAY))
    }
}

/// `cases` cases from `seed`: each a target first worked on one side of the border and, more
/// often than not, followed up on the other (and sometimes by a second unit of the first).
pub fn generate(seed: u64, cases: usize) -> Simulation {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut agencies: Vec<Agency> = CHINA
        .iter()
        .map(|code| Agency {
            id: format!("{code}-psb"),
            province: PROVINCES.iter().find(|p| p.code == *code),
        })
        .collect();
    agencies.extend(PARTNERS.iter().map(|id| Agency {
        id: (*id).into(),
        province: None,
    }));
    let mut ops: Vec<SimOperation> = Vec::new();
    let mut add = |rng: &mut StdRng, agency: usize, w: (i64, i64), idents: Vec<Ident>| {
        let selectors = idents.iter().map(|id| id.spell(rng)).collect();
        let index = ops.len();
        ops.push(SimOperation {
            agency,
            operation_id: uuid::Builder::from_random_bytes(rng.r#gen())
                .into_uuid()
                .to_string(),
            case_reference: format!("MEKONG-2026-{index:05}"),
            scenario: Scenario::Trafficking,
            window: w,
            idents,
            selectors,
        });
    };
    for _ in 0..cases {
        let w = window(&mut rng);
        if rng.gen_bool(0.5) {
            let bureau = rng.gen_range(0..CHINA.len());
            let (home, abroad) = chinese_target(&mut rng, CHINA[bureau]);
            add(&mut rng, bureau, w, home.clone());
            if rng.gen_bool(0.7) {
                let unit = CHINA.len() + rng.gen_range(0..PARTNERS.len());
                let fw = follow_window(&mut rng, w);
                add(&mut rng, unit, fw, abroad);
            }
            if rng.gen_bool(0.15) {
                // The other bureau works the same suspect, written its own way.
                let fw = follow_window(&mut rng, w);
                add(&mut rng, 1 - bureau, fw, home[..2].to_vec());
            }
        } else {
            let unit = rng.gen_range(0..PARTNERS.len());
            let (own, known) = partner_target(&mut rng, unit);
            add(&mut rng, CHINA.len() + unit, w, own);
            if rng.gen_bool(0.6) {
                let bureau = rng.gen_range(0..CHINA.len());
                let fw = follow_window(&mut rng, w);
                add(&mut rng, bureau, fw, known);
            }
        }
    }
    Simulation {
        config: SimConfig {
            provinces: CHINA.len(),
            operations: ops.len(),
            seed,
            ..SimConfig::default()
        },
        agencies,
        operations: ops,
        planted: Vec::new(),
    }
}

/// Starts the joint federation (China's and the partners' federations, each side's token
/// service with its share, the joint broker), registers every operation there under joint
/// tokens, and collects the alerts.
pub async fn run(sim: &Simulation, truth: &Truth, opts: &RunOptions) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let china: Vec<&str> = sim.agencies[..CHINA.len()]
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    let joint = Joint::start(&china, &PARTNERS).await;
    let pins = (
        PinnedKey::from_hex(&public_hex(&SEED_CN), 1)?,
        PinnedKey::from_hex(&public_hex(&SEED_LA), 1)?,
    );
    let mut endpoints = Vec::new();
    for (i, a) in sim.agencies.iter().enumerate() {
        let home = if i < CHINA.len() {
            &joint.cn
        } else {
            &joint.la
        };
        let (cert, key) = home.agency_pem(&a.id);
        let id = Some((cert.as_str(), key.as_str()));
        let broker = connect(joint.broker.addr, &joint.cn.ca_pem(), id).await?;
        let share_a = connect(joint.share_a.addr, &joint.cn.ca_pem(), id).await?;
        let share_b = connect(joint.share_b.addr, &joint.la.ca_pem(), id).await?;
        endpoints.push(Endpoint {
            client: deconfliction_proto::v1::broker_client::BrokerClient::new(broker),
            deriver: Deriver::Joint(JointDeriver::new(
                ShareService::from_channel(share_a, pins.0),
                ShareService::from_channel(share_b, pins.1),
            )),
        });
    }
    let driven = drive(sim, truth, opts, endpoints, started).await?;
    joint.shutdown().await;
    Ok(driven.finish(started, None, Vec::new()).await)
}
