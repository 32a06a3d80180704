//! The operation mixes: what each kind of case holds and where it happens. Chinese targets
//! carry the identity documents of their home province (a resident ID whose address code is
//! the province's, or a travel permit for Hong Kong, Macao and Taiwan); couriers of the border
//! provinces carry Hong Kong and Macao permits; fraud and laundering run through UnionPay
//! cards and companies.

use rand::prelude::*;
use rand::rngs::StdRng;

use super::docs;
use super::generate::Agency;
use super::ident::{self, Ident, PhoneCountry};
use super::provinces::{self, Neighbour, PROVINCES, Province};

/// What an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Yunnan to Guangdong: couriers, phones, plates.
    Drug,
    /// Cross-border human trafficking: border prefectures, Vietnam and Myanmar phones.
    Trafficking,
    /// Telecom fraud rings: phones, IMEIs, wallets, accounts, handles.
    Fraud,
    /// Money laundering: IBANs, wallets.
    Laundering,
    /// Raids: addresses, places, plates.
    Raid,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Self::Drug,
        Self::Trafficking,
        Self::Fraud,
        Self::Laundering,
        Self::Raid,
    ];

    pub fn tag(self) -> &'static str {
        match self {
            Self::Drug => "drug",
            Self::Trafficking => "trafficking",
            Self::Fraud => "fraud",
            Self::Laundering => "laundering",
            Self::Raid => "raid",
        }
    }

    /// Agency codes this scenario mostly happens in, with weights (others get 1).
    pub fn hotspots(self) -> &'static [(&'static str, f64)] {
        match self {
            Self::Drug => &[
                ("yn", 6.0),
                ("gd", 5.0),
                ("gx", 3.0),
                ("gz", 2.0),
                ("hn", 2.0),
            ],
            Self::Trafficking => &[
                ("yn", 6.0),
                ("gx", 6.0),
                ("ha", 2.0),
                ("sd", 2.0),
                ("fj", 2.0),
            ],
            Self::Fraud => &[("fj", 4.0), ("gd", 3.0), ("hn", 2.0)],
            Self::Laundering => &[
                ("gd", 3.0),
                ("sh", 3.0),
                ("zj", 2.0),
                ("hk", 3.0),
                ("mo", 3.0),
            ],
            Self::Raid => &[],
        }
    }
}

/// The province an agency works in (the national bureau: any of the federation's).
fn province_of(rng: &mut StdRng, agency: &Agency) -> &'static Province {
    agency
        .province
        .unwrap_or_else(|| PROVINCES.choose(rng).unwrap_or(&PROVINCES[0]))
}

fn border_prefecture(rng: &mut StdRng) -> &'static provinces::BorderPrefecture {
    let all: Vec<_> = PROVINCES.iter().flat_map(|p| p.border.iter()).collect();
    all.choose(rng).copied().unwrap_or(&PROVINCES[0].border[0])
}

/// A Chinese target of `home`: a Han name, often with the identity document its people carry.
fn chinese_target(rng: &mut StdRng, home: &Province, out: &mut Vec<Ident>) {
    let person = ident::han_person(rng);
    let document = match (&person, home.code) {
        (_, "hk" | "mo") if rng.gen_bool(0.6) => Some(docs::hkmo_permit(rng, home.code == "hk")),
        (_, "tw") if rng.gen_bool(0.6) => Some(docs::tw_permit(rng)),
        (Ident::Person { dob, .. }, _) if !home.permit_format() && rng.gen_bool(0.6) => {
            Some(docs::resident_id(rng, home, dob))
        }
        _ => None,
    };
    out.push(person);
    out.extend(document);
}

/// Whether an operation of `home` is on a border province's drug or trafficking route, where
/// Hong Kong and Macao residents cross as couriers.
fn border_route(home: &Province, scenario: Scenario) -> bool {
    matches!(scenario, Scenario::Drug | Scenario::Trafficking)
        && matches!(home.code, "yn" | "gx" | "gd")
}

pub(super) fn fresh_idents(rng: &mut StdRng, agency: &Agency, scenario: Scenario) -> Vec<Ident> {
    let home = province_of(rng, agency);
    // Hong Kong, Macau and Taiwan cars crossing into the mainland carry 粤Z plates.
    let home_plate = if home.plate.is_empty() {
        "粤Z"
    } else {
        home.plate
    };
    let mut out = Vec::new();
    match scenario {
        Scenario::Drug => {
            chinese_target(rng, home, &mut out);
            for _ in 0..rng.gen_range(1..=2) {
                out.push(ident::phone(rng, PhoneCountry::China));
            }
            let prefix = if rng.gen_bool(0.5) {
                border_prefecture(rng).plate.to_string()
            } else {
                home_plate.to_string()
            };
            out.push(ident::cn_plate(rng, &prefix));
        }
        Scenario::Trafficking => {
            let bp = border_prefecture(rng);
            let vietnamese = bp.neighbour == Neighbour::Vietnam;
            out.push(ident::foreign_person(rng, vietnamese));
            if rng.gen_bool(0.5) {
                out.push(docs::passport(rng, vietnamese));
            }
            let country = if vietnamese {
                PhoneCountry::Vietnam
            } else {
                PhoneCountry::Myanmar
            };
            out.push(ident::phone(rng, country));
            out.push(ident::phone(rng, PhoneCountry::China));
            if rng.gen_bool(0.5) {
                chinese_target(rng, home, &mut out);
            }
            if rng.gen_bool(0.4) {
                out.push(if vietnamese && rng.gen_bool(0.3) {
                    ident::vn_plate(rng)
                } else {
                    ident::cn_plate(rng, bp.plate)
                });
            }
        }
        Scenario::Fraud => {
            for _ in 0..rng.gen_range(1..=3) {
                let hk = home.code == "hk" || rng.gen_bool(0.1);
                out.push(ident::phone(
                    rng,
                    if hk {
                        PhoneCountry::HongKong
                    } else {
                        PhoneCountry::China
                    },
                ));
            }
            for _ in 0..rng.gen_range(1..=2) {
                out.push(ident::imei(rng));
            }
            if rng.gen_bool(0.5) {
                out.push(ident::wallet(rng));
            }
            if rng.gen_bool(0.3) {
                out.push(ident::iban(rng));
            }
            if rng.gen_bool(0.5) {
                out.push(ident::handle(rng));
            }
            for _ in 0..rng.gen_range(0..=2) {
                out.push(docs::unionpay_card(rng));
            }
            if rng.gen_bool(0.3) {
                out.push(docs::credit_code(rng, home));
            }
        }
        Scenario::Laundering => {
            for _ in 0..rng.gen_range(1..=3) {
                out.push(ident::iban(rng));
            }
            for _ in 0..rng.gen_range(1..=2) {
                out.push(ident::wallet(rng));
            }
            if rng.gen_bool(0.4) {
                chinese_target(rng, home, &mut out);
            }
            if rng.gen_bool(0.5) {
                out.push(docs::unionpay_card(rng));
            }
            for _ in 0..rng.gen_range(0..=2) {
                out.push(docs::credit_code(rng, home));
            }
        }
        Scenario::Raid => {
            if rng.gen_bool(0.3) {
                chinese_target(rng, home, &mut out);
            }
            out.push(ident::address(rng, home.name_zh, home.capital_zh));
            let metres = rng.gen_range(0.0..15_000.0);
            out.push(ident::geo_near(rng, home.lat, home.lng, metres));
            if rng.gen_bool(0.5) {
                out.push(ident::cn_plate(rng, home_plate));
            }
        }
    }
    if border_route(home, scenario) && rng.gen_bool(0.5) {
        // A Hong Kong or Macao resident on the route.
        let hong_kong = rng.gen_bool(0.7);
        out.push(docs::hkmo_permit(rng, hong_kong));
    }
    out
}
