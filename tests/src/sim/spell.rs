//! The many ways a clerk writes an [`Ident`] down. Every spelling [`Ident::spell`] produces is
//! one the token spec says is equal to the others (name order and diacritics, national or
//! international phone form, plate separators, IMEI with or without check digit, IBAN
//! grouping, wallet hex case, a resident ID's 15-digit first-generation number, a permit's
//! renewal count, card separators...). A Han name spelled in Pinyin ([`Ident::Pinyin`]) equals
//! the Han name's second canonical form only.

use rand::Rng;
use rand::rngs::StdRng;
use token_spec::normalize::Selector;

use super::docs::first_generation;
use super::ident::{HanName, Ident, PhoneCountry, geo_near, luhn_digit};

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            _ => c,
        })
        .collect()
}

fn random_case(rng: &mut StdRng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.gen_bool(0.5) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn groups(s: &str, n: usize, sep: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(n)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(sep)
}

impl Ident {
    /// One way of writing this identifier down, chosen at random among equal spellings.
    pub fn spell(&self, rng: &mut StdRng) -> Selector {
        let pick = rng.gen_range(0..6u8);
        match self {
            Ident::Person {
                han: Some(HanName { family, given, .. }),
                dob,
                ..
            } => {
                let names = match pick % 4 {
                    0 => vec![format!("{family}{given}")],
                    1 => vec![family.clone(), given.clone()],
                    2 => vec![given.clone(), family.clone()],
                    _ => vec![format!("{family} {given}")],
                };
                Selector::Person {
                    names,
                    dob: dob.clone(),
                }
            }
            Ident::Person { latin, dob, .. } => {
                let plain = pick % 2 == 1;
                let mut words: Vec<String> = latin
                    .iter()
                    .map(|(d, p)| (if plain { *p } else { *d }).to_string())
                    .collect();
                if pick >= 3 {
                    words.rotate_left(1); // given names first
                }
                let names = match pick % 3 {
                    0 => vec![words.join(" ")],
                    1 => vec![words.join(" ").to_uppercase()],
                    _ => vec![words[0].clone(), words[1..].join(" ")],
                };
                Selector::Person {
                    names,
                    dob: dob.clone(),
                }
            }
            Ident::Pinyin { family, given, dob } => pinyin_spelling(family, given, dob, pick),
            Ident::Phone { country, nsn } => phone_spelling(*country, nsn, pick),
            Ident::Plate {
                country,
                prefix,
                rest,
            } => {
                let text = match pick % 5 {
                    0 => format!("{prefix}·{rest}"),
                    1 => format!("{prefix}{rest}"),
                    2 => format!("{prefix} {rest}"),
                    3 => format!("{}-{rest}", prefix.to_lowercase()),
                    _ => fullwidth(&format!("{prefix}{rest}")),
                };
                Selector::Plate {
                    country: country.to_string(),
                    text,
                }
            }
            Ident::Imei(body) => {
                let full = format!("{body}{}", luhn_digit(body));
                let text = match pick % 5 {
                    0 => full,
                    1 => body.clone(),
                    2 => format!(
                        "{}-{}-{}-{}",
                        &full[..2],
                        &full[2..8],
                        &full[8..14],
                        &full[14..]
                    ),
                    3 => format!("{body}{:02}", pick), // IMEISV: software version digits
                    _ => format!("{} {} {}", &full[..8], &full[8..14], &full[14..]),
                };
                Selector::Imei { text }
            }
            Ident::Iban(compact) => {
                let text = match pick % 3 {
                    0 => compact.clone(),
                    1 => groups(compact, 4, " "),
                    _ => groups(compact, 4, " ").to_lowercase(),
                };
                Selector::Iban { text }
            }
            Ident::Wallet { chain, address } => {
                let address = match (*chain, pick % 3) {
                    ("eth", 0) => format!("0x{address}"),
                    ("eth", 1) => format!("0x{}", address.to_uppercase()),
                    ("eth", _) => format!("0X{}", random_case(rng, address)),
                    ("btc", 0) => address.to_uppercase(),
                    (_, 1) => format!(" {address} "),
                    _ => address.clone(),
                };
                let chain = if pick >= 3 {
                    chain.to_uppercase()
                } else {
                    chain.to_string()
                };
                Selector::Wallet { chain, address }
            }
            Ident::Handle { platform, handle } => {
                let handle = match pick % 3 {
                    0 => format!("@{handle}"),
                    1 => handle.to_lowercase(),
                    _ => fullwidth(handle),
                };
                Selector::Handle {
                    platform: platform.to_string(),
                    handle,
                }
            }
            Ident::Address(parts) => {
                let text = match pick % 4 {
                    0 => parts.concat(),
                    1 => parts.join(" "),
                    2 => fullwidth(&parts.concat()),
                    _ => parts.join("，"),
                };
                Selector::Address {
                    country: "CN".into(),
                    text,
                }
            }
            Ident::Cnid(id) => Selector::Cnid {
                text: match pick {
                    0 => id.clone(),
                    1 => id.to_lowercase(),
                    2 => format!("{} {} {}", &id[..6], &id[6..14], &id[14..]),
                    3 => fullwidth(id),
                    // Older systems hold the first-generation card's number.
                    _ => first_generation(id).unwrap_or_else(|| id.clone()),
                },
            },
            Ident::Permit {
                permit_type,
                number,
            } => permit_spelling(permit_type, number, pick, rng.gen_range(0..=4)),
            Ident::Passport { country, number } => Selector::Passport {
                country: if pick.is_multiple_of(2) {
                    country.to_string()
                } else {
                    country.to_lowercase()
                },
                text: match pick % 3 {
                    0 => number.clone(),
                    1 => number.to_lowercase(),
                    _ => format!("{}-{}", &number[..1], &number[1..]),
                },
            },
            Ident::Card(pan) => Selector::Card {
                text: match pick {
                    0 | 1 => pan.clone(),
                    2 | 3 => groups(pan, 4, " "),
                    4 => groups(pan, 4, "-"),
                    _ => fullwidth(pan),
                },
            },
            Ident::Org(code) => Selector::Org {
                text: match pick % 3 {
                    0 => code.clone(),
                    1 => code.to_lowercase(),
                    _ => fullwidth(code),
                },
            },
            Ident::Geo { lat, lng } => {
                // The same door, read off two GPS fixes a few metres apart.
                let metres = rng.gen_range(0.0..15.0);
                match geo_near(rng, *lat, *lng, metres) {
                    Ident::Geo { lat, lng } => Selector::Geo { lat, lng },
                    _ => Selector::Geo {
                        lat: *lat,
                        lng: *lng,
                    },
                }
            }
        }
    }
}

fn phone_spelling(country: PhoneCountry, nsn: &str, pick: u8) -> Selector {
    let sel = |text: String, region: Option<&str>| Selector::Phone {
        text,
        region: region.map(str::to_string),
    };
    match country {
        PhoneCountry::China => match pick {
            0 => sel(
                format!("{} {} {}", &nsn[..3], &nsn[3..7], &nsn[7..]),
                Some("CN"),
            ),
            1 => sel(
                format!("+86 {} {} {}", &nsn[..3], &nsn[3..7], &nsn[7..]),
                None,
            ),
            2 => sel(
                format!("+86-{}-{}-{}", &nsn[..3], &nsn[3..7], &nsn[7..]),
                None,
            ),
            3 => sel(format!("0086 {nsn}"), Some("CN")),
            4 => sel(fullwidth(nsn), Some("cn")),
            _ => sel(format!("+86{nsn}"), None),
        },
        PhoneCountry::Vietnam => match pick % 4 {
            0 => sel(
                format!("0{} {} {}", &nsn[..3], &nsn[3..6], &nsn[6..]),
                Some("VN"),
            ),
            1 => sel(
                format!("+84 {} {} {}", &nsn[..2], &nsn[2..5], &nsn[5..]),
                None,
            ),
            2 => sel(
                format!("00 84 {} {} {}", &nsn[..3], &nsn[3..6], &nsn[6..]),
                Some("CN"),
            ),
            _ => sel(format!("+84{nsn}"), None),
        },
        PhoneCountry::Myanmar => match pick % 3 {
            0 => sel(
                format!("0{} {} {} {}", &nsn[..1], &nsn[1..4], &nsn[4..7], &nsn[7..]),
                Some("MM"),
            ),
            1 => sel(
                format!("+95 {} {} {}", &nsn[..1], &nsn[1..5], &nsn[5..]),
                None,
            ),
            _ => sel(format!("0095{nsn}"), Some("CN")),
        },
        PhoneCountry::HongKong => match pick % 3 {
            0 => sel(format!("{} {}", &nsn[..4], &nsn[4..]), Some("HK")),
            1 => sel(format!("+852 {nsn}"), None),
            _ => sel(format!("00852-{}-{}", &nsn[..4], &nsn[4..]), Some("CN")),
        },
    }
}

/// A Chinese name as a passport or a foreign partner writes it: family name upper-case or
/// not, given name as one word, either order, one name part or two.
fn pinyin_spelling(family: &str, given: &str, dob: &str, pick: u8) -> Selector {
    let capital = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    let family = if pick.is_multiple_of(2) {
        family.to_uppercase()
    } else {
        capital(family)
    };
    let given = capital(given);
    let names = match pick % 3 {
        0 => vec![format!("{family} {given}")],
        1 => vec![family, given],
        _ => vec![format!("{given} {family}")],
    };
    Selector::Person {
        names,
        dob: dob.to_string(),
    }
}

/// A travel permit's number, with the renewal count (`hkmo`) or issue count and office (`tw`)
/// that some records carry after the lifetime number.
fn permit_spelling(permit_type: &str, number: &str, pick: u8, count: u8) -> Selector {
    let text = match (permit_type, pick % 4) {
        ("hkmo", 0) => number.to_string(),
        ("hkmo", 1) => format!("{number}{count:02}"),
        ("hkmo", 2) => format!("{} {}", number[..1].to_lowercase(), &number[1..]),
        ("hkmo", _) => format!("{number} {count:02}"),
        (_, 0 | 1) => number.to_string(),
        (_, 2) => format!("{number}{count:02}"),
        _ => format!("{number}{count:02}(B)"),
    };
    Selector::Permit {
        permit_type: if pick >= 4 {
            permit_type.to_uppercase()
        } else {
            permit_type.to_string()
        },
        text,
    }
}
