//! Identity documents, cards and companies of the spec's 2026-12-01 revision, numbered as real
//! ones are, so that the token spec's checks accept them: resident ID numbers (GB 11643: the
//! address code of the holder's province, the real birth date, the MOD 11-2 check character),
//! Hong Kong/Macao and Taiwan travel permits, passports, UnionPay cards (Luhn) and companies'
//! unified social credit codes (GB 32100: the address code, a GB 11714 organization code, the
//! mod-31 check character).

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::ident::{Ident, digits, from_alphabet, luhn_digit};
use super::provinces::Province;

/// The characters of a unified social credit code, in the order of their values 0 to 30.
const USCC: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A six-digit address code (GB/T 2260) of `province`: province, prefecture, county.
fn address_code(rng: &mut StdRng, province: &Province) -> String {
    let prefecture = if province.municipality() {
        rng.gen_range(1..=2)
    } else {
        rng.gen_range(1..=9)
    };
    format!(
        "{:02}{prefecture:02}{:02}",
        province.gb_code(),
        rng.gen_range(2..=29)
    )
}

/// The check character of the first 17 digits of a resident ID (ISO 7064 MOD 11-2).
pub fn cnid_check(body: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b.wrapping_sub(b'0')) * w)
        .sum();
    char::from(b"10X98765432"[(sum % 11) as usize])
}

/// The resident ID of someone from `province` born on `dob` (`YYYY-MM-DD`).
pub fn resident_id(rng: &mut StdRng, province: &Province, dob: &str) -> Ident {
    let body = format!(
        "{}{}{}",
        address_code(rng, province),
        dob.replace('-', ""),
        digits(rng, 3)
    );
    Ident::Cnid(format!("{body}{}", cnid_check(&body)))
}

/// The 15-digit first-generation number of an 18-character resident ID, for those born in
/// the 1900s (the card older systems still hold): the century and the check character go.
pub fn first_generation(id: &str) -> Option<String> {
    (id.len() == 18 && id.get(6..8) == Some("19")).then(|| format!("{}{}", &id[..6], &id[8..17]))
}

/// A Mainland Travel Permit for Hong Kong (`H`) or Macao (`M`) residents: its lifetime number.
pub fn hkmo_permit(rng: &mut StdRng, hong_kong: bool) -> Ident {
    Ident::Permit {
        permit_type: "hkmo",
        number: format!("{}{}", if hong_kong { 'H' } else { 'M' }, digits(rng, 8)),
    }
}

/// A Mainland Travel Permit for Taiwan residents: its 8-digit lifetime number.
pub fn tw_permit(rng: &mut StdRng) -> Ident {
    Ident::Permit {
        permit_type: "tw",
        number: digits(rng, 8),
    }
}

/// A Vietnamese (`C1234567`) or Myanmar (`MC123456`) passport number.
pub fn passport(rng: &mut StdRng, vietnamese: bool) -> Ident {
    if vietnamese {
        Ident::Passport {
            country: "VN",
            number: format!("C{}", digits(rng, 7)),
        }
    } else {
        Ident::Passport {
            country: "MM",
            number: format!("M{}{}", from_alphabet(rng, b"ABCDE", 1), digits(rng, 6)),
        }
    }
}

/// A UnionPay card: `62`, 16 digits (19 for some debit cards), Luhn check digit last.
pub fn unionpay_card(rng: &mut StdRng) -> Ident {
    let len = *[16, 16, 16, 19].choose(rng).unwrap_or(&16);
    let body = format!("62{}", digits(rng, len - 3));
    Ident::Card(format!("{body}{}", luhn_digit(&body)))
}

/// The value of a character in the base-36 alphabet of GB 11714 (`0`-`9`, `A`-`Z`).
fn base36(c: u8) -> u32 {
    char::from(c).to_digit(36).unwrap_or(0)
}

/// The check character of an 8-character organization code body (GB 11714).
pub fn org_code_check(body: &str) -> char {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(c, w)| base36(c) * w).sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or('0'),
    }
}

/// The check character of the first 17 characters of a unified social credit code
/// (weights 3^(i-1) mod 31).
pub fn uscc_check(body: &str) -> char {
    let mut weight = 1u32;
    let mut sum = 0u32;
    for c in body.bytes() {
        let value = USCC.iter().position(|&u| u == c).unwrap_or(0) as u32;
        sum += value * weight;
        weight = weight * 3 % 31;
    }
    char::from(USCC[((31 - sum % 31) % 31) as usize])
}

/// A company registered in `province`: registered by market regulation (`9`) as an enterprise,
/// individual business or cooperative, with a pre-2015 numeric or a newer `MA` organization
/// code.
pub fn credit_code(rng: &mut StdRng, province: &Province) -> Ident {
    let kind = *['1', '1', '2', '3'].choose(rng).unwrap_or(&'1');
    let org = if rng.gen_bool(0.5) {
        format!("MA{}", from_alphabet(rng, USCC, 6))
    } else {
        digits(rng, 8)
    };
    let body = format!(
        "9{kind}{}{org}{}",
        address_code(rng, province),
        org_code_check(&org)
    );
    Ident::Org(format!("{body}{}", uscc_check(&body)))
}
