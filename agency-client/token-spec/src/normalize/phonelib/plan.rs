//! Numbering-plan steps driven by the metadata: country calling code, international and
//! national prefixes, and the possible-length test.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use phonenumber::Metadata;
use phonenumber::metadata::{DATABASE, Descriptor};
use regex::{Regex, RegexBuilder};

use super::digits::normalize;
use super::patterns::PLUS_CHARS;
use super::{MAX_LENGTH_COUNTRY_CODE, MIN_LENGTH_FOR_NSN, ParseError, Possibility};

/// Metadata patterns compiled anchored (`^...` for lookingAt, `^...$` for matches), cached.
static PATTERNS: LazyLock<Mutex<HashMap<String, Option<Arc<Regex>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn metadata_regex(source: &str, full: bool) -> Option<Arc<Regex>> {
    let anchored = if full {
        format!("^(?:{source})$")
    } else {
        format!("^(?:{source})")
    };
    let mut cache = PATTERNS.lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .entry(anchored)
        .or_insert_with_key(|key| {
            // The metadata XML spreads patterns over lines: whitespace is not significant.
            RegexBuilder::new(key)
                .ignore_whitespace(true)
                .build()
                .ok()
                .map(Arc::new)
        })
        .clone()
}

/// `maybeExtractCountryCode`: `(0, "")` when the number carries no calling code.
pub(super) fn extract_country_code(
    number: &str,
    region: Option<&Metadata>,
) -> Result<(u16, String), ParseError> {
    if number.is_empty() {
        return Ok((0, String::new()));
    }
    let (international, full) = strip_international_prefix(number, region);
    if international {
        if full.len() <= MIN_LENGTH_FOR_NSN {
            return Err(ParseError::TooShortAfterIdd);
        }
        return match split_country_code(&full) {
            Some((code, rest)) => Ok((code, rest.to_owned())),
            None => Err(ParseError::InvalidCountryCode),
        };
    }
    if let Some(meta) = region {
        // A number written with its own calling code but no `+` or IDD: take the code off if
        // the number only makes sense (or only fits) without it.
        let code = meta.country_code().to_string();
        if let Some(rest) = full.strip_prefix(&code) {
            let general = meta.descriptors().general();
            let potential = strip_national_prefix(rest, meta);
            if (!match_national_number(&full, general)
                && match_national_number(&potential, general))
                || test_number_length(&full, meta) == Possibility::TooLong
            {
                return Ok((meta.country_code(), potential));
            }
        }
    }
    Ok((0, String::new()))
}

/// `maybeStripInternationalPrefixAndNormalize`: `(true, digits)` when the number starts with
/// `+` or with the default region's international (IDD) prefix.
fn strip_international_prefix(number: &str, region: Option<&Metadata>) -> (bool, String) {
    if let Some(m) = PLUS_CHARS.as_ref().and_then(|re| re.find(number)) {
        return (true, normalize(&number[m.end()..]));
    }
    let normalized = normalize(number);
    let idd = region
        .and_then(Metadata::international_prefix)
        .map(|re| re.as_str());
    if let Some(end) = idd
        .and_then(|src| metadata_regex(src, false))
        .and_then(|re| re.find(&normalized).map(|m| m.end()))
    {
        // A calling code never starts with 0: "00 0..." is not an IDD.
        if !normalized[end..].starts_with('0') {
            return (true, normalized[end..].to_owned());
        }
    }
    (false, normalized)
}

/// `extractCountryCode`: the first 1 to 3 digits that form a known calling code.
fn split_country_code(full: &str) -> Option<(u16, &str)> {
    if full.starts_with('0') {
        return None;
    }
    (1..=MAX_LENGTH_COUNTRY_CODE.min(full.len())).find_map(|len| {
        let code: u16 = full.get(..len)?.parse().ok()?;
        DATABASE.by_code(&code).map(|_| (code, &full[len..]))
    })
}

/// `maybeStripNationalPrefixAndCarrierCode`: the number without its national (trunk) prefix
/// and carrier code, unless stripping turns a number that fits the plan into one that does not.
pub(super) fn strip_national_prefix(number: &str, meta: &Metadata) -> String {
    let source = meta
        .national_prefix_for_parsing()
        .map(|re| re.as_str().to_owned())
        .or_else(|| meta.national_prefix().map(regex::escape));
    let Some(re) = source
        .filter(|s| !s.is_empty())
        .and_then(|s| metadata_regex(&s, false))
    else {
        return number.to_owned();
    };
    if number.is_empty() {
        return number.to_owned();
    }
    let Some(caps) = re.captures(number) else {
        return number.to_owned();
    };
    let general = meta.descriptors().general();
    let viable_before = match_national_number(number, general);
    let groups = re.captures_len() - 1;
    let transform = meta
        .national_prefix_transform_rule()
        .filter(|t| !t.is_empty());
    let end = caps.get(0).map_or(0, |m| m.end());
    match transform {
        Some(rule) if caps.get(groups).is_some() => {
            let transformed = re.replacen(number, 1, java_replacement(rule)).into_owned();
            if viable_before && !match_national_number(&transformed, general) {
                return number.to_owned();
            }
            transformed
        }
        _ => {
            let rest = &number[end..];
            if viable_before && !match_national_number(rest, general) {
                return number.to_owned();
            }
            rest.to_owned()
        }
    }
}

/// Java's `$1` group references in `$N` form become Rust's unambiguous `${N}`.
pub(super) fn java_replacement(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len() + 4);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('$', Some(d)) if d.is_ascii_digit() => {
                out.push_str("${");
                out.push(*d);
                out.push('}');
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

/// Whole-string match of a number against a descriptor's national number pattern.
fn match_national_number(number: &str, desc: &Descriptor) -> bool {
    let src = desc.national_number().as_str();
    !src.is_empty() && metadata_regex(src, true).is_some_and(|re| re.is_match(number))
}

/// `testNumberLength` for type UNKNOWN, i.e. against the general description's lengths.
pub(super) fn test_number_length(number: &str, meta: &Metadata) -> Possibility {
    let (possible, local) = general_lengths(meta);
    let Ok(length) = u16::try_from(number.len()) else {
        return Possibility::TooLong;
    };
    let (Some(&min), Some(&max)) = (possible.first(), possible.last()) else {
        return Possibility::InvalidLength;
    };
    if local.contains(&length) {
        Possibility::IsPossibleLocalOnly
    } else if length == min {
        Possibility::IsPossible
    } else if length < min {
        Possibility::TooShort
    } else if length > max {
        Possibility::TooLong
    } else if possible.contains(&length) {
        Possibility::IsPossible
    } else {
        Possibility::InvalidLength
    }
}

/// The general description's possible lengths. libphonenumber computes them when it builds its
/// metadata (the union over the number types, local-only lengths that are also full lengths
/// removed); the crate loads the XML, where they are absent, so they are computed here alike.
fn general_lengths(meta: &Metadata) -> (Vec<u16>, Vec<u16>) {
    let d = meta.descriptors();
    let general = d.general();
    if !general.possible_length().is_empty() {
        return (
            general.possible_length().to_vec(),
            general.possible_local_length().to_vec(),
        );
    }
    let mut possible = BTreeSet::new();
    let mut local = BTreeSet::new();
    let types = [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ];
    for desc in types.into_iter().flatten() {
        possible.extend(desc.possible_length().iter().copied());
        local.extend(desc.possible_local_length().iter().copied());
    }
    let local = local.difference(&possible).copied().collect();
    (possible.into_iter().collect(), local)
}
